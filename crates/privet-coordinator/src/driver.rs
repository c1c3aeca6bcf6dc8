//! One driver task per job: the feature encoding from the nodes' summaries, the job's engine
//! from `privet-job`'s stack (resumed from the last checkpoint), rounds with real deadlines, and
//! every finished round persisted with its checkpoint.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use privet_data::{DataSummary, Encoder};
use privet_fl::ClientId;
use privet_fl::engine::{Action, Checkpoint, Coordinator, Event, RoundOutcome, ToClient};
use privet_identity::certified_key;
use privet_job::{Job, JobStack, Protocol, Start, initial_params};
use privet_ml::Network;
use privet_secagg::SharedKeyMap;
use privet_transport::Encoded;
use privet_wire::proto;
use privet_wire::proto::coordinator_message::Body as Out;
use privet_wire::proto::node_message::Body as In;
use tokio::sync::mpsc;

use crate::error::CoordinatorError;
use crate::evaluation::{EvalSet, EvaluationDetails};
use crate::hub::{JobEvent, Shared, lock, refuse};
use crate::store::{JobRow, JobState, RoundRow, StoreError};

pub(crate) fn spawn_driver(shared: &Arc<Shared>, row: JobRow) -> Result<(), CoordinatorError> {
    let job = Job::from_toml(&row.job_toml)?;
    let deployment = job.deployment.clone().ok_or_else(|| {
        CoordinatorError::Config("the job has no [deployment] section naming its nodes".into())
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
        largest_client: row.largest_client,
        job,
        shared: Arc::clone(shared),
        tx,
        rx,
        joined: HashSet::new(),
        round_started: Instant::now(),
        fit_cache: None,
        secagg_keys: None,
        eval: None,
        cancelled: false,
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
    /// The most rows any node reported (exact summaries only), fixed with the encoding: SecAgg+
    /// derives its `max_weight` from it, and nodes are told in `JoinJob`.
    largest_client: Option<u64>,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<JobEvent>,
    rx: mpsc::UnboundedReceiver<JobEvent>,
    /// Connected nodes that have been sent `JoinJob` in their current session.
    joined: HashSet<String>,
    round_started: Instant,
    fit_cache: Option<(u32, Arc<Encoded>)>,
    /// Secure aggregation: participants' identity keys, from the certificates their TLS
    /// handshakes verified (`None` when the job does not use it).
    secagg_keys: Option<SharedKeyMap>,
    /// The job's evaluation set, loaded once the encoding is known.
    eval: Option<Arc<EvalSet>>,
    /// An operator cancelled the job.
    cancelled: bool,
}

/// The longest wait between two attempts after failed rounds.
const RETRY_CAP: Duration = Duration::from_secs(30);

enum Step {
    Continue,
    Stop,
}

impl Driver {
    async fn run(mut self) {
        let id = self.id.clone();
        let result = self.run_inner().await;
        if self.cancelled {
            tracing::info!(job = %id, "job cancelled");
            self.announce_done("cancelled");
        } else if let Err(e) = result {
            if self.shutting_down() {
                // The store may already be closed: the job resumes at the next start.
                tracing::info!(job = %id, "driver stopped by shutdown: {e}");
            } else {
                tracing::error!(job = %id, "job failed: {e}");
                let reason = e.to_string();
                let job = id.clone();
                let _ = self
                    .shared
                    .store
                    .call(move |s| s.set_state(&job, JobState::Failed, &reason))
                    .await;
                self.announce_done("failed");
            }
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
        self.cancelled || *self.shared.shutdown.borrow()
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
        let ev = tokio::select! {
            ev = self.rx.recv() => ev,
            _ = stop.wait_for(|s| *s) => None,
            _ = sleep => Some(JobEvent::Wake),
        };
        if matches!(ev, Some(JobEvent::Cancel)) {
            // Like a shutdown for this job only: everything returns at once.
            self.cancelled = true;
            return None;
        }
        ev
    }

    fn connected_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| self.shared.connected(n))
            .cloned()
            .collect()
    }

    async fn run_inner(&mut self) -> Result<(), CoordinatorError> {
        if self.encoder_json.is_none() {
            let fitted = self.fit_encoder().await?;
            let Some((encoder, largest)) = fitted else {
                return Ok(());
            };
            let json = serde_json::to_string(&encoder)
                .map_err(|e| CoordinatorError::Config(format!("encoder: {e}")))?;
            let (job, text) = (self.id.clone(), json.clone());
            self.shared
                .store
                .call(move |s| s.set_encoder(&job, &text, largest))
                .await?;
            self.encoder_json = Some(json);
            self.largest_client = largest;
        }
        let encoder: Encoder = serde_json::from_str(self.encoder_json.as_deref().unwrap_or(""))
            .map_err(|e| StoreError::Corrupt(format!("stored encoder: {e}")))?;
        let network = Network::new(
            self.job.model.clone(),
            encoder.output_dim(),
            encoder.num_classes(),
        )?;
        if let Some(name) = &self.deployment.evaluation {
            let path = self
                .shared
                .config
                .evaluation
                .get(name)
                .cloned()
                .ok_or_else(|| {
                    CoordinatorError::Config(format!(
                        "evaluation set {name} is not in this coordinator's [evaluation] section"
                    ))
                })?;
            let (name, job, enc, net) = (
                name.clone(),
                self.job.clone(),
                encoder.clone(),
                network.clone(),
            );
            let set =
                tokio::task::spawn_blocking(move || EvalSet::load(&name, &path, &job, &enc, net))
                    .await
                    .map_err(CoordinatorError::Task)??;
            tracing::info!(job = %self.id, "evaluating each round's model on {set:?}");
            self.eval = Some(Arc::new(set));
        }
        let stack = JobStack::sized(&self.job, self.nodes.len(), self.largest_client)?;
        let keys = SharedKeyMap::default();
        if matches!(stack.protocol(), Protocol::SecAggPlus(_)) {
            self.secagg_keys = Some(keys.clone());
        }
        let job = self.id.clone();
        let (checkpoint, last_started) = self
            .shared
            .store
            .call(move |s| Ok((s.checkpoint(&job)?, s.last_round_started(&job)?)))
            .await?;
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
            return Err(StoreError::Corrupt(format!(
                "checkpoint has {} parameters, the model {}",
                checkpoint.global.len(),
                network.num_params()
            ))
            .into());
        }
        // A round in progress at a crash left no row; skip its number so that nothing sent for
        // it can be taken for the retry.
        checkpoint.round = checkpoint.round.max(last_started);
        let mut engine = stack.server_engine(
            Start::Resume(checkpoint),
            Arc::new(keys),
            self.deployment.max_retries,
        )?;
        let needed = stack.min_per_round();
        for node in self.connected_nodes() {
            self.join(&node);
        }
        // Wait for every expected node before the first round of this run (a resumed job too),
        // so a full federation reproduces the simulation's sampling; go on with `needed` after
        // the start timeout, and fail the job if even those do not come.
        if !self.wait_for_nodes(self.nodes.len(), needed).await? {
            return Ok(());
        }
        while !engine.is_finished() {
            if self.shutting_down() {
                return Ok(());
            }
            // Never start a round that cannot complete: wait (bounded) for enough nodes.
            if !self.wait_for_nodes(needed, needed).await? {
                return Ok(());
            }
            let available: Vec<ClientId> = self
                .nodes
                .iter()
                .filter(|n| self.joined.contains(*n))
                .filter_map(|n| self.index.get(n).map(|&i| ClientId(i)))
                .collect();
            self.round_started = Instant::now();
            let actions = engine.start_round(&available)?;
            if engine.is_finished() {
                // The privacy budget refused the round: nothing was sent.
                break;
            }
            let (job, round) = (self.id.clone(), engine.round());
            self.shared
                .store
                .call(move |s| s.round_started(&job, round))
                .await?;
            self.send_identities(engine.round(), &actions)?;
            tracing::info!(job = %self.id, round = engine.round(), nodes = available.len(), "round started");
            match self.drive_round(&mut engine, actions).await? {
                Step::Continue => {}
                Step::Stop => return Ok(()),
            }
            // After a failed round, back off before the retry (1, 2, 4... up to 30 s), taking
            // in nodes that come back meanwhile.
            let failures = engine.checkpoint().consecutive_failures;
            if failures > 0 && !engine.is_finished() {
                let wait = Duration::from_secs(1u64 << (failures - 1).min(5)).min(RETRY_CAP);
                tracing::info!(job = %self.id, "retrying in {} s", wait.as_secs());
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    let left = until.saturating_duration_since(Instant::now());
                    match self.next_event(Some(left)).await {
                        None => return Ok(()),
                        Some(ev) => self.membership(ev),
                    }
                }
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
        let job = self.id.clone();
        self.shared
            .store
            .call(move |s| s.set_state(&job, state, &error))
            .await?;
        tracing::info!(job = %self.id, state = state.as_str(), "job finished");
        self.announce_done(state.as_str());
        Ok(())
    }

    /// Waits until `wanted` nodes have joined, or until `needed` have once the start timeout
    /// has passed. Fails the job (naming the missing nodes) if not even `needed` come within
    /// the start timeout; `Ok(false)` at shutdown.
    async fn wait_for_nodes(
        &mut self,
        wanted: usize,
        needed: usize,
    ) -> Result<bool, CoordinatorError> {
        let timeout = Duration::from_secs_f64(self.deployment.start_timeout_secs);
        let deadline = Instant::now() + timeout;
        loop {
            let joined = self.joined.len();
            let now = Instant::now();
            if joined >= wanted || (joined >= needed && now >= deadline) {
                return Ok(true);
            }
            if now >= deadline {
                let missing: Vec<&str> = self
                    .nodes
                    .iter()
                    .filter(|n| !self.joined.contains(*n))
                    .map(String::as_str)
                    .collect();
                return Err(CoordinatorError::JobFailed(format!(
                    "start_timeout_secs ({:.0} s) passed with {joined} of the {needed} nodes a \
                     round needs (missing: {})",
                    timeout.as_secs_f64(),
                    missing.join(", ")
                )));
            }
            match self.next_event(Some(deadline - now)).await {
                None => return Ok(false),
                Some(ev) => self.membership(ev),
            }
        }
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
            JobEvent::Deadline { .. } | JobEvent::Wake | JobEvent::Cancel => {}
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
            largest_client: self.largest_client.unwrap_or(0),
        }));
        if let Ok(msg) = msg
            && self.shared.send(node, msg)
        {
            self.joined.insert(node.to_string());
        }
    }

    /// Collects every expected node's data summary and fits the shared feature encoding; with
    /// exact summaries, also returns the most rows any node holds.
    async fn fit_encoder(&mut self) -> Result<Option<(Encoder, Option<u64>)>, CoordinatorError> {
        let label = match &self.job.data {
            privet_job::DataSource::Csv { label, .. } => label.clone(),
            privet_job::DataSource::Synthetic { .. } => {
                return Err(CoordinatorError::Config(
                    "networked jobs need CSV data held by the nodes, not synthetic data".into(),
                ));
            }
        };
        let timeout = Duration::from_secs_f64(self.deployment.start_timeout_secs);
        let start_deadline = Instant::now() + timeout;
        let needed = self.job.federation.min_clients;
        loop {
            // Wait for all nodes, or for min_clients once the start timeout has passed; fail the
            // job if not even those come.
            loop {
                let up = self.connected_nodes().len();
                let now = Instant::now();
                if up == self.nodes.len() || (up >= needed && now >= start_deadline) {
                    break;
                }
                if now >= start_deadline {
                    let missing: Vec<String> = self
                        .nodes
                        .iter()
                        .filter(|n| !self.shared.connected(n))
                        .cloned()
                        .collect();
                    return Err(CoordinatorError::JobFailed(format!(
                        "start_timeout_secs ({:.0} s) passed with {up} of the {needed} nodes the \
                         job needs connected (missing: {})",
                        timeout.as_secs_f64(),
                        missing.join(", ")
                    )));
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
                job_toml: self.job_toml.clone(),
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
                            match privet_wire::summary_from_proto(&s) {
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
                        self.record_node_refusal(&node, &e);
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
                // DP summaries' row counts are noisy (and DP-FedAvg fixes every weight to 1).
                let largest = if self.job.privacy.is_none() {
                    ordered.iter().map(|(_, s)| s.rows).max()
                } else {
                    None
                };
                return Ok(Some((encoder, largest)));
            }
            if Instant::now() >= start_deadline {
                return Err(CoordinatorError::JobFailed(format!(
                    "start_timeout_secs ({:.0} s) passed with {} usable data summaries of the {needed} \
                     the job needs (nodes that could not describe their data are in the log)",
                    timeout.as_secs_f64(),
                    summaries.len()
                )));
            }
            tracing::warn!(job = %self.id, got = summaries.len(), "too few data summaries; asking again");
            // Wait a moment (taking in arrivals) before asking again.
            if self
                .next_event(Some(Duration::from_secs(1)))
                .await
                .is_none()
            {
                return Ok(None);
            }
        }
    }

    async fn drive_round(
        &mut self,
        engine: &mut Coordinator,
        actions: Vec<Action>,
    ) -> Result<Step, CoordinatorError> {
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
                JobEvent::Wake | JobEvent::Cancel => None,
            };
            if let Some(event) = event {
                pending.extend(engine.handle(event)?);
            }
        }
    }

    /// Secure aggregation: enrols the keys of the round's participants from their verified
    /// certificates, and relays those certificates to the participants (ahead of the round's
    /// `Fit`), which check them against their own CA before trusting them.
    fn send_identities(&mut self, round: u32, actions: &[Action]) -> Result<(), CoordinatorError> {
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
    fn deliver(&mut self, to: ClientId, msg: &ToClient) -> Result<bool, CoordinatorError> {
        let node = self.name(to);
        if !self.joined.contains(&node) {
            return Ok(false);
        }
        // The model is encoded once per round and its frames shared by every recipient.
        let encoded = match (msg, &self.fit_cache) {
            (ToClient::Fit { round, .. }, Some((r, enc))) if r == round => Arc::clone(enc),
            _ => {
                let enc = self
                    .shared
                    .encode(privet_wire::to_coordinator_body(&self.id, msg)?)?;
                if let ToClient::Fit { round, .. } = msg {
                    self.fit_cache = Some((*round, Arc::clone(&enc)));
                }
                enc
            }
        };
        Ok(self.shared.send(&node, encoded))
    }

    /// Turns a node's message into an engine event.
    fn node_event(&self, node: &str, body: In) -> Option<Event> {
        let client = ClientId(*self.index.get(node)?);
        if let In::Error(e) = &body {
            tracing::warn!(job = %self.id, %node, round = e.round, "node failed: {}", e.message);
            self.record_node_refusal(node, e);
            return Some(Event::Dropped { client });
        }
        match privet_wire::from_node_body(&body, client)? {
            Ok(msg) => Some(Event::Received { from: client, msg }),
            Err(e) => {
                tracing::warn!(job = %self.id, %node, "{e}");
                Some(Event::Dropped { client })
            }
        }
    }

    async fn finish_round(
        &mut self,
        checkpoint: privet_fl::engine::Checkpoint,
        outcome: RoundOutcome,
    ) -> Result<(), CoordinatorError> {
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
        let mut details = report.details.clone();
        if let (true, Some(set)) = (completed, &self.eval) {
            // The new global model on the coordinator's own evaluation set (off the async
            // threads: a large set takes a while). A failure costs the figure, not the round.
            let (set, params) = (Arc::clone(set), checkpoint.global.clone());
            let evaluated = tokio::task::spawn_blocking(move || set.evaluate(&params))
                .await
                .map_err(CoordinatorError::Task)?;
            match evaluated.and_then(|ev| {
                let value = serde_json::to_value(&ev)
                    .map_err(|e| CoordinatorError::Config(format!("evaluation: {e}")))?;
                Ok(details.insert(EvaluationDetails::NAME, value)?)
            }) {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(job = %self.id, round = report.round, "evaluation failed: {e}")
                }
            }
        }
        let row = RoundRow {
            round: report.round,
            completed,
            participants: names(&report.completed),
            dropped,
            train_loss: f64::from(report.train_loss),
            num_examples: report.num_examples,
            seconds,
            failure,
            details,
        };
        let id = self.id.clone();
        let row_saved = row.clone();
        match (&self.shared.audit, self.job.agreement.is_some()) {
            // A round of a job under an agreement is logged with its participants and
            // protections, in the transaction that records it.
            (Some(audit), true) => {
                let events = if completed {
                    vec![self.round_event(&row, &report.details)?]
                } else {
                    Vec::new()
                };
                audit
                    .record(&self.shared.store, events, move |s| {
                        s.finish_round(&id, &row_saved, &checkpoint).map(Some)
                    })
                    .await?;
            }
            _ => {
                self.shared
                    .store
                    .call(move |s| s.finish_round(&id, &row_saved, &checkpoint))
                    .await?;
            }
        }
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

impl Driver {
    /// The log entry of a completed round: who took part, under which protections, and the
    /// job's cumulative privacy spend after it (PLD where reported, else RDP; delta includes
    /// Poisson sampling's skip term).
    fn round_event(
        &self,
        row: &RoundRow,
        details: &privet_fl::RoundDetails,
    ) -> Result<privet_audit::Event, CoordinatorError> {
        let dp = details.get("privacy").and_then(|p| {
            let eps = p
                .get("cumulative_epsilon_pld")
                .and_then(|v| v.as_f64())
                .or_else(|| p.get("cumulative_epsilon").and_then(|v| v.as_f64()))?;
            let delta = p.get("delta").and_then(|v| v.as_f64())?
                + p.get("skip_delta").and_then(|v| v.as_f64()).unwrap_or(0.0);
            privet_audit::DpBudget::new(eps, delta.min(1.0)).ok()
        });
        Ok(privet_audit::Event::RoundCompleted {
            job: self.id.parse()?,
            round: u64::from(row.round),
            participants: row
                .participants
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            secure_aggregation: self.job.secure_aggregation.is_some(),
            dp,
        })
    }

    /// A node refused the job under its copy of the agreement (or its stricter policy): the
    /// refusal goes into the log.
    fn record_node_refusal(&self, node: &str, e: &proto::NodeError) {
        let (Some(_), true, false) = (
            &self.shared.audit,
            self.job.agreement.is_some(),
            e.refusal.is_empty(),
        ) else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let (job, node, code, message) = (
            self.id.clone(),
            node.to_string(),
            e.refusal.clone(),
            e.message.clone(),
        );
        let round = (e.round > 0).then_some(u64::from(e.round));
        tokio::spawn(async move {
            let Some(audit) = &shared.audit else { return };
            let event = (|| -> Result<privet_audit::Event, CoordinatorError> {
                Ok(privet_audit::Event::NodeRefused {
                    job: job.parse()?,
                    node: node.parse()?,
                    round,
                    refusal: crate::audit::node_refusal(&code, &message)?,
                })
            })();
            let result = match event {
                Ok(event) => audit
                    .record(&shared.store, vec![event], |_| Ok(Some(())))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::error!(%job, "cannot record a node's refusal: {e}");
            }
        });
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
