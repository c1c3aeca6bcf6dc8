//! # privet-node: a data owner's node
//!
//! The daemon a data owner runs next to its data (`privet node --config node.toml`). It dials
//! out to the coordinator (so it works behind NAT and firewalls), proves its name and role with
//! its certificate, and keeps one session open, reconnecting with backoff. Rows never leave the
//! node; what does is decided in one place, the [`egress`] chokepoint: a feature summary per job
//! (exact, or with differential privacy under `[privacy]`), the answers of the job's protocol, and
//! failures that name file, line and column only.
//!
//! - [`session`]: [`run_node`], [`check_start`] (certificate and data checked before dialling).
//! - [`backend`]: [`NodeBackend`], the data source ([`CsvBackend`]; [`ShiftBackend`] for
//!   transport tests and benchmarks).
//! - [`egress`]: [`Egress`](egress::Egress), [`Outgoing`](egress::Outgoing).
//! - [`config`]: `node.toml` ([`NodeConfig`]).

pub mod audit;
pub mod backend;
pub mod config;
pub mod egress;
mod error;
pub mod session;

pub use backend::{CsvBackend, JobTrainer, NodeBackend, ShiftBackend};
pub use config::{NodeConfig, NodeData};
pub use error::NodeError;
pub use session::{check_start, run_node};
