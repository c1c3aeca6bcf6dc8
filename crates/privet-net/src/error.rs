//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the networked runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A configuration file or option is invalid.
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificates, keys or a TLS configuration are unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// A peer sent something malformed, oversized or out of protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection failed.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The address.
        url: String,
        /// Why.
        reason: String,
    },
    /// The remote side refused the request.
    #[error("{0}")]
    Remote(String),
    /// The coordinator's database failed.
    #[error("state database: {0}")]
    Store(String),
    /// The job is invalid or failed.
    #[error(transparent)]
    Job(#[from] privet_job::JobError),
    /// The federated engine refused something.
    #[error(transparent)]
    Fl(#[from] privet_fl::FlError),
    /// Model construction, training or serialization failed.
    #[error(transparent)]
    Ml(#[from] privet_ml::MlError),
    /// The node's data is unusable.
    #[error(transparent)]
    Data(#[from] privet_data::DataError),
    /// A file could not be read or written, or a config file does not parse.
    #[error(transparent)]
    Files(#[from] privet_files::FileError),
    /// Certificates, keys or names are unusable.
    #[error(transparent)]
    Identity(#[from] privet_identity::IdentityError),
    /// The transport failed: TLS set-up, connection, frames.
    #[error(transparent)]
    Transport(#[from] privet_transport::TransportError),
    /// Secure aggregation could not be set up.
    #[error("secure aggregation: {0}")]
    SecAgg(#[from] privet_secagg::SecAggError),
}

impl From<rusqlite::Error> for NetError {
    fn from(e: rusqlite::Error) -> Self {
        NetError::Store(e.to_string())
    }
}

impl From<tonic::Status> for NetError {
    fn from(status: tonic::Status) -> Self {
        NetError::Remote(format!(
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
