//! The commented agreement file `privet agreement new` writes.

use std::fmt::Write;

use crate::Timestamp;
use crate::agreement::{Party, PartyRole};

/// Seconds in a day.
const DAY: i64 = 86_400;

pub(crate) fn render(parties: &[Party], not_before: Timestamp, days: u32) -> String {
    let not_after = Timestamp::from_unix(not_before.unix() + i64::from(days.max(1)) * DAY)
        .unwrap_or(not_before);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"# A privet data-sharing agreement. Every party signs it (`privet agreement sign`), and
# privet runs a job only when the agreement is signed by all, valid, and covers the job's
# purpose, task, participants and protections. What is signed is what this file says, not its
# layout: comments and key order can change without breaking a signature, anything else cannot.
format_version = 1

# The agreement's id (letters, digits, '-', '_', '.') and version. An amendment is a new file
# with the same id, the next version and `previous` = the hash of the version it replaces
# (`privet agreement show` prints it); every party signs it again.
id = "breast-cancer-study"
version = 1
# previous = "<64 hex characters>"
title = "Federated breast-cancer classifier across partner hospitals"

# Valid from not_before (included) to not_after (excluded), RFC 3339 in UTC.
not_before = {not_before}
not_after = {not_after}
# How long outputs (models, statistics, reports) may be kept, in days.
retention_days = 365

# Each party: its name (its certificate's name), its role (data-owner, coordinator or operator)
# and its Ed25519 key: `key` (64 hex characters) or `certificate` (a PEM file, relative to
# this file; its name and role must match).
"#
    );
    if parties.is_empty() {
        for (name, role) in [
            ("coordinator", PartyRole::Coordinator),
            ("admin", PartyRole::Operator),
            ("hospital-a", PartyRole::DataOwner),
            ("hospital-b", PartyRole::DataOwner),
            ("hospital-c", PartyRole::DataOwner),
        ] {
            let _ = write!(
                s,
                "[[parties]]\nname = \"{name}\"\nrole = \"{role}\"\ncertificate = \"certs/{name}.pem\"\n\n"
            );
        }
    } else {
        for p in parties {
            let _ = write!(
                s,
                "[[parties]]\nname = \"{}\"\nrole = \"{}\"\nkey = \"{}\"\n\n",
                p.name,
                p.role,
                hex::encode(p.key.as_bytes())
            );
        }
    }
    let owners: Vec<String> = if parties.is_empty() {
        ["hospital-a", "hospital-b", "hospital-c"]
            .map(String::from)
            .to_vec()
    } else {
        parties
            .iter()
            .filter(|p| p.role == PartyRole::DataOwner)
            .map(|p| p.name.to_string())
            .collect()
    };
    let exporters: Vec<String> = if parties.is_empty() {
        vec!["\"admin\"".into()]
    } else {
        parties
            .iter()
            .filter(|p| p.role == PartyRole::Operator)
            .map(|p| format!("\"{}\"", p.name))
            .collect()
    };
    s.push_str(
        "# What each data owner contributes, by node name (every data owner needs a line).\n[datasets]\n",
    );
    for o in &owners {
        let _ = writeln!(
            s,
            "{o} = \"Describe the records: source, period, number of rows, columns used\""
        );
    }
    let min_clients = owners.len().clamp(1, 3);
    let _ = write!(
        s,
        r#"
# Permitted purposes as GA4GH DUO terms (https://github.com/EBISPOT/DUO). A permission:
#   DUO:0000004 no restriction, DUO:0000042 general research use,
#   DUO:0000006 health or medical or biomedical research,
#   DUO:0000007 disease specific research (needs `disease`, e.g. MONDO:0007254 breast cancer),
#   DUO:0000011 population origins or ancestry research only;
# and modifiers every job must declare it meets, e.g. DUO:0000046 non-commercial use only,
#   DUO:0000045 not for profit organisation use only, DUO:0000021 ethics approval required,
#   DUO:0000019 publication required, DUO:0000044 population origins or ancestry research
#   prohibited (`privet agreement show` prints the labels; unknown ids are refused).
[[purposes]]
term = "DUO:0000007"
disease = "MONDO:0007254"
modifiers = ["DUO:0000046"]

# Permitted tasks: model kinds and strategies for training (logreg, mlp, cnn; fedavg, fedprox,
# fedavgm, fedadam, fedyogi, fedadagrad, median, trimmed_mean, krum, multikrum), DP
# statistics, private set intersection (psi) and private join and compute (pjc).
[tasks]
models = ["logreg", "mlp"]
strategies = ["fedavg", "fedprox"]
statistics = true
psi = false
pjc = false

# Protections every job must have.
[protections]
secure_aggregation = true
min_clients_per_round = {min_clients}

# Differential privacy: the most one job may spend, and all jobs together (delete the section
# to not require DP).
[protections.dp]
epsilon_per_job = 3.0
delta_per_job = 1e-5
epsilon_total = 10.0
delta_total = 1e-4

# Who may take a trained model out of the federation, and whether only DP-trained ones.
[protections.export]
parties = [{exporters}]
dp_only = true

# Signatures are added below by `privet agreement sign`; they do not change what is signed.
"#,
        exporters = exporters.join(", ")
    );
    s
}
