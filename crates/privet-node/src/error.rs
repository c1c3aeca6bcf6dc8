//! The crate's error type.

/// Everything that can stop a node. Each variant keeps its source, so the binary maps it to the
/// right exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is invalid (a bad value, a certificate of the wrong role or name).
    #[error("{0}")]
    Config(String),
    /// A configuration file cannot be read or parsed.
    #[error(transparent)]
    Files(#[from] privet_files::FileError),
    /// Certificates or keys are unusable.
    #[error(transparent)]
    Identity(#[from] privet_identity::IdentityError),
    /// TLS set-up, the connection or the frames of the session failed.
    #[error(transparent)]
    Transport(#[from] privet_transport::TransportError),
    /// An agreement file, the privacy ledger or a head file is unusable.
    #[error(transparent)]
    Agreement(#[from] privet_audit::AuditError),
    /// The coordinator's audit log is inconsistent with what this node saw (fatal: the node
    /// stops rather than work with a coordinator that rewrote its history).
    #[error("audit log: {0}")]
    Audit(String),
    /// This node refuses a job under its copy of the job's agreement or its local policy.
    #[error("{0}")]
    Refusal(crate::audit::NodeRefusal),
    /// The coordinator refused this node (fatal: retrying would not help).
    #[error("refused by the coordinator: {0}")]
    Refused(String),
    /// The session ended in a way the node cannot continue (transport failure mid-stream).
    #[error("session: {0}")]
    Session(String),
    /// A message from the coordinator is malformed.
    #[error(transparent)]
    Wire(#[from] privet_wire::WireError),
    /// A job sent by the coordinator is invalid.
    #[error(transparent)]
    Job(#[from] privet_job::JobError),
    /// The node's data is unusable.
    #[error(transparent)]
    Data(#[from] privet_data::DataError),
    /// A model could not be built.
    #[error(transparent)]
    Ml(#[from] privet_ml::MlError),
    /// The round engine's client side failed.
    #[error(transparent)]
    Fl(#[from] privet_fl::FlError),
}
