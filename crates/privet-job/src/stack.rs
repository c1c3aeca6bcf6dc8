//! The one place where a job's protocol stack is assembled, for every runtime.
//!
//! A job's stack is: on the coordinator, the round engine with its aggregation protocol and its
//! aggregate transform ([`JobStack::server_engine`]); on each client, the client side of the
//! protocol and the update transforms ([`JobStack::client`]). The simulation, the networked
//! coordinator and the node all build their stack here, so they cannot disagree about what a job
//! means. Adding a pillar that plugs into rounds (HE aggregation, an enclave aggregator) means
//! one new arm in [`Protocol`] and in the matches of [`JobStack`].

use std::sync::Arc;

use privet_dpfedavg::{DpAggregator, DpClient, PrivacyPlan};
use privet_fl::engine::{
    AggregationProtocol, Checkpoint, ClientProtocol, Coordinator, EngineConfig, PlainAggregation,
    PlainClient,
};
use privet_fl::{ClientId, ClientSampler, ClipL2, UpdateTransform};
use privet_secagg::{KeyDirectory, SecAggClient, SecAggConfig, SecAggProtocol, SigningKey};

use crate::{Job, JobError};

/// How a job's rounds exchange updates.
#[derive(Debug, Clone, PartialEq)]
pub enum Protocol {
    /// Updates in the clear.
    Plain,
    /// SecAgg+: the coordinator sees only the sum. The configuration is the job's
    /// `[secure_aggregation]` as DP-FedAvg adjusts it ([`secagg_config`]).
    SecAggPlus(SecAggConfig),
}

impl Protocol {
    /// The protocol of `job` in a federation of `num_clients` clients.
    pub fn of(job: &Job, num_clients: usize) -> Result<Protocol, JobError> {
        Ok(match secagg_config(job, num_clients)? {
            None => Protocol::Plain,
            Some(cfg) => Protocol::SecAggPlus(cfg),
        })
    }

    /// The fewest clients a round of this protocol can complete with: SecAgg+ needs at least
    /// [`privet_secagg::MIN_CLIENTS`] (a sum of two reveals each to the other).
    pub fn min_participants(&self) -> usize {
        match self {
            Protocol::Plain => 1,
            Protocol::SecAggPlus(_) => privet_secagg::MIN_CLIENTS,
        }
    }

    /// The protocol's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Plain => "plain",
            Protocol::SecAggPlus(_) => "secagg+",
        }
    }
}

/// The job's `[privacy]` resolved for a federation of `num_clients` clients (`None` without
/// one).
pub fn privacy_plan(job: &Job, num_clients: usize) -> Result<Option<PrivacyPlan>, JobError> {
    let Some(config) = &job.privacy else {
        return Ok(None);
    };
    let federation = privet_dpfedavg::Federation {
        sample: job.federation.sample,
        min_clients: job.federation.min_clients,
        rounds: job.federation.rounds,
        num_clients,
    };
    Ok(Some(PrivacyPlan::resolve(
        config,
        &federation,
        job.secure_aggregation.as_ref(),
    )?))
}

/// The SecAgg+ configuration a job runs with: its `[secure_aggregation]` table, adjusted for
/// `[privacy]` (unit weights; distributed mode reserves room for the noise). Coordinator and
/// clients derive the same. `None` without secure aggregation.
pub fn secagg_config(job: &Job, num_clients: usize) -> Result<Option<SecAggConfig>, JobError> {
    let Some(mut cfg) = job.secure_aggregation.clone() else {
        return Ok(None);
    };
    if let Some(plan) = privacy_plan(job, num_clients)? {
        privet_dpfedavg::adjust_secagg(&plan, &mut cfg)?;
    }
    Ok(Some(cfg))
}

/// The engine's configuration for `job`; `max_retries` consecutive failed rounds are retried
/// (a networked job's `[deployment] max_retries`; 0 in a simulation, whose failures are
/// deterministic).
pub fn engine_config(job: &Job, max_retries: u32) -> EngineConfig {
    EngineConfig {
        rounds: job.federation.rounds,
        sampler: ClientSampler {
            size: job.federation.sample,
            min_clients: 1,
            seed: job.federation.seed,
        },
        min_clients: job.federation.min_clients,
        max_retries,
    }
}

/// Where a job's engine starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// A new job from the initial model ([`initial_params`](crate::initial_params)).
    Fresh(Vec<f32>),
    /// A job resumed from its last checkpoint (after a coordinator restart); the aggregate
    /// transform's state (e.g. the privacy spent) is restored from it.
    Resume(Checkpoint),
}

/// A job's stack for a federation of a given size, resolved once (the privacy plan may take a
/// noise calibration): build the coordinator's engine and each client's side from it.
#[derive(Debug, Clone)]
pub struct JobStack<'a> {
    job: &'a Job,
    num_clients: usize,
    protocol: Protocol,
    privacy: Option<PrivacyPlan>,
}

impl<'a> JobStack<'a> {
    /// The stack of `job` in a federation of `num_clients` clients. Refuses a federation or a
    /// sample too small for the job's protocol (SecAgg+ needs 3 clients per round).
    pub fn new(job: &'a Job, num_clients: usize) -> Result<Self, JobError> {
        let protocol = Protocol::of(job, num_clients)?;
        let needed = protocol.min_participants();
        let per_round = engine_config(job, 0).sampler.target_size(num_clients);
        if per_round < needed {
            return Err(JobError::Config(format!(
                "{} needs at least {needed} clients per round, but this job samples {per_round} \
                 of {num_clients}",
                protocol.name()
            )));
        }
        Ok(JobStack {
            job,
            num_clients,
            protocol,
            privacy: privacy_plan(job, num_clients)?,
        })
    }

    /// The fewest clients that must be available to start a round: the job's `min_clients`,
    /// raised to what its protocol needs.
    pub fn min_per_round(&self) -> usize {
        self.job
            .federation
            .min_clients
            .max(self.protocol.min_participants())
    }

    /// Clients in the federation.
    pub fn num_clients(&self) -> usize {
        self.num_clients
    }

    /// How rounds exchange updates.
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    /// The resolved `[privacy]` plan, if any.
    pub fn privacy(&self) -> Option<&PrivacyPlan> {
        self.privacy.as_ref()
    }

    /// The coordinator's side: the round engine with the job's strategy, protocol and
    /// aggregate transform. `keys` are the clients' identity keys for SecAgg+ (unused
    /// otherwise); `max_retries` as in [`engine_config`].
    pub fn server_engine(
        &self,
        start: Start,
        keys: Arc<dyn KeyDirectory>,
        max_retries: u32,
    ) -> Result<Coordinator, JobError> {
        let config = engine_config(self.job, max_retries);
        let strategy = self.job.strategy.build()?;
        let server_protocol: Box<dyn AggregationProtocol> = match &self.protocol {
            Protocol::Plain => Box::new(PlainAggregation::new()),
            Protocol::SecAggPlus(cfg) => Box::new(SecAggProtocol::new(cfg.clone(), keys)?),
        };
        let (mut engine, model_len) = match start {
            Start::Fresh(initial) => {
                let len = initial.len();
                let engine = Coordinator::new(config, strategy, server_protocol, initial)?;
                (engine, len)
            }
            Start::Resume(checkpoint) => {
                let len = checkpoint.global.len();
                let engine = Coordinator::resume(config, strategy, server_protocol, checkpoint)?;
                (engine, len)
            }
        };
        // Attached after a resume, which restores its state (the spent budget, the adaptive
        // bound) from the checkpoint.
        if let Some(plan) = &self.privacy {
            let secagg = match &self.protocol {
                Protocol::SecAggPlus(cfg) => Some(cfg),
                Protocol::Plain => None,
            };
            let dp = DpAggregator::new(plan.clone(), model_len, secagg)?;
            engine = engine.with_aggregate_transform(Box::new(dp))?;
        }
        Ok(engine)
    }

    /// The side `client` runs. Under SecAgg+ it signs with `signer` (its long-term identity)
    /// and trusts the keys in `keys`.
    pub fn client(
        &self,
        client: ClientId,
        signer: Option<SigningKey>,
        keys: Arc<dyn KeyDirectory>,
    ) -> Result<ClientStack, JobError> {
        let protocol: Box<dyn ClientProtocol> = match &self.protocol {
            Protocol::Plain => Box::new(PlainClient { id: client }),
            Protocol::SecAggPlus(cfg) => {
                let signer = signer.ok_or_else(|| {
                    JobError::Config(
                        "secure aggregation needs this client's signing identity (its \
                         certificate's key)"
                            .into(),
                    )
                })?;
                Box::new(SecAggClient::new(client, signer, keys, cfg.clone())?)
            }
        };
        Ok(ClientStack {
            protocol,
            transforms: self.client_transforms(),
        })
    }

    /// What every client does to its delta before it leaves: clipping (`clip_norm`), or with
    /// `[privacy]` the DP-FedAvg client.
    pub fn client_transforms(&self) -> Vec<Box<dyn UpdateTransform>> {
        let mut transforms: Vec<Box<dyn UpdateTransform>> = Vec::new();
        if let Some(max_norm) = self.job.federation.clip_norm {
            transforms.push(Box::new(ClipL2 { max_norm }));
        }
        if let Some(plan) = &self.privacy {
            transforms.push(Box::new(DpClient::new(plan.clone())));
        }
        transforms
    }
}

/// A client's side of a job: its aggregation protocol and the transforms its updates go
/// through before they leave it.
#[derive(Debug)]
pub struct ClientStack {
    /// The client side of the job's protocol.
    pub protocol: Box<dyn ClientProtocol>,
    /// Update transforms, in order.
    pub transforms: Vec<Box<dyn UpdateTransform>>,
}
