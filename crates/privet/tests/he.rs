//! `privet he`: encrypted inference through the real binary, in-process and over TLS.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::*;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

/// Trains a model with `privet train` in `dir/name`; returns the weights' path.
fn train(dir: &Path, name: &str, csv: &str, label: &str, model: &str, train: &str) -> PathBuf {
    let job = dir.join(format!("{name}.toml"));
    std::fs::write(
        &job,
        format!(
            "[data]\npath = {:?}\nlabel = {label:?}\ntest_fraction = 0.2\n\n[partition]\nscheme = \"iid\"\nclients = 1\n\n\
             [model]\n{model}\n\n[train]\n{train}\n\n[strategy]\nkind = \"fedavg\"\n\n[federation]\nrounds = 1\nclients_per_round = 1\nseed = 3\n",
            data(csv).display()
        ),
    )
    .unwrap();
    ok(privet(
        dir,
        &["train", job.to_str().unwrap(), "--out", name, "--quiet"],
    ));
    dir.join(name).join("model.safetensors")
}

fn logreg(dir: &Path) -> PathBuf {
    train(
        dir,
        "bc",
        "breast_cancer.csv",
        "benign",
        "kind = \"logreg\"",
        "epochs = 5\nbatch_size = 16\nlr = 0.05",
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn in_process_inference_agrees_with_the_plaintext_model() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let model = logreg(d);
    let csv = data("breast_cancer.csv");
    for packing in ["single", "batch"] {
        let out = ok(privet(
            d,
            &[
                "he",
                "infer",
                model.to_str().unwrap(),
                csv.to_str().unwrap(),
                "--packing",
                packing,
                "--json",
                "--out",
                "p.csv",
            ],
        ));
        let v = json(&out);
        assert_eq!(v["samples"], 569, "{v}");
        assert_eq!(v["agreement_with_plaintext"], 1.0, "{v}");
        assert!(v["accuracy"].as_f64().unwrap() > 0.9, "{v}");
        assert!(
            v["bytes"]["sent"].as_u64().unwrap() > 0 && v["bytes"]["keys"].as_u64().unwrap() > 0
        );
        assert_eq!(v["packing"], packing);
        let pred = std::fs::read_to_string(d.join("p.csv")).unwrap();
        assert_eq!(pred.lines().count(), 570);
        assert!(pred.starts_with("row,prediction,p_"), "{pred}");
    }
    // The human summary names latency, bytes and agreement.
    let out = privet(
        d,
        &[
            "he",
            "infer",
            model.to_str().unwrap(),
            csv.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    for needle in [
        "latency per sample",
        "bytes: keys",
        "agreement with the plaintext model: 569 of 569",
    ] {
        assert!(err.contains(needle), "{needle} missing in {err}");
    }
}

#[test]
fn keys_from_keygen_are_used_and_checked() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let model = logreg(d);
    let csv = data("breast_cancer.csv");
    ok(privet(
        d,
        &[
            "he",
            "keygen",
            "--out",
            "keys",
            "--model",
            model.to_str().unwrap(),
        ],
    ));
    assert!(d.join("keys/secret.key").is_file() && d.join("keys/evaluation.keys").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("keys/secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "secret key readable by others: {mode:o}");
    }
    let out = ok(privet(
        d,
        &[
            "he",
            "infer",
            model.to_str().unwrap(),
            csv.to_str().unwrap(),
            "--keys",
            "keys",
            "--json",
        ],
    ));
    assert_eq!(json(&out)["agreement_with_plaintext"], 1.0);
    // A second keygen without --force is refused.
    let (code, err) = fails(privet(
        d,
        &[
            "he",
            "keygen",
            "--out",
            "keys",
            "--model",
            model.to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 5, "{err}");
    // Keys for other parameters are refused with a clear message.
    ok(privet(
        d,
        &["he", "keygen", "--out", "other", "--params", "n14-d6"],
    ));
    let (code, err) = fails(privet(
        d,
        &[
            "he",
            "infer",
            model.to_str().unwrap(),
            csv.to_str().unwrap(),
            "--keys",
            "other",
        ],
    ));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("other parameters"), "{err}");
    // A corrupted secret key.
    std::fs::write(d.join("keys/secret.key"), b"PVHE garbage").unwrap();
    let (code, _) = fails(privet(
        d,
        &[
            "he",
            "infer",
            model.to_str().unwrap(),
            csv.to_str().unwrap(),
            "--keys",
            "keys",
        ],
    ));
    assert_eq!(code, 5);
}

#[test]
fn models_that_cannot_be_encrypted_are_refused() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let relu = train(
        d,
        "relu",
        "wine.csv",
        "cultivar",
        "kind = \"mlp\"\nhidden = [4]",
        "epochs = 1\nbatch_size = 16\nlr = 0.05",
    );
    let (code, err) = fails(privet(
        d,
        &[
            "he",
            "infer",
            relu.to_str().unwrap(),
            data("wine.csv").to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("activation = \"square\""), "{err}");
    // A malformed CSV is a data error.
    std::fs::write(d.join("bad.csv"), "alcohol,malic_acid\n1,not-a-number\n").unwrap();
    let model = logreg(d);
    let (code, _) = fails(privet(
        d,
        &["he", "infer", model.to_str().unwrap(), "bad.csv"],
    ));
    assert_eq!(code, 3);
    // A missing model file.
    let (code, _) = fails(privet(d, &["he", "infer", "nope.safetensors", "bad.csv"]));
    assert_eq!(code, 4);
}

#[test]
fn an_mlp_with_square_activation_runs_encrypted() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let model = train(
        d,
        "digits",
        "digits.csv",
        "digit",
        "kind = \"mlp\"\nhidden = [16]\nactivation = \"square\"",
        "epochs = 3\nbatch_size = 32\nlr = 0.002\noptimizer = \"adam\"",
    );
    // 200 rows keep the single packing quick in a debug build.
    let text = std::fs::read_to_string(data("digits.csv")).unwrap();
    let small: String = text.lines().take(201).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("digits200.csv"), small).unwrap();
    for packing in ["batch", "single"] {
        let out = ok(privet(
            d,
            &[
                "he",
                "infer",
                model.to_str().unwrap(),
                "digits200.csv",
                "--packing",
                packing,
                "--json",
            ],
        ));
        let v = json(&out);
        assert_eq!(v["samples"], 200);
        assert!(
            v["agreement_with_plaintext"].as_f64().unwrap() >= 0.995,
            "{v}"
        );
    }
}

fn wait_for_port(port: u16, timeout: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < timeout, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_and_infer_over_tls() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let model = logreg(d);
    ok(privet(d, &["certs", "init"]));
    ok(privet(
        d,
        &[
            "certs",
            "issue",
            "he-server",
            "--role",
            "coordinator",
            "--host",
            "localhost",
            "--host",
            "127.0.0.1",
        ],
    ));
    ok(privet(d, &["certs", "issue", "alice"]));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        d.join("he-server.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npacking = \"single\"\nmax_samples_per_session = 600\n\n\
             [tls]\nca = \"certs/ca.pem\"\ncert = \"certs/he-server.pem\"\nkey = \"certs/he-server.key\"\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(d.join("serve.log")).unwrap();
    let _server = Proc(
        Command::new(BIN)
            .args([
                "he",
                "serve",
                model.to_str().unwrap(),
                "--config",
                "he-server.toml",
            ])
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, Duration::from_secs(60));
    let url = format!("https://localhost:{port}");
    let tls = [
        "--ca",
        "certs/ca.pem",
        "--cert",
        "certs/alice.pem",
        "--key",
        "certs/alice.key",
    ];
    let bc = data("breast_cancer.csv");
    let mut args = vec![
        "he",
        "infer",
        url.as_str(),
        bc.to_str().unwrap(),
        "--json",
        "--out",
        "p.csv",
    ];
    args.extend(tls);
    let v = json(&ok(privet(d, &args)));
    assert_eq!(v["samples"], 569);
    assert!(
        v["agreement_with_plaintext"].is_null(),
        "the client has no weights: {v}"
    );
    assert!(v["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    // Over TLS, the bytes counted are the wire's.
    assert!(v["bytes"]["sent"].as_u64().unwrap() > 569 * 100_000, "{v}");
    // Same predictions as the in-process run.
    let local = ok(privet(
        d,
        &[
            "he",
            "infer",
            model.to_str().unwrap(),
            data("breast_cancer.csv").to_str().unwrap(),
            "--out",
            "q.csv",
        ],
    ));
    let _ = local;
    let classes = |f: &str| -> Vec<String> {
        std::fs::read_to_string(d.join(f))
            .unwrap()
            .lines()
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect()
    };
    assert_eq!(classes("p.csv"), classes("q.csv"));
    // keygen can take its parameters and rotations from the server.
    let mut args = vec!["he", "keygen", "--out", "k", "--server", url.as_str()];
    args.extend(tls);
    ok(privet(d, &args));
    // Without client TLS files: a command-line error.
    let (code, err) = fails(privet(
        d,
        &[
            "he",
            "infer",
            url.as_str(),
            data("breast_cancer.csv").to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 2, "{err}");
    // A certificate from another CA cannot connect.
    let other = TempDir::new().unwrap();
    ok(privet(other.path(), &["certs", "init"]));
    ok(privet(other.path(), &["certs", "issue", "mallory"]));
    let o = other.path();
    let (code, err) = fails(privet(
        d,
        &[
            "he",
            "infer",
            url.as_str(),
            data("breast_cancer.csv").to_str().unwrap(),
            "--ca",
            o.join("certs/ca.pem").to_str().unwrap(),
            "--cert",
            o.join("certs/mallory.pem").to_str().unwrap(),
            "--key",
            o.join("certs/mallory.key").to_str().unwrap(),
        ],
    ));
    assert_eq!(code, 6, "{err}");
}
