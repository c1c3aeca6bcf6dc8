//! Property tests of aggregation, clipping and sampling.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use privet_fl::{
    AggregateInput, ClientId, ClientSampler, ClientUpdate, ClipL2, FedAvg, SampleSize,
    Strategy as _, TrainMetrics, l2_norm, weighted_sum,
};
use proptest::prelude::*;

fn update(client: u32, delta: Vec<f32>, num_examples: u64) -> ClientUpdate {
    ClientUpdate {
        client: ClientId(client),
        delta,
        num_examples,
        metrics: TrainMetrics {
            loss: 0.0,
            num_examples,
        },
    }
}

/// A global model and 1..8 updates of its length.
fn round_strategy() -> impl Strategy<Value = (Vec<f32>, Vec<ClientUpdate>)> {
    (1usize..6).prop_flat_map(|dim| {
        (
            prop::collection::vec(-10.0f32..10.0, dim),
            prop::collection::vec(
                (prop::collection::vec(-100.0f32..100.0, dim), 1u64..1000),
                1..8,
            ),
        )
            .prop_map(|(global, raw)| {
                let updates = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, (d, n))| update(i as u32, d, n))
                    .collect();
                (global, updates)
            })
    })
}

fn fedavg(global: &[f32], updates: &[ClientUpdate]) -> Vec<f32> {
    let mut g = global.to_vec();
    FedAvg
        .aggregate(1, &mut g, AggregateInput::Individual(updates))
        .unwrap();
    g
}

proptest! {
    #[test]
    fn fedavg_single_client_applies_its_delta_exactly(
        global in prop::collection::vec(-1e6f32..1e6, 1..16),
        seed in prop::collection::vec(-1e6f32..1e6, 16),
        n in 1u64..1_000_000,
    ) {
        // The client's local model is global + delta (f32): FedAvg of one client must land on it
        // bit for bit, whatever its weight.
        let delta: Vec<f32> = seed[..global.len()].to_vec();
        let got = fedavg(&global, &[update(3, delta.clone(), n)]);
        let expected: Vec<f32> = global.iter().zip(&delta).map(|(g, d)| g + d).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn fedavg_single_client_reaches_the_local_model(
        global in prop::collection::vec(1.0f32..1e3, 1..16),
        factor in prop::collection::vec(0.5f32..2.0, 16),
        n in 1u64..1_000_000,
    ) {
        // Local models within [g/2, 2g] make `local - global` exact in f32 (Sterbenz), so the
        // new global is exactly the client's local model.
        let local: Vec<f32> = global.iter().zip(&factor).map(|(g, f)| g * f).collect();
        let delta: Vec<f32> = local.iter().zip(&global).map(|(l, g)| l - g).collect();
        prop_assert_eq!(fedavg(&global, &[update(1, delta, n)]), local);
    }

    #[test]
    fn fedavg_is_permutation_invariant_and_bounded(
        (global, updates) in round_strategy(),
        perm_seed in any::<u64>(),
    ) {
        let mut shuffled = updates.clone();
        // Deterministic Fisher-Yates from the proptest-provided seed.
        let mut s = perm_seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let a = fedavg(&global, &updates);
        let b = fedavg(&global, &shuffled);
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((x - y).abs() <= 1e-5, "{} vs {}", x, y);
        }

        // The weighted mean lies within the coordinate-wise min and max of the deltas.
        let mean = weighted_sum(&updates).unwrap().mean().unwrap();
        for (i, m) in mean.iter().enumerate() {
            let lo = updates.iter().map(|u| f64::from(u.delta[i])).fold(f64::INFINITY, f64::min);
            let hi = updates.iter().map(|u| f64::from(u.delta[i])).fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(*m >= lo - 1e-9 && *m <= hi + 1e-9, "{} not in [{}, {}]", m, lo, hi);
            let step = f64::from(a[i]) - f64::from(global[i]);
            prop_assert!(step >= lo - 1e-4 && step <= hi + 1e-4);
        }
    }

    #[test]
    fn clipping_bounds_the_norm_and_keeps_the_direction(
        delta in prop::collection::vec(-1e3f32..1e3, 1..64),
        max_norm in 1e-3f32..1e2,
    ) {
        let mut clipped = delta.clone();
        ClipL2 { max_norm }.clip(ClientId(0), &mut clipped).unwrap();
        let before = l2_norm(&delta);
        let after = l2_norm(&clipped);
        prop_assert!(after <= f64::from(max_norm));
        if before <= f64::from(max_norm) {
            prop_assert_eq!(&clipped, &delta);
        } else {
            prop_assert!(after >= f64::from(max_norm) * (1.0 - 1e-5));
            let scale = after / before;
            for (c, d) in clipped.iter().zip(&delta) {
                prop_assert!((f64::from(*c) - f64::from(*d) * scale).abs() <= 1e-4 * f64::from(max_norm));
            }
        }
    }

    #[test]
    fn samples_are_sorted_distinct_available_and_sized(
        seed in any::<u64>(),
        round in any::<u32>(),
        available in 1u32..300,
        count in 1usize..400,
        min_clients in 0usize..5,
    ) {
        let pool: Vec<ClientId> = (0..available).map(|i| ClientId(i * 3)).collect();
        let sampler = ClientSampler { size: SampleSize::Count(count), min_clients, seed };
        match sampler.sample(round, &pool) {
            Ok(got) => {
                prop_assert_eq!(got.len(), count.max(min_clients).min(pool.len()));
                prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(got.iter().all(|c| c.0 % 3 == 0 && c.0 / 3 < available));
                prop_assert_eq!(&got, &sampler.sample(round, &pool).unwrap());
            }
            Err(_) => prop_assert!(pool.len() < min_clients),
        }
    }
}
