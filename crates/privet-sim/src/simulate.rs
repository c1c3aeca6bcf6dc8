//! The simulation runtime: drives the sans-IO round engine of `privet-fl` with in-process
//! virtual clients trained in parallel on all cores.
//!
//! Per round the engine samples clients and emits `Fit` messages; this runtime trains the sampled
//! clients with rayon (each client's data is an index view, or generated on demand for synthetic
//! data, so memory is bounded by the clients of one round), feeds their replies back to the
//! engine in client order (so results do not depend on thread timing), evaluates the new global
//! model on the centralized test set and records the round.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use privet_dpfedavg::RoundPrivacy;
use privet_fl::engine::{
    Action, ClientProtocol, Event, FromClient, JobStatus, LocalTrainer, RoundOutcome, RoundReport,
    ToClient,
};
use privet_fl::{ClientId, ClientTrainConfig, FlError, TrainMetrics};
use privet_job::{
    Job, JobStack, LocalRows, Purpose, Start, derive_seed, initial_params, train_locally,
};
use privet_ml::{Network, TrainConfig};
use privet_secagg::SecAggDetails;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use crate::error::SimError;
use crate::prepare::{ClientData, Prepared};

/// One row of the per-round metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    /// Round number, from 1.
    pub round: u32,
    /// Clients sampled.
    pub selected: usize,
    /// Their ids, ascending.
    pub clients: Vec<u32>,
    /// Clients whose update is in the aggregate.
    pub completed: usize,
    /// Clients that dropped out.
    pub dropped: usize,
    /// False when too few clients completed and the global model was left unchanged.
    pub aggregated: bool,
    /// Example-weighted mean of the clients' training losses.
    pub train_loss: f64,
    /// Loss of the global model on the test set.
    pub test_loss: f64,
    /// Accuracy of the global model on the test set.
    pub test_accuracy: f64,
    /// ROC AUC on the test set (binary problems).
    pub test_auc: Option<f64>,
    /// Wall time of the round: local training, aggregation and evaluation.
    pub seconds: f64,
    /// Secure aggregation's graph for the round, `(n, k, t)`: clients in the graph, neighbours
    /// per client, Shamir threshold (`None` without secure aggregation or before keys arrived).
    pub secure_aggregation: Option<(usize, usize, usize)>,
    /// Differential privacy spent by the round (`None` without `[privacy]` or if the round
    /// released no noised sum).
    pub privacy: Option<RoundPrivacy>,
}

impl RoundRecord {
    /// An epoch of centralized training, reported as a round of one client.
    pub(crate) fn centralized_epoch(
        epoch: usize,
        train_loss: f32,
        eval: &privet_ml::EvalMetrics,
        seconds: f64,
    ) -> RoundRecord {
        RoundRecord {
            round: epoch as u32,
            selected: 1,
            clients: vec![0],
            completed: 1,
            dropped: 0,
            aggregated: true,
            train_loss: f64::from(train_loss),
            test_loss: eval.loss,
            test_accuracy: eval.accuracy,
            test_auc: eval.auc,
            seconds,
            secure_aggregation: None,
            privacy: None,
        }
    }
}

/// Hooks for watching a run (progress bars, logs).
pub trait Observer {
    /// Called after each round.
    fn round_done(&mut self, _record: &RoundRecord, _total_rounds: u32) {}
}

/// An observer that does nothing.
#[derive(Debug, Default)]
pub struct Silent;
impl Observer for Silent {}

/// The result of a simulation.
#[derive(Debug)]
pub struct SimOutcome {
    /// Per-round metrics.
    pub rounds: Vec<RoundRecord>,
    /// The final global parameters.
    pub params: Vec<f32>,
    /// The network they belong to.
    pub network: Network,
    /// Seconds spent in rounds (excludes data loading).
    pub train_seconds: f64,
    /// Set when the job stopped before its last round because the privacy budget would have
    /// been exceeded: why (also in the last round's [`RoundRecord::privacy`]).
    pub budget_stop: Option<String>,
}

/// Simulated clients' long-term Ed25519 identities for secure aggregation, derived from the job
/// seed. In a simulation every party lives in one process, so these keys protect nothing; they
/// exist so that the protocol runs exactly as it does between real nodes.
#[derive(Debug, Clone, Copy)]
struct SimIdentities {
    seed: u64,
}

impl SimIdentities {
    fn signing_key(&self, client: ClientId) -> privet_secagg::SigningKey {
        let mut rng =
            ChaCha20Rng::seed_from_u64(derive_seed(self.seed, Purpose::SimIdentity, 0, client.0));
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rng, &mut bytes);
        privet_secagg::SigningKey::from_bytes(&bytes)
    }
}

impl privet_secagg::KeyDirectory for SimIdentities {
    fn verifying_key(&self, client: ClientId) -> Option<privet_secagg::VerifyingKey> {
        Some(self.signing_key(client).verifying_key())
    }
}

/// Consecutive Poisson draws with fewer than `min_clients` clients (each skips its round) after
/// which a simulation fails: raise `fraction` or lower `min_clients`.
pub const MAX_SKIPPED_DRAWS: u32 = 100;

/// A virtual client: its data view and the local training settings.
struct VirtualClient<'a> {
    id: u32,
    network: &'a Network,
    data: &'a ClientData,
    job: &'a Job,
}

impl LocalTrainer for VirtualClient<'_> {
    fn fit(
        &mut self,
        round: u32,
        params: &[f32],
        config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let train = |x, y, rows| {
            let data = LocalRows { x, y, rows };
            train_locally(self.job, self.network, self.id, round, params, config, data)
        };
        match self.data {
            ClientData::Shared { x, y, partition } => {
                train(x, y, partition.client(self.id as usize))
            }
            ClientData::Synthetic(fed) => {
                let local = fed
                    .try_client_data(self.id as usize)
                    .map_err(|e| FlError::Training(e.to_string()))?;
                let rows: Vec<u32> = (0..local.len() as u32).collect();
                train(&local.x, &local.y, &rows)
            }
        }
    }
}

/// Runs the federated simulation described by `job` on prepared data.
pub fn simulate(
    job: &Job,
    data: &Prepared,
    observer: &mut dyn Observer,
) -> Result<SimOutcome, SimError> {
    let network = Network::new(job.model.clone(), data.input_dim, data.num_classes)?;
    let seed = job.federation.seed;
    let initial = initial_params(job, &network);
    let num_clients = data.clients.num_clients();
    let stack = JobStack::sized(job, num_clients, Some(data.clients.largest_client()))?;
    let identities = SimIdentities { seed };
    let directory: Arc<dyn privet_secagg::KeyDirectory> = Arc::new(identities);
    // A failed round ends a simulation, except Poisson draws too small for min_clients, which
    // skip their round: up to MAX_SKIPPED_DRAWS in a row.
    let max_retries = if job.federation.sample.is_poisson() {
        MAX_SKIPPED_DRAWS
    } else {
        0
    };
    let mut engine =
        stack.server_engine(Start::Fresh(initial), Arc::clone(&directory), max_retries)?;
    // Every virtual client runs the same transforms: built once, not per client and round.
    let transforms = stack.client_transforms();
    let available: Vec<ClientId> = (0..num_clients as u32).map(ClientId).collect();
    // Only SecAgg+ signs: a plain round derives no key (an Ed25519 public key is a base-point
    // multiplication, about 10% of a plain round's time at 10 clients).
    let signs = matches!(stack.protocol(), privet_job::Protocol::SecAggPlus(_));
    let new_client = |id: ClientId| -> Result<Box<dyn ClientProtocol>, SimError> {
        let signer = signs.then(|| identities.signing_key(id));
        Ok(stack.client(id, signer, Arc::clone(&directory))?.protocol)
    };
    let started = Instant::now();
    let mut rounds = Vec::new();
    // The client side of the aggregation protocol, per client of the current round: it keeps
    // the client's per-round state between the stages of a multi-stage protocol.
    let mut client_states: HashMap<ClientId, Box<dyn ClientProtocol>> = HashMap::new();
    while !engine.is_finished() {
        let round_start = Instant::now();
        // Client-side protocol state lives for one round (a stage-0 message starts afresh).
        client_states.clear();
        let mut pending = engine.start_round(&available)?;
        if engine.is_finished() {
            // The privacy budget refused the round: nothing was sent.
            break;
        }
        let mut deadline = None;
        let outcome = loop {
            let mut sends: Vec<(ClientId, ToClient)> = Vec::new();
            let mut finished = None;
            for action in pending.drain(..) {
                match action {
                    Action::Send { to, msg } => sends.push((to, msg)),
                    Action::StartDeadline { round, stage } => deadline = Some((round, stage)),
                    Action::RoundFinished(o) => finished = Some(o),
                    // A refused message already excludes its sender; nothing to deliver.
                    _ => {}
                }
            }
            if let Some(o) = finished {
                break o;
            }
            if sends.is_empty() {
                // Every client that could answer has answered: the simulated clock jumps to the
                // deadline, which turns whoever is still silent into a straggler.
                let Some((round, stage)) = deadline.take() else {
                    return Err(SimError::JobFailed(
                        "the round engine stalled with nothing to deliver".into(),
                    ));
                };
                pending = engine.handle(Event::DeadlineExpired { round, stage })?;
                continue;
            }
            // Train the sampled clients in parallel; feed the replies back in client order.
            let mut work: Vec<(ClientId, ToClient, Box<dyn ClientProtocol>)> = sends
                .into_iter()
                .map(|(to, msg)| {
                    let state = match client_states.remove(&to) {
                        Some(state) => state,
                        None => new_client(to)?,
                    };
                    Ok((to, msg, state))
                })
                .collect::<Result<_, SimError>>()?;
            let replies: Vec<(ClientId, Option<Result<FromClient, FlError>>)> = work
                .par_iter_mut()
                .map(|(to, msg, state)| {
                    if job.federation.dropout > 0.0 {
                        let draw = derive_seed(seed, Purpose::Dropout, msg.round(), to.0) as f64
                            / u64::MAX as f64;
                        if draw < job.federation.dropout {
                            return (*to, None);
                        }
                    }
                    let mut client = VirtualClient {
                        id: to.0,
                        network: &network,
                        data: &data.clients,
                        job,
                    };
                    (*to, Some(state.respond(msg, &mut client, &transforms)))
                })
                .collect();
            client_states.extend(work.into_iter().map(|(to, _, state)| (to, state)));
            for (to, reply) in replies {
                let event = match reply {
                    Some(Ok(msg)) => Event::Received { from: to, msg },
                    // A client whose training failed is, to the coordinator, a client that dropped.
                    Some(Err(_)) | None => Event::Dropped { client: to },
                };
                pending.extend(engine.handle(event)?);
            }
        };
        let record = match &outcome {
            RoundOutcome::Completed(report) => {
                round_record(report, true, &network, engine.global(), data, round_start)?
            }
            RoundOutcome::Failed { report, .. } => {
                round_record(report, false, &network, engine.global(), data, round_start)?
            }
        };
        observer.round_done(&record, job.federation.rounds);
        rounds.push(record);
        if let RoundOutcome::Failed {
            reason,
            job_aborted: true,
            ..
        } = outcome
        {
            return Err(SimError::JobFailed(reason));
        }
    }
    let budget_stop = match engine.status() {
        JobStatus::Stopped { reason, .. } => Some(reason.clone()),
        _ => None,
    };
    if let (Some(reason), Some(last)) = (&budget_stop, rounds.last_mut())
        && let Some(p) = last.privacy.as_mut()
    {
        p.budget_stop = Some(reason.clone());
    }
    if !rounds.iter().any(|r| r.aggregated) {
        return Err(SimError::JobFailed(match budget_stop {
            Some(reason) => reason,
            None => "no round gathered enough client updates".into(),
        }));
    }
    Ok(SimOutcome {
        rounds,
        params: engine.global().to_vec(),
        network,
        train_seconds: started.elapsed().as_secs_f64(),
        budget_stop,
    })
}

/// Evaluates the global model after a round and builds its metrics row.
fn round_record(
    report: &RoundReport,
    aggregated: bool,
    network: &Network,
    global: &[f32],
    data: &Prepared,
    round_start: Instant,
) -> Result<RoundRecord, SimError> {
    let eval = network.evaluate(global, &data.test.x, &data.test.y)?;
    let secure_aggregation = report
        .details
        .decode::<SecAggDetails>(SecAggDetails::NAME)?
        .map(|d| (d.n as usize, d.k as usize, d.t as usize));
    let privacy = report.details.decode::<RoundPrivacy>(RoundPrivacy::NAME)?;
    Ok(RoundRecord {
        round: report.round,
        selected: report.selected.len(),
        clients: report.selected.iter().map(|c| c.0).collect(),
        completed: report.completed.len(),
        dropped: report.dropped.len() + report.stragglers.len() + report.rejected.len(),
        aggregated,
        train_loss: f64::from(report.train_loss),
        test_loss: eval.loss,
        test_accuracy: eval.accuracy,
        test_auc: eval.auc,
        seconds: round_start.elapsed().as_secs_f64(),
        secure_aggregation,
        privacy,
    })
}

/// The records of a centralized run: each epoch evaluated on the test set, timed, reported to
/// the observer.
pub(crate) struct EpochLog<'a> {
    network: &'a Network,
    data: &'a Prepared,
    observer: &'a mut dyn Observer,
    total: u32,
    epoch_start: Instant,
    /// One record per epoch so far.
    pub(crate) rounds: Vec<RoundRecord>,
}

impl<'a> EpochLog<'a> {
    pub(crate) fn new(
        network: &'a Network,
        data: &'a Prepared,
        observer: &'a mut dyn Observer,
        total: u32,
    ) -> Self {
        EpochLog {
            network,
            data,
            observer,
            total,
            epoch_start: Instant::now(),
            rounds: Vec::new(),
        }
    }

    /// Records the epoch that just ended with `params`.
    pub(crate) fn record(
        &mut self,
        epoch: usize,
        params: &[f32],
        stats: &privet_ml::TrainStats,
    ) -> Result<(), privet_ml::MlError> {
        let eval = self
            .network
            .evaluate(params, &self.data.test.x, &self.data.test.y)?;
        let record = RoundRecord::centralized_epoch(
            epoch,
            stats.loss,
            &eval,
            self.epoch_start.elapsed().as_secs_f64(),
        );
        self.observer.round_done(&record, self.total);
        self.rounds.push(record);
        self.epoch_start = Instant::now();
        Ok(())
    }
}

/// Trains one model on all training rows: the centralized baseline that federation is measured
/// against, and what pooling the data (which privet exists to avoid) would give. One record per
/// epoch.
pub fn train_centralized(
    job: &Job,
    data: &Prepared,
    observer: &mut dyn Observer,
) -> Result<SimOutcome, SimError> {
    let ClientData::Shared { x, y, .. } = &data.clients else {
        return Err(SimError::Config(
            "centralized training needs CSV data".into(),
        ));
    };
    let network = Network::new(job.model.clone(), data.input_dim, data.num_classes)?;
    let seed = job.federation.seed;
    let initial = network.init(derive_seed(seed, Purpose::Init, 0, 0));
    let rows: Vec<u32> = (0..x.rows as u32).collect();
    let cfg = TrainConfig {
        epochs: job.train.epochs,
        batch_size: job.train.batch_size,
        optimizer: job.train.optimizer.clone(),
        proximal_mu: None,
        seed: derive_seed(seed, Purpose::Shuffle, 0, u32::MAX),
    };
    let started = Instant::now();
    let mut log = EpochLog::new(&network, data, observer, job.train.epochs as u32);
    let (params, _) =
        network.train_with(&initial, x, y, &rows, &cfg, &mut |epoch, params, stats| {
            log.record(epoch, params, stats)
        })?;
    Ok(SimOutcome {
        rounds: log.rounds,
        params,
        network,
        train_seconds: started.elapsed().as_secs_f64(),
        budget_stop: None,
    })
}
