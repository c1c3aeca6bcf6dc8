//! What flows between the coordinator, the runtime and the clients.

use std::fmt;
use std::sync::Arc;

use crate::engine::RoundOutcome;
use crate::{ClientId, ClientParams, ClientTrainConfig, ClientUpdate};

/// A message from the coordinator to one client.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum ToClient {
    /// Train on `params` and answer with a [`FromClient::Update`].
    Fit {
        /// Round number.
        round: u32,
        /// The global model (shared by all recipients).
        params: Arc<[f32]>,
        /// Strategy instructions for local training.
        config: ClientTrainConfig,
        /// What the aggregate transform publishes to the round's clients (shared).
        extensions: Arc<ClientParams>,
    },
    /// An opaque stage message of a multi-stage aggregation protocol (e.g. secure aggregation).
    Protocol {
        /// Round number.
        round: u32,
        /// Stage within the round.
        stage: u8,
        /// Protocol-defined bytes.
        payload: Vec<u8>,
    },
}

impl ToClient {
    /// The round the message belongs to.
    pub fn round(&self) -> u32 {
        match self {
            ToClient::Fit { round, .. } | ToClient::Protocol { round, .. } => *round,
        }
    }
}

impl fmt::Debug for ToClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToClient::Fit {
                round,
                params,
                config,
                extensions,
            } => f
                .debug_struct("Fit")
                .field("round", round)
                .field("params_len", &params.len())
                .field("config", config)
                .field("extensions", extensions)
                .finish(),
            ToClient::Protocol {
                round,
                stage,
                payload,
            } => f
                .debug_struct("Protocol")
                .field("round", round)
                .field("stage", stage)
                .field("payload_len", &payload.len())
                .finish(),
        }
    }
}

/// A message from a client to the coordinator.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum FromClient {
    /// A plain (unprotected) update for the current stage of `round`.
    Update {
        /// Round number the update answers.
        round: u32,
        /// The update.
        update: ClientUpdate,
    },
    /// An opaque stage message of a multi-stage aggregation protocol.
    Protocol {
        /// Round number.
        round: u32,
        /// Stage within the round.
        stage: u8,
        /// Protocol-defined bytes.
        payload: Vec<u8>,
    },
}

impl FromClient {
    /// The round the message claims to answer.
    pub fn round(&self) -> u32 {
        match self {
            FromClient::Update { round, .. } | FromClient::Protocol { round, .. } => *round,
        }
    }

    /// The stage the message claims to answer (`None` for plain updates, which answer the
    /// current stage).
    pub fn stage(&self) -> Option<u8> {
        match self {
            FromClient::Update { .. } => None,
            FromClient::Protocol { stage, .. } => Some(*stage),
        }
    }
}

impl fmt::Debug for FromClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromClient::Update { round, update } => f
                .debug_struct("Update")
                .field("round", round)
                .field("update", update)
                .finish(),
            FromClient::Protocol {
                round,
                stage,
                payload,
            } => f
                .debug_struct("Protocol")
                .field("round", round)
                .field("stage", stage)
                .field("payload_len", &payload.len())
                .finish(),
        }
    }
}

/// Something that happened, reported by the runtime to the coordinator.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived from `from` (the runtime vouches for the sender's identity, e.g. mTLS).
    Received {
        /// Authenticated sender.
        from: ClientId,
        /// The message.
        msg: FromClient,
    },
    /// The client's connection is gone.
    Dropped {
        /// The client.
        client: ClientId,
    },
    /// A deadline armed by [`Action::StartDeadline`] fired.
    DeadlineExpired {
        /// Round of the deadline.
        round: u32,
        /// Stage of the deadline.
        stage: u8,
    },
}

/// Something the runtime must do for the coordinator.
///
/// Non-exhaustive: multi-stage protocols may need new kinds of actions.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Deliver `msg` to `to`.
    Send {
        /// Recipient.
        to: ClientId,
        /// Message.
        msg: ToClient,
    },
    /// A message from `to` was refused (the runtime may tell the client, log it, or disconnect).
    Reject {
        /// The sender of the refused message.
        to: ClientId,
        /// Why.
        reason: RejectReason,
    },
    /// Arm a timer for this stage and report [`Event::DeadlineExpired`] when it fires. A simulation
    /// fires it once every runnable client has answered. Stale deadlines are ignored by the
    /// engine, so the runtime never needs to cancel one.
    StartDeadline {
        /// Round.
        round: u32,
        /// Stage.
        stage: u8,
    },
    /// The round is over (completed or failed).
    RoundFinished(RoundOutcome),
}

/// Why a client message was refused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RejectReason {
    /// No round is in progress.
    NoRoundInProgress,
    /// The sender is not selected for the current round.
    NotSelected,
    /// The message answers an earlier round (a late answer; harmless).
    StaleRound {
        /// Current round.
        current: u32,
        /// Round in the message.
        found: u32,
    },
    /// The sender was already excluded from this round (dropped, straggler or refused).
    Excluded,
    /// The message claims a future round.
    WrongRound {
        /// Current round.
        expected: u32,
        /// Round in the message.
        found: u32,
    },
    /// The message is for another stage of the round.
    WrongStage {
        /// Current stage.
        expected: u8,
        /// Stage in the message.
        found: u8,
    },
    /// The sender already answered this stage.
    Duplicate,
    /// The update names another client than the authenticated sender.
    ClientMismatch {
        /// The client named in the update.
        claimed: ClientId,
    },
    /// The update does not have the global model's length.
    ShapeMismatch {
        /// Global model length.
        expected: usize,
        /// Update length.
        found: usize,
    },
    /// The update or its loss contains NaN or an infinity.
    NonFinite,
    /// The update reports zero training examples (weight zero).
    ZeroExamples,
    /// The protocol does not accept this kind of message at this stage.
    UnexpectedMessage,
    /// The aggregation protocol refused the message.
    Protocol(String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NoRoundInProgress => write!(f, "no round in progress"),
            RejectReason::NotSelected => write!(f, "client not selected for this round"),
            RejectReason::StaleRound { current, found } => {
                write!(
                    f,
                    "late message for round {found} (current round {current})"
                )
            }
            RejectReason::Excluded => write!(f, "client already excluded from this round"),
            RejectReason::WrongRound { expected, found } => {
                write!(f, "message for round {found}, expected round {expected}")
            }
            RejectReason::WrongStage { expected, found } => {
                write!(f, "message for stage {found}, expected stage {expected}")
            }
            RejectReason::Duplicate => write!(f, "duplicate message"),
            RejectReason::ClientMismatch { claimed } => {
                write!(f, "update claims to come from client {claimed}")
            }
            RejectReason::ShapeMismatch { expected, found } => {
                write!(f, "update has {found} parameters, expected {expected}")
            }
            RejectReason::NonFinite => write!(f, "update contains a non-finite value"),
            RejectReason::ZeroExamples => write!(f, "update reports zero training examples"),
            RejectReason::UnexpectedMessage => write!(f, "unexpected message kind for this stage"),
            RejectReason::Protocol(why) => write!(f, "protocol violation: {why}"),
        }
    }
}

/// A refused message, as listed in a [`RoundReport`](crate::engine::RoundReport).
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// The sender.
    pub client: ClientId,
    /// Why it was refused.
    pub reason: RejectReason,
}
