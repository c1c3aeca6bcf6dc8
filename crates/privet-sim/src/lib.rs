//! privet's in-process federated simulation runtime.
//!
//! A [`Job`](privet_job::Job) (parsed from TOML by `privet-job`) names the data, its partition over clients, the model, local
//! training and the aggregation strategy. [`prepare`] loads and encodes the data once; [`simulate`]
//! drives `privet-fl`'s sans-IO round engine with virtual clients trained in parallel; [`run_job`]
//! does both and writes a run directory (metrics CSV/JSON, model, chart).
//!
//! ```no_run
//! use privet_sim::{RunOptions, run_job};
//! use privet_job::Job;
//! let job = Job::from_file("examples/breast_cancer.toml".as_ref()).unwrap();
//! let summary = run_job(&job, &RunOptions::new("runs/example")).unwrap();
//! println!("final accuracy {:.3}", summary.final_accuracy);
//! ```

mod error;
mod prepare;
mod report;
mod run;
mod simulate;

pub use error::SimError;
pub use prepare::{ClientData, Prepared, csv_options, prepare};
pub use report::{
    REPORT_FORMAT_VERSION, RunFiles, draw_chart, metrics_csv, metrics_json, partitions_json,
    peak_rss_mb, privacy_summary, write_atomic,
};
pub use run::{Mode, RunOptions, RunSummary, run_job, run_prepared};
pub use simulate::{
    MAX_SKIPPED_DRAWS, Observer, RoundRecord, Silent, SimOutcome, simulate, train_centralized,
};
