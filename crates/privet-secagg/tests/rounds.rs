//! Whole rounds through privet's engine: the unmasked sum equals the sum of the contributors'
//! quantized updates, under dropouts at every stage; rounds that cannot be unmasked abort
//! cleanly and the job goes on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Fault, Fixture, Sim};
use privet_fl::ClientId;
use privet_fl::engine::{RoundOutcome, RoundReport};
use privet_secagg::{MaskPrg, RoundStatus, Rounding, SecAggConfig, Threshold};
use proptest::prelude::*;

fn ids(v: &[u32]) -> Vec<ClientId> {
    v.iter().copied().map(ClientId).collect()
}

/// Checks a completed round: the unmasked words are the contributors' quantized updates,
/// summed; returns the report.
fn check_exact(sim: &Sim, outcome: RoundOutcome, before: &[f32]) -> RoundReport {
    let RoundOutcome::Completed(report) = outcome else {
        panic!("round failed: {outcome:?}");
    };
    let got = sim.monitor.last_sum_words().unwrap();
    let want = sim.expected_sum(report.round, before, &report.completed);
    assert_eq!(&got[..], &want[..], "round {}", report.round);
    let info = sim.monitor.last_round_info().unwrap();
    assert_eq!(info.round, report.round);
    assert_eq!(info.status, RoundStatus::Completed);
    assert_eq!(info.masked, Some(report.completed.len()));
    // FedAvg applied the decoded mean.
    let decoded = sim.quantizer.decode(&want).unwrap();
    assert_eq!(report.num_examples, decoded.total_weight);
    for ((g, b), s) in sim
        .coordinator
        .global()
        .iter()
        .zip(before)
        .zip(&decoded.sum)
    {
        let expect = f64::from(*b) + s / decoded.total_weight as f64;
        assert!((f64::from(*g) - expect).abs() < 1e-4, "{g} vs {expect}");
    }
    report
}

#[test]
fn a_complete_graph_round_is_exact() {
    let fx = Fixture::new(6, SecAggConfig::default());
    let mut sim = fx.sim(1, 7, 0);
    let (outcome, before) = sim.run_round();
    let report = check_exact(&sim, outcome, &before);
    assert_eq!(report.completed, fx.ids);
    assert_eq!(report.stages, 4);
    let p = sim.monitor.last_round_info().unwrap().params.unwrap();
    assert_eq!((p.n, p.k, p.t, p.complete), (6, 5, 3, true));
    assert!(sim.refusals.is_empty() && sim.rejects.is_empty());
}

#[test]
fn a_harary_graph_round_is_exact() {
    let fx = Fixture::new(30, SecAggConfig::default());
    let mut sim = fx.sim(1, 5, 0);
    let (outcome, before) = sim.run_round();
    let report = check_exact(&sim, outcome, &before);
    assert_eq!(report.completed.len(), 30);
    let p = sim.monitor.last_round_info().unwrap().params.unwrap();
    assert_eq!((p.n, p.k, p.t, p.complete), (30, 20, 11, false));
    assert_eq!(sim.announced_k_t(1), Some((20, 11)));
    // Each client was sent exactly its k neighbours' keys, and the graph is symmetric.
    let graph = sim.neighbours(1);
    assert_eq!(graph.len(), 30);
    for (u, nb) in &graph {
        assert_eq!(nb.len(), 20);
        assert!(nb.iter().all(|v| graph[v].contains(u)));
    }
}

#[test]
fn dropped_clients_masks_are_rebuilt() {
    for prg in [MaskPrg::Aes128Ctr, MaskPrg::ChaCha20] {
        dropped_clients_masks_are_rebuilt_with(prg);
    }
}

fn dropped_clients_masks_are_rebuilt_with(prg: MaskPrg) {
    let config = SecAggConfig {
        mask_prg: prg,
        ..SecAggConfig::default()
    };
    let fx = Fixture::new(8, config);
    let mut sim = fx.sim(1, 4, 0);
    // 3 and 6 send their shares, then drop before masking; 8 drops after answering stage 2.
    sim.fault(3, 1, 2, Fault::Drop);
    sim.fault(6, 1, 2, Fault::Silent);
    sim.fault(8, 1, 3, Fault::Drop);
    let (outcome, before) = sim.run_round();
    let report = check_exact(&sim, outcome, &before);
    assert_eq!(report.completed, ids(&[1, 2, 4, 5, 7, 8]));
    let info = sim.monitor.last_round_info().unwrap();
    assert_eq!(info.masks_rebuilt, 2);
    assert_eq!(
        (info.shared, info.masked, info.unmasked),
        (Some(8), Some(6), Some(5))
    );
}

#[test]
fn too_few_shares_abort_without_revealing_and_the_job_goes_on() {
    // n = 5, complete graph, t = 3: after 4 and 5 drop in stage 3, each survivor's self mask
    // has only two holders left.
    let fx = Fixture::new(5, SecAggConfig::default());
    let mut sim = fx.sim(1, 3, 1);
    sim.fault(4, 1, 3, Fault::Drop);
    sim.fault(5, 1, 3, Fault::Drop);
    let (outcome, before) = sim.run_round();
    let RoundOutcome::Failed {
        reason,
        job_aborted,
        ..
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.contains("2 share(s) available, 3 needed"),
        "{reason}"
    );
    assert!(!job_aborted);
    assert_eq!(sim.coordinator.global(), &before[..]);
    assert_eq!(sim.monitor.last_sum_words(), None);
    assert!(matches!(
        sim.monitor.last_round_info().unwrap().status,
        RoundStatus::Aborted(_)
    ));
    // The retry, under the next round number, completes.
    let (outcome, before) = sim.run_round();
    let report = check_exact(&sim, outcome, &before);
    assert_eq!(report.round, 2);
    assert_eq!(report.completed, fx.ids);
}

#[test]
fn early_aborts_name_their_cause() {
    // Stage 1: three of five drop, so the survivors' shares reach one holder each.
    let fx = Fixture::new(5, SecAggConfig::default());
    let mut sim = fx.sim(1, 3, 0);
    for c in [3, 4, 5] {
        sim.fault(c, 1, 1, Fault::Drop);
    }
    let (outcome, _) = sim.run_round();
    let RoundOutcome::Failed { reason, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.contains("1 share(s) available, 3 needed"),
        "{reason}"
    );

    // Stage 0: only two clients advertise keys.
    let mut sim = fx.sim(1, 3, 0);
    for c in [1, 2, 3] {
        sim.fault(c, 1, 0, Fault::Silent);
    }
    let (outcome, _) = sim.run_round();
    let RoundOutcome::Failed { reason, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.contains("only 2 client(s) advertised keys"),
        "{reason}"
    );
}

/// A vector longer than one unit of parallel mask expansion (`prg::CHUNK_WORDS` words), with
/// a dropout, sums exactly with either generator.
#[test]
fn long_vectors_sum_exactly_with_both_generators() {
    for prg in [MaskPrg::Aes128Ctr, MaskPrg::ChaCha20] {
        let config = SecAggConfig {
            mask_prg: prg,
            ..SecAggConfig::default()
        };
        let fx = Fixture::new(5, config);
        let mut sim = fx.sim(1, 2 * privet_secagg::prg::CHUNK_WORDS + 123, 0);
        sim.fault(4, 1, 2, Fault::Drop);
        let (outcome, before) = sim.run_round();
        let report = check_exact(&sim, outcome, &before);
        assert_eq!(report.completed, ids(&[1, 2, 3, 5]), "{prg}");
        assert_eq!(sim.monitor.last_round_info().unwrap().masks_rebuilt, 1);
    }
}

#[test]
fn clients_and_protocol_are_reused_across_rounds() {
    let fx = Fixture::new(7, SecAggConfig::default());
    let mut sim = fx.sim(3, 6, 0);
    sim.fault(2, 2, 2, Fault::Drop);
    sim.fault(5, 3, 1, Fault::AnswerThenDrop);
    for round in 1..=3 {
        let (outcome, before) = sim.run_round();
        let report = check_exact(&sim, outcome, &before);
        assert_eq!(report.round, round);
    }
    assert!(sim.coordinator.is_finished());
}

#[test]
fn every_modulus_width_sums_exactly() {
    for (bits, max_clients, max_weight) in [
        (16, 4, 50),
        (24, 10, 1000),
        (40, 1000, 10_000),
        (64, 1000, 10_000),
    ] {
        let config = SecAggConfig {
            modulus_bits: bits,
            max_clients,
            max_weight,
            ..Default::default()
        };
        let fx = Fixture::new(4, config);
        let mut sim = fx.sim(1, 9, 0);
        sim.fault(2, 1, 2, Fault::Drop);
        let (outcome, before) = sim.run_round();
        let report = check_exact(&sim, outcome, &before);
        assert_eq!(report.completed, ids(&[1, 3, 4]), "{bits} bits");
    }
}

#[test]
fn stochastic_rounding_rounds_complete_close_to_the_mean() {
    let config = SecAggConfig {
        rounding: Rounding::Stochastic,
        ..Default::default()
    };
    let fx = Fixture::new(5, config);
    let mut sim = fx.sim(1, 50, 0);
    let (outcome, before) = sim.run_round();
    let RoundOutcome::Completed(report) = outcome else {
        panic!("{outcome:?}");
    };
    // Stochastic rounding cannot be replayed, but the decoded sum is within one step per
    // client of the nearest-rounded one.
    let got = sim
        .quantizer
        .decode(&sim.monitor.last_sum_words().unwrap())
        .unwrap();
    let nearest = sim
        .quantizer
        .decode(&sim.expected_sum(1, &before, &report.completed))
        .unwrap();
    assert_eq!(got.total_weight, nearest.total_weight);
    let tol = 5.0 * sim.quantizer.delta_step() + 1e-9;
    for (g, n) in got.sum.iter().zip(&nearest.sum) {
        assert!((g - n).abs() <= tol, "{g} vs {n}");
    }
}

/// Survivor sets of each stage when every fault is "no answer" (Drop or Silent).
fn survivors(clients: &[ClientId], faults: &BTreeMap<ClientId, u8>) -> [Vec<ClientId>; 4] {
    std::array::from_fn(|stage| {
        clients
            .iter()
            .copied()
            .filter(|c| faults.get(c).is_none_or(|&s| usize::from(s) > stage))
            .collect()
    })
}

/// Whether a round with neighbour lists `nb`, threshold `t` and survivor sets `u` can be
/// unmasked: every secret that is needed keeps `t` holders at every stage.
fn recoverable(nb: &BTreeMap<ClientId, Vec<ClientId>>, t: usize, u: &[Vec<ClientId>; 4]) -> bool {
    let holders = |c: &ClientId, set: &[ClientId]| nb[c].iter().filter(|v| set.contains(v)).count();
    let [_, u2, u3, u4] = u;
    let dropped: Vec<ClientId> = u2.iter().copied().filter(|c| !u3.contains(c)).collect();
    let needed_dropped: Vec<&ClientId> = dropped.iter().filter(|v| holders(v, u3) > 0).collect();
    !u4.is_empty()
        && u2.iter().all(|c| holders(c, u2) >= t)
        && u3
            .iter()
            .chain(needed_dropped.iter().copied())
            .all(|c| holders(c, u3) >= t)
        && u3
            .iter()
            .chain(needed_dropped.iter().copied())
            .all(|c| holders(c, u4) >= t)
}

fn fault_strategy() -> impl Strategy<Value = Option<(u8, Fault)>> {
    prop::option::weighted(
        0.35,
        (
            0u8..4,
            prop::sample::select(vec![Fault::Drop, Fault::Silent, Fault::AnswerThenDrop]),
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Complete graphs (SecAgg): any dropouts, including after an answer. The round completes
    /// exactly when every stage keeps t + 1 survivors, and then the sum is exact.
    #[test]
    fn complete_graph_rounds_survive_any_dropouts(
        faults in prop::collection::vec(fault_strategy(), 3..10),
    ) {
        let n = faults.len() as u32;
        let fx = Fixture::new(n, SecAggConfig::default());
        let mut sim = fx.sim(1, 3, 0);
        for (i, f) in faults.iter().enumerate() {
            if let Some((stage, fault)) = f {
                sim.fault(i as u32 + 1, 1, *stage, *fault);
            }
        }
        let (outcome, before) = sim.run_round();
        let info = sim.monitor.last_round_info().unwrap();
        let expected_ok = info.params.is_some_and(|p| {
            let enough = |s: Option<usize>| s.is_some_and(|s| s > p.t);
            enough(info.shared) && enough(info.masked) && enough(info.unmasked)
        });
        match outcome {
            RoundOutcome::Completed(_) => {
                prop_assert!(expected_ok, "{info:?}");
                let report = check_exact(&sim, outcome, &before);
                // Clients that dropped before masking are not in the sum.
                for (i, f) in faults.iter().enumerate() {
                    let c = ClientId(i as u32 + 1);
                    if let Some((stage @ 0..=1, Fault::Drop | Fault::Silent)) = f {
                        prop_assert!(!report.completed.contains(&c), "{c} dropped at {stage}");
                    }
                    if f.is_none() {
                        prop_assert!(report.completed.contains(&c));
                    }
                }
            }
            RoundOutcome::Failed { reason, .. } => {
                prop_assert!(!expected_ok, "{reason} / {info:?}");
                prop_assert_eq!(sim.monitor.last_sum_words(), None);
                prop_assert_eq!(sim.coordinator.global(), &before[..]);
            }
        }
        prop_assert!(sim.refusals.is_empty(), "{:?}", sim.refusals);
    }

    /// Harary graphs (SecAgg+, degree 4 over 10 to 16 clients): the round completes exactly
    /// when every needed secret keeps t holders among its neighbours at every stage, and then
    /// the sum is exact.
    #[test]
    fn harary_rounds_survive_dropouts_that_leave_t_holders(
        faults in prop::collection::vec(
            prop::option::weighted(0.25, (0u8..4, prop::bool::ANY)), 10..17),
        wide in prop::bool::ANY,
    ) {
        let n = faults.len() as u32;
        let degree = if wide { 6 } else { 4 };
        let config = SecAggConfig {
            degree: Some(degree),
            reconstruction_threshold: Some(Threshold::Fraction(0.5)),
            ..Default::default()
        };
        let fx = Fixture::new(n, config);
        let mut sim = fx.sim(1, 3, 0);
        let mut by_client = BTreeMap::new();
        for (i, f) in faults.iter().enumerate() {
            if let Some((stage, silent)) = f {
                let fault = if *silent { Fault::Silent } else { Fault::Drop };
                sim.fault(i as u32 + 1, 1, *stage, fault);
                by_client.insert(ClientId(i as u32 + 1), *stage);
            }
        }
        let (outcome, before) = sim.run_round();
        let u = survivors(&fx.ids, &by_client);
        let nb = sim.neighbours(1);
        let expected_ok = u[0].len() >= 3 && {
            let p = sim.monitor.last_round_info().unwrap().params.unwrap();
            // The graph is drawn over the clients that advertised keys: with no more than
            // degree + 1 of them it is the complete graph (found by this test: 10 clients, 3
            // lost at stage 0, degree 6).
            prop_assert_eq!(p.complete, degree as usize + 1 >= u[0].len());
            prop_assert_eq!(nb.keys().copied().collect::<Vec<_>>(), u[0].clone());
            recoverable(&nb, p.t, &u)
        };
        match outcome {
            RoundOutcome::Completed(_) => {
                prop_assert!(expected_ok);
                let report = check_exact(&sim, outcome, &before);
                prop_assert_eq!(&report.completed, &u[2]);
            }
            RoundOutcome::Failed { reason, .. } => {
                prop_assert!(!expected_ok, "{}", reason);
                prop_assert_eq!(sim.monitor.last_sum_words(), None);
            }
        }
        let distinct: BTreeSet<_> = sim.refusals.iter().map(|r| r.0).collect();
        prop_assert!(distinct.is_empty(), "{:?}", sim.refusals);
    }
}

/// A round that cannot gather enough keys (two of three clients lost at stage 0) fails before
/// anyone trains: clients train only once the round's graph exists. The retry trains everyone
/// once.
#[test]
fn no_client_trains_for_a_round_that_fails_at_key_advertisement() {
    let fx = Fixture::new(3, SecAggConfig::default());
    let mut sim = fx.sim(1, 3, 1);
    sim.fault(2, 1, 0, Fault::Drop);
    sim.fault(3, 1, 0, Fault::Drop);
    let (outcome, _) = sim.run_round();
    assert!(
        matches!(outcome, RoundOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert!(sim.clients.values().all(|(_, t)| t.fits == 0));
    let (outcome, _) = sim.run_round();
    assert!(matches!(outcome, RoundOutcome::Completed(_)), "{outcome:?}");
    assert!(sim.clients.values().all(|(_, t)| t.fits == 1));
}
