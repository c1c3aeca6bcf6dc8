//! From a trained privet model to the plain layers privet-he evaluates, and back from scores to
//! probabilities.

use privet_he::inference::{Layer, PlainModel};
use privet_ml::{Activation, ModelSpec, TrainedModel, output_units};

use crate::error::{HeServiceError, Result};

/// How the client turns scores into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// One logit, two classes: p(class 1) = sigmoid(score).
    Sigmoid,
    /// One logit per class: softmax.
    Softmax,
}

impl Output {
    /// For a model with `num_classes` classes.
    pub fn for_classes(num_classes: usize) -> Self {
        if output_units(num_classes) == 1 {
            Output::Sigmoid
        } else {
            Output::Softmax
        }
    }

    /// Class probabilities from scores (numerically stable).
    pub fn probabilities(self, scores: &[f64]) -> Vec<f64> {
        match self {
            Output::Sigmoid => {
                let z = scores.first().copied().unwrap_or(0.0);
                let p1 = if z >= 0.0 {
                    1.0 / (1.0 + (-z).exp())
                } else {
                    z.exp() / (1.0 + z.exp())
                };
                vec![1.0 - p1, p1]
            }
            Output::Softmax => {
                let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let sum: f64 = e.iter().sum();
                e.into_iter().map(|v| v / sum).collect()
            }
        }
    }

    /// The predicted class from scores.
    pub fn class(self, scores: &[f64]) -> u32 {
        match self {
            Output::Sigmoid => (scores.first().copied().unwrap_or(0.0) > 0.0) as u32,
            Output::Softmax => {
                let mut best = 0;
                for (i, s) in scores.iter().enumerate() {
                    if *s > scores[best] {
                        best = i;
                    }
                }
                best as u32
            }
        }
    }
}

/// The model's layers as plain f64 matrices. Logistic and softmax regression always work; an MLP
/// needs the polynomial activation (`activation = "square"` in the job's `[model]`): ReLU has no
/// exact CKKS evaluation.
pub fn plain_model(model: &TrainedModel) -> Result<PlainModel> {
    let net = &model.network;
    let input = net.input_dim();
    let layout = net.layout();
    let entries = layout.entries();
    let params = &model.params;
    let tensor = |i: usize| -> Result<(Vec<usize>, Vec<f64>)> {
        let e = entries
            .get(i)
            .ok_or_else(|| HeServiceError::Model("missing tensor".into()))?;
        let v = params
            .get(e.offset..e.offset + e.len())
            .ok_or_else(|| HeServiceError::Model(format!("tensor {} out of range", e.name)))?;
        Ok((e.shape.clone(), v.iter().map(|&x| x as f64).collect()))
    };
    let dense = |i: usize| -> Result<Layer> {
        let (ws, weights) = tensor(2 * i)?;
        let (_, bias) = tensor(2 * i + 1)?;
        match ws.as_slice() {
            [rows, cols] => Ok(Layer::Dense {
                rows: *rows,
                cols: *cols,
                weights,
                bias,
            }),
            _ => Err(HeServiceError::Model(
                "a dense weight is not a matrix".into(),
            )),
        }
    };
    let layers = match net.spec() {
        ModelSpec::Logreg => vec![dense(0)?],
        ModelSpec::Mlp {
            hidden,
            activation: Activation::Square,
        } => {
            let mut v = Vec::new();
            for i in 0..hidden.len() {
                v.push(dense(i)?);
                v.push(Layer::Square);
            }
            v.push(dense(hidden.len())?);
            v
        }
        ModelSpec::Mlp { activation, .. } => {
            return Err(HeServiceError::Model(format!(
                "an MLP with {} activations cannot be evaluated under CKKS; train it with \
                 activation = \"square\" in the job's [model] section",
                activation.as_str()
            )));
        }
        ModelSpec::Cnn => {
            return Err(HeServiceError::Model(
                "the CNN is not supported under encryption (logistic/softmax regression and \
                 MLPs with activation = \"square\" are)"
                    .into(),
            ));
        }
    };
    Ok(PlainModel::new(input, layers)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_stable_and_sum_to_one() {
        let p = Output::Sigmoid.probabilities(&[1000.0]);
        assert!((p[1] - 1.0).abs() < 1e-12 && p[0].abs() < 1e-12);
        let p = Output::Sigmoid.probabilities(&[-1000.0]);
        assert!(p[1].abs() < 1e-12);
        let p = Output::Softmax.probabilities(&[1000.0, 999.0, -5.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[0] > p[1] && p[1] > p[2]);
        assert_eq!(Output::Softmax.class(&[0.1, 3.0, 2.0]), 1);
        assert_eq!(Output::Sigmoid.class(&[-0.1]), 0);
        assert_eq!(Output::for_classes(2), Output::Sigmoid);
        assert_eq!(Output::for_classes(10), Output::Softmax);
    }
}
