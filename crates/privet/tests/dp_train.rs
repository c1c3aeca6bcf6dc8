//! `privet train --dp-epsilon`: DP-SGD from the command line on the digits data, the privacy
//! report (text and metrics.json) checked against `privet dp epsilon`, and bad DP options
//! refused with one line and exit code 2.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

fn privet(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("privet").expect("binary built");
    cmd.current_dir(dir);
    cmd
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// A digits job with the given model section, in `dir` (with a copy of the data).
fn digits_job(dir: &Path, model: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::copy(repo_file("data/digits.csv"), dir.join("data/digits.csv")).expect("copy");
    let text = format!(
        r#"
[data]
path = "data/digits.csv"
label = "digit"
test_fraction = 0.2

[partition]
scheme = "iid"
clients = 2

[model]
{model}

[train]
epochs = 15
batch_size = 32
lr = 0.5
optimizer = "sgd"

[strategy]
kind = "fedavg"

[federation]
rounds = 1
seed = 3
"#
    );
    let path = dir.join("digits.toml");
    std::fs::write(&path, text).expect("write job");
    path
}

fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

#[test]
fn dp_sgd_trains_and_reports_what_the_accountant_says() {
    let dir = TempDir::new().expect("tempdir");
    let job = digits_job(dir.path(), "kind = \"mlp\"\nhidden = [32]");
    let out = privet(dir.path())
        .arg("train")
        .arg(&job)
        .args([
            "--dp-epsilon",
            "3",
            "--dp-delta",
            "1e-5",
            "--dp-lot-size",
            "64",
            "--dp-clip",
            "1.0",
            "--out",
            "dp",
            "--quiet",
        ])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("DP-SGD: noise multiplier"), "{stdout}");
    assert!(stdout.contains("privacy spent: epsilon"), "{stdout}");

    let metrics = json_file(&dir.path().join("dp/metrics.json"));
    let dp = &metrics["summary"]["dp_sgd"];
    let f = |k: &str| dp[k].as_f64().unwrap_or_else(|| panic!("{k} in {dp}"));
    // 1438 training rows, lot 64: ceil(1438 / 64) = 23 steps per epoch, q = 1/23, 15 epochs.
    assert_eq!(metrics["summary"]["train_rows"], 1438);
    assert_eq!(dp["steps"], 345);
    assert!((f("sampling_probability") - 1.0 / 23.0).abs() < 1e-15);
    assert_eq!(dp["calibrated_by"], "pld");
    assert_eq!(f("delta"), 1e-5);
    let (sigma, eps_pld, eps_rdp) = (f("noise_multiplier"), f("epsilon_pld"), f("epsilon_rdp"));
    // Calibrated by PLD: the target is met, tightly.
    assert!(eps_pld <= 3.0 && eps_pld > 2.98, "{dp}");
    assert!(eps_rdp > eps_pld, "{dp}");
    assert!(sigma > 0.5 && sigma < 5.0, "{dp}");
    let clipped = f("clipped_fraction");
    assert!((0.0..=1.0).contains(&clipped), "{dp}");

    // The same (q, sigma, steps, delta) through `privet dp epsilon` gives the same epsilons.
    let out = privet(dir.path())
        .args(["dp", "epsilon", "--json", "--q"])
        .arg(format!("{}", f("sampling_probability")))
        .arg("--sigma")
        .arg(format!("{sigma}"))
        .args(["--steps", "345", "--delta", "1e-5"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rel = |a: f64, b: f64| (a - b).abs() / b;
    let rdp = check["rdp"]["epsilon"].as_f64().expect("rdp");
    let pld = check["pld"]["epsilon"].as_f64().expect("pld");
    assert!(rel(eps_rdp, rdp) < 1e-12, "{eps_rdp} vs {rdp}");
    assert!(rel(eps_pld, pld) < 1e-12, "{eps_pld} vs {pld}");

    // It learned something: ten classes, chance is 0.1.
    let acc = metrics["summary"]["final_accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!(acc > 0.6, "DP-SGD accuracy {acc}");
    assert_eq!(metrics["rounds"].as_array().expect("rounds").len(), 15);
    for f in [
        "model.safetensors",
        "model.json",
        "metrics.csv",
        "chart.png",
    ] {
        assert!(dir.path().join("dp").join(f).is_file(), "{f} missing");
    }

    // Without --dp-epsilon the run is the non-private baseline and says nothing of privacy.
    let out = privet(dir.path())
        .arg("train")
        .arg(&job)
        .args(["--out", "plain", "--quiet"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("DP-SGD"));
    let metrics = json_file(&dir.path().join("plain/metrics.json"));
    assert!(metrics["summary"]["dp_sgd"].is_null());
}

#[test]
fn bad_dp_options_are_refused_with_one_line() {
    let dir = TempDir::new().expect("tempdir");
    let mlp = digits_job(dir.path(), "kind = \"mlp\"\nhidden = [8]");
    let cases: &[(&[&str], &str)] = &[
        (&["--dp-epsilon", "3"], "--dp-delta"),
        (&["--dp-delta", "1e-5"], "--dp-epsilon"),
        (
            &["--dp-epsilon", "0", "--dp-delta", "1e-5"],
            "target epsilon",
        ),
        (&["--dp-epsilon", "3", "--dp-delta", "1.5"], "target delta"),
        (
            &["--dp-epsilon", "3", "--dp-delta", "1e-5", "--dp-clip", "0"],
            "clipping norm",
        ),
        (
            &[
                "--dp-epsilon",
                "3",
                "--dp-delta",
                "1e-5",
                "--dp-lot-size",
                "0",
            ],
            "lot size",
        ),
        (
            &["--dp-epsilon", "3", "--dp-delta", "1e-5", "--dp-clip", "x"],
            "--dp-clip",
        ),
    ];
    for (args, needle) in cases {
        let out = privet(dir.path())
            .arg("train")
            .arg(&mlp)
            .args(*args)
            .args(["--quiet", "--out", "bad"])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The CNN has no per-example norm implementation: refused, not approximated.
    let cnn = digits_job(dir.path(), "kind = \"cnn\"");
    let out = privet(dir.path())
        .arg("train")
        .arg(&cnn)
        .args(["--dp-epsilon", "3", "--dp-delta", "1e-5", "--quiet"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CNN") && stderr.lines().count() == 1,
        "{stderr}"
    );
}
