//! The crate's error type.

use std::path::PathBuf;

/// Everything that can stop the coordinator or one of its operations. Each variant keeps its
/// source, so the binary maps it to the right exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// The configuration is invalid (a bad value, a certificate of the wrong role).
    #[error("{0}")]
    Config(String),
    /// A configuration file cannot be read or parsed.
    #[error(transparent)]
    Files(#[from] privet_files::FileError),
    /// Certificates or keys are unusable.
    #[error(transparent)]
    Identity(#[from] privet_identity::IdentityError),
    /// An agreement file is unusable, or the audit log cannot be kept.
    #[error(transparent)]
    Audit(#[from] privet_audit::AuditError),
    /// TLS set-up, a connection or the frames of a stream failed.
    #[error(transparent)]
    Transport(#[from] privet_transport::TransportError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state database failed or is held by another coordinator.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A job is invalid.
    #[error(transparent)]
    Job(#[from] privet_job::JobError),
    /// The round engine refused something.
    #[error(transparent)]
    Fl(#[from] privet_fl::FlError),
    /// A model could not be built or loaded.
    #[error(transparent)]
    Ml(#[from] privet_ml::MlError),
    /// The nodes' data summaries do not combine.
    #[error(transparent)]
    Data(#[from] privet_data::DataError),
    /// A peer sent a malformed message.
    #[error(transparent)]
    Wire(#[from] privet_wire::WireError),
    /// A job cannot go on (its nodes did not come in time, their data could not be described):
    /// the job is failed with this reason.
    #[error("{0}")]
    JobFailed(String),
    /// The coordinator broke the protocol (for the operator's client: a bad download).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The gRPC server failed.
    #[error("server: {0}")]
    Server(#[source] tonic::transport::Error),
    /// An internal task failed (a panic): a bug, not a configuration problem.
    #[error("internal error: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The admin service refused a request (for the operator's client).
    #[error("{0}")]
    Remote(String),
    /// A file could not be written (the operator's client).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<tonic::Status> for CoordinatorError {
    fn from(status: tonic::Status) -> Self {
        CoordinatorError::Remote(format!(
            "{}: {}",
            code_name(status.code()),
            status.message()
        ))
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::NotFound => "not found",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::ResourceExhausted => "too large",
        tonic::Code::FailedPrecondition => "not ready",
        tonic::Code::Unavailable => "unavailable",
        _ => "error",
    }
}
