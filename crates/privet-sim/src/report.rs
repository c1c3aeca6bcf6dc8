//! The run directory: per-round metrics (CSV and JSON), the final model, the partition (on
//! request) and a PNG chart of accuracy and loss per round.
//!
//! Every file is written to a temporary name and renamed into place, so an interrupted run never
//! leaves a half-written file under the final name.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use serde_json::{Value, json};

use crate::error::SimError;
use crate::prepare::Prepared;
use crate::simulate::RoundRecord;

/// Version of metrics.json and partitions.json.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// Names of the files in a run directory.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The directory.
    pub dir: PathBuf,
}

impl RunFiles {
    /// Creates the directory if needed.
    pub fn create(dir: &Path) -> Result<Self, SimError> {
        std::fs::create_dir_all(dir).map_err(|e| SimError::Output {
            path: dir.into(),
            reason: e.to_string(),
        })?;
        Ok(RunFiles { dir: dir.into() })
    }
    /// `metrics.csv`
    pub fn metrics_csv(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    /// `metrics.json`
    pub fn metrics_json(&self) -> PathBuf {
        self.dir.join("metrics.json")
    }
    /// `model.safetensors` (its metadata is `model.json`)
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
    /// `chart.png`
    pub fn chart(&self) -> PathBuf {
        self.dir.join("chart.png")
    }
    /// `partitions.json`
    pub fn partitions(&self) -> PathBuf {
        self.dir.join("partitions.json")
    }
}

/// Writes a run's output `bytes` to `path` through a temporary file and a rename (not synced:
/// privet-files' `write_output`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SimError> {
    privet_files::write_output(path, bytes, privet_files::Mode::Public).map_err(|e| {
        SimError::Output {
            path: path.into(),
            reason: e.to_string(),
        }
    })
}

fn num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{x:.6}"))
        .unwrap_or_default()
}

/// The per-round metrics as CSV; with `[privacy]`, two more columns: the round's and the
/// cumulative epsilon.
pub fn metrics_csv(rounds: &[RoundRecord]) -> String {
    let private = rounds.iter().any(|r| r.privacy.is_some());
    let mut s = String::from(
        "round,selected,completed,dropped,aggregated,train_loss,test_loss,test_accuracy,test_auc,round_seconds",
    );
    s.push_str(if private {
        ",epsilon,cumulative_epsilon\n"
    } else {
        "\n"
    });
    for r in rounds {
        let _ = write!(
            s,
            "{},{},{},{},{},{},{},{},{},{:.6}",
            r.round,
            r.selected,
            r.completed,
            r.dropped,
            r.aggregated,
            fmt_opt(Some(r.train_loss)),
            fmt_opt(Some(r.test_loss)),
            fmt_opt(Some(r.test_accuracy)),
            fmt_opt(r.test_auc),
            r.seconds
        );
        if private {
            let p = r.privacy.as_ref();
            let _ = write!(
                s,
                ",{},{}",
                fmt_opt(p.map(|p| p.epsilon)),
                fmt_opt(p.map(|p| p.cumulative_epsilon))
            );
        }
        s.push('\n');
    }
    s
}

/// The privacy summary of a run from its rounds (`None` without `[privacy]`): total epsilon at
/// the reporting delta, rounds that released a noised sum, and `"status"`: `"budget_exhausted"`
/// (with `"reason"`) if the job stopped for its budget, else `"within_budget"`.
pub fn privacy_summary(rounds: &[RoundRecord]) -> Option<Value> {
    let noised: Vec<&privet_dpfedavg::RoundPrivacy> =
        rounds.iter().filter_map(|r| r.privacy.as_ref()).collect();
    let last = noised.last()?;
    let stop = last.budget_stop.clone();
    let accountant = if last.sampling == "poisson" {
        "rdp and pld (Poisson sampling, add/remove one client)"
    } else {
        "rdp (fixed-size sampling without replacement, replace-one)"
    };
    Some(json!({
        "mode": last.mode,
        "epsilon": num(last.cumulative_epsilon),
        "epsilon_pld": last.cumulative_epsilon_pld.map(num),
        "delta": last.delta,
        "skip_delta": last.skip_delta,
        "noised_rounds": noised.iter().filter(|p| !p.skipped).count(),
        "skipped_draws": noised.iter().filter(|p| p.skipped).count(),
        "noise_multiplier": num(last.noise_multiplier),
        "sampling": last.sampling,
        "accountant": accountant,
        "status": if stop.is_some() { "budget_exhausted" } else { "within_budget" },
        "reason": stop,
    }))
}

/// Per-round metrics and a summary as JSON.
pub fn metrics_json(rounds: &[RoundRecord], summary: Value) -> Value {
    let rows: Vec<Value> = rounds
        .iter()
        .map(|r| {
            json!({
                "round": r.round,
                "clients": r.selected,
                "completed": r.completed,
                "dropped": r.dropped,
                "aggregated": r.aggregated,
                "train_loss": num(r.train_loss),
                "test_loss": num(r.test_loss),
                "test_accuracy": num(r.test_accuracy),
                "test_auc": r.test_auc.map(num).unwrap_or(Value::Null),
                "round_seconds": r.seconds,
                "secure_aggregation": r.secure_aggregation.map(|(n, k, t)| json!({
                    "protocol": "secagg+", "n": n, "k": k, "t": t,
                })),
                "privacy": r.privacy.as_ref().map(|p| json!({
                    "mode": p.mode,
                    "epsilon": num(p.epsilon),
                    "cumulative_epsilon": num(p.cumulative_epsilon),
                    "cumulative_epsilon_pld": p.cumulative_epsilon_pld.map(num),
                    "skip_delta": p.skip_delta,
                    "delta": p.delta,
                    "sampling": p.sampling,
                    "skipped": p.skipped,
                    "noise_multiplier": num(p.noise_multiplier),
                    "accountant_sigma": num(p.accountant_sigma),
                    "sampling_probability": p.sampling_probability,
                    "clip": num(p.clip),
                    "noise_std": num(p.noise_std),
                    "contributors": p.contributors,
                    "below_clip_fraction": p.below_clip_fraction.map(num),
                    "next_clip": p.next_clip.map(num),
                    "budget_stop": p.budget_stop,
                })),
            })
        })
        .collect();
    let mut doc =
        json!({ "format_version": REPORT_FORMAT_VERSION, "rounds": rows, "summary": summary });
    if let Some(privacy) = privacy_summary(rounds) {
        doc["privacy"] = privacy;
    }
    doc
}

/// The split and partition as CSV data-row numbers, and the clients sampled in each round, so
/// another framework can run the very same federated task (the Flower benchmark does).
pub fn partitions_json(data: &Prepared, seed: u64, rounds: &[RoundRecord]) -> Option<Value> {
    let n = data.clients.num_clients();
    let clients: Option<Vec<Vec<usize>>> = (0..n).map(|i| data.client_csv_rows(i)).collect();
    Some(json!({
        "format_version": REPORT_FORMAT_VERSION,
        "dataset": data.source.as_ref()?.display().to_string(),
        "seed": seed,
        "train_rows": data.train_rows,
        "test_rows": data.test_rows,
        "clients": clients?,
        "rounds": rounds.iter().map(|r| r.clients.clone()).collect::<Vec<_>>(),
    }))
}

/// Peak resident memory of this process in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is embedded and valid; if registration failed, text would be missing from the
        // chart but the lines would still be drawn.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws test accuracy (left) and train/test loss (right) per round to a PNG file.
pub fn draw_chart(
    path: &Path,
    title: &str,
    rounds: &[RoundRecord],
    x_label: &str,
) -> Result<(), SimError> {
    ensure_font();
    // plotters writes the PNG itself, to the temporary file privet-files hands it.
    privet_files::write_output_with(path, privet_files::Mode::Public, |_, tmp| {
        render_chart(tmp, title, rounds, x_label).map_err(std::io::Error::other)
    })
    .map_err(|e| SimError::Output {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Renders the chart to `tmp` (a PNG).
fn render_chart(
    tmp: &Path,
    title: &str,
    rounds: &[RoundRecord],
    x_label: &str,
) -> Result<(), String> {
    let err = |e: String| e;
    {
        let root = BitMapBackend::new(&tmp, (1100, 450)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| err(e.to_string()))?;
        let (left, right) = root.split_horizontally(550);
        let last = rounds.last().map(|r| r.round).unwrap_or(1).max(1);
        let acc: Vec<(u32, f64)> = rounds
            .iter()
            .filter(|r| r.test_accuracy.is_finite())
            .map(|r| (r.round, r.test_accuracy))
            .collect();
        let lo = acc.iter().map(|p| p.1).fold(1.0f64, f64::min);
        let y_lo = ((lo - 0.05).max(0.0) * 20.0).floor() / 20.0;
        let mut chart = ChartBuilder::on(&left)
            .margin(12)
            .caption("test accuracy", ("sans-serif", 18))
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0u32..last, y_lo..1.0f64)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("accuracy")
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(acc.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(acc.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
            .map_err(|e| err(e.to_string()))?;

        let finite = |v: f64| v.is_finite();
        let train: Vec<(u32, f64)> = rounds
            .iter()
            .filter(|r| finite(r.train_loss))
            .map(|r| (r.round, r.train_loss))
            .collect();
        let test: Vec<(u32, f64)> = rounds
            .iter()
            .filter(|r| finite(r.test_loss))
            .map(|r| (r.round, r.test_loss))
            .collect();
        let hi = train
            .iter()
            .chain(&test)
            .map(|p| p.1)
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.1;
        let mut chart = ChartBuilder::on(&right)
            .margin(12)
            .caption("loss (cross-entropy)", ("sans-serif", 18))
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0u32..last, 0.0f64..hi)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("loss")
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(train.iter().copied(), RED.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(if x_label == "round" {
                "clients' training loss"
            } else {
                "training loss"
            })
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(test.iter().copied(), BLUE.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label("test loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        // Losses fall from the left: the upper right corner is where the curves are not.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}
