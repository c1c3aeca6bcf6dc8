//! The `[tls]` and `[limits]` sections shared by every service's TOML file.

use std::path::{Path, PathBuf};

use privet_identity::TlsFiles;
use serde::Deserialize;

use crate::{Limits, Security, TransportError};

/// `[tls]`: the CA, this party's certificate and key; paths relative to the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn relative(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl TlsSection {
    /// The security mode: the section's files (relative to `base`, the config file's
    /// directory), or insecure dev mode when asked for on the command line.
    pub fn resolve(
        section: Option<&TlsSection>,
        base: &Path,
        insecure_dev: bool,
    ) -> Result<Security, TransportError> {
        match (section, insecure_dev) {
            (_, true) => Ok(Security::InsecureDev),
            (Some(t), false) => Ok(Security::Tls(TlsFiles {
                ca: relative(base, &t.ca),
                cert: relative(base, &t.cert),
                key: relative(base, &t.key),
            })),
            (None, false) => Err(TransportError::Config(
                "a [tls] section (ca, cert, key) is required; plain text needs --insecure-dev"
                    .into(),
            )),
        }
    }
}

/// `[limits]`: message size, frame size and compression.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    max_message_mb: Option<u64>,
    frame_kb: Option<u64>,
    compression: Option<String>,
    zstd_level: Option<i32>,
}

impl LimitsSection {
    /// The limits it sets (defaults: 1 GiB messages, 1 MiB frames, no compression).
    pub fn resolve(&self) -> Result<Limits, TransportError> {
        let bad = |m: &str| TransportError::Config(format!("[limits] {m}"));
        let mut limits = Limits::default();
        if let Some(mb) = self.max_message_mb {
            if mb == 0 || mb > 4096 {
                return Err(bad("max_message_mb must be 1 to 4096"));
            }
            limits.max_message_bytes = (mb as usize) << 20;
        }
        if let Some(kb) = self.frame_kb {
            if !(16..=16 * 1024).contains(&kb) {
                return Err(bad("frame_kb must be 16 to 16384"));
            }
            limits.max_frame_bytes = (kb as usize) << 10;
        }
        limits.zstd_level = match self.compression.as_deref().unwrap_or("none") {
            "none" => None,
            "zstd" => {
                let level = self.zstd_level.unwrap_or(3);
                if !(1..=19).contains(&level) {
                    return Err(bad("zstd_level must be 1 to 19"));
                }
                Some(level)
            }
            other => {
                return Err(TransportError::Config(format!(
                    "[limits] compression must be \"none\" or \"zstd\", got {:?}",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        Ok(limits)
    }
}
