//! Runs the real `privet` binary in temporary directories: malformed CSV and TOML must give one
//! clear line and the documented exit code, never a panic; the demo and a full
//! simulate/train/predict cycle must work.

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

/// A job over `data.csv` in `dir` with a label `y` and one categorical column `c`.
fn job(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"
[data]
path = "data.csv"
label = "y"
categorical = ["c"]
test_fraction = 0.25
{extra}
[partition]
scheme = "iid"
clients = 2

[model]
kind = "logreg"

[train]
epochs = 1
batch_size = 2
lr = 0.1

[strategy]
kind = "fedavg"

[federation]
rounds = 2
seed = 1
"#
    );
    let path = dir.join("job.toml");
    std::fs::write(&path, text).expect("write job");
    path
}

const GOOD_CSV: &str = "a,c,y\n1,u,0\n2,v,1\n3,u,0\n4,v,1\n5,u,0\n6,v,1\n7,u,0\n8,v,1\n";

/// Runs `privet simulate job.toml` in `dir` and checks that it fails with `code` and one line on
/// stderr containing every fragment, without a panic.
fn check_simulate_fails(dir: &Path, code: i32, fragments: &[&str]) {
    let out = privet(dir)
        .args(["simulate", "job.toml", "--quiet"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    for f in fragments {
        assert!(stderr.contains(f), "`{f}` missing from: {stderr}");
    }
}

/// Runs `privet simulate` on a CSV and checks the exit code and the message's fragments.
fn check_csv(csv: &str, code: i32, fragments: &[&str]) {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("data.csv"), csv).expect("write csv");
    job(dir.path(), "");
    check_simulate_fails(dir.path(), code, fragments);
}

#[test]
fn malformed_csv_names_file_line_and_column() {
    check_csv("a,c,y\n1,u,0\n2,v\n", 3, &["data.csv", "line 3"]);
    check_csv(
        "a,c,y\n1,u,0\nabc,v,1\n",
        3,
        &["data.csv", "line 3", "`a`", "abc"],
    );
    check_csv("a,c,z\n1,u,0\n", 3, &["data.csv", "`y`"]);
    check_csv("", 3, &["data.csv"]);
    check_csv("a,c,y\n", 3, &["data.csv"]);
}

/// Runs `privet simulate` on a job text and checks the exit code and message.
fn check_toml(text: &str, code: i32, fragments: &[&str]) {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("data.csv"), GOOD_CSV).expect("write csv");
    std::fs::write(dir.path().join("job.toml"), text).expect("write job");
    check_simulate_fails(dir.path(), code, fragments);
}

#[test]
fn malformed_job_files_are_refused_with_the_key() {
    let dir = TempDir::new().expect("tempdir");
    let good = std::fs::read_to_string(job(dir.path(), "")).expect("read");
    // An unknown key is named.
    check_toml(
        &good.replace("lr = 0.1", "lr = 0.1\nlearning_rate = 0.1"),
        2,
        &["job.toml", "learning_rate"],
    );
    check_toml(
        &good.replace("[model]", "[modle]"),
        2,
        &["job.toml", "modle"],
    );
    // Not TOML at all.
    check_toml("this is = = not toml", 2, &["job.toml"]);
    // Values out of their domain.
    check_toml(
        &good.replace("lr = 0.1", "lr = -1.0"),
        2,
        &["job.toml", "lr"],
    );
    check_toml(
        &good.replace("kind = \"fedavg\"", "kind = \"fedsgd\""),
        2,
        &["job.toml", "fedsgd"],
    );
    check_toml(
        &good.replace("kind = \"fedavg\"", "kind = \"fedavg\"\nmu = 0.1"),
        2,
        &["mu"],
    );
    check_toml(
        &good.replace("rounds = 2", "rounds = \"two\""),
        2,
        &["job.toml", "rounds"],
    );
    // A missing job file.
    let out = privet(dir.path())
        .args(["simulate", "nope.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["simulate", "--help"],
        vec!["train", "--help"],
        vec!["predict", "--help"],
    ] {
        let dir = TempDir::new().expect("tempdir");
        let out = privet(dir.path()).args(&args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn simulate_train_predict_cycle_on_breast_cancer() {
    let dir = TempDir::new().expect("tempdir");
    let job = repo_file("examples/breast_cancer.toml");
    let data = repo_file("data/breast_cancer.csv");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    std::fs::copy(&data, dir.path().join("data/breast_cancer.csv")).expect("copy");
    let out = privet(dir.path())
        .args(["simulate"])
        .arg(&job)
        .args(["--out", "fed", "--quiet", "--export-partitions"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "metrics.csv",
        "metrics.json",
        "model.safetensors",
        "model.json",
        "chart.png",
        "partitions.json",
    ] {
        assert!(dir.path().join("fed").join(f).is_file(), "{f} missing");
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fed/metrics.json")).expect("read"))
            .expect("json");
    let acc = metrics["summary"]["final_accuracy"]
        .as_f64()
        .expect("accuracy");
    assert!(acc > 0.9, "federated accuracy {acc}");
    assert_eq!(metrics["rounds"].as_array().expect("rounds").len(), 15);
    let csv_lines = std::fs::read_to_string(dir.path().join("fed/metrics.csv"))
        .expect("csv")
        .lines()
        .count();
    assert_eq!(csv_lines, 16);

    let out = privet(dir.path())
        .args(["train"])
        .arg(&job)
        .args(["--out", "central", "--quiet"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("test accuracy"));

    let out = privet(dir.path())
        .args([
            "predict",
            "fed/model.safetensors",
            "data/breast_cancer.csv",
            "--out",
            "pred.csv",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pred = std::fs::read_to_string(dir.path().join("pred.csv")).expect("pred");
    assert_eq!(pred.lines().count(), 570);
    assert!(pred.starts_with("row,prediction,p_0,p_1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("accuracy against the file's labels"),
        "{stderr}"
    );
}

#[test]
fn predict_refuses_bad_model_files() {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("data.csv"), GOOD_CSV).expect("write");
    // No metadata.
    std::fs::write(dir.path().join("m.safetensors"), b"garbage").expect("write");
    let out = privet(dir.path())
        .args(["predict", "m.safetensors", "data.csv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("m.json"));
    // Metadata that is not JSON.
    std::fs::write(dir.path().join("m.json"), b"{not json").expect("write");
    let out = privet(dir.path())
        .args(["predict", "m.safetensors", "data.csv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("m.json") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn demo_runs_and_explains() {
    let dir = TempDir::new().expect("tempdir");
    let out = privet(dir.path())
        .args(["demo", "--out", "demo"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "five hospitals",
        "No patient record left any hospital",
        "federated model",
        "each hospital alone",
        "pooled",
        "chart.png",
    ] {
        assert!(
            stdout.contains(f),
            "`{f}` missing from the demo's explanation:\n{stdout}"
        );
    }
    assert!(dir.path().join("demo/federated/chart.png").is_file());
    assert!(
        dir.path()
            .join("demo/federated/model.safetensors")
            .is_file()
    );
    assert!(dir.path().join("demo/centralized/metrics.csv").is_file());
}

/// `privet ... | head -1` and `> /dev/full`: a closed pipe ends the program quietly with
/// success; a full disk is one line and exit code 1; neither panics.
#[cfg(unix)]
#[test]
fn closed_or_full_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let dir = TempDir::new().expect("tempdir");
    let args = [
        "dp", "epsilon", "--q", "0.01", "--sigma", "1.1", "--steps", "1000", "--delta", "1e-5",
    ];
    // A reader that closes at once.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_privet"))
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A full device.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_privet"))
        .args(args)
        .current_dir(dir.path())
        .stdout(full)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("standard output"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// `--out` never replaces a symbolic link or a device: the file behind the link is untouched.
#[cfg(unix)]
#[test]
fn out_refuses_links_and_devices() {
    let dir = TempDir::new().expect("tempdir");
    std::fs::write(dir.path().join("data.csv"), GOOD_CSV).expect("csv");
    let job = job(dir.path(), "");
    let out = privet(dir.path())
        .args(["train"])
        .arg(&job)
        .args(["--out", "model", "--quiet"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("keep.txt"), "keep me").expect("write");
    std::os::unix::fs::symlink("keep.txt", dir.path().join("link.csv")).expect("link");
    for (target, needle) in [("link.csv", "symbolic link"), ("/dev/full", "special file")] {
        let out = privet(dir.path())
            .args([
                "predict",
                "model/model.safetensors",
                "data.csv",
                "--out",
                target,
            ])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).expect("read"),
        "keep me"
    );
}
