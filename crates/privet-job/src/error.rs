//! The crate's error type.

use std::path::PathBuf;

/// What can be wrong with a job, or with assembling its stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The job file is malformed or inconsistent.
    #[error("{}: {message}", path.display())]
    JobFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the section and key.
        message: String,
    },
    /// A job given as text is malformed or inconsistent.
    #[error("invalid job: {0}")]
    Config(String),
    /// The federated engine refused the stack.
    #[error(transparent)]
    Fl(#[from] privet_fl::FlError),
    /// The model could not be built or trained.
    #[error(transparent)]
    Ml(#[from] privet_ml::MlError),
    /// Secure aggregation could not be set up.
    #[error("secure aggregation: {0}")]
    SecAgg(#[from] privet_secagg::SecAggError),
}

impl From<privet_dpfedavg::DpFedAvgError> for JobError {
    fn from(e: privet_dpfedavg::DpFedAvgError) -> Self {
        JobError::Config(e.to_string())
    }
}
