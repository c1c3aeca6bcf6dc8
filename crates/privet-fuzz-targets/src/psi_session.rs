//! Hostile message sequences against both state machines: a real client opens a session with a
//! real server; the fuzzer's messages (length-prefixed wire bytes) are then fed to the server
//! and to a client awaiting the server's hello. Nothing may panic.

use privet_psi::wire::{WireLimits, decode};
use privet_psi::{
    ClientConfig, Functionality, InputSet, NormalizeOptions, PjcClient, PjcServer, ServerConfig,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn parties() -> (PjcServer, PjcClient) {
    let opts = NormalizeOptions::default();
    let mut cfg = ClientConfig::new(Functionality::Sum);
    cfg.limits.chunk_elements = 2;
    let server = PjcServer::with_rng(
        ServerConfig::default(),
        InputSet::from_identifiers(["a", "b", "c"], opts).unwrap(),
        ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    let client = PjcClient::with_rng(
        cfg,
        InputSet::from_pairs([("a", 1), ("z", 2)], opts).unwrap(),
        ChaCha20Rng::seed_from_u64(2),
    )
    .unwrap();
    (server, client)
}

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let limits = WireLimits::default();
    let (mut server, mut client) = parties();
    let hello = client.start().unwrap().remove(0);
    let _ = server.handle(hello);
    let (_, mut fresh_client) = parties();
    let _ = fresh_client.start();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (msg, tail) = rest[2..].split_at(len);
        rest = tail;
        if let Ok(m) = decode(msg, &limits) {
            let _ = server.handle(m.clone());
            let _ = fresh_client.handle(m);
        }
    }
}
