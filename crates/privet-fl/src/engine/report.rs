//! What a round and a job report.

use crate::engine::Rejection;
use crate::{ClientId, RoundDetails};

/// What happened in one round.
///
/// For [`PlainAggregation`](crate::engine::PlainAggregation), `completed`, `dropped`,
/// `stragglers` and the clients of `rejected` are disjoint and together are `selected`. A
/// multi-stage protocol may count a client that dropped in a late stage as completed (e.g.
/// secure aggregation recovers its contribution).
#[derive(Clone, Debug, PartialEq)]
pub struct RoundReport {
    /// Round number.
    pub round: u32,
    /// Clients selected, sorted.
    pub selected: Vec<ClientId>,
    /// Clients whose contribution is in the aggregate, sorted (empty if the round failed).
    pub completed: Vec<ClientId>,
    /// Clients the runtime reported as dropped during the round, sorted.
    pub dropped: Vec<ClientId>,
    /// Clients that missed a stage deadline, sorted.
    pub stragglers: Vec<ClientId>,
    /// Selected clients excluded for a refused message, one entry per client, in order of refusal.
    pub rejected: Vec<Rejection>,
    /// Messages refused without consequence (late answers to earlier rounds, unselected
    /// senders): at most one entry per client.
    pub ignored: Vec<Rejection>,
    /// Total training examples of the completed clients (0 if the round failed).
    pub num_examples: u64,
    /// Example-weighted mean of the completed clients' reported loss (NaN if the round failed).
    pub train_loss: f32,
    /// Stages run (1 to the protocol's stage count).
    pub stages: u8,
    /// What the protocol and the aggregate transform report about the round, by name.
    pub details: RoundDetails,
}

/// How a round ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundOutcome {
    /// The global model was updated.
    Completed(RoundReport),
    /// The round failed (too few survivors, protocol abort, aggregation error); the global model
    /// is unchanged. If `job_aborted` is false, the runtime starts another round (with the next
    /// round number), otherwise the job is over ([`JobStatus::Failed`]).
    Failed {
        /// Round number.
        round: u32,
        /// Why.
        reason: String,
        /// What happened before the failure.
        report: RoundReport,
        /// The retry budget is spent and the job has failed.
        job_aborted: bool,
    },
}

impl RoundOutcome {
    /// The round's report.
    pub fn report(&self) -> &RoundReport {
        match self {
            RoundOutcome::Completed(report) | RoundOutcome::Failed { report, .. } => report,
        }
    }

    fn report_mut(&mut self) -> &mut RoundReport {
        match self {
            RoundOutcome::Completed(report) | RoundOutcome::Failed { report, .. } => report,
        }
    }

    /// The round's report with its details filled in.
    pub(crate) fn with_details(mut self, details: RoundDetails) -> Self {
        self.report_mut().details = details;
        self
    }
}

/// Where the whole job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum JobStatus {
    /// More rounds to run.
    Running,
    /// All rounds completed.
    Completed,
    /// Too many consecutive rounds failed.
    Failed {
        /// The last failed round.
        round: u32,
        /// Why it failed.
        reason: String,
    },
    /// The aggregate transform refused to start another round (e.g. the privacy budget would be
    /// exceeded); the rounds completed before stand.
    Stopped {
        /// The round that was not started.
        round: u32,
        /// Why.
        reason: String,
    },
}
