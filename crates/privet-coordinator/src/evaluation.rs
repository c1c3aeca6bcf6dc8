//! Centralized evaluation: a job may name one of the evaluation sets the coordinator holds
//! (`[evaluation]` in `coordinator.toml`, `[deployment] evaluation` in the job). Each completed
//! round's global model is evaluated on it, as the simulation evaluates on its held-out rows,
//! and the test accuracy, loss and AUC go into the round's details ([`EvaluationDetails`]),
//! which `privet status` shows.
//!
//! The set is the coordinator's own data: it is read with the job's column mapping (label,
//! categorical and dropped columns), encoded with the feature encoding agreed with the nodes,
//! and never sent anywhere. Only the global model touches it, so evaluation changes nothing
//! in what nodes reveal (under DP it is post-processing of the released model).

use std::path::Path;

use privet_data::{CsvOptions, Encoder, Matrix, load_csv};
use privet_identity::Name;
use privet_job::{DataSource, Job};
use privet_ml::Network;
use serde::{Deserialize, Serialize};

use crate::error::CoordinatorError;

/// What a round reports about its model on the job's evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationDetails {
    /// The evaluation set's name in the coordinator's configuration.
    pub set: String,
    /// Rows evaluated.
    pub examples: u64,
    /// Fraction of rows whose most probable class is the label.
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Area under the ROC curve, for binary labels.
    pub auc: Option<f64>,
}

impl EvaluationDetails {
    /// The name of this detail in a round's details.
    pub const NAME: &'static str = "evaluation";
}

/// The column mapping a job's data uses, for reading an evaluation set like the nodes' data.
pub(crate) fn csv_options(job: &Job) -> Result<CsvOptions, CoordinatorError> {
    match &job.data {
        DataSource::Csv {
            label,
            categorical,
            drop,
            ..
        } => Ok(CsvOptions {
            label: Some(label.clone()),
            categorical: categorical.clone(),
            drop: drop.clone(),
            ..CsvOptions::default()
        }),
        DataSource::Synthetic { .. } => Err(CoordinatorError::Config(
            "an evaluation set needs a job on CSV data".into(),
        )),
    }
}

/// An evaluation set, encoded, with the job's model.
pub(crate) struct EvalSet {
    name: Name,
    x: Matrix,
    y: Vec<u32>,
    network: Network,
}

impl std::fmt::Debug for EvalSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalSet")
            .field("name", &self.name)
            .field("rows", &self.y.len())
            .finish_non_exhaustive()
    }
}

impl EvalSet {
    /// Reads the set `name` at `path` with the job's columns and encodes it with `encoder`.
    pub(crate) fn load(
        name: &Name,
        path: &Path,
        job: &Job,
        encoder: &Encoder,
        network: Network,
    ) -> Result<EvalSet, CoordinatorError> {
        // The reason may quote a cell of the coordinator's data: it goes to the log, and the
        // job's failure (which operators see) only names the set.
        let context = |e: &dyn std::fmt::Display| {
            tracing::warn!("evaluation set {name}: {e}");
            CoordinatorError::Config(format!(
                "evaluation set {name} cannot be read and encoded like the nodes' data (the \
                 coordinator's log says why)"
            ))
        };
        let table = load_csv(path, &csv_options(job)?).map_err(|e| context(&e))?;
        let data = encoder.dataset(&table).map_err(|e| context(&e))?;
        if data.y.is_empty() {
            return Err(context(&"it has no rows"));
        }
        Ok(EvalSet {
            name: name.clone(),
            x: data.x,
            y: data.y,
            network,
        })
    }

    /// Evaluates the model `params`.
    pub(crate) fn evaluate(&self, params: &[f32]) -> Result<EvaluationDetails, CoordinatorError> {
        let m = self.network.evaluate(params, &self.x, &self.y)?;
        Ok(EvaluationDetails {
            set: self.name.to_string(),
            examples: self.y.len() as u64,
            accuracy: m.accuracy,
            loss: m.loss,
            auc: m.auc,
        })
    }
}
