//! One job end to end: prepare the data, train (federated or centralized), write the run directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use privet_data::{Encoder, FeatureEncoding};
use privet_ml::{DpReport, DpTarget, Network, TrainedModel};
use serde_json::json;

use crate::error::SimError;
use crate::prepare::ClientData;
use crate::prepare::{Prepared, prepare};
use crate::report::{
    RunFiles, draw_chart, metrics_csv, metrics_json, partitions_json, peak_rss_mb, write_atomic,
};
use crate::simulate::{EpochLog, Observer, RoundRecord, SimOutcome, simulate, train_centralized};
use privet_job::{DataSource, Job, initial_params};

/// Federated simulation or the centralized baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `privet simulate`: virtual clients and a coordinator.
    Federated,
    /// `privet train`: one model on all training rows.
    Centralized,
}

/// How to run a job.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory.
    pub out: PathBuf,
    /// Federated or centralized.
    pub mode: Mode,
    /// Also write `partitions.json` (the split and each client's rows).
    pub export_partitions: bool,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

impl RunOptions {
    /// A federated run writing to `out`, no partition export, progress bar on.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        RunOptions {
            out: out.into(),
            mode: Mode::Federated,
            export_partitions: false,
            progress: true,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Federated or centralized.
    pub mode: Mode,
    /// Per-round (or per-epoch) metrics.
    pub rounds: Vec<RoundRecord>,
    /// Test accuracy of the final model.
    pub final_accuracy: f64,
    /// Test ROC AUC of the final model (binary problems).
    pub final_auc: Option<f64>,
    /// Number of clients (1 for centralized).
    pub num_clients: usize,
    /// Model parameters.
    pub num_params: usize,
    /// Training rows in all.
    pub train_rows: usize,
    /// Test rows.
    pub test_rows: usize,
    /// Seconds for loading, encoding and partitioning the data.
    pub load_seconds: f64,
    /// Seconds for all rounds.
    pub train_seconds: f64,
    /// Seconds for the whole run, output included.
    pub total_seconds: f64,
    /// Peak resident memory, MiB (Linux).
    pub peak_rss_mb: Option<f64>,
    /// Where the outputs are.
    pub files: RunFiles,
    /// DP-SGD's calibration and the privacy spent (`privet train --dp-epsilon`).
    pub dp: Option<DpReport>,
}

struct Progress {
    bar: Option<ProgressBar>,
}

impl Observer for Progress {
    fn round_done(&mut self, r: &RoundRecord, total: u32) {
        if let Some(bar) = &self.bar {
            bar.set_length(u64::from(total));
            bar.set_position(u64::from(r.round));
            bar.set_message(format!("accuracy {:.3}", r.test_accuracy));
        }
    }
}

fn progress_bar(enabled: bool, rounds: u64, what: &str) -> Option<ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = ProgressBar::new(rounds);
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {what} {{pos}}/{{len}} [{{bar:30}}] {{msg}} ({{elapsed}})"
    ))
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// An identity encoding for data that is generated already encoded (synthetic data).
fn identity_encoder(data: &Prepared) -> Encoder {
    Encoder {
        features: (0..data.input_dim)
            .map(|i| FeatureEncoding::Standardize {
                name: format!("x{i}"),
                mean: 0.0,
                std: 1.0,
            })
            .collect(),
        label_names: data.label_names.clone(),
    }
}

/// Runs a job and writes its run directory.
pub fn run_job(job: &Job, opts: &RunOptions) -> Result<RunSummary, SimError> {
    let started = Instant::now();
    let data = prepare(job)?;
    run_prepared(job, &data, opts, started)
}

impl RunOptions {
    /// Runs a job's centralized baseline with DP-SGD (`privet train --dp-epsilon`): the noise
    /// is calibrated for `target` over the job's epochs, the model is trained on all training
    /// rows with Poisson-sampled lots, clipped per-example gradients and Gaussian noise, and the
    /// summary's `dp` holds the calibration and the epsilon spent (also in `metrics.json`).
    /// Needs [`Mode::Centralized`] and CSV data.
    pub fn run_dp(&self, job: &Job, target: &DpTarget) -> Result<RunSummary, SimError> {
        let started = Instant::now();
        if self.mode != Mode::Centralized {
            return Err(SimError::Config(
                "DP-SGD runs only in centralized training (privet train)".into(),
            ));
        }
        target.validate()?;
        let data = prepare(job)?;
        run_inner(job, &data, self, started, Some(target))
    }
}

/// Runs a job on data already prepared (the demo reuses one preparation for several runs).
pub fn run_prepared(
    job: &Job,
    data: &Prepared,
    opts: &RunOptions,
    started: Instant,
) -> Result<RunSummary, SimError> {
    run_inner(job, data, opts, started, None)
}

/// The centralized baseline trained with DP-SGD: the same initialisation and per-epoch test
/// evaluation as [`train_centralized`], lots and noise from the operating system's randomness.
fn train_centralized_dp(
    job: &Job,
    data: &Prepared,
    target: &DpTarget,
    observer: &mut dyn Observer,
) -> Result<(SimOutcome, DpReport), SimError> {
    let ClientData::Shared { x, y, .. } = &data.clients else {
        return Err(SimError::Config(
            "centralized training needs CSV data".into(),
        ));
    };
    let network = Network::new(job.model.clone(), data.input_dim, data.num_classes)?;
    let initial = initial_params(job, &network);
    let rows: Vec<u32> = (0..x.rows as u32).collect();
    let started = Instant::now();
    let mut log = EpochLog::new(&network, data, observer, job.train.epochs as u32);
    let (params, report) = network.train_dp_for_target(
        &initial,
        x,
        y,
        &rows,
        target,
        job.train.epochs,
        job.train.optimizer.clone(),
        &mut |epoch, params, stats| log.record(epoch, params, stats),
    )?;
    Ok((
        SimOutcome {
            rounds: log.rounds,
            params,
            network,
            train_seconds: started.elapsed().as_secs_f64(),
            budget_stop: None,
        },
        report,
    ))
}

fn run_inner(
    job: &Job,
    data: &Prepared,
    opts: &RunOptions,
    started: Instant,
    dp: Option<&DpTarget>,
) -> Result<RunSummary, SimError> {
    let files = RunFiles::create(&opts.out)?;
    let (what, total) = match opts.mode {
        Mode::Federated => ("round", job.federation.rounds),
        Mode::Centralized => ("epoch", job.train.epochs as u32),
    };
    let mut progress = Progress {
        bar: progress_bar(opts.progress, u64::from(total), what),
    };
    let (outcome, dp_report): (SimOutcome, Option<DpReport>) = match (opts.mode, dp) {
        (Mode::Federated, None) => (simulate(job, data, &mut progress)?, None),
        (Mode::Centralized, None) => (train_centralized(job, data, &mut progress)?, None),
        (Mode::Centralized, Some(target)) => {
            let (outcome, report) = train_centralized_dp(job, data, target, &mut progress)?;
            (outcome, Some(report))
        }
        (Mode::Federated, Some(_)) => {
            return Err(SimError::Config(
                "DP-SGD runs only in centralized training (privet train)".into(),
            ));
        }
    };
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    let last = outcome
        .rounds
        .iter()
        .rev()
        .find(|r| r.aggregated)
        .ok_or_else(|| SimError::JobFailed("no round completed".into()))?;
    let (final_accuracy, final_auc) = (last.test_accuracy, last.test_auc);

    let (label, categorical) = match &job.data {
        DataSource::Csv {
            label, categorical, ..
        } => (label.clone(), categorical.clone()),
        DataSource::Synthetic { .. } => ("label".to_string(), Vec::new()),
    };
    let model = TrainedModel {
        network: outcome.network.clone(),
        params: outcome.params.clone(),
        encoder: data
            .encoder
            .clone()
            .unwrap_or_else(|| identity_encoder(data)),
        label,
        categorical,
    };
    model.save(&files.model())?;
    if opts.export_partitions && opts.mode == Mode::Federated {
        let value =
            partitions_json(data, job.federation.seed, &outcome.rounds).ok_or_else(|| {
                SimError::Config(
                    "--export-partitions needs CSV data (synthetic clients have no CSV rows)"
                        .into(),
                )
            })?;
        write_atomic(&files.partitions(), value.to_string().as_bytes())?;
    }
    let num_clients = match opts.mode {
        Mode::Federated => data.clients.num_clients(),
        Mode::Centralized => 1,
    };
    let train_rows = match &data.clients {
        crate::prepare::ClientData::Shared { x, .. } => x.rows,
        crate::prepare::ClientData::Synthetic(s) => s.num_clients() * s.spec().rows_per_client,
    };
    let title = match opts.mode {
        Mode::Federated => format!(
            "{} on {} clients, {} ({})",
            strategy_name(job),
            num_clients,
            job.model.describe(),
            data_name(job)
        ),
        Mode::Centralized if dp_report.is_some() => format!(
            "centralized DP-SGD, {} ({})",
            job.model.describe(),
            data_name(job)
        ),
        Mode::Centralized => format!(
            "centralized baseline, {} ({})",
            job.model.describe(),
            data_name(job)
        ),
    };
    draw_chart(&files.chart(), &title, &outcome.rounds, what)?;
    let peak = peak_rss_mb();
    let mut summary = RunSummary {
        mode: opts.mode,
        final_accuracy,
        final_auc,
        num_clients,
        num_params: outcome.network.num_params(),
        train_rows,
        test_rows: data.test.x.rows,
        load_seconds: data.seconds,
        train_seconds: outcome.train_seconds,
        total_seconds: 0.0,
        peak_rss_mb: peak,
        files,
        rounds: outcome.rounds,
        dp: dp_report,
    };
    write_atomic(
        &summary.files.metrics_csv(),
        metrics_csv(&summary.rounds).as_bytes(),
    )?;
    summary.total_seconds = started.elapsed().as_secs_f64();
    let json = metrics_json(
        &summary.rounds,
        json!({
            "mode": match opts.mode { Mode::Federated => "federated", Mode::Centralized => "centralized" },
            "strategy": strategy_name(job),
            "model": job.model.describe(),
            "clients": summary.num_clients,
            "params": summary.num_params,
            "train_rows": summary.train_rows,
            "test_rows": summary.test_rows,
            "final_accuracy": summary.final_accuracy,
            "final_auc": summary.final_auc,
            "load_seconds": summary.load_seconds,
            "train_seconds": summary.train_seconds,
            "total_seconds": summary.total_seconds,
            "peak_rss_mb": summary.peak_rss_mb,
            "dp_sgd": summary.dp.as_ref().map(DpReport::to_json),
        }),
    );
    let text = serde_json::to_string_pretty(&json).map_err(|e| SimError::Output {
        path: summary.files.metrics_json(),
        reason: e.to_string(),
    })?;
    write_atomic(&summary.files.metrics_json(), text.as_bytes())?;
    Ok(summary)
}

fn data_name(job: &Job) -> String {
    match &job.data {
        DataSource::Csv { path, .. } => Path::new(path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        DataSource::Synthetic { alpha, beta, .. } => format!("Synthetic({alpha}, {beta})"),
    }
}

/// The strategy's display name.
fn strategy_name(job: &Job) -> &'static str {
    job.strategy.build().map(|s| s.name()).unwrap_or("strategy")
}
