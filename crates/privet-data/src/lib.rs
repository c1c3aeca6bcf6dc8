//! Tabular data for privet's federated learning.
//!
//! The pipeline, one module per step:
//!
//! 1. [`table`] (also reachable as `csv`): [`load_csv`] reads a CSV file with a header into a
//!    typed, column-major [`Table`] (numeric columns as `f64`, categorical columns and labels as
//!    strings), with [`DataError`]s that name the file, the 1-based line and the column.
//! 2. [`split`]: [`train_test_split`] draws a seeded permutation and cuts it into train and test
//!    row lists.
//! 3. [`encode`]: an [`Encoder`] fitted on the training rows only standardizes numeric columns
//!    and one-hot encodes categorical ones into a row-major `f32` [`Matrix`], and maps labels to
//!    class indices; it is `serde`-serializable so it can be saved beside a model.
//! 4. [`partition`](mod@partition): [`partition()`] spreads rows over virtual clients (IID,
//!    Dirichlet label skew, quantity skew, or natural by a column) as a compact CSR
//!    [`Partition`] of row positions.
//! 5. [`synthetic`]: the FedProx `Synthetic(alpha, beta)` federation, generated lazily per client
//!    ([`SyntheticFederation`]).
//!
//! Everything random is seeded with `ChaCha20Rng::seed_from_u64(seed)` and never depends on
//! hash-map iteration order, so results repeat across runs and platforms.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use privet_data::{
//!     CsvOptions, Encoder, PartitionScheme, load_csv, partition, train_test_split,
//! };
//!
//! # fn main() -> Result<(), privet_data::DataError> {
//! let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/wine.csv");
//! let table = load_csv(&path, &CsvOptions::new("cultivar"))?;
//! assert_eq!(table.num_rows(), 178);
//!
//! // 80/20 split, encoder fitted on the training rows only.
//! let (train, test) = train_test_split(table.num_rows(), 0.2, 42)?;
//! let encoder = Encoder::fit(&table, &train)?;
//! let data = encoder.dataset(&table)?;
//! assert_eq!((data.x.cols, data.num_classes), (13, 3));
//!
//! // Spread the training rows over 5 clients with Dirichlet(0.5) label skew.
//! let train_labels: Vec<u32> = train.iter().map(|&r| data.y[r]).collect();
//! let parts = partition(
//!     &PartitionScheme::Dirichlet { alpha: 0.5, min_rows: 5 },
//!     &train_labels,
//!     data.num_classes,
//!     5,
//!     None,
//!     7,
//! )?;
//! assert_eq!(parts.sizes().iter().sum::<usize>(), train.len());
//! // Client 0's rows, as rows of the table:
//! let rows: Vec<usize> = parts.client(0).iter().map(|&i| train[i as usize]).collect();
//! assert!(rows.len() >= 5);
//!
//! // The held-out rows as their own dataset.
//! let test_idx: Vec<u32> = test.iter().map(|&r| r as u32).collect();
//! assert_eq!(data.gather(&test_idx).len(), 36);
//!
//! // A lazy synthetic federation: client data is generated on demand.
//! let fed = privet_data::SyntheticFederation::new(
//!     privet_data::SyntheticSpec::new(1.0, 1.0, 100_000, 50, 3),
//! )?;
//! assert_eq!(fed.client_data(12_345).x.cols, 60);
//! # Ok(())
//! # }
//! ```

pub mod encode;
pub mod error;
pub mod partition;
pub mod split;
pub mod summary;
pub mod synthetic;
pub mod table;

/// The CSV loader under the name `csv` (the module is [`table`]).
pub use crate::table as csv;

pub use encode::{Dataset, Encoder, FeatureEncoding, Matrix, sort_labels};
pub use error::DataError;
pub use partition::{Partition, PartitionScheme, natural_client_keys, partition};
pub use split::train_test_split;
pub use summary::{ColumnSummary, DataSummary};
pub use synthetic::{SyntheticFederation, SyntheticSpec};
pub use table::{
    Column, CsvOptions, DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_ROWS, Table,
    load_csv, parse_csv, read_header,
};
