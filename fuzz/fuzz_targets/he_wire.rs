//! libFuzzer entry for `privet_fuzz_targets::he_wire` (the target's code and its docs live there,
//! so that `cargo test` replays the committed corpus through the same code).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| privet_fuzz_targets::he_wire::run(data));
