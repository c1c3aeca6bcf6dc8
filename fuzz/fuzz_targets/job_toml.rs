//! Job files (privet-job's `Job` parser): any text gives a job or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = privet_job::Job::from_toml(text);
    }
});
