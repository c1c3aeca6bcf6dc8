//! `privet pjc`: the real binary in a temporary directory, locally and as two processes over
//! mutual TLS with certificates from `privet certs`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::*;

use std::net::TcpListener;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// bank.csv: c0..c299; shop.csv: c200..c499 with spend = i % 7.
fn data() -> TempDir {
    let dir = TempDir::new().unwrap();
    let bank: String = (0..300).map(|i| format!("c{i}@x.org\n")).collect();
    std::fs::write(dir.path().join("bank.csv"), format!("email\n{bank}")).unwrap();
    let shop: String = (200..500)
        .map(|i| format!(" C{i}@X.org ,{}\n", i % 7))
        .collect();
    std::fs::write(dir.path().join("shop.csv"), format!("email,spend\n{shop}")).unwrap();
    dir
}

fn expected_sum() -> i64 {
    (200..300).map(|i| i % 7).sum()
}

#[test]
fn local_sum_and_size_as_json() {
    let d = data();
    let out = ok(privet(
        d.path(),
        &[
            "pjc", "local", "bank.csv", "shop.csv", "--id", "email", "--value", "spend", "--case",
            "lower", "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["intersection_size"], 100);
    assert_eq!(v["intersection_sum"], expected_sum());
    assert_eq!(v["server_set_size"], 300);
    assert_eq!(v["client_set_size"], 300);
    assert!(v["privacy"].is_null());
    assert!(v["bytes_client_to_server"].as_u64().unwrap() > 300 * (32 + 64));
    // Case matters by default: the shop's upper-case identifiers match nothing.
    let out = ok(privet(
        d.path(),
        &["pjc", "local", "bank.csv", "shop.csv", "--id", "email"],
    ));
    assert!(out.contains("intersection size: 0"), "{out}");
    assert!(out.contains("no noise"), "{out}");
}

#[test]
fn local_with_noise_states_the_privacy() {
    let d = data();
    let out = ok(privet(
        d.path(),
        &[
            "pjc",
            "local",
            "bank.csv",
            "shop.csv",
            "--id",
            "email",
            "--value",
            "spend",
            "--case",
            "lower",
            "--epsilon",
            "1",
            "--lower",
            "0",
            "--upper",
            "5",
            "--json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    let p = &v["privacy"];
    assert_eq!(p["epsilon"], 1.0);
    assert_eq!(p["size_noise"]["mechanism"], "discrete_laplace");
    assert_eq!(p["sum_noise"]["sensitivity"], 5);
    assert_eq!(p["bounds"], serde_json::json!([0, 5]));
    // Spends of 6 (i % 7 == 6) are clamped to 5.
    let clamped = (200..500).filter(|i| i % 7 == 6).count();
    assert_eq!(p["values_clamped"], clamped);
    let size = v["intersection_size"].as_i64().unwrap();
    let ci = p["size_noise"]["ci95_half_width"].as_i64().unwrap();
    assert!((size - 100).abs() <= 4 * ci, "{size}");
}

#[test]
fn bad_input_exits_3_and_names_the_place_not_the_identifier() {
    let d = data();
    std::fs::write(
        d.path().join("dup.csv"),
        "email,spend\nsecret@x.org,1\nSECRET@x.org,2\n",
    )
    .unwrap();
    let (code, err) = fails(privet(
        d.path(),
        &[
            "pjc", "local", "bank.csv", "dup.csv", "--id", "email", "--value", "spend", "--case",
            "lower",
        ],
    ));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("dup.csv: line 3, column `email`"), "{err}");
    assert!(!err.to_lowercase().contains("secret"), "{err}");
    std::fs::write(d.path().join("frac.csv"), "email,spend\nsecret@x.org,1.5\n").unwrap();
    let (code, err) = fails(privet(
        d.path(),
        &[
            "pjc", "local", "bank.csv", "frac.csv", "--id", "email", "--value", "spend",
        ],
    ));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("line 2, column `spend`: the value is not an integer"),
        "{err}"
    );
}

#[test]
fn bad_options_exit_2() {
    let d = data();
    let base = ["pjc", "local", "bank.csv", "shop.csv", "--id", "email"];
    for extra in [
        &["--value", "spend", "--epsilon", "1"][..],
        &["--value", "spend", "--lower", "0"][..],
        &[
            "--value",
            "spend",
            "--epsilon",
            "0",
            "--lower",
            "0",
            "--upper",
            "5",
        ][..],
        &["--lower", "0", "--upper", "5"][..],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (code, err) = fails(privet(d.path(), &args));
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_and_join_over_mutual_tls() {
    let d = data();
    let p = d.path();
    ok(privet(p, &["certs", "init"]));
    ok(privet(
        p,
        &[
            "certs",
            "issue",
            "bank",
            "--role",
            "coordinator",
            "--host",
            "127.0.0.1",
        ],
    ));
    ok(privet(p, &["certs", "issue", "shop", "--role", "node"]));
    let port = free_port();
    std::fs::write(
        p.join("pjc.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\n[data]\ncsv = \"bank.csv\"\nid = \"email\"\n\
             case = \"lower\"\n[tls]\nca = \"certs/ca.pem\"\ncert = \"certs/bank.pem\"\n\
             key = \"certs/bank.key\"\n"
        ),
    )
    .unwrap();
    let _server = Proc(
        Command::new(BIN)
            .args(["pjc", "serve", "--config", "pjc.toml"])
            .current_dir(p)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("https://127.0.0.1:{port}");
    let join = |extra: &[&str]| {
        let mut args = vec![
            "pjc", "join", "--server", &url, "--csv", "shop.csv", "--id", "email", "--case",
            "lower", "--name", "shop", "--json",
        ];
        args.extend_from_slice(extra);
        privet(p, &args)
    };
    // The server needs a moment to load its list and listen.
    let start = Instant::now();
    let out = loop {
        let out = join(&["--value", "spend"]);
        if out.status.success() || start.elapsed() > Duration::from_secs(30) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let v: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(v["intersection_size"], 100);
    assert_eq!(v["intersection_sum"], expected_sum());
    assert!(v["socket_bytes"].as_u64().unwrap() > v["bytes_sent"].as_u64().unwrap());
    // Cardinality without values.
    let v: Value = serde_json::from_str(&ok(join(&[]))).unwrap();
    assert_eq!(v["intersection_size"], 100);
    assert!(v["intersection_sum"].is_null());
    // Another case rule is refused by the server: exit 6, one line.
    let (code, err) = fails(privet(
        p,
        &[
            "pjc", "join", "--server", &url, "--csv", "shop.csv", "--id", "email", "--name", "shop",
        ],
    ));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("aborted"), "{err}");
}
