//! Every committed fuzz seed (`fuzz/corpus/TARGET/*`) through its target's code: what CI can
//! run of the fuzzers without libFuzzer. A seed that panics here is a crash the fuzzer would
//! report. (The 10-minute libFuzzer runs are in `fuzz/README.md`.)

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("seed");
            (path, bytes)
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

macro_rules! replay {
    ($($target:ident = $feature:literal),* $(,)?) => {$(
        #[cfg(feature = $feature)]
        #[test]
        fn $target() {
            for (path, bytes) in corpus(stringify!($target)) {
                eprintln!("{}", path.display());
                privet_fuzz_targets::$target::run(&bytes);
            }
            // Targets that parse files leave them in a scratch folder: not after a test run.
            let _ = std::fs::remove_dir_all(privet_fuzz_targets::scratch_dir($feature));
        }
    )*};
}

replay!(
    csv = "csv",
    job_toml = "job_toml",
    net_config = "net_config",
    model = "model",
    frames = "frames",
    secagg_wire = "secagg_wire",
    certificate = "certificate",
    psi_wire = "psi_wire",
    psi_session = "psi_session",
    agreement_toml = "agreement_toml",
    audit_log = "audit_log",
    he_wire = "he_wire",
);
