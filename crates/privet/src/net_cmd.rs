//! The networked commands: `coordinator`, `node`, `submit`, `status`, `fetch-model`, `certs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::out::outln;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use privet_coordinator::{AdminClient, CoordinatorConfig};
use privet_identity::{Name, Role, TlsFiles};
use privet_node::NodeConfig;
use privet_transport::Security;

/// How an operator command reaches the coordinator.
#[derive(Debug, Args)]
pub struct Remote {
    /// The coordinator's address.
    #[arg(
        long,
        default_value = "https://localhost:7700",
        env = "PRIVET_COORDINATOR"
    )]
    pub coordinator: String,
    /// Directory with `ca.pem` and this operator's `NAME.pem` / `NAME.key`.
    #[arg(long, default_value = "certs", env = "PRIVET_CERTS")]
    pub certs: PathBuf,
    /// The operator's certificate name.
    #[arg(long, default_value = "admin")]
    pub name: Name,
    /// Plain text without certificates (development only; logs a warning).
    #[arg(long)]
    pub insecure_dev: bool,
}

impl Remote {
    fn security(&self) -> Security {
        if self.insecure_dev {
            eprintln!("warning: --insecure-dev: plain text, no authentication");
            Security::InsecureDev
        } else {
            Security::Tls(TlsFiles::in_dir(&self.certs, &self.name))
        }
    }
}

/// `privet certs ...`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create the federation's certificate authority (ca.pem, ca.key).
    Init {
        /// Where to write the files.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// The federation's name (in the CA's subject).
        #[arg(long, default_value = "privet")]
        federation: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate for a node, an operator or the coordinator (NAME.pem, NAME.key).
    Issue {
        /// The peer's name: its identity in the federation.
        name: Name,
        /// The CA's directory; the new files are written there too.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// What the certificate allows: coordinator, node or operator [default: coordinator
        /// with --host, node without].
        #[arg(long)]
        role: Option<Role>,
        /// The coordinator's DNS names and IP addresses (a coordinator certificate only).
        #[arg(long = "host", value_name = "HOST")]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub(crate) async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `privet coordinator`
pub fn coordinator(config: &Path, insecure_dev: bool) -> Result<()> {
    init_tracing();
    let config = CoordinatorConfig::from_file(config, insecure_dev)?;
    runtime()?.block_on(async move {
        let handle = privet_coordinator::start(config).await?;
        outln!("coordinator listening on {}", handle.addr);
        if let Some(m) = handle.metrics_addr {
            outln!("metrics on http://{m}/metrics");
        }
        termination().await;
        tracing::info!("shutting down");
        handle.shutdown().await?;
        Ok(())
    })
}

/// `privet node`
pub fn node(config: &Path, insecure_dev: bool) -> Result<()> {
    init_tracing();
    let config = NodeConfig::from_file(config, insecure_dev)?;
    let backend = Arc::new(privet_node::CsvBackend::new(config.data.clone()));
    runtime()?.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let node = tokio::spawn(privet_node::run_node(config, backend, rx, None));
        tokio::select! {
            result = node => {
                result.context("node task failed")??;
            }
            _ = termination() => {
                tracing::info!("shutting down");
                let _ = tx.send(true);
            }
        }
        Ok(())
    })
}

/// `privet submit`
pub fn submit(job: &Path, remote: &Remote) -> Result<()> {
    let text = std::fs::read_to_string(job).with_context(|| format!("{}", job.display()))?;
    // Check it here first, for a message with the file name.
    privet_job::Job::from_file(job)?;
    let security = remote.security();
    runtime()?.block_on(async move {
        let mut client = AdminClient::connect(&remote.coordinator, &security).await?;
        let id = client.submit(&text).await?;
        outln!("{id}");
        Ok(())
    })
}

/// `privet status`
pub fn status(job: Option<&str>, json: bool, remote: &Remote) -> Result<()> {
    let security = remote.security();
    runtime()?.block_on(async move {
        let mut client =
            AdminClient::connect(&remote.coordinator, &security).await?;
        let (jobs, nodes) = match job {
            Some(id) => (vec![client.job(id).await?], None),
            None => {
                let s = client.status().await?;
                (s.jobs, Some(s.connected_nodes))
            }
        };
        if json {
            let value = serde_json::json!({
                "connected_nodes": nodes,
                "jobs": jobs.iter().map(job_json).collect::<Vec<_>>(),
            });
            outln!("{}", serde_json::to_string_pretty(&value)?);
            return Ok(());
        }
        if let Some(nodes) = nodes {
            outln!(
                "connected nodes: {}",
                if nodes.is_empty() {
                    "none".into()
                } else {
                    nodes.join(", ")
                }
            );
        }
        for j in &jobs {
            outln!(
                "{}  {}  {}/{} rounds  nodes: {}{}",
                j.job_id,
                j.state,
                j.completed_rounds,
                j.total_rounds,
                j.expected_nodes.join(","),
                if j.error.is_empty() {
                    String::new()
                } else {
                    format!("  error: {}", j.error)
                }
            );
            if job.is_some() {
                let numbers: std::collections::BTreeSet<u32> =
                    j.rounds.iter().map(|r| r.round).collect();
                let last = numbers.last().copied().unwrap_or(0);
                let skipped: Vec<String> = (1..=last)
                    .filter(|n| !numbers.contains(n))
                    .map(|n| n.to_string())
                    .collect();
                if !skipped.is_empty() {
                    outln!(
                        "  round numbers skipped (in progress when the coordinator stopped): {}",
                        skipped.join(", ")
                    );
                }
                for r in &j.rounds {
                    outln!(
                        "  round {:>3}  {}  loss {:.4}{}  {:.2} s  participants: {}{}{}",
                        r.round,
                        if r.completed {
                            "completed"
                        } else {
                            "failed   "
                        },
                        r.train_loss,
                        evaluation_of(r)
                            .map(|e| format!(
                                "  test accuracy {:.4} (loss {:.4}, {} rows of {})",
                                e.accuracy, e.loss, e.examples, e.set
                            ))
                            .unwrap_or_default(),
                        r.seconds,
                        r.participants.join(",")
                            + &if r.dropped.is_empty() {
                                String::new()
                            } else {
                                format!("  dropped: {}", r.dropped.join(","))
                            },
                        secagg_of(r)
                            .map(|s| {
                                let step = if s.delta_step > 0.0 {
                                    format!(" step {:.1e} (W={})", s.delta_step, s.max_weight)
                                } else {
                                    String::new()
                                };
                                format!("  secagg+ n={} k={} t={}{step}", s.n, s.k, s.t)
                            })
                            .unwrap_or_default()
                            + &privacy_of(r)
                                .map(|p| format!(
                                    "  DP {}: epsilon {:.3} (total {:.3}) at delta {:e}, clip {:.4}",
                                    p.mode, p.epsilon, p.cumulative_epsilon, p.delta, p.clip
                                ))
                                .unwrap_or_default(),
                        if r.failure.is_empty() {
                            String::new()
                        } else {
                            format!("  ({})", r.failure)
                        }
                    );
                }
            }
        }
        Ok(())
    })
}

fn job_json(j: &privet_wire::proto::JobInfo) -> serde_json::Value {
    serde_json::json!({
        "job_id": j.job_id,
        "state": j.state,
        "completed_rounds": j.completed_rounds,
        "total_rounds": j.total_rounds,
        "error": j.error,
        "expected_nodes": j.expected_nodes,
        "rounds": j.rounds.iter().map(|r| serde_json::json!({
            "round": r.round,
            "completed": r.completed,
            "participants": r.participants,
            "dropped": r.dropped,
            "train_loss": if r.train_loss.is_finite() { Some(r.train_loss) } else { None },
            "test_accuracy": evaluation_of(r).map(|e| e.accuracy),
            "test_loss": evaluation_of(r).map(|e| e.loss),
            "test_auc": evaluation_of(r).and_then(|e| e.auc),
            "seconds": r.seconds,
            "failure": r.failure,
            "secure_aggregation": secagg_of(r).map(|s| serde_json::json!({
                "protocol": "secagg+", "n": s.n, "k": s.k, "t": s.t,
                "max_clients": s.max_clients, "max_weight": s.max_weight,
                "delta_step": s.delta_step,
            })),
            "privacy": privacy_of(r).map(|p| serde_json::json!({
                "mode": p.mode,
                "epsilon": p.epsilon,
                "cumulative_epsilon": p.cumulative_epsilon,
                "delta": p.delta,
                "noise_multiplier": p.noise_multiplier,
                "clip": p.clip,
            })),
            "details": r.details.iter().map(|(name, text)| {
                let value = serde_json::from_str::<serde_json::Value>(text)
                    .unwrap_or_else(|_| serde_json::Value::String(text.clone()));
                (name.clone(), value)
            }).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    })
}

/// A round's secure-aggregation detail, if it has a readable one.
fn secagg_of(r: &privet_wire::proto::RoundInfo) -> Option<privet_secagg::SecAggDetails> {
    detail(r, privet_secagg::SecAggDetails::NAME)
}

/// A round's test metrics on the job's evaluation set, if it has one.
fn evaluation_of(
    r: &privet_wire::proto::RoundInfo,
) -> Option<privet_coordinator::evaluation::EvaluationDetails> {
    detail(r, privet_coordinator::evaluation::EvaluationDetails::NAME)
}

/// What a round reports of its privacy spending (rounds stored before December 2026 carry
/// only these fields).
#[derive(serde::Deserialize)]
struct PrivacyView {
    mode: String,
    epsilon: f64,
    cumulative_epsilon: f64,
    delta: f64,
    noise_multiplier: f64,
    clip: f64,
}

fn privacy_of(r: &privet_wire::proto::RoundInfo) -> Option<PrivacyView> {
    detail(r, privet_dpfedavg::RoundPrivacy::NAME)
}

/// The round detail `name`, decoded; `None` when absent or unreadable (a newer coordinator may
/// report more than this build understands).
fn detail<T: serde::de::DeserializeOwned>(
    r: &privet_wire::proto::RoundInfo,
    name: &str,
) -> Option<T> {
    r.details
        .get(name)
        .and_then(|text| serde_json::from_str(text).ok())
}

/// `privet cancel`
pub fn cancel(job: &str, reason: &str, remote: &Remote) -> Result<()> {
    let security = remote.security();
    runtime()?.block_on(async move {
        let mut client = AdminClient::connect(&remote.coordinator, &security).await?;
        let info = client.cancel(job, reason).await?;
        outln!("{}  {}  {}", info.job_id, info.state, info.error);
        Ok(())
    })
}

/// `privet audit export`
pub fn export_audit(out: &Path, remote: &Remote) -> Result<()> {
    let security = remote.security();
    runtime()?.block_on(async move {
        let mut client = AdminClient::connect(&remote.coordinator, &security).await?;
        let (entries, heads) = client.export_audit(out).await?;
        outln!(
            "saved the audit log ({entries} entries, {heads} signed heads) to {}",
            out.display()
        );
        Ok(())
    })
}

/// `privet fetch-model`
pub fn fetch_model(job: &str, out: &Path, remote: &Remote) -> Result<()> {
    let security = remote.security();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    }
    runtime()?.block_on(async move {
        let mut client = AdminClient::connect(&remote.coordinator, &security).await?;
        let round = client.fetch_model(job, out).await?;
        outln!(
            "saved the model after round {round} to {} (+ {})",
            out.display(),
            privet_ml::meta_path(out).display()
        );
        Ok(())
    })
}

/// `privet certs`
pub fn certs(cmd: CertsCommand) -> Result<()> {
    match cmd {
        CertsCommand::Init {
            dir,
            federation,
            days,
            force,
        } => {
            let path = privet_identity::init_ca(&dir, &federation, days, force)?;
            outln!(
                "created the federation CA: {} (keep {} secret)",
                path.display(),
                dir.join("ca.key").display()
            );
        }
        CertsCommand::Issue {
            name,
            dir,
            role,
            hosts,
            days,
            force,
        } => {
            let role = role.unwrap_or(if hosts.is_empty() {
                Role::Node
            } else {
                Role::Coordinator
            });
            let files = privet_identity::issue(&dir, &name, role, &hosts, days, force)?;
            outln!(
                "issued {} and {} for {name} as a {role}{}",
                files.cert.display(),
                files.key.display(),
                if hosts.is_empty() {
                    String::new()
                } else {
                    format!(" (server for {})", hosts.join(", "))
                }
            );
        }
    }
    Ok(())
}
