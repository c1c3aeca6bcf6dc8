//! The federated round as a sans-IO state machine.
//!
//! The [`Coordinator`] never touches a socket, thread or clock. A runtime (the in-process
//! simulation, or a network service) drives it:
//!
//! 1. [`Coordinator::start_round`] with the clients available now: the coordinator samples the
//!    round's clients and returns [`Action`]s (messages to send, a deadline to arm).
//! 2. [`Coordinator::handle`] for every [`Event`] (a message arrived, a client dropped, a
//!    deadline fired) returns more actions, and eventually [`Action::RoundFinished`].
//! 3. Repeat until [`Coordinator::is_finished`].
//!
//! A round is a sequence of stages (message exchanges) run by an [`AggregationProtocol`]:
//! [`PlainAggregation`] has one (send the model, collect updates); secure aggregation plugs in
//! with its own stages, revealing only a [`WeightedSum`].
//!
//! # Rules
//! - A stage ends when every participant has answered, dropped or been refused, or when its
//!   deadline fires; participants that have not answered by then are stragglers. Dropped,
//!   refused and straggling clients are out for the rest of the round.
//! - Client messages are checked before use: an [`FromClient::Update`] must name its sender, have
//!   the global model's length, be finite (delta and loss) and report at least one example. A
//!   message for a future round, another stage, or a second answer to the same stage gets the
//!   client excluded from the round ([`RoundReport::rejected`]). Late answers to earlier rounds
//!   and messages from unselected clients are refused without consequence
//!   ([`RoundReport::ignored`], once per client); messages from clients already excluded are
//!   refused and not counted again. Every refused message yields an [`Action::Reject`]. A
//!   misbehaving client is never an `Err` of the engine.
//! - If fewer than [`EngineConfig::min_clients`] remain at the end of any stage, or the protocol
//!   aborts, or aggregation fails, the round **fails**: the global model is unchanged.
//! - **A failed round consumes its round number** and the next [`Coordinator::start_round`]
//!   retries with the next number (fresh sample, fresh message and deadline identity, so late
//!   messages and stale timers of the failed attempt cannot be confused with the retry).
//!   The job completes after [`EngineConfig::rounds`] *completed* rounds and fails after more
//!   than [`EngineConfig::max_retries`] consecutive failed rounds.
//! - Strategy/protocol compatibility is checked at construction: a strategy that needs individual
//!   updates behind a protocol that reveals only their sum is [`FlError::Unsupported`].
//! - For [`Requirement::Sum`] strategies the aggregate transform (central DP noise, adaptive
//!   clipping) runs on the weighted sum before aggregation, also under plain aggregation. It may
//!   declare extra coordinates that clients append to their deltas (updates then have
//!   `model_len + extra` entries), ask for unit weights (every contribution counts once, whatever
//!   example count it reports) and refuse to start a round ([`Admission::Stop`], e.g. a spent
//!   privacy budget), which ends the job with [`JobStatus::Stopped`].

mod client;
mod messages;
mod protocol;
mod report;

use std::collections::HashSet;
use std::sync::Arc;

pub use client::{
    ClientProtocol, LocalTrainer, PlainClient, all_finite, client_respond, compute_update,
};
pub use messages::{Action, Event, FromClient, RejectReason, Rejection, ToClient};
pub use protocol::{
    AggregationProtocol, PlainAggregation, ProtocolOutput, StageContext, StageOutcome, SumOutput,
};
pub use report::{JobStatus, RoundOutcome, RoundReport};

use crate::{
    Admission, AggregateInput, AggregateTransform, ClientId, ClientParams, ClientSampler,
    ClientUpdate, FlError, Requirement, RoundDetails, Strategy, WeightedSum, weighted_sum,
};

/// Configuration of a federated job.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Number of rounds that must complete (at least 1).
    pub rounds: u32,
    /// Client selection. Its `min_clients` is raised to [`Self::min_clients`] if lower.
    pub sampler: ClientSampler,
    /// Minimum number of contributions for a round to count (at least 1).
    pub min_clients: usize,
    /// Consecutive failed rounds that are retried before the job fails.
    pub max_retries: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Expected to answer the current stage.
    Waiting,
    /// Answered the current stage.
    Answered,
    Dropped,
    Straggler,
    Rejected,
}

impl Slot {
    fn is_out(self) -> bool {
        matches!(self, Slot::Dropped | Slot::Straggler | Slot::Rejected)
    }
}

#[derive(Debug)]
struct RoundState {
    round: u32,
    stage: u8,
    /// Sorted ascending; `slots` is parallel to it.
    selected: Vec<ClientId>,
    slots: Vec<Slot>,
    /// Participants of the current stage, sorted.
    participants: Vec<ClientId>,
    /// Participants still `Waiting`.
    pending: usize,
    rejected: Vec<Rejection>,
    ignored: Vec<Rejection>,
    ignored_clients: HashSet<ClientId>,
}

impl RoundState {
    /// What the aggregation protocol sees of the current stage.
    fn context(&self, model_len: usize) -> StageContext<'_> {
        StageContext {
            round: self.round,
            stage: self.stage,
            model_len,
            selected: &self.selected,
            participants: &self.participants,
        }
    }

    fn ignore(&mut self, client: ClientId, reason: RejectReason, actions: &mut Vec<Action>) {
        if self.ignored_clients.insert(client) {
            self.ignored.push(Rejection {
                client,
                reason: reason.clone(),
            });
        }
        actions.push(Action::Reject { to: client, reason });
    }

    /// Excludes `selected[idx]`; returns whether the stage has no one left to wait for.
    fn exclude(&mut self, idx: usize, reason: RejectReason, actions: &mut Vec<Action>) -> bool {
        let client = self.selected[idx];
        if self.slots[idx] == Slot::Waiting {
            self.pending -= 1;
        }
        self.slots[idx] = Slot::Rejected;
        self.rejected.push(Rejection {
            client,
            reason: reason.clone(),
        });
        actions.push(Action::Reject { to: client, reason });
        self.pending == 0
    }

    fn with_slot(&self, slot: Slot) -> Vec<ClientId> {
        self.selected
            .iter()
            .zip(&self.slots)
            .filter(|&(_, &s)| s == slot)
            .map(|(&c, _)| c)
            .collect()
    }

    fn report(self, completed: Vec<ClientId>, num_examples: u64, train_loss: f32) -> RoundReport {
        RoundReport {
            round: self.round,
            dropped: self.with_slot(Slot::Dropped),
            stragglers: self.with_slot(Slot::Straggler),
            selected: self.selected,
            completed,
            rejected: self.rejected,
            ignored: self.ignored,
            num_examples,
            train_loss,
            stages: self.stage + 1,
            details: RoundDetails::new(),
        }
    }
}

#[derive(Debug)]
enum Phase {
    Idle,
    InRound(Box<RoundState>),
}

/// What the end of a stage leads to, decided while the round state is borrowed.
enum StageEnd {
    Continue,
    Complete(ProtocolOutput),
    Fail(String),
}

/// A coordinator's state between rounds (see [`Coordinator::checkpoint`]).
#[derive(Clone, PartialEq)]
pub struct Checkpoint {
    /// The last round number used (completed or failed).
    pub round: u32,
    /// Rounds completed.
    pub completed_rounds: u32,
    /// Failed rounds since the last completed one.
    pub consecutive_failures: u32,
    /// The global model.
    pub global: Vec<f32>,
    /// The strategy's named state vectors ([`Strategy::state`]).
    pub strategy_state: Vec<(String, Vec<f64>)>,
    /// The aggregate transform's state ([`AggregateTransform::state`], e.g. DP-FedAvg's privacy
    /// ledger), in the transform's own versioned format; `None` without a stateful transform.
    pub transform_state: Option<String>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("round", &self.round)
            .field("completed_rounds", &self.completed_rounds)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("global_len", &self.global.len())
            .field(
                "strategy_state",
                &self
                    .strategy_state
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .field(
                "transform_state_len",
                &self.transform_state.as_ref().map(String::len),
            )
            .finish()
    }
}

/// The coordinator of a federated job (see the [module documentation](self)).
#[derive(Debug)]
pub struct Coordinator {
    config: EngineConfig,
    strategy: Box<dyn Strategy>,
    protocol: Box<dyn AggregationProtocol>,
    aggregate_transform: Option<Box<dyn AggregateTransform>>,
    /// Transform state from [`Coordinator::resume`], waiting for the transform to be attached.
    pending_transform_state: Option<String>,
    global: Vec<f32>,
    round: u32,
    completed_rounds: u32,
    consecutive_failures: u32,
    phase: Phase,
    status: JobStatus,
    ignored_outside_rounds: u64,
}

impl Coordinator {
    /// A coordinator starting from the global model `initial`.
    ///
    /// Fails with [`FlError::InvalidConfig`] for bad parameters or an empty or non-finite model,
    /// and with [`FlError::Unsupported`] if `strategy` needs individual updates but `protocol`
    /// reveals only their sum.
    pub fn new(
        config: EngineConfig,
        strategy: Box<dyn Strategy>,
        protocol: Box<dyn AggregationProtocol>,
        initial: Vec<f32>,
    ) -> Result<Self, FlError> {
        if config.rounds == 0 {
            return Err(FlError::InvalidConfig("rounds must be at least 1".into()));
        }
        if config.min_clients == 0 {
            return Err(FlError::InvalidConfig(
                "min_clients must be at least 1".into(),
            ));
        }
        config.sampler.validate()?;
        if protocol.stages() == 0 {
            return Err(FlError::InvalidConfig(format!(
                "protocol {} declares no stages",
                protocol.name()
            )));
        }
        if initial.is_empty() {
            return Err(FlError::InvalidConfig("the initial model is empty".into()));
        }
        if initial.iter().any(|x| !x.is_finite()) {
            return Err(FlError::InvalidConfig(
                "the initial model contains a non-finite value".into(),
            ));
        }
        if strategy.requirement() == Requirement::Individual
            && protocol.reveals() == Requirement::Sum
        {
            return Err(FlError::Unsupported(format!(
                "strategy {} needs individual updates but protocol {} reveals only their sum",
                strategy.name(),
                protocol.name()
            )));
        }
        Ok(Coordinator {
            config,
            strategy,
            protocol,
            aggregate_transform: None,
            pending_transform_state: None,
            global: initial,
            round: 0,
            completed_rounds: 0,
            consecutive_failures: 0,
            phase: Phase::Idle,
            status: JobStatus::Running,
            ignored_outside_rounds: 0,
        })
    }

    /// Adds a transform applied to the weighted sum before aggregation (the hook for central DP).
    ///
    /// Only [`Requirement::Sum`] strategies aggregate a sum: others give
    /// [`FlError::Unsupported`]. On a coordinator [`resume`](Self::resume)d from a checkpoint, the
    /// transform's state saved there is restored into it; a stateful transform (one whose
    /// [`AggregateTransform::state`] is `Some`) attached after rounds have run, to a checkpoint
    /// that holds no state for it, is refused ([`FlError::InvalidState`]): resuming a DP job
    /// without its privacy ledger would forget the budget already spent.
    pub fn with_aggregate_transform(
        mut self,
        mut transform: Box<dyn AggregateTransform>,
    ) -> Result<Self, FlError> {
        if self.strategy.requirement() != Requirement::Sum {
            return Err(FlError::Unsupported(format!(
                "strategy {} aggregates individual updates, so an aggregate transform cannot \
                 apply",
                self.strategy.name()
            )));
        }
        match self.pending_transform_state.take() {
            Some(state) => transform.restore_state(&state)?,
            None if self.round > 0 && transform.state().is_some() => {
                return Err(FlError::InvalidState(format!(
                    "resuming after round {} with a stateful aggregate transform, but the \
                     checkpoint holds no state for it",
                    self.round
                )));
            }
            None => {}
        }
        self.aggregate_transform = Some(transform);
        Ok(self)
    }

    /// The length of a client's update: the model's, plus the aggregate transform's extra
    /// coordinates.
    pub fn update_len(&self) -> usize {
        self.global.len()
            + self
                .aggregate_transform
                .as_ref()
                .map_or(0, |t| t.extra_coordinates())
    }

    fn unit_weights(&self) -> bool {
        self.aggregate_transform
            .as_ref()
            .is_some_and(|t| t.unit_weights())
    }

    /// What must be persisted to [`resume`](Self::resume) this job after a restart. Taken
    /// between rounds (after [`Action::RoundFinished`]), it captures every finished round; taken
    /// during a round, the round in progress is lost and its number is not reused.
    pub fn checkpoint(&self) -> Checkpoint {
        let strategy_state: Vec<(String, Vec<f64>)> = self
            .strategy
            .state()
            .into_iter()
            .map(|(name, values)| (name.to_string(), values))
            .collect();
        let transform_state = match &self.aggregate_transform {
            Some(t) => t.state(),
            None => self.pending_transform_state.clone(),
        };
        Checkpoint {
            round: self.round,
            completed_rounds: self.completed_rounds,
            consecutive_failures: self.consecutive_failures,
            global: self.global.clone(),
            strategy_state,
            transform_state,
        }
    }

    /// A coordinator that continues a job from a [`checkpoint`](Self::checkpoint): the next
    /// round gets the number after `checkpoint.round`, so messages of a round that was in
    /// progress before the restart are refused as stale and never counted.
    pub fn resume(
        config: EngineConfig,
        mut strategy: Box<dyn Strategy>,
        protocol: Box<dyn AggregationProtocol>,
        checkpoint: Checkpoint,
    ) -> Result<Self, FlError> {
        if checkpoint.completed_rounds > checkpoint.round {
            return Err(FlError::InvalidConfig(format!(
                "checkpoint claims {} completed rounds after only {} rounds",
                checkpoint.completed_rounds, checkpoint.round
            )));
        }
        strategy.restore_state(checkpoint.strategy_state)?;
        let mut coordinator = Coordinator::new(config, strategy, protocol, checkpoint.global)?;
        coordinator.pending_transform_state = checkpoint.transform_state;
        coordinator.round = checkpoint.round;
        coordinator.completed_rounds = checkpoint.completed_rounds;
        coordinator.consecutive_failures = checkpoint.consecutive_failures;
        if coordinator.completed_rounds >= coordinator.config.rounds {
            coordinator.status = JobStatus::Completed;
        }
        Ok(coordinator)
    }

    /// The current global model.
    pub fn global(&self) -> &[f32] {
        &self.global
    }

    /// Consumes the coordinator, returning the global model.
    pub fn into_global(self) -> Vec<f32> {
        self.global
    }

    /// The number of the current or last round (0 before the first).
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Rounds completed so far.
    pub fn completed_rounds(&self) -> u32 {
        self.completed_rounds
    }

    /// The current stage, if a round is in progress: `(round, stage)`.
    pub fn current_stage(&self) -> Option<(u32, u8)> {
        match &self.phase {
            Phase::Idle => None,
            Phase::InRound(rs) => Some((rs.round, rs.stage)),
        }
    }

    /// The clients selected for the round in progress.
    pub fn current_selection(&self) -> Option<&[ClientId]> {
        match &self.phase {
            Phase::Idle => None,
            Phase::InRound(rs) => Some(&rs.selected),
        }
    }

    /// Where the job stands.
    pub fn status(&self) -> &JobStatus {
        &self.status
    }

    /// Whether the job is over (completed or failed).
    pub fn is_finished(&self) -> bool {
        self.status != JobStatus::Running
    }

    /// The strategy's name.
    pub fn strategy_name(&self) -> &'static str {
        self.strategy.name()
    }

    /// The protocol's name.
    pub fn protocol_name(&self) -> &'static str {
        self.protocol.name()
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Messages refused while no round was in progress.
    pub fn ignored_outside_rounds(&self) -> u64 {
        self.ignored_outside_rounds
    }

    /// Starts the next round among `available` clients: samples them and returns the stage-0
    /// messages and deadline.
    ///
    /// If the aggregate transform refuses the round ([`Admission::Stop`], e.g. the privacy
    /// budget would be exceeded), no round starts, no round number is used, the job is
    /// [`JobStatus::Stopped`] and the returned list is empty.
    ///
    /// Errors (state unchanged, no round number consumed): [`FlError::InvalidState`] if the job is
    /// finished or a round is in progress, or if the coordinator was resumed from a checkpoint
    /// that holds an aggregate transform's state but no transform was attached;
    /// [`FlError::NotEnoughClients`] if too few are available.
    ///
    /// With Poisson sampling ([`SampleSize::Poisson`](crate::SampleSize::Poisson)) the draw can
    /// hold fewer clients than the round needs (`min_clients`, at least 1). Such a round is
    /// skipped: the aggregate transform's [`skip_round`](AggregateTransform::skip_round) is
    /// called (a privacy accountant charges the draw), the round number is used (the next
    /// number draws anew), nothing is sent, and the only action is a
    /// [`RoundOutcome::Failed`], which counts towards `max_retries` like any failed round.
    pub fn start_round(&mut self, available: &[ClientId]) -> Result<Vec<Action>, FlError> {
        if self.is_finished() {
            return Err(FlError::InvalidState("the job is finished".into()));
        }
        if self.pending_transform_state.is_some() {
            return Err(FlError::InvalidState(
                "the checkpoint holds an aggregate transform's state (e.g. a privacy ledger) but \
                 no transform is attached"
                    .into(),
            ));
        }
        if let Phase::InRound(rs) = &self.phase {
            return Err(FlError::InvalidState(format!(
                "round {} is still in progress",
                rs.round
            )));
        }
        let round = self
            .round
            .checked_add(1)
            .ok_or_else(|| FlError::InvalidState("round counter exhausted".into()))?;
        let sampler = ClientSampler {
            min_clients: self.config.sampler.min_clients.max(self.config.min_clients),
            ..self.config.sampler
        };
        let selected = sampler.sample(round, available)?;
        let required = sampler.min_clients.max(1);
        if selected.len() < required {
            // Only a Poisson draw can be this small: skip the round under its number (a new
            // number draws anew), after the accountant has charged the draw.
            if let Some(transform) = &mut self.aggregate_transform {
                let distinct = available.iter().collect::<HashSet<_>>().len();
                if let Admission::Stop(reason) =
                    transform.skip_round(round, selected.len(), distinct)?
                {
                    self.status = JobStatus::Stopped { round, reason };
                    return Ok(Vec::new());
                }
            }
            self.round = round;
            let reason = format!(
                "Poisson sampling drew {} client(s), fewer than the {required} a round needs: \
                 round skipped",
                selected.len()
            );
            let n = selected.len();
            let rs = RoundState {
                round,
                stage: 0,
                participants: selected.clone(),
                selected,
                slots: vec![Slot::Waiting; n],
                pending: n,
                rejected: Vec::new(),
                ignored: Vec::new(),
                ignored_clients: HashSet::new(),
            };
            let mut actions = Vec::new();
            self.finish_failed(rs, reason, &mut actions);
            return Ok(actions);
        }
        let mut extensions = ClientParams::new();
        if let Some(transform) = &mut self.aggregate_transform {
            let distinct = available.iter().collect::<HashSet<_>>().len();
            if let Admission::Stop(reason) =
                transform.admit_round(round, selected.len(), distinct, &mut extensions)?
            {
                self.status = JobStatus::Stopped { round, reason };
                return Ok(Vec::new());
            }
        }
        let extensions = Arc::new(extensions);
        self.round = round;
        let update_len = self.update_len();

        let params: Arc<[f32]> = Arc::from(self.global.as_slice());
        let train_config = self.strategy.client_config();
        let ctx = StageContext {
            round,
            stage: 0,
            model_len: update_len,
            selected: &selected,
            participants: &selected,
        };
        let begun = self
            .protocol
            .begin(&ctx, &params, &train_config, &extensions);
        let n = selected.len();
        self.phase = Phase::InRound(Box::new(RoundState {
            round,
            stage: 0,
            participants: selected.clone(),
            selected,
            slots: vec![Slot::Waiting; n],
            pending: n,
            rejected: Vec::new(),
            ignored: Vec::new(),
            ignored_clients: HashSet::new(),
        }));

        let mut actions = Vec::with_capacity(n + 1);
        match begun {
            Err(e) => {
                let reason = format!("protocol {} failed to begin: {e}", self.protocol.name());
                self.fail_round(reason, &mut actions);
            }
            Ok(mut messages) => {
                messages.sort_by_key(|(to, _)| *to);
                let recipients_ok = match &self.phase {
                    Phase::InRound(rs) => same_clients(&messages, &rs.selected),
                    Phase::Idle => false,
                };
                if recipients_ok {
                    actions.extend(
                        messages
                            .into_iter()
                            .map(|(to, msg)| Action::Send { to, msg }),
                    );
                    actions.push(Action::StartDeadline { round, stage: 0 });
                } else {
                    let reason = format!(
                        "protocol {} must send one message to each selected client",
                        self.protocol.name()
                    );
                    self.fail_round(reason, &mut actions);
                }
            }
        }
        Ok(actions)
    }

    /// Handles one event from the runtime.
    ///
    /// Never fails because of what a client sent: refused messages become [`Action::Reject`] and
    /// entries of the round report. Events that arrive between rounds, and deadlines of earlier
    /// stages, are ignored.
    pub fn handle(&mut self, event: Event) -> Result<Vec<Action>, FlError> {
        let mut actions = Vec::new();
        let stage_over = match event {
            Event::Received { from, msg } => self.on_message(from, msg, &mut actions),
            Event::Dropped { client } => self.on_dropped(client),
            Event::DeadlineExpired { round, stage } => self.on_deadline(round, stage),
        };
        if stage_over {
            self.end_stage(&mut actions);
        }
        Ok(actions)
    }

    /// Returns whether the current stage has no one left to wait for.
    fn on_message(&mut self, from: ClientId, msg: FromClient, actions: &mut Vec<Action>) -> bool {
        let update_len = self.update_len();
        let Phase::InRound(rs) = &mut self.phase else {
            self.ignored_outside_rounds += 1;
            actions.push(Action::Reject {
                to: from,
                reason: RejectReason::NoRoundInProgress,
            });
            return false;
        };
        let Ok(idx) = rs.selected.binary_search(&from) else {
            rs.ignore(from, RejectReason::NotSelected, actions);
            return false;
        };
        let found = msg.round();
        if found < rs.round {
            let reason = RejectReason::StaleRound {
                current: rs.round,
                found,
            };
            rs.ignore(from, reason, actions);
            return false;
        }
        if rs.slots[idx].is_out() {
            // Already counted as dropped, straggler or rejected: refuse, but count nothing more.
            actions.push(Action::Reject {
                to: from,
                reason: RejectReason::Excluded,
            });
            return false;
        }
        if found > rs.round {
            let reason = RejectReason::WrongRound {
                expected: rs.round,
                found,
            };
            return rs.exclude(idx, reason, actions);
        }
        if let Some(stage) = msg.stage()
            && stage != rs.stage
        {
            let reason = RejectReason::WrongStage {
                expected: rs.stage,
                found: stage,
            };
            return rs.exclude(idx, reason, actions);
        }
        if rs.slots[idx] == Slot::Answered {
            return rs.exclude(idx, RejectReason::Duplicate, actions);
        }
        if let FromClient::Update { update, .. } = &msg
            && let Err(reason) = check_update(update, from, update_len)
        {
            return rs.exclude(idx, reason, actions);
        }
        let ctx = rs.context(update_len);
        match self.protocol.receive(&ctx, from, msg) {
            Ok(()) => {
                rs.slots[idx] = Slot::Answered;
                rs.pending -= 1;
                rs.pending == 0
            }
            Err(reason) => rs.exclude(idx, reason, actions),
        }
    }

    fn on_dropped(&mut self, client: ClientId) -> bool {
        let Phase::InRound(rs) = &mut self.phase else {
            return false;
        };
        let Ok(idx) = rs.selected.binary_search(&client) else {
            return false;
        };
        match rs.slots[idx] {
            Slot::Waiting => {
                rs.slots[idx] = Slot::Dropped;
                rs.pending -= 1;
                rs.pending == 0
            }
            Slot::Answered => {
                rs.slots[idx] = Slot::Dropped;
                false
            }
            Slot::Dropped | Slot::Straggler | Slot::Rejected => false,
        }
    }

    fn on_deadline(&mut self, round: u32, stage: u8) -> bool {
        let Phase::InRound(rs) = &mut self.phase else {
            return false;
        };
        if rs.round != round || rs.stage != stage {
            return false;
        }
        for slot in &mut rs.slots {
            if *slot == Slot::Waiting {
                *slot = Slot::Straggler;
            }
        }
        rs.pending = 0;
        true
    }

    fn end_stage(&mut self, actions: &mut Vec<Action>) {
        match self.conclude_stage(actions) {
            StageEnd::Continue => {}
            StageEnd::Fail(reason) => self.fail_round(reason, actions),
            StageEnd::Complete(output) => self.complete_round(output, actions),
        }
    }

    /// Asks the protocol how the current stage ends, and starts the next stage if there is one.
    fn conclude_stage(&mut self, actions: &mut Vec<Action>) -> StageEnd {
        let update_len = self.update_len();
        let Phase::InRound(rs) = &mut self.phase else {
            return StageEnd::Continue;
        };
        let survivors = rs.with_slot(Slot::Answered);
        if survivors.len() < self.config.min_clients {
            return StageEnd::Fail(format!(
                "only {} client(s) left after stage {}, {} required",
                survivors.len(),
                rs.stage,
                self.config.min_clients
            ));
        }
        let ctx = rs.context(update_len);
        let name = self.protocol.name();
        let mut messages = match self.protocol.end_stage(&ctx, &survivors) {
            Err(e) => return StageEnd::Fail(format!("protocol {name} failed: {e}")),
            Ok(StageOutcome::Abort(reason)) => return StageEnd::Fail(reason),
            Ok(StageOutcome::Done(output)) => return StageEnd::Complete(output),
            Ok(StageOutcome::Next(messages)) => messages,
        };
        let declared = self.protocol.stages();
        let Some(stage) = rs.stage.checked_add(1).filter(|&s| s < declared) else {
            return StageEnd::Fail(format!(
                "protocol {name} asked for a stage beyond the {declared} it declares"
            ));
        };
        messages.sort_by_key(|(to, _)| *to);
        if !same_clients(&messages, &survivors) {
            return StageEnd::Fail(format!(
                "protocol {name} must send one message to each survivor"
            ));
        }
        rs.stage = stage;
        for slot in &mut rs.slots {
            if *slot == Slot::Answered {
                *slot = Slot::Waiting;
            }
        }
        rs.pending = survivors.len();
        rs.participants = survivors;
        actions.extend(
            messages
                .into_iter()
                .map(|(to, msg)| Action::Send { to, msg }),
        );
        actions.push(Action::StartDeadline {
            round: rs.round,
            stage,
        });
        StageEnd::Continue
    }

    fn complete_round(&mut self, output: ProtocolOutput, actions: &mut Vec<Action>) {
        let Phase::InRound(rs) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        match self.aggregate_output(rs.round, &rs.selected, output) {
            Ok(done) => {
                self.global = done.global;
                self.completed_rounds += 1;
                self.consecutive_failures = 0;
                if self.completed_rounds >= self.config.rounds {
                    self.status = JobStatus::Completed;
                }
                let report = rs.report(done.contributors, done.num_examples, done.train_loss);
                let outcome = self.with_details(RoundOutcome::Completed(report));
                actions.push(Action::RoundFinished(outcome));
            }
            Err(reason) => self.finish_failed(*rs, reason, actions),
        }
    }

    fn fail_round(&mut self, reason: String, actions: &mut Vec<Action>) {
        if let Phase::InRound(rs) = std::mem::replace(&mut self.phase, Phase::Idle) {
            self.finish_failed(*rs, reason, actions);
        }
        self.protocol.abort_round();
    }

    /// Adds what the protocol and the aggregate transform report about the round. A report
    /// that cannot be made is noted under `engine.detail_errors`, not fatal: the round stands.
    fn with_details(&mut self, outcome: RoundOutcome) -> RoundOutcome {
        let round = outcome.report().round;
        let mut details = RoundDetails::new();
        let mut errors = Vec::new();
        if let Err(e) = self.protocol.round_details(round, &mut details) {
            errors.push(format!("protocol: {e}"));
        }
        if let Some(t) = &mut self.aggregate_transform
            && let Err(e) = t.round_details(round, &mut details)
        {
            errors.push(format!("aggregate transform: {e}"));
        }
        if !errors.is_empty() {
            let _ = details.insert("engine.detail_errors", serde_json::json!(errors));
        }
        outcome.with_details(details)
    }

    fn finish_failed(&mut self, rs: RoundState, reason: String, actions: &mut Vec<Action>) {
        self.consecutive_failures += 1;
        let job_aborted = self.consecutive_failures > self.config.max_retries;
        let round = rs.round;
        if job_aborted {
            self.status = JobStatus::Failed {
                round,
                reason: reason.clone(),
            };
        }
        let outcome = self.with_details(RoundOutcome::Failed {
            round,
            reason,
            report: rs.report(Vec::new(), 0, f32::NAN),
            job_aborted,
        });
        actions.push(Action::RoundFinished(outcome));
    }

    /// Aggregates a protocol's output into a new global model (without committing it).
    fn aggregate_output(
        &mut self,
        round: u32,
        selected: &[ClientId],
        output: ProtocolOutput,
    ) -> Result<Aggregated, String> {
        let mut next = self.global.clone();
        let update_len = self.update_len();
        let unit_weights = self.unit_weights();
        let (contributors, num_examples, train_loss) = match output {
            ProtocolOutput::Individual(updates) => {
                let contributors: Vec<ClientId> = updates.iter().map(|u| u.client).collect();
                self.check_contributors(&contributors, selected)?;
                if let Some(bad) = updates
                    .iter()
                    .find_map(|u| check_update(u, u.client, update_len).err())
                {
                    return Err(format!("protocol produced an invalid update: {bad}"));
                }
                let (num_examples, train_loss) = round_metrics(&updates);
                match self.strategy.requirement() {
                    Requirement::Individual => self.strategy.aggregate(
                        round,
                        &mut next,
                        AggregateInput::Individual(&updates),
                    ),
                    Requirement::Sum => {
                        let summed = if unit_weights {
                            unit_sum(&updates, update_len)
                        } else {
                            weighted_sum(&updates)
                        };
                        summed.and_then(|mut sum| {
                            self.transform_and_aggregate(round, &mut next, &mut sum)
                        })
                    }
                }
                .map_err(|e| format!("aggregation failed: {e}"))?;
                (contributors, num_examples, train_loss)
            }
            ProtocolOutput::Sum(mut out) => {
                self.check_contributors(&out.contributors, selected)?;
                if self.strategy.requirement() != Requirement::Sum {
                    return Err(format!(
                        "strategy {} needs individual updates",
                        self.strategy.name()
                    ));
                }
                self.transform_and_aggregate(round, &mut next, &mut out.sum)
                    .map_err(|e| format!("aggregation failed: {e}"))?;
                (out.contributors, out.metrics.num_examples, out.metrics.loss)
            }
        };
        if next.iter().any(|x| !x.is_finite()) {
            return Err("the aggregated model is not finite".into());
        }
        Ok(Aggregated {
            global: next,
            contributors,
            num_examples,
            train_loss,
        })
    }

    fn transform_and_aggregate(
        &mut self,
        round: u32,
        global: &mut [f32],
        sum: &mut WeightedSum,
    ) -> Result<(), FlError> {
        if let Some(transform) = &mut self.aggregate_transform {
            transform.apply(round, sum)?;
        }
        if sum.sum.len() != global.len() {
            return Err(FlError::LengthMismatch {
                expected: global.len(),
                found: sum.sum.len(),
            });
        }
        self.strategy
            .aggregate(round, global, AggregateInput::Sum(sum))
    }

    fn check_contributors(
        &self,
        contributors: &[ClientId],
        selected: &[ClientId],
    ) -> Result<(), String> {
        if !contributors.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!(
                "protocol {} returned unsorted or duplicate contributors",
                self.protocol.name()
            ));
        }
        if let Some(c) = contributors
            .iter()
            .find(|c| selected.binary_search(c).is_err())
        {
            return Err(format!(
                "protocol {} returned a contribution from unselected client {c}",
                self.protocol.name()
            ));
        }
        if contributors.len() < self.config.min_clients {
            return Err(format!(
                "only {} contribution(s), {} required",
                contributors.len(),
                self.config.min_clients
            ));
        }
        Ok(())
    }
}

/// A computed but not yet committed aggregation.
struct Aggregated {
    global: Vec<f32>,
    contributors: Vec<ClientId>,
    num_examples: u64,
    train_loss: f32,
}

/// `Σ Δ_k` with every update counted once (weight 1), whatever example count it reports.
fn unit_sum(updates: &[ClientUpdate], len: usize) -> Result<WeightedSum, FlError> {
    if updates.is_empty() {
        return Err(FlError::EmptyRound);
    }
    let mut acc = WeightedSum::zeros(len);
    for update in updates {
        crate::validate_update(update, len)?;
        for (s, &d) in acc.sum.iter_mut().zip(&update.delta) {
            *s += f64::from(d);
        }
        acc.total_weight += 1.0;
        acc.num_clients += 1;
    }
    Ok(acc)
}

/// Whether `messages` (sorted by recipient) address exactly `clients` (sorted), once each.
fn same_clients(messages: &[(ClientId, ToClient)], clients: &[ClientId]) -> bool {
    messages.len() == clients.len() && messages.iter().zip(clients).all(|((to, _), c)| to == c)
}

/// Checks a plain update from `from` against the global model length.
fn check_update(
    update: &ClientUpdate,
    from: ClientId,
    model_len: usize,
) -> Result<(), RejectReason> {
    if update.client != from {
        return Err(RejectReason::ClientMismatch {
            claimed: update.client,
        });
    }
    if update.delta.len() != model_len {
        return Err(RejectReason::ShapeMismatch {
            expected: model_len,
            found: update.delta.len(),
        });
    }
    if !update.metrics.loss.is_finite() || update.delta.iter().any(|x| !x.is_finite()) {
        return Err(RejectReason::NonFinite);
    }
    if update.num_examples == 0 {
        return Err(RejectReason::ZeroExamples);
    }
    Ok(())
}

/// Total examples and example-weighted mean loss.
fn round_metrics(updates: &[ClientUpdate]) -> (u64, f32) {
    let total = updates
        .iter()
        .fold(0u64, |acc, u| acc.saturating_add(u.num_examples));
    let (weighted, weight) = updates.iter().fold((0.0_f64, 0.0_f64), |(l, w), u| {
        let n = u.num_examples as f64;
        (l + n * f64::from(u.metrics.loss), w + n)
    });
    let loss = if weight > 0.0 {
        (weighted / weight) as f32
    } else {
        f32::NAN
    };
    (total, loss)
}
