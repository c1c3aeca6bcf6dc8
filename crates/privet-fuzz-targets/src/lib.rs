//! The bodies of privet's fuzz targets (`fuzz/`), one module per target, each behind a feature
//! of the same name (all on by default) so that a fuzzing build can instrument only the crates
//! its target needs.
//!
//! `fuzz/fuzz_targets/NAME.rs` is a one-line libFuzzer entry that calls [`NAME::run`]; this
//! crate's test `tests/corpus.rs` replays every committed seed (`fuzz/corpus/NAME/`) through
//! the same functions in the ordinary `cargo test`, so CI runs every target on its corpus
//! without libFuzzer or nightly flags. A target asserts its invariants by panicking, which
//! is how a fuzzer learns of a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "agreement_toml")]
pub mod agreement_toml;
#[cfg(feature = "audit_log")]
pub mod audit_log;
#[cfg(feature = "certificate")]
pub mod certificate;
#[cfg(feature = "csv")]
pub mod csv;
#[cfg(feature = "frames")]
pub mod frames;
#[cfg(feature = "he_wire")]
pub mod he_wire;
#[cfg(feature = "job_toml")]
pub mod job_toml;
#[cfg(feature = "model")]
pub mod model;
#[cfg(feature = "net_config")]
pub mod net_config;
#[cfg(feature = "psi_session")]
pub mod psi_session;
#[cfg(feature = "psi_wire")]
pub mod psi_wire;
#[cfg(feature = "secagg_wire")]
pub mod secagg_wire;

/// The folder where target `name` writes its input as files (`certificate`, `model`,
/// `net_config`: their parsers read paths), one per process: `TMP/privet-fuzz-NAME-PID`.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("privet-fuzz-{name}-{}", std::process::id()))
}
