//! Private Join and Compute over the network: [`privet_psi`]'s sans-IO sessions carried on a
//! gRPC bidirectional stream (`proto/privet/v1/psi_service.proto`) with mutual TLS 1.3 and the
//! federation's certificates ([`privet_transport`]).
//!
//! * [`serve`] runs the server (`privet pjc serve --config pjc.toml`): it loads its identifier
//!   list once, then runs one [`PjcServer`] per incoming session (at most
//!   [`ServeConfig::max_sessions`] at a time), the protocol's CPU work on blocking threads.
//!   Callers must present a certificate from the CA with the `node` role; the server's own
//!   certificate must hold the `coordinator` role (checked at start).
//! * [`join`] runs the client (`privet pjc join --server URL --csv F --id COL`).
//!
//! Each envelope carries one encoded `PsiMessage`; privet-psi parses it under its own limits
//! ([`privet_psi::wire::WireLimits`]) and gRPC's own message cap is set just above them, so no
//! message can make either side allocate more. An error on either side sends the peer an abort
//! with a fixed reason (never internal details) and ends the stream.
//!
//! # Example
//!
//! The loopback test `tests/loopback.rs` issues real certificates, starts [`serve`] on
//! 127.0.0.1 and runs [`join`] against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use privet_identity::Role;
use privet_psi::wire::{WireLimits, decode, encode};
use privet_psi::{
    ClientConfig, ClientOutput, CsvSpec, DpConfig, Functionality, InputSet, Message,
    NormalizeOptions, PjcClient, PjcServer, PsiError, ServerConfig, ServerOutput, SessionLimits,
    ValueBounds, abort_for,
};
use privet_transport::{Security, TransportError};
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// The generated gRPC code.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod proto {
    tonic::include_proto!("privet.v1.psiservice");
}

use proto::PsiEnvelope;
use proto::psi_service_client::PsiServiceClient;
use proto::psi_service_server::{PsiService, PsiServiceServer};

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Everything that can go wrong in the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The configuration file is invalid.
    #[error("{0}")]
    Config(String),
    /// Reading the configuration failed.
    #[error(transparent)]
    Files(#[from] privet_files::FileError),
    /// Certificates, TLS or the connection.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The protocol (bad input, bad peer, refused terms).
    #[error(transparent)]
    Psi(#[from] PsiError),
    /// The stream broke or the peer refused the call.
    #[error("{0}")]
    Remote(String),
    /// Binding the listening address failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// `pjc.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    listen: String,
    data: DataSection,
    privacy: Option<PrivacySection>,
    #[serde(default)]
    policy: PolicySection,
    tls: Option<privet_transport::TlsSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSection {
    csv: PathBuf,
    id: String,
    case: Option<String>,
    duplicates: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivacySection {
    epsilon: f64,
    delta: Option<f64>,
    lower: Option<i64>,
    upper: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    allow_sum: Option<bool>,
    reveal_to_client: Option<bool>,
    learn_intersection: Option<bool>,
    max_sessions: Option<usize>,
    max_peer_set_size: Option<u64>,
}

/// A validated server configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The identifier list (CSV) and its column.
    pub csv: PathBuf,
    /// Identifier column.
    pub id_column: String,
    /// Normalisation of identifiers.
    pub normalize: NormalizeOptions,
    /// The session terms.
    pub server: ServerConfig,
    /// Sessions run at the same time (others wait).
    pub max_sessions: usize,
    /// Certificates.
    pub security: Security,
}

/// Parses a normalisation from config words.
pub fn normalize_options(
    case: Option<&str>,
    duplicates: Option<&str>,
) -> Result<NormalizeOptions, ServiceError> {
    let case = match case.unwrap_or("preserve") {
        "preserve" => privet_psi::CaseRule::Preserve,
        "lower" => privet_psi::CaseRule::Lower,
        other => {
            return Err(ServiceError::Config(format!(
                "case must be \"preserve\" or \"lower\", not {other:?}"
            )));
        }
    };
    let duplicates = match duplicates.unwrap_or("refuse") {
        "refuse" => privet_psi::Duplicates::Refuse,
        "merge" => privet_psi::Duplicates::Merge,
        other => {
            return Err(ServiceError::Config(format!(
                "duplicates must be \"refuse\" or \"merge\", not {other:?}"
            )));
        }
    };
    Ok(NormalizeOptions { case, duplicates })
}

impl ServeConfig {
    /// Reads `pjc.toml` (unknown keys refused; paths relative to the file).
    pub fn from_file(path: &Path, insecure_dev: bool) -> Result<Self, ServiceError> {
        let file: ServeFile = privet_files::read_toml(path, MAX_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let bad = |m: String| ServiceError::Config(format!("{}: {m}", path.display()));
        let listen: SocketAddr = file
            .listen
            .parse()
            .map_err(|_| bad(format!("listen = {:?} is not an address:port", file.listen)))?;
        let normalize =
            normalize_options(file.data.case.as_deref(), file.data.duplicates.as_deref())?;
        let mut server = ServerConfig::default();
        if let Some(p) = &file.privacy {
            server.dp = Some(match p.delta {
                Some(d) => DpConfig::approximate(p.epsilon, d),
                None => DpConfig::pure(p.epsilon),
            });
            server.bounds = match (p.lower, p.upper) {
                (Some(l), Some(u)) => Some(ValueBounds::new(l, u)?),
                (None, None) => None,
                _ => {
                    return Err(bad(
                        "[privacy] needs both lower and upper, or neither".into()
                    ));
                }
            };
        }
        let pol = &file.policy;
        server.allow_sum = pol.allow_sum.unwrap_or(true);
        server.allow_reveal_to_client = pol.reveal_to_client.unwrap_or(false);
        server.learn_intersection = pol.learn_intersection.unwrap_or(false);
        if let Some(m) = pol.max_peer_set_size {
            server.limits.max_peer_set_size = m;
        }
        server.validate()?;
        let max_sessions = pol.max_sessions.unwrap_or(4);
        if max_sessions == 0 || max_sessions > 1024 {
            return Err(bad("[policy] max_sessions must be 1 to 1024".into()));
        }
        let csv = if file.data.csv.is_absolute() {
            file.data.csv.clone()
        } else {
            base.join(&file.data.csv)
        };
        let security =
            privet_transport::TlsSection::resolve(file.tls.as_ref(), base, insecure_dev)?;
        Ok(ServeConfig {
            listen,
            csv,
            id_column: file.data.id,
            normalize,
            server,
            max_sessions,
            security,
        })
    }
}

/// gRPC's own cap: a little above the largest PSI message.
fn grpc_limit(limits: &SessionLimits) -> usize {
    limits.wire.max_message_bytes + 1024
}

type Outbound = Pin<Box<dyn Stream<Item = Result<PsiEnvelope, Status>> + Send>>;

struct Service {
    set: Arc<InputSet>,
    config: ServerConfig,
    security: Security,
    sessions: Arc<Semaphore>,
    finished: mpsc::UnboundedSender<Result<ServerOutput, String>>,
}

fn envelope(m: &Message) -> PsiEnvelope {
    PsiEnvelope {
        message: Bytes::from(encode(m)),
    }
}

#[tonic::async_trait]
impl PsiService for Arc<Service> {
    type SessionStream = Outbound;

    async fn session(
        &self,
        request: Request<Streaming<PsiEnvelope>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        if let Some(caller) = privet_transport::caller(&self.security, &request)? {
            caller.require(Role::Node)?;
            tracing::info!(peer = %caller.identity.name, "PJC session");
        }
        let permit = Arc::clone(&self.sessions)
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("shutting down"))?;
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel::<Result<PsiEnvelope, Status>>(16);
        let set = Arc::clone(&self.set);
        let config = self.config.clone();
        let wire = config.limits.wire;
        let finished = self.finished.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let server = match PjcServer::new(config, (*set).clone()) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(Status::internal(e.peer_reason()))).await;
                    return;
                }
            };
            let mut server = Some(server);
            let result = loop {
                let env = match inbound.next().await {
                    Some(Ok(env)) => env,
                    Some(Err(s)) => break Err(format!("stream: {}", s.message())),
                    None => break Err("the client closed the stream early".into()),
                };
                let Some(mut s) = server.take() else {
                    break Err("internal".into());
                };
                let step = tokio::task::spawn_blocking(move || {
                    let r = decode(&env.message, &wire).and_then(|m| s.handle(m));
                    (s, r)
                })
                .await;
                let Ok((s, r)) = step else {
                    break Err("session task failed".into());
                };
                match r {
                    Ok(out) => {
                        for m in out {
                            if tx.send(Ok(envelope(&m))).await.is_err() {
                                break;
                            }
                        }
                        if let Some(o) = s.output() {
                            break Ok(o.clone());
                        }
                        server = Some(s);
                    }
                    Err(e) => {
                        if !matches!(e, PsiError::PeerAborted(_)) {
                            let _ = tx.send(Ok(envelope(&abort_for(&e)))).await;
                        }
                        break Err(e.to_string());
                    }
                }
            };
            match &result {
                Ok(o) => tracing::info!(
                    intersection = o.exact_intersection_size,
                    client_set = o.client_set_size,
                    "PJC session finished"
                ),
                Err(e) => tracing::warn!("PJC session failed: {e}"),
            }
            let _ = finished.send(result);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServeHandle {
    /// The bound address.
    pub addr: SocketAddr,
    /// Each finished session: what the server learned, or why it failed.
    pub finished: mpsc::UnboundedReceiver<Result<ServerOutput, String>>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl ServeHandle {
    /// Stops accepting sessions and waits for the server to end.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| ServiceError::Remote(format!("server task: {e}")))?
    }
}

/// Loads the identifier list and serves sessions until [`ServeHandle::shutdown`].
pub async fn serve(config: ServeConfig) -> Result<ServeHandle, ServiceError> {
    let tls = match &config.security {
        Security::Tls(files) => {
            let own = privet_identity::own_identity(files).map_err(TransportError::from)?;
            if own.role != Role::Coordinator {
                return Err(ServiceError::Config(format!(
                    "{}: the server's certificate holds the {} role; a PJC server needs a \
                     coordinator certificate (privet certs issue NAME --role coordinator --host ...)",
                    files.cert.display(),
                    own.role
                )));
            }
            Some(privet_transport::server_config(files)?)
        }
        Security::InsecureDev => {
            tracing::warn!("--insecure-dev: plain text, callers unauthenticated");
            None
        }
    };
    let set = {
        let (csv, id, opts) = (
            config.csv.clone(),
            config.id_column.clone(),
            config.normalize,
        );
        tokio::task::spawn_blocking(move || InputSet::read_csv(&csv, &CsvSpec::new(id), opts))
            .await
            .map_err(|e| ServiceError::Remote(format!("loading task: {e}")))??
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServiceError::Listen {
            addr: config.listen.to_string(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServiceError::Listen {
            addr: config.listen.to_string(),
            source,
        })?;
    let (finished_tx, finished) = mpsc::unbounded_channel();
    let limit = grpc_limit(&config.server.limits);
    let service = Arc::new(Service {
        set: Arc::new(set),
        config: config.server.clone(),
        security: config.security.clone(),
        sessions: Arc::new(Semaphore::new(config.max_sessions)),
        finished: finished_tx,
    });
    let grpc = PsiServiceServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let (shutdown, stop) = watch::channel(false);
    let router = tonic::transport::Server::builder()
        .http2_adaptive_window(Some(true))
        .add_service(grpc);
    let task = tokio::spawn(async move {
        privet_transport::serve(router, listener, tls, stop)
            .await
            .map_err(|e| ServiceError::Remote(format!("server: {e}")))
    });
    tracing::info!(%addr, "PJC server listening");
    Ok(ServeHandle {
        addr,
        finished,
        shutdown,
        task,
    })
}

/// What [`join`] reports.
#[derive(Debug, Clone)]
pub struct JoinReport {
    /// What the client learned.
    pub output: ClientOutput,
    /// Encoded PSI bytes sent and received (without TLS and HTTP/2 framing).
    pub bytes_sent: u64,
    /// Encoded PSI bytes received.
    pub bytes_received: u64,
    /// Bytes on the socket both ways (TLS records included).
    pub socket_bytes: u64,
}

/// Runs one session as the client against the server at `url` (`https://host:port`).
pub async fn join(
    url: &str,
    security: &Security,
    config: ClientConfig,
    set: InputSet,
) -> Result<JoinReport, ServiceError> {
    let counter = Arc::new(privet_transport::WireCounter::default());
    let channel = privet_transport::connect(url, security, Some(Arc::clone(&counter))).await?;
    let limit = grpc_limit(&config.limits);
    let wire: WireLimits = config.limits.wire;
    let mut grpc = PsiServiceClient::new(channel)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut client = PjcClient::new(config, set)?;
    let (tx, rx) = mpsc::channel::<PsiEnvelope>(16);
    let mut sent = 0u64;
    let mut received = 0u64;
    for m in client.start()? {
        let env = envelope(&m);
        sent += env.message.len() as u64;
        tx.send(env)
            .await
            .map_err(|_| ServiceError::Remote("the stream closed".into()))?;
    }
    let mut inbound = grpc
        .session(ReceiverStream::new(rx))
        .await
        .map_err(|s| remote(url, &s))?
        .into_inner();
    let mut client = Some(client);
    loop {
        let env = match inbound.next().await {
            Some(Ok(env)) => env,
            Some(Err(s)) => return Err(remote(url, &s)),
            None => {
                return Err(ServiceError::Remote(format!(
                    "{url} closed the session before its outcome"
                )));
            }
        };
        received += env.message.len() as u64;
        let Some(mut c) = client.take() else {
            return Err(ServiceError::Remote("internal".into()));
        };
        let (c, r) = tokio::task::spawn_blocking(move || {
            let r = decode(&env.message, &wire).and_then(|m| c.handle(m));
            (c, r)
        })
        .await
        .map_err(|e| ServiceError::Remote(format!("session task: {e}")))?;
        match r {
            Ok(out) => {
                for m in out {
                    let env = envelope(&m);
                    sent += env.message.len() as u64;
                    if tx.send(env).await.is_err() {
                        return Err(ServiceError::Remote(format!("{url} closed the stream")));
                    }
                }
                if let Some(o) = c.output() {
                    let socket_bytes = counter.read.load(std::sync::atomic::Ordering::Relaxed)
                        + counter.written.load(std::sync::atomic::Ordering::Relaxed);
                    return Ok(JoinReport {
                        output: o.clone(),
                        bytes_sent: sent,
                        bytes_received: received,
                        socket_bytes,
                    });
                }
                client = Some(c);
            }
            Err(e) => {
                if !matches!(e, PsiError::PeerAborted(_)) {
                    let _ = tx.send(envelope(&abort_for(&e))).await;
                }
                return Err(e.into());
            }
        }
    }
}

fn remote(url: &str, s: &Status) -> ServiceError {
    ServiceError::Remote(format!("{url}: {} ({:?})", s.message(), s.code()))
}

/// The functionality a joiner asks for: the sum when it has values.
pub fn functionality_for(set: &InputSet) -> Functionality {
    if set.values().is_some() {
        Functionality::Sum
    } else {
        Functionality::Cardinality
    }
}
