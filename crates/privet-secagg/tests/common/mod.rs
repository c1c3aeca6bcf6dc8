//! A small in-test runtime: drives privet's `Coordinator` with `SecAggProtocol`, one
//! `SecAggClient` per client, scripted faults and message tampering.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use privet_fl::engine::{
    Action, ClientProtocol, Coordinator, EngineConfig, Event, FromClient, LocalTrainer,
    RejectReason, RoundOutcome, ToClient, compute_update,
};
use privet_fl::harness;
use privet_fl::{
    ClientId, ClientSampler, ClientTrainConfig, FlError, SampleSize, StrategyConfig, TrainMetrics,
};
use privet_secagg::{
    KeyMap, Quantizer, SecAggClient, SecAggConfig, SecAggMonitor, SecAggProtocol, SigningKey,
};

/// A deterministic pseudo-random value in `[-10, 10)` for (client, round, index): beyond the
/// default clipping range 8 now and then.
pub fn value(client: ClientId, round: u32, i: usize) -> f32 {
    let mut x = u64::from(client.0).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(round).rotate_left(32)
        ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    ((x >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0) as f32
}

/// Local training: parameter `i` moves by `value(client, round, i)`.
#[derive(Clone, Debug)]
pub struct Trainer {
    pub client: ClientId,
    pub examples: u64,
    pub loss: f32,
    /// Move every parameter by this instead.
    pub constant: Option<f32>,
    /// Times `fit` was called.
    pub fits: u32,
}

impl Trainer {
    pub fn new(client: ClientId) -> Self {
        Trainer {
            client,
            examples: u64::from(client.0) * 7 % 50 + 1,
            loss: 0.25 * client.0 as f32,
            constant: None,
            fits: 0,
        }
    }

    pub fn local(&self, round: u32, params: &[f32]) -> Vec<f32> {
        params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p + self
                    .constant
                    .unwrap_or_else(|| value(self.client, round, i))
            })
            .collect()
    }

    pub fn metrics(&self) -> TrainMetrics {
        TrainMetrics {
            loss: self.loss,
            num_examples: self.examples,
        }
    }
}

impl LocalTrainer for Trainer {
    fn fit(
        &mut self,
        round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        self.fits += 1;
        Ok((self.local(round, params), self.metrics()))
    }
}

/// How a client misbehaves at one stage of one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection drops instead of an answer.
    Drop,
    /// Never answers (a straggler when the deadline fires).
    Silent,
    /// Answers, then the connection drops.
    AnswerThenDrop,
}

/// Identity keys and directory for clients `1..=n`.
pub struct Fixture {
    pub ids: Vec<ClientId>,
    pub keys: Vec<SigningKey>,
    pub directory: Arc<KeyMap>,
    pub config: SecAggConfig,
}

impl Fixture {
    pub fn new(n: u32, config: SecAggConfig) -> Self {
        let ids: Vec<ClientId> = (1..=n).map(ClientId).collect();
        let keys: Vec<SigningKey> = ids
            .iter()
            .map(|id| {
                let mut seed = [0u8; 32];
                seed[..4].copy_from_slice(&id.0.to_le_bytes());
                seed[31] = 0x5a;
                SigningKey::from_bytes(&seed)
            })
            .collect();
        let directory = Arc::new(
            ids.iter()
                .zip(&keys)
                .map(|(&id, k)| (id, k.verifying_key()))
                .collect(),
        );
        Fixture {
            ids,
            keys,
            directory,
            config,
        }
    }

    pub fn client(&self, i: usize) -> SecAggClient {
        SecAggClient::new(
            self.ids[i],
            self.keys[i].clone(),
            self.directory.clone(),
            self.config.clone(),
        )
        .unwrap()
    }

    /// A simulation of `rounds` rounds with FedAvg over a model of `model_len` zeros.
    pub fn sim(&self, rounds: u32, model_len: usize, max_retries: u32) -> Sim {
        let protocol = SecAggProtocol::new(self.config.clone(), self.directory.clone()).unwrap();
        let monitor = protocol.monitor();
        let engine = EngineConfig {
            rounds,
            sampler: ClientSampler {
                size: SampleSize::Fraction(1.0),
                min_clients: 1,
                seed: 3,
            },
            min_clients: 1,
            max_retries,
        };
        let strategy = StrategyConfig::FedAvg.build().unwrap();
        let coordinator =
            Coordinator::new(engine, strategy, Box::new(protocol), vec![0.0; model_len]).unwrap();
        let clients = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, (self.client(i), Trainer::new(id))))
            .collect();
        Sim {
            coordinator,
            monitor,
            clients,
            faults: HashMap::new(),
            tamper_from: None,
            tamper_to: None,
            rejects: Vec::new(),
            refusals: Vec::new(),
            answers: Vec::new(),
            sent: Vec::new(),
            quantizer: Quantizer::new(&self.config).unwrap(),
        }
    }
}

/// Rewrites a client's answer before the coordinator sees it.
pub type TamperFrom = Box<dyn FnMut(ClientId, &mut FromClient)>;
/// Rewrites a message before the client sees it.
pub type TamperTo = Box<dyn FnMut(ClientId, &mut ToClient)>;

pub struct Sim {
    pub coordinator: Coordinator,
    pub monitor: SecAggMonitor,
    pub clients: BTreeMap<ClientId, (SecAggClient, Trainer)>,
    /// `(client, round) -> (stage, fault)`.
    pub faults: HashMap<(ClientId, u32), (u8, Fault)>,
    pub tamper_from: Option<TamperFrom>,
    pub tamper_to: Option<TamperTo>,
    /// Every `Action::Reject` seen.
    pub rejects: Vec<(ClientId, RejectReason)>,
    /// Every error a client answered with (it then stays silent).
    pub refusals: Vec<(ClientId, u32, u8, FlError)>,
    /// Every answer sent: (client, round, stage, payload).
    pub answers: Vec<(ClientId, u32, u8, Vec<u8>)>,
    /// Every protocol message sent to a client: (client, round, stage, payload).
    pub sent: Vec<(ClientId, u32, u8, Vec<u8>)>,
    pub quantizer: Quantizer,
}

/// The clients' side of a [`Sim`] as one delivery: faults, tampering and what was said.
struct Net<'a> {
    clients: &'a mut BTreeMap<ClientId, (SecAggClient, Trainer)>,
    faults: &'a HashMap<(ClientId, u32), (u8, Fault)>,
    tamper_from: &'a mut Option<TamperFrom>,
    tamper_to: &'a mut Option<TamperTo>,
    refusals: &'a mut Vec<(ClientId, u32, u8, FlError)>,
    answers: &'a mut Vec<(ClientId, u32, u8, Vec<u8>)>,
    sent: &'a mut Vec<(ClientId, u32, u8, Vec<u8>)>,
}

impl Net<'_> {
    /// What `to` answers to `msg` (after faults and tampering).
    fn deliver(&mut self, to: ClientId, mut msg: ToClient) -> Vec<Event> {
        let stage = stage_of(&msg);
        let round = msg.round();
        if let ToClient::Protocol { payload, .. } = &msg {
            self.sent.push((to, round, stage, payload.clone()));
        }
        let fault = self
            .faults
            .get(&(to, round))
            .filter(|(s, _)| *s == stage)
            .map(|f| f.1);
        match fault {
            Some(Fault::Drop) => return vec![Event::Dropped { client: to }],
            Some(Fault::Silent) => return vec![],
            Some(Fault::AnswerThenDrop) | None => {}
        }
        if let Some(tamper) = &mut self.tamper_to {
            tamper(to, &mut msg);
        }
        let (client, trainer) = self.clients.get_mut(&to).expect("unknown client");
        let mut answer = match client.respond(&msg, trainer, &[]) {
            Ok(a) => a,
            Err(e) => {
                self.refusals.push((to, round, stage, e));
                return vec![];
            }
        };
        if let FromClient::Protocol { payload, .. } = &answer {
            self.answers.push((to, round, stage, payload.clone()));
        }
        if let Some(tamper) = &mut self.tamper_from {
            tamper(to, &mut answer);
        }
        let mut events = vec![Event::Received {
            from: to,
            msg: answer,
        }];
        if fault == Some(Fault::AnswerThenDrop) {
            events.push(Event::Dropped { client: to });
        }
        events
    }
}

fn stage_of(msg: &ToClient) -> u8 {
    match msg {
        ToClient::Protocol { stage, .. } => *stage,
        _ => 0,
    }
}

impl Sim {
    pub fn fault(&mut self, client: u32, round: u32, stage: u8, fault: Fault) {
        self.faults
            .insert((ClientId(client), round), (stage, fault));
    }

    /// Runs one round among all clients; returns its outcome and the global model before it.
    pub fn run_round(&mut self) -> (RoundOutcome, Vec<f32>) {
        let before = self.coordinator.global().to_vec();
        let available: Vec<ClientId> = self.clients.keys().copied().collect();
        let actions = self.coordinator.start_round(&available).unwrap();
        (self.drive(actions), before)
    }

    /// Delivers `actions` and everything they lead to (privet-fl's harness loop), firing a
    /// stage's deadline once nothing else is left; returns the round's outcome.
    pub fn drive(&mut self, actions: Vec<Action>) -> RoundOutcome {
        let Sim {
            coordinator,
            clients,
            faults,
            tamper_from,
            tamper_to,
            refusals,
            answers,
            sent,
            ..
        } = self;
        let mut net = Net {
            clients,
            faults,
            tamper_from,
            tamper_to,
            refusals,
            answers,
            sent,
        };
        let driven = harness::drive(coordinator, actions, |to, msg| net.deliver(to, msg));
        self.rejects.extend(driven.rejects);
        driven.outcome
    }

    /// The neighbour lists of `round`, read from the stage-1 messages (documented format:
    /// header 6, k 4, t 4, seed 32, members (count + ids), advertisements (count + 165 bytes,
    /// client id first)).
    pub fn neighbours(&self, round: u32) -> BTreeMap<ClientId, Vec<ClientId>> {
        let u32_at = |p: &[u8], at: usize| u32::from_le_bytes(p[at..at + 4].try_into().unwrap());
        self.sent
            .iter()
            .filter(|(_, r, s, _)| *r == round && *s == 1)
            .map(|(to, _, _, p)| {
                let members = u32_at(p, 46) as usize;
                let at = 50 + 4 * members;
                let count = u32_at(p, at) as usize;
                let ids = (0..count)
                    .map(|i| ClientId(u32_at(p, at + 4 + 165 * i)))
                    .collect();
                (*to, ids)
            })
            .collect()
    }

    /// The (k, t) announced in the stage-1 messages of `round`.
    pub fn announced_k_t(&self, round: u32) -> Option<(u32, u32)> {
        let u32_at = |p: &[u8], at: usize| u32::from_le_bytes(p[at..at + 4].try_into().unwrap());
        self.sent
            .iter()
            .find(|(_, r, s, _)| *r == round && *s == 1)
            .map(|(_, _, _, p)| (u32_at(p, 6), u32_at(p, 10)))
    }

    /// The sum modulo `2^b` of the quantized updates of `contributors` in `round`, computed
    /// independently of the protocol from the trainers (nearest rounding).
    pub fn expected_sum(&self, round: u32, global: &[f32], contributors: &[ClientId]) -> Vec<u64> {
        let bits = self.quantizer.modulus_bits();
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let mut sum = vec![0u64; global.len() + 2];
        for c in contributors {
            let trainer = &self.clients[c].1;
            let local = trainer.local(round, global);
            let (update, _) = compute_update(
                *c,
                round,
                global,
                &local,
                trainer.metrics(),
                &[],
                &Default::default(),
            )
            .unwrap();
            let words = self
                .quantizer
                .encode(&update.delta, update.num_examples, update.metrics.loss)
                .unwrap();
            for (s, w) in sum.iter_mut().zip(words) {
                *s = s.wrapping_add(w) & mask;
            }
        }
        sum
    }
}
