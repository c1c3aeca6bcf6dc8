//! The coordinator service: node sessions, the admin API, and one driver task per job that runs
//! the sans-IO round engine of `privet-fl` with real deadlines and persists every finished round.
//!
//! Data flow: a node's session reader reassembles its frames into [`NodeMessage`]s and routes
//! them by job id to the job's driver; the driver feeds them to its
//! [`Coordinator`](privet_fl::engine::Coordinator) and carries out the engine's actions (messages
//! to nodes go to each session's writer; deadlines are timers that come back as events).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use privet_data::{DataSummary, Encoder};
use privet_fl::engine::{
    Action, Checkpoint, Coordinator, Event, FromClient, RoundOutcome, ToClient,
};
use privet_fl::{ClientId, ClientUpdate, TrainMetrics};
use privet_job::{Job, JobStack, Protocol, Start, initial_params};
use privet_ml::Network;
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::PROTOCOL_VERSION;
use crate::config::{CoordinatorConfig, Security};
use crate::error::NetError;
use crate::identity::PeerKeys;
use crate::metrics::Metrics;
use crate::proto::admin_server::{Admin, AdminServer};
use crate::proto::coordinator_message::Body as Out;
use crate::proto::federation_server::{Federation, FederationServer};
use crate::proto::node_message::Body as In;
use crate::proto::{self, CoordinatorMessage, NodeMessage};
use crate::store::{JobRow, JobState, RoundRow, Store};
use privet_identity::{Role, certified_key};
use privet_transport::Frame;
use privet_transport::{Encoded, Reassembler, bytes_to_f32, f32_to_bytes};

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn Stream<Item = Result<proto::ModelChunk, Status>> + Send>>;

/// What a job's driver hears about.
#[derive(Debug)]
enum JobEvent {
    NodeUp(String),
    NodeDown(String),
    FromNode(String, In),
    Deadline { round: u32, stage: u8 },
    Wake,
}

#[derive(Debug)]
struct NodeHandle {
    session: u64,
    tx: mpsc::UnboundedSender<Arc<Encoded>>,
    /// The node's TLS certificate (DER), verified by the handshake; `None` in insecure dev mode.
    cert: Option<Arc<[u8]>>,
}

#[derive(Debug, Default)]
struct Hub {
    nodes: HashMap<String, NodeHandle>,
    jobs: HashMap<String, mpsc::UnboundedSender<JobEvent>>,
    next_session: u64,
}

/// State shared by the services and the job drivers.
#[derive(Debug)]
struct Shared {
    hub: Mutex<Hub>,
    store: Mutex<Store>,
    config: CoordinatorConfig,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock is a bug elsewhere; the data is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn send(&self, node: &str, msg: Arc<Encoded>) -> bool {
        let hub = lock(&self.hub);
        match hub.nodes.get(node) {
            Some(handle) => handle.tx.send(msg).is_ok(),
            None => false,
        }
    }

    fn encode(&self, body: Out) -> Result<Arc<Encoded>, NetError> {
        Ok(Arc::new(Encoded::new(
            &CoordinatorMessage { body: Some(body) },
            &self.config.limits,
        )?))
    }

    fn connected(&self, node: &str) -> bool {
        lock(&self.hub).nodes.contains_key(node)
    }

    /// The certificate of a connected node's current session.
    fn certificate(&self, node: &str) -> Option<Arc<[u8]>> {
        lock(&self.hub).nodes.get(node).and_then(|h| h.cert.clone())
    }

    fn notify_jobs(&self, make: impl Fn() -> JobEvent) {
        let hub = lock(&self.hub);
        for tx in hub.jobs.values() {
            let _ = tx.send(make());
        }
    }
}

/// A running coordinator.
#[derive(Debug)]
pub struct CoordinatorHandle {
    /// The gRPC address it listens on.
    pub addr: SocketAddr,
    /// The metrics address, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), NetError>>,
}

impl CoordinatorHandle {
    /// Stops accepting, ends job drivers (a round in progress is abandoned and redone after a
    /// restart) and waits for the server to finish.
    pub async fn shutdown(mut self) -> Result<(), NetError> {
        let _ = self.shutdown.send(true);
        // Session readers end on the signal, which closes every node's stream; a peer that
        // keeps its half of a stream open does not hold the shutdown up for more than a moment.
        match tokio::time::timeout(Duration::from_secs(5), &mut self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(NetError::Config(format!("coordinator task failed: {e}"))),
            Err(_) => {
                self.task.abort();
                Ok(())
            }
        }
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> Result<(), NetError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(NetError::Config(format!("coordinator task failed: {e}"))),
        }
    }

    /// Asks the coordinator to stop, without waiting.
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts the coordinator: opens the database, resumes unfinished jobs, listens.
pub async fn start(config: CoordinatorConfig) -> Result<CoordinatorHandle, NetError> {
    if config.security == Security::InsecureDev {
        tracing::warn!(
            "--insecure-dev: plain text, node names are NOT authenticated; never use this with \
             real data"
        );
    }
    // Certificates first: a misconfigured coordinator creates nothing.
    let tls = match &config.security {
        Security::Tls(files) => {
            let own = privet_identity::own_identity(files)?;
            if own.role != Role::Coordinator {
                return Err(NetError::Config(format!(
                    "{} is a {}'s certificate; the coordinator needs one issued with --role \
                     coordinator",
                    files.cert.display(),
                    own.role
                )));
            }
            Some(privet_transport::server_config(files)?)
        }
        Security::InsecureDev => None,
    };
    let store = {
        let path = config.state.clone();
        tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .map_err(|e| NetError::Store(e.to_string()))??
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| NetError::Io {
            path: config.listen.to_string().into(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| NetError::Io {
        path: config.listen.to_string().into(),
        source,
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let metrics = Metrics::new();
    let metrics_addr = match config.metrics_listen {
        Some(at) => Some(metrics.serve(at, shutdown_rx.clone()).await?),
        None => None,
    };
    let limits = config.limits;
    let shared = Arc::new(Shared {
        hub: Mutex::new(Hub::default()),
        store: Mutex::new(store),
        config,
        metrics,
        shutdown: shutdown_rx.clone(),
    });
    let unfinished: Vec<JobRow> = lock(&shared.store)
        .jobs()?
        .into_iter()
        .filter(|j| !j.state.is_final())
        .collect();
    for job in unfinished {
        tracing::info!(job = %job.id, rounds_done = job.completed_rounds, "resuming job");
        spawn_driver(&shared, job)?;
    }
    let service = Service {
        shared: Arc::clone(&shared),
    };
    let federation = FederationServer::new(service.clone())
        .max_decoding_message_size(limits.grpc_message_limit())
        .max_encoding_message_size(limits.grpc_message_limit());
    let admin = AdminServer::new(service)
        .max_decoding_message_size(limits.grpc_message_limit())
        .max_encoding_message_size(limits.grpc_message_limit());
    let mut stop = shutdown_rx.clone();
    let signal = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let router = tonic::transport::Server::builder()
        .http2_adaptive_window(Some(true))
        .add_service(federation)
        .add_service(admin);
    let task = tokio::spawn(async move {
        let result = match tls {
            Some(tls) => {
                let incoming = privet_transport::tls_incoming(listener, tls);
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
            None => {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                router.serve_with_incoming_shutdown(incoming, signal).await
            }
        };
        result.map_err(|e| NetError::Config(format!("server: {e}")))
    });
    tracing::info!(%addr, "coordinator listening");
    Ok(CoordinatorHandle {
        addr,
        metrics_addr,
        shutdown: shutdown_tx,
        task,
    })
}

#[derive(Clone, Debug)]
struct Service {
    shared: Arc<Shared>,
}

/// An authenticated peer: the name its certificate gives and the certificate (DER).
struct Peer {
    name: String,
    role: Role,
    cert: Arc<[u8]>,
}

/// The authenticated caller (TLS), or `None` in insecure dev mode.
fn caller_cert<T>(shared: &Shared, req: &Request<T>) -> Result<Option<Peer>, Status> {
    Ok(
        privet_transport::caller(&shared.config.security, req)?.map(|c| Peer {
            name: c.identity.name.to_string(),
            role: c.identity.role,
            cert: c.cert,
        }),
    )
}

fn require_admin<T>(shared: &Shared, req: &Request<T>) -> Result<(), Status> {
    match caller_cert(shared, req)? {
        None => Ok(()),
        Some(peer) if peer.role != Role::Operator => {
            tracing::warn!(name = %peer.name, role = %peer.role, "admin call refused: not an operator certificate");
            Err(Status::permission_denied(format!(
                "{} is not an admin: it holds a {} certificate, and the admin service needs an \
                 operator's",
                peer.name, peer.role
            )))
        }
        Some(peer)
            if shared
                .config
                .admins
                .iter()
                .any(|a| *a == peer.name.as_str()) =>
        {
            Ok(())
        }
        Some(peer) => {
            tracing::warn!(name = %peer.name, "admin call refused: not an admin");
            Err(Status::permission_denied(format!(
                "{} is not an admin of this coordinator",
                peer.name
            )))
        }
    }
}

#[tonic::async_trait]
impl Federation for Service {
    type SessionStream = FrameStream;

    async fn session(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let peer = caller_cert(&self.shared, &request)?;
        let inbound = request.into_inner();
        let (frame_tx, frame_rx) = mpsc::channel::<Result<Frame, Status>>(8);
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Arc<Encoded>>();
        tokio::spawn(writer(out_rx, frame_tx, Arc::clone(&self.shared)));
        tokio::spawn(reader(inbound, out_tx, peer, Arc::clone(&self.shared)));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(frame_rx),
        )))
    }
}

/// Turns a session's outgoing messages into frames.
async fn writer(
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
) -> Result<Option<NodeMessage>, NetError> {
    while let Some(frame) = inbound.next().await {
        let frame = frame.map_err(|s| NetError::Protocol(s.message().to_string()))?;
        shared.metrics.bytes_received(frame.data.len() as u64 + 16);
        if let Some(msg) = reassembler.push_decode::<NodeMessage>(frame)? {
            return Ok(Some(msg));
        }
    }
    Ok(None)
}

fn refuse(shared: &Shared, tx: &mpsc::UnboundedSender<Arc<Encoded>>, reason: &str, fatal: bool) {
    shared.metrics.refused();
    if let Ok(msg) = shared.encode(Out::Refused(proto::Refused {
        reason: reason.to_string(),
        fatal,
    })) {
        let _ = tx.send(msg);
    }
}

/// Reads a session: the `Hello`, then messages routed to jobs.
async fn reader(
    mut inbound: Streaming<Frame>,
    out: mpsc::UnboundedSender<Arc<Encoded>>,
    peer: Option<Peer>,
    shared: Arc<Shared>,
) {
    let (cert_name, cert) = match peer {
        Some(Peer { role, name, .. }) if role != Role::Node => {
            tracing::warn!(%name, %role, "session refused: not a node certificate");
            refuse(
                &shared,
                &out,
                &format!("{name} holds a {role} certificate; only nodes open sessions"),
                true,
            );
            return;
        }
        Some(Peer { name, cert, .. }) => (Some(name), Some(cert)),
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
    if let Ok(welcome) = shared.encode(Out::Welcome(proto::Welcome {
        protocol_version: PROTOCOL_VERSION,
        node: name.clone(),
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

fn spawn_driver(shared: &Arc<Shared>, row: JobRow) -> Result<(), NetError> {
    let job = Job::from_toml(&row.job_toml)?;
    let deployment = job.deployment.clone().ok_or_else(|| {
        NetError::Config("the job has no [deployment] section naming its nodes".into())
    })?;
    let (tx, rx) = mpsc::unbounded_channel();
    lock(&shared.hub).jobs.insert(row.id.clone(), tx.clone());
    let driver = Driver {
        id: row.id.clone(),
        job_toml: row.job_toml.clone(),
        index: deployment
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i as u32))
            .collect(),
        nodes: deployment.nodes.iter().map(|n| n.to_string()).collect(),
        deployment,
        encoder_json: row.encoder.clone(),
        job,
        shared: Arc::clone(shared),
        tx,
        rx,
        joined: HashSet::new(),
        round_started: Instant::now(),
        fit_cache: None,
        secagg_keys: None,
    };
    tokio::spawn(driver.run());
    Ok(())
}

struct Driver {
    id: String,
    /// The job file as submitted (sent to nodes in `JoinJob`).
    job_toml: String,
    job: Job,
    deployment: privet_job::Deployment,
    nodes: Vec<String>,
    index: HashMap<String, u32>,
    encoder_json: Option<String>,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<JobEvent>,
    rx: mpsc::UnboundedReceiver<JobEvent>,
    /// Connected nodes that have been sent `JoinJob` in their current session.
    joined: HashSet<String>,
    round_started: Instant,
    fit_cache: Option<(u32, Arc<Encoded>)>,
    /// Secure aggregation: participants' identity keys, from the certificates their TLS
    /// handshakes verified (`None` when the job does not use it).
    secagg_keys: Option<PeerKeys>,
}

enum Step {
    Continue,
    Stop,
}

impl Driver {
    async fn run(mut self) {
        let id = self.id.clone();
        if let Err(e) = self.run_inner().await {
            tracing::error!(job = %id, "job failed: {e}");
            let _ = lock(&self.shared.store).set_state(&id, JobState::Failed, &e.to_string());
            self.announce_done("failed");
        }
        lock(&self.shared.hub).jobs.remove(&id);
    }

    fn announce_done(&self, state: &str) {
        if let Ok(msg) = self.shared.encode(Out::JobDone(proto::JobDone {
            job_id: self.id.clone(),
            state: state.to_string(),
        })) {
            for node in &self.nodes {
                self.shared.send(node, Arc::clone(&msg));
            }
        }
    }

    fn shutting_down(&self) -> bool {
        *self.shared.shutdown.borrow()
    }

    /// The next event, or `None` at shutdown or after `timeout`.
    async fn next_event(&mut self, timeout: Option<Duration>) -> Option<JobEvent> {
        let mut stop = self.shared.shutdown.clone();
        let sleep = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = self.rx.recv() => ev,
            _ = stop.wait_for(|s| *s) => None,
            _ = sleep => Some(JobEvent::Wake),
        }
    }

    fn connected_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| self.shared.connected(n))
            .cloned()
            .collect()
    }

    async fn run_inner(&mut self) -> Result<(), NetError> {
        if self.encoder_json.is_none() {
            let encoder = self.fit_encoder().await?;
            let Some(encoder) = encoder else {
                return Ok(());
            };
            let json = serde_json::to_string(&encoder)
                .map_err(|e| NetError::Config(format!("encoder: {e}")))?;
            lock(&self.shared.store).set_encoder(&self.id, &json)?;
            self.encoder_json = Some(json);
        }
        let encoder: Encoder = serde_json::from_str(self.encoder_json.as_deref().unwrap_or(""))
            .map_err(|e| NetError::Store(format!("stored encoder: {e}")))?;
        let network = Network::new(
            self.job.model.clone(),
            encoder.output_dim(),
            encoder.num_classes(),
        )?;
        let stack = JobStack::new(&self.job, self.nodes.len())?;
        let keys = PeerKeys::default();
        if matches!(stack.protocol(), Protocol::SecAggPlus(_)) {
            self.secagg_keys = Some(keys.clone());
        }
        let (checkpoint, last_started) = {
            let store = lock(&self.shared.store);
            (
                store.checkpoint(&self.id)?,
                store.last_round_started(&self.id)?,
            )
        };
        // A fresh job starts from the seeded initial model: the checkpoint of round 0.
        let mut checkpoint = match checkpoint {
            Some(cp) => cp,
            None => Checkpoint {
                round: 0,
                completed_rounds: 0,
                consecutive_failures: 0,
                global: initial_params(&self.job, &network),
                strategy_state: Vec::new(),
                transform_state: None,
            },
        };
        if checkpoint.global.len() != network.num_params() {
            return Err(NetError::Store(format!(
                "checkpoint has {} parameters, the model {}",
                checkpoint.global.len(),
                network.num_params()
            )));
        }
        // A round in progress at a crash left no row; skip its number so that nothing sent for
        // it can be taken for the retry.
        checkpoint.round = checkpoint.round.max(last_started);
        let mut engine = stack.server_engine(
            Start::Resume(checkpoint),
            Arc::new(keys),
            self.deployment.max_retries,
        )?;
        for node in self.connected_nodes() {
            self.join(&node);
        }
        // Wait for every expected node before the first round of this run (a resumed job too),
        // so a full federation reproduces the simulation's sampling.
        let deadline = Instant::now() + Duration::from_secs_f64(self.deployment.start_timeout_secs);
        while self.joined.len() < self.nodes.len() && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(Some(left)).await {
                None => return Ok(()),
                Some(ev) => self.membership(ev),
            }
        }
        while !engine.is_finished() {
            if self.shutting_down() {
                return Ok(());
            }
            let available: Vec<ClientId> = self
                .nodes
                .iter()
                .filter(|n| self.joined.contains(*n))
                .filter_map(|n| self.index.get(n).map(|&i| ClientId(i)))
                .collect();
            if available.len() < self.job.federation.min_clients {
                match self.next_event(Some(Duration::from_secs(1))).await {
                    None => return Ok(()),
                    Some(ev) => self.membership(ev),
                }
                continue;
            }
            self.round_started = Instant::now();
            let actions = engine.start_round(&available)?;
            if engine.is_finished() {
                // The privacy budget refused the round: nothing was sent.
                break;
            }
            lock(&self.shared.store).round_started(&self.id, engine.round())?;
            self.send_identities(engine.round(), &actions)?;
            tracing::info!(job = %self.id, round = engine.round(), nodes = available.len(), "round started");
            match self.drive_round(&mut engine, actions).await? {
                Step::Continue => {}
                Step::Stop => return Ok(()),
            }
        }
        let (state, error) = match engine.status() {
            privet_fl::engine::JobStatus::Failed { reason, .. } => {
                (JobState::Failed, reason.clone())
            }
            privet_fl::engine::JobStatus::Stopped { round, reason } => {
                tracing::warn!(job = %self.id, round, "stopped before round {round}: {reason}");
                (JobState::Stopped, reason.clone())
            }
            _ => (JobState::Completed, String::new()),
        };
        lock(&self.shared.store).set_state(&self.id, state, &error)?;
        tracing::info!(job = %self.id, state = state.as_str(), "job finished");
        self.announce_done(state.as_str());
        Ok(())
    }

    /// Handles node arrivals and departures outside rounds.
    fn membership(&mut self, ev: JobEvent) {
        match ev {
            JobEvent::NodeUp(node) => self.join(&node),
            JobEvent::NodeDown(node) => {
                self.joined.remove(&node);
            }
            JobEvent::FromNode(node, body) => {
                tracing::debug!(job = %self.id, %node, "message outside a round ignored: {:?}", kind(&body));
            }
            JobEvent::Deadline { .. } | JobEvent::Wake => {}
        }
    }

    fn join(&mut self, node: &str) {
        let (Some(&client), Some(encoder)) = (self.index.get(node), &self.encoder_json) else {
            return;
        };
        let msg = self.shared.encode(Out::JoinJob(proto::JoinJob {
            job_id: self.id.clone(),
            job_toml: self.job_toml.clone(),
            encoder_json: encoder.clone(),
            client,
        }));
        if let Ok(msg) = msg
            && self.shared.send(node, msg)
        {
            self.joined.insert(node.to_string());
        }
    }

    /// Collects every expected node's data summary and fits the shared feature encoding.
    async fn fit_encoder(&mut self) -> Result<Option<Encoder>, NetError> {
        let label = match &self.job.data {
            privet_job::DataSource::Csv { label, .. } => label.clone(),
            privet_job::DataSource::Synthetic { .. } => {
                return Err(NetError::Config(
                    "networked jobs need CSV data held by the nodes, not synthetic data".into(),
                ));
            }
        };
        let start_deadline =
            Instant::now() + Duration::from_secs_f64(self.deployment.start_timeout_secs);
        loop {
            // Wait for all nodes, or for min_clients once the start timeout has passed.
            loop {
                let up = self.connected_nodes().len();
                if up == self.nodes.len()
                    || (up >= self.job.federation.min_clients && Instant::now() >= start_deadline)
                {
                    break;
                }
                if self
                    .next_event(Some(Duration::from_millis(500)))
                    .await
                    .is_none()
                {
                    return Ok(None);
                }
            }
            let asked = self.connected_nodes();
            let msg = self.shared.encode(Out::DescribeData(proto::DescribeData {
                job_id: self.id.clone(),
                label: label.clone(),
            }))?;
            for node in &asked {
                self.shared.send(node, Arc::clone(&msg));
            }
            tracing::info!(job = %self.id, nodes = asked.len(), "asking nodes for data summaries");
            let mut summaries: HashMap<String, DataSummary> = HashMap::new();
            let mut gone: HashSet<String> = HashSet::new();
            let deadline =
                Instant::now() + Duration::from_secs_f64(self.deployment.round_timeout_secs);
            while summaries.len() + gone.len() < asked.len() && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.next_event(Some(left)).await {
                    None => return Ok(None),
                    Some(JobEvent::FromNode(node, In::DataSummary(s))) => {
                        if asked.contains(&node) {
                            match summary_from_proto(&s) {
                                Ok(summary) => {
                                    summaries.insert(node, summary);
                                }
                                Err(e) => {
                                    tracing::warn!(%node, "bad data summary: {e}");
                                    gone.insert(node);
                                }
                            }
                        }
                    }
                    Some(JobEvent::FromNode(node, In::Error(e))) => {
                        tracing::warn!(job = %self.id, %node, "node cannot describe its data: {}", e.message);
                        gone.insert(node);
                    }
                    Some(JobEvent::NodeDown(node)) => {
                        gone.insert(node);
                    }
                    Some(_) => {}
                }
            }
            if summaries.len() >= self.job.federation.min_clients {
                // In the job's node order, so the merge does not depend on arrival order.
                let ordered: Vec<(String, DataSummary)> = self
                    .nodes
                    .iter()
                    .filter_map(|n| summaries.remove(n).map(|s| (n.clone(), s)))
                    .collect();
                let encoder = Encoder::from_summaries(&ordered)?;
                tracing::info!(job = %self.id, features = encoder.output_dim(), classes = encoder.num_classes(), "feature encoding fitted from node summaries");
                return Ok(Some(encoder));
            }
            tracing::warn!(job = %self.id, got = summaries.len(), "too few data summaries; asking again");
        }
    }

    async fn drive_round(
        &mut self,
        engine: &mut Coordinator,
        actions: Vec<Action>,
    ) -> Result<Step, NetError> {
        let mut pending = actions;
        loop {
            let mut follow = Vec::new();
            for action in pending.drain(..) {
                match action {
                    Action::Send { to, msg } if !self.deliver(to, &msg)? => {
                        follow.push(Event::Dropped { client: to });
                    }
                    Action::Reject { to, reason } => {
                        let node = self.name(to);
                        tracing::warn!(job = %self.id, %node, "refused: {reason}");
                        let tx = lock(&self.shared.hub)
                            .nodes
                            .get(&node)
                            .map(|h| h.tx.clone());
                        if let Some(tx) = tx {
                            refuse(&self.shared, &tx, &reason.to_string(), false);
                        }
                    }
                    Action::StartDeadline { round, stage } => {
                        let tx = self.tx.clone();
                        let after = Duration::from_secs_f64(self.deployment.round_timeout_secs);
                        tokio::spawn(async move {
                            tokio::time::sleep(after).await;
                            let _ = tx.send(JobEvent::Deadline { round, stage });
                        });
                    }
                    Action::RoundFinished(outcome) => {
                        self.finish_round(engine.checkpoint(), outcome).await?;
                        return Ok(Step::Continue);
                    }
                    _ => {}
                }
            }
            for event in follow {
                pending.extend(engine.handle(event)?);
            }
            if !pending.is_empty() {
                continue;
            }
            let Some(ev) = self.next_event(None).await else {
                return Ok(Step::Stop);
            };
            let event = match ev {
                JobEvent::NodeUp(node) => {
                    // A node that (re)joins mid-round takes part from the next round; if it was
                    // selected, its old session's NodeDown already dropped it from this one.
                    self.join(&node);
                    None
                }
                JobEvent::NodeDown(node) => {
                    self.joined.remove(&node);
                    self.index.get(&node).map(|&i| Event::Dropped {
                        client: ClientId(i),
                    })
                }
                JobEvent::Deadline { round, stage } => {
                    Some(Event::DeadlineExpired { round, stage })
                }
                JobEvent::FromNode(node, body) => self.node_event(&node, body),
                JobEvent::Wake => None,
            };
            if let Some(event) = event {
                pending.extend(engine.handle(event)?);
            }
        }
    }

    /// Secure aggregation: enrols the keys of the round's participants from their verified
    /// certificates, and relays those certificates to the participants (ahead of the round's
    /// `Fit`), which check them against their own CA before trusting them.
    fn send_identities(&mut self, round: u32, actions: &[Action]) -> Result<(), NetError> {
        let Some(keys) = &self.secagg_keys else {
            return Ok(());
        };
        let selected: Vec<ClientId> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Send {
                    to,
                    msg: ToClient::Fit { .. },
                } => Some(*to),
                _ => None,
            })
            .collect();
        let mut peers = Vec::with_capacity(selected.len());
        for &client in &selected {
            let node = self.name(client);
            let Some(cert) = self.shared.certificate(&node) else {
                continue;
            };
            match certified_key(&cert) {
                Ok(key) => {
                    keys.insert(client, key);
                    peers.push(proto::PeerCertificate {
                        client: client.0,
                        certificate: bytes::Bytes::copy_from_slice(&cert),
                    });
                }
                Err(e) => {
                    tracing::warn!(job = %self.id, %node, "cannot take part in secure aggregation: {e}");
                }
            }
        }
        let msg = self
            .shared
            .encode(Out::PeerCertificates(proto::PeerCertificates {
                job_id: self.id.clone(),
                round,
                peers,
            }))?;
        for client in selected {
            let node = self.name(client);
            if self.joined.contains(&node) {
                self.shared.send(&node, Arc::clone(&msg));
            }
        }
        Ok(())
    }

    fn name(&self, client: ClientId) -> String {
        self.nodes
            .get(client.0 as usize)
            .cloned()
            .unwrap_or_else(|| format!("client-{}", client.0))
    }

    /// Sends an engine message to a node; false if the node is not connected.
    fn deliver(&mut self, to: ClientId, msg: &ToClient) -> Result<bool, NetError> {
        let node = self.name(to);
        if !self.joined.contains(&node) {
            return Ok(false);
        }
        let encoded = match msg {
            ToClient::Fit {
                round,
                params,
                config,
                extensions,
            } => match &self.fit_cache {
                Some((r, enc)) if r == round => Arc::clone(enc),
                _ => {
                    let enc = self.shared.encode(Out::Fit(proto::Fit {
                        job_id: self.id.clone(),
                        round: *round,
                        params: f32_to_bytes(params),
                        proximal_mu: config.proximal_mu,
                        extensions: extensions
                            .iter()
                            .map(|(k, v)| (k.to_string(), bytes::Bytes::copy_from_slice(v)))
                            .collect(),
                    }))?;
                    self.fit_cache = Some((*round, Arc::clone(&enc)));
                    enc
                }
            },
            ToClient::Protocol {
                round,
                stage,
                payload,
            } => self.shared.encode(Out::Protocol(proto::ProtocolMessage {
                job_id: self.id.clone(),
                round: *round,
                stage: u32::from(*stage),
                payload: payload.clone().into(),
            }))?,
            other => {
                return Err(NetError::Protocol(format!(
                    "this coordinator cannot send {other:?}"
                )));
            }
        };
        Ok(self.shared.send(&node, encoded))
    }

    /// Turns a node's message into an engine event.
    fn node_event(&self, node: &str, body: In) -> Option<Event> {
        let client = ClientId(*self.index.get(node)?);
        match body {
            In::Update(u) => match bytes_to_f32(&u.delta) {
                Ok(delta) => Some(Event::Received {
                    from: client,
                    msg: FromClient::Update {
                        round: u.round,
                        update: ClientUpdate {
                            client,
                            delta,
                            num_examples: u.num_examples,
                            metrics: TrainMetrics {
                                loss: u.loss,
                                num_examples: u.num_examples,
                            },
                        },
                    },
                }),
                Err(e) => {
                    tracing::warn!(job = %self.id, %node, "malformed update: {e}");
                    Some(Event::Dropped { client })
                }
            },
            In::Protocol(p) => match u8::try_from(p.stage) {
                Ok(stage) => Some(Event::Received {
                    from: client,
                    msg: FromClient::Protocol {
                        round: p.round,
                        stage,
                        payload: p.payload.to_vec(),
                    },
                }),
                Err(_) => Some(Event::Dropped { client }),
            },
            In::Error(e) => {
                tracing::warn!(job = %self.id, %node, round = e.round, "node failed: {}", e.message);
                Some(Event::Dropped { client })
            }
            In::DataSummary(_) | In::Hello(_) => None,
        }
    }

    async fn finish_round(
        &mut self,
        checkpoint: privet_fl::engine::Checkpoint,
        outcome: RoundOutcome,
    ) -> Result<(), NetError> {
        let seconds = self.round_started.elapsed().as_secs_f64();
        let report = outcome.report();
        let names =
            |ids: &[ClientId]| -> Vec<String> { ids.iter().map(|&c| self.name(c)).collect() };
        let mut dropped = names(&report.dropped);
        dropped.extend(names(&report.stragglers));
        dropped.extend(report.rejected.iter().map(|r| self.name(r.client)));
        let (completed, failure) = match &outcome {
            RoundOutcome::Completed(_) => (true, String::new()),
            RoundOutcome::Failed { reason, .. } => (false, reason.clone()),
        };
        let row = RoundRow {
            round: report.round,
            completed,
            participants: names(&report.completed),
            dropped,
            train_loss: f64::from(report.train_loss),
            num_examples: report.num_examples,
            seconds,
            failure,
            details: report.details.clone(),
        };
        let shared = Arc::clone(&self.shared);
        let id = self.id.clone();
        let row_saved = row.clone();
        tokio::task::spawn_blocking(move || {
            lock(&shared.store).finish_round(&id, &row_saved, &checkpoint)
        })
        .await
        .map_err(|e| NetError::Store(e.to_string()))??;
        self.shared
            .metrics
            .round_finished(completed, row.participants.len(), seconds);
        if completed {
            tracing::info!(job = %self.id, round = row.round, participants = row.participants.len(), loss = row.train_loss, seconds, "round completed");
        } else {
            tracing::warn!(job = %self.id, round = row.round, "round failed: {}", row.failure);
        }
        Ok(())
    }
}

fn kind(body: &In) -> &'static str {
    match body {
        In::Hello(_) => "hello",
        In::DataSummary(_) => "data summary",
        In::Update(_) => "update",
        In::Protocol(_) => "protocol",
        In::Error(_) => "error",
    }
}

/// Parses a node's summary into the typed form, with sanity limits.
fn summary_from_proto(s: &proto::DataSummary) -> Result<DataSummary, NetError> {
    use privet_data::ColumnSummary;
    const MAX_COLUMNS: usize = 100_000;
    const MAX_CATEGORIES: usize = 100_000;
    if s.columns.len() > MAX_COLUMNS || s.labels.len() > MAX_CATEGORIES {
        return Err(NetError::Protocol("data summary too large".into()));
    }
    let mut numeric: HashMap<&str, &proto::NumericColumn> =
        s.numeric.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut categorical: HashMap<&str, &proto::CategoricalColumn> =
        s.categorical.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut columns = Vec::with_capacity(s.columns.len());
    for name in &s.columns {
        if let Some(c) = numeric.remove(name.as_str()) {
            if !(c.mean.is_finite() && c.m2.is_finite() && c.m2 >= 0.0) {
                return Err(NetError::Protocol(format!(
                    "column {name:?}: non-finite statistics"
                )));
            }
            columns.push(ColumnSummary::Numeric {
                name: name.clone(),
                count: c.count,
                mean: c.mean,
                m2: c.m2,
            });
        } else if let Some(c) = categorical.remove(name.as_str()) {
            if c.categories.len() > MAX_CATEGORIES {
                return Err(NetError::Protocol(format!(
                    "column {name:?}: too many categories"
                )));
            }
            columns.push(ColumnSummary::Categorical {
                name: name.clone(),
                categories: c.categories.clone(),
            });
        } else {
            return Err(NetError::Protocol(format!(
                "column {name:?} has no statistics"
            )));
        }
    }
    Ok(DataSummary {
        rows: s.rows,
        columns,
        labels: s.labels.clone(),
    })
}

/// Turns a typed summary into its wire form.
pub(crate) fn summary_to_proto(job_id: &str, s: &DataSummary) -> proto::DataSummary {
    use privet_data::ColumnSummary;
    let mut out = proto::DataSummary {
        job_id: job_id.to_string(),
        rows: s.rows,
        labels: s.labels.clone(),
        ..Default::default()
    };
    for column in &s.columns {
        out.columns.push(column.name().to_string());
        match column {
            ColumnSummary::Numeric {
                name,
                count,
                mean,
                m2,
            } => out.numeric.push(proto::NumericColumn {
                name: name.clone(),
                count: *count,
                mean: *mean,
                m2: *m2,
            }),
            ColumnSummary::Categorical { name, categories } => {
                out.categorical.push(proto::CategoricalColumn {
                    name: name.clone(),
                    categories: categories.clone(),
                })
            }
        }
    }
    out
}

fn job_info(store: &Store, row: &JobRow) -> Result<proto::JobInfo, NetError> {
    let rounds = store
        .rounds(&row.id)?
        .into_iter()
        .map(|r| proto::RoundInfo {
            round: r.round,
            completed: r.completed,
            participants: r.participants,
            dropped: r.dropped,
            train_loss: r.train_loss,
            seconds: r.seconds,
            failure: r.failure,
            details: r
                .details
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        })
        .collect();
    Ok(proto::JobInfo {
        job_id: row.id.clone(),
        state: row.state.as_str().to_string(),
        completed_rounds: row.completed_rounds,
        total_rounds: row.total_rounds,
        error: row.error.clone(),
        expected_nodes: row.nodes.clone(),
        rounds,
    })
}

fn internal(e: NetError) -> Status {
    Status::internal(e.to_string())
}

#[tonic::async_trait]
impl Admin for Service {
    async fn submit_job(
        &self,
        request: Request<proto::SubmitJobRequest>,
    ) -> Result<Response<proto::SubmitJobResponse>, Status> {
        require_admin(&self.shared, &request)?;
        let text = request.into_inner().job_toml;
        let job = Job::from_toml(&text)
            .map_err(|e| Status::invalid_argument(format!("job file: {e}")))?;
        let Some(deployment) = &job.deployment else {
            return Err(Status::invalid_argument(
                "job file: a networked job needs a [deployment] section with `nodes`",
            ));
        };
        if job.secure_aggregation.is_some() && self.shared.config.security == Security::InsecureDev
        {
            return Err(Status::invalid_argument(
                "job file: secure aggregation needs mutual TLS (nodes' signing identities are \
                 their certificates), so it cannot run with --insecure-dev",
            ));
        }
        if let privet_job::DataSource::Synthetic { .. } = job.data {
            return Err(Status::invalid_argument(
                "job file: networked jobs train on the nodes' CSV data, not synthetic data",
            ));
        }
        let allowed = &self.shared.config.nodes;
        if let Some(stranger) = deployment
            .nodes
            .iter()
            .find(|n| !allowed.is_empty() && !allowed.iter().any(|a| a == n.as_str()))
        {
            return Err(Status::invalid_argument(format!(
                "job file: node {stranger:?} is not admitted by this coordinator"
            )));
        }
        let id = format!("job-{:016x}", rand::random::<u64>());
        {
            let store = lock(&self.shared.store);
            store
                .insert_job(
                    &id,
                    &text,
                    &deployment
                        .nodes
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>(),
                    job.federation.rounds,
                )
                .map_err(internal)?;
        }
        let row = lock(&self.shared.store)
            .job(&id)
            .map_err(internal)?
            .ok_or_else(|| Status::internal("job vanished"))?;
        spawn_driver(&self.shared, row).map_err(internal)?;
        tracing::info!(job = %id, nodes = deployment.nodes.len(), "job submitted");
        Ok(Response::new(proto::SubmitJobResponse { job_id: id }))
    }

    async fn get_job(
        &self,
        request: Request<proto::GetJobRequest>,
    ) -> Result<Response<proto::JobInfo>, Status> {
        require_admin(&self.shared, &request)?;
        let id = request.into_inner().job_id;
        let store = lock(&self.shared.store);
        let row = store
            .job(&id)
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
        Ok(Response::new(job_info(&store, &row).map_err(internal)?))
    }

    async fn status(
        &self,
        request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        require_admin(&self.shared, &request)?;
        let store = lock(&self.shared.store);
        let mut jobs = Vec::new();
        for row in store.jobs().map_err(internal)? {
            jobs.push(job_info(&store, &row).map_err(internal)?);
        }
        let mut connected_nodes: Vec<String> =
            lock(&self.shared.hub).nodes.keys().cloned().collect();
        connected_nodes.sort();
        Ok(Response::new(proto::StatusResponse {
            jobs,
            connected_nodes,
        }))
    }

    type FetchModelStream = ChunkStream;

    async fn fetch_model(
        &self,
        request: Request<proto::FetchModelRequest>,
    ) -> Result<Response<Self::FetchModelStream>, Status> {
        require_admin(&self.shared, &request)?;
        let id = request.into_inner().job_id;
        let (row, checkpoint) = {
            let store = lock(&self.shared.store);
            let row = store
                .job(&id)
                .map_err(internal)?
                .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
            let cp = store.checkpoint(&id).map_err(internal)?;
            (row, cp)
        };
        let checkpoint = checkpoint.ok_or_else(|| {
            Status::failed_precondition(format!("job {id} has no completed round yet"))
        })?;
        let meta = model_meta(&row).map_err(internal)?;
        let chunk = self.shared.config.limits.max_frame_bytes / 4 * 4;
        let params = f32_to_bytes(&checkpoint.global);
        let num_params = checkpoint.global.len() as u64;
        let mut chunks = vec![Ok(proto::ModelChunk {
            meta_json: meta,
            round: checkpoint.round,
            params: Default::default(),
            num_params,
        })];
        let mut at = 0;
        while at < params.len() {
            let end = (at + chunk.max(4)).min(params.len());
            chunks.push(Ok(proto::ModelChunk {
                params: params.slice(at..end),
                ..Default::default()
            }));
            at = end;
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}

/// The model metadata (privet-ml's `model.json`) of a job.
fn model_meta(row: &JobRow) -> Result<String, NetError> {
    let job = Job::from_toml(&row.job_toml)?;
    let encoder: Encoder = serde_json::from_str(
        row.encoder
            .as_deref()
            .ok_or_else(|| NetError::Config("the job has no feature encoding yet".into()))?,
    )
    .map_err(|e| NetError::Store(format!("stored encoder: {e}")))?;
    let (label, categorical) = match &job.data {
        privet_job::DataSource::Csv {
            label, categorical, ..
        } => (label.clone(), categorical.clone()),
        privet_job::DataSource::Synthetic { .. } => (String::new(), Vec::new()),
    };
    let network = Network::new(
        job.model.clone(),
        encoder.output_dim(),
        encoder.num_classes(),
    )?;
    let model = privet_ml::TrainedModel {
        network,
        params: Vec::new(),
        encoder,
        label,
        categorical,
    };
    serde_json::to_string(&model.meta()).map_err(|e| NetError::Config(e.to_string()))
}
