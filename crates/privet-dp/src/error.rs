//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong in `privet-dp`.
///
/// Grouped by cause: a parameter out of its domain (the caller's mistake, e.g. a command-line
/// value), an accounting question that has no finite answer inside the supported range, a
/// persisted ledger that does not parse or does not match, and the operating system's random
/// source failing.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum DpError {
    /// A parameter is outside its domain; the message names it, its domain and the value.
    #[error("invalid {name}: {reason} (got {value})")]
    InvalidParameter {
        /// The parameter's name as the user knows it (`q`, `sigma`, `delta`, ...).
        name: &'static str,
        /// The domain it must lie in, in words.
        reason: &'static str,
        /// The offending value, formatted.
        value: String,
    },
    /// Events with different neighbouring relations cannot be composed in one accountant:
    /// Poisson subsampling is analysed under add/remove-one, fixed-size sampling under
    /// replace-one.
    #[error(
        "cannot compose a {new} event with {existing} events: they use different neighbouring \
         relations"
    )]
    MixedNeighbouringRelations {
        /// The sampling scheme already recorded.
        existing: &'static str,
        /// The sampling scheme of the refused event.
        new: &'static str,
    },
    /// The PLD accountant has no analysis for this event (fixed-size sampling).
    #[error("the PLD accountant does not support {0}; use the RDP accountant")]
    UnsupportedByPld(&'static str),
    /// Noise calibration found no noise multiplier inside the searched range.
    #[error("no noise multiplier in [{lower}, {upper}] reaches epsilon {epsilon} at delta {delta}")]
    CalibrationOutOfRange {
        /// The target epsilon.
        epsilon: f64,
        /// The target delta.
        delta: f64,
        /// The smallest noise multiplier tried.
        lower: f64,
        /// The largest noise multiplier tried.
        upper: f64,
    },
    /// Recording an event would spend more than the budget allows.
    #[error("budget exceeded: epsilon would be {would_be} > {budget} at delta {delta}")]
    BudgetExceeded {
        /// Epsilon after the refused event.
        would_be: f64,
        /// The budget's epsilon.
        budget: f64,
        /// The budget's delta.
        delta: f64,
    },
    /// A persisted ledger could not be read.
    #[error("bad budget ledger: {0}")]
    BadLedger(String),
    /// A numerical routine failed (an internal error; please report it).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// The operating system's random source failed.
    #[error("operating-system randomness unavailable: {0}")]
    Randomness(String),
}

impl DpError {
    /// An [`DpError::InvalidParameter`] for `name` with `value`.
    pub(crate) fn invalid(name: &'static str, reason: &'static str, value: impl ToString) -> Self {
        DpError::InvalidParameter {
            name,
            reason,
            value: value.to_string(),
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, DpError>;
