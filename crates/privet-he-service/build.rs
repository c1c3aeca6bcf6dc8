//! Compiles `proto/privet/v1/he.proto` with the vendored `protoc` (no system install).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Read at run time: `env!` would bake one checkout's path into a build script that cargo
    // may reuse for another checkout sharing the target directory.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest_dir).join("../../proto");
    let file = root.join("privet/v1/he.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.bytes(["."]);
    // Frames are privet-transport's (same fields as privet.v1.Frame).
    config.extern_path(".privet.he.v1.Frame", "::privet_transport::Frame");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &[file], &[root])?;
    Ok(())
}
