//! Seeded, reproducible client sampling.
//!
//! The clients of round `r` depend only on `(seed, r, the set of available clients)`: not on
//! the order in which the runtime lists them, and not on `rand`'s algorithms. The generator is
//! ChaCha20 (value-stable across `rand_chacha` versions) keyed by the seed and a domain tag, on
//! stream `r`; indices are drawn with Floyd's algorithm (O(k) memory) and Lemire's unbiased
//! bounded integers.
//!
//! [`SampleSize::Poisson`] is Poisson sampling, the scheme whose privacy amplification DP
//! analyses of DP-SGD and DP-FedAvg assume: each available client is in the round
//! independently with probability `q`, by its own coin, so the round's size is random. Client
//! `c`'s coin in round `r` is word `c` of a ChaCha20 stream keyed by the seed and another domain
//! tag, on stream `r`: it depends on `(seed, r, c)` only, not on which other clients are
//! available. A draw can be smaller than `min_clients` (even empty): [`ClientSampler::sample`]
//! returns it as it is, and the round engine skips such a round (it uses its round number and
//! counts as a failed round; see [`Coordinator::start_round`](crate::engine::Coordinator::start_round)).

use std::collections::HashSet;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::{ClientId, FlError};

/// How many clients a round selects.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleSize {
    /// `ceil(fraction * available)`, `0 < fraction <= 1`.
    Fraction(f64),
    /// A fixed number of clients (at least 1).
    Count(usize),
    /// Poisson sampling: every available client independently with probability `q`,
    /// `0 < q <= 1` (the expected size is `q · available`; see the [module docs](self)).
    Poisson(f64),
}

impl SampleSize {
    /// Whether this is Poisson sampling (a round's size is random).
    pub fn is_poisson(&self) -> bool {
        matches!(self, SampleSize::Poisson(_))
    }
}

/// Selects the clients of each round, reproducibly.
///
/// The selection size (fraction or count) is clamped to `[min_clients, available]`; sampling
/// fails if fewer than `min_clients` (and at least one) distinct clients are available. A
/// Poisson draw is not clamped: it may hold fewer than `min_clients` clients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientSampler {
    /// Selection size.
    pub size: SampleSize,
    /// Minimum number of clients per round.
    pub min_clients: usize,
    /// Seed of the sampling stream.
    pub seed: u64,
}

/// Domain separation for the sampler's ChaCha20 key (24 bytes after the 8-byte seed).
const DOMAIN: &[u8; 24] = b"privet-fl/sampler/v1\0\0\0\0";

/// Domain separation for Poisson sampling's coins.
const POISSON_DOMAIN: &[u8; 24] = b"privet-fl/poisson/v1\0\0\0\0";

impl ClientSampler {
    /// Checks the size parameters.
    pub fn validate(&self) -> Result<(), FlError> {
        match self.size {
            SampleSize::Fraction(f) if !(f.is_finite() && f > 0.0 && f <= 1.0) => Err(
                FlError::InvalidConfig(format!("sample fraction must be in (0, 1], got {f}")),
            ),
            SampleSize::Count(0) => Err(FlError::InvalidConfig(
                "sample count must be at least 1".into(),
            )),
            SampleSize::Poisson(q) if !(q.is_finite() && q > 0.0 && q <= 1.0) => Err(
                FlError::InvalidConfig(format!("Poisson sampling rate must be in (0, 1], got {q}")),
            ),
            _ => Ok(()),
        }
    }

    /// Number of clients selected out of `available`, before checking `min_clients` (for
    /// Poisson sampling: the expected number `q · available`, rounded up).
    pub fn target_size(&self, available: usize) -> usize {
        let wanted = match self.size {
            SampleSize::Fraction(f) | SampleSize::Poisson(f) => {
                // Guard against `0.7 * 10 = 7.000000000000001` rounding up to 8.
                let x = f * available as f64;
                (x - 1e-9).ceil().max(0.0) as usize
            }
            SampleSize::Count(k) => k,
        };
        wanted.max(self.min_clients).max(1).min(available)
    }

    /// The clients of `round`, sorted ascending.
    pub fn sample(&self, round: u32, available: &[ClientId]) -> Result<Vec<ClientId>, FlError> {
        self.validate()?;
        let sorted_copy;
        let pool: &[ClientId] = if available.windows(2).all(|w| w[0] < w[1]) {
            available
        } else {
            let mut v = available.to_vec();
            v.sort_unstable();
            if v.windows(2).any(|w| w[0] == w[1]) {
                return Err(FlError::InvalidConfig(
                    "available clients contain a duplicate id".into(),
                ));
            }
            sorted_copy = v;
            &sorted_copy
        };
        let n = pool.len();
        let required = self.min_clients.max(1);
        if n < required {
            return Err(FlError::NotEnoughClients {
                available: n,
                required,
            });
        }
        if let SampleSize::Poisson(q) = self.size {
            return Ok(self.poisson(round, q, pool));
        }
        let k = self.target_size(n);
        if k == n {
            return Ok(pool.to_vec());
        }
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..].copy_from_slice(DOMAIN);
        let mut rng = ChaCha20Rng::from_seed(key);
        rng.set_stream(u64::from(round));
        let mut indices = floyd_sample(&mut rng, n as u64, k);
        indices.sort_unstable();
        Ok(indices.into_iter().map(|i| pool[i as usize]).collect())
    }
}

impl ClientSampler {
    /// The Poisson draw of `round` from the sorted `pool`: client `c` is in when word `c` of
    /// the round's stream, as a fraction of `2^64`, is below `q` (exactly probability `q` up to
    /// `2^-64`).
    fn poisson(&self, round: u32, q: f64, pool: &[ClientId]) -> Vec<ClientId> {
        if q >= 1.0 {
            return pool.to_vec();
        }
        // q · 2^64, exact for the f64 q (q < 1, so it fits).
        let threshold = (q * 18_446_744_073_709_551_616.0) as u64;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..].copy_from_slice(POISSON_DOMAIN);
        let mut rng = ChaCha20Rng::from_seed(key);
        rng.set_stream(u64::from(round));
        pool.iter()
            .copied()
            .filter(|c| {
                rng.set_word_pos(u128::from(c.0) * 2);
                rng.next_u64() < threshold
            })
            .collect()
    }
}

/// Uniform integer in `[0, n)`, `n > 0` (Lemire 2019, unbiased).
fn below(rng: &mut ChaCha20Rng, n: u64) -> u64 {
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// `k` distinct indices out of `0..n` (Floyd's algorithm), unordered.
fn floyd_sample(rng: &mut ChaCha20Rng, n: u64, k: usize) -> Vec<u64> {
    let mut chosen = HashSet::with_capacity(k);
    let mut out = Vec::with_capacity(k);
    for j in n - k as u64..n {
        let t = below(rng, j + 1);
        let pick = if chosen.contains(&t) { j } else { t };
        chosen.insert(pick);
        out.push(pick);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<ClientId> {
        (0..n).map(ClientId).collect()
    }

    fn poisson(q: f64, min_clients: usize, seed: u64) -> ClientSampler {
        ClientSampler {
            size: SampleSize::Poisson(q),
            min_clients,
            seed,
        }
    }

    /// Each client is in with probability q, independently: the mean size over many rounds is
    /// q N, the variance q (1 - q) N, and every client's inclusion rate is about q.
    #[test]
    fn poisson_draws_have_the_binomial_mean_and_variance() {
        let (n, q, rounds) = (200u32, 0.1, 2000u32);
        let sampler = poisson(q, 1, 42);
        let pool = ids(n);
        let mut sizes = Vec::new();
        let mut hits = vec![0u32; n as usize];
        for r in 1..=rounds {
            let s = sampler.sample(r, &pool).unwrap();
            assert!(s.windows(2).all(|w| w[0] < w[1]));
            for c in &s {
                hits[c.0 as usize] += 1;
            }
            sizes.push(s.len() as f64);
        }
        let mean = sizes.iter().sum::<f64>() / f64::from(rounds);
        let var = sizes.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(rounds - 1);
        let (m, v) = (q * f64::from(n), q * (1.0 - q) * f64::from(n));
        // The mean's standard error is sqrt(v / rounds) = 0.095; the variance's is about 0.6.
        assert!((mean - m).abs() < 0.5, "mean {mean}, expected {m}");
        assert!((var - v).abs() < 3.0, "variance {var}, expected {v}");
        // Per client: 2000 rounds at q = 0.1, sd about 13.4.
        assert!(hits.iter().all(|&h| (130..=270).contains(&h)), "{hits:?}");
        // A fixed-size sampler would give exactly 20 every round.
        assert!(sizes.iter().any(|&s| s != 20.0));
    }

    /// A client's coin depends on (seed, round, its id) only: removing other clients from the
    /// pool does not change whether it is drawn, and the seed and round do.
    #[test]
    fn poisson_coins_are_per_client_and_seeded() {
        let pool = ids(100);
        let a = poisson(0.3, 1, 7);
        let full = a.sample(5, &pool).unwrap();
        let evens: Vec<ClientId> = pool.iter().copied().filter(|c| c.0 % 2 == 0).collect();
        let part = a.sample(5, &evens).unwrap();
        let expected: Vec<ClientId> = full.iter().copied().filter(|c| c.0 % 2 == 0).collect();
        assert_eq!(part, expected);
        assert_eq!(a.sample(5, &pool).unwrap(), full);
        assert_ne!(a.sample(6, &pool).unwrap(), full);
        assert_ne!(poisson(0.3, 1, 8).sample(5, &pool).unwrap(), full);
        // Unsorted input gives the same draw.
        let mut shuffled = pool.clone();
        shuffled.reverse();
        assert_eq!(a.sample(5, &shuffled).unwrap(), full);
    }

    /// A draw is not padded to min_clients: it can be small or empty (the engine skips such a
    /// round). Too few *available* clients is still an error, and q = 1 takes everyone.
    #[test]
    fn poisson_draws_are_not_clamped_to_min_clients() {
        let pool = ids(10);
        let sampler = poisson(0.01, 3, 1);
        let small = (1..=50)
            .map(|r| sampler.sample(r, &pool).unwrap().len())
            .filter(|&len| len < 3)
            .count();
        assert!(small > 40, "{small}");
        assert!(matches!(
            sampler.sample(1, &ids(2)),
            Err(FlError::NotEnoughClients {
                available: 2,
                required: 3
            })
        ));
        assert_eq!(poisson(1.0, 1, 1).sample(3, &pool).unwrap(), pool);
        for q in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(poisson(q, 1, 1).validate().is_err(), "{q}");
        }
        assert_eq!(poisson(0.25, 1, 1).target_size(10), 3);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        for n in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..200 {
                assert!(below(&mut rng, n) < n);
            }
        }
    }

    #[test]
    fn floyd_gives_distinct_indices() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        for (n, k) in [(10u64, 10usize), (10, 1), (1000, 999), (5, 3)] {
            let mut s = floyd_sample(&mut rng, n, k);
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), k);
            assert!(s.iter().all(|&i| i < n));
        }
    }
}
