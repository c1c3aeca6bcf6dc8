//! Choosing the graph degree `k` and the reconstruction threshold `t` for a round of `n` clients.
//!
//! The neighbourhood graph is a Harary graph `H(n, k)` (each client is joined to the `k/2`
//! clients before and after it on a ring) laid over a uniformly random ordering of the round's
//! clients, as in Bell et al. (CCS 2020) and Flower's SecAgg+. The model: the adversary
//! corrupts at most `C = ⌈γn⌉` clients ([`SecAggConfig::corrupt_fraction`]), and each client
//! drops out during the round independently with probability `δ`
//! ([`SecAggConfig::dropout_fraction`]), both independently of the ordering. For an even `k` and
//! a threshold `t`, union bounds give:
//!
//! - **security** (the coalition learns more than the sum) fails with probability at most
//!   - `n · P[Hyp(n-1, C, k) ≥ t]`: some honest client has `t` corrupted neighbours among its
//!     `k` (a uniform `k`-subset of the others), who could rebuild both of its secrets; plus
//!   - `n²/2 · E[δ^(k-J)]`, `J ~ Hyp(n, C, k)`: the honest, non-dropped clients are split into
//!     parts whose sums the coordinator would learn separately. Removing vertices splits the
//!     ring only if two disjoint runs of `k/2` consecutive positions are all removed; there are
//!     fewer than `n²/2` such pairs, and `k` given positions are all removed when the `J`
//!     corrupted ones among them are joined by `k - J` dropouts;
//! - **correctness** (some client keeps fewer than `t` neighbours, so the round aborts) fails
//!   with probability at most `n · P[Bin(k, δ) > k - t]`.
//!
//! [`choose`] takes the smallest even `k` (from 4, up to [`MAX_SEARCHED_DEGREE`]) for which some
//! `t` makes the security bound at most `2^-σ` ([`SecAggConfig::security_bits`]) and the
//! correctness bound at most `2^-η` ([`SecAggConfig::correctness_bits`]), with the smallest such
//! `t`. The threshold is never below a majority of the neighbourhood (`t ≥ ⌊k/2⌋ + 1`; see the
//! crate's security model for why) nor below 2. When no even `k < n - 1` qualifies the graph is
//! complete (`k = n - 1`, the SecAgg of Bonawitz et al.) with `t = max(⌊k/2⌋ + 1, C + 1)`:
//! security then holds with certainty, and correctness fails with probability at most
//! `n · P[Bin(k, δ) > k - t]`.
//!
//! Explicit overrides ([`SecAggConfig::degree`], [`SecAggConfig::reconstruction_threshold`])
//! bypass the search; the bounds are still reported in [`RoundParams`]. Both sides run the same
//! computation: a client refuses a round whose `k` or `t` differs from its own result.

use crate::config::{SecAggConfig, Threshold};

/// The fewest clients a round can have: with two, each would learn the other's update from
/// the sum, and Shamir sharing needs at least two share holders.
pub const MIN_CLIENTS: usize = 3;

/// The largest degree the search tries; beyond it (only for extreme `γ`, `δ` or `σ`) the graph
/// is complete.
pub const MAX_SEARCHED_DEGREE: usize = 512;

/// The graph and threshold of one round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundParams {
    /// Clients in the graph (those that advertised keys).
    pub n: usize,
    /// Neighbours per client (`n - 1` for the complete graph).
    pub k: usize,
    /// Shares needed to rebuild a client's secret (Shamir threshold).
    pub t: usize,
    /// Whether the graph is complete (plain SecAgg).
    pub complete: bool,
    /// `log2` of the bound on the probability that security fails (e.g. `-40.0`); `-inf` when
    /// it cannot fail under the model.
    pub log2_security_failure: f64,
    /// `log2` of the bound on the probability that a round aborts because some client keeps
    /// fewer than `t` neighbours; `-inf` when it cannot happen within the dropout budget.
    pub log2_correctness_failure: f64,
}

/// Natural logarithms of factorials `0! ..= n!`.
struct LnFactorials(Vec<f64>);

impl LnFactorials {
    fn new(n: usize) -> Self {
        let mut table = Vec::with_capacity(n + 1);
        let mut acc = 0.0_f64;
        table.push(acc);
        for i in 1..=n {
            acc += (i as f64).ln();
            table.push(acc);
        }
        LnFactorials(table)
    }

    /// `ln C(a, b)`, or `-inf` when `b > a`.
    fn ln_choose(&self, a: usize, b: usize) -> f64 {
        if b > a {
            return f64::NEG_INFINITY;
        }
        match (self.0.get(a), self.0.get(b), self.0.get(a - b)) {
            (Some(fa), Some(fb), Some(fab)) => fa - fb - fab,
            _ => f64::NAN,
        }
    }

    /// `ln P[X ≥ at_least]` for `X ~ Hypergeometric(population, successes, draws)`.
    fn ln_hyper_tail(
        &self,
        population: usize,
        successes: usize,
        draws: usize,
        at_least: usize,
    ) -> f64 {
        let successes = successes.min(population);
        let denom = self.ln_choose(population, draws);
        let hi = draws.min(successes);
        let terms: Vec<f64> = (at_least..=hi)
            .filter(|&x| draws - x <= population - successes)
            .map(|x| {
                self.ln_choose(successes, x) + self.ln_choose(population - successes, draws - x)
                    - denom
            })
            .collect();
        ln_sum_exp(&terms)
    }
}

/// `ln Σ exp(terms)`, `-inf` for no terms.
fn ln_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + terms.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `ln(a + b)` from `ln a` and `ln b`.
fn ln_add(a: f64, b: f64) -> f64 {
    ln_sum_exp(&[a, b])
}

/// `ln P[X ≥ at_least]` for `X ~ Binomial(trials, p)`.
fn ln_binomial_tail(lf: &LnFactorials, trials: usize, p: f64, at_least: usize) -> f64 {
    if at_least == 0 {
        return 0.0;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let terms: Vec<f64> = (at_least..=trials)
        .map(|x| lf.ln_choose(trials, x) + x as f64 * lp + (trials - x) as f64 * lq)
        .collect();
    ln_sum_exp(&terms)
}

/// The failure bounds of a Harary graph `H(n, k)` (even `k < n - 1`) with threshold `t`, as
/// natural logarithms: `(security, correctness)`.
fn ln_bounds(
    lf: &LnFactorials,
    n: usize,
    k: usize,
    t: usize,
    corrupt: usize,
    drop: f64,
) -> (f64, f64) {
    let ln_n = (n as f64).ln();
    // An honest client's k neighbours are a uniform k-subset of the n - 1 others.
    let too_many_corrupt = ln_n + lf.ln_hyper_tail(n - 1, corrupt, k, t);
    // Two disjoint windows of k/2 ring positions, all corrupted or dropped: J of the k positions
    // hold corrupted clients (hypergeometric), the other k - J dropped out (each with
    // probability δ, independently).
    let ln_windows = 2.0 * ln_n - 2f64.ln();
    let denom = lf.ln_choose(n, k);
    let terms: Vec<f64> = (0..=k.min(corrupt))
        .filter(|&j| k - j <= n.saturating_sub(corrupt))
        .filter_map(|j| {
            let ln_drop = if k == j {
                0.0
            } else if drop > 0.0 {
                (k - j) as f64 * drop.ln()
            } else {
                return None;
            };
            let ln_pmf = lf.ln_choose(corrupt, j) + lf.ln_choose(n - corrupt, k - j) - denom;
            Some(ln_pmf + ln_drop)
        })
        .collect();
    let disconnected = ln_windows + ln_sum_exp(&terms);
    let security = ln_add(too_many_corrupt, disconnected);
    // A client is stuck when more than k - t of its neighbours drop out.
    let correctness = ln_n + ln_binomial_tail(lf, k, drop, k - t + 1);
    (security.min(0.0), correctness.min(0.0))
}

fn majority(k: usize) -> usize {
    (k / 2 + 1).max(2)
}

/// Chooses `k` and `t` for a round of `n` clients (see the [module documentation](self)).
///
/// `n` is raised to [`MIN_CLIENTS`] if lower; the configuration should have been validated.
pub fn choose(n: usize, config: &SecAggConfig) -> RoundParams {
    let n = n.max(MIN_CLIENTS);
    let corrupt = ((config.corrupt_fraction * n as f64).ceil() as usize).min(n);
    let drop = config.dropout_fraction;
    let lf = LnFactorials::new(n);
    let ln2 = 2f64.ln();
    let sec_target = -f64::from(config.security_bits) * ln2;
    let cor_target = -f64::from(config.correctness_bits) * ln2;
    // The threshold for degree k: explicit, or the smallest secure majority (the bound falls
    // as t grows, so a binary search finds it).
    let threshold = |k: usize| {
        threshold_for(config.reconstruction_threshold, k).unwrap_or_else(|| {
            let (mut lo, mut hi) = (majority(k), k);
            if ln_bounds(&lf, n, k, hi, corrupt, drop).0 > sec_target {
                return k;
            }
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if ln_bounds(&lf, n, k, mid, corrupt, drop).0 <= sec_target {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            lo
        })
    };
    let k = match config.degree {
        Some(k) => Some(k as usize),
        None => (4..(n - 1).min(MAX_SEARCHED_DEGREE + 1))
            .step_by(2)
            .find(|&k| {
                let (sec, cor) = ln_bounds(&lf, n, k, threshold(k), corrupt, drop);
                sec <= sec_target && cor <= cor_target
            }),
    };
    let (k, t, complete) = match k {
        Some(k) if k < n - 1 => (k, threshold(k), false),
        _ => {
            let k = n - 1;
            let t = threshold_for(config.reconstruction_threshold, k)
                .unwrap_or_else(|| majority(k).max(corrupt + 1).min(k));
            (k, t, true)
        }
    };
    let (sec, cor) = if complete {
        // Every client neighbours every other: the corrupted clients hold `corrupt` shares of
        // each secret, and the graph cannot split.
        let sec = if corrupt < t { f64::NEG_INFINITY } else { 0.0 };
        let cor = ((n as f64).ln() + ln_binomial_tail(&lf, k, drop, k - t + 1)).min(0.0);
        (sec, cor)
    } else {
        ln_bounds(&lf, n, k, t, corrupt, drop)
    };
    RoundParams {
        n,
        k,
        t,
        complete,
        log2_security_failure: sec / ln2,
        log2_correctness_failure: cor / ln2,
    }
}

/// An explicit threshold for degree `k`, clamped to `2..=k`.
fn threshold_for(threshold: Option<Threshold>, k: usize) -> Option<usize> {
    let t = match threshold? {
        Threshold::Absolute(t) => t as usize,
        Threshold::Fraction(f) => (f * k as f64).ceil() as usize,
    };
    Some(t.clamp(2, k.max(2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SecAggConfig {
        SecAggConfig::default()
    }

    /// The table in the crate documentation.
    #[test]
    fn defaults_give_the_documented_parameters() {
        let table = [
            (3, 2, 2, true),
            (10, 9, 5, true),
            (20, 19, 10, true),
            (30, 20, 11, false),
            (100, 22, 12, false),
            (500, 26, 15, false),
            (1000, 30, 17, false),
            (10_000, 34, 20, false),
            (100_000, 36, 21, false),
        ];
        for (n, k, t, complete) in table {
            let p = choose(n, &config());
            assert_eq!((p.n, p.k, p.t, p.complete), (n, k, t, complete), "n = {n}");
        }
    }

    #[test]
    fn chosen_parameters_meet_the_targets() {
        for n in [25usize, 40, 64, 100, 333, 1000, 4096, 50_000] {
            for (gamma, delta) in [(0.0, 0.0), (0.05, 0.05), (0.1, 0.1), (0.2, 0.05)] {
                let c = SecAggConfig {
                    corrupt_fraction: gamma,
                    dropout_fraction: delta,
                    ..config()
                };
                let p = choose(n, &c);
                assert!(p.t > p.k / 2 && p.t <= p.k, "{p:?}");
                if !p.complete {
                    assert!(p.k.is_multiple_of(2) && p.k < n - 1, "{p:?}");
                    assert!(p.log2_security_failure <= -40.0, "{p:?}");
                    assert!(p.log2_correctness_failure <= -20.0, "{p:?}");
                    // A smaller degree would not do.
                    if p.k > 4 {
                        let smaller = SecAggConfig {
                            degree: Some(p.k as u32 - 2),
                            ..c.clone()
                        };
                        let q = choose(n, &smaller);
                        assert!(
                            q.log2_security_failure > -40.0 || q.log2_correctness_failure > -20.0,
                            "{q:?}"
                        );
                    }
                } else {
                    assert_eq!(p.k, n - 1);
                    assert!(p.t > (gamma * n as f64).ceil() as usize, "{p:?}");
                }
            }
        }
    }

    #[test]
    fn the_degree_grows_logarithmically() {
        let k = |n| choose(n, &config()).k;
        assert!(k(1_000_000) <= k(1000) + 12);
        assert!(k(1000) < 40);
    }

    #[test]
    fn overrides_are_respected_and_clamped() {
        let c = SecAggConfig {
            degree: Some(6),
            reconstruction_threshold: Some(Threshold::Fraction(0.5)),
            ..config()
        };
        let p = choose(50, &c);
        assert_eq!((p.k, p.t, p.complete), (6, 3, false));
        // A degree beyond the round gives the complete graph; an absolute threshold above it
        // is clamped to k.
        let c = SecAggConfig {
            degree: Some(100),
            reconstruction_threshold: Some(Threshold::Absolute(40)),
            ..config()
        };
        let p = choose(10, &c);
        assert_eq!((p.k, p.t, p.complete), (9, 9, true));
        // Fewer than three clients are treated as three.
        assert_eq!(choose(1, &config()).n, MIN_CLIENTS);
    }

    #[test]
    fn extreme_models_fall_back_to_the_complete_graph_quickly() {
        let c = SecAggConfig {
            corrupt_fraction: 0.45,
            dropout_fraction: 0.45,
            security_bits: 128,
            ..config()
        };
        let p = choose(20_000, &c);
        assert!(p.complete && p.t > 9000, "{p:?}");
    }

    /// The hypergeometric tail against direct enumeration on a small case.
    #[test]
    fn hypergeometric_tail_matches_enumeration() {
        // Population 10 with 4 successes, 5 draws: P[X >= 3] = (C(4,3)C(6,2) + C(4,4)C(6,1)) /
        // C(10,5) = (60 + 6) / 252.
        let lf = LnFactorials::new(10);
        let p = lf.ln_hyper_tail(10, 4, 5, 3).exp();
        assert!((p - 66.0 / 252.0).abs() < 1e-12, "{p}");
        let q = ln_binomial_tail(&lf, 4, 0.5, 3).exp();
        assert!((q - 5.0 / 16.0).abs() < 1e-12, "{q}");
    }
}
