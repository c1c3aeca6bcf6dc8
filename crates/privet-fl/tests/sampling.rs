//! Client sampling: determinism, size, distinctness, order.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use privet_fl::{ClientId, ClientSampler, FlError, SampleSize};

fn ids(range: std::ops::Range<u32>) -> Vec<ClientId> {
    range.map(ClientId).collect()
}

fn sampler(size: SampleSize, min_clients: usize) -> ClientSampler {
    ClientSampler {
        size,
        min_clients,
        seed: 42,
    }
}

/// `size` over `available` clients selects `expected` of them: distinct, sorted, all available.
fn check_size(size: SampleSize, min_clients: usize, available: u32, expected: usize) {
    let pool = ids(0..available);
    let s = sampler(size, min_clients);
    let got = s.sample(3, &pool).unwrap();
    assert_eq!(
        got.len(),
        expected,
        "{size:?} of {available}, min {min_clients}"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    assert!(got.iter().all(|c| c.0 < available));
}

#[test]
fn sample_sizes() {
    check_size(SampleSize::Fraction(0.1), 1, 100, 10);
    check_size(SampleSize::Fraction(0.7), 1, 10, 7); // 0.7 * 10 is 7.000000000000001 in f64
    check_size(SampleSize::Fraction(0.15), 1, 10, 2); // ceil(1.5)
    check_size(SampleSize::Fraction(0.01), 1, 10, 1); // ceil(0.1)
    check_size(SampleSize::Fraction(0.01), 4, 10, 4); // raised to min_clients
    check_size(SampleSize::Fraction(1.0), 1, 10, 10);
    check_size(SampleSize::Count(3), 1, 10, 3);
    check_size(SampleSize::Count(30), 1, 10, 10); // capped at the available count
    check_size(SampleSize::Count(2), 5, 10, 5);
}

#[test]
fn same_inputs_give_the_same_clients() {
    let pool = ids(0..1000);
    let s = sampler(SampleSize::Count(50), 1);
    let a = s.sample(7, &pool).unwrap();
    assert_eq!(a, s.sample(7, &pool).unwrap());
    // The order in which the runtime lists the clients does not matter.
    let mut shuffled = pool.clone();
    shuffled.reverse();
    shuffled.swap(3, 500);
    assert_eq!(a, s.sample(7, &shuffled).unwrap());
    // Another round or another seed gives another sample.
    assert_ne!(a, s.sample(8, &pool).unwrap());
    let other_seed = ClientSampler { seed: 43, ..s };
    assert_ne!(a, other_seed.sample(7, &pool).unwrap());
}

#[test]
fn sampling_is_value_stable() {
    // Pinned output: changing the generator, the key derivation or the index algorithm breaks
    // reproducibility of past runs, and must be a deliberate, versioned change.
    let s = ClientSampler {
        size: SampleSize::Count(5),
        min_clients: 1,
        seed: 2024,
    };
    let got: Vec<u32> = s
        .sample(1, &ids(0..100))
        .unwrap()
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(got, PINNED);
}

const PINNED: [u32; 5] = [2, 28, 47, 63, 77];

#[test]
fn hundred_thousand_available_clients() {
    let pool = ids(0..100_000);
    let s = sampler(SampleSize::Fraction(0.001), 1);
    let got = s.sample(1, &pool).unwrap();
    assert_eq!(got.len(), 100);
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    // Not concentrated at one end: a uniform sample of 100 spans most of the range.
    assert!(
        got[0].0 < 10_000 && got[99].0 > 90_000,
        "{:?}..{:?}",
        got[0],
        got[99]
    );

    // Large fractions too.
    let most = sampler(SampleSize::Fraction(0.9), 1)
        .sample(2, &pool)
        .unwrap();
    assert_eq!(most.len(), 90_000);
    assert!(most.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn every_client_gets_picked_about_equally() {
    // 10 clients, 3 per round, 3000 rounds: each is picked ~900 times.
    let pool = ids(0..10);
    let s = sampler(SampleSize::Count(3), 1);
    let mut counts = [0u32; 10];
    for round in 0..3000 {
        for c in s.sample(round, &pool).unwrap() {
            counts[c.0 as usize] += 1;
        }
    }
    for (i, &n) in counts.iter().enumerate() {
        assert!((800..1000).contains(&n), "client {i} picked {n} times");
    }
}

#[test]
fn sampling_errors() {
    let s = sampler(SampleSize::Fraction(0.5), 3);
    assert_eq!(
        s.sample(1, &ids(0..2)),
        Err(FlError::NotEnoughClients {
            available: 2,
            required: 3
        })
    );
    assert_eq!(
        sampler(SampleSize::Count(1), 0).sample(1, &[]),
        Err(FlError::NotEnoughClients {
            available: 0,
            required: 1
        })
    );
    for size in [
        SampleSize::Fraction(0.0),
        SampleSize::Fraction(1.5),
        SampleSize::Fraction(f64::NAN),
        SampleSize::Count(0),
    ] {
        assert!(matches!(
            sampler(size, 1).sample(1, &ids(0..10)),
            Err(FlError::InvalidConfig(_))
        ));
    }
    assert!(matches!(
        sampler(SampleSize::Count(2), 1).sample(1, &[ClientId(1), ClientId(2), ClientId(1)]),
        Err(FlError::InvalidConfig(_))
    ));
}
