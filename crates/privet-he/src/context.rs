//! The precomputed context of a parameter set: primes with their NTTs, the encoder's FFT tables,
//! and the constants of rescaling, key switching and decoding.

use std::sync::Arc;

use crate::encoding::FftTables;
use crate::error::{HeError, Result};
use crate::params::CkksParameters;
use crate::ring::Prime;

/// Constants of the fast basis conversion from one key-switching digit to the other primes.
#[derive(Debug, Clone)]
pub(crate) struct DigitConversion {
    /// q-indices of the digit's primes at this level: [start, end).
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// (D/q_s)^{-1} mod q_s, Shoup form, per digit prime s.
    pub(crate) inv_hat: Vec<(u64, u64)>,
    /// For each row of the extended basis at this level: (D/q_s) mod that prime, per digit prime.
    pub(crate) hat: Vec<Vec<u64>>,
    /// D mod each row's prime.
    pub(crate) d_mod: Vec<u64>,
    /// q_s >> 1 per digit prime (for centering).
    pub(crate) halves: Vec<u64>,
}

/// Everything derived from a parameter set. Shared behind an `Arc` by every object of the set.
#[derive(Debug)]
pub struct CkksContext {
    pub(crate) params: CkksParameters,
    pub(crate) id: [u8; 16],
    pub(crate) n: usize,
    /// q_0..q_L then p_0..p_{alpha-1}.
    pub(crate) primes: Vec<Prime>,
    pub(crate) q_count: usize,
    pub(crate) alpha: usize,
    pub(crate) fft: FftTables,
    /// rescale[l][i] for i < l: ((q_l^{-1} mod q_i) Shoup, (q_l >> 1) mod q_i).
    pub(crate) rescale: Vec<Vec<((u64, u64), u64)>>,
    /// digits[l]: the key-switching digits at level l.
    pub(crate) digits: Vec<Vec<DigitConversion>>,
    /// (P/p_k)^{-1} mod p_k, Shoup form.
    pub(crate) p_inv_hat: Vec<(u64, u64)>,
    /// p_hat_mod_q[i][k] = (P/p_k) mod q_i.
    pub(crate) p_hat_mod_q: Vec<Vec<u64>>,
    /// P^{-1} mod q_i, Shoup form.
    pub(crate) p_inv_mod_q: Vec<(u64, u64)>,
    /// P mod q_i (the gadget of key-switching keys).
    pub(crate) p_mod_q: Vec<u64>,
    /// (P - 1)/2 mod q_i and mod p_k: added before dividing by P so that it rounds.
    pub(crate) p_half_mod_q: Vec<u64>,
    pub(crate) p_half_mod_p: Vec<u64>,
    /// Mixed-radix decoding: mrc_inv[i][j] = q_j^{-1} mod q_i (j < i), Shoup form.
    pub(crate) mrc_inv: Vec<Vec<(u64, u64)>>,
    /// Products q_0 * ... * q_{i-1} as f64.
    pub(crate) mrc_weight: Vec<f64>,
}

impl CkksContext {
    /// Builds the context (primes, NTT tables, encoder tables, key-switching constants).
    pub fn new(params: CkksParameters) -> Result<Arc<Self>> {
        let n = params.degree();
        let q_count = params.q().len();
        let alpha = params.p().len();
        let primes = params
            .q()
            .iter()
            .chain(params.p())
            .map(|&q| {
                Prime::new(q, n).ok_or_else(|| {
                    HeError::InvalidParameters(format!("{q} does not support an NTT of size {n}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let fft = FftTables::new(n);

        let mut rescale = vec![Vec::new()];
        for l in 1..q_count {
            let ql = primes[l].q;
            rescale.push(
                (0..l)
                    .map(|i| {
                        let p = &primes[i];
                        (p.shoup(p.inv(p.reduce(ql))), p.reduce(ql >> 1))
                    })
                    .collect(),
            );
        }

        // Key-switching digits: alpha consecutive q primes each; the last one may be cut short
        // at lower levels.
        let mut digits = Vec::with_capacity(q_count);
        for level in 0..q_count {
            let rows: Vec<usize> = (0..=level).chain(q_count..q_count + alpha).collect();
            let mut at_level = Vec::new();
            let mut start = 0;
            while start <= level {
                let end = (start + alpha).min(level + 1);
                let inv_hat = (start..end)
                    .map(|s| {
                        let p = &primes[s];
                        let mut hat = 1u64;
                        for t in start..end {
                            if t != s {
                                hat = p.mul(hat, p.reduce(primes[t].q));
                            }
                        }
                        p.shoup(p.inv(hat))
                    })
                    .collect();
                let hat = rows
                    .iter()
                    .map(|&r| {
                        let pr = &primes[r];
                        (start..end)
                            .map(|s| {
                                let mut h = 1u64;
                                for t in start..end {
                                    if t != s {
                                        h = pr.mul(h, pr.reduce(primes[t].q));
                                    }
                                }
                                h
                            })
                            .collect()
                    })
                    .collect();
                let d_mod = rows
                    .iter()
                    .map(|&r| {
                        let pr = &primes[r];
                        (start..end).fold(1u64, |acc, t| pr.mul(acc, pr.reduce(primes[t].q)))
                    })
                    .collect();
                let halves = (start..end).map(|t| primes[t].q >> 1).collect();
                at_level.push(DigitConversion {
                    start,
                    end,
                    inv_hat,
                    hat,
                    d_mod,
                    halves,
                });
                start = end;
            }
            digits.push(at_level);
        }

        let p_primes = &primes[q_count..];
        let p_inv_hat = p_primes
            .iter()
            .enumerate()
            .map(|(k, pk)| {
                let mut h = 1u64;
                for (t, pt) in p_primes.iter().enumerate() {
                    if t != k {
                        h = pk.mul(h, pk.reduce(pt.q));
                    }
                }
                pk.shoup(pk.inv(h))
            })
            .collect();
        let mut p_hat_mod_q = Vec::with_capacity(q_count);
        let mut p_inv_mod_q = Vec::with_capacity(q_count);
        let mut p_mod_q = Vec::with_capacity(q_count);
        let mut p_half_mod_q = Vec::with_capacity(q_count);
        let p_half_mod_p = p_primes.iter().map(|p| (p.q - 1) / 2).collect();
        for qi in &primes[..q_count] {
            p_hat_mod_q.push(
                (0..alpha)
                    .map(|k| {
                        let mut h = 1u64;
                        for (t, pt) in p_primes.iter().enumerate() {
                            if t != k {
                                h = qi.mul(h, qi.reduce(pt.q));
                            }
                        }
                        h
                    })
                    .collect(),
            );
            let mut pm = 1u64;
            for pt in p_primes {
                pm = qi.mul(pm, qi.reduce(pt.q));
            }
            p_mod_q.push(pm);
            p_inv_mod_q.push(qi.shoup(qi.inv(pm)));
            p_half_mod_q.push(qi.mul(qi.sub(pm, 1), qi.inv(2)));
        }

        let mrc_inv = (0..q_count)
            .map(|i| {
                let pi = &primes[i];
                (0..i)
                    .map(|j| pi.shoup(pi.inv(pi.reduce(primes[j].q))))
                    .collect()
            })
            .collect();
        let mut mrc_weight = Vec::with_capacity(q_count);
        let mut w = 1f64;
        for p in &primes[..q_count] {
            mrc_weight.push(w);
            w *= p.q as f64;
        }

        Ok(Arc::new(Self {
            id: params.fingerprint(),
            params,
            n,
            primes,
            q_count,
            alpha,
            fft,
            rescale,
            digits,
            p_inv_hat,
            p_hat_mod_q,
            p_inv_mod_q,
            p_mod_q,
            p_half_mod_q,
            p_half_mod_p,
            mrc_inv,
            mrc_weight,
        }))
    }

    /// The parameter set.
    pub fn params(&self) -> &CkksParameters {
        &self.params
    }

    /// Ring degree N.
    pub fn degree(&self) -> usize {
        self.n
    }

    /// Number of slots, N/2.
    pub fn slots(&self) -> usize {
        self.n / 2
    }

    /// Top level L.
    pub fn max_level(&self) -> usize {
        self.q_count - 1
    }

    /// The q prime dropped by a rescale at `level` (q_level).
    pub fn q_at(&self, level: usize) -> u64 {
        self.primes[level].q
    }

    /// The parameter fingerprint that objects carry.
    pub fn fingerprint(&self) -> [u8; 16] {
        self.id
    }

    /// The primes q_0..q_level.
    pub(crate) fn q_primes(&self, level: usize) -> Vec<&Prime> {
        self.primes[..=level].iter().collect()
    }

    /// Index in `primes` of row `r` of the extended basis at `level`.
    pub(crate) fn qp_index(&self, level: usize, r: usize) -> usize {
        if r <= level {
            r
        } else {
            self.q_count + (r - level - 1)
        }
    }

    /// All primes (the rows of keys).
    pub(crate) fn all_primes(&self) -> Vec<&Prime> {
        self.primes.iter().collect()
    }

    pub(crate) fn check_level(&self, level: usize) -> Result<()> {
        if level >= self.q_count {
            return Err(HeError::OutOfLevels(level));
        }
        Ok(())
    }

    /// Galois element of a rotation by `steps` slots to the left (negative: to the right).
    pub fn galois_element(&self, steps: i64) -> usize {
        let slots = self.slots() as i64;
        let k = steps.rem_euclid(slots) as u64;
        let two_n = 2 * self.n as u64;
        let mut g = 1u64;
        let mut b = 5u64;
        let mut e = k;
        while e > 0 {
            if e & 1 == 1 {
                g = g * b % two_n;
            }
            b = b * b % two_n;
            e >>= 1;
        }
        g as usize
    }

    /// Galois element of complex conjugation.
    pub fn conjugation_element(&self) -> usize {
        2 * self.n - 1
    }
}
