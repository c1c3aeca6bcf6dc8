//! Every strategy against hand-computed results on tiny vectors.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use privet_fl::{
    AggregateInput, ClientId, ClientTrainConfig, ClientUpdate, ClipL2, FlError, StrategyConfig,
    TrainMetrics, WeightedSum, l2_norm, weighted_sum,
};

fn upd(client: u32, delta: &[f32], num_examples: u64) -> ClientUpdate {
    ClientUpdate {
        client: ClientId(client),
        delta: delta.to_vec(),
        num_examples,
        metrics: TrainMetrics {
            loss: 1.0,
            num_examples,
        },
    }
}

/// Runs `config` from `global` over one round per entry of `rounds` (individual updates) and
/// compares the final model with `expected` (tolerance 1e-6).
fn check(config: StrategyConfig, global: &[f32], rounds: &[Vec<ClientUpdate>], expected: &[f64]) {
    let mut strategy = config.build().unwrap();
    let mut g = global.to_vec();
    for (r, updates) in rounds.iter().enumerate() {
        strategy
            .aggregate(r as u32 + 1, &mut g, AggregateInput::Individual(updates))
            .unwrap();
    }
    assert_close(&g, expected, &format!("{config:?}"));

    // Sum-requirement strategies must give the same through a WeightedSum.
    if strategy.requirement() == privet_fl::Requirement::Sum {
        let mut strategy = config.build().unwrap();
        let mut g = global.to_vec();
        for (r, updates) in rounds.iter().enumerate() {
            let sum = weighted_sum(updates).unwrap();
            strategy
                .aggregate(r as u32 + 1, &mut g, AggregateInput::Sum(&sum))
                .unwrap();
        }
        assert_close(&g, expected, &format!("{config:?} via sum"));
    }
}

fn assert_close(got: &[f32], expected: &[f64], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (f64::from(g) - e).abs() <= 1e-6,
            "{what}: coordinate {i}: got {g}, expected {e}"
        );
    }
}

/// Aggregating `updates` with `config` fails with `expected` and leaves the model unchanged.
fn check_err(config: StrategyConfig, global: &[f32], updates: &[ClientUpdate], expected: FlError) {
    let mut strategy = config.build().unwrap();
    let mut g = global.to_vec();
    let err = strategy
        .aggregate(1, &mut g, AggregateInput::Individual(updates))
        .unwrap_err();
    assert_eq!(err, expected, "{config:?}");
    assert_eq!(g, global, "{config:?}: model changed on error");
}

#[test]
fn fedavg_is_example_weighted() {
    // mean = ((1*1 + 3*4)/4, (1*-2 + 3*1)/4) = (3.25, 0.25); global (1, 2) -> (4.25, 2.25)
    check(
        StrategyConfig::FedAvg,
        &[1.0, 2.0],
        &[vec![upd(1, &[1.0, -2.0], 1), upd(2, &[4.0, 1.0], 3)]],
        &[4.25, 2.25],
    );
}

#[test]
fn fedprox_aggregates_like_fedavg_and_configures_clients() {
    check(
        StrategyConfig::FedProx { mu: 0.01 },
        &[1.0, 2.0],
        &[vec![upd(1, &[1.0, -2.0], 1), upd(2, &[4.0, 1.0], 3)]],
        &[4.25, 2.25],
    );
    let s = StrategyConfig::FedProx { mu: 0.01 }.build().unwrap();
    assert_eq!(
        s.client_config(),
        ClientTrainConfig {
            proximal_mu: Some(0.01)
        }
    );
    assert_eq!(
        StrategyConfig::FedAvg.build().unwrap().client_config(),
        ClientTrainConfig::default()
    );
}

#[test]
fn fedavgm_two_rounds() {
    let rounds = [vec![upd(1, &[1.0, -2.0], 5)], vec![upd(1, &[0.5, 0.0], 5)]];
    // lr 1, momentum 0.9: v1 = (1, -2), g1 = (1, -2); v2 = 0.9 v1 + (0.5, 0) = (1.4, -1.8),
    // g2 = (2.4, -3.8)
    check(
        StrategyConfig::fed_avgm(),
        &[0.0, 0.0],
        &rounds,
        &[2.4, -3.8],
    );
    // lr 0.5: g1 = (0.5, -1); g2 = g1 + 0.5 (1.4, -1.8) = (1.2, -1.9)
    check(
        StrategyConfig::FedAvgM {
            server_lr: 0.5,
            momentum: 0.9,
        },
        &[0.0, 0.0],
        &rounds,
        &[1.2, -1.9],
    );
    // momentum 0, lr 1 is FedAvg: (1.5, -2)
    check(
        StrategyConfig::FedAvgM {
            server_lr: 1.0,
            momentum: 0.0,
        },
        &[0.0, 0.0],
        &rounds,
        &[1.5, -2.0],
    );
}

#[test]
fn fedadam_two_rounds() {
    // eta 1, beta1 0.5, beta2 0.75, tau 0.5; m, v start at 0.
    // Round 1: mean of (5,3,4) x1 and (1,-1,4) x3 = (2, 0, 4).
    //   m1 = 0.5 * (2,0,4) = (1, 0, 2); v1 = 0.25 * (4,0,16) = (1, 0, 4)
    //   x1 = (1/(1+0.5), 0/(0+0.5), 2/(2+0.5)) = (2/3, 0, 0.8)
    // Round 2: delta (1, 2, -2).
    //   m2 = 0.5 m1 + 0.5 d = (1, 1, 0); v2 = 0.75 v1 + 0.25 d^2 = (1, 1, 4)
    //   x2 = x1 + (1/1.5, 1/1.5, 0) = (4/3, 2/3, 0.8)
    check(
        StrategyConfig::FedAdam {
            eta: 1.0,
            beta1: 0.5,
            beta2: 0.75,
            tau: 0.5,
        },
        &[0.0, 0.0, 0.0],
        &[
            vec![upd(1, &[5.0, 3.0, 4.0], 1), upd(2, &[1.0, -1.0, 4.0], 3)],
            vec![upd(1, &[1.0, 2.0, -2.0], 2)],
        ],
        &[4.0 / 3.0, 2.0 / 3.0, 0.8],
    );
}

#[test]
fn fedyogi_two_rounds() {
    // eta 1, beta1 0.5, beta2 0.75, tau 0.5; deltas (2,0,4,4) then (1,2,0,1).
    // Round 1: v0 = 0, so v1 = 0 - 0.25 d^2 sign(0 - d^2) = 0.25 d^2 = (1, 0, 4, 4)
    //   (sign(0) = 0 for the zero coordinate); m1 = (1, 0, 2, 2)
    //   x1 = (1/1.5, 0, 2/2.5, 2/2.5) = (2/3, 0, 0.8, 0.8)
    // Round 2: d^2 = (1, 4, 0, 1); v1 - d^2 = (0, -4, 4, 3), signs (0, -1, 1, 1)
    //   v2 = (1, 0 + 0.25*4, 4 - 0, 4 - 0.25*1) = (1, 1, 4, 3.75)
    //   m2 = 0.5 m1 + 0.5 d = (1, 1, 1, 1.5)
    //   x2 = (2/3 + 2/3, 0 + 2/3, 0.8 + 1/2.5, 0.8 + 1.5/(sqrt(3.75) + 0.5))
    check(
        StrategyConfig::FedYogi {
            eta: 1.0,
            beta1: 0.5,
            beta2: 0.75,
            tau: 0.5,
        },
        &[0.0; 4],
        &[
            vec![upd(1, &[2.0, 0.0, 4.0, 4.0], 1)],
            vec![upd(1, &[1.0, 2.0, 0.0, 1.0], 1)],
        ],
        &[
            4.0 / 3.0,
            2.0 / 3.0,
            1.2,
            0.8 + 1.5 / (3.75f64.sqrt() + 0.5),
        ],
    );
}

#[test]
fn fedadagrad_two_rounds() {
    // eta 1, beta1 0 (Flower), tau 0.5; deltas (2,0,4) then (1.5,2,-3).
    // Round 1: m1 = d = (2,0,4); v1 = d^2 = (4,0,16); x1 = (2/2.5, 0/0.5, 4/4.5) = (0.8, 0, 8/9)
    // Round 2: m2 = (1.5,2,-3); v2 = v1 + d^2 = (6.25, 4, 25)
    //   x2 = x1 + (1.5/3, 2/2.5, -3/5.5) = (1.3, 0.8, 8/9 - 6/11 = 34/99)
    check(
        StrategyConfig::FedAdagrad {
            eta: 1.0,
            beta1: 0.0,
            tau: 0.5,
        },
        &[0.0; 3],
        &[
            vec![upd(1, &[2.0, 0.0, 4.0], 1)],
            vec![upd(1, &[1.5, 2.0, -3.0], 1)],
        ],
        &[1.3, 0.8, 34.0 / 99.0],
    );
}

#[test]
fn fedopt_defaults_are_flowers() {
    assert_eq!(
        StrategyConfig::fed_adam(),
        StrategyConfig::FedAdam {
            eta: 1e-1,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-9
        }
    );
    assert_eq!(
        StrategyConfig::fed_yogi(),
        StrategyConfig::FedYogi {
            eta: 1e-2,
            beta1: 0.9,
            beta2: 0.99,
            tau: 1e-3
        }
    );
    assert_eq!(
        StrategyConfig::fed_adagrad(),
        StrategyConfig::FedAdagrad {
            eta: 1e-1,
            beta1: 0.0,
            tau: 1e-9
        }
    );
    assert_eq!(
        StrategyConfig::fed_avgm(),
        StrategyConfig::FedAvgM {
            server_lr: 1.0,
            momentum: 0.9
        }
    );
    // One FedAdam round with the defaults and delta 1: m = 0.1, v = 0.01,
    // step = 0.1 * 0.1 / (0.1 + 1e-9) ~ 0.1
    check(
        StrategyConfig::fed_adam(),
        &[0.0],
        &[vec![upd(1, &[1.0], 1)]],
        &[0.1 * 0.1 / (0.1 + 1e-9)],
    );
}

#[test]
fn median_odd_and_even() {
    // Odd: columns {1,2,100} {10,20,-5} {-1,-2,0} -> (2, 10, -1); weights are ignored.
    check(
        StrategyConfig::Median,
        &[0.0, 0.0, 1.0],
        &[vec![
            upd(1, &[1.0, 10.0, -1.0], 1),
            upd(2, &[2.0, 20.0, -2.0], 100),
            upd(3, &[100.0, -5.0, 0.0], 1),
        ]],
        &[2.0, 10.0, 0.0],
    );
    // Even: {1,2,3,100} -> (2+3)/2 = 2.5; {-4,0,8,-50} -> (-4+0)/2 = -2
    check(
        StrategyConfig::Median,
        &[0.0, 0.0],
        &[vec![
            upd(4, &[100.0, -4.0], 1),
            upd(1, &[1.0, 0.0], 1),
            upd(3, &[3.0, 8.0], 1),
            upd(2, &[2.0, -50.0], 1),
        ]],
        &[2.5, -2.0],
    );
}

#[test]
fn trimmed_mean() {
    let four = vec![
        upd(1, &[1.0, -50.0], 1),
        upd(2, &[2.0, 0.0], 7),
        upd(3, &[3.0, 4.0], 1),
        upd(4, &[100.0, 8.0], 1),
    ];
    // beta 0.25, n 4: trim 1 each side: {1,2,3,100} -> 2.5, {-50,0,4,8} -> 2
    check(
        StrategyConfig::TrimmedMean { beta: 0.25 },
        &[0.0, 0.0],
        std::slice::from_ref(&four),
        &[2.5, 2.0],
    );
    // beta 0.2, n 4: floor(0.8) = 0 trimmed: unweighted mean (106/4, -38/4)
    check(
        StrategyConfig::TrimmedMean { beta: 0.2 },
        &[0.0, 0.0],
        &[four],
        &[26.5, -9.5],
    );
    // beta 0.4, n 5: trim 2 each side: the middle value
    check(
        StrategyConfig::TrimmedMean { beta: 0.4 },
        &[1.0],
        &[vec![
            upd(1, &[1.0], 1),
            upd(2, &[100.0], 1),
            upd(3, &[3.0], 1),
            upd(4, &[2.0], 1),
            upd(5, &[4.0], 1),
        ]],
        &[4.0],
    );
}

#[test]
fn krum_picks_an_honest_update() {
    // f = 1, n = 5, each score sums the n - f - 2 = 2 smallest squared distances.
    // a=(0,0) b=(1,0) c=(0,1) d=(.5,.5) e=(10,10):
    //   a: {b 1, c 1, d .5, e 200} -> 1.5;  b: {a 1, c 2, d .5, e 181} -> 1.5
    //   c: {a 1, b 2, d .5, e 181} -> 1.5;  d: {a .5, b .5, c .5, e 180.5} -> 1.0
    //   e: {a 200, b 181, c 181, d 180.5} -> 361.5          => Krum picks d
    let updates = vec![
        upd(5, &[10.0, 10.0], 1000),
        upd(1, &[0.0, 0.0], 1),
        upd(2, &[1.0, 0.0], 1),
        upd(3, &[0.0, 1.0], 1),
        upd(4, &[0.5, 0.5], 1),
    ];
    check(
        StrategyConfig::Krum { byzantine: 1 },
        &[1.0, 1.0],
        std::slice::from_ref(&updates),
        &[1.5, 1.5],
    );
    // Multi-Krum, m = n - f = 4: d, a, b, c -> mean ((.5+0+1+0)/4, (.5+0+0+1)/4)
    check(
        StrategyConfig::MultiKrum {
            byzantine: 1,
            select: None,
        },
        &[0.0, 0.0],
        std::slice::from_ref(&updates),
        &[0.375, 0.375],
    );
    // m = 2: d, then a (a, b, c tie at 1.5: lowest client id) -> (0.25, 0.25)
    check(
        StrategyConfig::MultiKrum {
            byzantine: 1,
            select: Some(2),
        },
        &[0.0, 0.0],
        std::slice::from_ref(&updates),
        &[0.25, 0.25],
    );
    // m = 10 is capped at n - f = 4
    check(
        StrategyConfig::MultiKrum {
            byzantine: 1,
            select: Some(10),
        },
        &[0.0, 0.0],
        &[updates],
        &[0.375, 0.375],
    );
}

#[test]
fn krum_ties_go_to_the_lowest_client_id() {
    // a=(0,0) b=(1,0) c=(0,1) d=(1,1) all score 2 (distances 1 and 1); the outlier scores 343.
    // Input order puts client 5 first; the tie goes to client 2.
    check(
        StrategyConfig::Krum { byzantine: 1 },
        &[0.0, 0.0],
        &[vec![
            upd(5, &[1.0, 1.0], 1),
            upd(9, &[10.0, 10.0], 1),
            upd(3, &[1.0, 0.0], 1),
            upd(2, &[0.0, 1.0], 1),
            upd(4, &[0.0, 0.0], 1),
        ]],
        &[0.0, 1.0],
    );
}

#[test]
fn aggregation_errors() {
    let g = [1.0_f32, 2.0];
    let ok = upd(1, &[1.0, 1.0], 1);
    for config in [
        StrategyConfig::FedAvg,
        StrategyConfig::fed_avgm(),
        StrategyConfig::fed_adam(),
        StrategyConfig::Median,
        StrategyConfig::TrimmedMean { beta: 0.1 },
        StrategyConfig::MultiKrum {
            byzantine: 0,
            select: None,
        },
    ] {
        check_err(
            config.clone(),
            &g,
            &[ok.clone(), upd(7, &[1.0, 2.0, 3.0], 1), ok.clone()],
            FlError::ShapeMismatch {
                client: ClientId(7),
                expected: 2,
                found: 3,
            },
        );
        check_err(
            config.clone(),
            &g,
            &[ok.clone(), upd(8, &[f32::NAN, 0.0], 1), ok.clone()],
            FlError::NonFinite {
                client: ClientId(8),
            },
        );
        check_err(
            config.clone(),
            &g,
            &[ok.clone(), upd(8, &[0.0, f32::NEG_INFINITY], 1), ok.clone()],
            FlError::NonFinite {
                client: ClientId(8),
            },
        );
        check_err(config, &g, &[], FlError::EmptyRound);
    }
    check_err(
        StrategyConfig::FedAvg,
        &g,
        &[upd(1, &[1.0, 1.0], 0), upd(2, &[1.0, 1.0], 0)],
        FlError::ZeroWeight,
    );
    // Krum needs n > 2f + 2
    check_err(
        StrategyConfig::Krum { byzantine: 1 },
        &g,
        &[ok.clone(), ok.clone(), ok.clone(), ok.clone()],
        FlError::NotEnoughUpdates {
            strategy: "krum",
            needed: 5,
            found: 4,
        },
    );
}

#[test]
fn robust_strategies_refuse_a_bare_sum() {
    let sum = weighted_sum(&[upd(1, &[1.0], 1)]).unwrap();
    for config in [
        StrategyConfig::Median,
        StrategyConfig::TrimmedMean { beta: 0.1 },
        StrategyConfig::Krum { byzantine: 0 },
        StrategyConfig::MultiKrum {
            byzantine: 0,
            select: None,
        },
    ] {
        let mut s = config.build().unwrap();
        assert_eq!(s.requirement(), privet_fl::Requirement::Individual);
        let err = s
            .aggregate(1, &mut [0.0], AggregateInput::Sum(&sum))
            .unwrap_err();
        assert!(matches!(err, FlError::Unsupported(_)), "{config:?}: {err}");
    }
    // And a Sum strategy refuses a sum of the wrong length.
    let err = StrategyConfig::FedAvg
        .build()
        .unwrap()
        .aggregate(1, &mut [0.0, 0.0], AggregateInput::Sum(&sum))
        .unwrap_err();
    assert_eq!(
        err,
        FlError::LengthMismatch {
            expected: 2,
            found: 1
        }
    );
}

#[test]
fn invalid_configs_are_refused() {
    for config in [
        StrategyConfig::FedProx { mu: -0.1 },
        StrategyConfig::FedProx { mu: f32::NAN },
        StrategyConfig::FedAvgM {
            server_lr: 0.0,
            momentum: 0.9,
        },
        StrategyConfig::FedAvgM {
            server_lr: 1.0,
            momentum: 1.0,
        },
        StrategyConfig::FedAdam {
            eta: 0.1,
            beta1: 0.9,
            beta2: 0.99,
            tau: 0.0,
        },
        StrategyConfig::FedYogi {
            eta: 0.1,
            beta1: 1.0,
            beta2: 0.99,
            tau: 1e-3,
        },
        StrategyConfig::FedYogi {
            eta: 0.1,
            beta1: 0.9,
            beta2: -0.1,
            tau: 1e-3,
        },
        StrategyConfig::FedAdagrad {
            eta: f64::NAN,
            beta1: 0.0,
            tau: 1e-9,
        },
        StrategyConfig::TrimmedMean { beta: 0.5 },
        StrategyConfig::TrimmedMean { beta: -0.01 },
        StrategyConfig::MultiKrum {
            byzantine: 1,
            select: Some(0),
        },
    ] {
        let err = config.build().unwrap_err();
        assert!(
            matches!(err, FlError::InvalidConfig(_)),
            "{config:?}: {err}"
        );
    }
}

#[test]
fn strategy_names() {
    let names: Vec<&str> = [
        StrategyConfig::FedAvg,
        StrategyConfig::FedProx { mu: 0.0 },
        StrategyConfig::fed_avgm(),
        StrategyConfig::fed_adam(),
        StrategyConfig::fed_yogi(),
        StrategyConfig::fed_adagrad(),
        StrategyConfig::Median,
        StrategyConfig::TrimmedMean { beta: 0.1 },
        StrategyConfig::Krum { byzantine: 0 },
        StrategyConfig::MultiKrum {
            byzantine: 0,
            select: None,
        },
    ]
    .iter()
    .map(|c| c.build().unwrap().name())
    .collect();
    assert_eq!(
        names,
        [
            "fedavg",
            "fedprox",
            "fedavgm",
            "fedadam",
            "fedyogi",
            "fedadagrad",
            "median",
            "trimmed-mean",
            "krum",
            "multi-krum"
        ]
    );
}

#[test]
fn weighted_sum_accumulates_in_f64() {
    let sum = weighted_sum(&[upd(1, &[1.0, -2.0], 1), upd(2, &[4.0, 1.0], 3)]).unwrap();
    assert_eq!(
        sum,
        WeightedSum {
            sum: vec![13.0, 1.0],
            total_weight: 4.0,
            num_clients: 2
        }
    );
    assert_eq!(sum.mean().unwrap(), vec![3.25, 0.25]);
    assert_eq!(
        weighted_sum(&[upd(1, &[1.0], 1), upd(2, &[1.0, 2.0], 1)]),
        Err(FlError::ShapeMismatch {
            client: ClientId(2),
            expected: 1,
            found: 2
        })
    );
    assert_eq!(weighted_sum(&[]), Err(FlError::EmptyRound));
}

/// Clipping `delta` to `max_norm` gives `expected`.
fn check_clip(max_norm: f32, delta: &[f32], expected: &[f64]) {
    let mut d = delta.to_vec();
    ClipL2 { max_norm }.clip(ClientId(1), &mut d).unwrap();
    assert_close(&d, expected, &format!("clip {delta:?} to {max_norm}"));
    assert!(l2_norm(&d) <= f64::from(max_norm));
}

#[test]
fn clip_l2() {
    // ||(3,4)|| = 5 -> scaled by 1/5 to norm 1
    check_clip(1.0, &[3.0, 4.0], &[0.6, 0.8]);
    // already inside: unchanged
    check_clip(10.0, &[3.0, 4.0], &[3.0, 4.0]);
    check_clip(5.0, &[3.0, 4.0], &[3.0, 4.0]);
    check_clip(0.5, &[0.0, 0.0, 0.0], &[0.0, 0.0, 0.0]);
    // the bound holds after rounding for awkward values
    for (i, c) in [0.1_f32, 0.3, 1e-3, 7.77].into_iter().enumerate() {
        let mut d: Vec<f32> = (0..1000)
            .map(|k| ((k * 37 + i) % 101) as f32 / 7.0)
            .collect();
        ClipL2 { max_norm: c }.clip(ClientId(1), &mut d).unwrap();
        assert!(l2_norm(&d) <= f64::from(c), "norm {} > {c}", l2_norm(&d));
        assert!(l2_norm(&d) > f64::from(c) * 0.999);
    }
    let clip = ClipL2 { max_norm: 1.0 };
    assert_eq!(
        clip.clip(ClientId(4), &mut [f32::NAN]),
        Err(FlError::NonFinite {
            client: ClientId(4)
        })
    );
    assert!(matches!(
        ClipL2 { max_norm: 0.0 }.clip(ClientId(4), &mut [1.0]),
        Err(FlError::InvalidConfig(_))
    ));
}
