//! The gRPC service: `privet he serve`. One bidirectional stream per client session, carrying
//! framed logical messages (privet-transport), each handled by the session core on a blocking
//! thread. TLS 1.3 with certificates from the federation CA (as the coordinator); the server
//! only ever receives evaluation keys and ciphertexts.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use privet_he::inference::Packing;
use privet_transport::{Encoded, Frame, Limits, LimitsSection, Reassembler, Security, TlsSection};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{HeServiceError, Result};
use crate::proto;
use crate::proto::he_inference_server::{HeInference, HeInferenceServer};
use crate::session::{ServerCore, ServerSettings};

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    tls: Option<TlsSection>,
    #[serde(default)]
    limits: LimitsSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    packing: Option<String>,
    max_samples_per_session: Option<u64>,
    max_sessions: Option<usize>,
}

/// `he-server.toml`, parsed and checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// TLS files or insecure dev mode.
    pub security: Security,
    /// Message limits.
    pub limits: Limits,
    /// Session settings.
    pub settings: ServerSettings,
    /// Most concurrent sessions.
    pub max_sessions: usize,
}

impl ServerConfig {
    /// Reads the configuration file (paths inside it are relative to it).
    pub fn load(path: &Path, insecure_dev: bool) -> Result<Self> {
        let raw: RawConfig = privet_files::read_toml(path, MAX_CONFIG_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let security = TlsSection::resolve(raw.tls.as_ref(), base, insecure_dev)?;
        let limits = raw.limits.resolve()?;
        let listen = raw.server.listen.parse().map_err(|e| {
            HeServiceError::Config(format!("[server] listen {:?}: {e}", raw.server.listen))
        })?;
        let packing = match raw.server.packing.as_deref().unwrap_or("single") {
            "single" => Packing::Single,
            "batch" => Packing::Batch,
            other => {
                return Err(HeServiceError::Config(format!(
                    "[server] packing must be \"single\" or \"batch\", got {:?}",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        let max_sessions = raw.server.max_sessions.unwrap_or(64);
        if max_sessions == 0 || max_sessions > 100_000 {
            return Err(HeServiceError::Config(
                "[server] max_sessions must be 1 to 100000".into(),
            ));
        }
        Ok(Self {
            listen,
            security,
            limits,
            settings: ServerSettings {
                packing,
                max_samples_per_session: raw.server.max_samples_per_session.unwrap_or(0),
                max_message_bytes: limits.max_message_bytes,
            },
            max_sessions,
        })
    }
}

#[derive(Debug, Clone)]
struct Service {
    core: Arc<ServerCore>,
    security: Security,
    limits: Limits,
    sessions: Arc<AtomicUsize>,
    max_sessions: usize,
}

fn refusal_frames(limits: &Limits, id: u64, message: &str) -> Vec<Frame> {
    let msg = proto::ServerMessage {
        body: Some(proto::server_message::Body::Error(proto::Error {
            message: message.to_string(),
        })),
    };
    Encoded::new(&msg, limits)
        .map(|e| e.frames(id).collect())
        .unwrap_or_default()
}

struct SessionGuard(Arc<AtomicUsize>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl HeInference for Service {
    type SessionStream = ReceiverStream<std::result::Result<Frame, Status>>;

    async fn session(
        &self,
        req: Request<Streaming<Frame>>,
    ) -> std::result::Result<Response<Self::SessionStream>, Status> {
        let caller = privet_transport::caller(&self.security, &req)?;
        let who = caller
            .map(|c| c.identity.name.to_string())
            .unwrap_or_else(|| "(insecure dev)".into());
        if self.sessions.fetch_add(1, Ordering::SeqCst) >= self.max_sessions {
            self.sessions.fetch_sub(1, Ordering::SeqCst);
            return Err(Status::resource_exhausted(
                "too many sessions; try again later",
            ));
        }
        let guard = SessionGuard(Arc::clone(&self.sessions));
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(32);
        let core = Arc::clone(&self.core);
        let limits = self.limits;
        tokio::spawn(async move {
            let _guard = guard;
            tracing::info!(client = %who, "HE session opened");
            let mut session = Some(core.session());
            let mut reassembler = Reassembler::new(limits);
            let mut id = 0u64;
            loop {
                let msg = loop {
                    match inbound.next().await {
                        None => break None,
                        Some(Err(s)) => {
                            tracing::debug!("stream ended: {}", s.message());
                            break None;
                        }
                        Some(Ok(frame)) => {
                            match reassembler.push_decode::<proto::ClientMessage>(frame) {
                                Ok(None) => continue,
                                Ok(Some(m)) => break Some(Ok(m)),
                                Err(e) => break Some(Err(e)),
                            }
                        }
                    }
                };
                let msg = match msg {
                    None => break,
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        for f in refusal_frames(&limits, id, &e.to_string()) {
                            let _ = tx.send(Ok(f)).await;
                        }
                        break;
                    }
                };
                let Some(mut s) = session.take() else { break };
                let handled = tokio::task::spawn_blocking(move || {
                    let t = Instant::now();
                    let mut answer = s.handle(msg);
                    if let Some(proto::server_message::Body::Infer(r)) = answer.body.as_mut() {
                        r.eval_micros = t.elapsed().as_micros() as u64;
                    }
                    (s, answer)
                })
                .await;
                let Ok((s, answer)) = handled else { break };
                session = Some(s);
                let frames: Vec<Frame> = match Encoded::new(&answer, &limits) {
                    Ok(e) => e.frames(id).collect(),
                    Err(e) => refusal_frames(&limits, id, &e.to_string()),
                };
                id += 1;
                for f in frames {
                    if tx.send(Ok(f)).await.is_err() {
                        return;
                    }
                }
            }
            let samples = session.map(|s| s.samples()).unwrap_or(0);
            tracing::info!(client = %who, samples, "HE session closed");
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// A running service.
#[derive(Debug)]
pub struct ServiceHandle {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl ServiceHandle {
    /// Stops the service and waits for it.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| HeServiceError::Config(format!("server task: {e}")))?
    }

    /// Waits until the service ends.
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| HeServiceError::Config(format!("server task: {e}")))?
    }

    /// Asks the service to stop (returns at once).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts the service for `core` as configured.
pub async fn start(core: Arc<ServerCore>, config: &ServerConfig) -> Result<ServiceHandle> {
    let tls = match &config.security {
        Security::Tls(files) => Some(privet_transport::server_config(files)?),
        Security::InsecureDev => {
            tracing::warn!("insecure dev mode: plain text, clients unauthenticated");
            None
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| HeServiceError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| HeServiceError::Config(e.to_string()))?;
    let service = Service {
        core,
        security: config.security.clone(),
        limits: config.limits,
        sessions: Arc::new(AtomicUsize::new(0)),
        max_sessions: config.max_sessions,
    };
    let svc = HeInferenceServer::new(service)
        .max_decoding_message_size(config.limits.grpc_message_limit())
        .max_encoding_message_size(config.limits.grpc_message_limit());
    let (shutdown, stop) = watch::channel(false);
    let router = tonic::transport::Server::builder()
        .http2_adaptive_window(Some(true))
        .add_service(svc);
    let task = tokio::spawn(async move {
        privet_transport::serve(router, listener, tls, stop)
            .await
            .map_err(|e| HeServiceError::Config(format!("server: {e}")))
    });
    tracing::info!(%addr, "HE inference service listening");
    Ok(ServiceHandle {
        addr,
        shutdown,
        task,
    })
}
