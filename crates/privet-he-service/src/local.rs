//! The in-process channel: client and server in one process, exchanging the very messages the
//! network service carries (encoded to bytes and decoded again on each side).

use std::time::{Duration, Instant};

use prost::Message;

use crate::client::Channel;
use crate::error::{HeServiceError, Result};
use crate::proto;
use crate::session::ServerSession;

/// A channel to a server session in this process.
#[derive(Debug)]
pub struct LocalChannel {
    session: ServerSession,
    sent: u64,
    received: u64,
    server_time: Duration,
}

impl LocalChannel {
    /// A channel to `session`.
    pub fn new(session: ServerSession) -> Self {
        Self {
            session,
            sent: 0,
            received: 0,
            server_time: Duration::ZERO,
        }
    }

    /// Time spent in the server's handler.
    pub fn server_time(&self) -> Duration {
        self.server_time
    }
}

impl Channel for LocalChannel {
    fn call(&mut self, msg: proto::ClientMessage) -> Result<proto::ServerMessage> {
        let out = msg.encode_to_vec();
        self.sent += out.len() as u64;
        let decoded = proto::ClientMessage::decode(out.as_slice())
            .map_err(|e| HeServiceError::Protocol(format!("request: {e}")))?;
        let t = Instant::now();
        let mut answer = self.session.handle(decoded);
        let spent = t.elapsed();
        self.server_time += spent;
        if let Some(proto::server_message::Body::Infer(r)) = answer.body.as_mut() {
            r.eval_micros = spent.as_micros() as u64;
        }
        let back = answer.encode_to_vec();
        self.received += back.len() as u64;
        proto::ServerMessage::decode(back.as_slice())
            .map_err(|e| HeServiceError::Protocol(format!("answer: {e}")))
    }

    fn bytes(&self) -> (u64, u64) {
        (self.sent, self.received)
    }
}
