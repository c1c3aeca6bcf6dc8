//! `coordinator.toml` and `node.toml`: strict TOML (unknown keys are refused by name), paths
//! relative to the file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::NetError;
use crate::frame::Limits;
use crate::tls::TlsFiles;

const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How peers are authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// Mutual TLS 1.3 with the federation's certificates.
    Tls(TlsFiles),
    /// Plain text, names unauthenticated: development only (`--insecure-dev`).
    InsecureDev,
}

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
    /// Names allowed to use the admin service (submit, status, fetch-model).
    pub admins: Vec<String>,
    /// Node names admitted to sessions; empty admits any name the CA certified.
    pub nodes: Vec<String>,
    /// Message size limits and compression.
    pub limits: Limits,
}

/// A node's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// The node's name (must equal its certificate's name).
    pub name: String,
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
struct RawTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_message_mb: Option<u64>,
    frame_kb: Option<u64>,
    compression: Option<String>,
    zstd_level: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoordinator {
    listen: String,
    metrics_listen: Option<String>,
    state: PathBuf,
    tls: Option<RawTls>,
    #[serde(default = "default_admins")]
    admins: Vec<String>,
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    limits: RawLimits,
}

fn default_admins() -> Vec<String> {
    vec!["admin".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    coordinator: String,
    tls: Option<RawTls>,
    data: RawNodeData,
    #[serde(default)]
    limits: RawLimits,
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

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, NetError> {
    let io = |source| NetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(NetError::Config(format!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    toml::from_str(&text).map_err(|e| {
        NetError::Config(format!(
            "{}: {}",
            path.display(),
            e.message().trim().replace('\n', " ")
        ))
    })
}

fn relative(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { base.join(p) }
}

fn security(base: &Path, tls: Option<RawTls>, insecure: bool) -> Result<Security, NetError> {
    match (tls, insecure) {
        (_, true) => Ok(Security::InsecureDev),
        (Some(t), false) => Ok(Security::Tls(TlsFiles {
            ca: relative(base, t.ca),
            cert: relative(base, t.cert),
            key: relative(base, t.key),
        })),
        (None, false) => Err(NetError::Config(
            "a [tls] section (ca, cert, key) is required; plain text needs --insecure-dev".into(),
        )),
    }
}

fn limits(raw: RawLimits) -> Result<Limits, NetError> {
    let mut limits = Limits::default();
    if let Some(mb) = raw.max_message_mb {
        if mb == 0 || mb > 4096 {
            return Err(NetError::Config(
                "[limits] max_message_mb must be 1 to 4096".into(),
            ));
        }
        limits.max_message_bytes = (mb as usize) << 20;
    }
    if let Some(kb) = raw.frame_kb {
        if !(16..=16 * 1024).contains(&kb) {
            return Err(NetError::Config(
                "[limits] frame_kb must be 16 to 16384".into(),
            ));
        }
        limits.max_frame_bytes = (kb as usize) << 10;
    }
    limits.zstd_level = match raw.compression.as_deref().unwrap_or("none") {
        "none" => None,
        "zstd" => {
            let level = raw.zstd_level.unwrap_or(3);
            if !(1..=19).contains(&level) {
                return Err(NetError::Config(
                    "[limits] zstd_level must be 1 to 19".into(),
                ));
            }
            Some(level)
        }
        other => {
            return Err(NetError::Config(format!(
                "[limits] compression must be \"none\" or \"zstd\", got {other:?}"
            )));
        }
    };
    Ok(limits)
}

fn addr(key: &str, s: &str) -> Result<SocketAddr, NetError> {
    s.parse()
        .map_err(|_| NetError::Config(format!("`{key}` must be IP:PORT, got {s:?}")))
}

impl CoordinatorConfig {
    /// Reads `coordinator.toml`.
    pub fn from_file(path: &Path, insecure_dev: bool) -> Result<Self, NetError> {
        let raw: RawCoordinator = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for name in raw.admins.iter().chain(&raw.nodes) {
            crate::tls::check_name(name)?;
        }
        Ok(CoordinatorConfig {
            listen: addr("listen", &raw.listen)?,
            metrics_listen: raw
                .metrics_listen
                .as_deref()
                .map(|s| addr("metrics_listen", s))
                .transpose()?,
            state: relative(base, raw.state),
            security: security(base, raw.tls, insecure_dev)?,
            admins: raw.admins,
            nodes: raw.nodes,
            limits: limits(raw.limits)?,
        })
    }
}

impl NodeConfig {
    /// Reads `node.toml`.
    pub fn from_file(path: &Path, insecure_dev: bool) -> Result<Self, NetError> {
        let raw: RawNode = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        crate::tls::check_name(&raw.name)?;
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
            security: security(base, raw.tls, insecure_dev)?,
            data: NodeData {
                path: relative(base, raw.data.path),
                label: raw.data.label,
                categorical: raw.data.categorical,
                drop: raw.data.drop,
            },
            limits: limits(raw.limits)?,
            max_backoff_secs,
        })
    }
}
