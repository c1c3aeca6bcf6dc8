//! The data-owner node: dials out to the coordinator, keeps one session open (reconnecting with
//! exponential backoff and jitter), describes its data, trains when asked and answers with model
//! deltas. Rows never leave the node: only per-column summaries (once per job, to fit the shared
//! feature encoding) and model updates do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use privet_data::{CsvOptions, DataSummary, Dataset, Encoder, load_csv};
use privet_fl::engine::{ClientProtocol, FromClient, LocalTrainer, ToClient};
use privet_fl::{
    ClientId, ClientParams, ClientTrainConfig, FlError, TrainMetrics, UpdateTransform,
};
use privet_job::{Job, JobStack, LocalRows, Protocol, train_locally};
use privet_ml::Network;
use rand::Rng;
use tokio::sync::{mpsc, watch};

use crate::PROTOCOL_VERSION;
use crate::config::{NodeConfig, NodeData, Security};
use crate::coordinator::summary_to_proto;
use crate::error::NetError;
use crate::identity::PeerKeys;
use crate::proto::coordinator_message::Body as In;
use crate::proto::federation_client::FederationClient;
use crate::proto::node_message::Body as Out;
use crate::proto::{self, CoordinatorMessage, NodeMessage};
use privet_identity::{PeerVerifier, Role, load_signing_key};
use privet_transport::Frame;
use privet_transport::{Encoded, Reassembler, WireCounter, bytes_to_f32, connect, f32_to_bytes};

/// Local training for one job.
pub trait JobTrainer: LocalTrainer + Send {}
impl<T: LocalTrainer + Send> JobTrainer for T {}

/// What a node trains on: its local data.
pub trait NodeBackend: Send + Sync {
    /// Per-column statistics of the local training data.
    fn describe(&self) -> Result<DataSummary, NetError>;
    /// Prepares local training for a job with the federation's feature encoding.
    fn join(
        &self,
        job: &Job,
        encoder: &Encoder,
        client: u32,
    ) -> Result<Box<dyn JobTrainer>, NetError>;
}

/// The usual backend: a CSV file and its column mapping.
#[derive(Debug, Clone)]
pub struct CsvBackend {
    data: NodeData,
}

impl CsvBackend {
    /// A backend over `data`.
    pub fn new(data: NodeData) -> Self {
        CsvBackend { data }
    }

    fn options(&self) -> CsvOptions {
        CsvOptions {
            label: Some(self.data.label.clone()),
            categorical: self.data.categorical.clone(),
            drop: self.data.drop.clone(),
            ..CsvOptions::default()
        }
    }
}

impl NodeBackend for CsvBackend {
    fn describe(&self) -> Result<DataSummary, NetError> {
        let table = load_csv(&self.data.path, &self.options())?;
        Ok(DataSummary::of_table(&table))
    }

    fn join(
        &self,
        job: &Job,
        encoder: &Encoder,
        client: u32,
    ) -> Result<Box<dyn JobTrainer>, NetError> {
        let table = load_csv(&self.data.path, &self.options())?;
        let data = encoder.dataset(&table)?;
        let network = Network::new(
            job.model.clone(),
            encoder.output_dim(),
            encoder.num_classes(),
        )?;
        Ok(Box::new(CsvTrainer {
            network,
            data,
            job: job.clone(),
            client,
        }))
    }
}

/// Trains the job's model on a node's encoded rows, with the simulation's seeds.
#[derive(Debug)]
struct CsvTrainer {
    network: Network,
    data: Dataset,
    job: Job,
    client: u32,
}

impl LocalTrainer for CsvTrainer {
    fn fit(
        &mut self,
        round: u32,
        params: &[f32],
        config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let rows: Vec<u32> = (0..self.data.len() as u32).collect();
        let data = LocalRows {
            x: &self.data.x,
            y: &self.data.y,
            rows: &rows,
        };
        train_locally(
            &self.job,
            &self.network,
            self.client,
            round,
            params,
            config,
            data,
        )
    }
}

/// A node without data, for transport tests and benchmarks: it describes `cols` numeric
/// columns and two labels, and "trains" by adding `step` to every parameter, so what is measured
/// is the federation's own cost (messages, TLS, aggregation, checkpoints), not training.
#[derive(Debug, Clone, Copy)]
pub struct ShiftBackend {
    /// Numeric feature columns it claims.
    pub cols: usize,
    /// What local training adds to each parameter.
    pub step: f32,
}

impl NodeBackend for ShiftBackend {
    fn describe(&self) -> Result<DataSummary, NetError> {
        Ok(DataSummary {
            rows: 10,
            columns: (0..self.cols)
                .map(|i| privet_data::ColumnSummary::Numeric {
                    name: format!("x{i}"),
                    count: 10,
                    mean: 0.0,
                    m2: 10.0,
                })
                .collect(),
            labels: vec!["0".into(), "1".into()],
        })
    }

    fn join(&self, _: &Job, _: &Encoder, _: u32) -> Result<Box<dyn JobTrainer>, NetError> {
        Ok(Box::new(Shift(self.step)))
    }
}

#[derive(Debug)]
struct Shift(f32);

impl LocalTrainer for Shift {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let metrics = TrainMetrics {
            loss: 0.5,
            num_examples: 10,
        };
        Ok((params.iter().map(|p| p + self.0).collect(), metrics))
    }
}

/// A job the node takes part in.
struct JobCtx {
    client: ClientId,
    trainer: Box<dyn JobTrainer>,
    protocol: Box<dyn ClientProtocol>,
    transforms: Vec<Box<dyn UpdateTransform>>,
    /// Secure aggregation: the other participants' verified identities.
    peers: Option<Peers>,
}

/// The identities a secure-aggregation node trusts: keys from certificates that chain to its
/// CA and name the node the job lists at that client index.
struct Peers {
    keys: PeerKeys,
    verifier: PeerVerifier,
    /// The job's nodes; node `i` is client `i`.
    nodes: Vec<privet_identity::Name>,
}

/// The jobs a node takes part in, by id.
type Jobs = Arc<Mutex<HashMap<String, Arc<Mutex<JobCtx>>>>>;

/// How a session ended.
enum SessionEnd {
    Shutdown,
    Closed,
}

/// Runs a node until `shutdown` turns true. Transport failures are retried with exponential
/// backoff (0.25 s doubling up to `max_backoff_secs`, with jitter); a fatal refusal by the
/// coordinator (unknown node, unsupported protocol version) ends the node with an error.
pub async fn run_node(
    config: NodeConfig,
    backend: Arc<dyn NodeBackend>,
    mut shutdown: watch::Receiver<bool>,
    counter: Option<Arc<WireCounter>>,
) -> Result<(), NetError> {
    match &config.security {
        Security::InsecureDev => tracing::warn!(
            "--insecure-dev: plain text and an unauthenticated name; never use this with real data"
        ),
        Security::Tls(files) => {
            // Fail at start-up on unusable certificates, not at every reconnection.
            let own = privet_identity::own_identity(files)?;
            if own.role != Role::Node {
                return Err(NetError::Config(format!(
                    "{} is a {}'s certificate; a node needs one issued with --role node",
                    files.cert.display(),
                    own.role
                )));
            }
            if own.name != config.name.as_str() {
                return Err(NetError::Config(format!(
                    "{} names {:?}, but this node is configured as {:?}",
                    files.cert.display(),
                    own.name.as_str(),
                    config.name.as_str()
                )));
            }
        }
    }
    let jobs: Jobs = Arc::default();
    let max_backoff = Duration::from_secs_f64(config.max_backoff_secs);
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let started = Instant::now();
        match session(&config, &backend, &jobs, shutdown.clone(), counter.clone()).await {
            Ok(SessionEnd::Shutdown) => return Ok(()),
            Ok(SessionEnd::Closed) => tracing::warn!("the coordinator closed the session"),
            Err(NetError::Remote(reason)) => {
                return Err(NetError::Remote(format!(
                    "refused by the coordinator: {reason}"
                )));
            }
            Err(e) => tracing::warn!("session failed: {e}"),
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

struct Sender {
    tx: mpsc::Sender<Frame>,
    next_id: u64,
    limits: privet_transport::Limits,
}

impl Sender {
    async fn send(&mut self, body: Out) -> Result<(), NetError> {
        let encoded = Encoded::new(&NodeMessage { body: Some(body) }, &self.limits)?;
        for frame in encoded.frames(self.next_id) {
            self.tx
                .send(frame)
                .await
                .map_err(|_| NetError::Protocol("the session closed".into()))?;
        }
        self.next_id += 1;
        Ok(())
    }
}

async fn session(
    config: &NodeConfig,
    backend: &Arc<dyn NodeBackend>,
    jobs: &Jobs,
    mut shutdown: watch::Receiver<bool>,
    counter: Option<Arc<WireCounter>>,
) -> Result<SessionEnd, NetError> {
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
    };
    out.send(Out::Hello(proto::Hello {
        protocol_version: PROTOCOL_VERSION,
        node: config.name.to_string(),
        software: format!("privet {}", env!("CARGO_PKG_VERSION")),
    }))
    .await?;
    let response = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| NetError::Connect {
            url: config.coordinator.clone(),
            reason: s.message().to_string(),
        })?;
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
                return Err(NetError::Connect {
                    url: config.coordinator.clone(),
                    reason: privet_transport::error_chain(&status),
                });
            }
        };
        let Some(msg) = reassembler.push_decode::<CoordinatorMessage>(frame)? else {
            continue;
        };
        let Some(body) = msg.body else { continue };
        match body {
            In::Welcome(w) => tracing::info!(node = %w.node, "connected to the coordinator"),
            In::Refused(r) if r.fatal => return Err(NetError::Remote(r.reason)),
            In::Refused(r) => tracing::warn!("the coordinator refused a message: {}", r.reason),
            In::DescribeData(d) => {
                let reply = match backend.describe() {
                    Ok(summary) => Out::DataSummary(summary_to_proto(&d.job_id, &summary)),
                    Err(e) => {
                        tracing::error!(job = %d.job_id, "cannot describe the local data: {e}");
                        Out::Error(proto::NodeError {
                            job_id: d.job_id,
                            round: 0,
                            message: e.to_string(),
                        })
                    }
                };
                out.send(reply).await?;
            }
            In::JoinJob(j) => match join(config, backend, &j) {
                Ok(ctx) => {
                    tracing::info!(job = %j.job_id, client = j.client, "joined job");
                    lock(jobs).insert(j.job_id, Arc::new(Mutex::new(ctx)));
                }
                Err(e) => {
                    tracing::error!(job = %j.job_id, "cannot join: {e}");
                    out.send(Out::Error(proto::NodeError {
                        job_id: j.job_id,
                        round: 0,
                        message: e.to_string(),
                    }))
                    .await?;
                }
            },
            In::Fit(fit) => {
                let reply = respond_fit(jobs, fit).await;
                out.send(reply).await?;
            }
            In::Protocol(p) => {
                let reply = respond_protocol(jobs, p).await;
                out.send(reply).await?;
            }
            In::PeerCertificates(p) => enrol(jobs, &p),
            In::JobDone(d) => {
                tracing::info!(job = %d.job_id, state = %d.state, "job over");
                lock(jobs).remove(&d.job_id);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn join(
    config: &NodeConfig,
    backend: &Arc<dyn NodeBackend>,
    j: &proto::JoinJob,
) -> Result<JobCtx, NetError> {
    let job = Job::from_toml(&j.job_toml)?;
    let encoder: Encoder = serde_json::from_str(&j.encoder_json)
        .map_err(|e| NetError::Protocol(format!("feature encoding: {e}")))?;
    let client = ClientId(j.client);
    let nodes = job
        .deployment
        .as_ref()
        .map(|d| d.nodes.clone())
        .unwrap_or_default();
    if nodes.get(client.0 as usize) != Some(&config.name) {
        return Err(NetError::Protocol(format!(
            "the job lists client {} as {:?}, not as this node ({:?})",
            client.0,
            nodes.get(client.0 as usize),
            config.name
        )));
    }
    let stack = JobStack::new(&job, nodes.len())?;
    let keys = PeerKeys::default();
    let (signer, peers) = match stack.protocol() {
        Protocol::Plain => (None, None),
        Protocol::SecAggPlus(_) => {
            let Security::Tls(files) = &config.security else {
                return Err(NetError::Config(
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
        client,
        trainer,
        protocol: client_side.protocol,
        transforms: client_side.transforms,
        peers,
    })
}

/// Enrols the identities of a secure-aggregation round's participants after checking each
/// certificate against this node's CA and the job's node list. A certificate that fails is
/// left out (and logged): the protocol then refuses that participant's signed keys.
fn enrol(jobs: &Jobs, msg: &proto::PeerCertificates) {
    let Some(ctx) = lock(jobs).get(&msg.job_id).cloned() else {
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

fn fail(job_id: String, round: u32, message: String) -> Out {
    Out::Error(proto::NodeError {
        job_id,
        round,
        message,
    })
}

/// Trains for a `Fit` and builds the answer.
async fn respond_fit(jobs: &Jobs, fit: proto::Fit) -> Out {
    let params = match bytes_to_f32(&fit.params) {
        Ok(p) => p,
        Err(e) => return fail(fit.job_id, fit.round, e.to_string()),
    };
    let extensions = match ClientParams::from_entries(
        fit.extensions
            .into_iter()
            .map(|(name, value)| (name, value.to_vec())),
    ) {
        Ok(p) => p,
        Err(e) => return fail(fit.job_id, fit.round, e.to_string()),
    };
    let msg = ToClient::Fit {
        round: fit.round,
        params: params.into(),
        config: ClientTrainConfig {
            proximal_mu: fit.proximal_mu,
        },
        extensions: Arc::new(extensions),
    };
    respond(jobs, fit.job_id, msg).await
}

/// Answers a stage of a multi-stage aggregation protocol.
async fn respond_protocol(jobs: &Jobs, p: proto::ProtocolMessage) -> Out {
    let Ok(stage) = u8::try_from(p.stage) else {
        return fail(p.job_id, p.round, format!("no protocol stage {}", p.stage));
    };
    let msg = ToClient::Protocol {
        round: p.round,
        stage,
        payload: p.payload.to_vec(),
    };
    respond(jobs, p.job_id, msg).await
}

/// Runs the job's client protocol on `msg` (off the async threads: it may train) and turns its
/// answer into a wire message.
async fn respond(jobs: &Jobs, job_id: String, msg: ToClient) -> Out {
    let round = msg.round();
    let Some(ctx) = lock(jobs).get(&job_id).cloned() else {
        return fail(job_id, round, "this node has not joined the job".into());
    };
    let result = tokio::task::spawn_blocking(move || {
        let mut guard = lock(&ctx);
        let ctx = &mut *guard;
        ctx.protocol
            .respond(&msg, ctx.trainer.as_mut(), &ctx.transforms)
            .map(|reply| (reply, ctx.client))
    })
    .await;
    match result {
        Ok(Ok((FromClient::Update { round, update }, _))) => Out::Update(proto::Update {
            job_id,
            round,
            delta: f32_to_bytes(&update.delta),
            num_examples: update.num_examples,
            loss: update.metrics.loss,
        }),
        Ok(Ok((
            FromClient::Protocol {
                round,
                stage,
                payload,
            },
            _,
        ))) => Out::Protocol(proto::ProtocolMessage {
            job_id,
            round,
            stage: u32::from(stage),
            payload: payload.into(),
        }),
        Ok(Ok((other, _))) => fail(
            job_id,
            round,
            format!("the client protocol produced an unsendable {other:?}"),
        ),
        Ok(Err(e)) => {
            tracing::error!(job = %job_id, round, "training or protocol step failed: {e}");
            fail(job_id, round, e.to_string())
        }
        Err(e) => fail(job_id, round, format!("training task failed: {e}")),
    }
}
