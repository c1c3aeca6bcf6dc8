//! The operators' `Admin` service: submit a job, a job's or every job's status, fetch a job's
//! model. Only operator certificates named in the configuration may call it.

use std::pin::Pin;
use std::sync::Arc;

use privet_data::Encoder;
use privet_identity::Role;
use privet_job::Job;
use privet_ml::Network;
use privet_transport::{Security, f32_to_bytes};
use privet_wire::proto;
use privet_wire::proto::admin_server::Admin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::audit::Admitted;
use crate::driver::spawn_driver;
use crate::error::CoordinatorError;
use crate::hub::{Shared, lock};
use crate::store::{JobRow, Store, StoreError};

type ChunkStream = Pin<Box<dyn Stream<Item = Result<proto::ModelChunk, Status>> + Send>>;
type AuditStream = Pin<Box<dyn Stream<Item = Result<proto::AuditChunk, Status>> + Send>>;

/// The services' state.
#[derive(Clone, Debug)]
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

/// An authenticated peer: the name its certificate gives and the certificate (DER).
pub(crate) struct Peer {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) cert: Arc<[u8]>,
}

/// The authenticated caller (TLS), or `None` in insecure dev mode.
pub(crate) fn caller_cert<T>(shared: &Shared, req: &Request<T>) -> Result<Option<Peer>, Status> {
    Ok(
        privet_transport::caller(&shared.config.security, req)?.map(|c| Peer {
            name: c.identity.name.to_string(),
            role: c.identity.role,
            cert: c.cert,
        }),
    )
}

fn require_admin<T>(shared: &Shared, req: &Request<T>) -> Result<(), Status> {
    match caller_cert(shared, req)? {
        None => Ok(()),
        Some(peer) if peer.role != Role::Operator => {
            tracing::warn!(name = %peer.name, role = %peer.role, "admin call refused: not an operator certificate");
            Err(Status::permission_denied(format!(
                "{} is not an admin: it holds a {} certificate, and the admin service needs an \
                 operator's",
                peer.name, peer.role
            )))
        }
        Some(peer)
            if shared
                .config
                .admins
                .iter()
                .any(|a| *a == peer.name.as_str()) =>
        {
            Ok(())
        }
        Some(peer) => {
            tracing::warn!(name = %peer.name, "admin call refused: not an admin");
            Err(Status::permission_denied(format!(
                "{} is not an admin of this coordinator",
                peer.name
            )))
        }
    }
}

fn job_info(store: &Store, row: &JobRow) -> Result<proto::JobInfo, StoreError> {
    let rounds = store
        .rounds(&row.id)?
        .into_iter()
        .map(|r| proto::RoundInfo {
            round: r.round,
            completed: r.completed,
            participants: r.participants,
            dropped: r.dropped,
            train_loss: r.train_loss,
            seconds: r.seconds,
            failure: r.failure,
            details: r
                .details
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        })
        .collect();
    Ok(proto::JobInfo {
        job_id: row.id.clone(),
        state: row.state.as_str().to_string(),
        completed_rounds: row.completed_rounds,
        total_rounds: row.total_rounds,
        error: row.error.clone(),
        expected_nodes: row.nodes.clone(),
        rounds,
    })
}

/// An error inside the service: logged in full, reported to the caller without internals.
fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!("admin request failed: {e}");
    Status::internal("internal error (see the coordinator's log)")
}

#[tonic::async_trait]
impl Admin for Service {
    async fn submit_job(
        &self,
        request: Request<proto::SubmitJobRequest>,
    ) -> Result<Response<proto::SubmitJobResponse>, Status> {
        require_admin(&self.shared, &request)?;
        let operator = caller_name(&self.shared, &request)?;
        let text = request.into_inner().job_toml;
        let job = Job::from_toml(&text)
            .map_err(|e| Status::invalid_argument(format!("job file: {e}")))?;
        let Some(deployment) = &job.deployment else {
            return Err(Status::invalid_argument(
                "job file: a networked job needs a [deployment] section with `nodes`",
            ));
        };
        if job.secure_aggregation.is_some() && self.shared.config.security == Security::InsecureDev
        {
            return Err(Status::invalid_argument(
                "job file: secure aggregation needs mutual TLS (nodes' signing identities are \
                 their certificates), so it cannot run with --insecure-dev",
            ));
        }
        if let privet_job::DataSource::Synthetic { .. } = job.data {
            return Err(Status::invalid_argument(
                "job file: networked jobs train on the nodes' CSV data, not synthetic data",
            ));
        }
        let admins = &self.shared.config.admins;
        if let Some(other) = deployment.nodes.iter().find(|n| {
            admins.iter().any(|a| a == n.as_str())
                || self.shared.own_name.as_deref() == Some(n.as_str())
        }) {
            return Err(Status::invalid_argument(format!(
                "job file: {other:?} is an operator's or this coordinator's name, not a node's"
            )));
        }
        let allowed = &self.shared.config.nodes;
        if let Some(stranger) = deployment
            .nodes
            .iter()
            .find(|n| !allowed.is_empty() && !allowed.iter().any(|a| a == n.as_str()))
        {
            return Err(Status::invalid_argument(format!(
                "job file: node {stranger:?} is not admitted by this coordinator"
            )));
        }
        if let Some(name) = &deployment.evaluation {
            check_evaluation_set(&self.shared.config, name, &job).await?;
        }
        let id = format!("job-{:016x}", rand::random::<u64>());
        let _admitting = match &self.shared.audit {
            Some(audit) => Some(audit.admitting().await),
            None => None,
        };
        let admitted = match &self.shared.audit {
            Some(audit) => audit
                .admit(&self.shared.store, &id, &job, operator)
                .await
                .map_err(internal)?
                .map_err(Status::failed_precondition)?,
            None if job.agreement.is_some() => {
                return Err(Status::invalid_argument(
                    "job file: [agreement] needs a coordinator with certificates (its audit log \
                     is signed with its key); this one runs with --insecure-dev",
                ));
            }
            None => Admitted::Free,
        };
        let nodes: Vec<String> = deployment.nodes.iter().map(|n| n.to_string()).collect();
        let rounds = job.federation.rounds;
        let (job_id, job_text) = (id.clone(), text.clone());
        let row = match (admitted, &self.shared.audit) {
            (Admitted::Covered { events, spend }, Some(audit)) => audit
                .record(&self.shared.store, events, move |s| {
                    s.insert_job(&job_id, &job_text, &nodes, rounds)?;
                    if let Some(spend) = &spend {
                        s.record_spend(spend)?;
                    }
                    s.job(&job_id)
                })
                .await
                .map_err(internal)?,
            _ => self
                .shared
                .store
                .call(move |s| {
                    s.insert_job(&job_id, &job_text, &nodes, rounds)?;
                    s.job(&job_id)
                })
                .await
                .map_err(internal)?,
        }
        .ok_or_else(|| internal("the job vanished after it was stored"))?;
        spawn_driver(&self.shared, row).map_err(internal)?;
        tracing::info!(job = %id, nodes = deployment.nodes.len(), "job submitted");
        Ok(Response::new(proto::SubmitJobResponse { job_id: id }))
    }

    async fn get_job(
        &self,
        request: Request<proto::GetJobRequest>,
    ) -> Result<Response<proto::JobInfo>, Status> {
        require_admin(&self.shared, &request)?;
        let id = request.into_inner().job_id;
        let wanted = id.clone();
        let info = self
            .shared
            .store
            .call(move |s| match s.job(&wanted)? {
                Some(row) => job_info(s, &row).map(Some),
                None => Ok(None),
            })
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
        Ok(Response::new(info))
    }

    async fn status(
        &self,
        request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        require_admin(&self.shared, &request)?;
        let jobs = self
            .shared
            .store
            .call(|s| {
                let mut jobs = Vec::new();
                for row in s.jobs()? {
                    jobs.push(job_info(s, &row)?);
                }
                Ok(jobs)
            })
            .await
            .map_err(internal)?;
        let mut connected_nodes: Vec<String> =
            lock(&self.shared.hub).nodes.keys().cloned().collect();
        connected_nodes.sort();
        Ok(Response::new(proto::StatusResponse {
            jobs,
            connected_nodes,
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<proto::CancelJobRequest>,
    ) -> Result<Response<proto::JobInfo>, Status> {
        require_admin(&self.shared, &request)?;
        let actor = caller_cert(&self.shared, &request)?
            .map(|p| p.name)
            .unwrap_or_else(|| "insecure-dev operator".into());
        let proto::CancelJobRequest { job_id, reason } = request.into_inner();
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let wanted = job_id.clone();
        let under_agreement = self
            .shared
            .store
            .call(move |s| s.job_agreement(&wanted))
            .await
            .map_err(internal)?
            .is_some();
        let (wanted, who, why) = (job_id.clone(), actor.clone(), reason.clone());
        let cancelled = match &self.shared.audit {
            Some(audit) if under_agreement => {
                let event = privet_audit::Event::cancellation(
                    job_id.parse().map_err(internal)?,
                    actor.parse().ok(),
                    &reason,
                )
                .map_err(internal)?;
                audit
                    .record(&self.shared.store, vec![event], move |s| {
                        Ok(s.cancel(&wanted, &who, &why)?.then_some(()))
                    })
                    .await
                    .map_err(internal)?
                    .is_some()
            }
            _ => self
                .shared
                .store
                .call(move |s| s.cancel(&wanted, &who, &why))
                .await
                .map_err(internal)?,
        };
        let wanted = job_id.clone();
        let info = self
            .shared
            .store
            .call(move |s| match s.job(&wanted)? {
                Some(row) => Ok(Some(job_info(s, &row)?)),
                None => Ok(None),
            })
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no job {job_id:?}")))?;
        if !cancelled {
            return Err(Status::failed_precondition(format!(
                "job {job_id} has already finished ({})",
                info.state
            )));
        }
        if let Some(tx) = lock(&self.shared.hub).jobs.get(&job_id) {
            let _ = tx.send(crate::hub::JobEvent::Cancel);
        }
        tracing::warn!(job = %job_id, by = %actor, "job cancelled: {reason}");
        Ok(Response::new(info))
    }

    type ExportAuditStream = AuditStream;

    async fn export_audit(
        &self,
        request: Request<proto::ExportAuditRequest>,
    ) -> Result<Response<Self::ExportAuditStream>, Status> {
        require_admin(&self.shared, &request)?;
        let Some(audit) = &self.shared.audit else {
            return Err(Status::failed_precondition(
                "this coordinator keeps no audit log (it runs with --insecure-dev)",
            ));
        };
        let text = audit
            .export_log(&self.shared.store)
            .await
            .map_err(internal)?;
        // Pieces end on line boundaries and stay under a frame.
        let limit = self.shared.config.limits.max_frame_bytes.max(1 << 16);
        let mut chunks = Vec::new();
        let mut piece = String::new();
        for line in text.split_inclusive('\n') {
            if !piece.is_empty() && piece.len() + line.len() > limit {
                chunks.push(Ok(proto::AuditChunk {
                    text: std::mem::take(&mut piece),
                }));
            }
            piece.push_str(line);
        }
        if !piece.is_empty() {
            chunks.push(Ok(proto::AuditChunk { text: piece }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    type FetchModelStream = ChunkStream;

    async fn fetch_model(
        &self,
        request: Request<proto::FetchModelRequest>,
    ) -> Result<Response<Self::FetchModelStream>, Status> {
        require_admin(&self.shared, &request)?;
        let party = caller_name(&self.shared, &request)?;
        let id = request.into_inner().job_id;
        let wanted = id.clone();
        let (row, checkpoint, agreement) = self
            .shared
            .store
            .call(move |s| match s.job(&wanted)? {
                Some(row) => Ok(Some((
                    row,
                    s.checkpoint(&wanted)?,
                    s.job_agreement(&wanted)?,
                ))),
                None => Ok(None),
            })
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
        let checkpoint = checkpoint.ok_or_else(|| {
            Status::failed_precondition(format!("job {id} has no completed round yet"))
        })?;
        // A model trained under an agreement leaves only to the parties it names (and, if it
        // says so, only when trained with DP); the export or the refusal is logged.
        if let (Some(audit), Some((_, hash)), Some(party)) = (&self.shared.audit, agreement, party)
        {
            let dp_trained = Job::from_toml(&row.job_toml)
                .map_err(internal)?
                .privacy
                .is_some();
            audit
                .export(&self.shared.store, &id, &hash, party, dp_trained)
                .await
                .map_err(internal)?
                .map_err(Status::permission_denied)?;
        }
        let meta = model_meta(&row).map_err(internal)?;
        let chunk = self.shared.config.limits.max_frame_bytes / 4 * 4;
        let params = f32_to_bytes(&checkpoint.global);
        let num_params = checkpoint.global.len() as u64;
        let mut chunks = vec![Ok(proto::ModelChunk {
            meta_json: meta,
            round: checkpoint.round,
            params: Default::default(),
            num_params,
        })];
        let mut at = 0;
        while at < params.len() {
            let end = (at + chunk.max(4)).min(params.len());
            chunks.push(Ok(proto::ModelChunk {
                params: params.slice(at..end),
                ..Default::default()
            }));
            at = end;
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}

/// The caller's certificate name (`None` in insecure dev mode).
fn caller_name<T>(
    shared: &Shared,
    req: &Request<T>,
) -> Result<Option<privet_identity::Name>, Status> {
    Ok(caller_cert(shared, req)?.and_then(|p| p.name.parse().ok()))
}

/// The model metadata (privet-ml's `model.json`) of a job.
fn model_meta(row: &JobRow) -> Result<String, CoordinatorError> {
    let job = Job::from_toml(&row.job_toml)?;
    let encoder: Encoder =
        serde_json::from_str(row.encoder.as_deref().ok_or_else(|| {
            CoordinatorError::Config("the job has no feature encoding yet".into())
        })?)
        .map_err(|e| StoreError::Corrupt(format!("stored encoder: {e}")))?;
    let (label, categorical) = match &job.data {
        privet_job::DataSource::Csv {
            label, categorical, ..
        } => (label.clone(), categorical.clone()),
        privet_job::DataSource::Synthetic { .. } => (String::new(), Vec::new()),
    };
    let network = Network::new(
        job.model.clone(),
        encoder.output_dim(),
        encoder.num_classes(),
    )?;
    let model = privet_ml::TrainedModel {
        network,
        params: Vec::new(),
        encoder,
        label,
        categorical,
    };
    serde_json::to_string(&model.meta()).map_err(|e| CoordinatorError::Config(e.to_string()))
}

/// A job's evaluation set must be one this coordinator holds, readable with the job's columns
/// (its label among them); the encoding is checked when the nodes have reported theirs.
async fn check_evaluation_set(
    config: &crate::CoordinatorConfig,
    name: &privet_identity::Name,
    job: &Job,
) -> Result<(), Status> {
    let Some(path) = config.evaluation.get(name).cloned() else {
        let held: Vec<String> = config.evaluation.keys().map(|n| n.to_string()).collect();
        return Err(Status::invalid_argument(format!(
            "job file: evaluation set {name:?} is not one this coordinator holds ({})",
            if held.is_empty() {
                "it has none".to_string()
            } else {
                format!("it has {}", held.join(", "))
            }
        )));
    };
    let options = crate::evaluation::csv_options(job)
        .map_err(|e| Status::invalid_argument(format!("job file: {e}")))?;
    tokio::task::spawn_blocking(move || privet_data::load_csv(&path, &options))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| {
            // The reason may quote a cell of the coordinator's data: it stays in its log.
            tracing::warn!("job refused: evaluation set {name}: {e}");
            Status::failed_precondition(format!(
                "evaluation set {name} cannot be read with the job's columns (label, \
                 categorical, drop); the coordinator's log says why"
            ))
        })?;
    Ok(())
}
