//! The coordinator's view of one client: its masked vector is indistinguishable from uniform
//! modulo 2^b even when the update is constant (chi-square tests at a fixed false-alarm rate).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::Fixture;
use privet_fl::ClientId;
use privet_fl::engine::RoundOutcome;
use privet_secagg::SecAggConfig;

/// The chi-square critical value for `df` degrees of freedom at false-alarm probability
/// 10^-6 (Wilson-Hilferty; z = 4.7534).
fn critical(df: f64) -> f64 {
    let z = 4.7534;
    let a = 2.0 / (9.0 * df);
    df * (1.0 - a + z * a.sqrt()).powi(3)
}

/// The chi-square statistic of `values` in `buckets` equally likely buckets.
fn chi_square(values: impl Iterator<Item = usize>, buckets: usize) -> f64 {
    let mut counts = vec![0u64; buckets];
    let mut total = 0u64;
    for v in values {
        counts[v] += 1;
        total += 1;
    }
    let expected = total as f64 / buckets as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// Runs one round in which every client moves every parameter by `delta`, and returns client
/// 1's masked vector as the coordinator received it.
fn masked_vector(bits: u32, model_len: usize, delta: f32) -> Vec<u64> {
    let config = SecAggConfig {
        modulus_bits: bits,
        max_clients: 100,
        ..Default::default()
    };
    let fx = Fixture::new(3, config);
    let mut sim = fx.sim(1, model_len, 0);
    for (_, trainer) in sim.clients.values_mut() {
        trainer.constant = Some(delta);
    }
    let (outcome, _) = sim.run_round();
    assert!(matches!(outcome, RoundOutcome::Completed(_)), "{outcome:?}");
    let (_, _, _, payload) = sim
        .answers
        .iter()
        .find(|(c, _, s, _)| *c == ClientId(1) && *s == 2)
        .unwrap();
    // Documented layout: header (6), b (1), count (4), words of ceil(b/8) bytes.
    let bpw = bits.div_ceil(8) as usize;
    payload[11..]
        .chunks_exact(bpw)
        .map(|w| {
            let mut b = [0u8; 8];
            b[..bpw].copy_from_slice(w);
            u64::from_le_bytes(b)
        })
        .collect()
}

#[test]
fn a_masked_constant_update_looks_uniform() {
    for bits in [32u32, 20] {
        let words = masked_vector(bits, 100_000, 0.5);
        let df = 255.0;
        // The top byte, the low byte and a middle byte of each word, 256 buckets each.
        for shift in [bits - 8, 0, (bits - 8) / 2] {
            let stat = chi_square(words.iter().map(|w| ((w >> shift) & 0xff) as usize), 256);
            assert!(
                stat < critical(df),
                "{bits} bits, shift {shift}: chi2 = {stat}"
            );
        }
        // Pairs of consecutive words (top 4 bits each): no correlation between coordinates.
        let pairs = words
            .chunks_exact(2)
            .map(|p| (((p[0] >> (bits - 4)) << 4) | (p[1] >> (bits - 4))) as usize);
        let stat = chi_square(pairs, 256);
        assert!(stat < critical(df), "{bits} bits, pairs: chi2 = {stat}");
    }
}

#[test]
fn the_test_has_power_against_an_unmasked_update() {
    // The same statistic on the plain encoding of a constant update is enormous.
    let config = SecAggConfig {
        max_clients: 100,
        ..Default::default()
    };
    let q = privet_secagg::Quantizer::new(&config).unwrap();
    let plain = q.encode(&vec![0.5; 100_000], 10, 0.1).unwrap();
    let stat = chi_square(plain.iter().map(|w| (w >> 24) as usize), 256);
    assert!(stat > 100.0 * critical(255.0));
}
