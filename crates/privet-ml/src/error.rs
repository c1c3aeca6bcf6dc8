//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while building, training, evaluating, saving or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlError {
    /// A tensor operation failed inside candle (a bug or an exhausted resource, never bad input:
    /// inputs are validated before they reach candle).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The model, its input or a parameter vector do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A configuration value is out of its domain (learning rate, batch size, layer width...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Training diverged: the loss or a parameter became NaN or infinite.
    #[error("training diverged (non-finite loss or parameters); try a smaller learning rate")]
    Diverged,
    /// Reading or writing a model file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model file is malformed, from another format version, or does not match its metadata.
    #[error("{}: {reason}", path.display())]
    BadModelFile { path: PathBuf, reason: String },
    /// Privacy accounting or noise generation failed (other than a value out of its domain,
    /// which is [`MlError::InvalidConfig`]).
    #[error(transparent)]
    Privacy(privet_dp::DpError),
    /// Encoding the data for the model failed.
    #[error(transparent)]
    Data(#[from] privet_data::DataError),
}

pub(crate) fn shape_err(msg: impl Into<String>) -> MlError {
    MlError::Shape(msg.into())
}
