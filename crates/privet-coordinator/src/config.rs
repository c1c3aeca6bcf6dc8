//! `coordinator.toml`: strict TOML (unknown keys are refused by name), paths relative to the
//! file's directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use privet_identity::Name;
pub use privet_transport::Security;
use privet_transport::{Limits, LimitsSection, TlsSection};
use serde::Deserialize;

use crate::error::CoordinatorError;

const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The coordinator's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct CoordinatorConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Prometheus `/metrics` listen address (plain HTTP), if any.
    pub metrics_listen: Option<SocketAddr>,
    /// SQLite state file.
    pub state: PathBuf,
    /// Certificates, or insecure development mode.
    pub security: Security,
    /// Operators allowed to use the admin service (submit, status, fetch-model); their
    /// certificates must also carry the operator role.
    pub admins: Vec<Name>,
    /// Node names admitted to sessions; empty admits any node the CA certified.
    pub nodes: Vec<Name>,
    /// Message size limits and compression.
    pub limits: Limits,
    /// Signed data-sharing agreements jobs may run under (`[audit] agreements`).
    pub agreements: Vec<PathBuf>,
    /// Refuse jobs that name no agreement (`[audit] require_agreement`).
    pub require_agreement: bool,
    /// Evaluation sets this coordinator holds, by name (`[evaluation]`: `NAME = "file.csv"`):
    /// CSV files with the columns of the jobs that name them, never sent to nodes.
    pub evaluation: BTreeMap<Name, PathBuf>,
}

/// `[audit]`: the agreements this coordinator enforces.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default)]
    agreements: Vec<PathBuf>,
    #[serde(default)]
    require_agreement: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoordinator {
    listen: String,
    metrics_listen: Option<String>,
    state: PathBuf,
    tls: Option<TlsSection>,
    admins: Option<Vec<Name>>,
    #[serde(default)]
    nodes: Vec<Name>,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    evaluation: BTreeMap<String, PathBuf>,
}

fn relative(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { base.join(p) }
}

fn addr(key: &str, s: &str) -> Result<SocketAddr, CoordinatorError> {
    s.parse()
        .map_err(|_| CoordinatorError::Config(format!("`{key}` must be IP:PORT, got {s:?}")))
}

impl CoordinatorConfig {
    /// Reads `coordinator.toml`.
    pub fn from_file(path: &Path, insecure_dev: bool) -> Result<Self, CoordinatorError> {
        let raw: RawCoordinator = privet_files::read_toml(path, MAX_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(CoordinatorConfig {
            listen: addr("listen", &raw.listen)?,
            metrics_listen: raw
                .metrics_listen
                .as_deref()
                .map(|s| addr("metrics_listen", s))
                .transpose()?,
            state: relative(base, raw.state),
            security: TlsSection::resolve(raw.tls.as_ref(), base, insecure_dev)?,
            admins: match raw.admins {
                Some(admins) => admins,
                None => vec!["admin".parse()?],
            },
            nodes: raw.nodes,
            limits: raw.limits.resolve()?,
            agreements: raw
                .audit
                .agreements
                .into_iter()
                .map(|p| relative(base, p))
                .collect(),
            require_agreement: raw.audit.require_agreement,
            evaluation: raw
                .evaluation
                .into_iter()
                .map(|(name, path)| {
                    let name: Name = name.parse().map_err(|_| {
                        CoordinatorError::Config(format!(
                            "[evaluation] invalid set name {:?} (1-64 ASCII letters, digits, '-', \
                             '_' or '.')",
                            name.chars().take(80).collect::<String>()
                        ))
                    })?;
                    Ok((name, relative(base, path)))
                })
                .collect::<Result<_, CoordinatorError>>()?,
        })
    }
}
