//! CSV files (privet-data): any bytes give a table or a `DataError` whose message stays short.

use privet_data::{CsvOptions, parse_csv};

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let opts = CsvOptions::new("y")
        .with_categorical(["c"])
        .with_drop(["id"])
        .with_max_rows(10_000)
        .with_max_line_bytes(4096);
    for opts in [
        opts.clone(),
        CsvOptions::default().with_max_line_bytes(4096),
    ] {
        match parse_csv("fuzz.csv", data, &opts) {
            Ok(table) => {
                let _ = table.num_rows();
            }
            Err(e) => {
                let msg = e.to_string();
                // Errors quote at most a short prefix of anything from the file.
                assert!(msg.len() < 4096, "error message of {} bytes", msg.len());
            }
        }
    }
}
