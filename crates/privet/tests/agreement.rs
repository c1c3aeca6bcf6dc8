//! `privet agreement` and `privet audit` end to end: the real binary, certificates from
//! `privet certs`, agreements signed by each party's key, and audit logs written by the
//! `privet-audit` library as the coordinator would write them.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use privet_audit::{
    Admission, Agreement, AuditLog, DpBudget, Entry, Event, JobRequest, LogFile, ModelKind,
    Purpose, StrategyKind, Task, Timestamp, head_to_json,
};
use privet_identity::{Name, TlsFiles};
use tempfile::TempDir;

fn privet(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("privet")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs privet and expects success.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = privet(dir, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// Runs privet and expects exit `code` with one line on stderr containing `fragment`.
fn fails(dir: &Path, args: &[&str], code: i32, fragment: &str) -> String {
    let o = privet(dir, args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    assert!(err.contains(fragment), "`{fragment}` missing from: {err}");
    err
}

fn name(s: &str) -> Name {
    s.parse().unwrap()
}

/// Certificates for the coordinator, an operator and two hospitals, and an agreement naming
/// them (not yet signed).
fn federation() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["certs", "init"]);
    ok(d, &["certs", "issue", "coordinator", "--host", "localhost"]);
    ok(d, &["certs", "issue", "admin", "--role", "operator"]);
    ok(d, &["certs", "issue", "hospital-a"]);
    ok(d, &["certs", "issue", "hospital-b"]);
    let out = ok(
        d,
        &[
            "agreement",
            "new",
            "--out",
            "agreement.toml",
            "--party",
            "certs/coordinator.pem",
            "--party",
            "certs/admin.pem",
            "--party",
            "certs/hospital-a.pem",
            "--party",
            "certs/hospital-b.pem",
            "--not-before",
            "2026-01-01T00:00:00Z",
            "--days",
            "3650",
        ],
    );
    assert!(out.contains("wrote agreement.toml"), "{out}");
    dir
}

const PARTIES: [&str; 4] = ["coordinator", "admin", "hospital-a", "hospital-b"];

fn sign_all(d: &Path, file: &str) {
    for p in PARTIES {
        ok(
            d,
            &[
                "agreement",
                "sign",
                file,
                "--key",
                &format!("certs/{p}.key"),
            ],
        );
    }
}

#[test]
fn an_agreement_is_created_signed_by_each_party_and_verified() {
    let dir = federation();
    let d = dir.path();
    // Nobody has signed: verify fails and says who is missing.
    let err = fails(
        d,
        &["agreement", "verify", "agreement.toml"],
        1,
        "not signed by admin, coordinator, hospital-a, hospital-b",
    );
    assert!(err.contains("is not in force"), "{err}");

    let out = ok(
        d,
        &[
            "agreement",
            "sign",
            "agreement.toml",
            "--key",
            "certs/hospital-a.key",
        ],
    );
    assert!(
        out.contains(
            "signed by hospital-a (1 of 4); still to sign: admin, coordinator, hospital-b"
        ),
        "{out}"
    );
    let out = ok(
        d,
        &[
            "agreement",
            "sign",
            "agreement.toml",
            "--key",
            "certs/hospital-a.key",
        ],
    );
    assert!(out.contains("already signed by hospital-a"), "{out}");
    fails(
        d,
        &["agreement", "verify", "agreement.toml"],
        1,
        "not signed by admin, coordinator, hospital-b",
    );

    // A key that is no party's cannot sign.
    ok(d, &["certs", "issue", "hospital-z"]);
    let before = std::fs::read(d.join("agreement.toml")).unwrap();
    fails(
        d,
        &[
            "agreement",
            "sign",
            "agreement.toml",
            "--key",
            "certs/hospital-z.key",
        ],
        5,
        "is not the key of any party",
    );
    assert_eq!(std::fs::read(d.join("agreement.toml")).unwrap(), before);

    for p in ["coordinator", "admin"] {
        ok(
            d,
            &[
                "agreement",
                "sign",
                "agreement.toml",
                "--key",
                &format!("certs/{p}.key"),
            ],
        );
    }
    let out = ok(
        d,
        &[
            "agreement",
            "sign",
            "agreement.toml",
            "--key",
            "certs/hospital-b.key",
        ],
    );
    assert!(out.contains("now signed by all 4 parties"), "{out}");
    let out = ok(d, &["agreement", "verify", "agreement.toml"]);
    assert!(out.contains("verified: signed by all 4 parties"), "{out}");
    assert!(
        out.contains("signed by: admin, coordinator, hospital-a, hospital-b"),
        "{out}"
    );

    let out = ok(d, &["agreement", "show", "agreement.toml"]);
    for expected in [
        "agreement breast-cancer-study version 1",
        "DUO:0000007 disease specific research (MONDO:0007254); DUO:0000046 non-commercial use only",
        "training: models logreg, mlp; strategies fedavg, fedprox",
        "secure aggregation required",
        "at least 2 clients per round",
        "at most (epsilon 3, delta 1e-5) per job, (epsilon 10, delta 1e-4) in total",
        "model export: admin (DP-trained models only)",
        "signatures: 4 of 4",
        "hospital-a           data-owner",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }
}

#[test]
fn a_tampered_agreement_is_refused_with_one_line() {
    let dir = federation();
    let d = dir.path();
    sign_all(d, "agreement.toml");
    ok(d, &["agreement", "verify", "agreement.toml"]);
    let good = std::fs::read_to_string(d.join("agreement.toml")).unwrap();

    // One byte of what was agreed.
    let tampered = good.replacen("epsilon_total = 10.0", "epsilon_total = 90.0", 1);
    assert_eq!(tampered.len(), good.len());
    std::fs::write(d.join("agreement.toml"), &tampered).unwrap();
    let err = fails(
        d,
        &["agreement", "verify", "agreement.toml"],
        1,
        "does not match this text",
    );
    assert!(
        err.contains("admin, coordinator, hospital-a, hospital-b"),
        "{err}"
    );
    let out = ok(d, &["agreement", "show", "agreement.toml"]);
    assert!(out.contains("SIGNATURE DOES NOT MATCH"), "{out}");

    // One byte of a signature.
    let sig_at = good.rfind("signature = \"").unwrap() + "signature = \"".len();
    let mut bytes = good.clone().into_bytes();
    bytes[sig_at] = if bytes[sig_at] == b'0' { b'1' } else { b'0' };
    std::fs::write(d.join("agreement.toml"), &bytes).unwrap();
    fails(
        d,
        &["agreement", "verify", "agreement.toml"],
        1,
        "the signature of hospital-b does not match",
    );

    // A byte that breaks the TOML: the line is named.
    let broken = good.replacen("[tasks]", "[tasks", 1);
    std::fs::write(d.join("agreement.toml"), broken).unwrap();
    fails(
        d,
        &["agreement", "verify", "agreement.toml"],
        2,
        "agreement.toml: line ",
    );

    // An unknown DUO id.
    std::fs::write(
        d.join("agreement.toml"),
        good.replacen(
            "modifiers = [\"DUO:0000046\"]",
            "modifiers = [\"DUO:0000099\"]",
            1,
        ),
    )
    .unwrap();
    fails(
        d,
        &["agreement", "verify", "agreement.toml"],
        2,
        "DUO:0000099 is not a DUO term privet supports",
    );

    // Comments and layout do not matter.
    std::fs::write(
        d.join("agreement.toml"),
        good.replacen("[tasks]", "# reviewed by the DPO\n\n[tasks]", 1),
    )
    .unwrap();
    ok(d, &["agreement", "verify", "agreement.toml"]);
}

#[test]
fn an_amendment_must_name_the_previous_version() {
    let dir = federation();
    let d = dir.path();
    sign_all(d, "agreement.toml");
    let v1 = Agreement::load(&d.join("agreement.toml")).unwrap();
    let text = std::fs::read_to_string(d.join("agreement.toml")).unwrap();
    let body = &text[..text.find("\n[[signatures]]").unwrap()];
    let v2 = body
        .replacen("\nversion = 1\n", "\nversion = 2\n", 1)
        .replacen("epsilon_total = 10.0", "epsilon_total = 12.0", 1);
    // Without `previous`: refused where it stands.
    std::fs::write(d.join("v2.toml"), &v2).unwrap();
    fails(d, &["agreement", "verify", "v2.toml"], 2, "give `previous`");
    // With a wrong hash: signed by all, but no amendment of version 1.
    let wrong = v2.replacen(
        "\nversion = 2\n",
        &format!("\nversion = 2\nprevious = \"{}\"\n", "ab".repeat(32)),
        1,
    );
    std::fs::write(d.join("v2.toml"), &wrong).unwrap();
    sign_all(d, "v2.toml");
    ok(d, &["agreement", "verify", "v2.toml"]);
    fails(
        d,
        &[
            "agreement",
            "verify",
            "v2.toml",
            "--previous",
            "agreement.toml",
        ],
        1,
        "names previous abab",
    );
    // With the right one.
    let right = v2.replacen(
        "\nversion = 2\n",
        &format!("\nversion = 2\nprevious = \"{}\"\n", v1.hash()),
        1,
    );
    std::fs::write(d.join("v2.toml"), &right).unwrap();
    sign_all(d, "v2.toml");
    let out = ok(
        d,
        &[
            "agreement",
            "verify",
            "v2.toml",
            "--previous",
            "agreement.toml",
        ],
    );
    assert!(out.contains("amends version 1"), "{out}");
}

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// A coordinator's log for job-1 under the signed agreement, with a head after each entry;
/// returns the log and the head a node kept after entry `kept`.
fn write_log(d: &Path, entries: &[Entry], file: &str, kept: Option<(usize, &str)>) {
    let key = privet_identity::load_signing_key(&TlsFiles::in_dir(
        &d.join("certs"),
        &name("coordinator"),
    ))
    .unwrap();
    let mut log = AuditLog::new(name("coordinator"));
    let mut heads = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        log.append(e);
        let head = log.sign_head(&key, e.time);
        if let Some((k, path)) = kept
            && k == i + 1
        {
            std::fs::write(d.join(path), head_to_json(&head, &key.verifying_key())).unwrap();
        }
        heads.push(head);
    }
    LogFile::new(
        name("coordinator"),
        key.verifying_key(),
        entries.to_vec(),
        heads,
    )
    .write(&d.join(file))
    .unwrap();
}

fn job_entries(agreement: &Agreement) -> Vec<Entry> {
    let request = JobRequest {
        agreement: Some(agreement.hash()),
        purpose: Purpose::new(
            "DUO:0000007".parse().unwrap(),
            Some("MONDO:0007254".parse().unwrap()),
            ["DUO:0000046".parse().unwrap()],
        )
        .unwrap(),
        task: Task::Train {
            model: ModelKind::Logreg,
            strategy: StrategyKind::FedAvg,
        },
        coordinator: name("coordinator"),
        operator: Some(name("admin")),
        nodes: vec![name("hospital-a"), name("hospital-b")],
        secure_aggregation: true,
        dp: Some(DpBudget::new(1.0, 1e-5).unwrap()),
        min_clients_per_round: 2,
        now: at("2026-06-01T10:00:00Z"),
        spent: DpBudget::ZERO,
    };
    agreement.permits(&request).unwrap();
    let job = || "job-1".parse().unwrap();
    let round = |r: u64, eps: f64, t: &str| {
        Entry::new(
            at(t),
            Event::RoundCompleted {
                job: job(),
                round: r,
                participants: vec![name("hospital-a"), name("hospital-b")],
                secure_aggregation: true,
                dp: Some(DpBudget::new(eps, 1e-5).unwrap()),
            },
        )
    };
    vec![
        Entry::new(
            at("2026-06-01T09:00:00Z"),
            Event::AgreementRecorded {
                agreement: agreement.id().clone(),
                version: agreement.version(),
                hash: agreement.hash(),
            },
        ),
        Entry::new(
            request.now,
            Event::JobAdmitted(Admission::new(job(), agreement.hash(), &request)),
        ),
        round(1, 0.61, "2026-06-01T10:01:00Z"),
        round(2, 0.93, "2026-06-01T10:02:00Z"),
        Entry::new(
            at("2026-06-01T10:03:00Z"),
            Event::PrivacySpend {
                job: job(),
                agreement: agreement.hash(),
                spent: DpBudget::new(0.93, 1e-5).unwrap(),
                total: DpBudget::new(0.93, 1e-5).unwrap(),
            },
        ),
        Entry::new(
            at("2026-06-01T10:04:00Z"),
            Event::ModelExport {
                job: job(),
                party: name("admin"),
                dp_trained: true,
            },
        ),
    ]
}

#[test]
fn an_audit_log_is_verified_shown_proved_and_reported() {
    let dir = federation();
    let d = dir.path();
    sign_all(d, "agreement.toml");
    let agreement = Agreement::load(&d.join("agreement.toml")).unwrap();
    let entries = job_entries(&agreement);
    write_log(d, &entries, "log.jsonl", Some((4, "node-head.json")));

    let out = ok(
        d,
        &[
            "audit",
            "verify",
            "log.jsonl",
            "--agreement",
            "agreement.toml",
            "--head",
            "node-head.json",
        ],
    );
    assert!(
        out.contains("verified: 6 entries of coordinator coordinator's log"),
        "{out}"
    );
    assert!(out.contains("7 signed heads checked (1 given)"), "{out}");
    ok(
        d,
        &[
            "audit",
            "verify",
            "log.jsonl",
            "--cert",
            "certs/coordinator.pem",
        ],
    );
    // Without a trusted key it still verifies, and says whose word the key is.
    let o = privet(d, &["audit", "verify", "log.jsonl"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("warning: the coordinator's key comes from the log file itself"));
    // A certificate that is not the coordinator's is refused.
    fails(
        d,
        &[
            "audit",
            "verify",
            "log.jsonl",
            "--cert",
            "certs/hospital-a.pem",
        ],
        2,
        "not the coordinator certificate",
    );

    let out = ok(d, &["audit", "show", "log.jsonl", "--job", "job-1"]);
    assert!(
        out.contains("#1     2026-06-01T10:00:00Z  job job-1 admitted"),
        "{out}"
    );
    assert!(
        out.contains("round 2 completed with 2 (hospital-a, hospital-b)"),
        "{out}"
    );
    assert!(
        !out.contains("agreement breast-cancer-study version 1 recorded"),
        "{out}"
    );

    let out = ok(
        d,
        &[
            "audit",
            "prove",
            "log.jsonl",
            "3",
            "--agreement",
            "agreement.toml",
        ],
    );
    assert!(
        out.contains("entry 3: job job-1 round 2 completed"),
        "{out}"
    );
    assert!(out.contains("(3 hashes, leaf to root)"), "{out}");
    assert!(out.contains("verified against root"), "{out}");
    fails(d, &["audit", "prove", "log.jsonl", "6"], 2, "no entry 6");

    ok(
        d,
        &[
            "audit",
            "report",
            "log.jsonl",
            "--job",
            "job-1",
            "--agreement",
            "agreement.toml",
            "--head",
            "node-head.json",
            "--out",
            "report.html",
        ],
    );
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    for expected in [
        "<h1>Data-sharing report: job job-1</h1>",
        "Audit log verified.",
        "Agreement signed by every party.",
        "DUO:0000007 disease specific research (MONDO:0007254); DUO:0000046 non-commercial use only",
        "<td>hospital-a</td><td>data-owner</td>",
        "(epsilon 0.93, delta 1e-5)",
        "Signed tree head",
        "privet audit verify log.jsonl --agreement agreement.toml",
        "to admin (DP-trained)",
    ] {
        assert!(
            html.contains(expected),
            "`{expected}` missing from the report"
        );
    }
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    fails(
        d,
        &[
            "audit",
            "report",
            "log.jsonl",
            "--job",
            "job-9",
            "--agreement",
            "agreement.toml",
            "--out",
            "r.html",
        ],
        2,
        "job job-9 does not appear in the log",
    );
}

#[test]
fn a_truncated_reordered_forked_or_changed_log_is_detected() {
    let dir = federation();
    let d = dir.path();
    sign_all(d, "agreement.toml");
    let agreement = Agreement::load(&d.join("agreement.toml")).unwrap();
    let entries = job_entries(&agreement);
    write_log(d, &entries, "log.jsonl", Some((6, "node-head.json")));
    let text = std::fs::read_to_string(d.join("log.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let verify = |file: &str| {
        vec![
            "audit".to_string(),
            "verify".into(),
            file.into(),
            "--agreement".into(),
            "agreement.toml".into(),
            "--head".into(),
            "node-head.json".into(),
        ]
    };
    let run = |file: &str, code: i32, fragment: &str| {
        let args = verify(file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(d, &args, code, fragment)
    };

    // Truncated: the export stops after four entries (and their heads); the head a node
    // kept says there were six.
    let truncated: Vec<&str> = lines[..9].to_vec();
    std::fs::write(d.join("truncated.jsonl"), truncated.join("\n")).unwrap();
    run(
        "truncated.jsonl",
        1,
        "coordinator coordinator truncated its log: it signed a head of 6 entries, the log now has 4",
    );

    // Reordered: two entry lines swapped.
    let mut reordered = lines.clone();
    reordered.swap(5, 7);
    assert!(reordered[5].starts_with("{\"entry\""));
    std::fs::write(d.join("reordered.jsonl"), reordered.join("\n")).unwrap();
    run(
        "reordered.jsonl",
        1,
        "coordinator coordinator's log is out of order",
    );

    // Changed: a participant removed from a round after the fact.
    let changed = text.replacen("[\"hospital-a\",\"hospital-b\"]", "[\"hospital-a\"]", 1);
    assert_ne!(changed, text);
    std::fs::write(d.join("changed.jsonl"), changed).unwrap();
    run(
        "changed.jsonl",
        1,
        "does not match the head it signed at 2 entries",
    );

    // Forked: the coordinator showed the node a different history of the same length.
    let mut other = entries.clone();
    other[3] = Entry::new(
        other[3].time,
        Event::cancellation("job-1".parse().unwrap(), None, "never happened").unwrap(),
    );
    write_log(d, &other, "fork.jsonl", Some((6, "node-head.json")));
    run("log.jsonl", 1, "coordinator coordinator forked its log");

    // Not a log at all: bad data, with the line.
    std::fs::write(d.join("junk.jsonl"), format!("{}\nnot json\n", lines[0])).unwrap();
    run("junk.jsonl", 3, "junk.jsonl: line 2");
}
