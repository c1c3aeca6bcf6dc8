//! Turns a job's data section into encoded matrices: the training rows every client indexes into,
//! the centralized test set, and the partition of training rows over clients.

use std::path::PathBuf;
use std::time::Instant;

use privet_data::{
    CsvOptions, Dataset, Encoder, Matrix, Partition, PartitionScheme, SyntheticFederation,
    SyntheticSpec, Table, load_csv, partition, train_test_split,
};

use crate::error::SimError;
use privet_job::{DataSource, Job};

/// Synthetic data: devices whose rows the centralized test set is drawn from, and rows per device.
const SYNTHETIC_TEST_DEVICES: usize = 1000;
const SYNTHETIC_TEST_ROWS: usize = 10;

/// Where each client's rows come from.
#[derive(Debug)]
pub enum ClientData {
    /// Index views into one shared training matrix.
    Shared {
        x: Matrix,
        y: Vec<u32>,
        partition: Partition,
    },
    /// Generated per client on demand (nothing per client is stored).
    Synthetic(SyntheticFederation),
}

impl ClientData {
    /// Number of clients.
    pub fn num_clients(&self) -> usize {
        match self {
            ClientData::Shared { partition, .. } => partition.num_clients(),
            ClientData::Synthetic(s) => s.num_clients(),
        }
    }

    /// The most training rows any client holds (SecAgg+ derives its `max_weight` from it).
    pub fn largest_client(&self) -> u64 {
        match self {
            ClientData::Shared { partition, .. } => {
                partition.sizes().into_iter().max().unwrap_or(0) as u64
            }
            ClientData::Synthetic(s) => s.spec().rows_per_client as u64,
        }
    }
}

/// Everything a run needs from the data, encoded.
#[derive(Debug)]
pub struct Prepared {
    /// Client data.
    pub clients: ClientData,
    /// Centralized test set.
    pub test: Dataset,
    /// The encoding fitted on the training split (CSV data only).
    pub encoder: Option<Encoder>,
    /// Encoded input width.
    pub input_dim: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Label names in class order.
    pub label_names: Vec<String>,
    /// CSV data-row numbers of the training split, in the order the clients index them.
    pub train_rows: Vec<usize>,
    /// CSV data-row numbers of the test split.
    pub test_rows: Vec<usize>,
    /// Source file, for CSV data.
    pub source: Option<PathBuf>,
    /// Seconds spent reading, encoding and partitioning.
    pub seconds: f64,
}

impl Prepared {
    /// Client `i`'s rows as CSV data-row numbers (CSV data only).
    pub fn client_csv_rows(&self, i: usize) -> Option<Vec<usize>> {
        match &self.clients {
            ClientData::Shared { partition, .. } => Some(
                partition
                    .client(i)
                    .iter()
                    .map(|&r| self.train_rows[r as usize])
                    .collect(),
            ),
            ClientData::Synthetic(_) => None,
        }
    }
}

/// Options that a CSV source implies for the loader.
pub fn csv_options(source: &DataSource, extra_drop: Option<&str>) -> Option<CsvOptions> {
    match source {
        DataSource::Csv {
            label,
            categorical,
            drop,
            ..
        } => {
            let mut opts = CsvOptions::new(label.clone());
            opts.categorical = categorical.clone();
            opts.drop = drop.clone();
            // A natural-partition column that is not declared categorical is a key (a hospital
            // id, say), not a feature: it is read as text and left out of the model's inputs.
            if let Some(col) = extra_drop
                && !opts.drop.iter().any(|d| d == col)
                && !opts.categorical.iter().any(|c| c == col)
            {
                opts.drop.push(col.to_string());
            }
            Some(opts)
        }
        DataSource::Synthetic { .. } => None,
    }
}

/// Loads, splits, encodes and partitions the job's data.
pub fn prepare(job: &Job) -> Result<Prepared, SimError> {
    let start = Instant::now();
    match &job.data {
        DataSource::Csv {
            path,
            test_fraction,
            ..
        } => {
            let natural_col = match &job.partition {
                PartitionScheme::Natural { column } => Some(column.as_str()),
                _ => None,
            };
            let opts = csv_options(&job.data, natural_col)
                .ok_or_else(|| SimError::Config("no CSV".into()))?;
            let table = load_csv(path, &opts)?;
            prepare_table(
                job,
                &table,
                *test_fraction,
                natural_col,
                path.clone(),
                start,
            )
        }
        DataSource::Synthetic {
            alpha,
            beta,
            rows_per_client,
        } => {
            let fed = SyntheticFederation::new(SyntheticSpec {
                alpha: *alpha,
                beta: *beta,
                num_clients: job.clients,
                rows_per_client: *rows_per_client,
                dim: 60,
                classes: 10,
                seed: job.federation.seed,
            })?;
            let test = fed.test_set(SYNTHETIC_TEST_DEVICES, SYNTHETIC_TEST_ROWS);
            Ok(Prepared {
                input_dim: test.x.cols,
                num_classes: test.num_classes,
                label_names: (0..test.num_classes).map(|c| c.to_string()).collect(),
                test,
                clients: ClientData::Synthetic(fed),
                encoder: None,
                train_rows: Vec::new(),
                test_rows: Vec::new(),
                source: None,
                seconds: start.elapsed().as_secs_f64(),
            })
        }
    }
}

fn prepare_table(
    job: &Job,
    table: &Table,
    test_fraction: f64,
    natural_col: Option<&str>,
    source: PathBuf,
    start: Instant,
) -> Result<Prepared, SimError> {
    let seed = job.federation.seed;
    let (train_rows, test_rows) = train_test_split(table.num_rows(), test_fraction, seed)?;
    let encoder = Encoder::fit(table, &train_rows)?;
    let x_all = encoder.transform(table)?;
    let y_all = encoder.encode_labels(table)?;
    let all = Dataset {
        x: x_all,
        y: y_all,
        num_classes: encoder.num_classes(),
        feature_names: encoder.feature_names(),
    };
    let to_u32 = |rows: &[usize]| rows.iter().map(|&r| r as u32).collect::<Vec<u32>>();
    let train = all.gather(&to_u32(&train_rows));
    let test = all.gather(&to_u32(&test_rows));
    let keys = match natural_col {
        Some(col) => {
            let raw = table.raw_column(col).ok_or_else(|| {
                SimError::Config(format!(
                    "[partition] column `{col}` is not in {}",
                    source.display()
                ))
            })?;
            Some(
                train_rows
                    .iter()
                    .map(|&r| raw[r].clone())
                    .collect::<Vec<String>>(),
            )
        }
        None => None,
    };
    let part = partition(
        &job.partition,
        &train.y,
        train.num_classes,
        job.clients,
        keys.as_deref(),
        seed,
    )?;
    Ok(Prepared {
        input_dim: encoder.output_dim(),
        num_classes: encoder.num_classes(),
        label_names: encoder.label_names.clone(),
        clients: ClientData::Shared {
            x: train.x,
            y: train.y,
            partition: part,
        },
        test,
        encoder: Some(encoder),
        train_rows,
        test_rows,
        source: Some(source),
        seconds: start.elapsed().as_secs_f64(),
    })
}
