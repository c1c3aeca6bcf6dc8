//! The crate's error type.

use std::path::PathBuf;

/// What can be wrong with names, certificates and keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A name is not usable as a party's name.
    #[error(
        "invalid name {name:?}: use 1-64 ASCII letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    BadName {
        /// The name, truncated to 80 characters.
        name: String,
    },
    /// A request that cannot be carried out as asked (e.g. a validity of 0 days).
    #[error("{0}")]
    Invalid(String),
    /// A certificate or key file is missing, unreadable, malformed or does not fit its use.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A certificate (e.g. offered by a peer) is unusable or refused.
    #[error("{0}")]
    Certificate(String),
    /// A file could not be written or read (permissions, disk full, a special file).
    #[error(transparent)]
    Files(#[from] privet_files::FileError),
}
