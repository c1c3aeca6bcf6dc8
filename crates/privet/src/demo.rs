//! `privet demo`: five simulated hospitals train a breast-cancer classifier together.
//!
//! The data set (569 biopsies, UCI Breast Cancer Wisconsin, CC BY 4.0) is embedded in the binary,
//! so the demo needs no file and no server. It is split over five hospitals with a Dirichlet label
//! skew (some see mostly malignant cases, as referral centres do). The demo runs the federation, a
//! baseline where each hospital trains alone, and the centralized model that pooling all records
//! would give (the thing privet exists to avoid), and explains the result in plain words.

use std::path::Path;
use std::time::Instant;

use crate::out::outln;
use anyhow::{Context, Result};
use privet_job::Job;
use privet_ml::{Network, TrainConfig};
use privet_sim::{ClientData, Mode, RunOptions, prepare, run_prepared};

static DATA: &str = include_str!("../../../data/breast_cancer.csv");

const HOSPITALS: [&str; 5] = [
    "St. Anna (Vienna)",
    "Karolinska (Stockholm)",
    "Charite (Berlin)",
    "Hopital Necker (Paris)",
    "Sant Pau (Barcelona)",
];

fn job_toml(csv: &Path) -> String {
    format!(
        r#"
[data]
path = {path:?}
label = "benign"
test_fraction = 0.25

[partition]
scheme = "dirichlet"
clients = 5
alpha = 0.2
min_rows = 15

[model]
kind = "logreg"

[train]
epochs = 2
batch_size = 16
lr = 0.05
optimizer = "sgd"

[strategy]
kind = "fedavg"

[federation]
rounds = 15
clients_per_round = 5
seed = 7
"#,
        path = csv.display().to_string()
    )
}

pub fn run(out: &Path) -> Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let csv = out.join("breast_cancer.csv");
    privet_sim::write_atomic(&csv, DATA.as_bytes())?;
    let mut job = Job::from_toml(&job_toml(&csv))?;
    let data = prepare(&job)?;
    let ClientData::Shared { x, y, partition } = &data.clients else {
        anyhow::bail!("the demo data is a CSV file");
    };

    outln!(
        "privet demo: five hospitals train one cancer classifier without sharing a single record\n"
    );
    outln!(
        "The data: {} breast biopsies (UCI Breast Cancer Wisconsin), 30 measurements each, labelled benign or malignant.",
        x.rows + data.test.x.rows
    );
    outln!(
        "{} biopsies are held out to test every model; the other {} are spread over five hospitals,\nsome of them referral centres that see mostly malignant cases:",
        data.test.x.rows,
        x.rows
    );
    // Each hospital alone, on its own records, evaluated on the same held-out biopsies.
    let network = Network::new(job.model.clone(), data.input_dim, data.num_classes)?;
    let local_cfg = TrainConfig {
        epochs: job.train.epochs * job.federation.rounds as usize,
        batch_size: job.train.batch_size,
        optimizer: job.train.optimizer.clone(),
        proximal_mu: None,
        seed: job.federation.seed,
    };
    let mut alone = Vec::new();
    for (i, name) in HOSPITALS.iter().enumerate() {
        let rows = partition.client(i);
        let (params, _) = network.train(&network.init(0), x, y, rows, &local_cfg)?;
        let accuracy = network
            .evaluate(&params, &data.test.x, &data.test.y)?
            .accuracy;
        let malignant = rows.iter().filter(|&&r| y[r as usize] == 0).count();
        outln!(
            "  {name:<24} {:>4} patients, {:>3} malignant; a model trained here alone: {:.1}% accurate",
            rows.len(),
            malignant,
            100.0 * accuracy
        );
        alone.push(accuracy);
    }

    let fed_opts = RunOptions {
        out: out.join("federated"),
        mode: Mode::Federated,
        export_partitions: false,
        progress: false,
    };
    let fed = run_prepared(&job, &data, &fed_opts, Instant::now())?;
    job.train.epochs *= job.federation.rounds as usize;
    let central_opts = RunOptions {
        out: out.join("centralized"),
        mode: Mode::Centralized,
        ..fed_opts.clone()
    };
    let central = run_prepared(&job, &data, &central_opts, Instant::now())?;

    let (worst, best) = alone
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &a| (lo.min(a), hi.max(a)));
    outln!("\nWhat happened:");
    outln!(
        "  1. A coordinator sent the same starting model (logistic regression, {} parameters) to all five hospitals.",
        fed.num_params
    );
    outln!(
        "  2. For {} rounds, each hospital trained it on its own patients for {} passes and sent back only the change",
        fed.rounds.len(),
        job.train.epochs / job.federation.rounds as usize
    );
    outln!(
        "     to the model's {} numbers. No patient record left any hospital.",
        fed.num_params
    );
    outln!(
        "  3. The coordinator averaged the changes, weighting each hospital by its number of patients (FedAvg)."
    );
    outln!(
        "\nThe result, on {} biopsies no hospital trained on:",
        data.test.x.rows
    );
    outln!(
        "  federated model (five hospitals together): accuracy {:.1}%{}",
        100.0 * fed.final_accuracy,
        fed.final_auc
            .map(|a| format!(", ROC AUC {a:.3}"))
            .unwrap_or_default()
    );
    outln!(
        "  each hospital alone:                       accuracy {:.1}% to {:.1}%",
        100.0 * worst,
        100.0 * best
    );
    outln!(
        "  all records pooled in one place:           accuracy {:.1}% (what privet avoids doing)",
        100.0 * central.final_accuracy
    );
    outln!("\nOutputs (in {}):", out.display());
    outln!("  federated/chart.png      accuracy and loss per round");
    outln!("  federated/metrics.csv    the same figures as a table (also metrics.json)");
    outln!("  federated/model.safetensors + model.json   the trained model; try:");
    outln!(
        "      {} predict {} {}",
        invocation(),
        fed.files.model().display(),
        csv.display()
    );
    outln!("  centralized/             the pooled-data baseline, for comparison");
    outln!("\nDone in {}.", elapsed(started.elapsed()));
    Ok(())
}

/// How to run this binary again: `privet` when that name on `PATH` is this executable, its
/// full path otherwise (after `cargo run`, `privet` is usually not on `PATH` yet).
fn invocation() -> String {
    let exe = std::env::current_exe().ok();
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("privet"))
            .find(|candidate| candidate.is_file())
    });
    match (exe, on_path) {
        (Some(exe), Some(found)) if same_file(&exe, &found) => "privet".to_string(),
        (Some(exe), _) => exe.display().to_string(),
        (None, _) => "privet".to_string(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A duration as people read it: milliseconds under a second, seconds with one decimal above.
fn elapsed(d: std::time::Duration) -> String {
    if d.as_secs_f64() < 1.0 {
        format!("{} ms", d.as_millis().max(1))
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::elapsed;

    #[test]
    fn short_runs_are_shown_in_milliseconds() {
        assert_eq!(elapsed(Duration::from_micros(85_400)), "85 ms");
        assert_eq!(elapsed(Duration::from_micros(10)), "1 ms");
        assert_eq!(elapsed(Duration::from_millis(2_340)), "2.3 s");
    }
}
