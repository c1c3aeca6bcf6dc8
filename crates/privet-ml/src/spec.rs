//! Model architectures and the layout of their parameters as one flat vector.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::error::{MlError, shape_err};

/// Largest layer width or parameter count accepted from a configuration or model file.
pub const MAX_PARAMS: usize = 1 << 30;

/// A model architecture. Plain data: it is part of the job configuration and of the model metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// Logistic regression: one sigmoid output for two classes, softmax for more.
    Logreg,
    /// A multilayer perceptron with hidden layers of the given widths (ReLU unless another
    /// activation is named).
    Mlp {
        /// Hidden layer widths.
        hidden: Vec<usize>,
        /// The hidden layers' activation; absent in model files written before it existed.
        #[serde(default, skip_serializing_if = "Activation::is_relu")]
        activation: Activation,
    },
    /// A small CNN for 8x8 single-channel images (the UCI digits): two 3x3 conv layers with ReLU
    /// and 2x2 max pooling (16 and 32 channels), then a linear layer.
    Cnn,
}

/// The activation of an MLP's hidden layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(x, 0).
    #[default]
    Relu,
    /// x^2: a polynomial activation, so the model can be evaluated under homomorphic
    /// encryption (CKKS evaluates it with one multiplication; see privet-he).
    Square,
}

impl Activation {
    /// True for ReLU (the default).
    pub fn is_relu(&self) -> bool {
        *self == Activation::Relu
    }

    /// The name used in job and model files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Square => "square",
        }
    }
}

impl ModelSpec {
    /// A short human-readable name.
    pub fn describe(&self) -> String {
        match self {
            ModelSpec::Logreg => "logistic regression".into(),
            ModelSpec::Mlp { hidden, activation } => match activation {
                Activation::Relu => format!("MLP {hidden:?}"),
                a => format!("MLP {hidden:?} ({})", a.as_str()),
            },
            ModelSpec::Cnn => "CNN (8x8 images)".into(),
        }
    }
}

/// One named tensor inside the flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamEntry {
    /// Name in the safetensors file, following PyTorch's conventions (`fc0.weight`, `conv1.bias`).
    pub name: String,
    /// Shape, PyTorch convention: linear weights are `[out, in]`, conv kernels `[out, in, kh, kw]`.
    pub shape: Vec<usize>,
    /// Offset of the first element in the flat vector.
    pub offset: usize,
    /// Fan-in used for the default initialisation.
    fan_in: usize,
}

impl ParamEntry {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a tensor with no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ordered list of parameter tensors of an architecture for a given input and output size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    entries: Vec<ParamEntry>,
    total: usize,
}

impl ParamLayout {
    fn build(shapes: Vec<(String, Vec<usize>, usize)>) -> Result<Self, MlError> {
        let mut entries = Vec::with_capacity(shapes.len());
        let mut total = 0usize;
        for (name, shape, fan_in) in shapes {
            let len = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .filter(|&n| n <= MAX_PARAMS)
                .ok_or_else(|| MlError::InvalidConfig(format!("tensor {name} is too large")))?;
            entries.push(ParamEntry {
                name,
                shape,
                offset: total,
                fan_in,
            });
            total = total
                .checked_add(len)
                .filter(|&n| n <= MAX_PARAMS)
                .ok_or_else(|| MlError::InvalidConfig("model is too large".into()))?;
        }
        Ok(ParamLayout { entries, total })
    }

    /// The layout of `spec` for `input_dim` features and `num_classes` classes.
    pub fn new(spec: &ModelSpec, input_dim: usize, num_classes: usize) -> Result<Self, MlError> {
        if input_dim == 0 {
            return Err(MlError::InvalidConfig(
                "the model needs at least one input feature".into(),
            ));
        }
        if num_classes < 2 {
            return Err(MlError::InvalidConfig(format!(
                "a classifier needs at least two classes, the data has {num_classes}"
            )));
        }
        let out = output_units(num_classes);
        let linear = |name: &str, i: usize, o: usize| {
            vec![
                (format!("{name}.weight"), vec![o, i], i),
                (format!("{name}.bias"), vec![o], i),
            ]
        };
        let shapes = match spec {
            ModelSpec::Logreg => linear("linear", input_dim, out),
            ModelSpec::Mlp { hidden, .. } => {
                if hidden.is_empty() || hidden.iter().any(|&h| h == 0 || h > 1 << 16) {
                    return Err(MlError::InvalidConfig(
                        "an MLP needs one or more hidden layers, each 1 to 65536 wide".into(),
                    ));
                }
                let mut v = Vec::new();
                let mut prev = input_dim;
                for (i, &h) in hidden.iter().enumerate() {
                    v.extend(linear(&format!("fc{i}"), prev, h));
                    prev = h;
                }
                v.extend(linear(&format!("fc{}", hidden.len()), prev, out));
                v
            }
            ModelSpec::Cnn => {
                if input_dim != CNN_SIDE * CNN_SIDE {
                    return Err(MlError::InvalidConfig(format!(
                        "the CNN takes 8x8 images (64 features), the data has {input_dim}"
                    )));
                }
                let conv = |name: &str, i: usize, o: usize| {
                    vec![
                        (format!("{name}.weight"), vec![o, i, 3, 3], i * 9),
                        (format!("{name}.bias"), vec![o], i * 9),
                    ]
                };
                let mut v = conv("conv1", 1, CNN_C1);
                v.extend(conv("conv2", CNN_C1, CNN_C2));
                v.extend(linear("fc", CNN_C2 * 4, out));
                v
            }
        };
        Self::build(shapes)
    }

    /// The tensors in order.
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.total
    }

    /// Initial parameters: uniform in +-1/sqrt(fan_in) as PyTorch's `nn.Linear` and `nn.Conv2d`
    /// default, from a seeded ChaCha20 stream. Logistic regression starts at zero, as is usual for
    /// a convex model (and as the Flower benchmark task prescribes).
    pub fn init(&self, spec: &ModelSpec, seed: u64) -> Vec<f32> {
        let mut params = vec![0f32; self.total];
        if *spec == ModelSpec::Logreg {
            return params;
        }
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for e in &self.entries {
            let bound = 1.0 / (e.fan_in as f32).sqrt();
            for p in &mut params[e.offset..e.offset + e.len()] {
                *p = rng.random_range(-bound..bound);
            }
        }
        params
    }

    /// Checks that a flat vector has this layout's length and only finite values.
    pub fn check(&self, params: &[f32]) -> Result<(), MlError> {
        if params.len() != self.total {
            return Err(shape_err(format!(
                "expected {} parameters, got {}",
                self.total,
                params.len()
            )));
        }
        if params.iter().any(|p| !p.is_finite()) {
            return Err(shape_err("parameters contain NaN or infinity"));
        }
        Ok(())
    }
}

/// Side of the CNN's square input image.
pub(crate) const CNN_SIDE: usize = 8;
pub(crate) const CNN_C1: usize = 16;
pub(crate) const CNN_C2: usize = 32;

/// Width of the output layer: one logit for a binary problem, one per class otherwise.
pub fn output_units(num_classes: usize) -> usize {
    if num_classes == 2 { 1 } else { num_classes }
}
