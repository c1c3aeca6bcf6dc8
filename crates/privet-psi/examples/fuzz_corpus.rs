//! Writes the wire messages of two small sessions (a sum with noise, and a cardinality with the
//! intersection revealed) into a directory, as seed corpus for the fuzz targets:
//! `cargo run -p privet-psi --example fuzz_corpus -- fuzz/corpus/psi_wire`.

use privet_psi::wire::WireLimits;
use privet_psi::{
    ClientConfig, DpConfig, Functionality, InputSet, NormalizeOptions, PjcClient, PjcServer,
    ServerConfig, ValueBounds, run_local,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_corpus DIR")?;
    std::fs::create_dir_all(&dir)?;
    let opts = NormalizeOptions::default();
    let server_set = InputSet::from_identifiers(["a", "b", "c", "d", "e"], opts)?;
    let client_set = InputSet::from_pairs([("a", 1), ("c", -4), ("x", 9)], opts)?;
    let mut n = 0;
    for reveal in [false, true] {
        let server_cfg = ServerConfig {
            dp: (!reveal).then_some(DpConfig::pure(1.0)),
            bounds: Some(ValueBounds::new(-10, 10)?),
            allow_reveal_to_client: reveal,
            ..ServerConfig::default()
        };
        let mut client_cfg = ClientConfig::new(if reveal {
            Functionality::Cardinality
        } else {
            Functionality::Sum
        });
        client_cfg.request_intersection = reveal;
        client_cfg.limits.chunk_elements = 2;
        let mut server = PjcServer::new(server_cfg, server_set.clone())?;
        let mut client = PjcClient::new(client_cfg, client_set.clone())?;
        let run = run_local(&mut server, &mut client, &WireLimits::default(), true)?;
        for (_, bytes) in run.transcript.unwrap_or_default() {
            std::fs::write(format!("{dir}/msg{n:02}"), bytes)?;
            n += 1;
        }
    }
    println!("wrote {n} messages to {dir}");
    Ok(())
}
