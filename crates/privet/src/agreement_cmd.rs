//! `privet agreement`: data-sharing agreements that every party signs.
//!
//! * `privet agreement new --out FILE [--party CERT.pem]... [--not-before TIME] [--days N]`
//!   writes a commented template; each `--party` certificate gives a party's name, role and key.
//! * `privet agreement sign FILE --key KEY [--cert CERT]` adds this party's signature (the key's
//!   certificate defaults to the `.pem` beside the key, as `privet certs issue` writes them).
//! * `privet agreement verify FILE [--previous FILE]` exits 0 only when the file is well formed
//!   and signed by every party (and, with `--previous`, amends that version).
//! * `privet agreement show FILE` summarises it for people: parties, DUO labels, tasks,
//!   protections, validity and who signed.

use std::path::{Path, PathBuf};

use crate::out::outln;
use anyhow::{Context, Result};
use clap::Subcommand;
use privet_audit::{Agreement, AuditError, Party, PartyRole, Timestamp};
use privet_identity::TlsFiles;

/// Data-sharing agreements.
#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Write a commented agreement template to fill in.
    New {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// A party's certificate (its name, role and key go into the file); repeat for each
        /// party. Without any, the template names example parties by `certs/NAME.pem`.
        #[arg(long = "party", value_name = "CERT.pem")]
        parties: Vec<PathBuf>,
        /// Start of validity, RFC 3339 in UTC [default: today, 00:00 UTC].
        #[arg(long)]
        not_before: Option<String>,
        /// Days of validity.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Add this party's signature to an agreement.
    Sign {
        /// The agreement file.
        file: PathBuf,
        /// This party's private key (PEM), e.g. certs/hospital-a.key.
        #[arg(long)]
        key: PathBuf,
        /// The key's certificate [default: the key's path with .pem].
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// Check that an agreement is well formed and signed by every party (exit 0 only then).
    Verify {
        /// The agreement file.
        file: PathBuf,
        /// The version it amends: also check that it names that version's hash.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Summarise an agreement for people.
    Show {
        /// The agreement file.
        file: PathBuf,
    },
}

/// Runs `privet agreement ...`.
pub fn run(cmd: AgreementCommand) -> Result<()> {
    match cmd {
        AgreementCommand::New {
            out,
            parties,
            not_before,
            days,
            force,
        } => new(&out, &parties, not_before.as_deref(), days, force),
        AgreementCommand::Sign { file, key, cert } => sign(&file, &key, cert.as_deref()),
        AgreementCommand::Verify { file, previous } => verify(&file, previous.as_deref()),
        AgreementCommand::Show { file } => show(&file),
    }
}

/// The current time, to the second (the CLI is the one place that reads the clock).
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_unix(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn new(
    out: &Path,
    certs: &[PathBuf],
    not_before: Option<&str>,
    days: u32,
    force: bool,
) -> Result<()> {
    if days == 0 {
        return Err(AuditError::Invalid("--days must be at least 1".into()).into());
    }
    if out.exists() && !force {
        return Err(AuditError::Invalid(format!(
            "{} exists: pass --force to replace it",
            out.display()
        ))
        .into());
    }
    let start = match not_before {
        Some(s) => {
            Timestamp::parse(s).map_err(|e| AuditError::Invalid(format!("--not-before: {e}")))?
        }
        None => {
            let t = now().unix();
            Timestamp::from_unix(t - t.rem_euclid(86_400)).unwrap_or(now())
        }
    };
    let mut parties: Vec<Party> = Vec::new();
    for path in certs {
        let cert = privet_identity::load_certs(path)?;
        let leaf = cert
            .first()
            .with_context(|| format!("{}: no certificate", path.display()))?;
        let id = privet_identity::identity_of(leaf.as_ref())
            .map_err(|e| AuditError::Invalid(format!("{}: {e}", path.display())))?;
        let key = privet_identity::certified_key(leaf.as_ref())?;
        if parties.iter().any(|p| p.name == id.name) {
            return Err(AuditError::Invalid(format!("party {} given twice", id.name)).into());
        }
        parties.push(Party {
            name: id.name,
            role: PartyRole::of_certificate(id.role),
            key,
        });
    }
    let text = Agreement::template(&parties, start, days);
    privet_files::write_atomic(out, text.as_bytes(), privet_files::Mode::Public)?;
    outln!(
        "wrote {}: fill in the data sets, purposes, tasks and protections, then each party runs `privet agreement sign {} --key certs/NAME.key`",
        out.display(),
        out.display()
    );
    Ok(())
}

fn sign(file: &Path, key: &Path, cert: Option<&Path>) -> Result<()> {
    let agreement = Agreement::load(file)?;
    let cert = cert
        .map(Path::to_path_buf)
        .unwrap_or_else(|| key.with_extension("pem"));
    let files = TlsFiles {
        ca: PathBuf::new(),
        cert,
        key: key.to_path_buf(),
    };
    let signing = privet_identity::load_signing_key(&files)?;
    let signature = agreement.sign(&signing)?;
    let party = signature.party.clone();
    let status = agreement.signature_status();
    if status.signed.contains(&party) {
        outln!(
            "{} is already signed by {party}; nothing changed",
            file.display()
        );
        return Ok(());
    }
    if status.invalid.contains(&party) {
        return Err(AuditError::NotFullySigned(format!(
            "{}: the signature of {party} in the file does not match this text: delete that [[signatures]] block, then sign again",
            file.display()
        ))
        .into());
    }
    let mut text = privet_files::read_text(file, privet_audit::MAX_AGREEMENT_BYTES)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&signature.toml_block());
    // Check the result before writing it: it must parse and carry this party's signature.
    let base = file.parent().unwrap_or(Path::new("."));
    let signed = Agreement::parse(&text, Some(base)).map_err(|e| match e {
        AuditError::Agreement { message, .. } => AuditError::Agreement {
            path: Some(file.to_path_buf()),
            message: format!("cannot add a signature: {message}"),
        },
        other => other,
    })?;
    let status = signed.signature_status();
    if !status.signed.contains(&party) || signed.hash() != agreement.hash() {
        return Err(AuditError::NotFullySigned(format!(
            "{}: the signature of {party} did not survive being added to the file",
            file.display()
        ))
        .into());
    }
    privet_files::write_atomic(file, text.as_bytes(), privet_files::Mode::Public)?;
    let total = signed.body().parties.len();
    if status.complete() {
        outln!(
            "signed by {party}: agreement {} version {} is now signed by all {total} parties",
            signed.id(),
            signed.version()
        );
    } else {
        outln!(
            "signed by {party} ({} of {total}); still to sign: {}",
            status.signed.len(),
            names(&status.missing)
        );
    }
    Ok(())
}

fn names(v: &[privet_identity::Name]) -> String {
    v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

fn verify(file: &Path, previous: Option<&Path>) -> Result<()> {
    let agreement = Agreement::load(file)?;
    let status = agreement.signature_status();
    outln!(
        "agreement {} version {} ({})",
        agreement.id(),
        agreement.version(),
        agreement.hash()
    );
    if !status.signed.is_empty() {
        outln!("signed by: {}", names(&status.signed));
    }
    if !status.invalid.is_empty() {
        outln!(
            "signature does not match the text: {}",
            names(&status.invalid)
        );
    }
    if !status.missing.is_empty() {
        outln!("not signed by: {}", names(&status.missing));
    }
    let body = agreement.body();
    let now = now();
    outln!(
        "valid from {} to {} ({})",
        body.not_before,
        body.not_after,
        if now < body.not_before {
            "not yet valid"
        } else if now >= body.not_after {
            "expired"
        } else {
            "within its validity window now"
        }
    );
    agreement
        .require_fully_signed()
        .with_context(|| file.display().to_string())?;
    if let Some(prev) = previous {
        let p = Agreement::load(prev)?;
        p.require_fully_signed()
            .with_context(|| prev.display().to_string())?;
        agreement.check_amends(&p)?;
        outln!(
            "amends version {} ({}), which is signed by all its parties",
            p.version(),
            p.hash()
        );
    }
    outln!("verified: signed by all {} parties", body.parties.len());
    Ok(())
}

fn show(file: &Path) -> Result<()> {
    let agreement = Agreement::load(file)?;
    let body = agreement.body();
    let status = agreement.signature_status();
    outln!(
        "agreement {} version {}: {}",
        body.id,
        body.version,
        body.title
    );
    outln!("hash      {}", agreement.hash());
    if let Some(p) = body.previous {
        outln!("amends    {p}");
    }
    outln!(
        "valid     from {} to {}; outputs kept at most {} days",
        body.not_before,
        body.not_after,
        body.retention_days
    );
    outln!("parties");
    for p in &body.parties {
        let signed = if status.signed.contains(&p.name) {
            "signed"
        } else if status.invalid.contains(&p.name) {
            "SIGNATURE DOES NOT MATCH"
        } else {
            "not signed"
        };
        outln!(
            "  {:<20} {:<12} key {}...  {signed}",
            p.name.as_str(),
            p.role.as_str(),
            &hex_key(&p.key)[..16]
        );
        if let Some(d) = body.datasets.get(&p.name) {
            outln!("  {:<20} data: {d}", "");
        }
    }
    outln!("purposes (GA4GH DUO)");
    for p in &body.purposes {
        outln!("  {}", p.describe());
    }
    let t = &body.tasks;
    outln!("tasks");
    if !t.models.is_empty() {
        outln!(
            "  training: models {}; strategies {}",
            list(t.models.iter()),
            list(t.strategies.iter())
        );
    }
    for (on, what) in [
        (t.statistics, "DP statistics"),
        (t.psi, "private set intersection"),
        (t.pjc, "private join and compute"),
    ] {
        if on {
            outln!("  {what}");
        }
    }
    let pr = &body.protections;
    outln!("protections");
    outln!(
        "  secure aggregation {}",
        if pr.secure_aggregation {
            "required"
        } else {
            "not required"
        }
    );
    outln!("  at least {} clients per round", pr.min_clients_per_round);
    match pr.dp {
        Some(dp) => outln!(
            "  differential privacy required: at most {} per job, {} in total",
            dp.per_job,
            dp.total
        ),
        None => outln!("  differential privacy not required"),
    }
    outln!(
        "  model export: {}{}",
        if pr.export.parties.is_empty() {
            "nobody".to_string()
        } else {
            list(pr.export.parties.iter())
        },
        if pr.export.dp_only {
            " (DP-trained models only)"
        } else {
            ""
        }
    );
    outln!(
        "signatures: {} of {}{}",
        status.signed.len(),
        body.parties.len(),
        if status.complete() {
            " (in force within its validity window)".to_string()
        } else {
            format!(
                "; missing: {}{}",
                names(&status.missing),
                if status.invalid.is_empty() {
                    String::new()
                } else {
                    format!("; not matching: {}", names(&status.invalid))
                }
            )
        }
    );
    Ok(())
}

fn hex_key(k: &privet_identity::VerifyingKey) -> String {
    k.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}
