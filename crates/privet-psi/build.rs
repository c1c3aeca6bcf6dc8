//! Compiles `proto/privet/v1/psi.proto` with the vendored `protoc` (no system install).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Read at run time: `env!` would bake one checkout's path into a build script that cargo
    // may reuse for another checkout sharing the target directory.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest_dir).join("../../proto");
    let file = root.join("privet/v1/psi.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.bytes(["."]);
    config.compile_protos(&[file], &[root])?;
    Ok(())
}
