//! Byzantine-robust aggregation on individual, unweighted deltas.
//!
//! Every rule here treats clients alike (the number of examples is ignored, as in the
//! literature) and breaks ties deterministically in favour of the lowest [`ClientId`](crate::ClientId).

use super::{Requirement, Strategy, apply_step, check_param, individual_updates};
use crate::{AggregateInput, ClientUpdate, FlError};

/// Coordinate-wise median (Yin et al. 2018). With an even count, the mean of the two middle values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Median;

/// Applies `reduce` to each coordinate's sorted column of values.
fn per_coordinate(
    global: &mut [f32],
    updates: &[ClientUpdate],
    mut reduce: impl FnMut(&[f32]) -> f64,
) {
    let mut column = vec![0.0_f32; updates.len()];
    for (i, g) in global.iter_mut().enumerate() {
        for (c, u) in column.iter_mut().zip(updates) {
            *c = u.delta[i];
        }
        column.sort_unstable_by(f32::total_cmp);
        *g = (f64::from(*g) + reduce(&column)) as f32;
    }
}

fn median_of_sorted(sorted: &[f32]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        f64::from(sorted[n / 2])
    } else {
        (f64::from(sorted[n / 2 - 1]) + f64::from(sorted[n / 2])) / 2.0
    }
}

impl Strategy for Median {
    fn name(&self) -> &'static str {
        "median"
    }

    fn requirement(&self) -> Requirement {
        Requirement::Individual
    }

    fn aggregate(
        &mut self,
        _round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        let updates = individual_updates(self.name(), global.len(), input)?;
        per_coordinate(global, updates, median_of_sorted);
        Ok(())
    }
}

/// Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the `floor(beta * n)`
/// smallest and largest values and average the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrimmedMean {
    beta: f64,
}

impl TrimmedMean {
    /// Trimmed mean with `0 <= beta < 0.5` trimmed from each end.
    pub fn new(beta: f64) -> Result<Self, FlError> {
        check_param(
            "TrimmedMean beta",
            beta,
            |b| (0.0..0.5).contains(&b),
            "in [0, 0.5)",
        )?;
        Ok(TrimmedMean { beta })
    }

    /// The fraction trimmed from each end.
    pub fn beta(&self) -> f64 {
        self.beta
    }
}

impl Strategy for TrimmedMean {
    fn name(&self) -> &'static str {
        "trimmed-mean"
    }

    fn requirement(&self) -> Requirement {
        Requirement::Individual
    }

    fn aggregate(
        &mut self,
        _round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        let updates = individual_updates(self.name(), global.len(), input)?;
        let n = updates.len();
        let trim = (self.beta * n as f64).floor() as usize;
        if 2 * trim >= n {
            return Err(FlError::NotEnoughUpdates {
                strategy: self.name(),
                needed: 2 * trim + 1,
                found: n,
            });
        }
        let kept = (n - 2 * trim) as f64;
        per_coordinate(global, updates, |sorted| {
            sorted[trim..n - trim]
                .iter()
                .map(|&x| f64::from(x))
                .sum::<f64>()
                / kept
        });
        Ok(())
    }
}

/// Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient
/// Descent"): with `f` Byzantine clients assumed, each delta's score is the sum of squared
/// distances to its `n - f - 2` closest other deltas; the delta with the lowest score is applied.
/// Needs `n > 2f + 2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Krum {
    byzantine: usize,
}

impl Krum {
    /// Krum tolerating `byzantine` clients.
    pub fn new(byzantine: usize) -> Self {
        Krum { byzantine }
    }

    /// The assumed number of Byzantine clients.
    pub fn byzantine(&self) -> usize {
        self.byzantine
    }
}

/// Indices of `updates` ordered by Krum score (ties: lowest client id, then input position).
fn krum_ranking(
    strategy: &'static str,
    updates: &[ClientUpdate],
    byzantine: usize,
) -> Result<Vec<usize>, FlError> {
    let n = updates.len();
    let needed = byzantine.saturating_mul(2).saturating_add(3);
    if n < needed {
        return Err(FlError::NotEnoughUpdates {
            strategy,
            needed,
            found: n,
        });
    }
    let closest = n - byzantine - 2;
    let mut dist = vec![0.0_f64; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let d: f64 = updates[i]
                .delta
                .iter()
                .zip(&updates[j].delta)
                .map(|(&a, &b)| {
                    let x = f64::from(a) - f64::from(b);
                    x * x
                })
                .sum();
            dist[i * n + j] = d;
            dist[j * n + i] = d;
        }
    }
    let mut scores = Vec::with_capacity(n);
    let mut row = Vec::with_capacity(n - 1);
    for i in 0..n {
        row.clear();
        row.extend((0..n).filter(|&j| j != i).map(|j| dist[i * n + j]));
        row.sort_unstable_by(f64::total_cmp);
        scores.push(row[..closest].iter().sum::<f64>());
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        scores[a]
            .total_cmp(&scores[b])
            .then_with(|| updates[a].client.cmp(&updates[b].client))
            .then(a.cmp(&b))
    });
    Ok(order)
}

/// Unweighted mean of the chosen deltas, added to `global`.
fn apply_mean_of(global: &mut [f32], updates: &[ClientUpdate], chosen: &[usize]) {
    let count = chosen.len() as f64;
    let mut step = vec![0.0_f64; global.len()];
    for &k in chosen {
        for (s, &d) in step.iter_mut().zip(&updates[k].delta) {
            *s += f64::from(d);
        }
    }
    for s in &mut step {
        *s /= count;
    }
    apply_step(global, &step);
}

impl Strategy for Krum {
    fn name(&self) -> &'static str {
        "krum"
    }

    fn requirement(&self) -> Requirement {
        Requirement::Individual
    }

    fn aggregate(
        &mut self,
        _round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        let updates = individual_updates(self.name(), global.len(), input)?;
        let order = krum_ranking(self.name(), updates, self.byzantine)?;
        apply_mean_of(global, updates, &order[..1]);
        Ok(())
    }
}

/// Multi-Krum (Blanchard et al. 2017; El Mhamdi et al. 2018): the `m` deltas with the lowest Krum
/// scores are averaged, unweighted. `m` defaults to `n - f` and is capped at `n - f`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultiKrum {
    byzantine: usize,
    select: Option<usize>,
}

impl MultiKrum {
    /// Multi-Krum tolerating `byzantine` clients and averaging `select` updates (`>= 1`).
    pub fn new(byzantine: usize, select: Option<usize>) -> Result<Self, FlError> {
        if select == Some(0) {
            return Err(FlError::InvalidConfig(
                "MultiKrum select must be at least 1".into(),
            ));
        }
        Ok(MultiKrum { byzantine, select })
    }

    /// The assumed number of Byzantine clients.
    pub fn byzantine(&self) -> usize {
        self.byzantine
    }

    /// The requested number of averaged updates (`None`: `n - f`).
    pub fn select(&self) -> Option<usize> {
        self.select
    }
}

impl Strategy for MultiKrum {
    fn name(&self) -> &'static str {
        "multi-krum"
    }

    fn requirement(&self) -> Requirement {
        Requirement::Individual
    }

    fn aggregate(
        &mut self,
        _round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        let updates = individual_updates(self.name(), global.len(), input)?;
        let order = krum_ranking(self.name(), updates, self.byzantine)?;
        let honest = updates.len() - self.byzantine;
        let m = self.select.map_or(honest, |m| m.min(honest));
        apply_mean_of(global, updates, &order[..m]);
        Ok(())
    }
}
