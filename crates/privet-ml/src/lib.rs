//! Models and local training for privet, on [candle](https://github.com/huggingface/candle).
//!
//! A [`Network`] is an architecture ([`ModelSpec`]: logistic regression, an MLP, or a small CNN
//! for 8x8 images) bound to an input width and a class count. Its parameters are one flat `f32`
//! vector laid out by a [`ParamLayout`] of named tensors, which is what federated strategies
//! average and what secure aggregation and differential privacy will operate on. Training takes an
//! index view of the rows (`&[u32]` into a shared [`Matrix`](privet_data::Matrix)), so a client's
//! data is never copied beyond one minibatch.
//!
//! [`Network::train_dp`] is DP-SGD (Poisson lots, per-example clipping by ghost norms, Gaussian
//! noise from a CSPRNG) for logistic regression and MLPs, with [`calibrate_noise`] and
//! [`privacy_spent`] on `privet-dp`'s accountants; see the `dpsgd` module's documentation.
//!
//! ```
//! use privet_data::Matrix;
//! use privet_ml::{ModelSpec, Network, OptimizerConfig, TrainConfig};
//!
//! // Two separable points in one feature.
//! let x = Matrix::new(4, 1, vec![-2.0, -1.0, 1.0, 2.0]).unwrap();
//! let y = [0, 0, 1, 1];
//! let net = Network::new(ModelSpec::Logreg, 1, 2).unwrap();
//! let cfg = TrainConfig {
//!     epochs: 50,
//!     batch_size: 2,
//!     optimizer: OptimizerConfig::sgd(0.5),
//!     proximal_mu: None,
//!     seed: 7,
//! };
//! let (params, _stats) = net.train(&net.init(0), &x, &y, &[0, 1, 2, 3], &cfg).unwrap();
//! assert_eq!(net.evaluate(&params, &x, &y).unwrap().accuracy, 1.0);
//! ```

mod dense;
mod dpsgd;
mod error;
mod io;
mod linear;
mod metrics;
mod network;
mod optim;
mod spec;

pub use dpsgd::{
    DEFAULT_CLIP_NORM, DEFAULT_LOT_SIZE, DpReport, DpSchedule, DpSgdConfig, DpTarget, DpTrainStats,
    NoiseSampler, PrivacySpent, calibrate_noise, noise_rng, privacy_spent,
};
pub use error::MlError;
pub use io::{MODEL_FORMAT_VERSION, ModelMeta, Predictions, TrainedModel, meta_path, write_atomic};
pub use metrics::{EvalMetrics, evaluate_scores, roc_auc};
pub use network::{EpochCallback, Network, TrainConfig, TrainStats};
pub use optim::OptimizerConfig;
pub use privet_dp::AccountantKind;
pub use spec::{Activation, MAX_PARAMS, ModelSpec, ParamEntry, ParamLayout, output_units};
