//! Private set intersection and Private Join and Compute (PJC) over ristretto255.
//!
//! Two organisations each hold a list keyed by identifiers (a bank's customers, a retailer's
//! customers with their purchases). They learn how many identifiers they share and the sum of
//! the values attached to the shared ones, and nothing else about each other's lists beyond
//! the lists' sizes.
//!
//! # Overview
//!
//! * [`InputSet`]: normalised, distinct identifiers (and values), from memory or a CSV file
//!   ([`input`] states the trimming, case and duplicate rules).
//! * [`PjcServer`] and [`PjcClient`]: the two parties as sans-IO state machines. The client
//!   opens with [`PjcClient::start`]; each side's `handle(message)` returns the messages to
//!   send. No socket, thread or clock is inside: [`run_local`] drives both in one process, the
//!   `privet-psi-service` crate over gRPC.
//! * [`wire`]: the versioned, size-limited protobuf encoding (`proto/privet/v1/psi.proto`);
//!   lists travel in chunks of [`SessionLimits::chunk_elements`], so a million rows per side
//!   never make one large message.
//! * [`elgamal`]: exponential ElGamal over ristretto255, the additively homomorphic encryption
//!   of the sum. [`dp`]: optional discrete Laplace / Gaussian noise on the outcome.
//!
//! # The protocol (Google's Private Join and Compute, Ion et al. 2020, on ristretto255)
//!
//! The server holds identifiers `X`; the client holds identifiers `Y` and values `v(y)`. Each
//! draws a secret blinding scalar (`a`, `b`); `H` is a domain-separated hash to the group
//! ([`group`]).
//!
//! 1. Client → server: hello (nonce, set size `|Y|`, ElGamal public key for a sum).
//! 2. Server → client: hello (nonce, `|X|`, bounds, noise), then `H(x)^a` for every `x`,
//!    **sorted by encoding**, so positions say nothing about the server's input order.
//! 3. Client → server: `H(y)^b` with `Enc(v(y))`, sorted by encoding; and a truncated tag of
//!    `(H(x)^a)^b` for every server element, **sorted**, so the server cannot link a tag to the
//!    element it came from.
//! 4. Server: computes the tags of `(H(y)^b)^a`; the tags present in both lists are the
//!    intersection. It counts them, adds the matching ciphertexts, adds a fresh encryption of
//!    the noise (or of zero: re-randomisation), and sends the size and the encrypted sum.
//! 5. Client: decrypts the sum ([`elgamal`]: baby-step giant-step within a stated range).
//!
//! # Security model
//!
//! **Semi-honest** (honest-but-curious): both parties follow the protocol and try to learn more
//! from what they see. Under the decisional Diffie-Hellman assumption in ristretto255 and with
//! `H` modelled as a random oracle:
//!
//! * **The server learns** `|Y|`, the **exact** intersection size (it does the matching; noise
//!   cannot hide it from the server), and nothing about which of its identifiers match (the
//!   tags arrive sorted) or about the client's values (ElGamal ciphertexts), unless the client
//!   agrees to reveal the intersection to it.
//! * **The client learns** `|X|`, the intersection size and the sum (with noise when the server
//!   configured it), and nothing about which of its identifiers match (the server sends only
//!   the count and one re-randomised ciphertext), unless the server agrees to reveal the
//!   membership of the client's identifiers.
//! * Neither sees any identifier or value in the clear: on the wire there are only blinded
//!   points, truncated hashes of doubly blinded points, ElGamal ciphertexts and two integers
//!   (tested in `tests/transcript.rs`).
//!
//! **What a malicious party could do** (none of this is prevented; detecting it needs
//! zero-knowledge proofs this crate does not have):
//!
//! * Change its input: a server whose "set" is one suspect's identifier learns whether the
//!   suspect is in the client's set from the exact intersection size; a client can do the same
//!   and read the suspect's presence off the size (noise blunts this, see [`dp`]).
//! * A client can encrypt values outside the announced bounds (or anything at all) and defeat
//!   the noise calibration of the sum; it can also send arbitrary points.
//! * A server can skip the noise, sum any subset of the ciphertexts, or lie about the size.
//! * Either can abort at any time (the other learns nothing more than it had).
//!
//! The sizes of both sets are revealed (pad a set with random identifiers to hide its size).
//! Identifier matching is exact on the normalised bytes; the probability that two different
//! identifiers collide on their tags is below `2^-40` per session ([`group::tag_len`]).
//!
//! # Example
//!
//! ```
//! use privet_psi::{
//!     ClientConfig, Functionality, InputSet, NormalizeOptions, PjcClient, PjcServer,
//!     ServerConfig, run_local, wire::WireLimits,
//! };
//!
//! let opts = NormalizeOptions::default();
//! let bank = InputSet::from_identifiers(["ann", "bob", "cid", "dee"], opts)?;
//! let shop = InputSet::from_pairs([("bob", 30), ("dee", 12), ("eve", 99)], opts)?;
//! let mut server = PjcServer::new(ServerConfig::default(), bank)?;
//! let mut client = PjcClient::new(ClientConfig::new(Functionality::Sum), shop)?;
//! let run = run_local(&mut server, &mut client, &WireLimits::default(), false)?;
//! assert_eq!(run.client.intersection_size, 2);
//! assert_eq!(run.client.sum, Some(42));
//! assert_eq!(run.server.exact_intersection_size, 2);
//! # Ok::<(), privet_psi::PsiError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
pub mod dp;
pub mod elgamal;
mod error;
pub mod group;
pub mod input;
mod local;
mod messages;
mod server;
mod session;
pub mod wire;

pub use client::{ClientOutput, PjcClient};
pub use dp::{DpConfig, NoiseInfo, NoisePlan, ValueBounds};
pub use error::{PsiError, Result};
pub use input::{CaseRule, CsvSpec, Duplicates, InputSet, NormalizeOptions};
pub use local::{Direction, LocalRun, run_local};
pub use messages::{
    ClientHello, ElementKind, Elements, Functionality, Message, Outcome, ServerHello,
};
pub use server::{PjcServer, ServerOutput};
pub use session::{
    ClientConfig, DEFAULT_CHUNK_ELEMENTS, DEFAULT_MAX_PEER_SET, ServerConfig, SessionLimits,
};

/// The abort message to send the peer after `err` (a fixed reason, no internal detail).
pub fn abort_for(err: &PsiError) -> Message {
    Message::Abort(err.peer_reason().to_owned())
}
