//! The crate's error type.

use std::path::PathBuf;

use privet_identity::Name;

/// What can go wrong with agreements, proofs and logs. Every message is one line; errors about
/// a coordinator's log name the coordinator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file could not be read or written.
    #[error(transparent)]
    Files(#[from] privet_files::FileError),
    /// A certificate or key is unusable.
    #[error(transparent)]
    Identity(#[from] privet_identity::IdentityError),
    /// An agreement file is malformed or breaks a rule.
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Agreement {
        /// The file, when the agreement came from one.
        path: Option<PathBuf>,
        /// What is wrong (with the line and column where the TOML reader gives them).
        message: String,
    },
    /// A value given by a caller is out of range (a budget, a name, a job id).
    #[error("{0}")]
    Invalid(String),
    /// The agreement is not signed by every party, or a signature does not verify.
    #[error("{0}")]
    NotFullySigned(String),
    /// A key that is not any party's key was asked to sign.
    #[error("the key {key}... is not the key of any party of agreement {agreement}")]
    NotAParty {
        /// The agreement's id.
        agreement: Name,
        /// The first 16 hex characters of the key.
        key: String,
    },
    /// An amendment does not follow the version it claims to amend.
    #[error("{0}")]
    BadAmendment(String),
    /// A log file is malformed (with the line).
    #[error("{}line {line}: {message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    LogFile {
        /// The file, when the log came from one.
        path: Option<PathBuf>,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A tree head file is malformed.
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    HeadFile {
        /// The file, when the head came from one.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// A Merkle proof does not verify, or cannot be made for the sizes asked.
    #[error("{0}")]
    Proof(String),
    /// A tree head's signature does not verify under the coordinator's key.
    #[error("a tree head claiming to be signed by coordinator {coordinator} has a bad signature")]
    BadHeadSignature {
        /// The coordinator the head names.
        coordinator: Name,
    },
    /// A head names another coordinator than the one expected.
    #[error("expected a tree head of coordinator {expected}, got one of {got}")]
    WrongCoordinator {
        /// The coordinator expected.
        expected: Name,
        /// The coordinator the head names.
        got: Name,
    },
    /// A signed head covers more entries than the log has: entries were removed.
    #[error(
        "coordinator {coordinator} truncated its log: it signed a head of {signed} entries, the log now has {now}"
    )]
    Truncated {
        /// The coordinator.
        coordinator: Name,
        /// The size it signed earlier.
        signed: u64,
        /// The size it shows now.
        now: u64,
    },
    /// Two heads of the same size with different roots: a fork or a split view.
    #[error(
        "coordinator {coordinator} forked its log: two signed heads of {size} entries have different roots ({a} and {b})"
    )]
    Forked {
        /// The coordinator.
        coordinator: Name,
        /// The size of both heads.
        size: u64,
        /// One root (hex).
        a: String,
        /// The other root (hex).
        b: String,
    },
    /// A signed head's root does not match the entries it covers.
    #[error(
        "coordinator {coordinator}'s log does not match the head it signed at {size} entries: entries were changed, reordered, inserted or removed"
    )]
    HeadMismatch {
        /// The coordinator.
        coordinator: Name,
        /// The head's size.
        size: u64,
    },
    /// An entry carries another index than its position.
    #[error(
        "coordinator {coordinator}'s log is out of order: entry {position} of the file carries index {index} (entries were reordered, removed or inserted)"
    )]
    OutOfOrder {
        /// The coordinator.
        coordinator: Name,
        /// The position in the file (0-based).
        position: u64,
        /// The index the entry carries.
        index: u64,
    },
    /// A log has no signed head at all.
    #[error("coordinator {coordinator}'s log has no signed tree head: nothing vouches for it")]
    NoHead {
        /// The coordinator.
        coordinator: Name,
    },
    /// The key a log file names is not the key the verifier trusts for its coordinator.
    #[error(
        "the log says coordinator {coordinator} signs with key {claimed}..., but its key is {trusted}... (from the agreement or its certificate)"
    )]
    UntrustedKey {
        /// The coordinator.
        coordinator: Name,
        /// The first 16 hex characters of the key the file names.
        claimed: String,
        /// The first 16 hex characters of the trusted key.
        trusted: String,
    },
    /// A later head is not an extension of an earlier one: history was rewritten.
    #[error(
        "coordinator {coordinator} rewrote its log: the first {old_size} entries differ from those it signed earlier (its head of {new_size} entries is not consistent with its head of {old_size})"
    )]
    Rewritten {
        /// The coordinator.
        coordinator: Name,
        /// The earlier size.
        old_size: u64,
        /// The later size.
        new_size: u64,
    },
}

impl AuditError {
    pub(crate) fn agreement(message: impl Into<String>) -> AuditError {
        AuditError::Agreement {
            path: None,
            message: message.into(),
        }
    }

    pub(crate) fn with_path(self, p: &std::path::Path) -> AuditError {
        match self {
            AuditError::Agreement {
                path: None,
                message,
            } => AuditError::Agreement {
                path: Some(p.to_path_buf()),
                message,
            },
            AuditError::LogFile {
                path: None,
                line,
                message,
            } => AuditError::LogFile {
                path: Some(p.to_path_buf()),
                line,
                message,
            },
            AuditError::HeadFile {
                path: None,
                message,
            } => AuditError::HeadFile {
                path: Some(p.to_path_buf()),
                message,
            },
            other => other,
        }
    }

    /// Whether the error says that a coordinator's log history was truncated, forked or
    /// rewritten, or carries a bad signature (as opposed to a malformed file).
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            AuditError::Truncated { .. }
                | AuditError::Forked { .. }
                | AuditError::Rewritten { .. }
                | AuditError::BadHeadSignature { .. }
                | AuditError::WrongCoordinator { .. }
                | AuditError::HeadMismatch { .. }
                | AuditError::OutOfOrder { .. }
                | AuditError::NoHead { .. }
                | AuditError::UntrustedKey { .. }
        )
    }
}
