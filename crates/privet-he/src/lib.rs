//! CKKS homomorphic encryption (RNS variant) for privet.
//!
//! Built on `fhe-math` (its modular arithmetic, NTT and prime tests); this crate adds what it
//! lacks for CKKS: the canonical-embedding encoder, key generation, hybrid key switching with
//! special primes (relinearization and Galois keys), rescaling in the NTT domain, rotations
//! (hoisted when several share one input), conjugation, a BSGS polynomial evaluator and
//! plaintext-matrix x encrypted-vector products by the diagonal method.
//!
//! There is no I/O here: bytes in and out go through [`wire`], which checks versions,
//! parameters, levels and sizes.
//!
//! # Security model
//! CKKS as here is IND-CPA under RLWE for the parameter sets of [`params`] (128-bit classical
//! security by the HomomorphicEncryption.org table). Decrypted CKKS results carry the
//! encryption noise, and Li and Micciancio (Eurocrypt 2021) showed that whoever sees a
//! decryption together with the ciphertext can recover the key: a decryption that leaves the
//! secret-key holder must go through [`flooding`]. Evaluation is not verifiable: a server can
//! return a wrong result (semi-honest model). The slots' values are hidden, not the circuit,
//! the levels, the scales or the sizes.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use privet_he::{CkksContext, CkksParameters, Encoder, EvaluationKeyConfig, Evaluator,
//!     ParameterSetName, SecretKey, os_rng};
//!
//! # fn main() -> Result<(), privet_he::HeError> {
//! let ctx = CkksContext::new(CkksParameters::named(ParameterSetName::N13Depth2))?;
//! let mut rng = os_rng();
//! let sk = SecretKey::generate(&ctx, &mut rng);
//! let keys = sk.evaluation_keys(
//!     &EvaluationKeyConfig { relinearization: true, rotations: vec![1], conjugation: false },
//!     &mut rng,
//! )?;
//! let enc = Encoder::new(&ctx);
//! let ev = Evaluator::new(&ctx, Arc::new(keys))?;
//!
//! let top = ctx.max_level();
//! let x = sk.encrypt(&enc.encode(&[1.5, 2.0, -3.0], top, ctx.params().default_scale())?, &mut rng)?;
//! let y = ev.rescale(&ev.mul(&x, &x)?)?;       // x^2
//! let y = ev.rotate(&y, 1)?;                     // left by one slot
//! let out = enc.decode(&sk.decrypt(&y)?)?;
//! assert!((out[0] - 4.0).abs() < 1e-4 && (out[1] - 9.0).abs() < 1e-4);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
// RNS kernels index several parallel arrays (primes, rows, precomputed tables) by the same prime
// or digit index; iterator chains over zipped slices would hide that index, not remove it.
#![allow(clippy::needless_range_loop)]

mod cipher;
mod context;
mod encoding;
mod error;
mod evaluator;
pub mod flooding;
pub mod inference;
mod keys;
mod keyswitch;
pub mod linear;
pub mod noise;
pub mod params;
pub mod polyeval;
mod ring;
pub mod wire;

pub use cipher::Ciphertext;
pub use context::CkksContext;
pub use encoding::{Complex, Encoder, Plaintext};
pub use error::{DecodeError, HeError, Result};
pub use evaluator::{Evaluator, SCALE_TOLERANCE};
pub use flooding::{Flooded, FloodingConfig};
pub use keys::{
    EvaluationKeyConfig, EvaluationKeys, GaloisKey, PublicKey, RelinKey, SecretKey, os_rng,
};
pub use linear::{MatrixPlan, batch_linear, replicate};
pub use noise::{Estimate, NoiseModel};
pub use params::{CircuitRequirements, CkksParameters, Hazmat, ParameterSetName};
pub use polyeval::{evaluate_polynomial, polynomial_depth};
pub use wire::{DecodeOptions, Kind};
