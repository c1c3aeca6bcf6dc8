//! # privet-secagg: SecAgg+ secure aggregation for privet
//!
//! The coordinator learns the example-weighted sum of the clients' updates and nothing else
//! about any one of them. This crate implements SecAgg+ (Bell, Bonawitz, Gascón, Lepoint,
//! Raykova, CCS 2020), which with a complete graph is the SecAgg of Bonawitz et al. (CCS 2017),
//! as a sans-IO protocol plugged into privet's round engine:
//!
//! - [`SecAggProtocol`], the coordinator side, is an
//!   [`AggregationProtocol`](privet_fl::engine::AggregationProtocol) of four stages; give it to
//!   [`Coordinator::new`](privet_fl::engine::Coordinator::new) like any other protocol. It
//!   reveals only a [`WeightedSum`](privet_fl::WeightedSum), so only sum-based strategies
//!   (FedAvg, FedProx, FedAvgM, FedOpt) can run behind it. Each round's report carries its
//!   graph (`n`, `k`, `t`) as the [`SecAggDetails`] round detail; a [`SecAggMonitor`] taken
//!   before the protocol is boxed shows tests and benchmarks more (survivors per stage, the
//!   unmasked sum words).
//! - [`SecAggClient`], the client side, is a
//!   [`ClientProtocol`](privet_fl::engine::ClientProtocol): one per client, built from the
//!   client's long-term Ed25519 [`SigningKey`], a [`KeyDirectory`] of the other clients'
//!   [`VerifyingKey`]s (e.g. a [`KeyMap`]) and the job's [`SecAggConfig`].
//! - [`SecAggConfig`] deserializes from a job file (unknown keys refused) and validates into a
//!   [`SecAggError`]; [`params::choose`] picks the graph degree and threshold; [`Quantizer`]
//!   is the fixed-point encoding.
//!
//! ## The protocol
//!
//! Per round, with `U0` the selected clients and `U1 ⊇ U2 ⊇ U3 ⊇ U4` the survivors of each
//! stage:
//!
//! 0. **Advertise keys.** The coordinator sends [`ToClient::Fit`](privet_fl::engine::ToClient).
//!    Each client keeps the global model and draws from an OS-seeded CSPRNG two X25519 key
//!    pairs (`c_u` to encrypt shares, `s_u` for pairwise masks) and a self-mask seed `b_u`. It
//!    answers with both public keys and a hash commitment to `b_u`, signed with its identity
//!    key. The coordinator verifies the signature against the directory. A round that gets
//!    fewer than three advertisements ends here, before anyone has trained.
//! 1. **Share keys.** Over the `n = |U1|` clients that advertised, the coordinator draws a
//!    graph seed; the graph is a Harary graph `H(n, k)` over a seeded random ordering (or
//!    complete), with `k` and `t` from [`params::choose`]. Each client receives `k`, `t`, the
//!    seed, the member list and its neighbours' signed keys. It recomputes `k`, `t` and its
//!    neighbours from the configuration and refuses anything else, verifies every signature,
//!    then trains, computes its delta (with the job's update transforms) and encodes
//!    `(w·Δ, w, w·loss)` modulo `2^b` ([`quantize`]; `w` is its example count clipped to
//!    `max_weight`, and the round reports `Σ w` as its example count). It Shamir-shares `b_u`
//!    and `s_u` with threshold `t` among its neighbours, and sends each neighbour's two shares
//!    encrypted with ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the `c`
//!    agreement, the associated data binding round, sender and recipient.
//! 2. **Masked input.** The coordinator routes the ciphertexts. Each client decrypts the shares
//!    it holds and sends `y_u = x_u + PRG(b_u) + Σ_{v ∈ N(u) ∩ U2} ±PRG(s_uv) mod 2^b`, where
//!    `s_uv` comes from the `s` agreement through HKDF (domain separated by purpose, round and
//!    the pair), the PRG is the configured [`MaskPrg`] (AES-128-CTR by default, ChaCha20 on
//!    request; its id is signed into every key advertisement and both ends refuse a mismatch,
//!    see [`prg`]), and the sign is `+` if `u < v`. Masks are expanded chunk by chunk on all
//!    cores (rayon).
//! 3. **Unmask.** The coordinator tells each client of `U3` which neighbours survived and which
//!    dropped. A client reveals its shares of `b_v` for survivors and of `s_v` for dropped
//!    neighbours, and refuses a request that names one neighbour in both lists or that does not
//!    match the shares it holds. From any `t` shares the coordinator rebuilds each survivor's
//!    `b_u` (checked against its commitment) and each dropped client's `s_v` (checked against
//!    its public key), removes the self masks and the dropped clients' pairwise masks, and
//!    decodes `Σ_{u ∈ U3} x_u` exactly.
//!
//! If some secret cannot be rebuilt (fewer than `t` of its holders left at any stage), the round
//! aborts ([`StageOutcome::Abort`](privet_fl::engine::StageOutcome)) before anything is
//! unmasked, and the job goes on with the next round.
//!
//! ## Parameters
//!
//! `k` is the smallest even degree for which, with at most a fraction `γ` of corrupted clients
//! and dropouts at rate `δ`, security fails with probability at most `2^-σ` and a round aborts
//! with probability at most `2^-η`; `t` is the smallest secure majority of the neighbourhood. The
//! bounds are computed exactly (hypergeometric and binomial tails) for each `n` — see
//! [`params`]. With the defaults (`γ = δ = 0.05`, `σ = 40`, `η = 20`):
//!
//! | n | 10 | 20 | 30 | 100 | 500 | 1000 | 10,000 | 100,000 |
//! |---|---|---|---|---|---|---|---|---|
//! | k | 9 (complete) | 19 (complete) | 20 | 22 | 26 | 30 | 34 | 36 |
//! | t | 5 | 10 | 11 | 12 | 15 | 17 | 20 | 21 |
//!
//! so a client's work grows as `O(k · d) = O(log n · d)` and the coordinator's as
//! `O(n · k · d)` in the worst case of dropouts. (The member list in the stage-1 message is
//! `4n` bytes per client, small next to the masked vector.)
//!
//! ## Security model
//!
//! - **Semi-honest coordinator, colluding with up to `⌈γn⌉` clients.** The coalition sees the
//!   masked inputs, the encrypted shares (keyed by agreements between clients, so opaque to it),
//!   the shares revealed in stage 3 and the sum. Each honest client reveals one of its two
//!   secrets per neighbour, never both, so an honest survivor's input stays hidden under
//!   `PRG(b_u)` and a dropped client's pairwise masks are removed only when its input is not in
//!   the sum. The coalition learns nothing beyond the sum of the honest contributors' inputs
//!   unless some honest client has `t` corrupted neighbours or the honest, non-dropped clients
//!   are split by the graph: both bounded by `2^-σ` ([`params`]); with the complete graph this
//!   holds with certainty when `t` exceeds the number of corrupted clients (Bonawitz et al.).
//!   One masked vector alone is uniform modulo `2^b` (a statistical test checks this).
//! - **Impersonation.** Key advertisements are signed with the clients' long-term Ed25519 keys
//!   (strict verification) and checked by the coordinator and by every neighbour, so the
//!   coordinator cannot slip its own keys between two clients to read their shares or masks,
//!   and a client cannot advertise keys for another. Later messages rely on the runtime's
//!   authenticated channel (the engine's [`Event::Received`](privet_fl::engine::Event) sender).
//!   The directory must come from a trusted enrolment, not from the coordinator.
//! - **Semi-malicious coordinator.** Clients recompute the graph, `k` and `t` from the seed,
//!   the member list and the shared configuration, and check that the keys relayed, the shares
//!   routed and the survivor/dropout lists are consistent with it, so a coordinator that sends
//!   the same seed and list to all cannot hand a target a neighbourhood of its choosing. It does
//!   draw the seed and could try many (each try succeeds with probability at most `2^-σ`).
//! - **Limits.** There is no protection against a *malicious* coordinator that shows different
//!   clients different member lists or different survivor sets: Bonawitz et al. add a
//!   consistency-check round (clients sign the survivor set) for that, and Bell et al. discuss
//!   its SecAgg+ analogue; neither is implemented. Telling some neighbours of `u` that `u`
//!   dropped and others that it survived yields at most `k` shares in all, fewer than the `2t`
//!   needed for both secrets, unless `2t - k` of `u`'s neighbours are corrupted (2 with the
//!   default majority threshold): that is the whole margin. Dropouts are assumed independent of
//!   the graph. Malicious clients can send arbitrary (in-range) inputs, since nothing proves
//!   that an input was clipped, and can make a round abort with bad shares (detected by the
//!   commitments, not attributed). The sum itself, the total weight and the weighted loss are
//!   revealed by design; combine with differential privacy to protect what the sum shows.
//! - **Replays.** Every payload carries its round; signatures, AEAD associated data and every
//!   HKDF derivation bind the round; keys are fresh per round; a client accepts each stage once,
//!   so a message of an earlier round or another stage is refused.
//! - **Secrets** come from a ChaCha20 CSPRNG seeded by the operating system, are zeroized on
//!   drop, are never printed by `Debug`, and are compared in constant time. Shamir arithmetic is
//!   `curve25519-dalek`'s constant-time scalar field, through the audited `vsss-rs`.
//!
//! ## Testing
//!
//! Unit tests cover each piece (RFC 7748, RFC 8032, RFC 5869 and RFC 8439 vectors; Shamir
//! sharing from any `t` of `n` shares; graph regularity; the parameter bounds; quantization
//! headroom; the wire format against truncation and mutation). Integration tests drive whole
//! rounds through privet's engine: `tests/rounds.rs` (the unmasked words equal the sum of the
//! contributors' quantized updates under random dropouts at every stage, and rounds abort
//! exactly when some secret keeps fewer than `t` holders), `tests/uniformity.rs` (chi-square
//! tests that one masked vector looks uniform), `tests/adversarial.rs` (replays, wrong rounds
//! and stages, forged signatures, lying coordinators, mutated messages on both sides). The
//! cargo-fuzz target `secagg_wire` in the repository's `fuzz/` feeds every decoder
//! ([`wire::inspect`]) and a client and coordinator arbitrary messages (`fuzz/run.sh`).
//!
//! ## Example: one round among five clients
//!
//! ```
//! use std::sync::Arc;
//! use privet_fl::engine::{
//!     Action, ClientProtocol, Coordinator, EngineConfig, Event, LocalTrainer, RoundOutcome,
//! };
//! use privet_fl::{
//!     ClientId, ClientSampler, ClientTrainConfig, FlError, SampleSize, StrategyConfig,
//!     TrainMetrics,
//! };
//! use privet_secagg::{KeyMap, SecAggClient, SecAggConfig, SecAggProtocol, SigningKey};
//!
//! /// "Training" moves every parameter to the client's target.
//! struct Target(f32);
//! impl LocalTrainer for Target {
//!     fn fit(&mut self, _round: u32, params: &[f32], _config: &ClientTrainConfig)
//!         -> Result<(Vec<f32>, TrainMetrics), FlError> {
//!         Ok((vec![self.0; params.len()], TrainMetrics { loss: 0.5, num_examples: 10 }))
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ids: Vec<ClientId> = (1..=5).map(ClientId).collect();
//! // Identity keys (a real deployment enrols them once and keeps them).
//! let keys: Vec<SigningKey> = (1..=5u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
//! let directory: Arc<KeyMap> =
//!     Arc::new(ids.iter().zip(&keys).map(|(&id, k)| (id, k.verifying_key())).collect());
//! let config = SecAggConfig::default();
//!
//! let protocol = SecAggProtocol::new(config.clone(), directory.clone())?;
//! let engine = EngineConfig {
//!     rounds: 1,
//!     sampler: ClientSampler { size: SampleSize::Fraction(1.0), min_clients: 3, seed: 1 },
//!     min_clients: 3,
//!     max_retries: 0,
//! };
//! let mut coordinator =
//!     Coordinator::new(engine, StrategyConfig::FedAvg.build()?, Box::new(protocol), vec![0.0; 4])?;
//! let mut clients: Vec<SecAggClient> = ids
//!     .iter()
//!     .zip(keys)
//!     .map(|(&id, key)| SecAggClient::new(id, key, directory.clone(), config.clone()))
//!     .collect::<Result<_, _>>()?;
//!
//! let mut queue = coordinator.start_round(&ids)?;
//! while let Some(action) = queue.pop() {
//!     match action {
//!         Action::Send { to, msg } => {
//!             let i = (to.0 - 1) as usize;
//!             let mut trainer = Target(to.0 as f32);
//!             let answer = clients[i].respond(&msg, &mut trainer, &[])?;
//!             queue.extend(coordinator.handle(Event::Received { from: to, msg: answer })?);
//!         }
//!         Action::RoundFinished(RoundOutcome::Completed(report)) => {
//!             assert_eq!(report.completed, ids);
//!             assert_eq!(report.stages, 4);
//!         }
//!         Action::RoundFinished(failed) => panic!("{failed:?}"),
//!         _ => {}
//!     }
//! }
//! // The mean of the targets 1..=5, up to quantization.
//! assert!(coordinator.global().iter().all(|&x| (x - 3.0).abs() < 1e-3));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
mod config;
mod coordinator;
mod crypto;
mod error;
mod graph;
pub mod params;
pub mod prg;
pub mod quantize;
mod shamir;
pub mod wire;

pub use client::SecAggClient;
pub use config::{MIN_LEVELS, Rounding, SecAggConfig, Threshold};
pub use coordinator::{RoundInfo, RoundStatus, SecAggDetails, SecAggMonitor, SecAggProtocol};
pub use crypto::{KeyDirectory, KeyMap, SharedKeyMap};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::SecAggError;
pub use params::{MIN_CLIENTS, RoundParams};
pub use prg::{MaskPrg, hardware_aes};
pub use quantize::{DecodedSum, Quantizer};

/// The local parameter (see [`privet_fl::UpdateContext`]) through which a client's own update
/// transforms ask its SecAgg+ client to add distributed-DP noise: the standard deviation, in
/// delta units, of the discrete Gaussian noise added to the quantized update before masking.
/// It must fit the room [`SecAggConfig::distributed_dp_noise`] reserves.
pub const NOISE_PARAM: &str = "secagg.noise_std";
