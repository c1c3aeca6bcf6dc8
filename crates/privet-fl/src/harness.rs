//! A tiny runtime for tests (feature `harness`): takes the coordinator's actions, lets scripted
//! clients answer, and feeds the events back; a deadline fires once nothing else is left to
//! deliver. It is the one engine-driving loop that tests of privet-fl and of its plug-ins share.
//! It panics on anything unexpected (an engine error, a message to an unknown client, a round
//! that does not finish): it is for tests, never for a runtime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};

use crate::engine::{
    Action, Coordinator, Event, FromClient, LocalTrainer, RejectReason, RoundOutcome, ToClient,
    client_respond,
};
use crate::{ClientId, ClientTrainConfig, FlError, TrainMetrics, UpdateTransform};

/// Moves each parameter a fraction `rate` of the way to `target`.
#[derive(Clone, Debug)]
pub struct FakeTrainer {
    pub target: f32,
    pub rate: f32,
    pub examples: u64,
    pub loss: f32,
}

impl FakeTrainer {
    pub fn new(target: f32, examples: u64) -> Self {
        FakeTrainer {
            target,
            rate: 1.0,
            examples,
            loss: 1.0,
        }
    }
}

impl LocalTrainer for FakeTrainer {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let local = params
            .iter()
            .map(|p| p + self.rate * (self.target - p))
            .collect();
        Ok((
            local,
            TrainMetrics {
                loss: self.loss,
                num_examples: self.examples,
            },
        ))
    }
}

/// What a simulated client does when it receives a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Answer,
    /// Never answers (becomes a straggler).
    Silent,
    /// The connection drops instead of an answer.
    Drop,
    /// Answers, then the connection drops.
    AnswerThenDrop,
}

/// A simulated client.
pub trait ClientLogic {
    fn on_message(&mut self, me: ClientId, msg: &ToClient) -> Vec<Event>;
}

/// Rewrites an honest answer into the events the runtime delivers.
pub type Tamper = fn(ClientId, FromClient) -> Vec<Event>;

/// A plain-aggregation client: trains with `client_respond`.
#[allow(missing_debug_implementations)]
pub struct PlainClient {
    pub trainer: FakeTrainer,
    pub transforms: Vec<Box<dyn UpdateTransform>>,
    /// Mode per round.
    pub mode: Box<dyn FnMut(u32) -> Mode>,
    pub tamper: Option<Tamper>,
}

impl PlainClient {
    pub fn honest(target: f32, examples: u64) -> Self {
        PlainClient {
            trainer: FakeTrainer::new(target, examples),
            transforms: Vec::new(),
            mode: Box::new(|_| Mode::Answer),
            tamper: None,
        }
    }

    pub fn with_mode(mut self, mode: impl FnMut(u32) -> Mode + 'static) -> Self {
        self.mode = Box::new(mode);
        self
    }

    pub fn with_tamper(mut self, tamper: Tamper) -> Self {
        self.tamper = Some(tamper);
        self
    }
}

impl ClientLogic for PlainClient {
    fn on_message(&mut self, me: ClientId, msg: &ToClient) -> Vec<Event> {
        let mode = (self.mode)(msg.round());
        let reply = match mode {
            Mode::Silent => return Vec::new(),
            Mode::Drop => return vec![Event::Dropped { client: me }],
            Mode::Answer | Mode::AnswerThenDrop => {
                client_respond(me, msg, &mut self.trainer, &self.transforms).unwrap()
            }
        };
        let mut events = match self.tamper {
            Some(tamper) => tamper(me, reply),
            None => vec![Event::Received {
                from: me,
                msg: reply,
            }],
        };
        if mode == Mode::AnswerThenDrop {
            events.push(Event::Dropped { client: me });
        }
        events
    }
}

/// The runtime.
#[allow(missing_debug_implementations)]
pub struct Sim {
    pub coordinator: Coordinator,
    pub clients: BTreeMap<ClientId, Box<dyn ClientLogic>>,
    /// Every `Action::Reject` seen.
    pub rejects: Vec<(ClientId, RejectReason)>,
    /// Every deadline fired.
    pub deadlines_fired: Vec<(u32, u8)>,
    /// Every message sent, as (recipient, round, stage or None for Fit).
    pub sent: Vec<(ClientId, u32, Option<u8>)>,
}

impl Sim {
    pub fn new(coordinator: Coordinator) -> Self {
        Sim {
            coordinator,
            clients: BTreeMap::new(),
            rejects: Vec::new(),
            deadlines_fired: Vec::new(),
            sent: Vec::new(),
        }
    }

    pub fn add(&mut self, id: u32, client: impl ClientLogic + 'static) {
        self.clients.insert(ClientId(id), Box::new(client));
    }

    /// Runs one round among all clients and returns its outcome.
    pub fn run_round(&mut self) -> RoundOutcome {
        let available: Vec<ClientId> = self.clients.keys().copied().collect();
        let actions = self.coordinator.start_round(&available).unwrap();
        self.drive(actions)
    }

    /// Runs rounds until the job is finished.
    pub fn run_job(&mut self) -> Vec<RoundOutcome> {
        let mut outcomes = Vec::new();
        while !self.coordinator.is_finished() {
            outcomes.push(self.run_round());
            assert!(outcomes.len() < 1000, "job does not end");
        }
        outcomes
    }

    /// Delivers `actions` and everything they lead to; returns the round's outcome.
    pub fn drive(&mut self, actions: Vec<Action>) -> RoundOutcome {
        let Sim {
            coordinator,
            clients,
            sent,
            ..
        } = self;
        let driven = drive(coordinator, actions, |to, msg| {
            let stage = match &msg {
                ToClient::Protocol { stage, .. } => Some(*stage),
                _ => None,
            };
            sent.push((to, msg.round(), stage));
            let client = clients.get_mut(&to).expect("message to unknown client");
            client.on_message(to, &msg)
        });
        self.rejects.extend(driven.rejects);
        self.deadlines_fired.extend(driven.deadlines_fired);
        driven.outcome
    }
}

/// What [`drive`] saw of a round.
#[derive(Debug)]
pub struct Driven {
    /// How the round ended.
    pub outcome: RoundOutcome,
    /// Every `Action::Reject`, in order.
    pub rejects: Vec<(ClientId, RejectReason)>,
    /// Every deadline fired, in order.
    pub deadlines_fired: Vec<(u32, u8)>,
}

/// The engine-driving loop: delivers `actions` through `deliver` (a client's answer, as the
/// events the runtime reports), feeds the events back, fires a stage's deadline once nothing
/// else is left, until the round finishes.
pub fn drive(
    coordinator: &mut Coordinator,
    actions: Vec<Action>,
    mut deliver: impl FnMut(ClientId, ToClient) -> Vec<Event>,
) -> Driven {
    let mut actions: VecDeque<Action> = actions.into();
    let mut events: VecDeque<Event> = VecDeque::new();
    let mut deadline = None;
    let mut outcome = None;
    let mut rejects = Vec::new();
    let mut deadlines_fired = Vec::new();
    loop {
        if let Some(action) = actions.pop_front() {
            match action {
                Action::Send { to, msg } => events.extend(deliver(to, msg)),
                Action::StartDeadline { round, stage } => deadline = Some((round, stage)),
                Action::Reject { to, reason } => rejects.push((to, reason)),
                Action::RoundFinished(o) => {
                    assert!(outcome.is_none(), "two outcomes for one round");
                    outcome = Some(o);
                }
            }
        } else if let Some(event) = events.pop_front() {
            actions.extend(coordinator.handle(event).unwrap());
        } else if let Some((round, stage)) = deadline.take() {
            deadlines_fired.push((round, stage));
            let event = Event::DeadlineExpired { round, stage };
            actions.extend(coordinator.handle(event).unwrap());
        } else {
            break;
        }
    }
    Driven {
        outcome: outcome.expect("the round did not finish"),
        rejects,
        deadlines_fired,
    }
}

/// Client ids from numbers.
pub fn ids(v: &[u32]) -> Vec<ClientId> {
    v.iter().copied().map(ClientId).collect()
}
