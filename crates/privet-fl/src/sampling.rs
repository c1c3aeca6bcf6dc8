//! Seeded, reproducible client sampling.
//!
//! The clients of round `r` depend only on `(seed, r, the set of available clients)`: not on
//! the order in which the runtime lists them, and not on `rand`'s algorithms. The generator is
//! ChaCha20 (value-stable across `rand_chacha` versions) keyed by the seed and a domain tag, on
//! stream `r`; indices are drawn with Floyd's algorithm (O(k) memory) and Lemire's unbiased
//! bounded integers.

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
}

/// Selects the clients of each round, reproducibly.
///
/// The selection size (fraction or count) is clamped to `[min_clients, available]`; sampling
/// fails if fewer than `min_clients` (and at least one) distinct clients are available.
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
            _ => Ok(()),
        }
    }

    /// Number of clients selected out of `available`, before checking `min_clients`.
    pub fn target_size(&self, available: usize) -> usize {
        let wanted = match self.size {
            SampleSize::Fraction(f) => {
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
