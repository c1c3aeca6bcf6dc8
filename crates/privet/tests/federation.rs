//! A real federation on 127.0.0.1: the `privet` binary as coordinator, nodes and operator, in
//! separate processes, with mutual TLS from `privet certs`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::federation::*;
use common::*;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

fn job_toml(nodes: &[String], extra_federation: &str, model: &str, epochs: usize) -> String {
    let csv = repo_file("data/breast_cancer.csv");
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[data]\npath = \"{}\"\nlabel = \"benign\"\ntest_fraction = 0.25\n\n[partition]\nscheme = \
         \"iid\"\nclients = {}\n\n[model]\n{model}\n\n[train]\nepochs = {epochs}\nbatch_size = \
         16\nlr = 0.05\n\n[federation]\nseed = 11\n{extra_federation}\n\n[deployment]\nnodes = \
         [{}]\nround_timeout_secs = 30\nstart_timeout_secs = 30\n",
        csv.display(),
        nodes.len(),
        list.join(", ")
    )
}

/// Splits the breast-cancer CSV into the simulation's client partitions (rows in partition
/// order), as `partitions.json` of `privet simulate --export-partitions` lists them.
fn partition_csvs(partitions: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("data/breast_cancer.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let parts: Value = serde_json::from_str(&std::fs::read_to_string(partitions).unwrap()).unwrap();
    parts["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rows| {
            let mut csv = String::from(lines[0]);
            csv.push('\n');
            for r in rows.as_array().unwrap() {
                csv.push_str(lines[1 + r.as_u64().unwrap() as usize]);
                csv.push('\n');
            }
            csv
        })
        .collect()
}

/// The simulation's held-out rows as a CSV (header first).
fn test_csv(partitions: &Path) -> String {
    let text = std::fs::read_to_string(repo_file("data/breast_cancer.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let parts: Value = serde_json::from_str(&std::fs::read_to_string(partitions).unwrap()).unwrap();
    let mut csv = String::from(lines[0]);
    csv.push('\n');
    for r in parts["test_rows"].as_array().unwrap() {
        csv.push_str(lines[1 + r.as_u64().unwrap() as usize]);
        csv.push('\n');
    }
    csv
}

fn load_params(path: &Path) -> Vec<f32> {
    privet_ml::TrainedModel::load(path).unwrap().params
}

#[test]
fn four_nodes_reach_the_simulations_model() {
    let job = networked_matches_simulated("rounds = 4\nclients_per_round = 4\nmin_clients = 4");
    for round in job["rounds"].as_array().unwrap() {
        assert!(round["secure_aggregation"].is_null(), "{round}");
    }
}

/// The same with SecAgg+ between the nodes: the coordinator sees only masked inputs, and the
/// unmasked sums equal the simulation's (both quantize the same updates the same way).
#[test]
fn four_nodes_with_secure_aggregation_reach_the_simulations_model() {
    let job = networked_matches_simulated(
        "rounds = 3\nclients_per_round = 4\nmin_clients = 4\nsecure_aggregation = \"secagg+\"",
    );
    for round in job["rounds"].as_array().unwrap() {
        let s = &round["secure_aggregation"];
        assert_eq!(s["protocol"], "secagg+", "{round}");
        assert_eq!(s["n"], 4, "{round}");
        assert_eq!(s["k"], 3, "{round}");
        // Quantization bounds derived from the job (4 per round) and the largest node's rows,
        // not the defaults (1,000 clients, weight 10,000), so the grid is finer.
        assert_eq!(s["max_clients"], 4, "{round}");
        let w = s["max_weight"].as_u64().unwrap();
        assert!((100..300).contains(&w), "{round}");
        let step = s["delta_step"].as_f64().unwrap();
        assert!(step > 0.0 && step < 1e-5, "{round}");
    }
}

/// Runs a job over four node processes and in `privet simulate` on the same partitions, checks
/// that both reach the same model, and returns the job's status.
fn networked_matches_simulated(federation: &str) -> Value {
    let nodes = names(4);
    let fed = Federation::new(&nodes);
    // The coordinator evaluates each round's model on the simulation's held-out rows, which it
    // holds as its evaluation set.
    let job = job_toml(&nodes, federation, "kind = \"logreg\"", 2) + "evaluation = \"held-out\"\n";
    let rounds: u64 = federation
        .lines()
        .find_map(|l| l.strip_prefix("rounds = "))
        .unwrap()
        .parse()
        .unwrap();
    std::fs::write(fed.path().join("job.toml"), &job).unwrap();
    ok(privet(
        fed.path(),
        &[
            "simulate",
            "job.toml",
            "--out",
            "sim",
            "--export-partitions",
            "--quiet",
        ],
    ));
    for (name, csv) in nodes
        .iter()
        .zip(partition_csvs(&fed.path().join("sim/partitions.json")))
    {
        fed.node_config(name, &csv, "certs");
    }
    std::fs::write(
        fed.path().join("test.csv"),
        test_csv(&fed.path().join("sim/partitions.json")),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(fed.path().join("coordinator.toml")).unwrap();
    config.push_str("\n[evaluation]\nheld-out = \"test.csv\"\nno-label = \"no-label.csv\"\n");
    // A set without the job's label column (its header only names other columns).
    std::fs::write(fed.path().join("no-label.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(fed.path().join("coordinator.toml"), config).unwrap();
    let _coordinator = fed.coordinator();
    let _nodes: Vec<Proc> = nodes.iter().map(|n| fed.node(n)).collect();
    // A set the coordinator does not hold is refused at submission, naming those it has.
    std::fs::write(
        fed.path().join("nope.toml"),
        job.replace("evaluation = \"held-out\"", "evaluation = \"nope\""),
    )
    .unwrap();
    let mut args = vec!["submit".to_string(), "nope.toml".into()];
    args.extend(fed.remote_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, err) = fails(privet(fed.path(), &args));
    assert!(
        err.contains(
            "evaluation set \"nope\" is not one this coordinator holds (it has held-out, no-label)"
        ),
        "{err}"
    );
    // A set the job's columns cannot read is refused too, without quoting the coordinator's data.
    std::fs::write(
        fed.path().join("no-label.toml"),
        job.replace("evaluation = \"held-out\"", "evaluation = \"no-label\""),
    )
    .unwrap();
    let mut args = vec!["submit".to_string(), "no-label.toml".into()];
    args.extend(fed.remote_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, err) = fails(privet(fed.path(), &args));
    assert!(
        err.contains("evaluation set no-label cannot be read with the job's columns"),
        "{err}"
    );
    let id = fed.submit("job.toml");
    let job = fed.wait_job(&id, Duration::from_secs(120));
    assert_eq!(job["completed_rounds"], rounds);
    // Test accuracy round by round, as the simulation measured it on the same rows.
    let sim: Value = serde_json::from_str(
        &std::fs::read_to_string(fed.path().join("sim/metrics.json")).unwrap(),
    )
    .unwrap();
    let sim_rounds = sim["rounds"].as_array().unwrap();
    let net_rounds = job["rounds"].as_array().unwrap();
    assert_eq!(sim_rounds.len(), net_rounds.len());
    for (s, n) in sim_rounds.iter().zip(net_rounds) {
        let (sa, na) = (
            s["test_accuracy"].as_f64().unwrap(),
            n["test_accuracy"].as_f64().unwrap(),
        );
        // At most one of the 143 held-out rows may fall the other way (the encodings differ by
        // rounding).
        assert!(
            (sa - na).abs() <= 1.0 / 140.0,
            "round {}: {sa} vs {na}",
            n["round"]
        );
        let (sl, nl) = (
            s["test_loss"].as_f64().unwrap(),
            n["test_loss"].as_f64().unwrap(),
        );
        assert!(
            (sl - nl).abs() < 1e-3,
            "round {}: loss {sl} vs {nl}",
            n["round"]
        );
        assert!(na > 0.85, "{n}");
        assert_eq!(n["details"]["evaluation"]["set"], "held-out", "{n}");
    }
    let mut args = vec!["status".to_string(), id.clone()];
    args.extend(fed.remote_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = ok(privet(fed.path(), &args));
    assert!(text.contains("test accuracy 0."), "{text}");
    assert!(text.contains("rows of held-out"), "{text}");
    for round in job["rounds"].as_array().unwrap() {
        assert_eq!(
            round["participants"].as_array().unwrap().len(),
            4,
            "{round}"
        );
    }
    let mut args = vec![
        "fetch-model".to_string(),
        id.clone(),
        "--out".into(),
        "net/model.safetensors".into(),
    ];
    args.extend(fed.remote_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(privet(fed.path(), &args));
    let networked = load_params(&fed.path().join("net/model.safetensors"));
    let simulated = load_params(&fed.path().join("sim/model.safetensors"));
    assert_eq!(networked.len(), simulated.len());
    let max_diff = networked
        .iter()
        .zip(&simulated)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Same seeds, partitions and sampling; the feature encoding is merged from node summaries
    // (parallel variance), so only rounding separates the two.
    assert!(
        max_diff < 1e-4,
        "networked and simulated models differ by {max_diff}"
    );
    // The downloaded model predicts like any other.
    ok(privet(
        fed.path(),
        &[
            "predict",
            "net/model.safetensors",
            repo_file("data/breast_cancer.csv").to_str().unwrap(),
            "--out",
            "pred.csv",
        ],
    ));
    job
}

/// Training slow enough (an MLP, many epochs) that a kill lands inside a round.
fn slow_job(nodes: &[String], rounds: u32, min_clients: usize) -> String {
    job_toml(
        nodes,
        &format!("rounds = {rounds}\nfraction = 1.0\nmin_clients = {min_clients}"),
        "kind = \"mlp\"\nhidden = [64]",
        40,
    )
}

fn completed(job: &Value) -> u64 {
    job["completed_rounds"].as_u64().unwrap_or(0)
}

#[test]
fn a_node_killed_mid_round_is_dropped_and_rejoins() {
    let nodes = names(4);
    let fed = Federation::new(&nodes);
    for (name, csv) in nodes.iter().zip(even_split(4)) {
        fed.node_config(name, &csv, "certs");
    }
    std::fs::write(fed.path().join("job.toml"), slow_job(&nodes, 8, 3)).unwrap();
    let _coordinator = fed.coordinator();
    let mut procs: Vec<Option<Proc>> = nodes.iter().map(|n| Some(fed.node(n))).collect();
    let id = fed.submit("job.toml");
    fed.wait_for(Duration::from_secs(120), "round 1", || {
        completed(&fed.job(&id)) >= 1
    });
    // The next round starts at once: kill hospital-3 while it trains.
    std::thread::sleep(Duration::from_millis(150));
    drop(procs[3].take());
    fed.wait_for(Duration::from_secs(120), "two more rounds", || {
        completed(&fed.job(&id)) >= 3
    });
    procs[3] = Some(fed.node(&nodes[3]));
    let job = fed.wait_job(&id, Duration::from_secs(300));
    let rounds = job["rounds"].as_array().unwrap();
    let has = |r: &Value, key: &str| r[key].as_array().unwrap().iter().any(|n| n == "hospital-3");
    assert!(
        rounds
            .iter()
            .any(|r| r["completed"] == true && has(r, "dropped")),
        "no completed round lists the killed node as dropped: {job:#}"
    );
    let last_without = rounds
        .iter()
        .rposition(|r| !has(r, "participants"))
        .unwrap();
    assert!(
        rounds[last_without + 1..]
            .iter()
            .any(|r| has(r, "participants")),
        "the restarted node never took part again: {job:#}"
    );
    assert_eq!(completed(&job), 8);
}

#[test]
fn a_coordinator_killed_mid_job_resumes_without_losing_or_repeating_rounds() {
    let nodes = names(3);
    let fed = Federation::new(&nodes);
    for (name, csv) in nodes.iter().zip(even_split(3)) {
        fed.node_config(name, &csv, "certs");
    }
    std::fs::write(fed.path().join("job.toml"), slow_job(&nodes, 8, 3)).unwrap();
    let coordinator = fed.coordinator();
    let _nodes: Vec<Proc> = nodes.iter().map(|n| fed.node(n)).collect();
    let id = fed.submit("job.toml");
    fed.wait_for(Duration::from_secs(120), "round 2", || {
        completed(&fed.job(&id)) >= 2
    });
    std::thread::sleep(Duration::from_millis(150));
    // SIGKILL: no chance to clean up.
    drop(coordinator);
    let _restarted = fed.spawn(
        &["coordinator", "--config", "coordinator.toml"],
        "coordinator-2.log",
    );
    let job = fed.wait_job(&id, Duration::from_secs(300));
    let rounds = job["rounds"].as_array().unwrap();
    let numbers: Vec<u64> = rounds
        .iter()
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "round numbers repeat: {numbers:?}"
    );
    let done = rounds.iter().filter(|r| r["completed"] == true).count();
    assert_eq!(done, 8, "exactly the job's rounds completed: {job:#}");
    assert_eq!(completed(&job), 8);
    assert!(fed.read_log("coordinator-2.log").contains("resuming job"));
}

#[test]
fn a_node_with_a_foreign_certificate_is_refused() {
    let nodes = names(2);
    let fed = Federation::new(&nodes);
    // A second CA issues a certificate with an expected name.
    ok(privet(fed.path(), &["certs", "init", "--dir", "rogue"]));
    ok(privet(
        fed.path(),
        &["certs", "issue", "hospital-1", "--dir", "rogue"],
    ));
    let csvs = even_split(2);
    fed.node_config("hospital-0", &csvs[0], "certs");
    fed.node_config("hospital-1", &csvs[1], "rogue");
    let _coordinator = fed.coordinator();
    let _good = fed.node("hospital-0");
    let _rogue = fed.node("hospital-1");
    fed.wait_for(Duration::from_secs(30), "the honest node", || {
        fed.status()["connected_nodes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x == "hospital-0"))
    });
    fed.wait_for(Duration::from_secs(30), "the refusal to be logged", || {
        fed.read_log("coordinator.log")
            .contains("TLS handshake refused")
    });
    let status = fed.status();
    let connected = status["connected_nodes"].as_array().unwrap();
    assert!(!connected.iter().any(|x| x == "hospital-1"), "{status:#}");
    // Its certificate is not from the federation's CA (which it trusts): the coordinator's
    // TLS alert is explained in the node's log.
    fed.wait_for(
        Duration::from_secs(30),
        "the node to explain the refusal",
        || {
            fed.read_log("hospital-1.log")
                .contains("the coordinator refused this node's certificate")
        },
    );
    // An operator without a certificate of this federation gets nothing either.
    let out = privet(
        fed.path(),
        &[
            "status",
            "--coordinator",
            &fed.url(),
            "--certs",
            "rogue",
            "--name",
            "hospital-1",
        ],
    );
    assert_eq!(out.status.code(), Some(6));
    // A node certificate is not an admin certificate.
    let out = privet(
        fed.path(),
        &[
            "status",
            "--coordinator",
            &fed.url(),
            "--certs",
            "certs",
            "--name",
            "hospital-0",
        ],
    );
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an admin"));
    let _ = std::io::stderr().flush();
}

#[test]
fn bad_configs_and_certificate_files_get_one_clear_line() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let expect = |args: &[&str], code: i32, needle: &str| {
        let out = privet(d, args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    };
    std::fs::write(
        d.join("c.toml"),
        "listen = \"127.0.0.1:1\"\nstate = \"s.db\"\nlisten_typo = 1\n",
    )
    .unwrap();
    expect(&["coordinator", "--config", "c.toml"], 2, "listen_typo");
    std::fs::write(
        d.join("c.toml"),
        "listen = \"nowhere\"\nstate = \"s.db\"\n[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n",
    )
    .unwrap();
    expect(&["coordinator", "--config", "c.toml"], 2, "IP:PORT");
    std::fs::write(d.join("n.toml"), "name = \"../etc\"\ncoordinator = \"https://x:1\"\n[data]\npath = \"a.csv\"\nlabel = \"y\"\n")
        .unwrap();
    expect(&["node", "--config", "n.toml"], 2, "invalid name");
    // No CA yet: issuing fails with the missing file named, and nothing is written.
    expect(&["certs", "issue", "hospital-0"], 2, "ca.key");
    assert!(!d.join("certs/hospital-0.pem").exists());
    // A certificate file that is not PEM: the coordinator says which file.
    ok(privet(d, &["certs", "init"]));
    ok(privet(
        d,
        &["certs", "issue", "coordinator", "--host", "localhost"],
    ));
    std::fs::write(d.join("certs/coordinator.pem"), "not a certificate").unwrap();
    std::fs::write(
        d.join("c.toml"),
        "listen = \"127.0.0.1:0\"\nstate = \"s.db\"\n[tls]\nca = \"certs/ca.pem\"\ncert = \
         \"certs/coordinator.pem\"\nkey = \"certs/coordinator.key\"\n",
    )
    .unwrap();
    expect(&["coordinator", "--config", "c.toml"], 5, "coordinator.pem");
    // The CA is never overwritten by accident.
    expect(&["certs", "init"], 2, "--force");
}

/// Roles are part of every certificate: a node certificate cannot run the coordinator, the
/// coordinator's certificate cannot run a node, an operator's cannot either, and `--days 0`
/// (an already expired certificate) is refused.
#[test]
fn certificates_of_the_wrong_role_do_not_start() {
    let fed = Federation::new(&names(1));
    let d = fed.path();
    let expect = |args: &[&str], code: i32, needle: &str| {
        let out = privet(d, args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    };
    std::fs::write(
        d.join("wrong.toml"),
        "listen = \"127.0.0.1:0\"\nstate = \"w.db\"\n[tls]\nca = \"certs/ca.pem\"\ncert = \
         \"certs/hospital-0.pem\"\nkey = \"certs/hospital-0.key\"\n",
    )
    .unwrap();
    expect(
        &["coordinator", "--config", "wrong.toml"],
        2,
        "a node's certificate",
    );
    assert!(
        !d.join("w.db").exists(),
        "nothing is created before the check"
    );
    for (name, role) in [("coordinator", "coordinator"), ("admin", "operator")] {
        std::fs::write(
            d.join(format!("{name}-as-node.toml")),
            format!(
                "name = \"{name}\"\ncoordinator = \"{}\"\n[tls]\nca = \"certs/ca.pem\"\ncert = \
                 \"certs/{name}.pem\"\nkey = \"certs/{name}.key\"\n[data]\npath = \"x.csv\"\n\
                 label = \"y\"\n",
                fed.url()
            ),
        )
        .unwrap();
        let config = format!("{name}-as-node.toml");
        expect(
            &["node", "--config", &config],
            2,
            &format!("a {role}'s certificate"),
        );
    }
    expect(
        &["certs", "issue", "late", "--days", "0"],
        2,
        "already expired",
    );
    assert!(!d.join("certs/late.pem").exists());
    expect(
        &["certs", "issue", "n", "--role", "node", "--host", "h"],
        2,
        "--host",
    );
}

/// What a node's data holds never reaches the coordinator: a cell value that breaks a node's
/// CSV (written over the file after the node started, so the node reports it instead of refusing
/// to start) and, under `[privacy]`, a label outside the job's public list are reported by file,
/// line and column only. The sentinel appears in no coordinator log, store row or status output.
#[test]
fn a_cell_value_never_reaches_the_coordinator() {
    const SENTINEL: &str = "PATIENT Jane Doe SENTINEL-51f3";
    let nodes = names(2);
    let fed = Federation::new(&nodes);
    let csvs = even_split(2);
    fed.node_config("hospital-0", &csvs[0], "certs");
    fed.node_config("hospital-1", &csvs[1], "certs");
    let _coordinator = fed.coordinator();
    let _n0 = fed.node("hospital-0");
    let _n1 = fed.node("hospital-1");
    fed.wait_for(Duration::from_secs(30), "both nodes", || {
        fed.status()["connected_nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 2)
    });
    // hospital-0: a numeric cell holding a name. A plain job runs without it.
    let mut lines: Vec<String> = csvs[0].lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[3].split(',').map(String::from).collect();
    cells[2] = SENTINEL.into();
    lines[3] = cells.join(",");
    std::fs::write(fed.path().join("hospital-0.csv"), lines.join("\n") + "\n").unwrap();
    let plain = job_toml(
        &nodes,
        "rounds = 1\nmin_clients = 1",
        "kind = \"logreg\"",
        1,
    )
    .replace("start_timeout_secs = 30", "start_timeout_secs = 2");
    std::fs::write(fed.path().join("plain.toml"), &plain).unwrap();
    let a = fed.submit("plain.toml");
    fed.wait_job(&a, Duration::from_secs(60));
    // hospital-1: a label outside the DP job's public list.
    let mut lines: Vec<String> = csvs[1].lines().map(String::from).collect();
    let last = lines[5].rfind(',').unwrap();
    lines[5] = format!("{},{SENTINEL}", &lines[5][..last]);
    std::fs::write(fed.path().join("hospital-1.csv"), lines.join("\n") + "\n").unwrap();
    let dp = job_toml(
        &nodes,
        "rounds = 1\nmin_clients = 2",
        "kind = \"logreg\"",
        1,
    )
    .replace(
        "\n[deployment]",
        "\n[privacy]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\n\
         [privacy.features]\nepsilon = 1.0\nbounds = { \"*\" = [-10000.0, 10000.0] }\n\
         labels = [\"0\", \"1\"]\n\n[deployment]",
    );
    std::fs::write(fed.path().join("dp.toml"), &dp).unwrap();
    let b = fed.submit("dp.toml");
    fed.wait_for(Duration::from_secs(30), "the refusals to be logged", || {
        fed.read_log("coordinator.log")
            .contains("not in the job's `labels`")
    });
    let log = fed.read_log("coordinator.log");
    assert!(log.contains("not a number"), "{log}");
    // The nodes' own logs may say more: they stay with the data.
    let status = fed.status();
    let mut outputs = vec![status.to_string()];
    for job in [None, Some(&a), Some(&b)] {
        let mut args = vec!["status".to_string()];
        args.extend(job.cloned());
        args.extend(fed.remote_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        outputs.push(ok(privet(fed.path(), &args)));
    }
    let store = std::fs::read(fed.path().join("coordinator.db")).unwrap_or_default();
    let wal = std::fs::read(fed.path().join("coordinator.db-wal")).unwrap_or_default();
    let mut places: Vec<(&str, &[u8])> = vec![
        ("coordinator log", log.as_bytes()),
        ("store", &store[..]),
        ("store WAL", &wal[..]),
    ];
    places.extend(outputs.iter().map(|o| ("status output", o.as_bytes())));
    for (what, bytes) in places {
        assert!(
            !bytes.windows(8).any(|w| w == b"SENTINEL"),
            "the sentinel reached the {what}"
        );
    }
}
