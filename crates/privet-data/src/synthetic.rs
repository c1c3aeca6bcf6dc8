//! The FedProx `Synthetic(alpha, beta)` federation (Li et al., "Federated Optimization in
//! Heterogeneous Networks", MLSys 2020, `generate_synthetic`), generated lazily.
//!
//! For client `k` (with `d = dim`, `C = classes`):
//!
//! * `u_k ~ N(0, alpha^2)` and `B_k ~ N(0, beta^2)` (`alpha`, `beta` are standard deviations, as
//!   in the reference code's `np.random.normal(0, alpha)`),
//! * `W_k` (`C x d`) and `b_k` (`C`) have entries `~ N(u_k, 1)`,
//! * `v_k` (`d`) has entries `~ N(B_k, 1)`,
//! * each row is `x ~ N(v_k, diag(Sigma))` with `Sigma_jj = (j + 1)^(-1.2)`, and its label
//!   `y = argmax(W_k x + b_k)` (ties go to the lowest class).
//!
//! `alpha` controls how much the local models differ, `beta` how much the local inputs differ.
//! Unlike the reference code every client has the same number of rows (`rows_per_client`).
//!
//! Nothing per client is stored: client `k`'s model and training rows come from a ChaCha20 stream
//! `ChaCha20Rng::seed_from_u64(seed)` with `set_stream(k)` (model first, then rows); held-out rows
//! for [`SyntheticFederation::test_set`] come from stream `2^63 + k` with the same model. So a
//! client's data is a pure function of `(spec, k)`, whatever order clients are asked in, and a
//! federation of 100,000 clients costs no more memory than one of 10.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::encode::{Dataset, Matrix};
use crate::error::DataError;

/// Stream offset for held-out (test) rows.
const TEST_STREAM: u64 = 1 << 63;

/// Parameters of a synthetic federation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Standard deviation of the per-client model mean `u_k` (model heterogeneity), >= 0.
    pub alpha: f64,
    /// Standard deviation of the per-client input mean `B_k` (input heterogeneity), >= 0.
    pub beta: f64,
    /// Number of clients, >= 1.
    pub num_clients: usize,
    /// Training rows per client, >= 1.
    pub rows_per_client: usize,
    /// Number of features (60 in the paper), >= 1.
    pub dim: usize,
    /// Number of classes (10 in the paper), >= 2.
    pub classes: usize,
    /// Master seed.
    pub seed: u64,
}

impl SyntheticSpec {
    /// The paper's shape (60 features, 10 classes) with the given heterogeneity and size.
    pub fn new(
        alpha: f64,
        beta: f64,
        num_clients: usize,
        rows_per_client: usize,
        seed: u64,
    ) -> Self {
        Self {
            alpha,
            beta,
            num_clients,
            rows_per_client,
            dim: 60,
            classes: 10,
            seed,
        }
    }
}

/// One client's model and input mean.
struct ClientModel {
    /// `classes x dim`, row-major.
    w: Vec<f64>,
    b: Vec<f64>,
    v: Vec<f64>,
}

fn normal(rng: &mut ChaCha20Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A lazily generated `Synthetic(alpha, beta)` federation; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticFederation {
    spec: SyntheticSpec,
    /// `sqrt(Sigma_jj) = (j + 1)^(-0.6)`: `dim` values shared by all clients.
    scale: Vec<f64>,
}

impl SyntheticFederation {
    /// Checks the spec; nothing is generated yet.
    pub fn new(spec: SyntheticSpec) -> Result<Self, DataError> {
        let bad = |msg: String| Err(DataError::InvalidParameter(msg));
        if !(spec.alpha.is_finite() && spec.alpha >= 0.0) {
            return bad(format!(
                "synthetic alpha must be finite and >= 0, got {}",
                spec.alpha
            ));
        }
        if !(spec.beta.is_finite() && spec.beta >= 0.0) {
            return bad(format!(
                "synthetic beta must be finite and >= 0, got {}",
                spec.beta
            ));
        }
        if spec.num_clients == 0 || spec.num_clients as u64 >= TEST_STREAM {
            return bad(format!(
                "synthetic num_clients must be in 1..2^63, got {}",
                spec.num_clients
            ));
        }
        if spec.rows_per_client == 0 {
            return bad("synthetic rows_per_client must be at least 1".into());
        }
        if spec.dim == 0 {
            return bad("synthetic dim must be at least 1".into());
        }
        if spec.classes < 2 || u32::try_from(spec.classes).is_err() {
            return bad(format!(
                "synthetic classes must be in 2..=u32::MAX, got {}",
                spec.classes
            ));
        }
        if spec.rows_per_client.checked_mul(spec.dim).is_none()
            || spec.classes.checked_mul(spec.dim).is_none()
        {
            return bad("synthetic shape overflows".into());
        }
        let scale = (0..spec.dim).map(|j| ((j + 1) as f64).powf(-0.6)).collect();
        Ok(Self { spec, scale })
    }

    /// The spec.
    pub fn spec(&self) -> &SyntheticSpec {
        &self.spec
    }

    /// Number of clients.
    pub fn num_clients(&self) -> usize {
        self.spec.num_clients
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.spec.dim
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.spec.classes
    }

    /// Feature names `x0`, `x1`, ...
    pub fn feature_names(&self) -> Vec<String> {
        (0..self.spec.dim).map(|j| format!("x{j}")).collect()
    }

    fn stream(&self, stream: u64) -> ChaCha20Rng {
        let mut rng = ChaCha20Rng::seed_from_u64(self.spec.seed);
        rng.set_stream(stream);
        rng
    }

    /// Draws client `k`'s model from its stream, leaving the stream positioned for its rows.
    fn model(&self, rng: &mut ChaCha20Rng) -> ClientModel {
        let (d, c) = (self.spec.dim, self.spec.classes);
        let u = self.spec.alpha * normal(rng);
        let big_b = self.spec.beta * normal(rng);
        let v = (0..d).map(|_| big_b + normal(rng)).collect();
        let w = (0..c * d).map(|_| u + normal(rng)).collect();
        let b = (0..c).map(|_| u + normal(rng)).collect();
        ClientModel { w, b, v }
    }

    /// Appends `rows` rows of `model` drawn from `rng` to `x` and `y`.
    fn rows(
        &self,
        model: &ClientModel,
        rng: &mut ChaCha20Rng,
        rows: usize,
        x: &mut Vec<f32>,
        y: &mut Vec<u32>,
    ) {
        let d = self.spec.dim;
        let mut row = vec![0.0f64; d];
        for _ in 0..rows {
            for (j, xj) in row.iter_mut().enumerate() {
                *xj = model.v[j] + self.scale[j] * normal(rng);
            }
            let mut best = (f64::NEG_INFINITY, 0u32);
            for (class, (wc, bc)) in model.w.chunks_exact(d).zip(&model.b).enumerate() {
                let score = bc + wc.iter().zip(&row).map(|(w, x)| w * x).sum::<f64>();
                if score > best.0 {
                    // classes <= u32::MAX was checked in new().
                    best = (score, class as u32);
                }
            }
            x.extend(row.iter().map(|&v| v as f32));
            y.push(best.1);
        }
    }

    /// Client `client`'s `rows_per_client` training rows. Panics when `client >= num_clients()`;
    /// see [`SyntheticFederation::try_client_data`].
    pub fn client_data(&self, client: usize) -> Dataset {
        assert!(
            client < self.spec.num_clients,
            "client {client} out of range for {} clients",
            self.spec.num_clients
        );
        let mut rng = self.stream(client as u64);
        let model = self.model(&mut rng);
        let n = self.spec.rows_per_client;
        let mut x = Vec::with_capacity(n * self.spec.dim);
        let mut y = Vec::with_capacity(n);
        self.rows(&model, &mut rng, n, &mut x, &mut y);
        self.dataset(n, x, y)
    }

    /// Like [`SyntheticFederation::client_data`], with an error for an out-of-range client.
    pub fn try_client_data(&self, client: usize) -> Result<Dataset, DataError> {
        if client >= self.spec.num_clients {
            return Err(DataError::InvalidParameter(format!(
                "client {client} out of range for {} clients",
                self.spec.num_clients
            )));
        }
        Ok(self.client_data(client))
    }

    /// A centralized test set: `rows_per_client` fresh rows (from each client's held-out stream,
    /// never overlapping its training rows) from each of `min(max_clients, num_clients())` clients
    /// spaced evenly over the id range (`i * num_clients / m` for `i in 0..m`), in that order.
    pub fn test_set(&self, max_clients: usize, rows_per_client: usize) -> Dataset {
        let total = self.spec.num_clients;
        let m = max_clients.min(total);
        let mut x = Vec::with_capacity(m * rows_per_client * self.spec.dim);
        let mut y = Vec::with_capacity(m * rows_per_client);
        for i in 0..m {
            let client = (i as u128 * total as u128 / m as u128) as u64;
            let model = self.model(&mut self.stream(client));
            let mut rng = self.stream(TEST_STREAM | client);
            self.rows(&model, &mut rng, rows_per_client, &mut x, &mut y);
        }
        self.dataset(m * rows_per_client, x, y)
    }

    fn dataset(&self, rows: usize, x: Vec<f32>, y: Vec<u32>) -> Dataset {
        Dataset {
            x: Matrix {
                rows,
                cols: self.spec.dim,
                data: x,
            },
            y,
            num_classes: self.spec.classes,
            feature_names: self.feature_names(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(alpha: f64, beta: f64, clients: usize) -> SyntheticFederation {
        SyntheticFederation::new(SyntheticSpec::new(alpha, beta, clients, 200, 11)).unwrap()
    }

    #[test]
    fn shapes_and_label_range() {
        let f = fed(1.0, 1.0, 30);
        let d = f.client_data(3);
        assert_eq!((d.x.rows, d.x.cols), (200, 60));
        assert_eq!(d.x.data.len(), 200 * 60);
        assert_eq!(d.y.len(), 200);
        assert_eq!(d.num_classes, 10);
        assert_eq!(d.feature_names.len(), 60);
        assert!(d.y.iter().all(|&c| c < 10));
        assert!(d.x.data.iter().all(|v| v.is_finite()));
        let t = f.test_set(10, 50);
        assert_eq!((t.x.rows, t.x.cols, t.y.len()), (500, 60, 500));
        assert_eq!(f.test_set(100, 5).len(), 150);
        assert_eq!(f.test_set(0, 5).len(), 0);
    }

    #[test]
    fn deterministic_and_order_independent() {
        let f = fed(0.5, 0.5, 50);
        let forward: Vec<Dataset> = (0..50).map(|k| f.client_data(k)).collect();
        let g = fed(0.5, 0.5, 50);
        for k in (0..50).rev() {
            assert_eq!(g.client_data(k), forward[k]);
        }
        assert_ne!(forward[0], forward[1]);
        let other_seed =
            SyntheticFederation::new(SyntheticSpec::new(0.5, 0.5, 50, 200, 12)).unwrap();
        assert_ne!(other_seed.client_data(0), forward[0]);
        assert_eq!(f.test_set(5, 20), g.test_set(5, 20));
    }

    #[test]
    fn test_rows_are_fresh_but_from_the_same_client_model() {
        let f = fed(1.0, 1.0, 1);
        let train = f.client_data(0);
        let test = f.test_set(1, 200);
        assert_ne!(train.x.data, test.x.data);
        // Same client distribution: same dominant class.
        let argmax = |c: Vec<usize>| c.iter().enumerate().max_by_key(|p| p.1).map(|p| p.0);
        assert_eq!(argmax(train.class_counts()), argmax(test.class_counts()));
    }

    #[test]
    fn label_skew_differs_across_clients() {
        let f = fed(1.0, 1.0, 40);
        let hists: Vec<Vec<usize>> = (0..40).map(|k| f.client_data(k).class_counts()).collect();
        let dominant: std::collections::BTreeSet<usize> = hists
            .iter()
            .map(|h| h.iter().enumerate().max_by_key(|p| p.1).map_or(0, |p| p.0))
            .collect();
        assert!(dominant.len() >= 4, "dominant classes: {dominant:?}");
        let dominated = hists
            .iter()
            .filter(|h| h.iter().copied().max().unwrap_or(0) * 2 > 200)
            .count();
        assert!(
            dominated >= 10,
            "{dominated} of 40 clients dominated by one class"
        );
    }

    #[test]
    fn huge_federation_is_constant_memory() {
        let f = fed(1.0, 1.0, 100_000);
        // Only the spec and the 60 shared scales are stored.
        assert!(std::mem::size_of_val(&f) < 128);
        assert_eq!(f.scale.capacity(), 60);
        assert_eq!(f.num_clients(), 100_000);
        assert_eq!(f.client_data(99_999).len(), 200);
        assert!(f.try_client_data(100_000).is_err());
    }

    #[test]
    fn rejects_bad_specs() {
        let ok = SyntheticSpec::new(1.0, 1.0, 10, 10, 0);
        for spec in [
            SyntheticSpec {
                alpha: -1.0,
                ..ok.clone()
            },
            SyntheticSpec {
                beta: f64::NAN,
                ..ok.clone()
            },
            SyntheticSpec {
                num_clients: 0,
                ..ok.clone()
            },
            SyntheticSpec {
                rows_per_client: 0,
                ..ok.clone()
            },
            SyntheticSpec {
                dim: 0,
                ..ok.clone()
            },
            SyntheticSpec {
                classes: 1,
                ..ok.clone()
            },
            SyntheticSpec {
                rows_per_client: usize::MAX,
                ..ok.clone()
            },
        ] {
            assert!(matches!(
                SyntheticFederation::new(spec),
                Err(DataError::InvalidParameter(_))
            ));
        }
        assert!(SyntheticFederation::new(ok).is_ok());
    }
}
