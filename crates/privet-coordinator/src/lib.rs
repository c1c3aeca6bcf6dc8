//! # privet-coordinator: the coordinator service
//!
//! A long-running gRPC service (tonic over mutual TLS 1.3) that runs federated jobs across
//! data-owner nodes, driving the same sans-IO round engine as the simulation:
//!
//! - [`server`]: start-up ([`start`]): certificates checked (a coordinator's role), the state
//!   database opened and locked, unfinished jobs resumed, the `Federation` and `Admin` services
//!   served; [`CoordinatorHandle`] stops it.
//! - [`hub`]: node sessions: the `Hello` (protocol version, certificate name and role), the
//!   frames of each session's stream, and routing of node messages to their job's driver.
//! - [`driver`]: one task per job: fits the feature encoding from the nodes' summaries, builds
//!   the job's engine with `privet-job`'s [`JobStack`](privet_job::JobStack) (resuming from the
//!   last checkpoint), runs rounds with real deadlines and persists each finished round.
//! - [`admin`]: the operators' `Admin` service (submit, status, fetch-model), only for
//!   operator certificates named in the configuration; [`client`] is the operator's side.
//! - [`store`]: SQLite (jobs, rounds, checkpoints; WAL, versioned and migrated schema) on a
//!   thread of its own ([`StoreActor`](store::StoreActor)), locked against a second
//!   coordinator.
//! - [`evaluation`]: centralized evaluation of each round's model on an evaluation set the
//!   coordinator holds (`[evaluation]`), reported as a round detail.
//! - [`metrics`]: Prometheus counters on `/metrics`.
//! - `audit`: signed data-sharing agreements checked at admission (and at model export), and
//!   the tamper-evident audit log in the store, signed with the coordinator's key and proven
//!   to every node at each connection.

pub mod admin;
mod audit;
pub mod client;
pub mod config;
pub mod driver;
mod error;
pub mod evaluation;
pub mod hub;
pub mod metrics;
pub mod server;
pub mod store;

pub use client::AdminClient;
pub use config::CoordinatorConfig;
pub use error::CoordinatorError;
pub use server::{CoordinatorHandle, start};
