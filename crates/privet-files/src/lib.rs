//! # privet-files: how privet reads and writes files
//!
//! Every file privet writes (models, run directories, certificates and keys, predictions) and
//! every configuration it reads goes through this crate, so the rules hold everywhere:
//!
//! - [`write_atomic`] writes a temporary file beside the target, `fsync`s it, renames it over
//!   the target and `fsync`s the directory: a crash leaves the old file or the new one, never a
//!   half-written one. It keeps the mode of a file it replaces, creates secrets with mode 0600
//!   ([`Mode::Secret`]) and refuses to replace anything that is not a regular file: a symbolic
//!   link (the rename would replace the link, not what it points to), a device, a FIFO or a
//!   directory.
//! - [`read_limited`] reads a whole file only if it is at most a given size, checked while
//!   reading (a file that grows is caught too).
//! - [`read_toml`] and [`parse_toml`] parse strict TOML into a typed value and turn the parser's
//!   multi-line message into one line with the line, column and offending line of the file.
//!
//! ```
//! # fn main() -> Result<(), privet_files::FileError> {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("settings.toml");
//! privet_files::write_atomic(&path, b"rounds = 3\n", privet_files::Mode::Public)?;
//! #[derive(serde::Deserialize)]
//! struct Settings { rounds: u32 }
//! let s: Settings = privet_files::read_toml(&path, 1 << 20)?;
//! assert_eq!(s.rounds, 3);
//! # Ok(())
//! # }
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// What can go wrong reading or writing a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The operating system refused (missing file, permissions, disk full...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than the limit for its kind.
    #[error("{}: larger than the {limit}-byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The target exists and is not a regular file, so it is not replaced.
    #[error("{}: refusing to replace {kind} (write to a regular file)", path.display())]
    NotRegular {
        /// The target.
        path: PathBuf,
        /// What it is: "a symbolic link", "a directory", "a device or other special file".
        kind: &'static str,
    },
    /// The file is not UTF-8 text.
    #[error("{}: not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// TOML that does not parse or does not fit the expected structure (one line, with the
    /// position).
    #[error("{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Toml {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// Line, column, message and the offending line.
        message: String,
    },
}

impl FileError {
    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            FileError::Io { path, .. }
            | FileError::TooLarge { path, .. }
            | FileError::NotRegular { path, .. }
            | FileError::NotText { path } => Some(path),
            FileError::Toml { path, .. } => path.as_deref(),
        }
    }

    /// Whether the error is the disk (or device) being full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.raw_os_error() == Some(28))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who may read a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Readable by everyone (0644 before the umask), or the mode of the file it replaces.
    Public,
    /// A secret (a private key): 0600, whatever file it replaces.
    Secret,
}

/// Refuses to go on if `path` exists and is not a regular file; returns the permissions of an
/// existing regular file.
fn existing_regular(path: &Path) -> Result<Option<std::fs::Permissions>, FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_symlink() {
                Err(FileError::NotRegular {
                    path: path.to_path_buf(),
                    kind: "a symbolic link",
                })
            } else if kind.is_dir() {
                Err(FileError::NotRegular {
                    path: path.to_path_buf(),
                    kind: "a directory",
                })
            } else if !kind.is_file() {
                Err(FileError::NotRegular {
                    path: path.to_path_buf(),
                    kind: "a device or other special file",
                })
            } else {
                Ok(Some(meta.permissions()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// The temporary name beside `path`: `STEM.tmp.EXT` (the extension kept, for writers that pick
/// a format from it), or `NAME.tmp` without an extension. Files that share a stem never share a
/// temporary.
fn temporary(path: &Path) -> PathBuf {
    match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => {
            let mut name = stem.to_owned();
            name.push(".tmp.");
            name.push(ext);
            path.with_file_name(name)
        }
        _ => {
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".tmp");
            PathBuf::from(tmp)
        }
    }
}

/// Writes `bytes` to `path` atomically and durably (see the [crate documentation](crate)).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> Result<(), FileError> {
    write_atomic_with(path, mode, |file, _| file.write_all(bytes))
}

/// [`write_atomic`] for content that a writer produces: `fill` writes into the temporary file,
/// given both open and by its path (for a library that writes to a path itself, such as a chart
/// renderer; it must write that same file, not replace it). The file is then synced and renamed
/// over `path` under the same rules.
pub fn write_atomic_with(
    path: &Path,
    mode: Mode,
    fill: impl FnOnce(&mut File, &Path) -> std::io::Result<()>,
) -> Result<(), FileError> {
    replace(path, mode, true, fill)
}

/// Writes a run's output (metrics, charts, a trained model): replaced whole, under the same rules
/// as [`write_atomic`], so a reader never sees half a file, but not synced to disk. A power loss
/// just after the write can lose it (a seeded rerun reproduces it); in exchange it costs no
/// fsync (about 4 ms per file and directory on a network disk, most of a short simulation's
/// wall time). Keys, certificates, ledgers and anything not reproducible use [`write_atomic`].
pub fn write_output(path: &Path, bytes: &[u8], mode: Mode) -> Result<(), FileError> {
    replace(path, mode, false, |file, _| file.write_all(bytes))
}

/// [`write_output`] for content that a writer produces (see [`write_atomic_with`]).
pub fn write_output_with(
    path: &Path,
    mode: Mode,
    fill: impl FnOnce(&mut File, &Path) -> std::io::Result<()>,
) -> Result<(), FileError> {
    replace(path, mode, false, fill)
}

fn replace(
    path: &Path,
    mode: Mode,
    durable: bool,
    fill: impl FnOnce(&mut File, &Path) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let previous = existing_regular(path)?;
    let tmp = temporary(path);
    // A temporary left by a crash is ours to replace, but never through a link.
    if let Ok(meta) = std::fs::symlink_metadata(&tmp)
        && !meta.file_type().is_file()
    {
        return Err(FileError::NotRegular {
            path: tmp,
            kind: "a symbolic link or special file",
        });
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match mode {
            Mode::Secret => 0o600,
            Mode::Public => 0o644,
        });
        // Never follow a link planted at the temporary name.
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let result = (|| {
        let mut file = options.open(&tmp).map_err(io(&tmp))?;
        match (mode, previous) {
            (Mode::Secret, _) => set_secret(&file, &tmp)?,
            (Mode::Public, Some(perms)) => file.set_permissions(perms).map_err(io(&tmp))?,
            (Mode::Public, None) => {}
        }
        fill(&mut file, &tmp).map_err(io(path))?;
        if durable {
            file.sync_all().map_err(io(path))?;
        }
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if durable {
            sync_dir(path);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn set_secret(file: &File, path: &Path) -> Result<(), FileError> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io(path))
}

#[cfg(not(unix))]
fn set_secret(_file: &File, _path: &Path) -> Result<(), FileError> {
    Ok(())
}

/// Makes a rename durable: fsync the directory that holds `path` (best effort; some file
/// systems refuse to open directories for syncing).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads `path` whole if it is at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let file = File::open(path).map_err(io(path))?;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io(path))?;
    if buf.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(buf)
}

/// Reads `path` as UTF-8 text of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, FileError> {
    String::from_utf8(read_limited(path, limit)?).map_err(|_| FileError::NotText {
        path: path.to_path_buf(),
    })
}

/// Reads a TOML file of at most `limit` bytes into `T` (see [`parse_toml`]).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path, limit: u64) -> Result<T, FileError> {
    let text = read_text(path, limit)?;
    parse_toml(&text).map_err(|e| match e {
        FileError::Toml { message, .. } => FileError::Toml {
            path: Some(path.to_path_buf()),
            message,
        },
        other => other,
    })
}

/// Parses TOML text into `T`. Unknown keys are refused when `T` says so
/// (`#[serde(deny_unknown_fields)]`); the message is one line: position, reason, and the
/// offending line (which names the key).
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FileError> {
    toml::from_str(text).map_err(|e| FileError::Toml {
        path: None,
        message: toml_message(&e, text),
    })
}

/// Quotes at most this many characters of an offending line.
const QUOTE_CHARS: usize = 120;

fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else { return msg };
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return format!("line {line_no}, column {column}: {msg}");
    }
    let quoted: String = line.chars().take(QUOTE_CHARS).collect();
    let ellipsis = if line.chars().count() > QUOTE_CHARS {
        "..."
    } else {
        ""
    };
    format!("line {line_no}, column {column}: {msg} (in `{quoted}{ellipsis}`)")
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        rounds: u32,
        name: Option<String>,
    }

    #[test]
    fn atomic_write_replaces_a_file_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        write_atomic(&path, b"one", Mode::Public).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            write_atomic(&path, b"two", Mode::Public).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640);
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!temporary(&path).exists(), "no temporary left behind");
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_private_even_over_a_public_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_atomic(&path, b"public", Mode::Public).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"secret", Mode::Secret).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn links_devices_and_directories_are_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomic(&link, b"x", Mode::Public).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");

        let err = write_atomic(Path::new("/dev/null"), b"x", Mode::Public).unwrap_err();
        assert!(err.to_string().contains("special file"), "{err}");

        let err = write_atomic(dir.path(), b"x", Mode::Public).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");

        // A link planted at the temporary name is not followed either.
        let out = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&target, temporary(&out)).unwrap();
        assert!(write_atomic(&out, b"x", Mode::Public).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");

        // Unsynced outputs follow the same rules, and replace a regular file whole.
        assert!(write_output(&link, b"x", Mode::Public).is_err());
        assert!(write_output(Path::new("/dev/null"), b"x", Mode::Public).is_err());
        assert!(write_output(&out, b"x", Mode::Public).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        let plain = dir.path().join("metrics.csv");
        write_output(&plain, b"old", Mode::Public).unwrap();
        write_output(&plain, b"new", Mode::Public).unwrap();
        assert_eq!(std::fs::read(&plain).unwrap(), b"new");
        assert!(!temporary(&plain).exists());
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'a'; 101]).unwrap();
        assert!(matches!(
            read_limited(&path, 100),
            Err(FileError::TooLarge { limit: 100, .. })
        ));
        assert_eq!(read_limited(&path, 101).unwrap().len(), 101);
    }

    #[test]
    fn toml_errors_are_one_line_with_position_and_key() {
        let err = parse_toml::<Settings>("rounds = 3\nnmae = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with("line 2, column 1:"), "{text}");
        assert!(text.contains("nmae"), "{text}");
        let err = parse_toml::<Settings>("rounds = \"three\"\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn toml_errors_quote_a_short_prefix_of_a_long_line() {
        let long = format!("nmae = \"{}\"\n", "x".repeat(100_000));
        let err = parse_toml::<Settings>(&format!("rounds = 1\n{long}")).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 400, "{} bytes", text.len());
        assert!(text.contains("..."), "{text}");
    }

    #[test]
    fn read_toml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.toml");
        std::fs::write(&path, "rounds = -1\n").unwrap();
        let err = read_toml::<Settings>(&path, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("job.toml: line 1"), "{err}");
    }
}
