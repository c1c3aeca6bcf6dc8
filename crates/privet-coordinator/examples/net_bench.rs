//! Coordinator round overhead over loopback TLS, and bytes on the wire per node per round.
//!
//! `cargo run --release -p privet-net --example net_bench -- [NODES...]` (default 10 100).
//! One process: a coordinator and N nodes, each with its own TLS 1.3 connection on 127.0.0.1.
//! Nodes do no training (they add 0.001 to every parameter), so a round's time is the
//! coordinator's and the transport's overhead: sending the 1,024,001-parameter model to every
//! node, receiving every update, aggregating, and committing the checkpoint to SQLite. Prints
//! JSON: per-round median seconds (rounds 2..R) and wire bytes per node per round against the raw
//! payload (model down + update up, 4 bytes per parameter each).

#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use privet_coordinator::{AdminClient, CoordinatorConfig};
use privet_identity::{Name, Role, TlsFiles};
use privet_node::{NodeConfig, NodeData};
use privet_node::{ShiftBackend, run_node};
use privet_transport::Limits;
use privet_transport::Security;
use privet_transport::WireCounter;

const PARAMS: u64 = 30 * 32_000 + 32_000 + 32_000 + 1;
const ROUNDS: u32 = 6;

async fn run(nodes: usize) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    privet_identity::init_ca(&certs, "bench", 10, false).unwrap();
    let name = |s: &str| -> Name { s.parse().unwrap() };
    privet_identity::issue(
        &certs,
        &name("coordinator"),
        Role::Coordinator,
        &["localhost".into()],
        10,
        false,
    )
    .unwrap();
    privet_identity::issue(&certs, &name("admin"), Role::Operator, &[], 10, false).unwrap();
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
    for n in &names {
        privet_identity::issue(&certs, &name(n), Role::Node, &[], 10, false).unwrap();
    }
    let limits = Limits::default();
    let handle = privet_coordinator::start(CoordinatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        state: dir.path().join("state.db"),
        security: Security::Tls(TlsFiles::in_dir(&certs, &name("coordinator"))),
        admins: vec![name("admin")],
        nodes: Vec::new(),
        limits,
        agreements: Vec::new(),
        require_agreement: false,
        evaluation: Default::default(),
    })
    .await
    .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let counters: Vec<Arc<WireCounter>> = names.iter().map(|_| Arc::default()).collect();
    for (n, counter) in names.iter().zip(&counters) {
        let cfg = NodeConfig {
            name: name(n),
            coordinator: url.clone(),
            security: Security::Tls(TlsFiles::in_dir(&certs, &name(n))),
            data: NodeData {
                path: "unused".into(),
                label: "y".into(),
                categorical: vec![],
                drop: vec![],
            },
            limits,
            audit: None,
            max_backoff_secs: 1.0,
        };
        tokio::spawn(run_node(
            cfg,
            Arc::new(ShiftBackend {
                cols: 30,
                step: 0.001,
            }),
            stop_rx.clone(),
            Some(Arc::clone(counter)),
        ));
    }
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let job = format!(
        "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"mlp\"\nhidden = [32000]\n\
         [federation]\nrounds = {ROUNDS}\nfraction = 1.0\nmin_clients = {nodes}\nseed = 1\n\
         [deployment]\nnodes = [{}]\nround_timeout_secs = 600\n",
        list.join(",")
    );
    let mut admin = AdminClient::connect(
        &url,
        &Security::Tls(TlsFiles::in_dir(&certs, &name("admin"))),
    )
    .await
    .unwrap();
    let id = admin.submit(&job).await.unwrap();
    // Bytes before round 1 (handshakes, Hello, summaries, JoinJob) are not a round's.
    let mut before_round2 = None;
    loop {
        let info = admin.job(&id).await.unwrap();
        if before_round2.is_none() && info.completed_rounds >= 1 {
            before_round2 = Some(
                counters
                    .iter()
                    .map(|c| c.read.load(Ordering::Relaxed) + c.written.load(Ordering::Relaxed))
                    .sum::<u64>(),
            );
        }
        if info.state == "completed" || info.state == "failed" {
            assert_eq!(info.state, "completed", "{}", info.error);
            let mut secs: Vec<f64> = info.rounds[1..].iter().map(|r| r.seconds).collect();
            secs.sort_by(f64::total_cmp);
            let total: u64 = counters
                .iter()
                .map(|c| c.read.load(Ordering::Relaxed) + c.written.load(Ordering::Relaxed))
                .sum();
            let rounds_measured = f64::from(ROUNDS - 1);
            let per_node_round =
                (total - before_round2.unwrap_or(0)) as f64 / nodes as f64 / rounds_measured;
            let payload = (PARAMS * 4 * 2) as f64;
            let _ = stop.send(true);
            handle.shutdown().await.unwrap();
            return serde_json::json!({
                "nodes": nodes,
                "params": PARAMS,
                "round_seconds_median": secs[secs.len() / 2],
                "round_seconds": secs,
                "wire_bytes_per_node_per_round": per_node_round,
                "payload_bytes_per_node_per_round": payload,
                "wire_over_payload": per_node_round / payload,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100]
    } else {
        sizes
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let results: Vec<serde_json::Value> = sizes.iter().map(|&n| rt.block_on(run(n))).collect();
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
}
