//! `privet he keygen | infer | serve`: encrypted inference (CKKS) for privet models.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use privet_he::inference::{CircuitSpec, Packing};
use privet_he::{CkksParameters, ParameterSetName};
use privet_he_service::{
    Channel, HeServiceError, InferOutcome, KeyDir, KeySource, LocalChannel, RemoteChannel,
    ServerConfig, ServerCore, ServerSettings, fetch_model, infer, plain_model,
};
use privet_identity::TlsFiles;
use privet_ml::TrainedModel;
use privet_transport::{Limits, Security};

/// Encrypted inference: the model owner never sees the features, the client keeps the key.
#[derive(Debug, Subcommand)]
pub enum HeCommand {
    /// Generate a CKKS secret key (DIR/secret.key, owner-only) and the evaluation keys a server
    /// needs (DIR/evaluation.keys) for a model, a server's model, or a named parameter set.
    Keygen {
        /// Directory for the keys.
        #[arg(long)]
        out: PathBuf,
        /// A local model (model.safetensors) to make the keys for.
        #[arg(long, conflicts_with = "server")]
        model: Option<PathBuf>,
        /// Ask a server for its model's parameters (https://host:port).
        #[arg(long)]
        server: Option<String>,
        /// Packing for a local model.
        #[arg(long, value_enum, default_value_t = PackingArg::Single)]
        packing: PackingArg,
        /// Without --model or --server: a named parameter set (keys with relinearization only).
        #[arg(long, default_value = "n13-d2")]
        params: String,
        /// Replace existing keys.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Run encrypted inference on every row of a CSV: with a model path, client and server run
    /// in this process over the same messages; with https://host:port, against `privet he
    /// serve`. Prints per-sample latency, bytes sent and received, and agreement with the
    /// plaintext model.
    Infer {
        /// model.safetensors (model.json beside it), or https://host:port.
        model_or_url: String,
        /// CSV with the model's feature columns (the label column is optional).
        data: PathBuf,
        /// Write predictions here (CSV: row, prediction, one probability per class).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keys from `privet he keygen` (otherwise fresh keys, kept in memory).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Print the summary as JSON on standard output.
        #[arg(long)]
        json: bool,
        /// Packing (with a model path; a server chooses its own).
        #[arg(long, value_enum, default_value_t = PackingArg::Single)]
        packing: PackingArg,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Serve a model for encrypted inference (gRPC over TLS 1.3 with the federation's
    /// certificates) until SIGTERM or Ctrl-C. The server never receives a secret key.
    Serve {
        /// model.safetensors (model.json beside it).
        model: PathBuf,
        /// he-server.toml ([server] listen, packing, max_samples_per_session; [tls]; [limits]).
        #[arg(long)]
        config: PathBuf,
        /// Plain text without certificates: development only.
        #[arg(long)]
        insecure_dev: bool,
    },
}

/// Packing of samples into ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PackingArg {
    /// One sample per ciphertext (latency).
    Single,
    /// One ciphertext per feature, thousands of samples each (throughput).
    Batch,
}

impl From<PackingArg> for Packing {
    fn from(p: PackingArg) -> Self {
        match p {
            PackingArg::Single => Packing::Single,
            PackingArg::Batch => Packing::Batch,
        }
    }
}

/// The client's TLS files for a remote server.
#[derive(Debug, Args)]
pub struct ClientTls {
    /// The federation CA certificate (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// This client's certificate (PEM), issued by the CA.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Plain text without certificates: development only.
    #[arg(long)]
    insecure_dev: bool,
}

impl ClientTls {
    fn security(&self) -> Result<Security> {
        if self.insecure_dev {
            return Ok(Security::InsecureDev);
        }
        match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Ok(Security::Tls(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            })),
            _ => Err(HeServiceError::Config(
                "a server needs --ca, --cert and --key (or --insecure-dev for plain text)".into(),
            )
            .into()),
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// Runs a `privet he` command.
pub fn run(cmd: HeCommand) -> Result<()> {
    match cmd {
        HeCommand::Keygen {
            out,
            model,
            server,
            packing,
            params,
            force,
            tls,
        } => keygen(
            &out,
            model.as_deref(),
            server.as_deref(),
            packing.into(),
            &params,
            force,
            &tls,
        ),
        HeCommand::Infer {
            model_or_url,
            data,
            out,
            keys,
            json,
            packing,
            tls,
        } => infer_cmd(
            &model_or_url,
            &data,
            out.as_deref(),
            keys.as_deref(),
            json,
            packing.into(),
            &tls,
        ),
        HeCommand::Serve {
            model,
            config,
            insecure_dev,
        } => serve(&model, &config, insecure_dev),
    }
}

fn local_core(model: &TrainedModel, packing: Packing) -> Result<Arc<ServerCore>> {
    let settings = ServerSettings {
        packing,
        max_samples_per_session: 0,
        max_message_bytes: Limits::default().max_message_bytes,
    };
    Ok(Arc::new(ServerCore::new(model, settings)?))
}

fn keygen(
    out: &Path,
    model: Option<&Path>,
    server: Option<&str>,
    packing: Packing,
    params: &str,
    force: bool,
    tls: &ClientTls,
) -> Result<()> {
    let dir = KeyDir::new(out);
    if dir.secret_path().exists() && !force {
        bail!(HeServiceError::Keys(format!(
            "{} exists; use --force to replace it",
            dir.secret_path().display()
        )));
    }
    let spec = match (model, server) {
        (Some(m), _) => {
            let model = TrainedModel::load(m)?;
            CircuitSpec::for_model(&plain_model(&model)?, packing).map_err(HeServiceError::from)?
        }
        (None, Some(url)) => {
            let mut ch = RemoteChannel::connect(url, &tls.security()?, Limits::default())?;
            fetch_model(&mut ch)?.0
        }
        (None, None) => {
            let name: ParameterSetName = params.parse().map_err(HeServiceError::from)?;
            CircuitSpec {
                params: CkksParameters::named(name),
                packing,
                input_dim: 0,
                output_dim: 0,
                input_level: 0,
                rotations: Vec::new(),
                relinearization: true,
            }
        }
    };
    let (_, keys) = dir.generate(&spec)?;
    let p = &spec.params;
    eprintln!(
        "wrote {} (secret: keep it) and {} ({} Galois keys{}); N = {}, log2 QP = {}, scale 2^{}",
        dir.secret_path().display(),
        dir.evaluation_path().display(),
        keys.galois_elements().len(),
        if keys.relin().is_some() {
            " + relinearization"
        } else {
            ""
        },
        p.degree(),
        p.log_qp(),
        p.scale_bits()
    );
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() { 0.0 } else { s[s.len() / 2] }
}

fn infer_cmd(
    target: &str,
    data: &Path,
    out: Option<&Path>,
    keys: Option<&Path>,
    json: bool,
    packing: Packing,
    tls: &ClientTls,
) -> Result<()> {
    let keys = match keys {
        Some(d) => KeySource::Dir(KeyDir::new(d)),
        None => KeySource::Fresh,
    };
    let (outcome, plaintext, truth) = if is_url(target) {
        let mut ch = RemoteChannel::connect(target, &tls.security()?, Limits::default())?;
        let (_, meta, _) = fetch_model(&mut ch)?;
        let (x, truth) = meta.encode_csv(data)?;
        let o = infer(&mut ch as &mut dyn Channel, &x, &keys)?;
        (o, None, truth)
    } else {
        let model = TrainedModel::load(Path::new(target))?;
        let (x, truth) = model.meta().encode_csv(data)?;
        let core = local_core(&model, packing)?;
        let mut ch = LocalChannel::new(core.session());
        let o = infer(&mut ch as &mut dyn Channel, &x, &keys)?;
        let probs = model.predict_matrix(&x)?;
        let k = model.network.num_classes();
        let plain: Vec<u32> = probs
            .chunks_exact(k)
            .map(|r| {
                let mut best = 0;
                for (c, &p) in r.iter().enumerate() {
                    if p > r[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect();
        (o, Some(plain), truth)
    };
    report(&outcome, plaintext.as_deref(), truth.as_deref(), out, json)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn report(
    o: &InferOutcome,
    plain: Option<&[u32]>,
    truth: Option<&[u32]>,
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    let names = &o.meta.encoder.label_names;
    if let Some(path) = out {
        let mut text = String::from("row,prediction");
        for n in names {
            text.push_str(&format!(",p_{}", csv_field(n)));
        }
        text.push('\n');
        for (i, (c, p)) in o.classes.iter().zip(&o.probabilities).enumerate() {
            let name = names.get(*c as usize).map(String::as_str).unwrap_or("?");
            text.push_str(&format!("{i},{}", csv_field(name)));
            for q in p {
                text.push_str(&format!(",{q:.6}"));
            }
            text.push('\n');
        }
        privet_files::write_atomic(path, text.as_bytes(), privet_files::Mode::Public)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let n = o.classes.len();
    let agree = plain.map(|p| p.iter().zip(&o.classes).filter(|(a, b)| a == b).count());
    let correct = truth.map(|t| t.iter().zip(&o.classes).filter(|(a, b)| a == b).count());
    let per = |b: u64| b as f64 / n.max(1) as f64;
    let p = &o.spec.params;
    if json {
        let v = serde_json::json!({
            "samples": n,
            "packing": o.spec.packing.as_str(),
            "params": { "n": p.degree(), "log_qp": p.log_qp(), "q_bits": p.q_bits(), "p_bits": p.p_bits(), "scale_bits": p.scale_bits() },
            "latency_ms_per_sample": { "median": median(&o.latency_ms), "mean": o.latency_ms.iter().sum::<f64>() / o.latency_ms.len().max(1) as f64 },
            "throughput_samples_per_s": n as f64 / o.seconds.max(1e-9),
            "bytes": { "keys": o.key_bytes, "sent": o.bytes_sent, "received": o.bytes_received, "sent_per_sample": per(o.bytes_sent), "received_per_sample": per(o.bytes_received) },
            "agreement_with_plaintext": agree.map(|a| a as f64 / n.max(1) as f64),
            "accuracy": correct.map(|c| c as f64 / n.max(1) as f64),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        eprintln!(
            "{n} samples, {} packing, N = {}, log2 QP = {}, scale 2^{}",
            o.spec.packing.as_str(),
            p.degree(),
            p.log_qp(),
            p.scale_bits()
        );
        eprintln!(
            "latency per sample: {:.2} ms median ({:.0} samples/s overall)",
            median(&o.latency_ms),
            n as f64 / o.seconds.max(1e-9)
        );
        eprintln!(
            "bytes: keys {} once; sent {} ({:.0} per sample), received {} ({:.0} per sample)",
            o.key_bytes,
            o.bytes_sent,
            per(o.bytes_sent),
            o.bytes_received,
            per(o.bytes_received)
        );
        match agree {
            Some(a) => eprintln!(
                "agreement with the plaintext model: {a} of {n} ({:.2}%)",
                100.0 * a as f64 / n.max(1) as f64
            ),
            None => eprintln!(
                "agreement with the plaintext model: not known here (the weights stay on the server)"
            ),
        }
        if let Some(c) = correct {
            eprintln!(
                "accuracy against the file's labels: {:.4} ({c} of {n})",
                c as f64 / n.max(1) as f64
            );
        }
        if let Some(path) = out {
            eprintln!("wrote {n} predictions to {}", path.display());
        }
    }
    Ok(())
}

fn serve(model: &Path, config: &Path, insecure_dev: bool) -> Result<()> {
    let cfg = ServerConfig::load(config, insecure_dev)?;
    let model = TrainedModel::load(model)?;
    let core = Arc::new(ServerCore::new(&model, cfg.settings)?);
    let spec = core.spec().clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let handle = privet_he_service::start(core, &cfg).await?;
        eprintln!(
            "serving {} for encrypted inference on {} ({} packing, N = {}, {} rotation keys expected)",
            model.network.spec().describe(),
            handle.addr,
            spec.packing.as_str(),
            spec.params.degree(),
            spec.rotations.len()
        );
        wait_for_stop().await;
        eprintln!("stopping");
        handle.stop().await?;
        Ok::<_, anyhow::Error>(())
    })
}

async fn wait_for_stop() {
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
