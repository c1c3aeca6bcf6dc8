//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong in `privet-he`.
///
/// Categories: parameters that are refused ([`HeError::InsecureParameters`],
/// [`HeError::InvalidParameters`]), misuse of the API on well-formed objects (level, scale, key
/// and slot mismatches), and malformed input from outside ([`HeError::Decode`]).
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum HeError {
    /// The parameters exceed the HomomorphicEncryption.org table for 128-bit security.
    #[error(
        "parameters refused: N = {n} with log2(QP) = {log_qp} bits exceeds the {max_log_qp}-bit \
         limit for 128-bit security (HomomorphicEncryption.org standard); use the hazmat \
         constructor to opt out"
    )]
    InsecureParameters {
        /// Ring degree.
        n: usize,
        /// Total bit size of all moduli, special primes included.
        log_qp: u32,
        /// The table's limit for this degree (0 when the degree is not in the table).
        max_log_qp: u32,
    },
    /// The parameters are malformed (not a power of two, bad prime sizes, unknown name...).
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// Two operands are at different levels (call `match_levels` or `mod_drop_to` first).
    #[error("level mismatch: {left} vs {right}")]
    LevelMismatch {
        /// Level of the left operand.
        left: usize,
        /// Level of the right operand.
        right: usize,
    },
    /// Two operands carry scales that differ by more than the tolerance.
    #[error("scale mismatch: 2^{left:.3} vs 2^{right:.3}")]
    ScaleMismatch {
        /// log2 of the left operand's scale.
        left: f64,
        /// log2 of the right operand's scale.
        right: f64,
    },
    /// The ciphertext has no level left to rescale or multiply into.
    #[error("no level left: the ciphertext is at level {0}")]
    OutOfLevels(usize),
    /// The ciphertext must be relinearized (size 2) for this operation.
    #[error("ciphertext has {0} components; relinearize first")]
    NotRelinearized(usize),
    /// A needed evaluation key is missing.
    #[error("missing evaluation key: {0}")]
    MissingKey(String),
    /// More values than slots.
    #[error("{given} values do not fit into {slots} slots")]
    TooManyValues {
        /// Values given.
        given: usize,
        /// Slots available.
        slots: usize,
    },
    /// A value times the scale does not fit the modulus (or is not finite).
    #[error("value out of range for encoding: {0}")]
    ValueOutOfRange(String),
    /// Operands come from different parameter sets.
    #[error("operands belong to different parameter sets")]
    ParameterMismatch,
    /// A shape (matrix, vector, polynomial) does not fit the requested operation.
    #[error("shape: {0}")]
    Shape(String),
    /// Bytes from outside could not be decoded.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
}

/// Why bytes from outside were refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes do not start with privet-he's magic number.
    #[error("not a privet-he object (bad magic)")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u16),
    /// The object is of another kind than expected (e.g. a key where a ciphertext was expected).
    #[error("expected a {expected}, found a {found}")]
    WrongKind {
        /// What the caller asked for.
        expected: &'static str,
        /// What the bytes say.
        found: &'static str,
    },
    /// The object was made under other parameters.
    #[error("made under other parameters (fingerprint mismatch)")]
    WrongParameters,
    /// The object's level is not valid for these parameters or not the one expected.
    #[error("invalid level {0}")]
    WrongLevel(usize),
    /// The input is larger than the configured limit.
    #[error("{size} bytes exceed the limit of {limit}")]
    TooLarge {
        /// Bytes offered.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The input ended early.
    #[error("truncated input")]
    Truncated,
    /// Bytes left over after the object.
    #[error("{0} trailing bytes after the object")]
    TrailingBytes(usize),
    /// A field has an impossible value.
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, HeError>;
