//! # privet-net: the networked federation
//!
//! A long-running coordinator service and data-owner nodes over gRPC (tonic) with mutual TLS 1.3
//! (rustls), driving the same sans-IO round engine as the simulation.
//!
//! - [`coordinator`]: the `Federation` service (node sessions) and the `Admin` service (submit,
//!   status, fetch-model), one driver task per job, SQLite persistence ([`store`]), Prometheus
//!   metrics ([`metrics`]).
//! - [`node`]: the node daemon: dials out (nodes behind NAT work), reconnects with backoff,
//!   describes its data, trains and answers with deltas.
//! - [`identity`]: the key directory of secure aggregation, filled from verified certificates.
//! - [`client`]: the operator's admin client.
//!
//! The wire format is `proto/privet/v1/federation.proto` (package `privet.v1`); a session starts
//! with a `Hello` that carries [`PROTOCOL_VERSION`].

pub mod client;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod node;
pub mod store;

/// Generated protobuf and gRPC code for `privet.v1`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("privet.v1");
}

pub use config::{CoordinatorConfig, NodeConfig, NodeData, Security};
pub use error::NetError;
pub use privet_transport::{Limits, WireCounter};

/// The wire protocol version this build speaks (`Hello.protocol_version`).
pub const PROTOCOL_VERSION: u32 = 2;
