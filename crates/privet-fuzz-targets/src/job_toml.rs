//! Job files (privet-job's `Job` parser): any text gives a job or an error, never a panic.

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = privet_job::Job::from_toml(text);
    }
}
