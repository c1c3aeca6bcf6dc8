//! Finds the SeetaFace frontal model that ships inside the `rustface` crate, so the detector can be
//! embedded with `include_bytes!` and nothing is downloaded or looked up at run time.
//!
//! The model's path comes from `cargo metadata` (which knows where the registry, a vendor folder
//! or a path override put the crate). `PRIVET_SEETA_MODEL` overrides it.

use std::path::PathBuf;
use std::process::Command;

const MODEL: &str = "model/seeta_fd_frontal_v1.0.bin";

fn main() {
    println!("cargo:rerun-if-env-changed=PRIVET_SEETA_MODEL");
    println!("cargo:rerun-if-changed=build.rs");
    let path = match std::env::var_os("PRIVET_SEETA_MODEL") {
        Some(p) => PathBuf::from(p),
        None => find_in_metadata().unwrap_or_else(|e| {
            panic!("privet-vision: cannot locate rustface's SeetaFace model ({e}); set PRIVET_SEETA_MODEL to its path")
        }),
    };
    if !path.is_file() {
        panic!(
            "privet-vision: SeetaFace model not found at {}",
            path.display()
        );
    }
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rustc-env=PRIVET_SEETA_MODEL_PATH={}", path.display());
}

fn find_in_metadata() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?;
    let mut cmd = Command::new(cargo);
    cmd.args(["metadata", "--format-version", "1", "--offline"]);
    // Only the packages this target builds: without the filter cargo wants every platform's
    // dependencies (e.g. Windows-only crates), which a fresh registry cache does not hold.
    if let Some(target) = std::env::var_os("TARGET") {
        cmd.arg("--filter-platform").arg(target);
    }
    let out = cmd
        .arg("--manifest-path")
        .arg(PathBuf::from(manifest).join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("no packages in cargo metadata")?;
    for p in packages {
        if p["name"] == "rustface" {
            let manifest = p["manifest_path"]
                .as_str()
                .ok_or("rustface has no manifest_path")?;
            let dir = PathBuf::from(manifest);
            let dir = dir.parent().ok_or("manifest_path has no parent")?;
            return Ok(dir.join(MODEL));
        }
    }
    Err("rustface is not in the dependency graph".into())
}
