//! # privet-job: what a job is, and how every runtime runs it
//!
//! A *job* (a TOML file) names a data set, how its rows are spread over clients, a model, how
//! each client trains locally, how the coordinator aggregates, and which protections apply
//! (secure aggregation, differential privacy). This crate is the job's single source of truth
//! for the simulation (`privet-sim`), the networked coordinator and the nodes:
//!
//! - [`Job`]: the job file, parsed and validated section by section ([`spec`]); unknown keys
//!   are refused by name.
//! - [`seeds`]: the seeds that fix a run (and what they deliberately do not fix: DP noise).
//! - [`train_locally`]: a client's local training from the job.
//! - [`stack`]: [`JobStack`], the protocol stack of a job for the coordinator and for each
//!   client, assembled in one place.
//!
//! ```
//! # fn main() -> Result<(), privet_job::JobError> {
//! let job = privet_job::Job::from_toml(
//!     "[data]\npath = \"data/breast_cancer.csv\"\nlabel = \"benign\"\n\
//!      [model]\nkind = \"logreg\"\n[federation]\nrounds = 3\nclients_per_round = 2\n",
//! )?;
//! assert_eq!(job.federation.rounds, 3);
//! assert_eq!(privet_job::Protocol::of(&job, 10, None)?, privet_job::Protocol::Plain);
//! # Ok(())
//! # }
//! ```

pub mod agreement;
mod error;
mod local;
pub mod policy;
pub mod seeds;
pub mod spec;
pub mod stack;

pub use agreement::{AgreementRef, CheckContext};
pub use error::JobError;
pub use local::{LocalRows, local_train_config, train_locally};
pub use policy::{AnswerPolicy, EgressPolicy, FeaturePrivacy, SummaryPolicy, release_dp_summary};
pub use seeds::{Purpose, client_shuffle_seed, derive_seed, initial_params};
pub use spec::{DataSource, Deployment, DeriveSecAgg, Federation, Job, LocalTraining};
pub use stack::{
    ClientStack, JobStack, Protocol, Start, engine_config, privacy_plan, secagg_config,
};
