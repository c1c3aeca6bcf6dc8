//! Node sessions: each node opens one bidirectional stream of frames; the hub checks its
//! `Hello` (protocol version, the certificate's name and role, the admitted nodes), keeps one
//! writer per session, and routes what a node sends to the driver of the job it names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use privet_identity::Role;
use privet_transport::{Encoded, Frame, Reassembler};
use privet_wire::PROTOCOL_VERSION;
use privet_wire::proto::coordinator_message::Body as Out;
use privet_wire::proto::node_message::Body as In;
use privet_wire::proto::{self, CoordinatorMessage, NodeMessage};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};

use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::metrics::Metrics;
use crate::store::StoreActor;

/// What a job's driver hears about.
#[derive(Debug)]
pub(crate) enum JobEvent {
    NodeUp(String),
    NodeDown(String),
    FromNode(String, In),
    Deadline {
        round: u32,
        stage: u8,
    },
    Wake,
    /// An operator cancelled the job (already recorded in the store).
    Cancel,
}

#[derive(Debug)]
pub(crate) struct NodeHandle {
    session: u64,
    pub(crate) tx: mpsc::UnboundedSender<Arc<Encoded>>,
    /// The node's TLS certificate (DER), verified by the handshake; `None` in insecure dev mode.
    cert: Option<Arc<[u8]>>,
}

#[derive(Debug, Default)]
pub(crate) struct Hub {
    pub(crate) nodes: HashMap<String, NodeHandle>,
    pub(crate) jobs: HashMap<String, mpsc::UnboundedSender<JobEvent>>,
    next_session: u64,
}

/// State shared by the services and the job drivers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) hub: Mutex<Hub>,
    pub(crate) store: StoreActor,
    pub(crate) config: CoordinatorConfig,
    pub(crate) metrics: Metrics,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The coordinator's own certificate name (`None` in insecure dev mode).
    pub(crate) own_name: Option<String>,
    /// Agreements and the audit log (`None` in insecure dev mode: heads need a signing key).
    pub(crate) audit: Option<crate::audit::Audit>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock is a bug elsewhere; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn send(&self, node: &str, msg: Arc<Encoded>) -> bool {
        let hub = lock(&self.hub);
        match hub.nodes.get(node) {
            Some(handle) => handle.tx.send(msg).is_ok(),
            None => false,
        }
    }

    pub(crate) fn encode(&self, body: Out) -> Result<Arc<Encoded>, CoordinatorError> {
        Ok(Arc::new(Encoded::new(
            &CoordinatorMessage { body: Some(body) },
            &self.config.limits,
        )?))
    }

    pub(crate) fn connected(&self, node: &str) -> bool {
        lock(&self.hub).nodes.contains_key(node)
    }

    /// The certificate of a connected node's current session.
    pub(crate) fn certificate(&self, node: &str) -> Option<Arc<[u8]>> {
        lock(&self.hub).nodes.get(node).and_then(|h| h.cert.clone())
    }

    pub(crate) fn notify_jobs(&self, make: impl Fn() -> JobEvent) {
        let hub = lock(&self.hub);
        for tx in hub.jobs.values() {
            let _ = tx.send(make());
        }
    }
}

/// Turns a session's outgoing messages into frames.
pub(crate) async fn writer(
    mut out: mpsc::UnboundedReceiver<Arc<Encoded>>,
    frames: mpsc::Sender<Result<Frame, Status>>,
    shared: Arc<Shared>,
) {
    let mut message_id = 0u64;
    while let Some(msg) = out.recv().await {
        for frame in msg.frames(message_id) {
            shared.metrics.bytes_sent(frame.data.len() as u64 + 16);
            if frames.send(Ok(frame)).await.is_err() {
                return;
            }
        }
        message_id += 1;
    }
}

async fn next_message(
    inbound: &mut Streaming<Frame>,
    reassembler: &mut Reassembler,
    shared: &Shared,
) -> Result<Option<NodeMessage>, CoordinatorError> {
    while let Some(frame) = inbound.next().await {
        let frame = frame.map_err(|s| {
            CoordinatorError::Transport(privet_transport::TransportError::Frame(
                s.message().to_string(),
            ))
        })?;
        shared.metrics.bytes_received(frame.data.len() as u64 + 16);
        if let Some(msg) = reassembler.push_decode::<NodeMessage>(frame)? {
            return Ok(Some(msg));
        }
    }
    Ok(None)
}

pub(crate) fn refuse(
    shared: &Shared,
    tx: &mpsc::UnboundedSender<Arc<Encoded>>,
    reason: &str,
    fatal: bool,
) {
    shared.metrics.refused();
    if let Ok(msg) = shared.encode(Out::Refused(proto::Refused {
        reason: reason.to_string(),
        fatal,
    })) {
        let _ = tx.send(msg);
    }
}

/// Reads a session: the `Hello`, then messages routed to jobs.
pub(crate) async fn reader(
    mut inbound: Streaming<Frame>,
    out: mpsc::UnboundedSender<Arc<Encoded>>,
    peer: Option<crate::admin::Peer>,
    shared: Arc<Shared>,
) {
    let (cert_name, cert) = match peer {
        Some(crate::admin::Peer { role, name, .. }) if role != Role::Node => {
            tracing::warn!(%name, %role, "session refused: not a node certificate");
            refuse(
                &shared,
                &out,
                &format!("{name} holds a {role} certificate; only nodes open sessions"),
                true,
            );
            return;
        }
        Some(crate::admin::Peer { name, cert, .. }) => (Some(name), Some(cert)),
        None => (None, None),
    };
    let mut reassembler = Reassembler::new(shared.config.limits);
    let hello = match next_message(&mut inbound, &mut reassembler, &shared).await {
        Ok(Some(NodeMessage {
            body: Some(In::Hello(hello)),
        })) => hello,
        Ok(None) => return,
        Ok(Some(_)) => {
            tracing::warn!(node = ?cert_name, "session refused: first message is not Hello");
            refuse(&shared, &out, "the first message must be Hello", true);
            return;
        }
        Err(e) => {
            tracing::warn!(node = ?cert_name, "session refused: {e}");
            refuse(&shared, &out, &e.to_string(), true);
            return;
        }
    };
    let name = match admit(&shared, &hello, cert_name) {
        Ok(name) => name,
        Err(reason) => {
            tracing::warn!(claimed = %hello.node, "session refused: {reason}");
            refuse(&shared, &out, &reason, true);
            return;
        }
    };
    let session = {
        let mut hub = lock(&shared.hub);
        hub.next_session += 1;
        let session = hub.next_session;
        if hub
            .nodes
            .insert(
                name.clone(),
                NodeHandle {
                    session,
                    tx: out.clone(),
                    cert,
                },
            )
            .is_some()
        {
            tracing::info!(node = %name, "node reconnected; the older session is closed");
        }
        shared.metrics.nodes_connected(hub.nodes.len());
        session
    };
    let (audit_head, audit_proof) = match &shared.audit {
        Some(audit) => audit.welcome(hello.audit_from).await,
        None => (String::new(), Vec::new()),
    };
    if let Ok(welcome) = shared.encode(Out::Welcome(proto::Welcome {
        protocol_version: PROTOCOL_VERSION,
        node: name.clone(),
        audit_head,
        audit_proof,
    })) {
        let _ = out.send(welcome);
    }
    tracing::info!(node = %name, software = %hello.software, "node connected");
    shared.notify_jobs(|| JobEvent::NodeUp(name.clone()));
    drop(out);
    let mut stop = shared.shutdown.clone();
    loop {
        let next = tokio::select! {
            next = next_message(&mut inbound, &mut reassembler, &shared) => next,
            _ = stop.wait_for(|s| *s) => Ok(None),
        };
        match next {
            Ok(Some(msg)) => route(&shared, &name, msg),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(node = %name, "session ended: {e}");
                if let Some(tx) = lock(&shared.hub).nodes.get(&name).map(|h| h.tx.clone()) {
                    refuse(&shared, &tx, &e.to_string(), true);
                }
                break;
            }
        }
    }
    let removed = {
        let mut hub = lock(&shared.hub);
        let current = hub.nodes.get(&name).is_some_and(|h| h.session == session);
        if current {
            hub.nodes.remove(&name);
        }
        shared.metrics.nodes_connected(hub.nodes.len());
        current
    };
    if removed {
        tracing::info!(node = %name, "node disconnected");
        shared.notify_jobs(|| JobEvent::NodeDown(name.clone()));
    }
}

/// Checks a `Hello`; returns the node's name.
fn admit(
    shared: &Shared,
    hello: &proto::Hello,
    cert_name: Option<String>,
) -> Result<String, String> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(format!(
            "wire protocol version {} is not supported (this coordinator speaks {PROTOCOL_VERSION})",
            hello.protocol_version
        ));
    }
    let name = match cert_name {
        Some(cert) if cert != hello.node => {
            return Err(format!(
                "the certificate names {cert:?} but the node says it is {:?}",
                hello.node
            ));
        }
        Some(cert) => cert,
        None => hello
            .node
            .parse::<privet_identity::Name>()
            .map_err(|e| e.to_string())?
            .to_string(),
    };
    if shared.config.admins.iter().any(|a| *a == name.as_str()) {
        return Err(format!("{name} is an admin identity, not a node"));
    }
    if !shared.config.nodes.is_empty() && !shared.config.nodes.iter().any(|n| *n == name.as_str()) {
        return Err(format!(
            "unknown node {name:?}: not admitted by this coordinator"
        ));
    }
    Ok(name)
}

/// Hands a node's message to the job it names.
fn route(shared: &Shared, node: &str, msg: NodeMessage) {
    let job_id = match &msg.body {
        Some(In::DataSummary(m)) => m.job_id.clone(),
        Some(In::Update(m)) => m.job_id.clone(),
        Some(In::Protocol(m)) => m.job_id.clone(),
        Some(In::Error(m)) => m.job_id.clone(),
        Some(In::Hello(_)) | None => {
            let tx = lock(&shared.hub).nodes.get(node).map(|h| h.tx.clone());
            if let Some(tx) = tx {
                refuse(
                    shared,
                    &tx,
                    "unexpected message (a second Hello, or empty)",
                    false,
                );
            }
            tracing::warn!(%node, "refused an unexpected message");
            return;
        }
    };
    let Some(body) = msg.body else { return };
    let hub = lock(&shared.hub);
    match hub.jobs.get(&job_id) {
        Some(tx) => {
            let _ = tx.send(JobEvent::FromNode(node.to_string(), body));
        }
        None => {
            let tx = hub.nodes.get(node).map(|h| h.tx.clone());
            drop(hub);
            tracing::warn!(%node, job = %job_id, "refused a message for an unknown or finished job");
            if let Some(tx) = tx {
                refuse(shared, &tx, &format!("no running job {job_id:?}"), false);
            }
        }
    }
}
