//! A two-stage toy "secure aggregation" protocol through the engine: multi-stage rounds,
//! dropouts between and within stages, and a coordinator that learns only the sum.
//!
//! Stage 0: the coordinator sends `Fit`; each client trains and answers with a commitment
//! (8 opaque bytes). Stage 1: the coordinator sends the list of stage-0 survivors; each client
//! answers with its fixed-point weighted update `(n Δ, n, n loss)` masked by pairwise pads with
//! every other survivor (client `i` adds `pad(i, j)` for `j > i` and subtracts it for `j < i`), so
//! the pads cancel only in the sum of all survivors. A dropout between the stages just leaves the
//! survivor list; a dropout during stage 1 leaves pads that cannot be removed (no recovery in this
//! toy), so the round aborts.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::{ClientLogic, FakeTrainer, Mode, Sim, ids};
use privet_fl::engine::{
    AggregationProtocol, Coordinator, EngineConfig, Event, FromClient, LocalTrainer,
    PlainAggregation, ProtocolOutput, RejectReason, Rejection, RoundOutcome, StageContext,
    StageOutcome, SumOutput, ToClient, compute_update,
};
use privet_fl::{
    ClientId, ClientParams, ClientSampler, ClientTrainConfig, ClientUpdate, FlError, Requirement,
    SampleSize, StrategyConfig, TrainMetrics, WeightedSum,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const SCALE: f64 = 65536.0;

fn encode(x: f64) -> u64 {
    ((x * SCALE).round() as i64) as u64
}

fn decode(x: u64) -> f64 {
    (x as i64) as f64 / SCALE
}

/// The pad shared by clients `a < b` in `round`, `len` words.
fn pad(round: u32, a: ClientId, b: ClientId, len: usize) -> Vec<u64> {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&round.to_le_bytes());
    seed[4..8].copy_from_slice(&a.0.to_le_bytes());
    seed[8..12].copy_from_slice(&b.0.to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(seed);
    (0..len).map(|_| rng.next_u64()).collect()
}

fn to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[derive(Debug, Default)]
struct ToyMasked {
    stage0: Vec<ClientId>,
    masked: Vec<(ClientId, Vec<u64>)>,
}

impl AggregationProtocol for ToyMasked {
    fn name(&self) -> &'static str {
        "toy-masked"
    }

    fn stages(&self) -> u8 {
        2
    }

    fn reveals(&self) -> Requirement {
        Requirement::Sum
    }

    fn begin(
        &mut self,
        ctx: &StageContext<'_>,
        params: &Arc<[f32]>,
        config: &ClientTrainConfig,
        extensions: &Arc<ClientParams>,
    ) -> Result<Vec<(ClientId, ToClient)>, FlError> {
        self.stage0.clear();
        self.masked.clear();
        Ok(ctx
            .participants
            .iter()
            .map(|&c| {
                let msg = ToClient::Fit {
                    round: ctx.round,
                    params: Arc::clone(params),
                    config: config.clone(),
                    extensions: Arc::clone(extensions),
                };
                (c, msg)
            })
            .collect())
    }

    fn receive(
        &mut self,
        ctx: &StageContext<'_>,
        from: ClientId,
        msg: FromClient,
    ) -> Result<(), RejectReason> {
        let FromClient::Protocol { payload, .. } = msg else {
            return Err(RejectReason::UnexpectedMessage);
        };
        match ctx.stage {
            0 if payload.len() == 8 => Ok(()),
            1 if payload.len() == (ctx.model_len + 2) * 8 => {
                self.masked.push((from, from_bytes(&payload)));
                Ok(())
            }
            _ => Err(RejectReason::Protocol("bad payload length".into())),
        }
    }

    fn end_stage(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, FlError> {
        if ctx.stage == 0 {
            self.stage0 = survivors.to_vec();
            let list: Vec<u8> = survivors.iter().flat_map(|c| c.0.to_le_bytes()).collect();
            let msgs = survivors
                .iter()
                .map(|&c| {
                    let msg = ToClient::Protocol {
                        round: ctx.round,
                        stage: 1,
                        payload: list.clone(),
                    };
                    (c, msg)
                })
                .collect();
            return Ok(StageOutcome::Next(msgs));
        }
        if survivors != self.stage0 {
            return Ok(StageOutcome::Abort(
                "a client dropped while masking; its pads cannot be removed".into(),
            ));
        }
        let len = ctx.model_len + 2;
        let mut total = vec![0u64; len];
        for (_, words) in &self.masked {
            for (t, w) in total.iter_mut().zip(words) {
                *t = t.wrapping_add(*w);
            }
        }
        let decoded: Vec<f64> = total.iter().map(|&w| decode(w)).collect();
        let weight = decoded[ctx.model_len];
        Ok(StageOutcome::Done(ProtocolOutput::Sum(SumOutput {
            sum: WeightedSum {
                sum: decoded[..ctx.model_len].to_vec(),
                total_weight: weight,
                num_clients: survivors.len(),
            },
            contributors: survivors.to_vec(),
            metrics: TrainMetrics {
                loss: (decoded[ctx.model_len + 1] / weight) as f32,
                num_examples: weight as u64,
            },
        })))
    }

    fn abort_round(&mut self) {
        self.stage0.clear();
        self.masked.clear();
    }
}

/// What a client does at `(round, stage)`.
type Script = fn(u32, u8) -> Mode;

/// The client side of the toy protocol; `mode(round, stage)` scripts dropouts.
struct ToyClient {
    trainer: FakeTrainer,
    pending: Option<ClientUpdate>,
    mode: Script,
}

impl ToyClient {
    fn new(target: f32, examples: u64, mode: Script) -> Self {
        ToyClient {
            trainer: FakeTrainer::new(target, examples),
            pending: None,
            mode,
        }
    }
}

impl ClientLogic for ToyClient {
    fn on_message(&mut self, me: ClientId, msg: &ToClient) -> Vec<Event> {
        let (round, stage) = match msg {
            ToClient::Fit { round, .. } => (*round, 0),
            ToClient::Protocol { round, stage, .. } => (*round, *stage),
            other => panic!("unexpected {other:?}"),
        };
        let mode = (self.mode)(round, stage);
        match mode {
            Mode::Silent => return vec![],
            Mode::Drop => return vec![Event::Dropped { client: me }],
            Mode::Answer | Mode::AnswerThenDrop => {}
        }
        let reply = match msg {
            ToClient::Fit {
                round,
                params,
                config,
                extensions,
            } => {
                let (local, metrics) = self.trainer.fit(*round, params, config).unwrap();
                let (update, _) =
                    compute_update(me, *round, params, &local, metrics, &[], extensions).unwrap();
                self.pending = Some(update);
                FromClient::Protocol {
                    round: *round,
                    stage: 0,
                    payload: vec![0xC0; 8],
                }
            }
            ToClient::Protocol { round, payload, .. } => {
                let update = self.pending.take().unwrap();
                let n = update.num_examples as f64;
                let mut words: Vec<u64> = update
                    .delta
                    .iter()
                    .map(|&d| encode(n * f64::from(d)))
                    .collect();
                words.push(encode(n));
                words.push(encode(n * f64::from(update.metrics.loss)));
                for other in payload.chunks_exact(4) {
                    let other = ClientId(u32::from_le_bytes(other.try_into().unwrap()));
                    if other == me {
                        continue;
                    }
                    let (a, b) = if me < other { (me, other) } else { (other, me) };
                    let shared = pad(*round, a, b, words.len());
                    for (w, p) in words.iter_mut().zip(shared) {
                        *w = if me < other {
                            w.wrapping_add(p)
                        } else {
                            w.wrapping_sub(p)
                        };
                    }
                }
                FromClient::Protocol {
                    round: *round,
                    stage: 1,
                    payload: to_bytes(&words),
                }
            }
            other => panic!("unexpected {other:?}"),
        };
        let mut events = vec![Event::Received {
            from: me,
            msg: reply,
        }];
        if mode == Mode::AnswerThenDrop {
            events.push(Event::Dropped { client: me });
        }
        events
    }
}

fn toy_sim(rounds: u32, min_clients: usize, max_retries: u32) -> Sim {
    let cfg = EngineConfig {
        rounds,
        sampler: ClientSampler {
            size: SampleSize::Fraction(1.0),
            min_clients: 1,
            seed: 9,
        },
        min_clients,
        max_retries,
    };
    let strategy = StrategyConfig::FedAvg.build().unwrap();
    let coord = Coordinator::new(
        cfg,
        strategy,
        Box::new(ToyMasked::default()),
        vec![0.0, 1.0],
    )
    .unwrap();
    Sim::new(coord)
}

fn always(_: u32, _: u8) -> Mode {
    Mode::Answer
}

/// Client `id` trains towards `id` with `id` examples and loss 1.
fn add_clients(sim: &mut Sim, modes: &[(u32, Script)]) {
    for &(id, mode) in modes {
        sim.add(id, ToyClient::new(id as f32, u64::from(id), mode));
    }
}

#[test]
fn two_stage_round_reveals_the_exact_sum() {
    let mut sim = toy_sim(1, 2, 0);
    add_clients(&mut sim, &[(1, always), (2, always), (3, always)]);
    let RoundOutcome::Completed(report) = sim.run_round() else {
        panic!("round failed");
    };
    assert_eq!(report.stages, 2);
    assert_eq!(report.completed, ids(&[1, 2, 3]));
    assert_eq!(report.num_examples, 6);
    assert_eq!(report.train_loss, 1.0);
    // FedAvg of targets 1, 2, 3 weighted 1, 2, 3: 14/6 = 7/3 for both parameters.
    let x = 7.0f32 / 3.0;
    let g = sim.coordinator.global();
    assert!((g[0] - x).abs() < 1e-5 && (g[1] - x).abs() < 1e-5, "{g:?}");
    // Stage 1 messages went to the three survivors only, after all stage-0 messages.
    let stages: Vec<Option<u8>> = sim.sent.iter().map(|s| s.2).collect();
    assert_eq!(stages, [None, None, None, Some(1), Some(1), Some(1)]);
    assert_eq!(sim.deadlines_fired, vec![(1, 1)]); // stale, fired after the round ended
}

#[test]
fn a_dropout_between_stages_leaves_the_rest_of_the_round_intact() {
    let mut sim = toy_sim(1, 2, 0);
    // Client 2 commits, then drops while stage 0 is still open (client 4 has not answered yet),
    // so it is not in the survivor list that stage 1 masks over.
    add_clients(
        &mut sim,
        &[
            (1, always),
            (2, |_, s| {
                if s == 0 {
                    Mode::AnswerThenDrop
                } else {
                    Mode::Answer
                }
            }),
            (4, always),
        ],
    );
    let RoundOutcome::Completed(report) = sim.run_round() else {
        panic!("round failed");
    };
    assert_eq!(report.completed, ids(&[1, 4]));
    assert_eq!(report.dropped, ids(&[2]));
    assert_eq!(report.num_examples, 5);
    // (1 * 1 + 4 * 4) / 5 = 3.4 from 0 and from 1.
    let g = sim.coordinator.global();
    assert!(
        (g[0] - 3.4).abs() < 1e-5 && (g[1] - 3.4).abs() < 1e-5,
        "{g:?}"
    );
    assert!(!sim.sent.contains(&(ClientId(2), 1, Some(1))));
}

#[test]
fn a_dropout_while_masking_aborts_and_the_retry_succeeds() {
    let mut sim = toy_sim(1, 2, 1);
    add_clients(
        &mut sim,
        &[
            (1, always),
            (2, |r, s| {
                if r == 1 && s == 1 {
                    Mode::Drop
                } else {
                    Mode::Answer
                }
            }),
            (3, |r, s| {
                if r == 1 && s == 1 {
                    Mode::Silent
                } else {
                    Mode::Answer
                }
            }),
            (4, always),
        ],
    );
    let outcomes = sim.run_job();
    assert_eq!(outcomes.len(), 2);
    let RoundOutcome::Failed {
        reason,
        report,
        job_aborted,
        ..
    } = &outcomes[0]
    else {
        panic!("{:?}", outcomes[0]);
    };
    assert!(!job_aborted);
    assert!(reason.contains("cannot be removed"), "{reason}");
    assert_eq!(report.stages, 2);
    assert_eq!(report.dropped, ids(&[2]));
    assert_eq!(report.stragglers, ids(&[3]));
    assert!(matches!(outcomes[1], RoundOutcome::Completed(_)));
    // (1 + 4 + 9 + 16) / 10 = 3
    assert_eq!(sim.coordinator.global(), &[3.0, 3.0]);
}

#[test]
fn stage_and_kind_are_checked_for_multi_stage_protocols() {
    let mut sim = toy_sim(1, 1, 0);
    add_clients(&mut sim, &[(1, always), (2, always)]);
    let actions = sim.coordinator.start_round(&ids(&[1, 2])).unwrap();
    // Client 2 jumps ahead to stage 1, so it is excluded; a plain update is not accepted either.
    let early = FromClient::Protocol {
        round: 1,
        stage: 1,
        payload: vec![0; 32],
    };
    sim.coordinator
        .handle(Event::Received {
            from: ClientId(2),
            msg: early,
        })
        .unwrap();
    let RoundOutcome::Completed(report) = sim.drive(actions) else {
        panic!("round failed");
    };
    assert_eq!(
        report.rejected,
        vec![Rejection {
            client: ClientId(2),
            reason: RejectReason::WrongStage {
                expected: 0,
                found: 1
            }
        }]
    );
    assert_eq!(report.completed, ids(&[1]));
}

#[test]
fn strategies_that_need_individual_updates_cannot_run_behind_a_sum_only_protocol() {
    let cfg = EngineConfig {
        rounds: 1,
        sampler: ClientSampler {
            size: SampleSize::Fraction(1.0),
            min_clients: 1,
            seed: 0,
        },
        min_clients: 1,
        max_retries: 0,
    };
    for strategy in [
        StrategyConfig::Median,
        StrategyConfig::TrimmedMean { beta: 0.1 },
        StrategyConfig::Krum { byzantine: 0 },
    ] {
        let err = Coordinator::new(
            cfg.clone(),
            strategy.build().unwrap(),
            Box::new(ToyMasked::default()),
            vec![0.0],
        )
        .unwrap_err();
        assert!(matches!(err, FlError::Unsupported(_)), "{err}");
        // The same strategy is fine with plain aggregation.
        assert!(
            Coordinator::new(
                cfg.clone(),
                strategy.build().unwrap(),
                Box::new(PlainAggregation::new()),
                vec![0.0],
            )
            .is_ok()
        );
    }
}

/// A protocol with a deliberate bug: the engine must fail the round, not panic or go astray.
#[derive(Debug)]
enum Buggy {
    /// Starts stage 1 without messaging every survivor.
    MissingRecipient,
    /// Declares one stage but asks for a second.
    ExtraStage,
    /// Reports a contribution from a client that was not selected.
    UnselectedContributor,
}

impl AggregationProtocol for Buggy {
    fn name(&self) -> &'static str {
        "buggy"
    }

    fn stages(&self) -> u8 {
        match self {
            Buggy::MissingRecipient => 2,
            Buggy::ExtraStage | Buggy::UnselectedContributor => 1,
        }
    }

    fn reveals(&self) -> Requirement {
        Requirement::Sum
    }

    fn begin(
        &mut self,
        ctx: &StageContext<'_>,
        params: &Arc<[f32]>,
        config: &ClientTrainConfig,
        extensions: &Arc<ClientParams>,
    ) -> Result<Vec<(ClientId, ToClient)>, FlError> {
        ToyMasked::default().begin(ctx, params, config, extensions)
    }

    fn receive(
        &mut self,
        _ctx: &StageContext<'_>,
        _from: ClientId,
        _msg: FromClient,
    ) -> Result<(), RejectReason> {
        Ok(())
    }

    fn end_stage(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, FlError> {
        let next = |to: &[ClientId]| {
            let msgs = to
                .iter()
                .map(|&c| {
                    let msg = ToClient::Protocol {
                        round: ctx.round,
                        stage: 1,
                        payload: vec![],
                    };
                    (c, msg)
                })
                .collect();
            StageOutcome::Next(msgs)
        };
        Ok(match self {
            Buggy::MissingRecipient => next(&survivors[1..]),
            Buggy::ExtraStage => next(survivors),
            Buggy::UnselectedContributor => StageOutcome::Done(ProtocolOutput::Sum(SumOutput {
                sum: WeightedSum {
                    sum: vec![1.0; ctx.model_len],
                    total_weight: 1.0,
                    num_clients: 1,
                },
                contributors: vec![ClientId(99)],
                metrics: TrainMetrics::default(),
            })),
        })
    }
}

/// Running one round with `protocol` fails with a reason containing `expected`.
fn check_protocol_bug(protocol: Buggy, expected: &str) {
    let cfg = EngineConfig {
        rounds: 1,
        sampler: ClientSampler {
            size: SampleSize::Fraction(1.0),
            min_clients: 1,
            seed: 0,
        },
        min_clients: 1,
        max_retries: 0,
    };
    let strategy = StrategyConfig::FedAvg.build().unwrap();
    let coord = Coordinator::new(cfg, strategy, Box::new(protocol), vec![0.0]).unwrap();
    let mut sim = Sim::new(coord);
    add_clients(&mut sim, &[(1, always), (2, always)]);
    match sim.run_round() {
        RoundOutcome::Failed { reason, .. } => assert!(reason.contains(expected), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.coordinator.global(), &[0.0]);
}

#[test]
fn protocol_bugs_fail_the_round() {
    check_protocol_bug(Buggy::MissingRecipient, "one message to each survivor");
    check_protocol_bug(Buggy::ExtraStage, "beyond the 1 it declares");
    check_protocol_bug(Buggy::UnselectedContributor, "unselected client 99");
}

#[test]
fn the_coordinator_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Coordinator>();
}
