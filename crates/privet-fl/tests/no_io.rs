//! The round engine never touches a socket, thread or clock: privet-fl depends on no crate that
//! could give it one, and no source file names one.

#![allow(clippy::unwrap_used)]

use std::path::Path;

#[test]
fn the_engine_depends_on_nothing_that_does_io() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let allowed = ["rand", "rand_chacha", "thiserror", "serde", "serde_json"];
    for line in deps.lines().filter(|l| l.contains('=')) {
        let name = line.split(['=', '.']).next().unwrap().trim();
        assert!(allowed.contains(&name), "privet-fl depends on {name}");
    }
    let mut sources = vec![dir.join("src")];
    while let Some(path) = sources.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                sources.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for forbidden in [
                    "std::net",
                    "std::thread",
                    "Instant::now",
                    "SystemTime",
                    "std::fs",
                ] {
                    assert!(
                        !text.contains(forbidden),
                        "{} uses {forbidden}",
                        p.display()
                    );
                }
            }
        }
    }
}
