//! The crate's error type.

/// What can go wrong below a service: certificates, connections and frames.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Certificates or keys are unusable.
    #[error(transparent)]
    Identity(#[from] privet_identity::IdentityError),
    /// A TLS configuration could not be built from usable files.
    #[error("TLS: {0}")]
    Tls(String),
    /// A configuration section is invalid.
    #[error("{0}")]
    Config(String),
    /// The connection failed.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The address.
        url: String,
        /// Why.
        reason: String,
    },
    /// A peer sent frames that are malformed, oversized or out of order.
    #[error("protocol error: {0}")]
    Frame(String),
}
