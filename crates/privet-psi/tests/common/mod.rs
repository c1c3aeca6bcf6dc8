//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
#![allow(dead_code)]

use privet_psi::{
    ClientConfig, Functionality, InputSet, LocalRun, NormalizeOptions, PjcClient, PjcServer,
    ServerConfig, run_local, wire::WireLimits,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn ids(v: &[&str]) -> InputSet {
    InputSet::from_identifiers(v.iter().copied(), NormalizeOptions::default()).unwrap()
}

pub fn pairs(v: &[(&str, i64)]) -> InputSet {
    InputSet::from_pairs(v.iter().copied(), NormalizeOptions::default()).unwrap()
}

/// Runs one session with seeded generators.
pub fn run(
    server_cfg: ServerConfig,
    server_set: InputSet,
    client_cfg: ClientConfig,
    client_set: InputSet,
    seed: u64,
    record: bool,
) -> privet_psi::Result<LocalRun> {
    let mut server = PjcServer::with_rng(server_cfg, server_set, rng(seed))?;
    let mut client = PjcClient::with_rng(client_cfg, client_set, rng(seed + 1_000_000))?;
    run_local(&mut server, &mut client, &WireLimits::default(), record)
}

/// Small chunks, so that every list travels in several messages.
pub fn small_chunks(mut cfg: ClientConfig, chunk: u32) -> ClientConfig {
    cfg.limits.chunk_elements = chunk;
    cfg
}

pub fn sum_client() -> ClientConfig {
    ClientConfig::new(Functionality::Sum)
}
