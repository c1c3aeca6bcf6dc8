//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can stop a simulation or a centralized run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The job is invalid, or its stack cannot be built.
    #[error(transparent)]
    Job(#[from] privet_job::JobError),
    /// The job does not fit this kind of run (e.g. centralized training of synthetic data).
    #[error("invalid job: {0}")]
    Config(String),
    /// Loading or partitioning the data failed.
    #[error(transparent)]
    Data(#[from] privet_data::DataError),
    /// A model could not be built, trained, evaluated or saved.
    #[error(transparent)]
    Ml(#[from] privet_ml::MlError),
    /// The federated round engine refused the run.
    #[error(transparent)]
    Fl(#[from] privet_fl::FlError),
    /// Writing the run directory failed.
    #[error("cannot write {}: {reason}", path.display())]
    Output { path: PathBuf, reason: String },
    /// No round completed, so there is no federated model.
    #[error("the job failed: {0}")]
    JobFailed(String),
}
