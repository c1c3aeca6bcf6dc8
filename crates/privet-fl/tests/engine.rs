//! The round engine driven by a simulated runtime, with plain aggregation.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};

use common::{Mode, PlainClient, Sim, ids};
use privet_fl::engine::{
    Action, Coordinator, EngineConfig, Event, FromClient, JobStatus, PlainAggregation,
    RejectReason, Rejection, RoundOutcome, RoundReport, ToClient,
};
use privet_fl::{
    AggregateTransform, ClientId, ClientSampler, ClipL2, FlError, SampleSize, StrategyConfig,
    WeightedSum,
};

fn config(rounds: u32, min_clients: usize, max_retries: u32) -> EngineConfig {
    EngineConfig {
        rounds,
        sampler: ClientSampler {
            size: SampleSize::Fraction(1.0),
            min_clients: 1,
            seed: 1,
        },
        min_clients,
        max_retries,
    }
}

fn coordinator(cfg: EngineConfig, strategy: StrategyConfig, initial: Vec<f32>) -> Coordinator {
    Coordinator::new(
        cfg,
        strategy.build().unwrap(),
        Box::new(PlainAggregation::new()),
        initial,
    )
    .unwrap()
}

fn completed(outcome: RoundOutcome) -> RoundReport {
    match outcome {
        RoundOutcome::Completed(report) => report,
        failed => panic!("round failed: {failed:?}"),
    }
}

fn assert_close(got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() <= 1e-5, "got {got:?}, expected {expected:?}");
    }
}

#[test]
fn full_three_round_run() {
    let mut sim = Sim::new(coordinator(
        config(3, 2, 0),
        StrategyConfig::FedAvg,
        vec![0.0, 2.0],
    ));
    // Targets 1, 5, -3 with 1, 3, 4 examples: weighted mean target (1 + 15 - 12) / 8 = 0.5.
    for (id, target, n, loss) in [(1, 1.0, 1, 0.5), (2, 5.0, 3, 1.0), (3, -3.0, 4, 2.0)] {
        let mut c = PlainClient::honest(target, n);
        c.trainer.rate = 0.5;
        c.trainer.loss = loss;
        sim.add(id, c);
    }
    let outcomes = sim.run_job();
    assert_eq!(outcomes.len(), 3);
    for (r, outcome) in outcomes.into_iter().enumerate() {
        let report = completed(outcome);
        assert_eq!(
            report,
            RoundReport {
                round: r as u32 + 1,
                selected: ids(&[1, 2, 3]),
                completed: ids(&[1, 2, 3]),
                dropped: vec![],
                stragglers: vec![],
                rejected: vec![],
                ignored: vec![],
                num_examples: 8,
                // (0.5 * 1 + 1.0 * 3 + 2.0 * 4) / 8
                train_loss: 1.4375,
                stages: 1,
                details: Default::default(),
            }
        );
    }
    // Each round moves half way to 0.5: 0 -> 0.25 -> 0.375 -> 0.4375 and 2 -> 1.25 -> 0.875 -> 0.6875
    assert_eq!(sim.coordinator.global(), &[0.4375, 0.6875]);
    assert_eq!(sim.coordinator.completed_rounds(), 3);
    assert_eq!(sim.coordinator.round(), 3);
    assert_eq!(sim.coordinator.status(), &JobStatus::Completed);
    assert!(matches!(
        sim.coordinator.start_round(&ids(&[1, 2, 3])),
        Err(FlError::InvalidState(_))
    ));
}

#[test]
fn only_sampled_clients_are_asked() {
    let mut cfg = config(5, 1, 0);
    cfg.sampler.size = SampleSize::Count(4);
    let mut sim = Sim::new(coordinator(cfg, StrategyConfig::FedAvg, vec![0.0]));
    for id in 0..10 {
        sim.add(id, PlainClient::honest(1.0, 1));
    }
    for outcome in sim.run_job() {
        let report = completed(outcome);
        assert_eq!(report.selected.len(), 4);
        assert_eq!(report.completed, report.selected);
        let asked: Vec<ClientId> = sim
            .sent
            .iter()
            .filter(|(_, round, _)| *round == report.round)
            .map(|(to, _, _)| *to)
            .collect();
        assert_eq!(asked, report.selected);
    }
}

#[test]
fn dropout_mid_round_is_excluded() {
    let mut sim = Sim::new(coordinator(
        config(1, 2, 0),
        StrategyConfig::FedAvg,
        vec![0.0, 0.0],
    ));
    sim.add(1, PlainClient::honest(1.0, 1));
    sim.add(2, PlainClient::honest(100.0, 1).with_mode(|_| Mode::Drop));
    sim.add(3, PlainClient::honest(-3.0, 3));
    let report = completed(sim.run_round());
    assert_eq!(report.completed, ids(&[1, 3]));
    assert_eq!(report.dropped, ids(&[2]));
    assert_eq!(report.num_examples, 4);
    // (1 * 1 - 3 * 3) / 4 = -2
    assert_eq!(sim.coordinator.global(), &[-2.0, -2.0]);
}

#[test]
fn a_stage_ends_when_everyone_answered_or_dropped() {
    // Driven by hand: no deadline ever fires.
    let mut coord = coordinator(config(1, 1, 0), StrategyConfig::FedAvg, vec![0.0]);
    let actions = coord.start_round(&ids(&[1, 2, 3])).unwrap();
    assert_eq!(actions.len(), 4);
    assert_eq!(
        actions.last(),
        Some(&Action::StartDeadline { round: 1, stage: 0 })
    );
    let answer = |client: u32| Event::Received {
        from: ClientId(client),
        msg: FromClient::Update {
            round: 1,
            update: privet_fl::ClientUpdate {
                client: ClientId(client),
                delta: vec![client as f32],
                num_examples: 1,
                metrics: privet_fl::TrainMetrics {
                    loss: 0.0,
                    num_examples: 1,
                },
            },
        },
    };
    assert_eq!(coord.handle(answer(1)).unwrap(), vec![]);
    assert_eq!(
        coord
            .handle(Event::Dropped {
                client: ClientId(2)
            })
            .unwrap(),
        vec![]
    );
    let last = coord.handle(answer(3)).unwrap();
    let [Action::RoundFinished(RoundOutcome::Completed(report))] = last.as_slice() else {
        panic!("expected the round to finish: {last:?}");
    };
    assert_eq!(report.completed, ids(&[1, 3]));
    assert_eq!(report.dropped, ids(&[2]));
    assert_eq!(coord.global(), &[2.0]);
    // The stale deadline of that stage is ignored.
    assert_eq!(
        coord
            .handle(Event::DeadlineExpired { round: 1, stage: 0 })
            .unwrap(),
        vec![]
    );
}

#[test]
fn stragglers_miss_the_deadline_and_their_late_answer_is_ignored() {
    let mut sim = Sim::new(coordinator(
        config(2, 2, 0),
        StrategyConfig::FedAvg,
        vec![0.0],
    ));
    sim.add(1, PlainClient::honest(2.0, 1));
    sim.add(
        2,
        PlainClient::honest(50.0, 1)
            .with_mode(|r| if r == 1 { Mode::Silent } else { Mode::Answer }),
    );
    sim.add(3, PlainClient::honest(4.0, 1));

    let report = completed(sim.run_round());
    assert_eq!(sim.deadlines_fired, vec![(1, 0)]);
    assert_eq!(report.stragglers, ids(&[2]));
    assert_eq!(report.completed, ids(&[1, 3]));
    assert_eq!(sim.coordinator.global(), &[3.0]);

    // Round 2: client 2's late answer to round 1 arrives first; it is refused without
    // consequence and client 2 takes part normally.
    let actions = sim.coordinator.start_round(&ids(&[1, 2, 3])).unwrap();
    let late = Event::Received {
        from: ClientId(2),
        msg: FromClient::Update {
            round: 1,
            update: privet_fl::ClientUpdate {
                client: ClientId(2),
                delta: vec![47.0],
                num_examples: 1,
                metrics: Default::default(),
            },
        },
    };
    let stale = RejectReason::StaleRound {
        current: 2,
        found: 1,
    };
    assert_eq!(
        sim.coordinator.handle(late).unwrap(),
        vec![Action::Reject {
            to: ClientId(2),
            reason: stale.clone()
        }]
    );
    let report = completed(sim.drive(actions));
    assert_eq!(report.completed, ids(&[1, 2, 3]));
    assert_eq!(
        report.ignored,
        vec![Rejection {
            client: ClientId(2),
            reason: stale
        }]
    );
    // 3 + mean(2 - 3, 50 - 3, 4 - 3) = 3 + 47/3
    assert_close(sim.coordinator.global(), &[3.0 + 47.0 / 3.0]);
}

#[test]
fn too_few_clients_fail_the_round_which_is_retried() {
    let mut sim = Sim::new(coordinator(
        config(2, 3, 1),
        StrategyConfig::FedAvg,
        vec![1.0],
    ));
    sim.add(1, PlainClient::honest(3.0, 1));
    sim.add(
        2,
        PlainClient::honest(3.0, 1).with_mode(|r| if r == 1 { Mode::Drop } else { Mode::Answer }),
    );
    sim.add(3, PlainClient::honest(3.0, 1));
    let outcomes = sim.run_job();
    assert_eq!(outcomes.len(), 3);
    let RoundOutcome::Failed {
        round,
        reason,
        report,
        job_aborted,
    } = &outcomes[0]
    else {
        panic!("round 1 should fail: {:?}", outcomes[0]);
    };
    assert_eq!(*round, 1);
    assert!(!job_aborted);
    assert!(reason.contains("2 client(s) left"), "{reason}");
    assert_eq!(report.dropped, ids(&[2]));
    assert_eq!(report.completed, vec![]);
    assert_eq!(report.num_examples, 0);
    assert!(report.train_loss.is_nan());
    // The retry gets the next round number; both following rounds complete.
    assert_eq!(completed(outcomes[1].clone()).round, 2);
    assert_eq!(completed(outcomes[2].clone()).round, 3);
    assert_eq!(sim.coordinator.completed_rounds(), 2);
    assert_eq!(sim.coordinator.status(), &JobStatus::Completed);
    assert_eq!(sim.coordinator.global(), &[3.0]);
}

#[test]
fn the_job_fails_when_retries_are_spent() {
    let mut sim = Sim::new(coordinator(
        config(5, 2, 2),
        StrategyConfig::FedAvg,
        vec![1.0],
    ));
    sim.add(1, PlainClient::honest(3.0, 1));
    sim.add(2, PlainClient::honest(3.0, 1).with_mode(|_| Mode::Drop));
    let outcomes = sim.run_job();
    let aborted: Vec<bool> = outcomes
        .iter()
        .map(|o| match o {
            RoundOutcome::Failed { job_aborted, .. } => *job_aborted,
            RoundOutcome::Completed(_) => panic!("no round can complete"),
        })
        .collect();
    assert_eq!(aborted, [false, false, true]);
    assert!(matches!(
        sim.coordinator.status(),
        JobStatus::Failed { round: 3, .. }
    ));
    assert_eq!(sim.coordinator.global(), &[1.0]);
    assert!(matches!(
        sim.coordinator.start_round(&ids(&[1, 2])),
        Err(FlError::InvalidState(_))
    ));
}

/// Client 2 (of 1, 2, 3, all with target 2 + id and one example) sends what `tamper` makes of its
/// honest answer; the round must refuse the bad messages and go on.
fn check_refusal(
    tamper: common::Tamper,
    rejected: Vec<Rejection>,
    ignored: Vec<Rejection>,
    expected_completed: &[u32],
    expected_stragglers: &[u32],
) {
    let mut sim = Sim::new(coordinator(
        config(1, 1, 0),
        StrategyConfig::FedAvg,
        vec![0.0, 0.0],
    ));
    sim.add(1, PlainClient::honest(3.0, 1));
    sim.add(2, PlainClient::honest(4.0, 1).with_tamper(tamper));
    sim.add(3, PlainClient::honest(5.0, 1));
    let report = completed(sim.run_round());
    assert_eq!(report.rejected, rejected);
    assert_eq!(report.ignored, ignored);
    assert_eq!(report.completed, ids(expected_completed));
    assert_eq!(report.stragglers, ids(expected_stragglers));
    let mean = expected_completed
        .iter()
        .map(|&c| 2.0 + c as f32)
        .sum::<f32>()
        / expected_completed.len() as f32;
    assert_close(sim.coordinator.global(), &[mean, mean]);
    // Every refusal was also an action.
    assert!(sim.rejects.len() >= rejected.len() + ignored.len());
}

fn rejection(client: u32, reason: RejectReason) -> Vec<Rejection> {
    vec![Rejection {
        client: ClientId(client),
        reason,
    }]
}

fn received(from: u32, msg: FromClient) -> Event {
    Event::Received {
        from: ClientId(from),
        msg,
    }
}

fn map_update(msg: FromClient, f: fn(&mut privet_fl::ClientUpdate)) -> FromClient {
    match msg {
        FromClient::Update { round, mut update } => {
            f(&mut update);
            FromClient::Update { round, update }
        }
        other => other,
    }
}

fn with_round(msg: FromClient, round: u32) -> FromClient {
    match msg {
        FromClient::Update { update, .. } => FromClient::Update { round, update },
        other => other,
    }
}

#[test]
fn bad_messages_are_refused_and_counted_once() {
    check_refusal(
        |me, msg| {
            vec![Event::Received {
                from: me,
                msg: with_round(msg, 2),
            }]
        },
        rejection(
            2,
            RejectReason::WrongRound {
                expected: 1,
                found: 2,
            },
        ),
        vec![],
        &[1, 3],
        &[],
    );
    check_refusal(
        |me, msg| {
            vec![Event::Received {
                from: me,
                msg: with_round(msg, 0),
            }]
        },
        vec![],
        rejection(
            2,
            RejectReason::StaleRound {
                current: 1,
                found: 0,
            },
        ),
        &[1, 3],
        &[2],
    );
    check_refusal(
        |me, msg| {
            let msg = map_update(msg, |u| u.delta.push(0.0));
            vec![Event::Received { from: me, msg }]
        },
        rejection(
            2,
            RejectReason::ShapeMismatch {
                expected: 2,
                found: 3,
            },
        ),
        vec![],
        &[1, 3],
        &[],
    );
    check_refusal(
        |me, msg| {
            let msg = map_update(msg, |u| u.delta[1] = f32::NAN);
            vec![Event::Received { from: me, msg }]
        },
        rejection(2, RejectReason::NonFinite),
        vec![],
        &[1, 3],
        &[],
    );
    check_refusal(
        |me, msg| {
            let msg = map_update(msg, |u| u.metrics.loss = f32::INFINITY);
            vec![Event::Received { from: me, msg }]
        },
        rejection(2, RejectReason::NonFinite),
        vec![],
        &[1, 3],
        &[],
    );
    check_refusal(
        |me, msg| {
            let msg = map_update(msg, |u| u.num_examples = 0);
            vec![Event::Received { from: me, msg }]
        },
        rejection(2, RejectReason::ZeroExamples),
        vec![],
        &[1, 3],
        &[],
    );
    check_refusal(
        |me, msg| {
            let msg = map_update(msg, |u| u.client = ClientId(3));
            vec![Event::Received { from: me, msg }]
        },
        rejection(
            2,
            RejectReason::ClientMismatch {
                claimed: ClientId(3),
            },
        ),
        vec![],
        &[1, 3],
        &[],
    );
    // A duplicate excludes the client, including its first answer.
    check_refusal(
        |me, msg| vec![received(me.0, msg.clone()), received(me.0, msg)],
        rejection(2, RejectReason::Duplicate),
        vec![],
        &[1, 3],
        &[],
    );
    check_refusal(
        |me, _| {
            let msg = FromClient::Protocol {
                round: 1,
                stage: 0,
                payload: vec![1, 2],
            };
            vec![Event::Received { from: me, msg }]
        },
        rejection(2, RejectReason::UnexpectedMessage),
        vec![],
        &[1, 3],
        &[],
    );
    check_refusal(
        |me, _| {
            let msg = FromClient::Protocol {
                round: 1,
                stage: 1,
                payload: vec![],
            };
            vec![Event::Received { from: me, msg }]
        },
        rejection(
            2,
            RejectReason::WrongStage {
                expected: 0,
                found: 1,
            },
        ),
        vec![],
        &[1, 3],
        &[],
    );
    // An unselected sender is ignored, and counted once however often it sends.
    check_refusal(
        |me, msg| {
            vec![
                received(99, msg.clone()),
                received(99, msg.clone()),
                received(me.0, msg),
            ]
        },
        vec![],
        rejection(99, RejectReason::NotSelected),
        &[1, 2, 3],
        &[],
    );
    // A bad message, then good ones: excluded once, the rest refused without being counted again.
    check_refusal(
        |me, msg| {
            let bad = map_update(msg.clone(), |u| u.delta.clear());
            vec![
                received(me.0, bad),
                received(me.0, msg.clone()),
                received(me.0, msg),
            ]
        },
        rejection(
            2,
            RejectReason::ShapeMismatch {
                expected: 2,
                found: 0,
            },
        ),
        vec![],
        &[1, 3],
        &[],
    );
}

#[test]
fn every_selected_client_is_accounted_for_once() {
    let mut sim = Sim::new(coordinator(
        config(1, 1, 0),
        StrategyConfig::FedAvg,
        vec![0.0],
    ));
    sim.add(1, PlainClient::honest(1.0, 1));
    sim.add(2, PlainClient::honest(1.0, 1).with_mode(|_| Mode::Drop));
    sim.add(3, PlainClient::honest(1.0, 1).with_mode(|_| Mode::Silent));
    sim.add(
        4,
        PlainClient::honest(1.0, 1).with_tamper(|me, msg| {
            vec![received(me.0, map_update(msg, |u| u.delta[0] = f32::NAN))]
        }),
    );
    // Answers, then drops while the stage is still open (client 3 is silent): excluded.
    sim.add(
        5,
        PlainClient::honest(9.0, 1).with_mode(|_| Mode::AnswerThenDrop),
    );
    sim.add(6, PlainClient::honest(3.0, 1));
    let report = completed(sim.run_round());
    assert_eq!(report.completed, ids(&[1, 6]));
    assert_eq!(report.dropped, ids(&[2, 5]));
    assert_eq!(report.stragglers, ids(&[3]));
    assert_eq!(report.rejected, rejection(4, RejectReason::NonFinite));
    assert_eq!(sim.coordinator.global(), &[2.0]);
}

#[test]
fn robust_strategies_see_individual_updates() {
    let mut sim = Sim::new(coordinator(
        config(1, 3, 0),
        StrategyConfig::Median,
        vec![0.0],
    ));
    sim.add(1, PlainClient::honest(1.0, 100));
    sim.add(2, PlainClient::honest(2.0, 1));
    sim.add(3, PlainClient::honest(1000.0, 1));
    completed(sim.run_round());
    assert_eq!(sim.coordinator.global(), &[2.0]);
}

#[test]
fn an_aggregation_error_fails_the_round() {
    // Krum with f = 1 needs 5 updates; one of 5 clients drops.
    let mut sim = Sim::new(coordinator(
        config(1, 1, 0),
        StrategyConfig::Krum { byzantine: 1 },
        vec![0.0],
    ));
    for id in 1..=5 {
        let c = PlainClient::honest(1.0, 1);
        sim.add(
            id,
            if id == 3 {
                c.with_mode(|_| Mode::Drop)
            } else {
                c
            },
        );
    }
    match sim.run_round() {
        RoundOutcome::Failed {
            reason,
            job_aborted,
            ..
        } => {
            assert!(
                reason.contains("krum needs at least 5 updates, got 4"),
                "{reason}"
            );
            assert!(job_aborted);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.coordinator.global(), &[0.0]);
}

#[test]
fn fit_carries_the_global_model_and_strategy_config() {
    let mut coord = coordinator(
        config(1, 1, 0),
        StrategyConfig::FedProx { mu: 0.1 },
        vec![1.0, 2.0],
    );
    let actions = coord.start_round(&ids(&[4, 7])).unwrap();
    let mut recipients = Vec::new();
    for action in &actions[..2] {
        let Action::Send {
            to,
            msg:
                ToClient::Fit {
                    round,
                    params,
                    config,
                    ..
                },
        } = action
        else {
            panic!("{action:?}");
        };
        recipients.push(*to);
        assert_eq!(*round, 1);
        assert_eq!(&params[..], &[1.0, 2.0]);
        assert_eq!(config.proximal_mu, Some(0.1));
    }
    assert_eq!(recipients, ids(&[4, 7]));
}

#[test]
fn client_side_clipping_bounds_each_contribution() {
    let mut sim = Sim::new(coordinator(
        config(1, 1, 0),
        StrategyConfig::FedAvg,
        vec![0.0, 0.0],
    ));
    for id in [1, 2] {
        let mut c = PlainClient::honest(10.0 * id as f32, 1);
        c.transforms.push(Box::new(ClipL2 { max_norm: 1.0 }));
        sim.add(id, c);
    }
    completed(sim.run_round());
    // Both deltas (10, 10) and (20, 20) are clipped to (1/sqrt 2, 1/sqrt 2).
    let x = std::f32::consts::FRAC_1_SQRT_2;
    assert_close(sim.coordinator.global(), &[x, x]);
}

/// Adds `shift` to the mean of the first parameter and records the rounds it ran in.
#[derive(Debug)]
struct Shift {
    shift: f64,
    rounds: Arc<Mutex<Vec<u32>>>,
}

impl AggregateTransform for Shift {
    fn apply(&mut self, round: u32, sum: &mut WeightedSum) -> Result<(), FlError> {
        self.rounds.lock().unwrap().push(round);
        sum.sum[0] += self.shift * sum.total_weight;
        Ok(())
    }
}

#[test]
fn the_aggregate_transform_runs_on_the_sum() {
    let rounds = Arc::new(Mutex::new(Vec::new()));
    let shift = Shift {
        shift: 0.5,
        rounds: Arc::clone(&rounds),
    };
    let coord = coordinator(config(2, 1, 0), StrategyConfig::FedAvg, vec![0.0, 0.0])
        .with_aggregate_transform(Box::new(shift))
        .unwrap();
    let mut sim = Sim::new(coord);
    sim.add(1, PlainClient::honest(1.0, 1));
    sim.run_job();
    // Round 1: delta (1, 1) + shift -> (1.5, 1); round 2: delta (-0.5, 0) + shift -> (1.5, 1)
    assert_eq!(sim.coordinator.global(), &[1.5, 1.0]);
    assert_eq!(*rounds.lock().unwrap(), vec![1, 2]);

    let median = coordinator(config(1, 1, 0), StrategyConfig::Median, vec![0.0]);
    let err = median
        .with_aggregate_transform(Box::new(Shift {
            shift: 0.0,
            rounds: Arc::default(),
        }))
        .unwrap_err();
    assert!(matches!(err, FlError::Unsupported(_)), "{err}");
}

#[test]
fn runtime_misuse_and_stray_events() {
    let mut coord = coordinator(config(2, 2, 0), StrategyConfig::FedAvg, vec![0.0]);
    // Events before any round: refused or ignored, never an error.
    let stray = FromClient::Protocol {
        round: 1,
        stage: 0,
        payload: vec![],
    };
    assert_eq!(
        coord.handle(received(1, stray.clone())).unwrap(),
        vec![Action::Reject {
            to: ClientId(1),
            reason: RejectReason::NoRoundInProgress
        }]
    );
    assert_eq!(coord.ignored_outside_rounds(), 1);
    assert_eq!(
        coord
            .handle(Event::Dropped {
                client: ClientId(1)
            })
            .unwrap(),
        vec![]
    );
    assert_eq!(
        coord
            .handle(Event::DeadlineExpired { round: 1, stage: 0 })
            .unwrap(),
        vec![]
    );
    // Too few available clients: an error, and no round number is consumed.
    assert_eq!(
        coord.start_round(&ids(&[1])),
        Err(FlError::NotEnoughClients {
            available: 1,
            required: 2
        })
    );
    assert_eq!(coord.round(), 0);
    coord.start_round(&ids(&[1, 2])).unwrap();
    assert_eq!(coord.current_stage(), Some((1, 0)));
    assert_eq!(coord.current_selection(), Some(&ids(&[1, 2])[..]));
    assert!(matches!(
        coord.start_round(&ids(&[1, 2])),
        Err(FlError::InvalidState(_))
    ));
    // A deadline for another stage or round changes nothing.
    for (round, stage) in [(0, 0), (1, 1), (2, 0)] {
        assert_eq!(
            coord
                .handle(Event::DeadlineExpired { round, stage })
                .unwrap(),
            vec![]
        );
    }
    assert_eq!(coord.current_stage(), Some((1, 0)));
}

#[test]
fn invalid_engine_configurations() {
    let build = |cfg: EngineConfig, initial: Vec<f32>| {
        Coordinator::new(
            cfg,
            StrategyConfig::FedAvg.build().unwrap(),
            Box::new(PlainAggregation::new()),
            initial,
        )
        .map(|_| ())
    };
    let good = config(1, 1, 0);
    assert_eq!(build(good.clone(), vec![0.0]), Ok(()));
    let mut bad_sampler = good.clone();
    bad_sampler.sampler.size = SampleSize::Fraction(0.0);
    for (cfg, initial) in [
        (config(0, 1, 0), vec![0.0]),
        (config(1, 0, 0), vec![0.0]),
        (good.clone(), vec![]),
        (good.clone(), vec![f32::NAN]),
        (bad_sampler, vec![0.0]),
    ] {
        assert!(matches!(
            build(cfg, initial),
            Err(FlError::InvalidConfig(_))
        ));
    }
}

/// A job interrupted after two rounds and resumed from its checkpoint (a coordinator restart)
/// ends with the same model as an uninterrupted run, for a strategy with server state.
#[test]
fn a_resumed_job_matches_an_uninterrupted_one() {
    let strategy = StrategyConfig::fed_adam();
    let populate = |sim: &mut Sim| {
        sim.add(1, PlainClient::honest(1.0, 2));
        sim.add(2, PlainClient::honest(-3.0, 5));
        sim.add(3, PlainClient::honest(0.5, 1));
    };
    let mut straight = Sim::new(coordinator(config(4, 2, 0), strategy.clone(), vec![0.0; 4]));
    populate(&mut straight);
    straight.run_job();

    let mut first = Sim::new(coordinator(config(4, 2, 0), strategy.clone(), vec![0.0; 4]));
    populate(&mut first);
    first.run_round();
    first.run_round();
    let checkpoint = first.coordinator.checkpoint();
    assert_eq!((checkpoint.round, checkpoint.completed_rounds), (2, 2));
    assert_eq!(checkpoint.strategy_state.len(), 2, "FedAdam keeps m and v");
    let resumed = Coordinator::resume(
        config(4, 2, 0),
        strategy.build().unwrap(),
        Box::new(PlainAggregation::new()),
        checkpoint,
    )
    .unwrap();
    let mut second = Sim::new(resumed);
    populate(&mut second);
    let outcomes = second.run_job();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(
        outcomes[0].report().round,
        3,
        "round numbers continue after a restart"
    );
    assert_eq!(second.coordinator.completed_rounds(), 4);
    assert_eq!(second.coordinator.global(), straight.coordinator.global());
}

#[test]
fn a_checkpoint_with_foreign_state_is_refused() {
    let mut checkpoint =
        coordinator(config(2, 1, 0), StrategyConfig::FedAvg, vec![0.0; 2]).checkpoint();
    checkpoint.strategy_state = vec![("velocity".into(), vec![0.0; 2])];
    let err = Coordinator::resume(
        config(2, 1, 0),
        StrategyConfig::FedAvg.build().unwrap(),
        Box::new(PlainAggregation::new()),
        checkpoint,
    )
    .unwrap_err();
    assert!(err.to_string().contains("velocity"), "{err}");
}

/// Records which rounds were admitted and which were skipped, with the draw's size.
#[derive(Debug, Default)]
struct Ledger {
    admitted: Arc<Mutex<Vec<(u32, usize)>>>,
    skipped: Arc<Mutex<Vec<(u32, usize)>>>,
}

impl AggregateTransform for Ledger {
    fn apply(&mut self, _round: u32, _sum: &mut WeightedSum) -> Result<(), FlError> {
        Ok(())
    }

    fn admit_round(
        &mut self,
        round: u32,
        selected: usize,
        _available: usize,
        _params: &mut privet_fl::ClientParams,
    ) -> Result<privet_fl::Admission, FlError> {
        self.admitted.lock().unwrap().push((round, selected));
        Ok(privet_fl::Admission::Admit)
    }

    fn skip_round(
        &mut self,
        round: u32,
        selected: usize,
        _available: usize,
    ) -> Result<privet_fl::Admission, FlError> {
        self.skipped.lock().unwrap().push((round, selected));
        Ok(privet_fl::Admission::Admit)
    }
}

/// Poisson sampling: a draw with fewer clients than min_clients skips its round (number used,
/// nothing sent, the transform's skip_round charged, a failed round); a new number draws anew,
/// and the job still completes its rounds.
#[test]
fn a_too_small_poisson_draw_skips_its_round() {
    let sampler = ClientSampler {
        size: SampleSize::Poisson(0.4),
        min_clients: 1,
        seed: 11,
    };
    let cfg = EngineConfig {
        rounds: 4,
        sampler,
        min_clients: 2,
        max_retries: 50,
    };
    let ledger = Ledger::default();
    let (admitted, skipped) = (Arc::clone(&ledger.admitted), Arc::clone(&ledger.skipped));
    let coord = coordinator(cfg, StrategyConfig::FedAvg, vec![0.0])
        .with_aggregate_transform(Box::new(ledger))
        .unwrap();
    let mut sim = Sim::new(coord);
    for c in 1..=5 {
        sim.add(c, PlainClient::honest(1.0, 1));
    }
    let outcomes = sim.run_job();
    let all = ids(&[1, 2, 3, 4, 5]);
    let effective = ClientSampler {
        min_clients: 2,
        ..sampler
    };
    let mut skips = 0;
    for outcome in &outcomes {
        let round = outcome.report().round;
        let draw = effective.sample(round, &all).unwrap();
        match outcome {
            RoundOutcome::Failed { reason, report, .. } => {
                assert!(draw.len() < 2, "round {round}: {draw:?}");
                assert!(reason.contains("round skipped"), "{reason}");
                assert!(report.completed.is_empty());
                assert!(skipped.lock().unwrap().contains(&(round, draw.len())));
                skips += 1;
            }
            RoundOutcome::Completed(report) => {
                assert_eq!(report.completed, draw);
                assert!(admitted.lock().unwrap().contains(&(round, draw.len())));
            }
        }
        // A skipped round sent nothing.
        let sent: Vec<ClientId> = sim
            .sent
            .iter()
            .filter(|(_, r, _)| *r == round)
            .map(|(c, _, _)| *c)
            .collect();
        assert_eq!(sent.len(), if draw.len() < 2 { 0 } else { draw.len() });
    }
    // With q = 0.4 over 5 clients, P(fewer than 2) = 0.34: seed 11 gives some skips.
    assert!(skips > 0, "{outcomes:?}");
    assert_eq!(skipped.lock().unwrap().len(), skips);
    assert_eq!(sim.coordinator.completed_rounds(), 4);
    assert_eq!(sim.coordinator.status(), &JobStatus::Completed);
}
