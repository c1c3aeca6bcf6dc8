//! # privet-transport: how privet's services talk
//!
//! Every privet service (the federation's coordinator and nodes, and the other services that
//! follow the same pattern) uses the same transport:
//!
//! - [`tls`]: TLS 1.3 only, both sides authenticated with certificates from the federation's CA
//!   (`privet-identity`); [`caller`] gives a service the verified name and role of whoever
//!   called it.
//! - [`frame`]: every logical message is protobuf-encoded, optionally zstd-compressed, and cut
//!   into [`Frame`]s; the [`Reassembler`] refuses a message over its size limit before
//!   buffering it, and bounds decompression by the same limit. So no gRPC message cap applies
//!   and a hostile peer cannot make a receiver allocate beyond its limit.
//! - [`connect`] and [`tls_incoming`]: the client channel and the server's accept loop, with
//!   handshakes done off the accept loop and byte counters for benchmarks.
//! - [`config`]: the `[tls]` and `[limits]` sections that every service's TOML file shares.

pub mod config;
mod error;
pub mod frame;
mod net;
pub mod tls;

pub use config::{LimitsSection, TlsSection};
pub use error::TransportError;
pub use frame::{Encoded, Frame, Limits, Reassembler, bytes_to_f32, f32_to_bytes};
pub use net::{HANDSHAKE_FAILURES, WireCounter, connect, error_chain, serve, tls_incoming};
pub use tls::{Caller, Security, caller, client_config, server_config};
