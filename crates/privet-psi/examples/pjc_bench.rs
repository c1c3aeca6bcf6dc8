//! The benchmark's privet side without the CLI (bench/psi/run.sh builds it with the CPU's own
//! instruction set, so curve25519-dalek can use its AVX-512 IFMA backend): reads the same CSVs
//! as `privet pjc local`, runs both parties in this process over encoded messages, prints JSON.
//!
//! `pjc_bench A.csv B.csv [--sum]`

use std::path::Path;
use std::time::Instant;

use privet_psi::wire::WireLimits;
use privet_psi::{
    ClientConfig, CsvSpec, Functionality, InputSet, NormalizeOptions, PjcClient, PjcServer,
    ServerConfig, run_local,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: pjc_bench A.csv B.csv [--sum]".into());
    }
    let sum = args.iter().any(|a| a == "--sum");
    let opts = NormalizeOptions::default();
    let t0 = Instant::now();
    let a = InputSet::read_csv(Path::new(&args[1]), &CsvSpec::new("email"), opts)?;
    let mut spec = CsvSpec::new("email");
    if sum {
        spec = spec.with_values("spend");
    }
    let b = InputSet::read_csv(Path::new(&args[2]), &spec, opts)?;
    let read = t0.elapsed().as_secs_f64();
    let f = if sum {
        Functionality::Sum
    } else {
        Functionality::Cardinality
    };
    let mut server = PjcServer::new(ServerConfig::default(), a)?;
    let mut client = PjcClient::new(ClientConfig::new(f), b)?;
    let t1 = Instant::now();
    let run = run_local(&mut server, &mut client, &WireLimits::default(), false)?;
    let secs = t1.elapsed().as_secs_f64();
    println!(
        "{{\"intersection_size\": {}, \"intersection_sum\": {}, \"seconds_protocol\": {secs}, \
         \"seconds_reading\": {read}, \"bytes_client_to_server\": {}, \
         \"bytes_server_to_client\": {}, \"messages\": {}}}",
        run.client.intersection_size,
        run.client.sum.map_or("null".to_string(), |s| s.to_string()),
        run.bytes_client_to_server,
        run.bytes_server_to_client,
        run.messages
    );
    Ok(())
}
