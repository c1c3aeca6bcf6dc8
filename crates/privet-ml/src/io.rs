//! Trained models on disk: weights in safetensors (loadable by PyTorch) and a versioned JSON
//! metadata file with the architecture, the feature encoding and the label names.
//!
//! `model.safetensors` holds one f32 tensor per [`ParamEntry`](crate::ParamEntry), named as in
//! PyTorch (`linear.weight` is `[out, in]`). `model.json` next to it holds [`ModelMeta`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use privet_data::{CsvOptions, Encoder, Matrix, load_csv};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::MlError;
use crate::network::Network;
use crate::spec::{MAX_PARAMS, ModelSpec};

/// Version of the metadata format written by this crate.
pub const MODEL_FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "privet-model";
/// Largest metadata file read.
const MAX_META_BYTES: u64 = 64 << 20;

/// Metadata saved beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// Always `privet-model`.
    pub format: String,
    /// [`MODEL_FORMAT_VERSION`] at the time of writing.
    pub format_version: u32,
    /// The architecture.
    pub architecture: ModelSpec,
    /// Width of the encoded input.
    pub input_dim: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Name of the label column in the training data.
    pub label: String,
    /// Columns read as categorical.
    pub categorical: Vec<String>,
    /// The feature encoding fitted on the training split, with the label names.
    pub encoder: Encoder,
}

/// A trained model: network, parameters and the encoding of its input.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    /// The architecture for this input and output.
    pub network: Network,
    /// Flat parameters in the network's layout.
    pub params: Vec<f32>,
    /// The feature encoding and label names.
    pub encoder: Encoder,
    /// Name of the label column.
    pub label: String,
    /// Columns read as categorical.
    pub categorical: Vec<String>,
}

/// Predictions for the rows of a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Label names, in class order.
    pub label_names: Vec<String>,
    /// Most probable class per row.
    pub classes: Vec<u32>,
    /// Row-major class probabilities.
    pub probabilities: Vec<f32>,
    /// The true labels when the file had the label column.
    pub truth: Option<Vec<u32>>,
}

fn bad(path: &Path, reason: impl Into<String>) -> MlError {
    MlError::BadModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The metadata path that goes with a weights path (`x.safetensors` -> `x.json`).
pub fn meta_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// Reads at most `limit` bytes of a file, failing if it is larger.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, MlError> {
    privet_files::read_limited(path, limit).map_err(|e| file_err(path, e))
}

/// A file error as the model's error: a file too large is a bad model file, others keep their
/// cause.
fn file_err(path: &Path, e: privet_files::FileError) -> MlError {
    match e {
        privet_files::FileError::Io { path, source } => MlError::Io { path, source },
        privet_files::FileError::TooLarge { limit, .. } => {
            bad(path, format!("file is larger than the {limit}-byte limit"))
        }
        other => bad(path, other.to_string()),
    }
}

/// Writes a model file whole (privet-files' `write_output`: temporary file and rename, not
/// synced, as a run's outputs are; the mode of a file it replaces is kept, and a link or
/// special file is not replaced).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MlError> {
    privet_files::write_output(path, bytes, privet_files::Mode::Public)
        .map_err(|e| file_err(path, e))
}

impl ModelMeta {
    /// Parses and checks model.json bytes (`source` names them in errors): format, version, and
    /// that the encoder matches the input width and class count.
    pub fn parse(bytes: &[u8], source: &Path) -> Result<ModelMeta, MlError> {
        if bytes.len() as u64 > MAX_META_BYTES {
            return Err(bad(source, format!("larger than {MAX_META_BYTES} bytes")));
        }
        let meta: ModelMeta = serde_json::from_slice(bytes)
            .map_err(|err| bad(source, format!("not a privet model metadata file: {err}")))?;
        if meta.format != FORMAT_NAME {
            return Err(bad(
                source,
                format!("format is `{}`, expected `{FORMAT_NAME}`", meta.format),
            ));
        }
        if meta.format_version != MODEL_FORMAT_VERSION {
            return Err(bad(
                source,
                format!(
                    "format version {} is not supported (this privet reads version {MODEL_FORMAT_VERSION})",
                    meta.format_version
                ),
            ));
        }
        if meta.encoder.output_dim() != meta.input_dim
            || meta.encoder.num_classes() != meta.num_classes
        {
            return Err(bad(
                source,
                "the encoder does not match the input width or class count",
            ));
        }
        Ok(meta)
    }

    /// Reads a CSV with the training data's columns (the label column is optional) and encodes
    /// it as the model was trained: the feature matrix, and the labels when the column is there.
    pub fn encode_csv(&self, path: &Path) -> Result<(Matrix, Option<Vec<u32>>), MlError> {
        encode_csv(&self.encoder, &self.label, &self.categorical, path)
    }
}

fn encode_csv(
    encoder: &Encoder,
    label: &str,
    categorical: &[String],
    path: &Path,
) -> Result<(Matrix, Option<Vec<u32>>), MlError> {
    let header = privet_data::read_header(path)?;
    let has_label = header.iter().any(|h| h == label);
    let known: Vec<&str> = encoder.features.iter().map(|f| f.name()).collect();
    let mut opts = if has_label {
        CsvOptions::new(label.to_string())
    } else {
        CsvOptions::default()
    };
    opts.categorical = categorical
        .iter()
        .filter(|c| header.contains(c))
        .cloned()
        .collect();
    // Columns the model never saw are ignored rather than parsed.
    opts.drop = header
        .iter()
        .filter(|h| *h != label && !known.contains(&h.as_str()))
        .cloned()
        .collect();
    let table = load_csv(path, &opts)?;
    let x = encoder.transform(&table)?;
    let truth = if has_label {
        Some(encoder.encode_labels(&table)?)
    } else {
        None
    };
    Ok((x, truth))
}

impl TrainedModel {
    /// The metadata describing this model.
    pub fn meta(&self) -> ModelMeta {
        ModelMeta {
            format: FORMAT_NAME.into(),
            format_version: MODEL_FORMAT_VERSION,
            architecture: self.network.spec().clone(),
            input_dim: self.network.input_dim(),
            num_classes: self.network.num_classes(),
            label: self.label.clone(),
            categorical: self.categorical.clone(),
            encoder: self.encoder.clone(),
        }
    }

    /// Saves the weights to `weights` (a `.safetensors` path) and the metadata beside it.
    pub fn save(&self, weights: &Path) -> Result<(), MlError> {
        self.network.layout().check(&self.params)?;
        let bytes: Vec<Vec<u8>> = self
            .network
            .layout()
            .entries()
            .iter()
            .map(|e| {
                self.params[e.offset..e.offset + e.len()]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect()
            })
            .collect();
        let mut views = Vec::new();
        for (e, b) in self.network.layout().entries().iter().zip(&bytes) {
            let view = TensorView::new(Dtype::F32, e.shape.clone(), b)
                .map_err(|err| bad(weights, format!("cannot encode {}: {err}", e.name)))?;
            views.push((e.name.clone(), view));
        }
        let mut info = HashMap::new();
        info.insert("format".to_string(), FORMAT_NAME.to_string());
        info.insert(
            "format_version".to_string(),
            MODEL_FORMAT_VERSION.to_string(),
        );
        let serialized = safetensors::serialize(views, Some(info))
            .map_err(|err| bad(weights, format!("cannot serialize: {err}")))?;
        let meta = serde_json::to_vec_pretty(&self.meta())
            .map_err(|err| bad(weights, format!("cannot serialize metadata: {err}")))?;
        write_atomic(weights, &serialized)?;
        let mpath = meta_path(weights);
        write_atomic(&mpath, &meta)
    }

    /// Loads a model saved by [`TrainedModel::save`], checking the format version and that every
    /// tensor has the name, dtype and shape the metadata implies.
    pub fn load(weights: &Path) -> Result<Self, MlError> {
        let mpath = meta_path(weights);
        let meta_bytes = read_limited(&mpath, MAX_META_BYTES)?;
        let meta = ModelMeta::parse(&meta_bytes, &mpath)?;
        let network = Network::new(meta.architecture.clone(), meta.input_dim, meta.num_classes)
            .map_err(|err| bad(&mpath, err.to_string()))?;
        let limit = (network.num_params().min(MAX_PARAMS) as u64) * 4 + (1 << 20);
        let bytes = read_limited(weights, limit)?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|err| bad(weights, format!("not a safetensors file: {err}")))?;
        if st.len() != network.layout().entries().len() {
            return Err(bad(
                weights,
                format!(
                    "{} tensors, the architecture has {}",
                    st.len(),
                    network.layout().entries().len()
                ),
            ));
        }
        let mut params = vec![0f32; network.num_params()];
        for e in network.layout().entries() {
            let t = st
                .tensor(&e.name)
                .map_err(|_| bad(weights, format!("tensor `{}` is missing", e.name)))?;
            if t.dtype() != Dtype::F32 || t.shape() != e.shape.as_slice() {
                return Err(bad(
                    weights,
                    format!(
                        "tensor `{}` is {:?} {:?}, expected F32 {:?}",
                        e.name,
                        t.dtype(),
                        t.shape(),
                        e.shape
                    ),
                ));
            }
            for (dst, chunk) in params[e.offset..e.offset + e.len()]
                .iter_mut()
                .zip(t.data().chunks_exact(4))
            {
                *dst = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
        if params.iter().any(|p| !p.is_finite()) {
            return Err(bad(weights, "weights contain NaN or infinity"));
        }
        Ok(TrainedModel {
            network,
            params,
            encoder: meta.encoder,
            label: meta.label,
            categorical: meta.categorical,
        })
    }

    /// Class probabilities for an already encoded matrix.
    pub fn predict_matrix(&self, x: &Matrix) -> Result<Vec<f32>, MlError> {
        self.network.predict_proba(&self.params, x)
    }

    /// Reads a CSV with the training data's columns (the label column is optional) and predicts
    /// every row.
    pub fn predict_csv(&self, path: &Path) -> Result<Predictions, MlError> {
        let (x, truth) = encode_csv(&self.encoder, &self.label, &self.categorical, path)?;
        let probabilities = self.predict_matrix(&x)?;
        let k = self.network.num_classes();
        let classes = probabilities
            .chunks_exact(k)
            .map(|row| {
                let mut best = 0;
                for (c, &q) in row.iter().enumerate() {
                    if q > row[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect();
        Ok(Predictions {
            label_names: self.encoder.label_names.clone(),
            classes,
            probabilities,
            truth,
        })
    }
}
