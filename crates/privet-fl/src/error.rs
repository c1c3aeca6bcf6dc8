//! The crate's single error type.

use crate::ClientId;

/// Everything that can go wrong in the federated-learning core.
///
/// Categories: bad client data (`ShapeMismatch`, `NonFinite`), rounds that cannot be aggregated
/// (`EmptyRound`, `ZeroWeight`, `NotEnoughUpdates`, `NotEnoughClients`), configuration errors
/// caught at construction (`InvalidConfig`, `Unsupported`), protocol violations (`Protocol`) and
/// API misuse by the runtime driving the engine (`InvalidState`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FlError {
    /// There was nothing to aggregate.
    #[error("no client updates to aggregate")]
    EmptyRound,
    /// A client's update does not have the length of the global model.
    #[error("client {client}: update has {found} parameters, expected {expected}")]
    ShapeMismatch {
        /// The client that sent the update.
        client: ClientId,
        /// Length of the global model.
        expected: usize,
        /// Length of the update.
        found: usize,
    },
    /// An aggregate (not attributable to one client) has the wrong length.
    #[error("aggregate has {found} parameters, expected {expected}")]
    LengthMismatch {
        /// Length of the global model.
        expected: usize,
        /// Length of the aggregate.
        found: usize,
    },
    /// A client's update contains NaN or an infinity.
    #[error("client {client}: update contains a non-finite value")]
    NonFinite {
        /// The client that sent the update.
        client: ClientId,
    },
    /// The aggregate is not finite (e.g. a decoded secure-aggregation sum).
    #[error("aggregate contains a non-finite value")]
    NonFiniteAggregate,
    /// The updates carry a total weight of zero, so no weighted mean exists.
    #[error("total weight of the round is zero")]
    ZeroWeight,
    /// A strategy needs more updates than it was given (e.g. Krum needs n > 2f + 2).
    #[error("{strategy} needs at least {needed} updates, got {found}")]
    NotEnoughUpdates {
        /// Name of the strategy.
        strategy: &'static str,
        /// Minimum number of updates.
        needed: usize,
        /// Number of updates received.
        found: usize,
    },
    /// Fewer clients are available than a round needs.
    #[error("only {available} clients available, at least {required} required")]
    NotEnoughClients {
        /// Distinct clients available.
        available: usize,
        /// Clients required.
        required: usize,
    },
    /// A parameter is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A combination of components that cannot work together, e.g. a robust strategy that needs
    /// individual updates behind secure aggregation, which only reveals their sum.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A message that violates the round protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The runtime called the engine in a state where the call makes no sense (API misuse).
    #[error("invalid engine state: {0}")]
    InvalidState(String),
    /// Local training failed on the client.
    #[error("local training failed: {0}")]
    Training(String),
}
