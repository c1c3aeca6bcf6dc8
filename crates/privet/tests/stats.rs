//! `privet stats` end to end: the real binary on CSV files written here, and on the age column of
//! adult.csv when `../shared/data` beside the repository has it (skipped otherwise, as in
//! privet-data's real-data tests). Noise is drawn from the operating system, so every check
//! allows for it: either a large epsilon makes the noise negligible, or the check is the
//! release's own 95% statement widened to make a spurious failure negligible.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

fn privet(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("privet").expect("binary built");
    cmd.current_dir(dir);
    cmd
}

/// Writes `data.csv` with columns `id`, `x` and `city`: 200 rows, `x = i % 50`, cities cycling
/// through a, b, c, d; `extra` rows are appended as written.
fn write_csv(dir: &Path, extra: &str) -> (PathBuf, Vec<f64>) {
    let mut text = String::from("id,x,city\n");
    let mut xs = Vec::new();
    for i in 0..200 {
        let x = (i % 50) as f64;
        xs.push(x);
        let city = ["a", "b", "c", "d"][i % 4];
        text.push_str(&format!("p{i},{x},{city}\n"));
    }
    text.push_str(extra);
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    (path, xs)
}

/// Runs `privet stats ARGS --json` and parses its output.
fn stats_json(dir: &Path, args: &[&str]) -> Value {
    let out = privet(dir)
        .arg("stats")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `privet stats ARGS`, expecting exit code `code` and one line on stderr with `fragment`.
fn stats_fails(dir: &Path, args: &[&str], code: i32, fragment: &str) {
    let out = privet(dir).arg("stats").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        stderr.contains(fragment),
        "`{fragment}` missing from: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing may be released on error");
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn releases_are_close_to_the_truth_at_a_large_epsilon() {
    let dir = TempDir::new().unwrap();
    // One far outlier: clamped to the upper bound 60, it moves the sum by 60, not by 1e9.
    let (_, mut xs) = write_csv(dir.path(), "p200,1000000000,a\n");
    xs.push(60.0);
    let n = xs.len() as f64;
    let sum: f64 = xs.iter().sum();
    let mut sorted = xs.clone();
    sorted.sort_by(f64::total_cmp);
    let v = stats_json(
        dir.path(),
        &[
            "--csv",
            "data.csv",
            "--column",
            "x",
            "--count",
            "--sum",
            "--mean",
            "--quantiles",
            "0.25,0.5",
            "--histogram",
            "5",
            "--lower",
            "0",
            "--upper",
            "60",
            "--epsilon",
            "300",
        ],
    );
    // 6 queries: count, sum, centred sum, histogram, 2 quantiles; 50 epsilon each.
    let privacy = &v["privacy"];
    assert_eq!(privacy["allocation"].as_array().unwrap().len(), 6);
    assert!((f(&privacy["allocation"][0]["share"]["epsilon"]) - 50.0).abs() < 1e-6);
    let spent = f(&privacy["epsilon_spent"]);
    assert!(spent <= 300.0 && spent > 299.99, "{spent}");
    assert!(privacy["delta"].is_null());

    // Count: sensitivity 1, scale 1/50: exact with probability 1 - 2e-22.
    assert_eq!(f(&v["count"]["value"]), n);
    assert_eq!(v["count"]["noise"]["mechanism"], "discrete_laplace");
    assert!((f(&v["count"]["noise"]["scale"]) - 0.02).abs() < 1e-9);
    // Sum: sensitivity 60, scale 1.2; the outlier counts as 60.
    assert!((f(&v["sum"]["value"]) - sum).abs() < 30.0, "{}", v["sum"]);
    assert!((f(&v["sum"]["noise"]["sensitivity"]) - 60.0).abs() < 1e-9);
    let (lo, hi) = (f(&v["sum"]["ci95"][0]), f(&v["sum"]["ci95"][1]));
    // The 95% interval is the value plus or minus the discrete Laplace's 95% quantile, about
    // 1.2 ln 20 (its coverage is tested in privet-dp, not here: it fails 5% of the time).
    let value = f(&v["sum"]["value"]);
    assert!(((hi - value) - (value - lo)).abs() < 1e-6, "[{lo}, {hi}]");
    assert!(
        ((hi - lo) / 2.0 - 1.2 * 20f64.ln()).abs() < 1e-3,
        "[{lo}, {hi}]"
    );
    assert!(
        (f(&v["mean"]["value"]) - sum / n).abs() < 0.1,
        "{}",
        v["mean"]
    );
    // Quantiles: the candidates are the grid over [0, 60]; the true quartile and median of
    // 0..49 (four times) plus 60 are 12 and 25.
    let q = &v["quantiles"];
    assert!((f(&q[0]["value"]) - sorted[50]).abs() <= 1.0, "{q}");
    assert!((f(&q[1]["value"]) - sorted[100]).abs() <= 1.0, "{q}");
    assert_eq!(q[1]["candidates"], 1001);
    // Histogram over [0, 60] in 5 bins of 12: 0..11 four times (48), ..., 48..49 and the 60.
    let counts: Vec<i64> = v["histogram"]["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![48, 48, 48, 48, 9]);
}

#[test]
fn text_output_shows_the_budget_and_intervals() {
    let dir = TempDir::new().unwrap();
    write_csv(dir.path(), "");
    let out = privet(dir.path())
        .args([
            "stats",
            "--csv",
            "data.csv",
            "--column",
            "x",
            "--count",
            "--mean",
            "--lower",
            "0",
            "--upper",
            "50",
            "--epsilon",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for fragment in [
        "pure epsilon 1, discrete Laplace noise",
        "split equally over 2 queries (epsilon 0.500000 each)",
        "count ",
        "95% CI [",
        "mean ",
        "declared, not enforced",
    ] {
        assert!(
            text.contains(fragment),
            "`{fragment}` missing from:\n{text}"
        );
    }
}

#[test]
fn gaussian_noise_with_a_delta() {
    let dir = TempDir::new().unwrap();
    write_csv(dir.path(), "");
    let v = stats_json(
        dir.path(),
        &[
            "--csv",
            "data.csv",
            "--column",
            "x",
            "--sum",
            "--lower",
            "0",
            "--upper",
            "50",
            "--epsilon",
            "1",
            "--delta",
            "1e-6",
        ],
    );
    let rho = f(&v["privacy"]["rho"]);
    // rho-zCDP gives (eps, delta) with eps = min over alpha > 1 of
    // alpha rho + ln(1 - 1/alpha) - (ln delta + ln alpha) / (alpha - 1) (CKS 2020, Corollary 13).
    // Safe: some alpha gives eps <= 1. Tight: none gives much less (the library minimises over a
    // grid of orders, which can only overstate eps, so its rho is at most the largest one).
    // About 0.0244, larger than the 0.0175 of the classic rho + 2 sqrt(rho ln(1/delta)) = 1.
    let eps_at = |alpha: f64| {
        alpha * rho + (1.0 - 1.0 / alpha).ln() - (1e-6f64.ln() + alpha.ln()) / (alpha - 1.0)
    };
    let best = (2..2000)
        .map(|i| eps_at(1.0 + i as f64 / 20.0))
        .fold(f64::INFINITY, f64::min);
    assert!(
        best <= 1.0 && best > 1.0 - 1e-4,
        "rho {rho}: epsilon {best}"
    );
    assert!(rho > 0.0175, "{rho}");
    assert!(f(&v["privacy"]["epsilon_spent"]) <= 1.0);
    assert_eq!(v["sum"]["noise"]["mechanism"], "discrete_gaussian");
    // sigma = 50 / sqrt(2 rho).
    let sigma = f(&v["sum"]["noise"]["scale"]);
    assert!(
        (sigma - 50.0 / (2.0 * rho).sqrt()).abs() < 1e-3 * sigma,
        "{sigma}"
    );
    let (lo, hi) = (f(&v["sum"]["ci95"][0]), f(&v["sum"]["ci95"][1]));
    assert!(((hi - lo) / 2.0 / sigma - 1.96).abs() < 0.02);
}

#[test]
fn categories_and_contribution_bounding_by_id() {
    let dir = TempDir::new().unwrap();
    // One person ("whale") with 300 extra rows of x = 50, city a.
    let extra: String = (0..300).map(|_| "whale,50,a\n").collect();
    write_csv(dir.path(), &extra);
    let v = stats_json(
        dir.path(),
        &[
            "--csv",
            "data.csv",
            "--column",
            "city",
            "--count",
            "--categories",
            "a,b,c",
            "--epsilon",
            "200",
        ],
    );
    assert_eq!(f(&v["count"]["value"]), 500.0);
    let bins = v["histogram"]["bins"].as_array().unwrap();
    assert_eq!(bins[0]["label"], "a");
    assert_eq!(bins[0]["count"], 350);
    assert_eq!(bins[2]["count"], 50);
    assert_eq!(v["histogram"]["other"], 50); // city d is not listed

    // With --id the whale keeps one row: 201 people, each counted once.
    let v = stats_json(
        dir.path(),
        &[
            "--csv",
            "data.csv",
            "--column",
            "x",
            "--count",
            "--sum",
            "--id",
            "id",
            "--lower",
            "0",
            "--upper",
            "50",
            "--epsilon",
            "200",
        ],
    );
    assert_eq!(f(&v["count"]["value"]), 201.0);
    let exact = (0..200).map(|i| (i % 50) as f64).sum::<f64>() + 50.0;
    assert!((f(&v["sum"]["value"]) - exact).abs() < 15.0, "{}", v["sum"]);
    assert_eq!(v["contributions_enforced_by"], "id");

    // At most 3 rows per person: sensitivities triple.
    let v = stats_json(
        dir.path(),
        &[
            "--csv",
            "data.csv",
            "--column",
            "x",
            "--count",
            "--id",
            "id",
            "--max-contributions",
            "3",
            "--epsilon",
            "300",
        ],
    );
    assert_eq!(f(&v["count"]["value"]), 203.0);
    assert!((f(&v["count"]["noise"]["sensitivity"]) - 3.0).abs() < 1e-12);
}

#[test]
fn bad_input_gives_one_clear_line() {
    let dir = TempDir::new().unwrap();
    write_csv(dir.path(), "");
    let base = ["--csv", "data.csv", "--column", "x"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    stats_fails(
        dir.path(),
        &with(&["--sum", "--epsilon", "1"]),
        2,
        "bounds: are required",
    );
    stats_fails(
        dir.path(),
        &with(&["--sum", "--lower", "5", "--upper", "5", "--epsilon", "1"]),
        2,
        "lower must be below upper",
    );
    stats_fails(
        dir.path(),
        &with(&["--sum", "--lower", "0", "--upper", "5", "--epsilon", "0"]),
        2,
        "epsilon: must be positive",
    );
    stats_fails(
        dir.path(),
        &with(&[
            "--sum",
            "--lower",
            "0",
            "--upper",
            "5",
            "--epsilon",
            "1",
            "--delta",
            "2",
        ]),
        2,
        "delta",
    );
    stats_fails(
        dir.path(),
        &with(&[
            "--quantiles",
            "1.5",
            "--lower",
            "0",
            "--upper",
            "5",
            "--epsilon",
            "1",
        ]),
        2,
        "quantile",
    );
    stats_fails(
        dir.path(),
        &with(&["--lower", "0", "--upper", "5", "--epsilon", "1"]),
        2,
        "request at least one",
    );
    stats_fails(
        dir.path(),
        &with(&["--count", "--categories", "--epsilon", "1"]),
        2,
        "must be listed",
    );
    stats_fails(
        dir.path(),
        &with(&["--count", "--max-contributions", "0", "--epsilon", "1"]),
        2,
        "max_contributions",
    );
    stats_fails(
        dir.path(),
        &[
            "--csv",
            "data.csv",
            "--column",
            "nope",
            "--count",
            "--epsilon",
            "1",
        ],
        3,
        "nope",
    );
    stats_fails(
        dir.path(),
        &[
            "--csv",
            "data.csv",
            "--column",
            "city",
            "--mean",
            "--lower",
            "0",
            "--upper",
            "1",
            "--epsilon",
            "1",
        ],
        3,
        "expected a number",
    );
    // NaN and empty cells are bad data, not numbers.
    write_csv(dir.path(), "p9,nan,a\n");
    stats_fails(
        dir.path(),
        &with(&["--mean", "--lower", "0", "--upper", "5", "--epsilon", "1"]),
        3,
        "expected a number, found `nan`",
    );
    write_csv(dir.path(), "p9,,a\n");
    stats_fails(
        dir.path(),
        &with(&["--mean", "--lower", "0", "--upper", "5", "--epsilon", "1"]),
        3,
        "empty",
    );
    std::fs::write(dir.path().join("data.csv"), "id,x,city\n").unwrap();
    stats_fails(
        dir.path(),
        &with(&["--count", "--epsilon", "1"]),
        3,
        "no data rows",
    );
}

fn adult_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/adult.csv");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

/// The age column of UCI Adult (30,162 rows): the releases at epsilon 1 are within a few times
/// their stated accuracy of the exact statistics computed here.
#[test]
fn adult_age_at_epsilon_one() {
    let Some(path) = adult_path() else {
        return;
    };
    let table = privet_data::load_csv(
        &path,
        &privet_data::CsvOptions::new("income").with_categorical([
            "type_employer",
            "education",
            "marital",
            "occupation",
            "relationship",
            "race",
            "sex",
            "country",
        ]),
    )
    .unwrap();
    let Some(privet_data::Column::Numeric { values: ages, .. }) = table.column("age") else {
        panic!("age is numeric");
    };
    let n = ages.len() as f64;
    let mean = ages.iter().sum::<f64>() / n;
    let mut sorted = ages.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];

    let dir = TempDir::new().unwrap();
    let csv = path.to_str().unwrap();
    let v = stats_json(
        dir.path(),
        &[
            "--csv",
            csv,
            "--column",
            "age",
            "--count",
            "--mean",
            "--quantiles",
            "0.5",
            "--histogram",
            "8",
            "--lower",
            "17",
            "--upper",
            "90",
            "--epsilon",
            "1",
        ],
    );
    // epsilon 0.25 per query: the count's noise has scale 4 (95% within ±12).
    let count = f(&v["count"]["value"]);
    assert!((count - n).abs() < 60.0, "count {count} vs {n}");
    let m = f(&v["mean"]["value"]);
    assert!((m - mean).abs() < 0.1, "mean {m} vs {mean}");
    let (lo, hi) = (f(&v["mean"]["ci95"][0]), f(&v["mean"]["ci95"][1]));
    assert!(lo <= m && m <= hi && hi - lo < 0.1, "[{lo}, {hi}]");
    // 1001 candidates 0.073 apart; the score error bound is 2 * 0.5 / 0.25 * ln(1001 / 0.05) rows,
    // about 40 of 30,162, a fraction of a year near the median.
    let q = f(&v["quantiles"][0]["value"]);
    assert!((q - median).abs() <= 1.5, "median {q} vs {median}");
    let bins = v["histogram"]["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 8);
    let total: i64 = bins.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert!((total as f64 - n).abs() < 200.0, "{total}");
}
