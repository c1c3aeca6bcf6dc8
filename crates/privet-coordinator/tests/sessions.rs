//! Hostile and oversized sessions against an in-process coordinator over loopback TLS: each is
//! refused with a clear reason to that peer, and the coordinator keeps serving the others.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use privet_coordinator::{AdminClient, CoordinatorConfig};
use privet_dpfedavg::RoundPrivacy;
use privet_identity::{Name, Role, TlsFiles};
use privet_job::Job;
use privet_node::{NodeBackend, ShiftBackend, run_node};
use privet_node::{NodeConfig, NodeData};
use privet_secagg::SecAggDetails;
use privet_transport::Frame;
use privet_transport::Security;
use privet_transport::{Encoded, Limits, Reassembler};
use privet_wire::PROTOCOL_VERSION;
use privet_wire::proto::coordinator_message::Body as Reply;
use privet_wire::proto::federation_client::FederationClient;
use privet_wire::proto::node_message::Body;
use privet_wire::proto::{self, CoordinatorMessage, NodeMessage};
use tokio::sync::{mpsc, watch};

fn name(s: &str) -> Name {
    s.parse().unwrap()
}

/// A round's secure-aggregation report, from its named details.
fn secagg(r: &proto::RoundInfo) -> Option<SecAggDetails> {
    r.details
        .get(SecAggDetails::NAME)
        .map(|text| serde_json::from_str(text).unwrap())
}

/// A round's privacy report, from its named details.
fn privacy(r: &proto::RoundInfo) -> Option<RoundPrivacy> {
    r.details
        .get(RoundPrivacy::NAME)
        .map(|text| serde_json::from_str(text).unwrap())
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(nodes: &[&str]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        privet_identity::init_ca(&certs, "test", 10, false).unwrap();
        let hosts = vec!["localhost".to_string()];
        privet_identity::issue(
            &certs,
            &name("coordinator"),
            Role::Coordinator,
            &hosts,
            10,
            false,
        )
        .unwrap();
        privet_identity::issue(&certs, &name("admin"), Role::Operator, &[], 10, false).unwrap();
        for n in nodes {
            privet_identity::issue(&certs, &name(n), Role::Node, &[], 10, false).unwrap();
        }
        Setup { dir }
    }

    fn files(&self, name: &str) -> Security {
        Security::Tls(TlsFiles::in_dir(
            &self.dir.path().join("certs"),
            &self::name(name),
        ))
    }

    fn coordinator_config(&self, limits: Limits) -> CoordinatorConfig {
        CoordinatorConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: None,
            state: self.dir.path().join("state.db"),
            security: self.files("coordinator"),
            admins: vec![name("admin")],
            nodes: Vec::new(),
            limits,
            agreements: Vec::new(),
            require_agreement: false,
            evaluation: Default::default(),
        }
    }
}

/// A raw session: frames in, coordinator messages out.
struct Raw {
    tx: mpsc::Sender<Frame>,
    inbound: tonic::Streaming<Frame>,
    reassembler: Reassembler,
    next_id: u64,
}

impl Raw {
    /// Opens a session whose first message is `first` (the server answers once it has one).
    async fn open(url: &str, security: &Security, first: Body) -> Raw {
        let encoded = Encoded::new(&NodeMessage { body: Some(first) }, &Limits::default()).unwrap();
        Self::open_frames(url, security, encoded.frames(0).collect(), 1).await
    }

    async fn open_frames(url: &str, security: &Security, first: Vec<Frame>, next_id: u64) -> Raw {
        let channel = privet_transport::connect(url, security, None)
            .await
            .unwrap();
        let mut client = FederationClient::new(channel);
        let (tx, rx) = mpsc::channel(64);
        for frame in first {
            tx.send(frame).await.unwrap();
        }
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            client.session(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await
        .unwrap()
        .unwrap();
        Raw {
            tx,
            inbound: response.into_inner(),
            reassembler: Reassembler::new(Limits::default()),
            next_id,
        }
    }

    async fn send(&mut self, body: Body) {
        let encoded = Encoded::new(&NodeMessage { body: Some(body) }, &Limits::default()).unwrap();
        for frame in encoded.frames(self.next_id) {
            self.tx.send(frame).await.unwrap();
        }
        self.next_id += 1;
    }

    /// The next message, or `None` when the coordinator closed the stream.
    async fn recv(&mut self) -> Option<Reply> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.inbound.message())
                .await
                .unwrap()
                .ok()??;
            if let Some(msg) = self
                .reassembler
                .push_decode::<CoordinatorMessage>(frame)
                .unwrap()
            {
                return msg.body;
            }
        }
    }

    async fn refusal(&mut self) -> proto::Refused {
        loop {
            match self.recv().await {
                Some(Reply::Refused(r)) => return r,
                Some(_) => continue,
                None => panic!("stream closed without a refusal"),
            }
        }
    }
}

fn hello(node: &str, version: u32) -> Body {
    Body::Hello(proto::Hello {
        protocol_version: version,
        node: node.into(),
        software: "test".into(),
        audit_from: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sessions_are_refused_and_the_coordinator_keeps_serving() {
    let setup = Setup::new(&["alice", "bob"]);
    let limits = Limits {
        max_message_bytes: 1 << 20,
        ..Limits::default()
    };
    let handle = privet_coordinator::start(setup.coordinator_config(limits))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());

    // A wrong protocol version.
    let mut s = Raw::open(
        &url,
        &setup.files("alice"),
        hello("alice", PROTOCOL_VERSION + 1),
    )
    .await;
    let r = s.refusal().await;
    assert!(r.fatal && r.reason.contains("version"), "{r:?}");

    // A name that is not the certificate's.
    let mut s = Raw::open(&url, &setup.files("alice"), hello("bob", PROTOCOL_VERSION)).await;
    let r = s.refusal().await;
    assert!(r.fatal && r.reason.contains("certificate"), "{r:?}");

    // Garbage instead of a protobuf message.
    let garbage = Frame {
        message_id: 0,
        last: true,
        zstd: false,
        data: Bytes::from_static(&[0xff, 0xff, 0xff, 0x01]),
    };
    let mut s = Raw::open_frames(&url, &setup.files("alice"), vec![garbage], 1).await;
    let r = s.refusal().await;
    assert!(r.fatal && r.reason.contains("undecodable"), "{r:?}");

    // A message above the coordinator's limit, streamed in small frames.
    let mut s = Raw::open(
        &url,
        &setup.files("alice"),
        hello("alice", PROTOCOL_VERSION),
    )
    .await;
    assert!(matches!(s.recv().await, Some(Reply::Welcome(_))));
    s.send(Body::Update(proto::Update {
        job_id: "none".into(),
        round: 1,
        delta: Bytes::from(vec![0u8; 2 << 20]),
        num_examples: 1,
        loss: 0.0,
    }))
    .await;
    let r = s.refusal().await;
    assert!(r.fatal && r.reason.contains("limit"), "{r:?}");

    // An update for a job that does not exist: refused, session stays open.
    let mut s = Raw::open(&url, &setup.files("bob"), hello("bob", PROTOCOL_VERSION)).await;
    assert!(matches!(s.recv().await, Some(Reply::Welcome(_))));
    s.send(Body::Update(proto::Update {
        job_id: "job-nope".into(),
        round: 1,
        delta: Bytes::new(),
        num_examples: 1,
        loss: 0.0,
    }))
    .await;
    let r = s.refusal().await;
    assert!(!r.fatal && r.reason.contains("job-nope"), "{r:?}");

    // Through all of that, the admin service answers and bob is still connected.
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let status = admin.status().await.unwrap();
    assert_eq!(status.connected_nodes, vec!["bob".to_string()]);
    // A job file that does not parse is refused by name.
    let err = admin
        .submit("[federation]\nrounds = 1\n")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("job file"), "{err}");
    handle.shutdown().await.unwrap();
}

/// A 200 MB model (51 M parameters) goes out to a node and its update comes back, framed in
/// 1 MiB pieces with zstd on; the downloaded model has every parameter moved by the update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_model_streams_both_ways() {
    let setup = Setup::new(&["big"]);
    let limits = Limits {
        max_message_bytes: 512 << 20,
        max_frame_bytes: 1 << 20,
        zstd_level: Some(1),
    };
    let handle = privet_coordinator::start(setup.coordinator_config(limits))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let (stop_tx, stop_rx) = watch::channel(false);
    let node = NodeConfig {
        name: name("big"),
        coordinator: url.clone(),
        security: setup.files("big"),
        data: NodeData {
            path: "unused.csv".into(),
            label: "y".into(),
            categorical: vec![],
            drop: vec![],
        },
        limits,
        audit: None,
        max_backoff_secs: 0.5,
    };
    let node = tokio::spawn(run_node(
        node,
        Arc::new(ShiftBackend {
            cols: 30,
            step: 0.001,
        }),
        stop_rx,
        None,
    ));
    // 30 inputs -> 7100 -> 7100 -> 1 output: 50.6 M parameters, 202.6 MB of f32.
    let job = "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"mlp\"\nhidden = \
               [7100, 7100]\n[federation]\nrounds = 1\nclients_per_round = 1\nseed = 3\n\
               [deployment]\nnodes = [\"big\"]\nround_timeout_secs = 300\n";
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let id = admin.submit(job).await.unwrap();
    let mut state = String::new();
    for _ in 0..1200 {
        let info = admin.job(&id).await.unwrap();
        state = format!("{} {}", info.state, info.error).trim().to_string();
        if state == "completed" || state.starts_with("failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "completed");
    let out = setup.dir.path().join("big.safetensors");
    admin.fetch_model(&id, &out).await.unwrap();
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size > 200_000_000, "model file of {size} bytes");
    let model = privet_ml::TrainedModel::load(&out).unwrap();
    let job = Job::from_toml(job).unwrap();
    let network = privet_ml::Network::new(job.model.clone(), 30, 2).unwrap();
    let initial = privet_job::initial_params(&job, &network);
    assert_eq!(model.params.len(), initial.len());
    // FedAvg of one client's delta: every parameter moved by 0.001.
    let worst = model
        .params
        .iter()
        .zip(&initial)
        .map(|(a, b)| ((a - b) - 0.001).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{worst}");
    stop_tx.send(true).unwrap();
    node.await.unwrap().unwrap();
    handle.shutdown().await.unwrap();
}

/// The data summary a `ShiftBackend { cols: 5, .. }` node gives, for scripted sessions.
fn shift_summary(job_id: String) -> Body {
    let cols: Vec<String> = (0..5).map(|i| format!("x{i}")).collect();
    Body::DataSummary(proto::DataSummary {
        job_id,
        rows: 10,
        columns: cols.clone(),
        numeric: cols
            .iter()
            .map(|name| proto::NumericColumn {
                name: name.clone(),
                count: 10,
                mean: 0.0,
                m2: 10.0,
            })
            .collect(),
        categorical: vec![],
        labels: vec!["0".into(), "1".into()],
    })
}

fn shift_node(setup: &Setup, url: &str, name: &str) -> NodeConfig {
    NodeConfig {
        name: self::name(name),
        coordinator: url.into(),
        security: setup.files(name),
        data: NodeData {
            path: "unused.csv".into(),
            label: "y".into(),
            categorical: vec![],
            drop: vec![],
        },
        limits: Limits::default(),
        audit: None,
        max_backoff_secs: 0.5,
    }
}

/// In-process nodes run by `run_node`, stopped together.
struct Nodes {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), privet_node::NodeError>>>,
}

impl Nodes {
    /// Starts a node per `(name, backend)`, each with its certificate from `setup`.
    fn start<'a>(
        setup: &Setup,
        url: &str,
        nodes: impl IntoIterator<Item = (&'a str, Arc<dyn NodeBackend>)>,
    ) -> Nodes {
        let (stop, stop_rx) = watch::channel(false);
        let tasks = nodes
            .into_iter()
            .map(|(name, backend)| {
                tokio::spawn(run_node(
                    shift_node(setup, url, name),
                    backend,
                    stop_rx.clone(),
                    None,
                ))
            })
            .collect();
        Nodes { stop, tasks }
    }

    /// Nodes that all add `step` to every parameter.
    fn shift(setup: &Setup, url: &str, names: &[&str], step: f32) -> Nodes {
        let backend: Arc<dyn NodeBackend> = Arc::new(ShiftBackend { cols: 5, step });
        Self::start(
            setup,
            url,
            names.iter().map(|name| (*name, Arc::clone(&backend))),
        )
    }

    /// Stops every node and checks that each ended cleanly.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap().unwrap();
        }
    }
}

async fn wait_done(admin: &mut AdminClient, id: &str) -> proto::JobInfo {
    for _ in 0..600 {
        let info = admin.job(id).await.unwrap();
        if info.state == "completed" || info.state == "failed" {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish");
}

/// A secure-aggregation job between four real nodes over mutual TLS: every round runs SecAgg+
/// (reported with its n, k and t), and the model moves by exactly the mean of the nodes'
/// updates, which the coordinator only ever saw masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_aggregation_between_real_nodes_gives_the_mean_update() {
    let names = ["n0", "n1", "n2", "n3"];
    let setup = Setup::new(&names);
    let handle = privet_coordinator::start(setup.coordinator_config(Limits::default()))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let steps = [0.001f32, 0.002, 0.003, 0.010];
    let nodes = Nodes::start(
        &setup,
        &url,
        names.iter().zip(steps).map(|(name, step)| {
            let backend: Arc<dyn NodeBackend> = Arc::new(ShiftBackend { cols: 5, step });
            (*name, backend)
        }),
    );
    let job = "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
               [federation]\nrounds = 3\nclients_per_round = 4\nmin_clients = 4\nseed = 5\n\
               secure_aggregation = \"secagg+\"\n\
               [secure_aggregation]\nmax_clients = 10\nmax_weight = 100\n\
               [deployment]\nnodes = [\"n0\", \"n1\", \"n2\", \"n3\"]\nround_timeout_secs = 30\n";
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let id = admin.submit(job).await.unwrap();
    let info = wait_done(&mut admin, &id).await;
    assert_eq!(info.state, "completed", "{}", info.error);
    assert_eq!(info.rounds.len(), 3);
    for r in &info.rounds {
        assert!(r.completed, "{r:?}");
        assert_eq!(r.participants.len(), 4);
        let s = secagg(r).expect("secure aggregation reported");
        assert_eq!((s.protocol.as_str(), s.n, s.k), ("secagg+", 4, 3));
        assert!(s.t >= 2 && s.t <= 4, "{s:?}");
    }
    let out = setup.dir.path().join("secagg.safetensors");
    admin.fetch_model(&id, &out).await.unwrap();
    let model = privet_ml::TrainedModel::load(&out).unwrap();
    let job = Job::from_toml(job).unwrap();
    let network = privet_ml::Network::new(job.model.clone(), 5, 2).unwrap();
    let initial = privet_job::initial_params(&job, &network);
    // Equal example counts: FedAvg is the plain mean, three rounds of it.
    let mean: f32 = steps.iter().sum::<f32>() / 4.0;
    let worst = model
        .params
        .iter()
        .zip(&initial)
        .map(|(a, b)| ((a - b) - 3.0 * mean).abs())
        .fold(0.0f32, f32::max);
    // With at most 10 clients of weight 100, 32-bit fixed point resolves ~4e-8 per parameter.
    assert!(worst < 1e-5, "{worst}");
    nodes.stop().await;
    handle.shutdown().await.unwrap();
}

/// In a secure-aggregation job a participant that answers with a plain (unmasked) update is
/// refused: the coordinator never aggregates a readable update, and the round completes with
/// the honest nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_update_in_a_secure_aggregation_job_is_refused() {
    let setup = Setup::new(&["h0", "h1", "h2", "mallory"]);
    let handle = privet_coordinator::start(setup.coordinator_config(Limits::default()))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let nodes = Nodes::shift(&setup, &url, &["h0", "h1", "h2"], 0.002);
    let mut mallory = Raw::open(
        &url,
        &setup.files("mallory"),
        hello("mallory", PROTOCOL_VERSION),
    )
    .await;
    assert!(matches!(mallory.recv().await, Some(Reply::Welcome(_))));
    let job = "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
               [federation]\nrounds = 1\nclients_per_round = 4\nmin_clients = 3\nseed = 5\n\
               secure_aggregation = \"secagg+\"\n\
               [secure_aggregation]\nmax_clients = 10\nmax_weight = 2000\n\
               [deployment]\nnodes = [\"h0\", \"h1\", \"h2\", \"mallory\"]\n\
               round_timeout_secs = 10\n";
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let id = admin.submit(job).await.unwrap();
    // Play mallory: describe data like the shift nodes, then answer Fit with a plain update.
    let mut got_certificates = false;
    loop {
        match mallory.recv().await {
            Some(Reply::DescribeData(d)) => {
                mallory.send(shift_summary(d.job_id)).await;
            }
            Some(Reply::PeerCertificates(p)) => {
                // Every participant's certificate is relayed, mallory's own included.
                assert_eq!(p.peers.len(), 4);
                got_certificates = true;
            }
            Some(Reply::Fit(fit)) => {
                mallory
                    .send(Body::Update(proto::Update {
                        job_id: fit.job_id,
                        round: fit.round,
                        delta: Bytes::from(vec![0u8; fit.params.len()]),
                        num_examples: 1000,
                        loss: 0.0,
                    }))
                    .await;
                break;
            }
            Some(_) => {}
            None => panic!("the coordinator closed mallory's session"),
        }
    }
    assert!(got_certificates, "certificates come before Fit");
    let info = wait_done(&mut admin, &id).await;
    assert_eq!(info.state, "completed", "{}", info.error);
    let round = &info.rounds[0];
    assert!(round.completed);
    assert_eq!(round.participants, vec!["h0", "h1", "h2"]);
    assert!(round.dropped.contains(&"mallory".to_string()), "{round:?}");
    // The zero update with 1000 examples would have pulled the mean to almost nothing.
    let out = setup.dir.path().join("m.safetensors");
    admin.fetch_model(&id, &out).await.unwrap();
    let model = privet_ml::TrainedModel::load(&out).unwrap();
    let job = Job::from_toml(job).unwrap();
    let network = privet_ml::Network::new(job.model.clone(), 5, 2).unwrap();
    let initial = privet_job::initial_params(&job, &network);
    for (a, b) in model.params.iter().zip(&initial) {
        assert!(((a - b) - 0.002).abs() < 1e-5, "{a} {b}");
    }
    nodes.stop().await;
    drop(mallory);
    handle.shutdown().await.unwrap();
}

/// Local training for the scripted participant: adds `0.5` to every parameter.
struct AddHalf;

impl privet_fl::engine::LocalTrainer for AddHalf {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &privet_fl::ClientTrainConfig,
    ) -> Result<(Vec<f32>, privet_fl::TrainMetrics), privet_fl::FlError> {
        let metrics = privet_fl::TrainMetrics {
            loss: 0.1,
            num_examples: 10,
        };
        Ok((params.iter().map(|p| p + 0.5).collect(), metrics))
    }
}

/// A participant that runs SecAgg+ honestly until it has sent its encrypted shares and then
/// disconnects, before sending its masked input: the others' inputs carry pairwise masks with
/// it that the coordinator must rebuild from their shares. The round still completes, and the
/// model moves by exactly the mean of the three survivors' updates (its own `0.5` is nowhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_after_sharing_its_keys_is_unmasked_away() {
    use privet_fl::engine::{ClientProtocol, FromClient, ToClient};
    use privet_identity::{PeerVerifier, load_signing_key};
    use privet_secagg::SharedKeyMap as PeerKeys;

    let setup = Setup::new(&["h0", "h1", "h2", "quitter"]);
    let handle = privet_coordinator::start(setup.coordinator_config(Limits::default()))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let nodes = Nodes::shift(&setup, &url, &["h0", "h1", "h2"], 0.002);
    let Security::Tls(files) = setup.files("quitter") else {
        unreachable!()
    };
    let mut quitter = Raw::open(
        &url,
        &setup.files("quitter"),
        hello("quitter", PROTOCOL_VERSION),
    )
    .await;
    assert!(matches!(quitter.recv().await, Some(Reply::Welcome(_))));
    let job = "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
               [federation]\nrounds = 1\nclients_per_round = 4\nmin_clients = 3\nseed = 5\n\
               secure_aggregation = \"secagg+\"\n\
               [secure_aggregation]\nmax_clients = 10\nmax_weight = 100\n\
               [deployment]\nnodes = [\"h0\", \"h1\", \"h2\", \"quitter\"]\n\
               round_timeout_secs = 10\n";
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let id = admin.submit(job).await.unwrap();
    let parsed = Job::from_toml(job).unwrap();
    let cfg = parsed.secure_aggregation.clone().unwrap();
    let keys = PeerKeys::default();
    let verifier = PeerVerifier::new(&files.ca).unwrap();
    let nodes_of_job = parsed.deployment.as_ref().unwrap().nodes.clone();
    let mut client: Option<privet_secagg::SecAggClient> = None;
    loop {
        let reply = match quitter.recv().await {
            Some(Reply::DescribeData(d)) => {
                quitter.send(shift_summary(d.job_id)).await;
                continue;
            }
            Some(Reply::JoinJob(j)) => {
                client = Some(
                    privet_secagg::SecAggClient::new(
                        privet_fl::ClientId(j.client),
                        load_signing_key(&files).unwrap(),
                        Arc::new(keys.clone()),
                        cfg.clone(),
                    )
                    .unwrap(),
                );
                continue;
            }
            Some(Reply::PeerCertificates(p)) => {
                for peer in p.peers {
                    let name = &nodes_of_job[peer.client as usize];
                    let key = verifier
                        .verify_node(&peer.certificate, name.as_str())
                        .unwrap();
                    keys.insert(privet_fl::ClientId(peer.client), key);
                }
                continue;
            }
            Some(Reply::Fit(fit)) => {
                let params = privet_transport::bytes_to_f32(&fit.params).unwrap();
                let msg = ToClient::Fit {
                    round: fit.round,
                    params: params.into(),
                    config: privet_fl::ClientTrainConfig::default(),
                    extensions: Default::default(),
                };
                client
                    .as_mut()
                    .unwrap()
                    .respond(&msg, &mut AddHalf, &[])
                    .unwrap()
            }
            Some(Reply::Protocol(p)) if p.stage == 1 => {
                let msg = ToClient::Protocol {
                    round: p.round,
                    stage: 1,
                    payload: p.payload.to_vec(),
                };
                client
                    .as_mut()
                    .unwrap()
                    .respond(&msg, &mut AddHalf, &[])
                    .unwrap()
            }
            // Stage 2 asks for the masked input: leave instead.
            Some(Reply::Protocol(p)) if p.stage == 2 => break,
            Some(_) => continue,
            None => panic!("the coordinator closed the session"),
        };
        let FromClient::Protocol {
            round,
            stage,
            payload,
        } = reply
        else {
            panic!("SecAgg+ answers with protocol messages");
        };
        quitter
            .send(Body::Protocol(proto::ProtocolMessage {
                job_id: id.clone(),
                round,
                stage: u32::from(stage),
                payload: payload.into(),
            }))
            .await;
    }
    drop(quitter);
    let info = wait_done(&mut admin, &id).await;
    assert_eq!(info.state, "completed", "{}", info.error);
    let round = &info.rounds[0];
    assert!(round.completed, "{round:?}");
    assert_eq!(round.participants, vec!["h0", "h1", "h2"]);
    assert!(round.dropped.contains(&"quitter".to_string()), "{round:?}");
    // Four advertised keys: the masking graph had the quitter in it.
    assert_eq!(secagg(round).unwrap().n, 4);
    let out = setup.dir.path().join("q.safetensors");
    admin.fetch_model(&id, &out).await.unwrap();
    let model = privet_ml::TrainedModel::load(&out).unwrap();
    let network = privet_ml::Network::new(parsed.model.clone(), 5, 2).unwrap();
    let initial = privet_job::initial_params(&parsed, &network);
    for (a, b) in model.params.iter().zip(&initial) {
        assert!(((a - b) - 0.002).abs() < 1e-5, "{a} {b}");
    }
    nodes.stop().await;
    handle.shutdown().await.unwrap();
}

/// A node without data whose local training takes a while (so a coordinator can be stopped in
/// the middle of a job) and adds `step` to every parameter.
#[derive(Debug, Clone, Copy)]
struct SlowShift {
    step: f32,
    millis: u64,
}

#[derive(Debug)]
struct SlowTrainer(SlowShift);

impl privet_fl::engine::LocalTrainer for SlowTrainer {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &privet_fl::ClientTrainConfig,
    ) -> Result<(Vec<f32>, privet_fl::TrainMetrics), privet_fl::FlError> {
        std::thread::sleep(Duration::from_millis(self.0.millis));
        let metrics = privet_fl::TrainMetrics {
            loss: 0.5,
            num_examples: 10,
        };
        Ok((params.iter().map(|p| p + self.0.step).collect(), metrics))
    }
}

impl NodeBackend for SlowShift {
    fn table(&self) -> Result<privet_data::Table, privet_node::NodeError> {
        ShiftBackend {
            cols: 5,
            step: self.step,
        }
        .table()
    }

    fn join(
        &self,
        _: &Job,
        _: &privet_data::Encoder,
        _: u32,
    ) -> Result<Box<dyn privet_node::JobTrainer>, privet_node::NodeError> {
        Ok(Box::new(SlowTrainer(*self)))
    }
}

fn dp_job(rounds: u32, budget: Option<f64>) -> String {
    let budget = budget
        .map(|e| format!("budget = {{ epsilon = {e}, delta = 1e-5 }}\n"))
        .unwrap_or_default();
    format!(
        "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
         [federation]\nrounds = {rounds}\nclients_per_round = 4\nmin_clients = 4\nseed = 9\n\
         [privacy]\nmode = \"central\"\nnoise_multiplier = 1.0\ndelta = 1e-5\n\
         adaptive_clip = {{ initial = 0.01, target_quantile = 0.5, learning_rate = 0.2, \
         count_noise = 2.0 }}\n{budget}[privacy.features]\nepsilon = 1.0\nbounds = {{ \"*\" = [-2.0, 2.0] }}\nlabels = [\"0\", \"1\"]\n\
         [deployment]\nnodes = [\"d0\", \"d1\", \"d2\", \"d3\"]\nround_timeout_secs = 30\n"
    )
}

fn cumulative_epsilons(info: &proto::JobInfo) -> Vec<f64> {
    info.rounds
        .iter()
        .filter(|r| r.completed)
        .map(|r| privacy(r).expect("privacy reported").cumulative_epsilon)
        .collect()
}

/// DP-FedAvg between real nodes (central noise, adaptive clipping whose bound travels with each
/// training request): every round reports what it spent, a budget stops the job before a round
/// that would exceed it, and the spent budget survives a coordinator restart in the middle of
/// the job: the resumed job accounts exactly as one that ran straight through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privacy_budget_stops_the_job_and_survives_a_coordinator_restart() {
    let names = ["d0", "d1", "d2", "d3"];
    let setup = Setup::new(&names);
    let handle = privet_coordinator::start(setup.coordinator_config(Limits::default()))
        .await
        .unwrap();
    let port = handle.addr.port();
    let url = format!("https://localhost:{port}");
    let slow: Arc<dyn NodeBackend> = Arc::new(SlowShift {
        step: 0.002,
        millis: 300,
    });
    let nodes = Nodes::start(&setup, &url, names.map(|name| (name, Arc::clone(&slow))));
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    // Straight through, no budget: what each round costs.
    let a = admin.submit(&dp_job(5, None)).await.unwrap();
    let info = wait_done(&mut admin, &a).await;
    assert_eq!(info.state, "completed", "{}", info.error);
    let straight = cumulative_epsilons(&info);
    assert_eq!(straight.len(), 5);
    assert!(straight.windows(2).all(|w| w[1] > w[0]), "{straight:?}");
    for r in &info.rounds {
        let p = privacy(r).unwrap();
        assert_eq!(p.mode, "central");
        assert_eq!(p.delta, 1e-5);
        assert!(p.clip > 0.0);
    }
    // The adaptive bound moved from round to round (nodes would refuse to train without it).
    let clips: Vec<f64> = info
        .rounds
        .iter()
        .map(|r| privacy(r).unwrap().clip)
        .collect();
    assert_eq!(clips[0], 0.01);
    assert!(clips.windows(2).all(|w| w[0] != w[1]), "{clips:?}");

    // A budget between the cost of 3 and 4 rounds, and a coordinator stopped after round 1.
    let budget = (straight[2] + straight[3]) / 2.0;
    let b = admin.submit(&dp_job(5, Some(budget))).await.unwrap();
    let mut before = 0;
    for _ in 0..600 {
        before = admin.job(&b).await.unwrap().completed_rounds;
        if before >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(admin);
    handle.shutdown().await.unwrap();
    // Stopped mid-job: the budget allows 3 rounds.
    assert!((1..3).contains(&before), "{before}");
    let mut config = setup.coordinator_config(Limits::default());
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let handle = privet_coordinator::start(config).await.unwrap();
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let info = wait_done_or_stopped(&mut admin, &b).await;
    assert_eq!(info.state, "stopped", "{info:?}");
    assert!(info.error.contains("budget"), "{}", info.error);
    let resumed = cumulative_epsilons(&info);
    assert_eq!(resumed.len(), 3, "{info:?}");
    // Equal up to the grid's tiny sensitivity inflation, which follows the (noisy) adaptive
    // bound.
    for (x, y) in resumed.iter().zip(&straight) {
        assert!((x - y).abs() < 1e-6 * y, "{resumed:?} vs {straight:?}");
    }
    assert!(resumed[2] <= budget);
    // Rounds were neither lost nor repeated across the restart.
    let numbers: Vec<u32> = info.rounds.iter().map(|r| r.round).collect();
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{numbers:?}");
    nodes.stop().await;
    handle.shutdown().await.unwrap();
}

async fn wait_done_or_stopped(admin: &mut AdminClient, id: &str) -> proto::JobInfo {
    for _ in 0..900 {
        let info = admin.job(id).await.unwrap();
        if matches!(info.state.as_str(), "completed" | "failed" | "stopped") {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish");
}

/// Distributed DP between real nodes: each node adds its share of discrete Gaussian noise before
/// SecAgg+ masks its update, so the coordinator only ever unmasks a noised sum; every round
/// reports both the protocol and what it spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_noise_under_secure_aggregation_between_real_nodes() {
    let names = ["d0", "d1", "d2", "d3"];
    let setup = Setup::new(&names);
    let handle = privet_coordinator::start(setup.coordinator_config(Limits::default()))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let nodes = Nodes::shift(&setup, &url, &names, 0.002);
    let job = "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
               [federation]\nrounds = 2\nclients_per_round = 4\nmin_clients = 4\nseed = 9\n\
               secure_aggregation = \"secagg+\"\n\
               [privacy]\nmode = \"distributed\"\nclip = 1.0\nnoise_multiplier = 1.0\n\
               delta = 1e-5\n\
               [privacy.features]\nepsilon = 1.0\nbounds = { \"*\" = [-2.0, 2.0] }\n\
               labels = [\"0\", \"1\"]\n\
               [deployment]\nnodes = [\"d0\", \"d1\", \"d2\", \"d3\"]\nround_timeout_secs = 30\n";
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let id = admin.submit(job).await.unwrap();
    let info = wait_done(&mut admin, &id).await;
    assert_eq!(info.state, "completed", "{}", info.error);
    assert_eq!(info.rounds.len(), 2);
    for r in &info.rounds {
        assert!(r.completed, "{r:?}");
        assert_eq!(secagg(r).unwrap().n, 4);
        let p = privacy(r).expect("privacy reported");
        assert_eq!(p.mode, "distributed");
        assert!(
            p.epsilon > 0.0 && p.cumulative_epsilon >= p.epsilon,
            "{p:?}"
        );
    }
    // The noise (standard deviation z * C / k = 0.25 per coordinate of the mean) swamps the
    // 0.002 steps: the model is not the noiseless one.
    let out = setup.dir.path().join("dist.safetensors");
    admin.fetch_model(&id, &out).await.unwrap();
    let model = privet_ml::TrainedModel::load(&out).unwrap();
    let parsed = Job::from_toml(job).unwrap();
    let network = privet_ml::Network::new(parsed.model.clone(), 5, 2).unwrap();
    let initial = privet_job::initial_params(&parsed, &network);
    let worst = model
        .params
        .iter()
        .zip(&initial)
        .map(|(a, b)| ((a - b) - 0.004).abs())
        .fold(0.0f32, f32::max);
    assert!(worst > 0.01, "{worst}");
    nodes.stop().await;
    handle.shutdown().await.unwrap();
}

/// A job whose nodes never come fails when its start timeout passes, naming them, instead of
/// waiting (and being resumed) forever; a job that is running can be cancelled by an operator,
/// which the store records; a job listing an operator as a node is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_cannot_run_fail_or_are_cancelled() {
    let names = ["c0", "c1"];
    let setup = Setup::new(&names);
    let handle = privet_coordinator::start(setup.coordinator_config(Limits::default()))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let job = |nodes: &str, start: f64| {
        format!(
            "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
             [federation]\nrounds = 100000\nclients_per_round = 1\nmin_clients = 1\nseed = 5\n\
             [deployment]\nnodes = [{nodes}]\nround_timeout_secs = 30\n\
             start_timeout_secs = {start}\n"
        )
    };
    // Nobody comes.
    let ghost = admin.submit(&job("\"ghost\"", 1.0)).await.unwrap();
    let info = wait_done(&mut admin, &ghost).await;
    assert_eq!(info.state, "failed");
    assert!(
        info.error.contains("start_timeout_secs") && info.error.contains("ghost"),
        "{}",
        info.error
    );
    // An operator's name is not a node's.
    let err = admin.submit(&job("\"admin\"", 1.0)).await.unwrap_err();
    assert!(err.to_string().contains("operator"), "{err}");
    // A running job is cancelled.
    let nodes = Nodes::shift(&setup, &url, &names, 0.001);
    let running = admin.submit(&job("\"c0\", \"c1\"", 30.0)).await.unwrap();
    for _ in 0..200 {
        if admin.job(&running).await.unwrap().completed_rounds >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let info = admin.cancel(&running, "wrong data set").await.unwrap();
    assert_eq!(info.state, "cancelled");
    assert!(
        info.error.contains("admin") && info.error.contains("wrong data set"),
        "{}",
        info.error
    );
    // Cancelling twice, or a finished job, is refused; the job stays cancelled.
    let err = admin.cancel(&running, "again").await.unwrap_err();
    assert!(err.to_string().contains("already finished"), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(admin.job(&running).await.unwrap().state, "cancelled");
    nodes.stop().await;
    handle.shutdown().await.unwrap();
}

/// A three-node SecAgg+ job survives losing a node for a few seconds: rounds are not started
/// without three nodes (SecAgg+'s minimum), failed rounds back off, and the job completes once
/// the node is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_secure_aggregation_job_waits_for_a_lost_node() {
    let names = ["s0", "s1", "s2"];
    let setup = Setup::new(&names);
    let handle = privet_coordinator::start(setup.coordinator_config(Limits::default()))
        .await
        .unwrap();
    let url = format!("https://localhost:{}", handle.addr.port());
    let steady = Nodes::shift(&setup, &url, &names[..2], 0.001);
    let mut flaky = Nodes::shift(&setup, &url, &names[2..], 0.001);
    let job = "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
               [federation]\nrounds = 4\nclients_per_round = 3\nmin_clients = 2\nseed = 5\n\
               secure_aggregation = \"secagg+\"\n\
               [secure_aggregation]\nmax_clients = 10\nmax_weight = 100\n\
               [deployment]\nnodes = [\"s0\", \"s1\", \"s2\"]\nround_timeout_secs = 5\n\
               start_timeout_secs = 20\nmax_retries = 2\n";
    let mut admin = AdminClient::connect(&url, &setup.files("admin"))
        .await
        .unwrap();
    let id = admin.submit(job).await.unwrap();
    for _ in 0..400 {
        if admin.job(&id).await.unwrap().completed_rounds >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // s2 goes away for four seconds (longer than a node's reconnection backoff).
    flaky.stop().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    flaky = Nodes::shift(&setup, &url, &names[2..], 0.001);
    let info = wait_done(&mut admin, &id).await;
    assert_eq!(info.state, "completed", "{}", info.error);
    assert_eq!(info.completed_rounds, 4);
    flaky.stop().await;
    steady.stop().await;
    handle.shutdown().await.unwrap();
}
