//! The crate's error type.
//!
//! Categories follow rustls: what the *peer* did wrong ([`PsiError::PeerMisbehaved`],
//! [`PsiError::InvalidMessage`]), what the *local input* is wrong about ([`PsiError::Input`],
//! [`PsiError::Csv`]), what the *caller* did wrong ([`PsiError::Misuse`], [`PsiError::Config`]).
//! No message ever contains an identifier or a value from the data: input errors name the file,
//! the line and the column, never the cell.

use std::path::PathBuf;

/// Everything that can go wrong in a PSI / PJC session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PsiError {
    /// A configuration value is out of range or two settings contradict each other.
    #[error("invalid PSI configuration: {0}")]
    Config(String),

    /// The local input set is unusable (empty identifier, duplicate, value out of range...).
    #[error("{0}")]
    Input(String),

    /// A CSV file could not be used; names the file, the 1-based line (header = 1) and the
    /// column, never the cell's text.
    #[error("{}: {}{reason}", .path.display(), location(*.line, .column.as_deref()))]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1); 0 when the whole file is concerned.
        line: u64,
        /// Column name, when one cell is concerned.
        column: Option<String>,
        /// What is wrong (never the cell's content).
        reason: String,
    },

    /// A message could not be parsed: wrong version, oversized, malformed protobuf, lengths
    /// that do not match, non-canonical points.
    #[error("invalid message from the peer: {0}")]
    InvalidMessage(String),

    /// A well-formed message that breaks the protocol: out of order, contradicting the
    /// announced sizes, or a policy the local side refuses.
    #[error("the peer broke the protocol: {0}")]
    PeerMisbehaved(String),

    /// The peer ended the session and said why.
    #[error("the peer aborted the session: {0}")]
    PeerAborted(String),

    /// The decrypted sum lies outside the range that can be decrypted (the noise exceeded its
    /// stated tail bound, or the peer sent a ciphertext of something else).
    #[error("the encrypted sum could not be decrypted: {0}")]
    Decrypt(String),

    /// The API was used out of order (e.g. a message handed to a finished session).
    #[error("PSI API misuse: {0}")]
    Misuse(String),

    /// The operating system's random source failed.
    #[error("randomness unavailable: {0}")]
    Randomness(String),

    /// Differential-privacy calibration failed.
    #[error(transparent)]
    Dp(#[from] privet_dp::DpError),
}

fn location(line: u64, column: Option<&str>) -> String {
    match (line, column) {
        (0, None) => String::new(),
        (0, Some(c)) => format!("column `{c}`: "),
        (l, None) => format!("line {l}: "),
        (l, Some(c)) => format!("line {l}, column `{c}`: "),
    }
}

/// The crate's result type.
pub type Result<T, E = PsiError> = std::result::Result<T, E>;

impl PsiError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        PsiError::InvalidMessage(msg.into())
    }

    pub(crate) fn peer(msg: impl Into<String>) -> Self {
        PsiError::PeerMisbehaved(msg.into())
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        PsiError::Config(msg.into())
    }

    pub(crate) fn misuse(msg: impl Into<String>) -> Self {
        PsiError::Misuse(msg.into())
    }

    /// A short, fixed reason safe to tell the peer in an abort message (no internal details).
    pub fn peer_reason(&self) -> &'static str {
        match self {
            PsiError::InvalidMessage(_) => "invalid message",
            PsiError::PeerMisbehaved(_) => "protocol violation",
            PsiError::Config(_) | PsiError::Dp(_) => "session parameters refused",
            PsiError::PeerAborted(_) => "aborted",
            _ => "internal error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_error_names_file_line_and_column() {
        let e = PsiError::Csv {
            path: PathBuf::from("a.csv"),
            line: 7,
            column: Some("email".into()),
            reason: "the identifier is empty".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.csv: line 7, column `email`: the identifier is empty"
        );
        let e = PsiError::Csv {
            path: PathBuf::from("a.csv"),
            line: 0,
            column: None,
            reason: "too big".into(),
        };
        assert_eq!(e.to_string(), "a.csv: too big");
    }
}
