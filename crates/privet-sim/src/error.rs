//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can stop a simulation or a centralized run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The job file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The job file is malformed or inconsistent.
    #[error("{}: {message}", path.display())]
    JobFile { path: PathBuf, message: String },
    /// A job given as text is malformed or inconsistent.
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
