//! `coordinator.toml` and `node.toml`: strict TOML (unknown keys are refused by name), paths
//! relative to the file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use privet_identity::Name;
pub use privet_transport::Security;
use privet_transport::{Limits, LimitsSection, TlsSection};
use serde::Deserialize;

use crate::error::NetError;

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
}

/// A node's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// The node's name (must equal its certificate's name).
    pub name: Name,
    /// The coordinator's address, `https://host:port`.
    pub coordinator: String,
    /// Certificates, or insecure development mode.
    pub security: Security,
    /// The local training data.
    pub data: NodeData,
    /// Message size limits and compression.
    pub limits: Limits,
    /// Longest wait between reconnection attempts.
    pub max_backoff_secs: f64,
}

/// A node's local dataset and its column mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeData {
    /// CSV file with a header.
    pub path: PathBuf,
    /// Label column.
    pub label: String,
    /// Categorical columns.
    pub categorical: Vec<String>,
    /// Columns to ignore.
    pub drop: Vec<String>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Name,
    coordinator: String,
    tls: Option<TlsSection>,
    data: RawNodeData,
    #[serde(default)]
    limits: LimitsSection,
    max_backoff_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeData {
    path: PathBuf,
    label: String,
    #[serde(default)]
    categorical: Vec<String>,
    #[serde(default)]
    drop: Vec<String>,
}

fn relative(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { base.join(p) }
}

fn addr(key: &str, s: &str) -> Result<SocketAddr, NetError> {
    s.parse()
        .map_err(|_| NetError::Config(format!("`{key}` must be IP:PORT, got {s:?}")))
}

impl CoordinatorConfig {
    /// Reads `coordinator.toml`.
    pub fn from_file(path: &Path, insecure_dev: bool) -> Result<Self, NetError> {
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
        })
    }
}

impl NodeConfig {
    /// Reads `node.toml`.
    pub fn from_file(path: &Path, insecure_dev: bool) -> Result<Self, NetError> {
        let raw: RawNode = privet_files::read_toml(path, MAX_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if !(raw.coordinator.starts_with("https://") || raw.coordinator.starts_with("http://")) {
            return Err(NetError::Config(format!(
                "`coordinator` must be an https:// URL, got {:?}",
                raw.coordinator
            )));
        }
        let max_backoff_secs = raw.max_backoff_secs.unwrap_or(30.0);
        if !(max_backoff_secs.is_finite() && (0.1..=3600.0).contains(&max_backoff_secs)) {
            return Err(NetError::Config(
                "`max_backoff_secs` must be 0.1 to 3600".into(),
            ));
        }
        Ok(NodeConfig {
            name: raw.name,
            coordinator: raw.coordinator,
            security: TlsSection::resolve(raw.tls.as_ref(), base, insecure_dev)?,
            data: NodeData {
                path: relative(base, raw.data.path),
                label: raw.data.label,
                categorical: raw.data.categorical,
                drop: raw.data.drop,
            },
            limits: raw.limits.resolve()?,
            max_backoff_secs,
        })
    }
}
