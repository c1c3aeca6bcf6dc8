//! Both parties in one process, exchanging the same encoded messages a network would carry.

use std::collections::VecDeque;

use crate::client::{ClientOutput, PjcClient};
use crate::error::Result;
use crate::server::{PjcServer, ServerOutput};
use crate::wire::{WireLimits, decode, encode};

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    ClientToServer,
    /// Server to client.
    ServerToClient,
}

/// The result of [`run_local`].
#[derive(Debug)]
pub struct LocalRun {
    /// What the client learned.
    pub client: ClientOutput,
    /// What the server learned.
    pub server: ServerOutput,
    /// Encoded bytes the client sent.
    pub bytes_client_to_server: u64,
    /// Encoded bytes the server sent.
    pub bytes_server_to_client: u64,
    /// Number of messages both ways.
    pub messages: u64,
    /// Every encoded message in order, when recorded.
    pub transcript: Option<Vec<(Direction, Vec<u8>)>>,
}

/// Runs a whole session between `server` and `client`: every message is encoded to its wire
/// bytes, counted, optionally recorded, and decoded under `limits` before delivery, exactly as
/// over a network.
pub fn run_local(
    server: &mut PjcServer,
    client: &mut PjcClient,
    limits: &WireLimits,
    record: bool,
) -> Result<LocalRun> {
    let mut to_server: VecDeque<Vec<u8>> = VecDeque::new();
    let mut to_client: VecDeque<Vec<u8>> = VecDeque::new();
    let mut transcript = record.then(Vec::new);
    let (mut up, mut down, mut messages) = (0u64, 0u64, 0u64);
    let mut send = |dir: Direction, bytes: Vec<u8>, q: &mut VecDeque<Vec<u8>>| {
        match dir {
            Direction::ClientToServer => up += bytes.len() as u64,
            Direction::ServerToClient => down += bytes.len() as u64,
        }
        messages += 1;
        if let Some(t) = transcript.as_mut() {
            t.push((dir, bytes.clone()));
        }
        q.push_back(bytes);
    };
    for m in client.start()? {
        send(Direction::ClientToServer, encode(&m), &mut to_server);
    }
    while !(to_server.is_empty() && to_client.is_empty()) {
        if let Some(bytes) = to_server.pop_front() {
            for m in server.handle(decode(&bytes, limits)?)? {
                send(Direction::ServerToClient, encode(&m), &mut to_client);
            }
        }
        if let Some(bytes) = to_client.pop_front() {
            for m in client.handle(decode(&bytes, limits)?)? {
                send(Direction::ClientToServer, encode(&m), &mut to_server);
            }
        }
    }
    let (Some(c), Some(s)) = (client.output(), server.output()) else {
        return Err(crate::PsiError::misuse(
            "the session ended without an outcome",
        ));
    };
    Ok(LocalRun {
        client: c.clone(),
        server: s.clone(),
        bytes_client_to_server: up,
        bytes_server_to_client: down,
        messages,
        transcript,
    })
}
