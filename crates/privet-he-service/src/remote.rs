//! The network channel: a session stream to `privet he serve`, used from blocking code.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use privet_transport::{Encoded, Frame, Limits, Reassembler, Security, WireCounter};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::client::Channel;
use crate::error::{HeServiceError, Result};
use crate::proto;
use crate::proto::he_inference_client::HeInferenceClient;

/// A session with a remote server.
#[derive(Debug)]
pub struct RemoteChannel {
    rt: tokio::runtime::Runtime,
    tx: mpsc::Sender<Frame>,
    inbound: Streaming<Frame>,
    reassembler: Reassembler,
    limits: Limits,
    next_id: u64,
    counter: Arc<WireCounter>,
}

impl RemoteChannel {
    /// Connects to `url` (`https://host:port`) and opens a session.
    pub fn connect(url: &str, security: &Security, limits: Limits) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| HeServiceError::Config(format!("runtime: {e}")))?;
        let counter = Arc::new(WireCounter::default());
        let (tx, rx) = mpsc::channel::<Frame>(32);
        let inbound = rt.block_on(async {
            let channel =
                privet_transport::connect(url, security, Some(Arc::clone(&counter))).await?;
            let mut client = HeInferenceClient::new(channel)
                .max_decoding_message_size(limits.grpc_message_limit())
                .max_encoding_message_size(limits.grpc_message_limit());
            let response = client
                .session(ReceiverStream::new(rx))
                .await
                .map_err(|s| HeServiceError::Remote(s.message().to_string()))?;
            Ok::<_, HeServiceError>(response.into_inner())
        })?;
        Ok(Self {
            rt,
            tx,
            inbound,
            reassembler: Reassembler::new(limits),
            limits,
            next_id: 0,
            counter,
        })
    }
}

impl Channel for RemoteChannel {
    fn call(&mut self, msg: proto::ClientMessage) -> Result<proto::ServerMessage> {
        let encoded = Encoded::new(&msg, &self.limits)?;
        let id = self.next_id;
        self.next_id += 1;
        let (tx, inbound, reassembler) = (&self.tx, &mut self.inbound, &mut self.reassembler);
        self.rt.block_on(async {
            for frame in encoded.frames(id) {
                tx.send(frame).await.map_err(|_| {
                    HeServiceError::Protocol("the server closed the session".into())
                })?;
            }
            while let Some(frame) = inbound.next().await {
                let frame = frame.map_err(|s| HeServiceError::Remote(s.message().to_string()))?;
                if let Some(m) = reassembler.push_decode::<proto::ServerMessage>(frame)? {
                    return Ok(m);
                }
            }
            Err(HeServiceError::Protocol(
                "the server closed the session".into(),
            ))
        })
    }

    fn bytes(&self) -> (u64, u64) {
        (
            self.counter.written.load(Ordering::Relaxed),
            self.counter.read.load(Ordering::Relaxed),
        )
    }
}
