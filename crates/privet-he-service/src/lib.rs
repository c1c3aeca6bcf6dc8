//! Encrypted inference for privet models, on [`privet_he`].
//!
//! A client encrypts its (encoded) features under its own CKKS secret key, a server evaluates a
//! privet model on the ciphertexts with the client's evaluation keys, and the client decrypts
//! the scores and applies sigmoid or softmax. This crate holds what ties privet-he to privet's
//! models and services:
//!
//! - [`model`]: a trained privet model (logistic/softmax regression, MLP with the `square`
//!   activation) as plain f64 layers, and scores to probabilities;
//! - [`session`]: the protocol as a sans-IO state machine ([`ServerSession::handle`]);
//! - [`client`]: the client's side over any [`Channel`], and key files ([`KeyDir`]);
//! - [`LocalChannel`]: client and server in one process over the same encoded messages
//!   (`privet he infer MODEL data.csv`);
//! - [`server`] and [`RemoteChannel`]: the gRPC service over privet-transport (TLS 1.3 with the
//!   federation's certificates, framed size-limited streams): `privet he serve`.
//!
//! # Security model
//! Semi-honest server: it learns the number of ciphertexts and their sizes (in the single
//! packing, the number of samples), never a feature value or a score, and never holds a secret
//! key (the protocol has no message that could carry one). The client learns the scores; many
//! queries can reveal the model (extraction), which `max_samples_per_session` only slows
//! down. The server's results are not verifiable: a malicious server can return wrong scores.
//! The client refuses model descriptions whose parameters fail the 128-bit security check.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use privet_he::inference::Packing;
//! use privet_he_service::{KeySource, LocalChannel, ServerCore, ServerSettings, infer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = privet_ml::TrainedModel::load("runs/demo/model.safetensors".as_ref())?;
//! let settings = ServerSettings { packing: Packing::Single, max_samples_per_session: 0,
//!     max_message_bytes: 1 << 30 };
//! let core = Arc::new(ServerCore::new(&model, settings)?);
//! let mut channel = LocalChannel::new(core.session());
//! let (x, _labels) = model.meta().encode_csv("data/breast_cancer.csv".as_ref())?;
//! let outcome = infer(&mut channel, &x, &KeySource::Fresh)?;
//! println!("{} samples, first class {}", outcome.classes.len(), outcome.classes[0]);
//! # Ok(()) }
//! ```

pub mod client;
mod error;
mod local;
pub mod model;
mod remote;
pub mod server;
pub mod session;

/// The generated protobuf types and gRPC stubs of `proto/privet/v1/he.proto`.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod proto {
    tonic::include_proto!("privet.he.v1");
}

pub use client::{Channel, InferOutcome, KeyDir, KeySource, fetch_model, infer};
pub use error::{HeServiceError, Result};
pub use local::LocalChannel;
pub use model::{Output, plain_model};
pub use remote::RemoteChannel;
pub use server::{ServerConfig, ServiceHandle, start};
pub use session::{ServerCore, ServerSession, ServerSettings};
