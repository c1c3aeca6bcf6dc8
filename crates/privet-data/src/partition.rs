//! Partitioning rows over virtual federated clients.
//!
//! A [`Partition`] is an index view in CSR layout: one flat `Vec<u32>` of row positions and one
//! offset per client, so 100,000 clients cost two allocations. Positions index the caller's row
//! list (for example the training split returned by [`crate::train_test_split`]), not the file.
//!
//! Every scheme is seeded with `ChaCha20Rng::seed_from_u64(seed)` and never depends on hash-map
//! iteration order, so a given `(scheme, labels, num_classes, num_clients, keys, seed)` gives the
//! same partition on every run and platform.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Gamma};

use crate::error::DataError;

/// Most whole draws the Dirichlet label partition makes before giving up.
pub const DIRICHLET_MAX_TRIES: usize = 1000;

/// Rows of each client, as positions into the caller's row list (CSR layout).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partition {
    indices: Vec<u32>,
    offsets: Vec<usize>,
}

impl Partition {
    /// A partition from one list of positions per client.
    pub fn from_groups(groups: Vec<Vec<u32>>) -> Self {
        let total = groups.iter().map(Vec::len).sum();
        let mut indices = Vec::with_capacity(total);
        let mut offsets = Vec::with_capacity(groups.len() + 1);
        offsets.push(0);
        for g in groups {
            indices.extend_from_slice(&g);
            offsets.push(indices.len());
        }
        Self { indices, offsets }
    }

    /// A partition from raw CSR parts: client `i` owns `indices[offsets[i]..offsets[i + 1]]`.
    /// `offsets` must start at 0, be non-decreasing and end at `indices.len()`.
    pub fn from_csr(indices: Vec<u32>, offsets: Vec<usize>) -> Result<Self, DataError> {
        let ok = offsets.first() == Some(&0)
            && offsets.last() == Some(&indices.len())
            && offsets.windows(2).all(|w| w[0] <= w[1]);
        if !ok {
            return Err(DataError::InvalidParameter(
                "CSR offsets must start at 0, be non-decreasing and end at indices.len()".into(),
            ));
        }
        Ok(Self { indices, offsets })
    }

    /// Number of clients.
    pub fn num_clients(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Rows of client `i`. Panics when `i >= num_clients()`; see [`Partition::get`].
    pub fn client(&self, i: usize) -> &[u32] {
        &self.indices[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Rows of client `i`, or `None` when there is no such client.
    pub fn get(&self, i: usize) -> Option<&[u32]> {
        let start = *self.offsets.get(i)?;
        let end = *self.offsets.get(i + 1)?;
        self.indices.get(start..end)
    }

    /// Number of rows of each client.
    pub fn sizes(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Total number of rows over all clients.
    pub fn total_rows(&self) -> usize {
        self.indices.len()
    }

    /// Iterates over the clients' row lists in client order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        self.offsets.windows(2).map(|w| &self.indices[w[0]..w[1]])
    }

    /// The flat CSR index array.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The CSR offsets (`num_clients() + 1` of them).
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// Per client, the number of its rows of each class (`labels[position]`). Positions or labels
    /// out of range are not counted.
    pub fn label_histogram(&self, labels: &[u32], num_classes: usize) -> Vec<Vec<usize>> {
        self.iter()
            .map(|rows| {
                let mut h = vec![0usize; num_classes];
                for &r in rows {
                    if let Some(&c) = labels.get(r as usize)
                        && let Some(slot) = h.get_mut(c as usize)
                    {
                        *slot += 1;
                    }
                }
                h
            })
            .collect()
    }
}

/// How to spread rows over clients.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionScheme {
    /// Shuffle, then cut into `num_clients` contiguous chunks whose sizes differ by at most one.
    /// Needs at least one row per client.
    Iid,
    /// Label skew (NIID-Bench, Li et al. 2022; Flower's `DirichletPartitioner`): for each class in
    /// turn, shuffle its rows, draw `p ~ Dir(alpha)` over clients, zero `p` for clients already
    /// holding at least `n / num_clients` rows and renormalize, then cut the class rows at the
    /// cumulative proportions (`floor(cumsum(p) * class_rows)`). The whole draw is repeated until
    /// every client has at least `min_rows` rows (at most [`DIRICHLET_MAX_TRIES`] times). Each
    /// client's rows are shuffled at the end. Smaller `alpha` means more skew.
    Dirichlet {
        /// Concentration, > 0.
        alpha: f64,
        /// Fewest rows any client may get.
        min_rows: usize,
    },
    /// Quantity skew: labels are ignored; every client first gets `min_rows` rows and the other
    /// `n - num_clients * min_rows` rows are shared by proportions `p ~ Dir(alpha)` over clients
    /// (`floor` of cumulative proportions). Rows are shuffled first. Always succeeds when
    /// `n >= num_clients * min_rows`; no retries.
    QuantitySkew {
        /// Concentration, > 0.
        alpha: f64,
        /// Fewest rows any client may get.
        min_rows: usize,
    },
    /// One client per distinct value of a column (the keys are passed to [`partition`] as
    /// `natural_keys`). Clients are ordered by key (byte order); each client's rows keep their
    /// input order, so the seed is unused. `num_clients` must be 0 ("as many as there are keys") or
    /// equal the number of distinct keys.
    Natural {
        /// The column whose values name the clients (for the caller's bookkeeping; the keys
        /// themselves come in `natural_keys`).
        column: String,
    },
}

/// Partitions `labels.len()` rows over `num_clients` clients; see [`PartitionScheme`].
///
/// `labels` are the class indices of the rows being partitioned, in order (only Dirichlet reads
/// them, but their length is the row count for every scheme). `natural_keys` holds one key per row
/// and is required by [`PartitionScheme::Natural`] only. Impossible requests (too few rows for the
/// clients, no acceptable Dirichlet draw, a client count that does not match the keys) are
/// [`DataError::Partition`]; out-of-range parameters are [`DataError::InvalidParameter`].
pub fn partition(
    scheme: &PartitionScheme,
    labels: &[u32],
    num_classes: usize,
    num_clients: usize,
    natural_keys: Option<&[String]>,
    seed: u64,
) -> Result<Partition, DataError> {
    let n = labels.len();
    if u32::try_from(n).is_err() {
        return Err(DataError::InvalidParameter(format!(
            "{n} rows is more than a partition can index (u32)"
        )));
    }
    if num_clients == 0 && !matches!(scheme, PartitionScheme::Natural { .. }) {
        return Err(DataError::InvalidParameter(
            "num_clients must be at least 1".into(),
        ));
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    match scheme {
        PartitionScheme::Iid => iid(n, num_clients, &mut rng),
        PartitionScheme::Dirichlet { alpha, min_rows } => {
            check_alpha(*alpha)?;
            check_enough_rows(n, num_clients, *min_rows)?;
            if let Some((i, &c)) = labels
                .iter()
                .enumerate()
                .find(|&(_, &c)| c as usize >= num_classes)
            {
                return Err(DataError::InvalidParameter(format!(
                    "label {c} of row {i} is out of range for {num_classes} classes"
                )));
            }
            dirichlet(
                labels,
                num_classes,
                num_clients,
                *alpha,
                *min_rows,
                &mut rng,
            )
        }
        PartitionScheme::QuantitySkew { alpha, min_rows } => {
            check_alpha(*alpha)?;
            check_enough_rows(n, num_clients, *min_rows)?;
            quantity_skew(n, num_clients, *alpha, *min_rows, &mut rng)
        }
        PartitionScheme::Natural { column } => {
            let keys = natural_keys.ok_or_else(|| {
                DataError::InvalidParameter(format!(
                    "a natural partition by `{column}` needs one key per row, none were given"
                ))
            })?;
            natural(column, keys, n, num_clients)
        }
    }
}

fn check_alpha(alpha: f64) -> Result<(), DataError> {
    if alpha.is_finite() && alpha > 0.0 {
        Ok(())
    } else {
        Err(DataError::InvalidParameter(format!(
            "Dirichlet concentration alpha must be finite and > 0, got {alpha}"
        )))
    }
}

fn check_enough_rows(n: usize, num_clients: usize, min_rows: usize) -> Result<(), DataError> {
    match num_clients.checked_mul(min_rows) {
        Some(need) if need <= n => Ok(()),
        _ => Err(DataError::Partition(format!(
            "{n} rows cannot give {num_clients} clients at least {min_rows} rows each \
             (that needs {} rows)",
            num_clients as u128 * min_rows as u128
        ))),
    }
}

/// Draws `p ~ Dir(alpha)` of length `k` into `out`, via normalized Gamma(alpha, 1) draws. If every
/// draw underflows to 0 (tiny alpha), the limit distribution is used: all mass on one uniformly
/// chosen entry.
pub(crate) fn sample_dirichlet<R: Rng + ?Sized>(
    rng: &mut R,
    gamma: &Gamma<f64>,
    k: usize,
    out: &mut Vec<f64>,
) {
    out.clear();
    out.extend((0..k).map(|_| gamma.sample(rng)));
    let sum: f64 = out.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        for p in out.iter_mut() {
            *p /= sum;
        }
    } else if k > 0 {
        out.iter_mut().for_each(|p| *p = 0.0);
        let i = rng.random_range(0..k);
        out[i] = 1.0;
    }
}

fn gamma_for(alpha: f64) -> Result<Gamma<f64>, DataError> {
    Gamma::new(alpha, 1.0)
        .map_err(|e| DataError::InvalidParameter(format!("Dirichlet concentration {alpha}: {e}")))
}

/// Cuts `len` items at `floor(cumsum(p) * len)`: the sizes of the `p.len()` pieces.
fn cut_sizes(p: &[f64], len: usize, sizes: &mut Vec<usize>) {
    sizes.clear();
    let mut cum = 0.0f64;
    let mut prev = 0usize;
    for (i, &pi) in p.iter().enumerate() {
        let end = if i + 1 == p.len() {
            len
        } else {
            cum += pi;
            ((cum * len as f64).floor() as usize).clamp(prev, len)
        };
        sizes.push(end - prev);
        prev = end;
    }
}

fn iid(n: usize, num_clients: usize, rng: &mut ChaCha20Rng) -> Result<Partition, DataError> {
    if n < num_clients {
        return Err(DataError::Partition(format!(
            "{n} rows cannot give {num_clients} clients at least one row each"
        )));
    }
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.shuffle(rng);
    let (base, extra) = (n / num_clients, n % num_clients);
    let mut offsets = Vec::with_capacity(num_clients + 1);
    offsets.push(0);
    let mut end = 0;
    for i in 0..num_clients {
        end += base + usize::from(i < extra);
        offsets.push(end);
    }
    Ok(Partition {
        indices: perm,
        offsets,
    })
}

fn dirichlet(
    labels: &[u32],
    num_classes: usize,
    num_clients: usize,
    alpha: f64,
    min_rows: usize,
    rng: &mut ChaCha20Rng,
) -> Result<Partition, DataError> {
    let n = labels.len();
    let gamma = gamma_for(alpha)?;
    let mut class_rows: Vec<Vec<u32>> = vec![Vec::new(); num_classes];
    for (i, &c) in labels.iter().enumerate() {
        class_rows[c as usize].push(i as u32);
    }
    let cap = n as f64 / num_clients as f64;
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); num_clients];
    let mut p = Vec::with_capacity(num_clients);
    let mut sizes = Vec::with_capacity(num_clients);
    let mut best = 0usize;
    for _ in 0..DIRICHLET_MAX_TRIES {
        groups.iter_mut().for_each(Vec::clear);
        for rows in class_rows.iter_mut() {
            rows.shuffle(rng);
            sample_dirichlet(rng, &gamma, num_clients, &mut p);
            let mut sum = 0.0;
            for (pj, g) in p.iter_mut().zip(&groups) {
                if (g.len() as f64) >= cap {
                    *pj = 0.0;
                }
                sum += *pj;
            }
            if sum > 0.0 {
                p.iter_mut().for_each(|pj| *pj /= sum);
            } else {
                // Every remaining client got zero mass: share evenly among those not yet full.
                let open: Vec<usize> = (0..num_clients)
                    .filter(|&j| (groups[j].len() as f64) < cap)
                    .collect();
                let w = 1.0 / open.len().max(1) as f64;
                p.iter_mut().for_each(|pj| *pj = 0.0);
                for j in open {
                    p[j] = w;
                }
            }
            cut_sizes(&p, rows.len(), &mut sizes);
            let mut start = 0;
            for (g, &s) in groups.iter_mut().zip(&sizes) {
                g.extend_from_slice(&rows[start..start + s]);
                start += s;
            }
        }
        let smallest = groups.iter().map(Vec::len).min().unwrap_or(0);
        if smallest >= min_rows {
            for g in groups.iter_mut() {
                g.shuffle(rng);
            }
            return Ok(Partition::from_groups(groups));
        }
        best = best.max(smallest);
    }
    Err(DataError::Partition(format!(
        "Dirichlet(alpha = {alpha}) label partition of {n} rows ({num_classes} classes) over \
         {num_clients} clients: no draw in {DIRICHLET_MAX_TRIES} tries gave every client at least \
         {min_rows} rows (the best draw's smallest client had {best}); raise alpha, lower \
         min_rows or use fewer clients"
    )))
}

fn quantity_skew(
    n: usize,
    num_clients: usize,
    alpha: f64,
    min_rows: usize,
    rng: &mut ChaCha20Rng,
) -> Result<Partition, DataError> {
    let gamma = gamma_for(alpha)?;
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.shuffle(rng);
    let mut p = Vec::with_capacity(num_clients);
    sample_dirichlet(rng, &gamma, num_clients, &mut p);
    let mut sizes = Vec::with_capacity(num_clients);
    cut_sizes(&p, n - num_clients * min_rows, &mut sizes);
    let mut offsets = Vec::with_capacity(num_clients + 1);
    offsets.push(0);
    let mut end = 0;
    for s in sizes {
        end += min_rows + s;
        offsets.push(end);
    }
    Ok(Partition {
        indices: perm,
        offsets,
    })
}

fn natural(
    column: &str,
    keys: &[String],
    n: usize,
    num_clients: usize,
) -> Result<Partition, DataError> {
    if keys.len() != n {
        return Err(DataError::ShapeMismatch {
            what: format!("number of `{column}` keys vs. rows"),
            expected: n,
            found: keys.len(),
        });
    }
    let mut by_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        by_key.entry(k.as_str()).or_default().push(i as u32);
    }
    if num_clients != 0 && num_clients != by_key.len() {
        return Err(DataError::Partition(format!(
            "a natural partition by `{column}` has {} clients (one per distinct value), \
             but {num_clients} were asked for; ask for {} or 0",
            by_key.len(),
            by_key.len()
        )));
    }
    Ok(Partition::from_groups(by_key.into_values().collect()))
}

/// The distinct keys of a natural partition in client order (client `i` has key `keys[i]`).
pub fn natural_client_keys(natural_keys: &[String]) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = natural_keys.iter().map(String::as_str).collect();
    set.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    fn assert_exact_cover(p: &Partition, n: usize) {
        let mut seen = vec![0u8; n];
        for rows in p.iter() {
            for &r in rows {
                seen[r as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "not an exact cover");
        assert_eq!(p.total_rows(), n);
    }

    fn labels(n: usize, classes: u32, seed: u64) -> Vec<u32> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(0..classes)).collect()
    }

    #[test]
    fn csr_accessors() {
        let p = Partition::from_groups(vec![vec![3, 1], vec![], vec![0, 2, 4]]);
        assert_eq!(p.num_clients(), 3);
        assert_eq!(p.client(0), &[3, 1]);
        assert_eq!(p.client(1), &[] as &[u32]);
        assert_eq!(p.sizes(), [2, 0, 3]);
        assert_eq!(p.get(3), None);
        assert_eq!(p.offsets(), &[0, 2, 2, 5]);
        assert_eq!(
            p.label_histogram(&[0, 1, 1, 0, 1], 2),
            vec![vec![1, 1], vec![0, 0], vec![1, 2]]
        );
        assert_eq!(
            Partition::from_csr(vec![1, 0], vec![0, 1, 2])
                .unwrap()
                .client(1),
            &[0]
        );
        assert!(Partition::from_csr(vec![1, 0], vec![0, 3]).is_err());
        assert!(Partition::from_csr(vec![1, 0], vec![1, 2]).is_err());
        assert_eq!(Partition::default().num_clients(), 0);
    }

    #[test]
    fn iid_sizes_are_balanced_and_deterministic() {
        let y = labels(103, 3, 1);
        let p = partition(&PartitionScheme::Iid, &y, 3, 10, None, 5).unwrap();
        assert_eq!(p.sizes(), [11, 11, 11, 10, 10, 10, 10, 10, 10, 10]);
        assert_exact_cover(&p, 103);
        assert_eq!(
            p,
            partition(&PartitionScheme::Iid, &y, 3, 10, None, 5).unwrap()
        );
        assert_ne!(
            p,
            partition(&PartitionScheme::Iid, &y, 3, 10, None, 6).unwrap()
        );
    }

    #[test]
    fn dirichlet_small_alpha_is_skewed_iid_is_not() {
        let y = labels(5000, 10, 2);
        let dominated = |p: &Partition| {
            p.label_histogram(&y, 10)
                .iter()
                .filter(|h| {
                    let total: usize = h.iter().sum();
                    let max = h.iter().copied().max().unwrap_or(0);
                    total > 0 && max * 2 > total
                })
                .count()
        };
        let skewed = partition(
            &PartitionScheme::Dirichlet {
                alpha: 0.1,
                min_rows: 5,
            },
            &y,
            10,
            20,
            None,
            9,
        )
        .unwrap();
        assert_exact_cover(&skewed, 5000);
        assert!(skewed.sizes().iter().all(|&s| s >= 5));
        let iid = partition(&PartitionScheme::Iid, &y, 10, 20, None, 9).unwrap();
        assert!(dominated(&skewed) >= 12, "skewed: {}", dominated(&skewed));
        assert_eq!(dominated(&iid), 0);
        let again = partition(
            &PartitionScheme::Dirichlet {
                alpha: 0.1,
                min_rows: 5,
            },
            &y,
            10,
            20,
            None,
            9,
        )
        .unwrap();
        assert_eq!(skewed, again);
    }

    #[test]
    fn dirichlet_adult_sized_request_succeeds_quickly() {
        // Adult's training split: 24,130 rows, about 24.9% positive.
        let y: Vec<u32> = (0..24_130).map(|i| u32::from(i % 4 == 0)).collect();
        let start = std::time::Instant::now();
        let p = partition(
            &PartitionScheme::Dirichlet {
                alpha: 0.5,
                min_rows: 10,
            },
            &y,
            2,
            100,
            None,
            42,
        )
        .unwrap();
        assert_exact_cover(&p, 24_130);
        assert!(p.sizes().iter().all(|&s| s >= 10));
        assert!(start.elapsed().as_secs_f64() < 5.0, "{:?}", start.elapsed());
    }

    #[test]
    fn dirichlet_many_clients() {
        let y = labels(300_000, 10, 3);
        let p = partition(
            &PartitionScheme::Dirichlet {
                alpha: 1.0,
                min_rows: 0,
            },
            &y,
            10,
            100_000,
            None,
            1,
        )
        .unwrap();
        assert_eq!(p.num_clients(), 100_000);
        assert_exact_cover(&p, 300_000);
    }

    #[test]
    fn impossible_requests() {
        let y = labels(50, 2, 4);
        for scheme in [
            PartitionScheme::Iid,
            PartitionScheme::Dirichlet {
                alpha: 0.5,
                min_rows: 1,
            },
            PartitionScheme::QuantitySkew {
                alpha: 0.5,
                min_rows: 1,
            },
        ] {
            let err = partition(&scheme, &y, 2, 51, None, 0).unwrap_err();
            assert!(matches!(err, DataError::Partition(_)), "{scheme:?}: {err}");
            assert!(err.to_string().contains("51"), "{err}");
        }
        // Feasible in count, but a tiny alpha cannot give 25 clients 2 rows each.
        let err = partition(
            &PartitionScheme::Dirichlet {
                alpha: 1e-3,
                min_rows: 2,
            },
            &y,
            2,
            25,
            None,
            0,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Partition(_)));
        assert!(
            msg.contains("1000 tries") && msg.contains("at least 2"),
            "{msg}"
        );
        // Parameter errors.
        for bad in [0.0, -1.0, f64::NAN] {
            assert!(matches!(
                partition(
                    &PartitionScheme::Dirichlet {
                        alpha: bad,
                        min_rows: 0
                    },
                    &y,
                    2,
                    2,
                    None,
                    0
                ),
                Err(DataError::InvalidParameter(_))
            ));
        }
        assert!(matches!(
            partition(&PartitionScheme::Iid, &y, 2, 0, None, 0),
            Err(DataError::InvalidParameter(_))
        ));
        assert!(matches!(
            partition(
                &PartitionScheme::Dirichlet {
                    alpha: 1.0,
                    min_rows: 0
                },
                &[0, 5],
                2,
                1,
                None,
                0
            ),
            Err(DataError::InvalidParameter(_))
        ));
    }

    #[test]
    fn quantity_skew_sizes_vary_and_respect_minimum() {
        let y = vec![0u32; 1000];
        let p = partition(
            &PartitionScheme::QuantitySkew {
                alpha: 0.3,
                min_rows: 20,
            },
            &y,
            1,
            10,
            None,
            3,
        )
        .unwrap();
        assert_exact_cover(&p, 1000);
        let sizes = p.sizes();
        assert!(sizes.iter().all(|&s| s >= 20));
        let (lo, hi) = (
            sizes.iter().min().copied().unwrap(),
            sizes.iter().max().copied().unwrap(),
        );
        assert!(hi > 3 * lo, "{sizes:?}");
    }

    #[test]
    fn natural_partition_by_key() {
        let keys: Vec<String> = ["b", "a", "c", "a", "b", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let y = vec![0u32; 6];
        let scheme = PartitionScheme::Natural {
            column: "site".into(),
        };
        let p = partition(&scheme, &y, 1, 0, Some(&keys), 0).unwrap();
        assert_eq!(p.num_clients(), 3);
        assert_eq!(p.client(0), &[1, 3, 5]);
        assert_eq!(p.client(1), &[0, 4]);
        assert_eq!(p.client(2), &[2]);
        assert_eq!(natural_client_keys(&keys), ["a", "b", "c"]);
        assert_eq!(p, partition(&scheme, &y, 1, 3, Some(&keys), 99).unwrap());
        let err = partition(&scheme, &y, 1, 4, Some(&keys), 0).unwrap_err();
        assert!(matches!(err, DataError::Partition(_)), "{err}");
        assert!(partition(&scheme, &y, 1, 0, None, 0).is_err());
        assert!(partition(&scheme, &y[..5], 1, 0, Some(&keys), 0).is_err());
    }

    #[test]
    fn dirichlet_sampler_sums_to_one_even_for_tiny_alpha() {
        let mut rng = ChaCha20Rng::seed_from_u64(0);
        let mut p = Vec::new();
        for alpha in [1e-300, 1e-3, 0.5, 10.0] {
            let g = gamma_for(alpha).unwrap();
            for _ in 0..20 {
                sample_dirichlet(&mut rng, &g, 7, &mut p);
                assert_eq!(p.len(), 7);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{alpha}: {p:?}");
            }
        }
    }

    #[test]
    fn cut_sizes_sum_to_len() {
        let mut s = Vec::new();
        cut_sizes(&[0.25, 0.25, 0.5], 10, &mut s);
        assert_eq!(s, [2, 3, 5]);
        cut_sizes(&[0.0, 1.0, 0.0], 10, &mut s);
        assert_eq!(s, [0, 10, 0]);
    }

    fn scheme_strategy() -> impl Strategy<Value = PartitionScheme> {
        prop_oneof![
            Just(PartitionScheme::Iid),
            (0.05f64..5.0, 0usize..4)
                .prop_map(|(alpha, min_rows)| PartitionScheme::Dirichlet { alpha, min_rows }),
            (0.05f64..5.0, 0usize..4)
                .prop_map(|(alpha, min_rows)| PartitionScheme::QuantitySkew { alpha, min_rows }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn every_row_in_exactly_one_client(
            n in 0usize..400,
            clients in 1usize..30,
            classes in 1u32..6,
            seed in any::<u64>(),
            scheme in scheme_strategy(),
        ) {
            let y = labels(n, classes, seed ^ 1);
            match partition(&scheme, &y, classes as usize, clients, None, seed) {
                Ok(p) => {
                    prop_assert_eq!(p.num_clients(), clients);
                    assert_exact_cover(&p, n);
                    let min = match scheme {
                        PartitionScheme::Iid => 1,
                        PartitionScheme::Dirichlet { min_rows, .. }
                        | PartitionScheme::QuantitySkew { min_rows, .. } => min_rows,
                        PartitionScheme::Natural { .. } => 0,
                    };
                    prop_assert!(p.sizes().iter().all(|&s| s >= min));
                    let again = partition(&scheme, &y, classes as usize, clients, None, seed);
                    prop_assert_eq!(Some(p), again.ok());
                }
                Err(DataError::Partition(_)) => {
                    // Only allowed for Dirichlet draws that miss min_rows, or too few rows.
                    let need = match scheme {
                        PartitionScheme::Iid => clients,
                        PartitionScheme::Dirichlet { min_rows, .. } => clients * min_rows,
                        PartitionScheme::QuantitySkew { min_rows, .. } => clients * min_rows,
                        PartitionScheme::Natural { .. } => 0,
                    };
                    prop_assert!(
                        n < need || matches!(scheme, PartitionScheme::Dirichlet { .. }),
                        "unexpected failure for {:?}", scheme
                    );
                }
                Err(e) => prop_assert!(false, "unexpected error {}", e),
            }
        }
    }
}
