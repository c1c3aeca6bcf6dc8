//! `node.toml`: strict TOML (unknown keys are refused by name), paths relative to the file's
//! directory.

use std::path::{Path, PathBuf};

use privet_identity::Name;
pub use privet_transport::Security;
use privet_transport::{Limits, LimitsSection, TlsSection};
use serde::Deserialize;

use crate::error::NodeError;

const MAX_CONFIG_BYTES: u64 = 1 << 20;

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
    /// Agreements this node enforces itself, its local policy and its audit state
    /// (`[audit]`); `None`: the node checks no agreement and keeps no head.
    pub audit: Option<crate::audit::AuditConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default)]
    agreements: Vec<PathBuf>,
    dir: Option<PathBuf>,
    require_agreement: Option<bool>,
    #[serde(default)]
    require_secure_aggregation: bool,
    max_epsilon_per_job: Option<f64>,
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
struct RawNode {
    name: Name,
    coordinator: String,
    tls: Option<TlsSection>,
    data: RawNodeData,
    #[serde(default)]
    limits: LimitsSection,
    max_backoff_secs: Option<f64>,
    audit: Option<RawAudit>,
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

impl NodeConfig {
    /// Reads `node.toml`.
    pub fn from_file(path: &Path, insecure_dev: bool) -> Result<Self, NodeError> {
        let raw: RawNode = privet_files::read_toml(path, MAX_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if !(raw.coordinator.starts_with("https://") || raw.coordinator.starts_with("http://")) {
            return Err(NodeError::Config(format!(
                "`coordinator` must be an https:// URL, got {:?}",
                raw.coordinator
            )));
        }
        let max_backoff_secs = raw.max_backoff_secs.unwrap_or(30.0);
        if !(max_backoff_secs.is_finite() && (0.1..=3600.0).contains(&max_backoff_secs)) {
            return Err(NodeError::Config(
                "`max_backoff_secs` must be 0.1 to 3600".into(),
            ));
        }
        let audit = match raw.audit {
            None => None,
            Some(a) => {
                if let Some(max) = a.max_epsilon_per_job
                    && !(max.is_finite() && max > 0.0)
                {
                    return Err(NodeError::Config(
                        "[audit] `max_epsilon_per_job` must be a positive number".into(),
                    ));
                }
                Some(crate::audit::AuditConfig {
                    agreements: a
                        .agreements
                        .into_iter()
                        .map(|p| relative(base, p))
                        .collect(),
                    dir: relative(
                        base,
                        a.dir
                            .unwrap_or_else(|| PathBuf::from(format!("{}-audit", raw.name))),
                    ),
                    require_agreement: a.require_agreement.unwrap_or(true),
                    require_secure_aggregation: a.require_secure_aggregation,
                    max_epsilon_per_job: a.max_epsilon_per_job,
                })
            }
        };
        Ok(NodeConfig {
            audit,
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
