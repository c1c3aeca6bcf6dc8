//! `privet`: privacy-preserving collaborative machine learning. A thin command-line layer over the
//! library crates; all errors end here as one line on stderr and an exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::out::{out, outln};
use anyhow::Result;
use clap::{Parser, Subcommand};
use privet_job::Job;
use privet_sim::{Mode, RunOptions, RunSummary, run_job};

mod agreement_cmd;
mod anonymize_cmd;
mod audit_cmd;
mod demo;
mod dp_cmd;
mod exit;
mod he_cmd;
mod net_cmd;
mod out;
mod pjc_cmd;
mod stats_cmd;
mod train_cmd;

/// Train and use machine-learning models across organisations whose data never leaves them.
#[derive(Debug, Parser)]
#[command(name = "privet", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a federation of five simulated hospitals on real breast-cancer data and explain it.
    Demo {
        /// Where to write the outputs.
        #[arg(long, default_value = "runs/demo")]
        out: PathBuf,
    },
    /// Simulate a federated job (virtual clients in this process) described by a TOML file.
    Simulate {
        /// The job file (see examples/).
        job: PathBuf,
        /// The run directory [default: runs/<job file name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write partitions.json: the train/test split and each client's CSV rows.
        #[arg(long)]
        export_partitions: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Train a centralized baseline on the same data as a job (all training rows, one model),
    /// optionally with DP-SGD (--dp-epsilon, --dp-delta).
    Train {
        /// The job file; its partition, strategy and federation sections are ignored but checked.
        job: PathBuf,
        /// The run directory [default: runs/<job file name>-centralized, or -dpsgd with DP-SGD].
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        dp: train_cmd::DpArgs,
    },
    /// Predict with a trained model for every row of a CSV file.
    Predict {
        /// The model's weights (model.safetensors; model.json must be beside it).
        model: PathBuf,
        /// A CSV with the training data's feature columns (the label column is optional).
        csv: PathBuf,
        /// Write predictions here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the coordinator service (gRPC with mutual TLS) until SIGTERM.
    Coordinator {
        /// coordinator.toml
        #[arg(long)]
        config: PathBuf,
        /// Plain text without certificates: development only, logs a warning at every start.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Run a data-owner node: dial out to the coordinator and train on local data when asked.
    Node {
        /// node.toml
        #[arg(long)]
        config: PathBuf,
        /// Plain text without certificates: development only, logs a warning at every start.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Send a job (a job file with a [deployment] section) to a running coordinator.
    Submit {
        /// The job file.
        job: PathBuf,
        #[command(flatten)]
        remote: net_cmd::Remote,
    },
    /// Show a running coordinator's jobs and nodes, or one job's rounds.
    Status {
        /// A job id for its round-by-round report.
        job: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: net_cmd::Remote,
    },
    /// Cancel a job that has not finished (recorded with your name and the reason).
    Cancel {
        /// The job id.
        job: String,
        /// Why, for the record.
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
        #[command(flatten)]
        remote: net_cmd::Remote,
    },
    /// Download a job's latest model (model.safetensors + model.json).
    FetchModel {
        /// The job id.
        job: String,
        /// Where to save the weights.
        #[arg(long, default_value = "model.safetensors")]
        out: PathBuf,
        #[command(flatten)]
        remote: net_cmd::Remote,
    },
    /// Create the federation's CA and issue certificates.
    #[command(subcommand)]
    Certs(net_cmd::CertsCommand),
    /// Differential-privacy accounting: epsilon for a noise level, or the noise for a budget.
    #[command(subcommand)]
    Dp(dp_cmd::DpCommand),
    /// Differentially private count, sum, mean, histogram and quantiles of one CSV column.
    Stats(stats_cmd::StatsArgs),
    /// Data-sharing agreements: new, sign, verify, show.
    #[command(subcommand)]
    Agreement(agreement_cmd::AgreementCommand),
    /// Offline checks of an exported audit log: verify, show, prove, report.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Private Join and Compute: the size and sum of two lists' overlap, nothing else.
    #[command(subcommand)]
    Pjc(pjc_cmd::PjcCommand),
    /// Encrypted inference (CKKS): keygen, infer (in-process or against a server), serve.
    #[command(subcommand)]
    He(he_cmd::HeCommand),
    /// Blur, pixelate, black out or remove faces and licence plates in an image or a video; erase
    /// moving objects from static-camera video.
    Anonymize(anonymize_cmd::AnonymizeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`privet status | head -1`) is not an error worth a word.
        Err(err)
            if err
                .downcast_ref::<out::StdoutError>()
                .is_some_and(out::StdoutError::is_broken_pipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", exit::one_line(&err));
            ExitCode::from(exit::code(&err))
        }
    }
}

fn default_out(job: &Path, suffix: &str) -> PathBuf {
    let stem = job
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    PathBuf::from("runs").join(format!("{stem}{suffix}"))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo { out } => demo::run(&out),
        Command::Simulate {
            job,
            out,
            export_partitions,
            quiet,
        } => {
            let parsed = Job::from_file(&job)?;
            let opts = RunOptions {
                out: out.unwrap_or_else(|| default_out(&job, "")),
                mode: Mode::Federated,
                export_partitions,
                progress: !quiet,
            };
            let summary = run_job(&parsed, &opts)?;
            print_summary(&summary)?;
            Ok(())
        }
        Command::Train {
            job,
            out,
            quiet,
            dp,
        } => train_cmd::run(&job, out, quiet, &dp),
        Command::Predict { model, csv, out } => predict(&model, &csv, out.as_deref()),
        Command::Coordinator {
            config,
            insecure_dev,
        } => net_cmd::coordinator(&config, insecure_dev),
        Command::Node {
            config,
            insecure_dev,
        } => net_cmd::node(&config, insecure_dev),
        Command::Submit { job, remote } => net_cmd::submit(&job, &remote),
        Command::Status { job, json, remote } => net_cmd::status(job.as_deref(), json, &remote),
        Command::FetchModel { job, out, remote } => net_cmd::fetch_model(&job, &out, &remote),
        Command::Cancel {
            job,
            reason,
            remote,
        } => net_cmd::cancel(&job, &reason, &remote),
        Command::Certs(cmd) => net_cmd::certs(cmd),
        Command::Dp(cmd) => dp_cmd::run(cmd),
        Command::Stats(args) => stats_cmd::run(&args),
        Command::Agreement(cmd) => agreement_cmd::run(cmd),
        Command::Audit(cmd) => audit_cmd::run(cmd),
        Command::Pjc(cmd) => pjc_cmd::run(cmd),
        Command::He(cmd) => he_cmd::run(cmd),
        Command::Anonymize(args) => anonymize_cmd::run(&args),
    }
}

fn print_summary(s: &RunSummary) -> anyhow::Result<()> {
    let what = match s.mode {
        Mode::Federated => format!("{} rounds over {} clients", s.rounds.len(), s.num_clients),
        Mode::Centralized => format!("{} epochs on all training rows", s.rounds.len()),
    };
    let auc = s
        .final_auc
        .map(|a| format!(", ROC AUC {a:.4}"))
        .unwrap_or_default();
    outln!(
        "{what}: test accuracy {:.4}{auc} on {} held-out rows ({} parameters, {} training rows)",
        s.final_accuracy,
        s.test_rows,
        s.num_params,
        s.train_rows
    );
    outln!(
        "time: {:.3} s in all ({:.3} s loading data, {:.3} s training){}",
        s.total_seconds,
        s.load_seconds,
        s.train_seconds,
        s.peak_rss_mb
            .map(|m| format!(", peak memory {m:.0} MiB"))
            .unwrap_or_default()
    );
    if let Some(p) = s.rounds.iter().rev().find_map(|r| r.privacy.as_ref()) {
        outln!(
            "privacy: epsilon {:.3} at delta {:e} spent in all ({} noise, multiplier {:.3}){}",
            p.cumulative_epsilon,
            p.delta,
            p.mode,
            p.noise_multiplier,
            p.budget_stop
                .as_ref()
                .map(|why| format!("; stopped early: {why}"))
                .unwrap_or_default()
        );
    }
    outln!(
        "outputs: {} (metrics.csv, metrics.json, model.safetensors + model.json, chart.png)",
        s.files.dir.display()
    );
    Ok(())
}

fn predict(model_path: &Path, csv: &Path, out: Option<&Path>) -> Result<()> {
    let model = privet_ml::TrainedModel::load(model_path)?;
    let preds = model.predict_csv(csv)?;
    let mut text = String::from("row,prediction");
    for name in &preds.label_names {
        text.push_str(&format!(",p_{}", csv_field(name)));
    }
    text.push('\n');
    let k = preds.label_names.len();
    for (i, (&c, probs)) in preds
        .classes
        .iter()
        .zip(preds.probabilities.chunks_exact(k))
        .enumerate()
    {
        text.push_str(&format!(
            "{},{}",
            i,
            csv_field(&preds.label_names[c as usize])
        ));
        for p in probs {
            text.push_str(&format!(",{p:.6}"));
        }
        text.push('\n');
    }
    match out {
        Some(path) => {
            // Refusing a link or a device is a bad argument (2); failing to write is a failed
            // run (1).
            privet_files::write_atomic(path, text.as_bytes(), privet_files::Mode::Public).map_err(
                |e| match e {
                    e @ privet_files::FileError::NotRegular { .. } => anyhow::Error::new(e),
                    other => anyhow::Error::new(privet_sim::SimError::Output {
                        path: path.to_path_buf(),
                        reason: other.to_string(),
                    }),
                },
            )?;
            eprintln!(
                "wrote {} predictions to {}",
                preds.classes.len(),
                path.display()
            );
        }
        None => out!("{text}"),
    }
    if let Some(truth) = &preds.truth {
        let correct = truth
            .iter()
            .zip(&preds.classes)
            .filter(|(a, b)| a == b)
            .count();
        eprintln!(
            "accuracy against the file's labels: {:.4} ({correct} of {})",
            correct as f64 / truth.len().max(1) as f64,
            truth.len()
        );
    }
    Ok(())
}

/// Quotes a CSV field when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
