//! Client identities, client updates and their weighted sum.

use std::fmt;

use crate::FlError;

/// Identifies one client (data owner) of a federation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u32);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a client reports about its local training.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrainMetrics {
    /// Mean training loss over the client's local epochs (as the trainer defines it).
    pub loss: f32,
    /// Number of training examples the client used.
    pub num_examples: u64,
}

/// One client's contribution to a round: a model *delta* `w_local - w_global`.
///
/// Deltas (not models) travel so that clipping, noise and secure aggregation act on them.
#[derive(Clone, PartialEq)]
pub struct ClientUpdate {
    /// The client that trained.
    pub client: ClientId,
    /// `w_local - w_global`, same length as the global model.
    pub delta: Vec<f32>,
    /// Aggregation weight (FedAvg weights clients by their number of examples).
    pub num_examples: u64,
    /// Training metrics.
    pub metrics: TrainMetrics,
}

impl fmt::Debug for ClientUpdate {
    // The delta can have millions of entries: print its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientUpdate")
            .field("client", &self.client)
            .field("delta_len", &self.delta.len())
            .field("num_examples", &self.num_examples)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// The example-weighted sum of deltas, `Σ n_k Δ_k` and `Σ n_k`: exactly what secure aggregation
/// can reveal. Accumulated in `f64`.
#[derive(Clone, PartialEq)]
pub struct WeightedSum {
    /// `Σ_k n_k Δ_k`, one entry per parameter.
    pub sum: Vec<f64>,
    /// `Σ_k n_k`.
    pub total_weight: f64,
    /// Number of clients in the sum.
    pub num_clients: usize,
}

impl fmt::Debug for WeightedSum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightedSum")
            .field("sum_len", &self.sum.len())
            .field("total_weight", &self.total_weight)
            .field("num_clients", &self.num_clients)
            .finish()
    }
}

impl WeightedSum {
    /// An empty sum of `len` parameters.
    pub fn zeros(len: usize) -> Self {
        WeightedSum {
            sum: vec![0.0; len],
            total_weight: 0.0,
            num_clients: 0,
        }
    }

    /// The weighted mean `Σ n_k Δ_k / Σ n_k`.
    ///
    /// Errors with [`FlError::ZeroWeight`] if the total weight is not positive and finite, and
    /// with [`FlError::NonFiniteAggregate`] if the sum holds NaN or an infinity.
    pub fn mean(&self) -> Result<Vec<f64>, FlError> {
        if !(self.total_weight.is_finite() && self.total_weight > 0.0) {
            return Err(FlError::ZeroWeight);
        }
        if self.sum.iter().any(|x| !x.is_finite()) {
            return Err(FlError::NonFiniteAggregate);
        }
        Ok(self.sum.iter().map(|s| s / self.total_weight).collect())
    }
}

/// Checks that `update` has `expected_len` parameters, all finite.
pub fn validate_update(update: &ClientUpdate, expected_len: usize) -> Result<(), FlError> {
    if update.delta.len() != expected_len {
        return Err(FlError::ShapeMismatch {
            client: update.client,
            expected: expected_len,
            found: update.delta.len(),
        });
    }
    if update.delta.iter().any(|x| !x.is_finite()) {
        return Err(FlError::NonFinite {
            client: update.client,
        });
    }
    Ok(())
}

/// `Σ n_k Δ_k` and `Σ n_k` over `updates`, accumulated in `f64`.
///
/// All updates must have the length of the first one and be finite.
pub fn weighted_sum(updates: &[ClientUpdate]) -> Result<WeightedSum, FlError> {
    let first = updates.first().ok_or(FlError::EmptyRound)?;
    weighted_sum_with_len(updates, first.delta.len())
}

/// [`weighted_sum`] with every update checked against `expected_len`.
pub(crate) fn weighted_sum_with_len(
    updates: &[ClientUpdate],
    expected_len: usize,
) -> Result<WeightedSum, FlError> {
    if updates.is_empty() {
        return Err(FlError::EmptyRound);
    }
    let mut acc = WeightedSum::zeros(expected_len);
    for update in updates {
        validate_update(update, expected_len)?;
        // u64 -> f64 is exact below 2^53 examples, far beyond any real client.
        let weight = update.num_examples as f64;
        for (s, &d) in acc.sum.iter_mut().zip(&update.delta) {
            *s += weight * f64::from(d);
        }
        acc.total_weight += weight;
        acc.num_clients += 1;
    }
    Ok(acc)
}

/// What a strategy aggregates: individual updates, or only their weighted sum (what secure
/// aggregation reveals).
#[derive(Clone, Copy, Debug)]
pub enum AggregateInput<'a> {
    /// Every client's update, in the clear.
    Individual(&'a [ClientUpdate]),
    /// Only the weighted sum.
    Sum(&'a WeightedSum),
}
