//! What a node trains on: its local data, behind [`NodeBackend`] so that tests and benchmarks
//! can swap the data source.

use privet_data::{Column, CsvOptions, Dataset, Encoder, Table, load_csv};
use privet_fl::engine::LocalTrainer;
use privet_fl::{ClientTrainConfig, FlError, TrainMetrics};
use privet_job::{Job, LocalRows, train_locally};
use privet_ml::Network;

use crate::config::NodeData;
use crate::error::NodeError;

/// Local training for one job.
pub trait JobTrainer: LocalTrainer + Send {}
impl<T: LocalTrainer + Send> JobTrainer for T {}

/// What a node trains on: its local data.
pub trait NodeBackend: Send + Sync {
    /// The local training data as a table (features and labels). What leaves the node about it
    /// is decided by the egress chokepoint, never by the backend.
    fn table(&self) -> Result<Table, NodeError>;
    /// Prepares local training for a job with the federation's feature encoding.
    fn join(
        &self,
        job: &Job,
        encoder: &Encoder,
        client: u32,
    ) -> Result<Box<dyn JobTrainer>, NodeError>;
}

/// The usual backend: a CSV file and its column mapping.
#[derive(Debug, Clone)]
pub struct CsvBackend {
    data: NodeData,
}

impl CsvBackend {
    /// A backend over `data`.
    pub fn new(data: NodeData) -> Self {
        CsvBackend { data }
    }

    fn options(&self) -> CsvOptions {
        CsvOptions {
            label: Some(self.data.label.clone()),
            categorical: self.data.categorical.clone(),
            drop: self.data.drop.clone(),
            ..CsvOptions::default()
        }
    }
}

impl NodeBackend for CsvBackend {
    fn table(&self) -> Result<Table, NodeError> {
        Ok(load_csv(&self.data.path, &self.options())?)
    }

    fn join(
        &self,
        job: &Job,
        encoder: &Encoder,
        client: u32,
    ) -> Result<Box<dyn JobTrainer>, NodeError> {
        let table = load_csv(&self.data.path, &self.options())?;
        let data = encoder.dataset(&table)?;
        let network = Network::new(
            job.model.clone(),
            encoder.output_dim(),
            encoder.num_classes(),
        )?;
        Ok(Box::new(CsvTrainer {
            network,
            data,
            job: job.clone(),
            client,
        }))
    }
}

/// Trains the job's model on a node's encoded rows, with the simulation's seeds.
#[derive(Debug)]
struct CsvTrainer {
    network: Network,
    data: Dataset,
    job: Job,
    client: u32,
}

impl LocalTrainer for CsvTrainer {
    fn fit(
        &mut self,
        round: u32,
        params: &[f32],
        config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let rows: Vec<u32> = (0..self.data.len() as u32).collect();
        let data = LocalRows {
            x: &self.data.x,
            y: &self.data.y,
            rows: &rows,
        };
        train_locally(
            &self.job,
            &self.network,
            self.client,
            round,
            params,
            config,
            data,
        )
    }
}

/// A node without data, for transport tests and benchmarks: it describes `cols` numeric
/// columns and two labels, and "trains" by adding `step` to every parameter, so what is measured
/// is the federation's own cost (messages, TLS, aggregation, checkpoints), not training.
#[derive(Debug, Clone, Copy)]
pub struct ShiftBackend {
    /// Numeric feature columns it claims.
    pub cols: usize,
    /// What local training adds to each parameter.
    pub step: f32,
}

impl NodeBackend for ShiftBackend {
    /// Ten rows of `cols` columns alternating -1 and 1 (mean 0, M2 10), labels 0 and 1.
    fn table(&self) -> Result<Table, NodeError> {
        let alternating: Vec<f64> = (0..10)
            .map(|i| if i % 2 == 0 { -1.0 } else { 1.0 })
            .collect();
        Ok(Table {
            source: "shift-backend".into(),
            columns: (0..self.cols)
                .map(|i| Column::Numeric {
                    name: format!("x{i}"),
                    values: alternating.clone(),
                })
                .collect(),
            labels: Some((0..10).map(|i| (i % 2).to_string()).collect()),
            label_name: Some("y".into()),
            dropped: vec![],
            row_lines: vec![],
        })
    }

    fn join(&self, _: &Job, _: &Encoder, _: u32) -> Result<Box<dyn JobTrainer>, NodeError> {
        Ok(Box::new(Shift(self.step)))
    }
}

#[derive(Debug)]
struct Shift(f32);

impl LocalTrainer for Shift {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let metrics = TrainMetrics {
            loss: 0.5,
            num_examples: 10,
        };
        Ok((params.iter().map(|p| p + self.0).collect(), metrics))
    }
}
