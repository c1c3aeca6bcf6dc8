//! Agreements: parsing, canonical bytes, signatures, amendments and the check.

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use privet_audit::*;
use privet_identity::Name;

fn key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

fn hex_key(i: u8) -> String {
    hex::encode(key(i).verifying_key().as_bytes())
}

fn name(s: &str) -> Name {
    s.parse().unwrap()
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// Parties: coordinator (key 1), admin (operator, key 2), hospital-a/b/c (keys 3-5).
fn text_with(extra_protections: &str, version: u32, previous: Option<Hash>) -> String {
    format!(
        r#"format_version = 1
id = "breast-cancer-study"
version = {version}
{previous}
title = "Breast cancer classifier"
not_before = "2026-01-01T00:00:00Z"
not_after = "2027-01-01T00:00:00Z"
retention_days = 365

[[parties]]
name = "coordinator"
role = "coordinator"
key = "{k1}"

[[parties]]
name = "admin"
role = "operator"
key = "{k2}"

[[parties]]
name = "hospital-a"
role = "data-owner"
key = "{k3}"

[[parties]]
name = "hospital-b"
role = "data-owner"
key = "{k4}"

[[parties]]
name = "hospital-c"
role = "data-owner"
key = "{k5}"

[datasets]
hospital-a = "biopsies 2019-2024"
hospital-b = "biopsies 2020-2024"
hospital-c = "biopsies 2021-2024"

[[purposes]]
term = "DUO:0000007"
disease = "MONDO:0007254"
modifiers = ["DUO:0000046"]

[tasks]
models = ["logreg", "mlp"]
strategies = ["fedavg", "fedprox"]
statistics = true

[protections]
secure_aggregation = true
min_clients_per_round = 3
{extra_protections}
[protections.dp]
epsilon_per_job = 3.0
delta_per_job = 1e-5
epsilon_total = 10.0
delta_total = 1e-4

[protections.export]
parties = ["admin"]
dp_only = true
"#,
        previous = previous
            .map(|h| format!("previous = \"{h}\""))
            .unwrap_or_default(),
        k1 = hex_key(1),
        k2 = hex_key(2),
        k3 = hex_key(3),
        k4 = hex_key(4),
        k5 = hex_key(5),
    )
}

fn text() -> String {
    text_with("", 1, None)
}

fn signed(text: &str) -> Agreement {
    let mut a = Agreement::parse(text, None).unwrap();
    for i in 1..=5 {
        let s = a.sign(&key(i)).unwrap();
        a.add_signature(s);
    }
    assert!(a.fully_signed());
    a
}

/// The agreement text with every party's signature appended, as `privet agreement sign` does.
fn signed_text(text: &str) -> String {
    let a = Agreement::parse(text, None).unwrap();
    let mut out = text.to_string();
    for i in 1..=5 {
        out.push_str(&a.sign(&key(i)).unwrap().toml_block());
    }
    out
}

fn purpose(permission: &str, disease: Option<&str>, modifiers: &[&str]) -> Purpose {
    Purpose::new(
        permission.parse().unwrap(),
        disease.map(|d| d.parse().unwrap()),
        modifiers.iter().map(|m| m.parse().unwrap()),
    )
    .unwrap()
}

fn job(a: &Agreement) -> JobRequest {
    JobRequest {
        agreement: Some(a.hash()),
        purpose: purpose("DUO:0000007", Some("MONDO:0007254"), &["DUO:0000046"]),
        task: Task::Train {
            model: ModelKind::Logreg,
            strategy: StrategyKind::FedAvg,
        },
        coordinator: name("coordinator"),
        operator: Some(name("admin")),
        nodes: vec![name("hospital-a"), name("hospital-b"), name("hospital-c")],
        secure_aggregation: true,
        dp: Some(DpBudget::new(3.0, 1e-5).unwrap()),
        min_clients_per_round: 3,
        now: t("2026-06-01T00:00:00Z"),
        spent: DpBudget::ZERO,
    }
}

#[test]
fn a_fully_signed_agreement_permits_a_covered_job() {
    let a = Agreement::parse(&signed_text(&text()), None).unwrap();
    assert!(a.fully_signed());
    assert_eq!(a.signature_status().signed.len(), 5);
    a.permits(&job(&a)).unwrap();
    // A narrower purpose (HMB covered? no: the agreement is disease specific) is refused, the
    // same disease with an extra declared modifier is fine.
    let mut j = job(&a);
    j.purpose = purpose(
        "DUO:0000007",
        Some("MONDO:0007254"),
        &["DUO:0000046", "DUO:0000021"],
    );
    a.permits(&j).unwrap();
}

#[test]
fn the_canonical_bytes_ignore_layout_comments_and_order() {
    let a = Agreement::parse(&text(), None).unwrap();
    // The same agreement, written differently: comments, reordered keys and parties, inline
    // tables, integers for floats, a TOML datetime instead of a string.
    let parties: Vec<String> = [
        ("hospital-c", "data-owner", 5),
        ("admin", "operator", 2),
        ("hospital-a", "data-owner", 3),
        ("coordinator", "coordinator", 1),
        ("hospital-b", "data-owner", 4),
    ]
    .iter()
    .map(|(n, r, k)| {
        format!(
            "  {{ key = \"{}\", role = \"{r}\", name = \"{n}\" }},",
            hex_key(*k)
        )
    })
    .collect();
    let other = format!(
        r#"# a comment
version = 1
format_version = 1
title = 'Breast cancer classifier'
id = "breast-cancer-study"
not_after = 2027-01-01T00:00:00Z
not_before = "2026-01-01T00:00:00Z"
retention_days = 365
parties = [
{}
]
purposes = [ {{ modifiers = ["DUO:0000046"], disease = "MONDO:0007254", term = "DUO:0000007" }} ]
[datasets]
hospital-c = "biopsies 2021-2024"
hospital-b = "biopsies 2020-2024"
hospital-a = "biopsies 2019-2024"
[protections]
export = {{ dp_only = true, parties = ["admin"] }}
min_clients_per_round = 3
secure_aggregation = true
dp = {{ delta_total = 1e-4, epsilon_total = 10, delta_per_job = 0.00001, epsilon_per_job = 3 }}
[tasks]
strategies = ["fedprox", "fedavg"]
statistics = true
models = ["mlp", "logreg"]
psi = false
"#,
        parties.join("\n")
    );
    let b = Agreement::parse(&other, None).unwrap();
    assert_eq!(a.canonical_bytes(), b.canonical_bytes());
    assert_eq!(a.hash(), b.hash());
    // So a signature made on one verifies on the other.
    let mut b = b;
    for i in 1..=5 {
        b.add_signature(a.sign(&key(i)).unwrap());
    }
    assert!(b.fully_signed());
}

#[test]
fn a_tampered_byte_breaks_every_signature() {
    let good = signed_text(&text());
    for (from, to) in [
        ("epsilon_total = 10.0", "epsilon_total = 11.0"),
        ("biopsies 2019-2024", "biopsies 2019-2025"),
        ("min_clients_per_round = 3", "min_clients_per_round = 2"),
        ("DUO:0000046", "DUO:0000045"),
        ("2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"),
    ] {
        let tampered = good.replacen(from, to, 1);
        assert_ne!(tampered, good);
        let a = Agreement::parse(&tampered, None).unwrap();
        let status = a.signature_status();
        assert_eq!(status.invalid.len(), 5, "{from}");
        assert!(!a.fully_signed());
        let err = a.require_fully_signed().unwrap_err().to_string();
        assert!(err.contains("does not match this text"), "{err}");
        assert!(!err.contains('\n'));
        let refusal = a.permits(&job(&a)).unwrap_err();
        assert_eq!(refusal.code(), "bad_signature", "{refusal}");
    }
    // A comment or blank line changes nothing.
    let commented = good.replacen("[tasks]", "# what may be done\n\n[tasks]", 1);
    assert!(Agreement::parse(&commented, None).unwrap().fully_signed());
}

#[test]
fn a_missing_signature_is_named() {
    let mut a = Agreement::parse(&text(), None).unwrap();
    for i in [1, 2, 3, 5] {
        let s = a.sign(&key(i)).unwrap();
        a.add_signature(s);
    }
    assert_eq!(a.signature_status().missing, vec![name("hospital-b")]);
    let err = a.require_fully_signed().unwrap_err().to_string();
    assert!(err.contains("not signed by hospital-b"), "{err}");
    let r = a.permits(&job(&a)).unwrap_err();
    assert_eq!(
        r,
        Refusal::Unsigned {
            agreement: name("breast-cancer-study"),
            party: name("hospital-b")
        }
    );
    assert_eq!(
        r.to_string(),
        "agreement breast-cancer-study is not signed by hospital-b"
    );
}

#[test]
fn a_wrong_key_cannot_sign_or_pass_for_a_party() {
    let a = Agreement::parse(&text(), None).unwrap();
    let err = a.sign(&key(9)).unwrap_err();
    assert!(matches!(err, AuditError::NotAParty { .. }), "{err}");
    // hospital-a's signature filed under hospital-b's name does not verify.
    let mut b = signed(&text());
    let mut forged = b.sign(&key(3)).unwrap();
    forged.party = name("hospital-b");
    b.add_signature(forged);
    assert_eq!(b.signature_status().invalid, vec![name("hospital-b")]);
    // A signature by a stranger in the file is refused when parsing.
    let stranger = format!(
        "{}\n[[signatures]]\nparty = \"mallory\"\nsignature = \"{}\"\n",
        text(),
        "00".repeat(64)
    );
    let err = Agreement::parse(&stranger, None).unwrap_err().to_string();
    assert!(err.contains("mallory, who is not a party"), "{err}");
}

#[test]
fn the_validity_window_is_checked() {
    let a = signed(&text());
    let mut j = job(&a);
    j.now = t("2025-12-31T23:59:59Z");
    assert_eq!(a.permits(&j).unwrap_err().code(), "not_yet_valid");
    j.now = t("2026-01-01T00:00:00Z");
    a.permits(&j).unwrap();
    j.now = t("2027-01-01T00:00:00Z");
    let r = a.permits(&j).unwrap_err();
    assert_eq!(r.code(), "expired");
    assert_eq!(
        r.to_string(),
        "agreement breast-cancer-study expired at 2027-01-01T00:00:00Z"
    );
}

#[test]
fn each_refusal_is_specific() {
    let a = signed(&text());
    type Change = fn(&mut JobRequest);
    let cases: Vec<(Change, &str)> = vec![
        (
            |j| j.purpose = purpose("DUO:0000006", None, &["DUO:0000046"]),
            "purpose_not_permitted",
        ),
        (
            |j| j.purpose = purpose("DUO:0000007", Some("MONDO:0005148"), &["DUO:0000046"]),
            "purpose_not_permitted",
        ),
        (
            |j| j.purpose = purpose("DUO:0000007", Some("MONDO:0007254"), &[]),
            "purpose_not_permitted",
        ),
        (
            |j| {
                j.task = Task::Train {
                    model: ModelKind::Cnn,
                    strategy: StrategyKind::FedAvg,
                }
            },
            "task_not_permitted",
        ),
        (
            |j| {
                j.task = Task::Train {
                    model: ModelKind::Mlp,
                    strategy: StrategyKind::Krum,
                }
            },
            "task_not_permitted",
        ),
        (|j| j.task = Task::Psi, "task_not_permitted"),
        (|j| j.nodes.push(name("hospital-z")), "not_a_party"),
        (|j| j.nodes.push(name("admin")), "not_a_party"),
        (|j| j.coordinator = name("hospital-a"), "not_a_party"),
        (|j| j.operator = Some(name("eve")), "not_a_party"),
        (|j| j.secure_aggregation = false, "secagg_required"),
        (|j| j.dp = None, "dp_required"),
        (
            |j| j.dp = Some(DpBudget::new(3.5, 1e-5).unwrap()),
            "over_per_job_budget",
        ),
        (
            |j| j.dp = Some(DpBudget::new(1.0, 1e-4).unwrap()),
            "over_per_job_budget",
        ),
        (
            |j| j.spent = DpBudget::new(8.0, 0.0).unwrap(),
            "over_total_budget",
        ),
        (
            |j| j.spent = DpBudget::new(0.0, 9.5e-5).unwrap(),
            "over_total_budget",
        ),
        (|j| j.min_clients_per_round = 2, "too_few_clients"),
        (|j| j.nodes.truncate(2), "too_few_clients"),
        (|j| j.agreement = Some(Hash([7; 32])), "other_agreement"),
    ];
    for (change, code) in cases {
        let mut j = job(&a);
        change(&mut j);
        let r = a.permits(&j).unwrap_err();
        assert_eq!(r.code(), code, "{r}");
        let line = r.to_string();
        assert!(!line.contains('\n') && !line.is_empty());
    }
    // Exactly at the total is allowed: 7 spent + 3 = 10.
    let mut j = job(&a);
    j.spent = DpBudget::new(7.0, 0.0).unwrap();
    a.permits(&j).unwrap();
    // Sums that round (0.1 + 0.2 > 0.3 in binary) do not refuse a job at the limit.
    let mut j = job(&a);
    j.spent = DpBudget::new(6.9 + 0.1, 0.0).unwrap();
    a.permits(&j).unwrap();
    let r = {
        let mut j = job(&a);
        j.spent = DpBudget::new(8.0, 0.0).unwrap();
        a.permits(&j).unwrap_err().to_string()
    };
    assert!(r.contains("already spent") && r.contains("total"), "{r}");
}

#[test]
fn export_follows_the_agreement() {
    let a = signed(&text());
    let now = t("2026-06-01T00:00:00Z");
    let req = |party: &str, dp_trained| ExportRequest {
        party: name(party),
        dp_trained,
        now,
    };
    a.permits_export(&req("admin", true)).unwrap();
    let r = a.permits_export(&req("admin", false)).unwrap_err();
    assert_eq!(r.code(), "export_not_permitted");
    assert!(r.to_string().contains("differential privacy"), "{r}");
    let r = a.permits_export(&req("hospital-a", true)).unwrap_err();
    assert!(r.to_string().contains("hospital-a"), "{r}");
}

#[test]
fn amendments_name_the_previous_version() {
    let v1 = signed(&text());
    // Version 2 without `previous` does not even parse, and says where.
    let err = Agreement::parse(&text_with("", 2, None), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3") && err.contains("previous"), "{err}");
    // With the wrong hash, it parses but is no amendment of version 1.
    let wrong = Agreement::parse(&text_with("", 2, Some(Hash([1; 32]))), None).unwrap();
    let err = wrong.check_amends(&v1).unwrap_err().to_string();
    assert!(
        err.contains("names previous") && err.contains(&v1.hash().to_hex()),
        "{err}"
    );
    // With the right one it is.
    let v2 = Agreement::parse(&text_with("", 2, Some(v1.hash())), None).unwrap();
    v2.check_amends(&v1).unwrap();
    assert_ne!(v2.hash(), v1.hash());
    // v1's signatures do not carry over to v2.
    let mut v2_with_old = v2.clone();
    for s in v1.signatures() {
        v2_with_old.add_signature(s.clone());
    }
    assert!(!v2_with_old.fully_signed());
    // Version 3 cannot amend version 1 directly; version 1 names no previous.
    let v3 = Agreement::parse(&text_with("", 3, Some(v1.hash())), None).unwrap();
    assert!(v3.check_amends(&v1).is_err());
    assert!(Agreement::parse(&text_with("", 1, Some(v1.hash())), None).is_err());
}

#[test]
fn malformed_agreements_get_one_line_with_the_place() {
    let good = text();
    let cases: Vec<(String, &str)> = vec![
        (good.replace("format_version = 1\n", ""), "format_version"),
        (
            good.replace("format_version = 1", "format_version = 2"),
            "format_version 2 is not supported",
        ),
        (
            good.replace(
                "retention_days = 365",
                "retention_days = 365\ncolour = \"red\"",
            ),
            "colour",
        ),
        (good.replace("DUO:0000046", "DUO:0000999"), "DUO:0000999"),
        (
            good.replace("DUO:0000046", "DUO:0000042"),
            "a permission, not a modifier",
        ),
        (
            good.replace("disease = \"MONDO:0007254\"\n", ""),
            "needs a disease term",
        ),
        (
            good.replace("\"mlp\"", "\"transformer\""),
            "unknown model kind",
        ),
        (
            good.replace("role = \"operator\"", "role = \"auditor\""),
            "unknown role",
        ),
        (
            good.replace("name = \"admin\"", "name = \"../admin\""),
            "invalid name",
        ),
        (good.replace(&hex_key(2), &hex_key(3)), "the same key"),
        (good.replace(&hex_key(2), "abcd"), "64 hex characters"),
        (
            good.replace("name = \"admin\"", "name = \"hospital-a\""),
            "listed twice",
        ),
        (
            good.replace("hospital-c = \"biopsies 2021-2024\"\n", ""),
            "hospital-c has no entry",
        ),
        (
            good.replace(
                "hospital-c = \"biopsies",
                "admin = \"x\"\nhospital-c = \"biopsies",
            ),
            "not a data owner",
        ),
        (
            good.replace(
                "not_after = \"2027-01-01T00:00:00Z\"",
                "not_after = \"2025-01-01T00:00:00Z\"",
            ),
            "later than not_before",
        ),
        (
            good.replace(
                "not_before = \"2026-01-01T00:00:00Z\"",
                "not_before = \"2026-01-01T00:00:00+02:00\"",
            ),
            "UTC",
        ),
        (
            good.replace("epsilon_per_job = 3.0", "epsilon_per_job = 30.0"),
            "cannot exceed the total",
        ),
        (
            good.replace("epsilon_per_job = 3.0", "epsilon_per_job = -1.0"),
            "epsilon",
        ),
        (
            good.replace("delta_total = 1e-4", "delta_total = 1.5"),
            "delta",
        ),
        (
            good.replace("min_clients_per_round = 3", "min_clients_per_round = 4"),
            "only 3 data owners",
        ),
        (
            good.replace("parties = [\"admin\"]", "parties = [\"eve\"]"),
            "eve is not a party",
        ),
        (
            good.replace("[tasks]\nmodels = [\"logreg\", \"mlp\"]\n", "[tasks]\n"),
            "together",
        ),
        (
            good.replace("title = \"Breast cancer classifier\"", "title = \"\""),
            "title is empty",
        ),
        (
            good.replace("role = \"coordinator\"", "role = \"data-owner\""),
            "coordinator party",
        ),
        (
            good.replace("\nversion = 1", "\nversion = 0"),
            "version starts at 1",
        ),
        ("not toml at all [".to_string(), "line 1"),
    ];
    for (text, expected) in cases {
        let err = Agreement::parse(&text, None).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // Semantic errors carry the line and column of the value.
    let err = Agreement::parse(&good.replace("DUO:0000046", "DUO:0000999"), None)
        .unwrap_err()
        .to_string();
    let line = good
        .lines()
        .position(|l| l.contains("DUO:0000046"))
        .unwrap()
        + 1;
    assert!(err.starts_with(&format!("line {line}, column ")), "{err}");
    // Too big.
    let big = format!("{good}\n# {}\n", "x".repeat(MAX_AGREEMENT_BYTES as usize));
    assert!(
        Agreement::parse(&big, None)
            .unwrap_err()
            .to_string()
            .contains("limit")
    );
}

#[test]
fn the_template_parses_and_names_its_parties() {
    let parties: Vec<Party> = [
        ("coordinator", PartyRole::Coordinator, 1),
        ("admin", PartyRole::Operator, 2),
        ("hospital-a", PartyRole::DataOwner, 3),
        ("hospital-b", PartyRole::DataOwner, 4),
    ]
    .iter()
    .map(|(n, role, k)| Party {
        name: name(n),
        role: *role,
        key: key(*k).verifying_key(),
    })
    .collect();
    let text = Agreement::template(&parties, t("2026-01-01T00:00:00Z"), 30);
    let a = Agreement::parse(&text, None).unwrap();
    assert_eq!(a.body().parties.len(), 4);
    assert_eq!(a.body().not_after, t("2026-01-31T00:00:00Z"));
    assert_eq!(a.body().protections.min_clients_per_round, 2);
    assert!(a.body().protections.export.parties.contains(&name("admin")));
    assert!(!a.fully_signed());
}

#[test]
fn parties_can_be_given_by_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    privet_identity::init_ca(&certs, "test", 30, false).unwrap();
    for (n, role) in [
        ("coordinator", privet_identity::Role::Coordinator),
        ("admin", privet_identity::Role::Operator),
        ("hospital-a", privet_identity::Role::Node),
        ("hospital-b", privet_identity::Role::Node),
        ("hospital-c", privet_identity::Role::Node),
    ] {
        privet_identity::issue(&certs, &name(n), role, &[], 30, false).unwrap();
    }
    let text = Agreement::template(&[], t("2026-01-01T00:00:00Z"), 365);
    let path = dir.path().join("agreement.toml");
    std::fs::write(&path, &text).unwrap();
    let a = Agreement::load(&path).unwrap();
    let files = privet_identity::TlsFiles::in_dir(&certs, &name("hospital-a"));
    let hospital_key = privet_identity::load_signing_key(&files).unwrap();
    assert_eq!(
        a.body().party("hospital-a").unwrap().key,
        hospital_key.verifying_key()
    );
    // A certificate of another party, or of the wrong role, is refused.
    std::fs::write(
        &path,
        text.replacen("certs/hospital-a.pem", "certs/hospital-b.pem", 1),
    )
    .unwrap();
    let err = Agreement::load(&path).unwrap_err().to_string();
    assert!(err.contains("is the certificate of hospital-b"), "{err}");
    std::fs::write(
        &path,
        text.replacen("certs/admin.pem", "certs/hospital-c.pem", 1),
    )
    .unwrap();
    let err = Agreement::load(&path).unwrap_err().to_string();
    assert!(err.contains("agreement.toml: line"), "{err}");
    // Without a directory, a certificate path cannot be resolved.
    assert!(Agreement::parse(&text, None).is_err());
}

#[test]
fn a_node_with_its_own_copy_and_count_refuses_what_the_coordinator_admits() {
    // The coordinator holds version 1 and has counted 5 epsilon spent; the node holds the same
    // version but counted 8 (it also served jobs the coordinator's count missed), so its check
    // at egress refuses the round the coordinator admitted.
    let coordinator_copy = signed(&text());
    let node_copy = signed(&text());
    let mut at_coordinator = job(&coordinator_copy);
    at_coordinator.spent = DpBudget::new(5.0, 0.0).unwrap();
    coordinator_copy.permits(&at_coordinator).unwrap();
    let mut at_node = at_coordinator.clone();
    at_node.spent = DpBudget::new(8.0, 0.0).unwrap();
    assert_eq!(
        node_copy.permits(&at_node).unwrap_err().code(),
        "over_total_budget"
    );
    // A node that signed a stricter amendment refuses a job naming the older version.
    let v2_text = text_with("", 2, Some(coordinator_copy.hash()))
        .replace("epsilon_per_job = 3.0", "epsilon_per_job = 1.0");
    let v2 = signed(&v2_text);
    let r = v2.permits(&at_coordinator).unwrap_err();
    assert_eq!(r.code(), "other_agreement", "{r}");
    // And the job itself, re-checked against version 2, is over its per-job limit.
    let mut under_v2 = at_coordinator.clone();
    under_v2.agreement = Some(v2.hash());
    assert_eq!(
        v2.permits(&under_v2).unwrap_err().code(),
        "over_per_job_budget"
    );
}
