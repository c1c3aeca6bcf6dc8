//! A node's session with its coordinator: it dials out (so nodes behind NAT work), keeps one
//! stream open (reconnecting with exponential backoff and jitter), describes its data when a job
//! asks, joins jobs, trains when asked and answers. Everything it sends goes through the
//! [`Egress`](crate::egress::Egress) chokepoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use privet_data::Encoder;
use privet_fl::engine::{ClientProtocol, ToClient};
use privet_fl::{ClientId, UpdateTransform};
use privet_identity::{Name, PeerVerifier, Role, load_signing_key};
use privet_job::{Job, JobStack, Protocol};
use privet_secagg::SharedKeyMap;
use privet_transport::{Encoded, Frame, Reassembler, Security, WireCounter, connect};
use privet_wire::proto::coordinator_message::Body as In;
use privet_wire::proto::federation_client::FederationClient;
use privet_wire::proto::{self, CoordinatorMessage};
use privet_wire::{Addressed, PROTOCOL_VERSION};
use rand::Rng;
use tokio::sync::{mpsc, watch};

use crate::audit::NodeAudit;
use crate::backend::{JobTrainer, NodeBackend};
use crate::config::NodeConfig;
use crate::egress::{Egress, Failure, Outgoing};
use crate::error::NodeError;

/// A job the node takes part in.
struct JobCtx {
    trainer: Box<dyn JobTrainer>,
    protocol: Box<dyn ClientProtocol>,
    transforms: Vec<Box<dyn UpdateTransform>>,
    /// Secure aggregation: the other participants' verified identities.
    peers: Option<Peers>,
}

/// The identities a secure-aggregation node trusts: keys from certificates that chain to its
/// CA, carry the node role and name the node the job lists at that client index.
struct Peers {
    keys: SharedKeyMap,
    verifier: PeerVerifier,
    /// The job's nodes; node `i` is client `i`.
    nodes: Vec<Name>,
}

/// What a node keeps across sessions: the jobs it has joined, the egress policies, and its
/// agreements, ledger and head witness.
#[derive(Default)]
struct State {
    jobs: Mutex<HashMap<String, Arc<Mutex<JobCtx>>>>,
    egress: Mutex<Egress>,
    audit: Option<Mutex<NodeAudit>>,
}

impl State {
    /// Checks a job against this node's agreements and policy before its policy is registered
    /// (and so before anything leaves for it).
    fn admit(&self, job_id: &str, job: &Job) -> Result<(), NodeError> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        match lock(audit).check_job(job_id, job)? {
            Ok(()) => Ok(()),
            Err(refusal) => Err(NodeError::Refusal(refusal)),
        }
    }
}

/// How a session ended.
enum SessionEnd {
    Shutdown,
    Closed,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Checks what a node can check alone before it dials: its certificate (readable, a node's, its
/// own name, its key matching) and its data (the CSV parses and has its label). A misconfigured
/// node stops here with one line instead of retrying forever.
pub fn check_start(config: &NodeConfig, backend: &dyn NodeBackend) -> Result<(), NodeError> {
    match &config.security {
        Security::InsecureDev => tracing::warn!(
            "--insecure-dev: plain text and an unauthenticated name; never use this with real data"
        ),
        Security::Tls(files) => {
            let own = privet_identity::own_identity(files)?;
            if own.role != Role::Node {
                return Err(NodeError::Config(format!(
                    "{} is a {}'s certificate; a node needs one issued with --role node",
                    files.cert.display(),
                    own.role
                )));
            }
            if own.name != config.name {
                return Err(NodeError::Config(format!(
                    "{} names {:?}, but this node is configured as {:?}",
                    files.cert.display(),
                    own.name.as_str(),
                    config.name.as_str()
                )));
            }
        }
    }
    let table = backend.table()?;
    tracing::info!(rows = table.num_rows(), "local data readable");
    Ok(())
}

/// Runs a node until `shutdown` turns true, after [`check_start`]. Transport failures are
/// retried with exponential backoff (0.25 s doubling up to `max_backoff_secs`, with jitter); a
/// fatal refusal by the coordinator (unknown node, unsupported protocol version) ends the node
/// with an error that carries the coordinator's reason.
pub async fn run_node(
    config: NodeConfig,
    backend: Arc<dyn NodeBackend>,
    mut shutdown: watch::Receiver<bool>,
    counter: Option<Arc<WireCounter>>,
) -> Result<(), NodeError> {
    check_start(&config, backend.as_ref())?;
    let audit = config.audit.clone().map(NodeAudit::load).transpose()?;
    let state = Arc::new(State {
        audit: audit.map(Mutex::new),
        ..State::default()
    });
    let max_backoff = Duration::from_secs_f64(config.max_backoff_secs);
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let started = Instant::now();
        match session(&config, &backend, &state, shutdown.clone(), counter.clone()).await {
            Ok(SessionEnd::Shutdown) => return Ok(()),
            Ok(SessionEnd::Closed) => tracing::warn!("the coordinator closed the session"),
            Err(e @ (NodeError::Refused(_) | NodeError::Audit(_))) => return Err(e),
            Err(e) => tracing::warn!("session failed: {}", explain(&e.to_string())),
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(250);
        }
        let jitter = rand::rng().random_range(0.5..1.0);
        let wait = backoff.mul_f64(jitter);
        tracing::info!("reconnecting in {:.1} s", wait.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}

/// The session's sending side: every message passes the egress chokepoint, then is framed.
struct Sender<'a> {
    tx: mpsc::Sender<Frame>,
    next_id: u64,
    limits: privet_transport::Limits,
    state: &'a State,
}

impl Sender<'_> {
    async fn send(&mut self, out: Outgoing) -> Result<(), NodeError> {
        let released = lock(&self.state.egress).release(out);
        let msg = match released {
            Ok(msg) => msg,
            Err(refusal) => {
                // Nothing leaves; the coordinator sees the round as a dropout.
                tracing::error!("{refusal}");
                return Ok(());
            }
        };
        let encoded = Encoded::new(&msg, &self.limits)?;
        for frame in encoded.frames(self.next_id) {
            self.tx
                .send(frame)
                .await
                .map_err(|_| NodeError::Session("the session closed".into()))?;
        }
        self.next_id += 1;
        Ok(())
    }

    async fn fail(
        &mut self,
        job_id: String,
        round: u32,
        failure: Failure,
    ) -> Result<(), NodeError> {
        self.send(Outgoing::Failure {
            job_id,
            round,
            failure,
        })
        .await
    }
}

async fn session(
    config: &NodeConfig,
    backend: &Arc<dyn NodeBackend>,
    state: &State,
    mut shutdown: watch::Receiver<bool>,
    counter: Option<Arc<WireCounter>>,
) -> Result<SessionEnd, NodeError> {
    let channel = connect(&config.coordinator, &config.security, counter).await?;
    let limit = config.limits.grpc_message_limit();
    let mut client = FederationClient::new(channel)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let (tx, rx) = mpsc::channel::<Frame>(8);
    let mut out = Sender {
        tx,
        next_id: 0,
        limits: config.limits,
        state,
    };
    out.send(Outgoing::Hello(proto::Hello {
        protocol_version: PROTOCOL_VERSION,
        node: config.name.to_string(),
        software: format!("privet {}", env!("CARGO_PKG_VERSION")),
        audit_from: state.audit.as_ref().and_then(|a| lock(a).audit_from()),
    }))
    .await?;
    let response = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| NodeError::Session(privet_transport::error_chain(&s)))?;
    let mut inbound = response.into_inner();
    let mut reassembler = Reassembler::new(config.limits);
    loop {
        let frame = tokio::select! {
            f = inbound.message() => f,
            _ = shutdown.wait_for(|s| *s) => return Ok(SessionEnd::Shutdown),
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(SessionEnd::Closed),
            Err(status) => {
                return Err(NodeError::Session(privet_transport::error_chain(&status)));
            }
        };
        let Some(msg) = reassembler.push_decode::<CoordinatorMessage>(frame)? else {
            continue;
        };
        let Some(body) = msg.body else { continue };
        match body {
            In::Welcome(w) => {
                if let Some(audit) = &state.audit {
                    lock(audit).witness(&w.audit_head, &w.audit_proof)?;
                }
                tracing::info!(node = %w.node, "connected to the coordinator");
            }
            In::Refused(r) if r.fatal => return Err(NodeError::Refused(r.reason)),
            In::Refused(r) => tracing::warn!("the coordinator refused a message: {}", r.reason),
            In::DescribeData(d) => describe(backend.as_ref(), state, &mut out, d).await?,
            In::JoinJob(j) => match join(config, backend.as_ref(), state, &j) {
                Ok(ctx) => {
                    tracing::info!(job = %j.job_id, client = j.client, "joined job");
                    lock(&state.jobs).insert(j.job_id, Arc::new(Mutex::new(ctx)));
                }
                Err(e) => {
                    tracing::error!(job = %j.job_id, "cannot join: {e}");
                    out.fail(j.job_id, 0, failure_of(e)).await?;
                }
            },
            In::Fit(fit) => {
                let (job_id, round) = (fit.job_id.clone(), fit.round);
                match Addressed::<ToClient>::try_from(fit) {
                    Ok(msg) => respond(state, &mut out, msg).await?,
                    Err(e) => {
                        out.fail(job_id, round, Failure::Protocol(e.to_string()))
                            .await?
                    }
                }
            }
            In::Protocol(p) => {
                let (job_id, round) = (p.job_id.clone(), p.round);
                match Addressed::<ToClient>::try_from(p) {
                    Ok(msg) => respond(state, &mut out, msg).await?,
                    Err(e) => {
                        out.fail(job_id, round, Failure::Protocol(e.to_string()))
                            .await?
                    }
                }
            }
            In::PeerCertificates(p) => enrol(state, &p),
            In::JobDone(d) => {
                tracing::info!(job = %d.job_id, state = %d.state, "job over");
                lock(&state.jobs).remove(&d.job_id);
                lock(&state.egress).forget(&d.job_id);
            }
        }
    }
}

/// The failure the coordinator is told about for a node-side error.
fn failure_of(e: NodeError) -> Failure {
    match e {
        NodeError::Refusal(r) => Failure::Refused(r),
        NodeError::Data(d) => Failure::Data(d),
        NodeError::Fl(f) => Failure::Round(f),
        // Job, identity and configuration errors are about the job and this node's set-up:
        // their messages name keys, files and names, not data.
        other => Failure::Job(other.to_string()),
    }
}

/// Answers a `DescribeData`: registers the job's policy, reads the table, releases the
/// summary the policy allows.
async fn describe(
    backend: &dyn NodeBackend,
    state: &State,
    out: &mut Sender<'_>,
    d: proto::DescribeData,
) -> Result<(), NodeError> {
    let prepared = Job::from_toml(&d.job_toml)
        .map_err(NodeError::from)
        .and_then(|job| {
            state.admit(&d.job_id, &job)?;
            lock(&state.egress)
                .register(&d.job_id, &job)
                .map_err(|e| NodeError::Config(e.to_string()))?;
            let table = backend.table()?;
            lock(&state.egress).summarize(&d.job_id, &table)
        });
    match prepared {
        Ok(summary) => {
            out.send(Outgoing::Summary {
                job_id: d.job_id,
                summary,
            })
            .await
        }
        Err(e) => {
            tracing::error!(job = %d.job_id, "cannot describe the local data: {e}");
            out.fail(d.job_id, 0, failure_of(e)).await
        }
    }
}

fn join(
    config: &NodeConfig,
    backend: &dyn NodeBackend,
    state: &State,
    j: &proto::JoinJob,
) -> Result<JobCtx, NodeError> {
    let job = Job::from_toml(&j.job_toml)?;
    state.admit(&j.job_id, &job)?;
    lock(&state.egress)
        .register(&j.job_id, &job)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let encoder: Encoder = serde_json::from_str(&j.encoder_json).map_err(|e| {
        NodeError::Wire(privet_wire::WireError {
            what: "feature encoding",
            why: e.to_string(),
        })
    })?;
    let client = ClientId(j.client);
    let nodes = job
        .deployment
        .as_ref()
        .map(|d| d.nodes.clone())
        .unwrap_or_default();
    if nodes.get(client.0 as usize) != Some(&config.name) {
        return Err(NodeError::Config(format!(
            "the job lists client {} as {:?}, not as this node ({:?})",
            client.0,
            nodes.get(client.0 as usize).map(Name::as_str),
            config.name.as_str()
        )));
    }
    // The coordinator's count of the largest node's rows fixes SecAgg+'s weight bound (both
    // ends must quantize alike); a smaller one than this node's only clips its weight.
    let largest = (j.largest_client > 0).then_some(j.largest_client);
    let stack = JobStack::sized(&job, nodes.len(), largest)?;
    let keys = SharedKeyMap::default();
    let (signer, peers) = match stack.protocol() {
        Protocol::Plain => (None, None),
        Protocol::SecAggPlus(_) => {
            let Security::Tls(files) = &config.security else {
                return Err(NodeError::Config(
                    "secure aggregation needs this node's certificate (its signing identity); \
                     it cannot run with --insecure-dev"
                        .into(),
                ));
            };
            let peers = Peers {
                keys: keys.clone(),
                verifier: PeerVerifier::new(&files.ca)?,
                nodes,
            };
            (Some(load_signing_key(files)?), Some(peers))
        }
    };
    let client_side = stack.client(client, signer, Arc::new(keys))?;
    let trainer = backend.join(&job, &encoder, j.client)?;
    Ok(JobCtx {
        trainer,
        protocol: client_side.protocol,
        transforms: client_side.transforms,
        peers,
    })
}

/// Enrols the identities of a secure-aggregation round's participants after checking each
/// certificate against this node's CA and the job's node list. A certificate that fails is
/// left out (and logged): the protocol then refuses that participant's signed keys.
fn enrol(state: &State, msg: &proto::PeerCertificates) {
    let Some(ctx) = lock(&state.jobs).get(&msg.job_id).cloned() else {
        tracing::warn!(job = %msg.job_id, "certificates for a job this node has not joined");
        return;
    };
    let guard = lock(&ctx);
    let Some(peers) = &guard.peers else {
        tracing::warn!(job = %msg.job_id, "certificates for a job without secure aggregation");
        return;
    };
    for peer in &msg.peers {
        let client = ClientId(peer.client);
        let Some(expected) = peers.nodes.get(peer.client as usize) else {
            tracing::warn!(job = %msg.job_id, client = peer.client, "certificate for a client the job does not have");
            continue;
        };
        match peers
            .verifier
            .verify_node(&peer.certificate, expected.as_str())
        {
            Ok(key) => {
                if !peers.keys.has(client, &key) {
                    tracing::debug!(job = %msg.job_id, node = %expected, "identity enrolled");
                    peers.keys.insert(client, key);
                }
            }
            Err(e) => {
                tracing::warn!(job = %msg.job_id, round = msg.round, node = %expected, "identity refused: {e}");
            }
        }
    }
}

/// Runs the job's client protocol on `msg` (off the async threads: it may train) and sends its
/// answer, or the failure.
async fn respond(
    state: &State,
    out: &mut Sender<'_>,
    msg: Addressed<ToClient>,
) -> Result<(), NodeError> {
    let Addressed { job_id, msg } = msg;
    let round = msg.round();
    let Some(ctx) = lock(&state.jobs).get(&job_id).cloned() else {
        return out.fail(job_id, round, Failure::NotJoined).await;
    };
    // The agreement must still be in force for every round's answer.
    let checked = state
        .audit
        .as_ref()
        .map_or(Ok(()), |audit| lock(audit).check_round(&job_id));
    if let Err(refusal) = checked {
        tracing::error!(job = %job_id, round, "{refusal}");
        return out.fail(job_id, round, Failure::Refused(refusal)).await;
    }
    let result = tokio::task::spawn_blocking(move || {
        let mut guard = lock(&ctx);
        let ctx = &mut *guard;
        ctx.protocol
            .respond(&msg, ctx.trainer.as_mut(), &ctx.transforms)
    })
    .await;
    match result {
        Ok(Ok(answer)) => out.send(Outgoing::Answer { job_id, answer }).await,
        Ok(Err(e)) => {
            tracing::error!(job = %job_id, round, "training or protocol step failed: {e}");
            out.fail(job_id, round, Failure::Round(e)).await
        }
        Err(e) => {
            tracing::error!(job = %job_id, round, "training task failed: {e}");
            out.fail(
                job_id,
                round,
                Failure::Round(privet_fl::FlError::Training(String::new())),
            )
            .await
        }
    }
}

/// A failed session in words an operator can act on. TLS 1.3 lets a client finish its handshake
/// before the server has checked the client's certificate, so a coordinator's refusal reaches
/// the node as a TLS alert on its first message, deep in the transport's error chain.
fn explain(text: &str) -> String {
    if let Some(rest) = text.split("received fatal alert: ").nth(1) {
        let alert = rest.split([':', ',', ' ', ')']).next().unwrap_or(rest);
        return format!(
            "the coordinator refused this node's certificate (TLS alert {alert}): check that \
             [tls] cert was issued by the federation's CA, has not expired and names this node \
             ({text})"
        );
    }
    if text.contains("invalid peer certificate") {
        return format!(
            "this node does not trust the coordinator's certificate: check that [tls] ca is the \
             federation's CA and that the coordinator's address is one its certificate names \
             ({text})"
        );
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn tls_refusals_are_explained() {
        let e = explain(
            "transport error: h2 protocol error: error reading a body from connection: \
             received fatal alert: UnknownCA",
        );
        assert!(
            e.starts_with("the coordinator refused this node's certificate (TLS alert UnknownCA)"),
            "{e}"
        );
        let e = explain("tcp connect error: invalid peer certificate: UnknownIssuer");
        assert!(
            e.starts_with("this node does not trust the coordinator's certificate"),
            "{e}"
        );
        assert_eq!(explain("connection refused"), "connection refused");
    }
}
