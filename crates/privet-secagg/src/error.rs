//! The crate's single error type.

use privet_fl::{ClientId, FlError};

/// Everything that can go wrong in secure aggregation.
///
/// Categories: configuration caught at construction (`InvalidConfig`); messages that cannot be
/// parsed (`Malformed`) or do not belong where they arrived (`WrongRound`, `WrongStage`,
/// `UnexpectedMessage`); a peer that misbehaved (`UnknownClient`, `BadSignature`,
/// `BadPublicKey`, `Decryption`, `Protocol`); rounds that cannot be unmasked
/// (`NotEnoughShares`, `InconsistentShares`); and local failures (`Randomness`, `Crypto`,
/// `Training`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SecAggError {
    /// A configuration value is out of range.
    #[error("invalid secure aggregation configuration: {0}")]
    InvalidConfig(String),
    /// A payload could not be parsed (bad version, kind, length or value).
    #[error("malformed secure aggregation message: {0}")]
    Malformed(String),
    /// A message for another round than the one in progress (e.g. a replay).
    #[error("message for round {found}, expected round {expected}")]
    WrongRound {
        /// The round in progress.
        expected: u32,
        /// The round in the message.
        found: u32,
    },
    /// A message for another stage than the one in progress.
    #[error("message for stage {found}, expected stage {expected}")]
    WrongStage {
        /// The stage in progress.
        expected: u8,
        /// The stage in the message.
        found: u8,
    },
    /// A message that makes no sense in the current state (e.g. nothing in progress, or the
    /// round already finished).
    #[error("unexpected message: {0}")]
    UnexpectedMessage(String),
    /// A client that the key directory does not know.
    #[error("client {0} is not in the key directory")]
    UnknownClient(ClientId),
    /// A key advertisement whose signature does not verify.
    #[error("bad signature on the keys of client {0}")]
    BadSignature(ClientId),
    /// An X25519 public key that is off the curve or of small order.
    #[error("invalid public key from client {0}")]
    BadPublicKey(ClientId),
    /// Shares that do not decrypt (tampered, or bound to another round or pair).
    #[error("shares from client {0} do not decrypt")]
    Decryption(ClientId),
    /// A message that is well formed but violates the protocol (inconsistent lists, a request
    /// for both secrets of one client, ...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Too few shares survive to rebuild a client's secret: the round cannot be unmasked.
    #[error("client {client}: {have} share(s) available, {need} needed")]
    NotEnoughShares {
        /// The client whose secret is needed.
        client: ClientId,
        /// Shares available.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// A rebuilt secret does not match its public commitment (a holder sent a wrong share).
    #[error("the shares of client {0} are inconsistent")]
    InconsistentShares(ClientId),
    /// The operating system's random number generator failed.
    #[error("randomness unavailable: {0}")]
    Randomness(String),
    /// A cryptographic primitive failed unexpectedly.
    #[error("cryptographic failure: {0}")]
    Crypto(String),
    /// Local training or update computation failed on the client.
    #[error("local update failed: {0}")]
    Training(String),
}

impl From<SecAggError> for FlError {
    fn from(e: SecAggError) -> Self {
        match e {
            SecAggError::InvalidConfig(msg) => FlError::InvalidConfig(msg),
            SecAggError::Training(msg) => FlError::Training(msg),
            other => FlError::Protocol(other.to_string()),
        }
    }
}
