//! Prometheus metrics of the coordinator, served as text on `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::error::CoordinatorError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// The coordinator's counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    rounds: Family<Outcome, Counter>,
    participants: Gauge,
    round_seconds: Histogram,
    bytes_in: Counter,
    bytes_out: Counter,
    nodes: Gauge,
    refused: Counter,
    handshakes_refused: Counter<u64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("privet");
        let rounds = Family::<Outcome, Counter>::default();
        registry.register("rounds", "Finished rounds by outcome", rounds.clone());
        let participants = Gauge::default();
        registry.register(
            "round_participants",
            "Nodes whose update is in the last round's aggregate",
            participants.clone(),
        );
        let round_seconds = Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0]);
        registry.register(
            "round_duration_seconds",
            "Wall time of finished rounds",
            round_seconds.clone(),
        );
        let bytes_in = Counter::default();
        registry.register(
            "received_bytes",
            "Payload bytes received from nodes",
            bytes_in.clone(),
        );
        let bytes_out = Counter::default();
        registry.register(
            "sent_bytes",
            "Payload bytes sent to nodes",
            bytes_out.clone(),
        );
        let nodes = Gauge::default();
        registry.register(
            "nodes_connected",
            "Nodes with an open session",
            nodes.clone(),
        );
        let refused = Counter::default();
        registry.register(
            "messages_refused",
            "Node messages refused (malformed, out of protocol, unknown job)",
            refused.clone(),
        );
        let handshakes_refused = Counter::<u64, AtomicU64>::default();
        Metrics {
            registry: Arc::new(registry),
            rounds,
            participants,
            round_seconds,
            bytes_in,
            bytes_out,
            nodes,
            refused,
            handshakes_refused,
        }
    }

    /// A round ended.
    pub fn round_finished(&self, completed: bool, participants: usize, seconds: f64) {
        let outcome = if completed { "completed" } else { "failed" };
        self.rounds.get_or_create(&Outcome { outcome }).inc();
        self.participants.set(participants as i64);
        self.round_seconds.observe(seconds);
    }

    /// Bytes received.
    pub fn bytes_received(&self, n: u64) {
        self.bytes_in.inc_by(n);
    }

    /// Bytes sent.
    pub fn bytes_sent(&self, n: u64) {
        self.bytes_out.inc_by(n);
    }

    /// Nodes connected now.
    pub fn nodes_connected(&self, n: usize) {
        self.nodes.set(n as i64);
    }

    /// A message was refused.
    pub fn refused(&self) {
        self.refused.inc();
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let failures =
            privet_transport::HANDSHAKE_FAILURES.load(std::sync::atomic::Ordering::Relaxed);
        let seen = self.handshakes_refused.get();
        if failures > seen {
            self.handshakes_refused.inc_by(failures - seen);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out.push_str(&format!(
            "# HELP privet_tls_handshakes_refused Refused TLS handshakes.\n# TYPE \
             privet_tls_handshakes_refused counter\nprivet_tls_handshakes_refused_total {failures}\n"
        ));
        out
    }

    /// Serves `/metrics` on `addr` until shutdown; returns the bound address.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<SocketAddr, CoordinatorError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| CoordinatorError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        let bound = listener
            .local_addr()
            .map_err(|source| CoordinatorError::Listen {
                addr: addr.to_string(),
                source,
            })?;
        let metrics = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        );
        tokio::spawn(async move {
            let stop = async move {
                let _ = shutdown.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!("metrics server: {e}");
            }
        });
        Ok(bound)
    }
}
