//! Differential privacy for privet: privacy accountants for the subsampled Gaussian mechanism
//! (DP-SGD and DP-FedAvg), noise calibration, a persistent privacy budget, and noise samplers
//! that are exact and draw only from a cryptographically secure generator.
//!
//! # Overview
//!
//! * [`SampledGaussian`]: `steps` steps of the Gaussian mechanism with noise multiplier `sigma`
//!   over a batch drawn with probability `q` ([`Sampling::Poisson`]) or of fixed size
//!   ([`Sampling::FixedSize`]); every parameter is a validated newtype ([`params`]).
//! * [`rdp::RdpAccountant`]: Rényi DP at a grid of orders (Mironov, Talwar and Zhang 2019 for
//!   Poisson sampling; Wang, Balle and Kasiviswanathan 2019 for fixed-size sampling), converted
//!   to (epsilon, delta) by the classic or the improved (Balle et al. 2020) bound.
//! * [`pld::PldAccountant`]: a tight accountant on the discretised privacy loss distribution
//!   (connect-the-dots, FFT composition), agreeing with Google's dp_accounting.
//! * [`calibrate::calibrate_noise_multiplier`]: the smallest `sigma` for a target.
//! * [`budget::BudgetTracker`]: spent budget against a [`PrivacyBudget`], persisted as a
//!   versioned JSON ledger.
//! * [`noise`]: exact discrete Laplace and Gaussian samplers (Canonne, Kamath and Steinke 2020)
//!   and [`noise::GriddedGaussian`] for `f32`/`f64` vectors.
//!
//! # Example
//!
//! ```
//! use privet_dp::{Delta, SampledGaussian};
//! use privet_dp::pld::PldAccountant;
//! use privet_dp::rdp::{Conversion, RdpAccountant};
//!
//! // 15 epochs of DP-SGD on 60,000 examples, batches of 150, noise multiplier 1.3.
//! let steps = SampledGaussian::poisson(150.0 / 60000.0, 1.3, 6000)?;
//! let delta = Delta::new(1e-5)?;
//!
//! let mut rdp = RdpAccountant::new();
//! rdp.compose(&steps)?;
//! let by_rdp = rdp.epsilon(delta, Conversion::Improved);
//!
//! let mut pld = PldAccountant::default();
//! pld.compose(&steps)?;
//! let by_pld = pld.epsilon(delta)?;
//!
//! assert!((by_rdp.epsilon - 0.7242).abs() < 1e-3 && by_rdp.order == 19.0);
//! assert!(by_pld < by_rdp.epsilon); // the PLD bound is tighter
//! # Ok::<(), privet_dp::DpError>(())
//! ```
//!
//! ```
//! use privet_dp::noise::{GriddedGaussian, os_seeded_rng};
//!
//! let mut rng = os_seeded_rng()?;
//! let noise = GriddedGaussian::new(1.1)?; // sigma * clip norm
//! let mut update = vec![0.25_f32; 1000];
//! noise.add_noise_f32(&mut rng, &mut update)?;
//! # Ok::<(), privet_dp::DpError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
pub mod calibrate;
mod error;
pub mod noise;
pub mod params;
pub mod pld;
pub mod rdp;
mod special;
pub mod stats;

pub use budget::{BudgetLedger, BudgetTracker, PrivacyBudget};
pub use calibrate::AccountantKind;
pub use error::{DpError, Result};
pub use params::{Delta, Epsilon, NoiseMultiplier, SampledGaussian, Sampling, SamplingProbability};
