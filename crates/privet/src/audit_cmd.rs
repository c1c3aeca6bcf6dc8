//! `privet audit`: offline checks of an exported audit log.
//!
//! * `privet audit export --out LOG` downloads the coordinator's log (operators only).
//! * `privet audit verify LOG [--head HEAD.json]... [--agreement FILE | --cert CERT.pem]`
//!   checks every entry against the coordinator's signed heads (and heads kept by nodes or
//!   parties): exit 0 only if nothing was changed, reordered, removed or forked.
//! * `privet audit show LOG [--job JOB]` lists the entries and heads.
//! * `privet audit prove LOG ENTRY` prints the inclusion proof of one entry under the latest
//!   signed head and verifies it.
//! * `privet audit report LOG --job JOB --agreement FILE --out report.html` writes a
//!   self-contained HTML report for a data-protection officer.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::out::outln;
use anyhow::Result;
use clap::Subcommand;
use privet_audit::{
    Admission, Agreement, AuditError, Entry, Event, Hash, JobId, LogFile, PartyRole,
    SignedTreeHead, Verified,
};
use privet_identity::{Name, VerifyingKey};

/// Offline checks of an exported audit log.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Download the coordinator's audit log (entries and signed heads) to a file.
    Export {
        /// The log file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        remote: crate::net_cmd::Remote,
    },
    /// Verify a log against its signed heads (exit 0 only if its history is intact).
    Verify {
        /// The exported log.
        log: PathBuf,
        /// A signed head kept by a node or a party (head file); repeat for several.
        #[arg(long = "head", value_name = "HEAD.json")]
        heads: Vec<PathBuf>,
        #[command(flatten)]
        trust: Trust,
    },
    /// List a log's entries and signed heads.
    Show {
        /// The exported log.
        log: PathBuf,
        /// Only the entries of this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Print and verify the inclusion proof of one entry under the latest signed head.
    Prove {
        /// The exported log.
        log: PathBuf,
        /// The entry's index (as `privet audit show` numbers them).
        entry: u64,
        #[command(flatten)]
        trust: Trust,
    },
    /// Write a self-contained HTML report of one job for a data-protection officer.
    Report {
        /// The exported log.
        log: PathBuf,
        /// The job.
        #[arg(long)]
        job: String,
        /// The agreement the job ran under (its coordinator's key checks the log).
        #[arg(long)]
        agreement: PathBuf,
        /// A signed head kept by a node or a party; repeat for several.
        #[arg(long = "head", value_name = "HEAD.json")]
        heads: Vec<PathBuf>,
        /// The report to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where the coordinator's key comes from.
#[derive(Debug, clap::Args)]
pub struct Trust {
    /// Take the coordinator's key from this agreement (its coordinator party).
    #[arg(long, conflicts_with = "cert")]
    agreement: Option<PathBuf>,
    /// Take the coordinator's key from its certificate.
    #[arg(long)]
    cert: Option<PathBuf>,
}

/// Runs `privet audit ...`.
pub fn run(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Export { out, remote } => crate::net_cmd::export_audit(&out, &remote),
        AuditCommand::Verify { log, heads, trust } => verify(&log, &heads, &trust),
        AuditCommand::Show { log, job } => show(&log, job.as_deref()),
        AuditCommand::Prove { log, entry, trust } => prove(&log, entry, &trust),
        AuditCommand::Report {
            log,
            job,
            agreement,
            heads,
            out,
        } => report(&log, &job, &agreement, &heads, &out),
    }
}

fn coordinator_key_in(agreement: &Agreement, coordinator: &Name) -> Result<VerifyingKey> {
    match agreement.body().party(coordinator.as_str()) {
        Some(p) if p.role == PartyRole::Coordinator => Ok(p.key),
        _ => Err(AuditError::Invalid(format!(
            "agreement {} has no coordinator party named {coordinator}, whose log this is",
            agreement.id()
        ))
        .into()),
    }
}

/// The trusted key, or `None` (with a warning) when only the log's own claim is available.
fn trusted_key(trust: &Trust, coordinator: &Name) -> Result<Option<VerifyingKey>> {
    if let Some(path) = &trust.agreement {
        let a = Agreement::load(path)?;
        return coordinator_key_in(&a, coordinator).map(Some);
    }
    if let Some(path) = &trust.cert {
        let certs = privet_identity::load_certs(path)?;
        let leaf = certs
            .first()
            .ok_or_else(|| AuditError::Invalid(format!("{}: no certificate", path.display())))?;
        let id = privet_identity::identity_of(leaf.as_ref())?;
        if id.name != *coordinator || id.role != privet_identity::Role::Coordinator {
            return Err(AuditError::Invalid(format!(
                "{} is the {} certificate of {}, not the coordinator certificate of {coordinator}",
                path.display(),
                id.role,
                id.name
            ))
            .into());
        }
        return Ok(Some(privet_identity::certified_key(leaf.as_ref())?));
    }
    eprintln!(
        "warning: the coordinator's key comes from the log file itself; pass --agreement or --cert to check whose key it is"
    );
    Ok(None)
}

fn load_heads(paths: &[PathBuf]) -> Result<Vec<SignedTreeHead>> {
    let mut out = Vec::new();
    for p in paths {
        let (head, _claimed) = privet_audit::load_head(p)?;
        out.push(head);
    }
    Ok(out)
}

fn verified(
    log: &LogFile,
    key: Option<&VerifyingKey>,
    heads: &[SignedTreeHead],
) -> Result<Verified> {
    Ok(log.verify(key, heads)?)
}

fn verify(path: &Path, head_files: &[PathBuf], trust: &Trust) -> Result<()> {
    let log = LogFile::load(path)?;
    let key = trusted_key(trust, &log.coordinator)?;
    let heads = load_heads(head_files)?;
    let v = verified(&log, key.as_ref(), &heads)?;
    outln!(
        "verified: {} entries of coordinator {}'s log, root {}",
        v.size,
        log.coordinator,
        v.root
    );
    outln!(
        "latest signed head: {} entries, root {}, signed {}; {} signed heads checked ({} given)",
        v.latest.head.size,
        v.latest.head.root,
        v.latest.head.time,
        v.heads_checked,
        heads.len()
    );
    if v.unsigned_tail > 0 {
        eprintln!(
            "warning: the last {} entries come after the latest signed head: no signature covers them yet",
            v.unsigned_tail
        );
    }
    Ok(())
}

fn show(path: &Path, job: Option<&str>) -> Result<()> {
    let log = LogFile::load(path)?;
    let job: Option<JobId> = job.map(str::parse).transpose()?;
    outln!(
        "audit log of coordinator {} (key {}...)",
        log.coordinator,
        &hex(log.key.as_bytes())[..16]
    );
    for (index, entry) in &log.entries {
        if job.is_some() && entry.event.job() != job.as_ref() {
            continue;
        }
        outln!("#{index:<5} {}  {}", entry.time, entry.event.describe());
    }
    for h in &log.heads {
        outln!(
            "head: {} entries, root {}, signed {}",
            h.head.size,
            h.head.root,
            h.head.time
        );
    }
    Ok(())
}

fn prove(path: &Path, index: u64, trust: &Trust) -> Result<()> {
    let log = LogFile::load(path)?;
    let key = trusted_key(trust, &log.coordinator)?;
    let v = verified(&log, key.as_ref(), &[])?;
    let size = v.latest.head.size;
    let entry = log
        .entries
        .get(usize::try_from(index).unwrap_or(usize::MAX))
        .map(|(_, e)| e)
        .ok_or_else(|| AuditError::Invalid(format!("no entry {index}: the log has {}", v.size)))?;
    if index >= size {
        return Err(AuditError::Proof(format!(
            "entry {index} comes after the latest signed head ({size} entries): no signature covers it yet"
        ))
        .into());
    }
    let proof = log.tree().inclusion_proof(index, size)?;
    outln!("entry {index}: {}", entry.event.describe());
    outln!("leaf hash: {}", entry.leaf_hash());
    outln!(
        "inclusion proof in the log's first {size} entries ({} hashes, leaf to root):",
        proof.path.len()
    );
    for h in &proof.path {
        outln!("  {h}");
    }
    v.latest.verify_inclusion(entry, &proof)?;
    outln!(
        "verified against root {} signed by coordinator {} at {}",
        v.latest.head.root,
        log.coordinator,
        v.latest.head.time
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct JobEntries<'a> {
    admission: Option<(u64, &'a Entry, &'a Admission)>,
    all: Vec<(u64, &'a Entry)>,
}

fn job_entries<'a>(log: &'a LogFile, job: &JobId) -> JobEntries<'a> {
    let mut admission = None;
    let mut all = Vec::new();
    for (index, entry) in &log.entries {
        if entry.event.job() != Some(job) {
            continue;
        }
        if let (None, Event::JobAdmitted(a)) = (&admission, &entry.event) {
            admission = Some((*index, entry, a));
        }
        all.push((*index, entry));
    }
    JobEntries { admission, all }
}

fn report(
    log_path: &Path,
    job: &str,
    agreement_path: &Path,
    head_files: &[PathBuf],
    out: &Path,
) -> Result<()> {
    let job: JobId = job.parse()?;
    let log = LogFile::load(log_path)?;
    let agreement = Agreement::load(agreement_path)?;
    let key = coordinator_key_in(&agreement, &log.coordinator)?;
    let heads = load_heads(head_files)?;
    let v = verified(&log, Some(&key), &heads)?;
    let entries = job_entries(&log, &job);
    if entries.all.is_empty() {
        return Err(AuditError::Invalid(format!("job {job} does not appear in the log")).into());
    }
    if let Some((_, _, a)) = entries.admission
        && a.agreement != agreement.hash()
    {
        return Err(AuditError::Invalid(format!(
            "job {job} was admitted under agreement {}, but {} is {}: give the version the job ran under",
            a.agreement,
            agreement_path.display(),
            agreement.hash()
        ))
        .into());
    }
    let log_bytes = privet_files::read_limited(log_path, privet_audit::MAX_LOG_BYTES)?;
    let agreement_bytes =
        privet_files::read_limited(agreement_path, privet_audit::MAX_AGREEMENT_BYTES)?;
    let html = render_report(&ReportInput {
        job: &job,
        log: &log,
        verified: &v,
        heads_given: heads.len(),
        agreement: &agreement,
        entries: &entries,
        log_name: &file_name(log_path),
        agreement_name: &file_name(agreement_path),
        log_sha256: Hash::of(&[&log_bytes]),
        agreement_sha256: Hash::of(&[&agreement_bytes]),
        generated: crate::agreement_cmd::now(),
    });
    privet_files::write_atomic(out, html.as_bytes(), privet_files::Mode::Public)?;
    outln!(
        "wrote {}: job {job}, {} log entries, under agreement {} version {}",
        out.display(),
        entries.all.len(),
        agreement.id(),
        agreement.version()
    );
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

struct ReportInput<'a> {
    job: &'a JobId,
    log: &'a LogFile,
    verified: &'a Verified,
    heads_given: usize,
    agreement: &'a Agreement,
    entries: &'a JobEntries<'a>,
    log_name: &'a str,
    agreement_name: &'a str,
    log_sha256: Hash,
    agreement_sha256: Hash,
    generated: privet_audit::Timestamp,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}code,.mono{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}\
.ok{background:#e7f6e7;border:1px solid #7c7;padding:.6rem}.bad{background:#fde8e8;border:1px solid #d77;padding:.6rem}\
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto}";

fn render_report(r: &ReportInput<'_>) -> String {
    let body = r.agreement.body();
    let status = r.agreement.signature_status();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>privet report: job {job}</title><style>{STYLE}</style></head><body>\n<h1>Data-sharing report: job {job}</h1>\n<p>Generated {gen} by <code>privet audit report</code> from the audit log <code>{log}</code> of coordinator <b>{coord}</b> and the agreement <code>{agr}</code>.</p>\n",
        job = esc(r.job.as_str()),
        gen = r.generated,
        log = esc(r.log_name),
        coord = esc(r.log.coordinator.as_str()),
        agr = esc(r.agreement_name),
    );

    // Verdict.
    let in_force = status.complete();
    let _ = writeln!(
        h,
        "<div class=\"{cls}\"><p><b>Audit log verified.</b> All {n} entries match the coordinator's signed heads ({heads} checked, {given} of them kept by nodes or parties); the coordinator's key is the one named in the agreement.{tail}</p><p><b>Agreement {state}.</b> {signed} of {total} parties signed version {version} ({hash}).</p></div>",
        cls = if in_force { "ok" } else { "bad" },
        n = r.verified.size,
        heads = r.verified.heads_checked,
        given = r.heads_given,
        tail = if r.verified.unsigned_tail > 0 {
            format!(
                " The last {} entries come after the latest signed head and are not yet covered by a signature.",
                r.verified.unsigned_tail
            )
        } else {
            String::new()
        },
        state = if in_force {
            "signed by every party"
        } else {
            "NOT signed by every party"
        },
        signed = status.signed.len(),
        total = body.parties.len(),
        version = body.version,
        hash = esc(&r.agreement.hash().to_hex()),
    );

    // The agreement.
    let _ = writeln!(
        h,
        "<h2>Agreement</h2><table><tr><th>Id, version</th><td>{id}, version {version}{prev}</td></tr><tr><th>Title</th><td>{title}</td></tr><tr><th>Hash (SHA-256 of its canonical form)</th><td class=\"mono\">{hash}</td></tr><tr><th>Valid</th><td>from {nb} to {na}</td></tr><tr><th>Retention of outputs</th><td>{ret} days</td></tr></table>",
        id = esc(body.id.as_str()),
        version = body.version,
        prev = body
            .previous
            .map(|p| format!(" (amends <span class=\"mono\">{p}</span>)"))
            .unwrap_or_default(),
        title = esc(&body.title),
        hash = r.agreement.hash(),
        nb = body.not_before,
        na = body.not_after,
        ret = body.retention_days,
    );

    // Parties.
    h.push_str("<h2>Parties</h2><table><tr><th>Party</th><th>Role</th><th>Data contributed</th><th>Key (Ed25519)</th><th>Signed</th></tr>\n");
    for p in &body.parties {
        let signed = if status.signed.contains(&p.name) {
            "yes"
        } else if status.invalid.contains(&p.name) {
            "signature does not match"
        } else {
            "no"
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{signed}</td></tr>",
            esc(p.name.as_str()),
            p.role,
            esc(body.datasets.get(&p.name).map_or("", String::as_str)),
            hex(p.key.as_bytes()),
        );
    }
    h.push_str("</table>\n");

    // Purpose.
    h.push_str("<h2>Purpose</h2>");
    match r.entries.admission {
        Some((_, _, a)) => {
            let _ = write!(
                h,
                "<p>The job declared: <b>{}</b>.</p>",
                esc(&a.purpose.describe())
            );
        }
        None => h.push_str("<p>The job was not admitted; see the refusals below.</p>"),
    }
    h.push_str("<p>The agreement permits (GA4GH Data Use Ontology terms; every modifier is a condition the job must declare):</p><ul>");
    for p in &body.purposes {
        let _ = write!(h, "<li>{}</li>", esc(&p.describe()));
    }
    h.push_str("</ul>\n");

    // Task and protections.
    let pr = &body.protections;
    h.push_str("<h2>Task and protections</h2><table><tr><th></th><th>Required by the agreement</th><th>This job</th></tr>");
    let dp_required = pr.dp.map_or("not required".to_string(), |d| {
        format!("at most {} per job, {} in total", d.per_job, d.total)
    });
    let (task, secagg, dp, min) = match r.entries.admission {
        Some((_, _, a)) => (
            a.task.to_string(),
            if a.secure_aggregation { "on" } else { "off" }.to_string(),
            a.dp.map_or("none".to_string(), |b| b.to_string()),
            a.min_clients_per_round.to_string(),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    let t = &body.tasks;
    let mut permitted = Vec::new();
    if !t.models.is_empty() {
        permitted.push(format!(
            "training {} with {}",
            t.models
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join("/"),
            t.strategies
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("/")
        ));
    }
    for (on, what) in [
        (t.statistics, "DP statistics"),
        (t.psi, "PSI"),
        (t.pjc, "PJC"),
    ] {
        if on {
            permitted.push(what.to_string());
        }
    }
    let _ = writeln!(
        h,
        "<tr><th>Task</th><td>{}</td><td>{}</td></tr><tr><th>Secure aggregation</th><td>{}</td><td>{}</td></tr><tr><th>Differential privacy</th><td>{}</td><td>{}</td></tr><tr><th>Clients per round</th><td>at least {}</td><td>at least {}</td></tr><tr><th>Model export</th><td>{}{}</td><td>{}</td></tr></table>",
        esc(&permitted.join("; ")),
        esc(&task),
        if pr.secure_aggregation {
            "required"
        } else {
            "not required"
        },
        secagg,
        esc(&dp_required),
        esc(&dp),
        pr.min_clients_per_round,
        min,
        esc(&pr
            .export
            .parties
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
        if pr.export.dp_only {
            " (DP-trained models only)"
        } else {
            ""
        },
        {
            let exports: Vec<String> = r
                .entries
                .all
                .iter()
                .filter_map(|(_, e)| match &e.event {
                    Event::ModelExport {
                        party, dp_trained, ..
                    } => Some(format!(
                        "to {}{}",
                        party,
                        if *dp_trained {
                            " (DP-trained)"
                        } else {
                            " (not DP-trained)"
                        }
                    )),
                    _ => None,
                })
                .collect();
            if exports.is_empty() {
                "none recorded".to_string()
            } else {
                esc(&exports.join("; "))
            }
        }
    );

    // Rounds.
    h.push_str("<h2>Rounds</h2>");
    let rounds: Vec<_> = r
        .entries
        .all
        .iter()
        .filter_map(|(i, e)| match &e.event {
            Event::RoundCompleted {
                round,
                participants,
                secure_aggregation,
                dp,
                ..
            } => Some((i, e.time, round, participants, secure_aggregation, dp)),
            _ => None,
        })
        .collect();
    if rounds.is_empty() {
        h.push_str("<p>No round completed.</p>");
    } else {
        h.push_str("<table><tr><th>Entry</th><th>Round</th><th>Completed</th><th>Participants</th><th>Secure aggregation</th><th>Privacy spent so far (epsilon, delta)</th></tr>");
        for (i, time, round, participants, secagg, dp) in rounds {
            let _ = write!(
                h,
                "<tr><td>#{i}</td><td>{round}</td><td>{time}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&participants
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")),
                if *secagg { "on" } else { "off" },
                dp.map_or("no DP".to_string(), |b| b.to_string()),
            );
        }
        h.push_str("</table>\n");
    }

    // Privacy spend.
    h.push_str("<h2>Privacy budget</h2>");
    let spends: Vec<String> = r
        .entries
        .all
        .iter()
        .filter_map(|(i, e)| match &e.event {
            Event::PrivacySpend { spent, total, .. } => Some(format!(
                "<li>#{i} ({}): the job spent {spent}; the agreement's total across jobs is then {total}{}</li>",
                e.time,
                pr.dp
                    .map(|d| format!(" of at most {}", d.total))
                    .unwrap_or_default()
            )),
            _ => None,
        })
        .collect();
    if spends.is_empty() {
        h.push_str("<p>No privacy spend recorded for this job.</p>");
    } else {
        let _ = write!(h, "<ul>{}</ul>", spends.join(""));
    }

    // Everything, in order.
    h.push_str("<h2>Every log entry about this job</h2><table><tr><th>Entry</th><th>Time</th><th>Event</th><th>Leaf hash</th></tr>");
    for (i, e) in &r.entries.all {
        let _ = write!(
            h,
            "<tr><td>#{i}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            e.time,
            esc(&e.event.describe()),
            e.leaf_hash()
        );
    }
    h.push_str("</table>\n");

    // The signed head.
    let head = &r.verified.latest;
    let _ = writeln!(
        h,
        "<h2>Signed tree head</h2><p>The coordinator signed this statement about its whole log (RFC 9162 Merkle tree, Ed25519). Any later change to an entry it covers breaks it.</p><table><tr><th>Coordinator</th><td>{}</td></tr><tr><th>Entries</th><td>{}</td></tr><tr><th>Root hash</th><td class=\"mono\">{}</td></tr><tr><th>Signed at</th><td>{}</td></tr><tr><th>Signature</th><td class=\"mono\">{}</td></tr><tr><th>Coordinator key</th><td class=\"mono\">{}</td></tr></table>",
        esc(head.head.coordinator.as_str()),
        head.head.size,
        head.head.root,
        head.head.time,
        hex(&head.signature.to_bytes()),
        hex(r.log.key.as_bytes()),
    );

    // How to check.
    let first = r.entries.all.first().map_or(0, |(i, _)| *i);
    let _ = write!(
        h,
        "<h2>How to verify this report</h2><p>With the two files this report was made from (SHA-256 of <code>{log}</code>: <span class=\"mono\">{lh}</span>; of <code>{agr}</code>: <span class=\"mono\">{ah}</span>) and the <code>privet</code> command:</p><pre>privet agreement verify {agr}            # every party signed this text\nprivet audit verify {log} --agreement {agr}   # the log matches the coordinator's signed heads\nprivet audit verify {log} --agreement {agr} --head HEAD.json   # ... and a head a node kept\nprivet audit prove {log} {first}          # one entry's inclusion proof\nprivet audit show {log} --job {job}</pre><p>A node's kept head (<code>HEAD.json</code>) is independent evidence: a coordinator that removed, changed, reordered or forked entries after signing a head is named by <code>privet audit verify</code>. The log is tamper-evident, not tamper-proof: it shows that history was changed, it cannot prevent it, and a coordinator that shows different logs to parties who never compare their heads is not detected.</p>\n</body></html>\n",
        log = esc(r.log_name),
        agr = esc(r.agreement_name),
        lh = r.log_sha256,
        ah = r.agreement_sha256,
        job = esc(r.job.as_str()),
    );
    h
}
