//! Signed data-sharing agreements enforced by a real federation on 127.0.0.1 (coordinator,
//! three nodes and the operator as `privet` processes with mutual TLS), and the audit log that
//! records it: admitted and refused jobs, a node's stricter policy, rounds, privacy spend, a
//! model export, the log exported and verified offline, and a node that catches a coordinator
//! whose history was rewritten.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
use common::federation::*;
use common::*;

use std::time::Duration;

use serde_json::Value;

const NODES: usize = 3;

/// An agreement over the federation's parties (by certificate).
fn agreement(id: &str, not_after: &str, extra: &str) -> String {
    let mut s = format!(
        "format_version = 1\nid = \"{id}\"\nversion = 1\ntitle = \"Breast-cancer study\"\n\
         not_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"{not_after}\"\nretention_days = 30\n\n"
    );
    let mut parties = vec![
        ("coordinator".to_string(), "coordinator"),
        ("admin".to_string(), "operator"),
    ];
    parties.extend(names(NODES).into_iter().map(|n| (n, "data-owner")));
    for (name, role) in &parties {
        s.push_str(&format!(
            "[[parties]]\nname = \"{name}\"\nrole = \"{role}\"\ncertificate = \"certs/{name}.pem\"\n\n"
        ));
    }
    s.push_str("[datasets]\n");
    for n in names(NODES) {
        s.push_str(&format!("{n} = \"biopsies\"\n"));
    }
    s.push_str(
        "\n[[purposes]]\nterm = \"DUO:0000007\"\ndisease = \"MONDO:0007254\"\n\
         modifiers = [\"DUO:0000046\"]\n\n[tasks]\nmodels = [\"logreg\"]\nstrategies = \
         [\"fedavg\"]\n\n[protections]\nsecure_aggregation = true\nmin_clients_per_round = 3\n\n\
         [protections.dp]\nepsilon_per_job = 5.0\ndelta_per_job = 1e-5\nepsilon_total = 8.0\n\
         delta_total = 1e-4\n\n[protections.export]\nparties = [\"admin\"]\ndp_only = true\n",
    );
    s.push_str(extra);
    s
}

/// Writes `file` and has `signers` sign it.
fn signed(fed: &Federation, file: &str, text: &str, signers: &[&str]) {
    std::fs::write(fed.path().join(file), text).unwrap();
    for who in signers {
        ok(privet(
            fed.path(),
            &[
                "agreement",
                "sign",
                file,
                "--key",
                &format!("certs/{who}.key"),
            ],
        ));
    }
}

fn everyone() -> Vec<String> {
    let mut v = vec!["coordinator".to_string(), "admin".to_string()];
    v.extend(names(NODES));
    v
}

/// A secure-aggregation, DP job on the three nodes under `agreement_id`.
fn job(agreement_id: &str, purpose: &str, epsilon: f64, nodes: &[String]) -> String {
    let csv = repo_file("data/breast_cancer.csv");
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "[data]\npath = \"{}\"\nlabel = \"benign\"\n\n[model]\nkind = \"logreg\"\n\n\
         [train]\nepochs = 1\nbatch_size = 16\nlr = 0.05\n\n[federation]\nrounds = 1\n\
         clients_per_round = 3\nmin_clients = 3\nseed = 5\nsecure_aggregation = \"secagg+\"\n\n\
         [privacy]\nclip = 1.0\ntarget_epsilon = {epsilon}\ndelta = 1e-5\n\
         [privacy.features]\nepsilon = 1.0\nbounds = {{ \"*\" = [-10000.0, 10000.0] }}\n\
         labels = [\"0\", \"1\"]\n\n[agreement]\nid = \"{agreement_id}\"\n{purpose}\n\n\
         [deployment]\nnodes = [{}]\nround_timeout_secs = 30\nstart_timeout_secs = 4\n",
        csv.display(),
        list.join(", ")
    )
}

const STUDY: &str =
    "purpose = \"DUO:0000007\"\ndisease = \"MONDO:0007254\"\nmodifiers = [\"DUO:0000046\"]";

/// `privet submit`, expecting a refusal: its exit code and one line.
fn refused(fed: &Federation, file: &str, text: &str) -> (i32, String) {
    std::fs::write(fed.path().join(file), text).unwrap();
    let mut args = vec!["submit".to_string(), file.to_string()];
    args.extend(fed.remote_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = fails(privet(fed.path(), &args));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    (code, err)
}

fn show_log(fed: &Federation) -> String {
    let mut args = vec![
        "audit".to_string(),
        "export".to_string(),
        "--out".to_string(),
        "log.jsonl".to_string(),
    ];
    args.extend(fed.remote_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(privet(fed.path(), &args));
    ok(privet(fed.path(), &["audit", "show", "log.jsonl"]))
}

#[test]
fn jobs_run_only_as_their_signed_agreement_allows_and_the_log_proves_it() {
    let nodes = names(NODES);
    let fed = Federation::new(&nodes);
    let all = everyone();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    signed(
        &fed,
        "study.toml",
        &agreement("study", "2099-01-01T00:00:00Z", ""),
        &all,
    );
    // Signed by everyone but the last hospital.
    signed(
        &fed,
        "unsigned.toml",
        &agreement("unsigned-study", "2099-01-01T00:00:00Z", ""),
        &all[..all.len() - 1],
    );
    // Signed by everyone, then one byte changed (30 -> 31 retention days).
    signed(
        &fed,
        "tampered.toml",
        &agreement("tampered-study", "2099-01-01T00:00:00Z", ""),
        &all,
    );
    let text = std::fs::read_to_string(fed.path().join("tampered.toml")).unwrap();
    std::fs::write(
        fed.path().join("tampered.toml"),
        text.replace("retention_days = 30", "retention_days = 31"),
    )
    .unwrap();
    signed(
        &fed,
        "expired.toml",
        &agreement("expired-study", "2026-02-01T00:00:00Z", ""),
        &all,
    );
    let config = std::fs::read_to_string(fed.path().join("coordinator.toml")).unwrap();
    std::fs::write(
        fed.path().join("coordinator.toml"),
        format!(
            "{config}\n[audit]\nagreements = [\"study.toml\", \"unsigned.toml\", \
             \"tampered.toml\", \"expired.toml\"]\n"
        ),
    )
    .unwrap();
    let csvs = even_split(NODES);
    for (i, (name, csv)) in nodes.iter().zip(&csvs).enumerate() {
        fed.node_config(name, csv, "certs");
        // The last hospital's own policy is stricter than the agreement: epsilon <= 3.5.
        let policy = if i == NODES - 1 {
            "max_epsilon_per_job = 3.5\n"
        } else {
            ""
        };
        let path = fed.path().join(format!("{name}.toml"));
        let node = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            format!("{node}\n[audit]\nagreements = [\"study.toml\"]\n{policy}"),
        )
        .unwrap();
    }
    let coordinator = fed.coordinator();
    let mut procs: Vec<Proc> = nodes.iter().map(|n| fed.node(n)).collect();
    fed.wait_for(Duration::from_secs(30), "every node", || {
        fed.status()["connected_nodes"]
            .as_array()
            .is_some_and(|n| n.len() == NODES)
    });

    // Refused by the coordinator, one line each, and recorded.
    let cases = [
        (
            "unsigned-study",
            STUDY.to_string(),
            3.0,
            nodes.clone(),
            "unsigned",
        ),
        (
            "tampered-study",
            STUDY.to_string(),
            3.0,
            nodes.clone(),
            "bad_signature",
        ),
        (
            "expired-study",
            STUDY.to_string(),
            3.0,
            nodes.clone(),
            "expired",
        ),
        (
            "study",
            "purpose = \"DUO:0000042\"".to_string(),
            3.0,
            nodes.clone(),
            "purpose_not_permitted",
        ),
        (
            "study",
            STUDY.to_string(),
            6.0,
            nodes.clone(),
            "over_per_job_budget",
        ),
        (
            "study",
            STUDY.to_string(),
            3.0,
            {
                let mut n = nodes.clone();
                n.push("stranger".into());
                n
            },
            "not_a_party",
        ),
    ];
    for (i, (id, purpose, eps, who, code)) in cases.iter().enumerate() {
        let (exit, err) = refused(&fed, &format!("bad-{i}.toml"), &job(id, purpose, *eps, who));
        assert!(err.contains(&format!("({code})")), "{code}: {err}");
        assert_eq!(exit, 6, "{err}");
    }

    // Covered: runs to completion under secure aggregation and DP (epsilon 3 reserved).
    std::fs::write(
        fed.path().join("good.toml"),
        job("study", STUDY, 3.0, &nodes),
    )
    .unwrap();
    let good = fed.submit("good.toml");
    fed.wait_job(&good, Duration::from_secs(90));
    // Admitted by the coordinator (3 + 4 <= 8), refused by the stricter hospital.
    std::fs::write(
        fed.path().join("strict.toml"),
        job("study", STUDY, 4.0, &nodes),
    )
    .unwrap();
    let strict = fed.submit("strict.toml");
    fed.wait_for(Duration::from_secs(30), "the strict node's refusal", || {
        fed.job(&strict)["state"] == "failed"
    });
    // 3 + 4 already reserved: 1.5 more is over the total of 8.
    let (_, err) = refused(&fed, "over.toml", &job("study", STUDY, 1.5, &nodes));
    assert!(err.contains("(over_total_budget)"), "{err}");

    // The model leaves only to the agreement's exporter (admin, DP-trained: allowed).
    let mut args = vec![
        "fetch-model".to_string(),
        good.clone(),
        "--out".into(),
        "model.safetensors".into(),
    ];
    args.extend(fed.remote_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(privet(fed.path(), &args));

    let shown = show_log(&fed);
    let exported = std::fs::read_to_string(fed.path().join("log.jsonl")).unwrap();
    for code in [
        "unsigned",
        "bad_signature",
        "expired",
        "purpose_not_permitted",
        "over_per_job_budget",
        "not_a_party",
        "over_total_budget",
        "local_policy",
    ] {
        assert!(
            exported.contains(code),
            "{code} not in the log:\n{exported}"
        );
    }
    for what in [
        "agreement study version 1 recorded",
        "admitted under agreement",
        "round 1 completed with 3",
        "spent",
        "exported to admin (DP-trained)",
        "hospital-2 refused job",
    ] {
        assert!(shown.contains(what), "no {what:?} entry:\n{shown}");
    }
    assert!(shown.contains(&good) && shown.contains(&strict), "{shown}");
    let head = |n: &str| format!("{n}-audit/coordinator-head.json");
    ok(privet(
        fed.path(),
        &[
            "audit",
            "verify",
            "log.jsonl",
            "--agreement",
            "study.toml",
            "--head",
            &head(&nodes[0]),
        ],
    ));
    // A DPO's report on the good job, from the real coordinator's log.
    ok(privet(
        fed.path(),
        &[
            "audit",
            "report",
            "log.jsonl",
            "--job",
            &good,
            "--agreement",
            "study.toml",
            "--head",
            &head(&nodes[0]),
            "--out",
            "report.html",
        ],
    ));
    let html = std::fs::read_to_string(fed.path().join("report.html")).unwrap();
    for expected in [
        format!("<h1>Data-sharing report: job {good}</h1>"),
        "Audit log verified.".into(),
        "Agreement signed by every party.".into(),
        "DUO:0000007 disease specific research (MONDO:0007254)".into(),
        "<td>hospital-0</td><td>data-owner</td>".into(),
        "Signed tree head".into(),
        "to admin (DP-trained)".into(),
    ] {
        assert!(html.contains(&expected), "`{expected}` missing:\n{html}");
    }
    // The ledger of the hospitals that took part holds the good job's reservation.
    let ledger: Value = serde_json::from_str(
        &std::fs::read_to_string(fed.path().join(format!("{}-audit/ledger.json", nodes[0])))
            .unwrap(),
    )
    .unwrap();
    assert!(
        ledger["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job"] == good.as_str() && j["epsilon"] == 3.0),
        "{ledger}"
    );

    // The coordinator's history is rewritten while it is down: its entries are changed and
    // its old heads removed, so it starts and signs a head over the new history. A node that
    // kept a head of the old one detects it at its next connection and stops, naming it.
    drop(coordinator);
    let db = rusqlite::Connection::open(fed.path().join("coordinator.db")).unwrap();
    db.execute_batch(
        "DELETE FROM audit_heads; \
         UPDATE audit_entries SET entry = replace(entry, 'expired', 'exp1red') \
         WHERE entry LIKE '%expired%';",
    )
    .unwrap();
    drop(db);
    let _coordinator = fed.coordinator();
    fed.wait_for(Duration::from_secs(30), "a node to stop", || {
        procs
            .iter_mut()
            .any(|p| p.0.try_wait().ok().flatten().is_some())
    });
    let codes: Vec<Option<i32>> = procs
        .iter_mut()
        .filter_map(|p| p.0.try_wait().ok().flatten())
        .map(|s| s.code())
        .collect();
    assert!(codes.contains(&Some(6)), "{codes:?}");
    // Entry 1 (the expired agreement's record) is one every node's kept head covers.
    let logs = fed.logs();
    assert!(
        logs.contains("error: audit log: coordinator coordinator rewrote its log"),
        "{logs}"
    );
}
