//! Start-up and shutdown, and the `Federation` service that opens node sessions.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use privet_identity::Role;
use privet_transport::{Frame, Security};
use privet_wire::proto::admin_server::AdminServer;
use privet_wire::proto::federation_server::{Federation, FederationServer};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::admin::{Service, caller_cert};
use crate::audit::Audit;
use crate::config::CoordinatorConfig;
use crate::driver::spawn_driver;
use crate::error::CoordinatorError;
use crate::hub::{Hub, Shared, reader, writer};
use crate::metrics::Metrics;
use crate::store::{JobRow, Store, StoreActor};

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, Status>> + Send>>;

/// A running coordinator.
#[derive(Debug)]
pub struct CoordinatorHandle {
    /// The gRPC address it listens on.
    pub addr: SocketAddr,
    /// The metrics address, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), CoordinatorError>>,
    store: StoreActor,
}

impl CoordinatorHandle {
    /// Stops accepting, ends job drivers (a round in progress is abandoned and redone after a
    /// restart) and waits for the server to finish.
    pub async fn shutdown(mut self) -> Result<(), CoordinatorError> {
        let _ = self.shutdown.send(true);
        // Session readers end on the signal, which closes every node's stream; a peer that
        // keeps its half of a stream open does not hold the shutdown up for more than a moment.
        let result = match tokio::time::timeout(Duration::from_secs(5), &mut self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(CoordinatorError::Task(e)),
            Err(_) => {
                self.task.abort();
                Ok(())
            }
        };
        // Closed last: the database and its lock are released when this returns.
        self.store.close().await;
        result
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> Result<(), CoordinatorError> {
        let result = match self.task.await {
            Ok(result) => result,
            Err(e) => Err(CoordinatorError::Task(e)),
        };
        self.store.close().await;
        result
    }

    /// Asks the coordinator to stop, without waiting.
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts the coordinator: opens the database, resumes unfinished jobs, listens.
pub async fn start(config: CoordinatorConfig) -> Result<CoordinatorHandle, CoordinatorError> {
    if config.security == Security::InsecureDev {
        tracing::warn!(
            "--insecure-dev: plain text, node names are NOT authenticated; never use this with \
             real data"
        );
    }
    // Certificates first: a misconfigured coordinator creates nothing.
    let mut own_name = None;
    let mut signing = None;
    let tls = match &config.security {
        Security::Tls(files) => {
            let own = privet_identity::own_identity(files)?;
            if own.role != Role::Coordinator {
                return Err(CoordinatorError::Config(format!(
                    "{} is a {}'s certificate; the coordinator needs one issued with --role \
                     coordinator",
                    files.cert.display(),
                    own.role
                )));
            }
            own_name = Some(own.name.to_string());
            signing = Some((own.name, privet_identity::load_signing_key(files)?));
            Some(privet_transport::server_config(files)?)
        }
        Security::InsecureDev => None,
    };
    let mut agreements = Vec::with_capacity(config.agreements.len());
    for path in &config.agreements {
        // The text is kept for the record (the agreements table); the parse checks it.
        let agreement = privet_audit::Agreement::load(path)?;
        let text = privet_files::read_text(path, privet_audit::MAX_AGREEMENT_BYTES)?;
        agreements.push((agreement, text));
    }
    if signing.is_none() && (!agreements.is_empty() || config.require_agreement) {
        return Err(CoordinatorError::Config(
            "[audit] agreements need certificates: the audit log's heads are signed with the \
             coordinator's key, which --insecure-dev does not have"
                .into(),
        ));
    }
    let store = {
        let path = config.state.clone();
        let opened = tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .map_err(CoordinatorError::Task)??;
        StoreActor::spawn(opened)?
    };
    let listen = |source| CoordinatorError::Listen {
        addr: config.listen.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let metrics = Metrics::new();
    let metrics_addr = match config.metrics_listen {
        Some(at) => Some(metrics.serve(at, shutdown_rx.clone()).await?),
        None => None,
    };
    let limits = config.limits;
    let audit = match signing {
        Some((name, key)) => {
            Some(Audit::open(name, key, agreements, config.require_agreement, &store).await?)
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        hub: Mutex::new(Hub::default()),
        store: store.clone(),
        config,
        metrics,
        shutdown: shutdown_rx.clone(),
        own_name,
        audit,
    });
    let unfinished: Vec<JobRow> = store
        .call(|s| s.jobs())
        .await?
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
    let stop = shutdown_rx.clone();
    let router = tonic::transport::Server::builder()
        .http2_adaptive_window(Some(true))
        .add_service(federation)
        .add_service(admin);
    let task = tokio::spawn(async move {
        privet_transport::serve(router, listener, tls, stop)
            .await
            .map_err(CoordinatorError::Server)
    });
    tracing::info!(%addr, "coordinator listening");
    Ok(CoordinatorHandle {
        addr,
        metrics_addr,
        shutdown: shutdown_tx,
        task,
        store,
    })
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
        let (out_tx, out_rx) = mpsc::unbounded_channel::<Arc<privet_transport::Encoded>>();
        tokio::spawn(writer(out_rx, frame_tx, Arc::clone(&self.shared)));
        tokio::spawn(reader(inbound, out_tx, peer, Arc::clone(&self.shared)));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(frame_rx),
        )))
    }
}
