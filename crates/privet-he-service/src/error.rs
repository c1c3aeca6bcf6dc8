//! The crate's error type.

use thiserror::Error;

/// What can go wrong in encrypted inference.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HeServiceError {
    /// The model cannot be evaluated under CKKS (or its file is bad).
    #[error("model: {0}")]
    Model(String),
    /// A model or data file could not be read or parsed.
    #[error(transparent)]
    Ml(#[from] privet_ml::MlError),
    /// Bad configuration or command-line input.
    #[error("configuration: {0}")]
    Config(String),
    /// Unusable keys (wrong parameters, unreadable, malformed).
    #[error("keys: {0}")]
    Keys(String),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] privet_files::FileError),
    /// Homomorphic-encryption error (malformed ciphertext, level or parameter mismatch...).
    #[error(transparent)]
    He(#[from] privet_he::HeError),
    /// Connection, TLS or framing.
    #[error(transparent)]
    Transport(#[from] privet_transport::TransportError),
    /// The server refused a request (its reason).
    #[error("server refused: {0}")]
    Remote(String),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, HeServiceError>;
