//! The operator's side of the admin service: `privet submit`, `privet status`,
//! `privet fetch-model`.

use std::path::Path;

use privet_ml::{ModelMeta, Network, TrainedModel};
use tonic::transport::Channel;

use privet_transport::{Limits, Security, connect};
use privet_wire::proto::{self, admin_client};

use crate::error::CoordinatorError;

/// A connection to a coordinator's admin service.
#[derive(Debug, Clone)]
pub struct AdminClient {
    inner: admin_client::AdminClient<Channel>,
    limits: Limits,
}

impl AdminClient {
    /// Connects to `url` with `security` (an admin certificate, normally).
    pub async fn connect(url: &str, security: &Security) -> Result<Self, CoordinatorError> {
        let channel = connect(url, security, None).await?;
        let limits = Limits::default();
        let inner = admin_client::AdminClient::new(channel)
            .max_decoding_message_size(limits.grpc_message_limit())
            .max_encoding_message_size(limits.grpc_message_limit());
        Ok(AdminClient { inner, limits })
    }

    /// Cancels a job; returns its state after the cancellation.
    pub async fn cancel(
        &mut self,
        job_id: &str,
        reason: &str,
    ) -> Result<proto::JobInfo, CoordinatorError> {
        Ok(self
            .inner
            .cancel_job(proto::CancelJobRequest {
                job_id: job_id.to_string(),
                reason: reason.to_string(),
            })
            .await?
            .into_inner())
    }

    /// Submits a job file's text; returns the job id.
    pub async fn submit(&mut self, job_toml: &str) -> Result<String, CoordinatorError> {
        let reply = self
            .inner
            .submit_job(proto::SubmitJobRequest {
                job_toml: job_toml.to_string(),
            })
            .await?;
        Ok(reply.into_inner().job_id)
    }

    /// One job's state.
    pub async fn job(&mut self, job_id: &str) -> Result<proto::JobInfo, CoordinatorError> {
        let reply = self
            .inner
            .get_job(proto::GetJobRequest {
                job_id: job_id.to_string(),
            })
            .await?;
        Ok(reply.into_inner())
    }

    /// The coordinator's jobs and connected nodes.
    pub async fn status(&mut self) -> Result<proto::StatusResponse, CoordinatorError> {
        Ok(self
            .inner
            .status(proto::StatusRequest {})
            .await?
            .into_inner())
    }

    /// Downloads a job's latest model and saves it to `weights` (`.safetensors`, with its
    /// `model.json` beside it). Returns the round of the checkpoint.
    pub async fn fetch_model(
        &mut self,
        job_id: &str,
        weights: &Path,
    ) -> Result<u32, CoordinatorError> {
        let mut stream = self
            .inner
            .fetch_model(proto::FetchModelRequest {
                job_id: job_id.to_string(),
            })
            .await?
            .into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| CoordinatorError::Protocol("empty model download".into()))?;
        let meta: ModelMeta = serde_json::from_str(&first.meta_json)
            .map_err(|e| CoordinatorError::Protocol(format!("model metadata: {e}")))?;
        let expected_bytes = (first.num_params as usize)
            .checked_mul(4)
            .filter(|&b| b <= self.limits.max_message_bytes)
            .ok_or_else(|| {
                CoordinatorError::Protocol("model larger than the download limit".into())
            })?;
        let mut bytes = Vec::with_capacity(expected_bytes);
        while let Some(chunk) = stream.message().await? {
            if bytes.len() + chunk.params.len() > expected_bytes {
                return Err(CoordinatorError::Protocol(
                    "more parameters than announced".into(),
                ));
            }
            bytes.extend_from_slice(&chunk.params);
        }
        if bytes.len() != expected_bytes {
            return Err(CoordinatorError::Protocol(format!(
                "download ended after {} of {expected_bytes} bytes",
                bytes.len()
            )));
        }
        let params = privet_transport::bytes_to_f32(&bytes)?;
        let network = Network::new(meta.architecture, meta.input_dim, meta.num_classes)?;
        let model = TrainedModel {
            network,
            params,
            encoder: meta.encoder,
            label: meta.label,
            categorical: meta.categorical,
        };
        model.save(weights)?;
        Ok(first.round)
    }

    /// Downloads the coordinator's audit log, checks that it parses as a log file and saves
    /// it to `out` (atomically). Returns the number of entries and signed heads.
    pub async fn export_audit(&mut self, out: &Path) -> Result<(usize, usize), CoordinatorError> {
        let mut stream = self
            .inner
            .export_audit(proto::ExportAuditRequest {})
            .await?
            .into_inner();
        let mut text = String::new();
        while let Some(chunk) = stream.message().await? {
            if (text.len() + chunk.text.len()) as u64 > privet_audit::MAX_LOG_BYTES {
                return Err(CoordinatorError::Protocol(format!(
                    "the audit log is larger than {} bytes",
                    privet_audit::MAX_LOG_BYTES
                )));
            }
            text.push_str(&chunk.text);
        }
        let log = privet_audit::LogFile::parse(&text)?;
        log.write(out)?;
        Ok((log.entries.len(), log.heads.len()))
    }
}
