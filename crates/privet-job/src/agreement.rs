//! `[agreement]`: the signed data-sharing agreement a networked job runs under, and the
//! purpose it declares. The coordinator (at admission) and every node (at its egress
//! chokepoint) turn the job into the [`JobRequest`] that `privet-audit` checks against their
//! own copy of the agreement; the simulation ignores the section, as it ignores
//! `[deployment]`.
//!
//! ```toml
//! [agreement]
//! id = "diabetes-study"       # the agreement's id; the newest fully signed version is used
//! hash = "9f2c..."            # optional: pin one version by its hash
//! purpose = "DUO:0000007"     # a DUO permission (here disease-specific research)
//! disease = "MONDO:0005148"   # with DUO:0000007 only
//! modifiers = ["DUO:0000046"] # declared by the requester (here non-commercial use)
//! ```

use privet_audit::{DpBudget, DuoId, Hash, JobRequest, ModelKind, Purpose, StrategyKind, Task};
use privet_fl::StrategyConfig;
use privet_identity::Name;
use privet_ml::ModelSpec;
use serde::Deserialize;

use crate::{Job, JobError};

/// The agreement a job names and the purpose it declares.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementRef {
    /// The agreement's id.
    pub id: Name,
    /// One version pinned by its hash, or `None` for the newest fully signed version the
    /// checking party holds.
    pub hash: Option<Hash>,
    /// Why the data is used.
    pub purpose: Purpose,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgreementRef {
    id: String,
    hash: Option<String>,
    purpose: String,
    disease: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

fn invalid(why: impl std::fmt::Display) -> JobError {
    JobError::Config(format!("[agreement] {why}"))
}

impl RawAgreementRef {
    pub(crate) fn validate(self) -> Result<AgreementRef, JobError> {
        let id: Name = self.id.parse().map_err(|e| invalid(format!("`id`: {e}")))?;
        let hash = self
            .hash
            .as_deref()
            .map(|h| {
                h.parse::<Hash>()
                    .map_err(|e| invalid(format!("`hash`: {e}")))
            })
            .transpose()?;
        let permission: DuoId = self.purpose.parse().map_err(invalid)?;
        let disease = self
            .disease
            .as_deref()
            .map(|d| d.parse().map_err(invalid))
            .transpose()?;
        let modifiers = self
            .modifiers
            .iter()
            .map(|m| m.parse::<DuoId>().map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        let purpose = Purpose::new(permission, disease, modifiers).map_err(invalid)?;
        Ok(AgreementRef { id, hash, purpose })
    }
}

impl AgreementRef {
    /// The agreement this names among `held`: the version pinned by hash, else the newest
    /// fully signed version of the id (else the newest, so that the check says why it is not
    /// in force). The coordinator and every node select alike, each from its own copies.
    pub fn select<'a>(
        &self,
        held: impl IntoIterator<Item = &'a privet_audit::Agreement>,
    ) -> Option<&'a privet_audit::Agreement> {
        let same_id: Vec<&privet_audit::Agreement> =
            held.into_iter().filter(|a| *a.id() == self.id).collect();
        match self.hash {
            Some(h) => same_id.into_iter().find(|a| a.hash() == h),
            None => same_id
                .iter()
                .copied()
                .filter(|a| a.fully_signed())
                .max_by_key(|a| a.version())
                .or_else(|| same_id.iter().copied().max_by_key(|a| a.version())),
        }
    }
}

/// Who checks a job, and when: what the job file alone does not say.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The coordinator running the job (its certificate's name).
    pub coordinator: Name,
    /// The operator who submitted it, when known.
    pub operator: Option<Name>,
    /// The time of the check.
    pub now: privet_audit::Timestamp,
    /// Budget already spent under the agreement by other jobs, as the checking party counts it.
    pub spent: DpBudget,
}

impl Job {
    /// What the job does, as an agreement names tasks.
    pub fn task(&self) -> Task {
        let model = match self.model {
            ModelSpec::Logreg => ModelKind::Logreg,
            ModelSpec::Mlp { .. } => ModelKind::Mlp,
            ModelSpec::Cnn => ModelKind::Cnn,
        };
        let strategy = match self.strategy {
            StrategyConfig::FedAvg => StrategyKind::FedAvg,
            StrategyConfig::FedProx { .. } => StrategyKind::FedProx,
            StrategyConfig::FedAvgM { .. } => StrategyKind::FedAvgM,
            StrategyConfig::FedAdam { .. } => StrategyKind::FedAdam,
            StrategyConfig::FedYogi { .. } => StrategyKind::FedYogi,
            StrategyConfig::FedAdagrad { .. } => StrategyKind::FedAdagrad,
            StrategyConfig::Median => StrategyKind::Median,
            StrategyConfig::TrimmedMean { .. } => StrategyKind::TrimmedMean,
            StrategyConfig::Krum { .. } => StrategyKind::Krum,
            StrategyConfig::MultiKrum { .. } => StrategyKind::MultiKrum,
        };
        Task::Train { model, strategy }
    }

    /// The most differential-privacy budget the job can spend: its `[privacy] budget`, else
    /// its `target_epsilon` at its `delta`. `None` without `[privacy]`. A job with only a
    /// `noise_multiplier` declares no maximum and is refused under an agreement (see
    /// [`Job::agreement_request`]).
    pub fn dp_maximum(&self) -> Result<Option<DpBudget>, JobError> {
        let Some(p) = &self.privacy else {
            return Ok(None);
        };
        let (epsilon, delta) = match (p.budget, p.noise) {
            (Some(budget), _) => budget,
            (None, privet_dpfedavg::NoiseLevel::TargetEpsilon(e)) => (e, p.delta),
            (None, privet_dpfedavg::NoiseLevel::Multiplier(_)) => {
                return Err(invalid(
                    "a job under an agreement must declare the most privacy budget it can \
                     spend: set [privacy] `target_epsilon` or `budget`",
                ));
            }
        };
        DpBudget::new(epsilon, delta).map(Some).map_err(invalid)
    }

    /// The request an agreement checks for this job, or `None` if the job names no
    /// agreement. Fails if the job needs a `[deployment]` or a DP maximum it lacks.
    pub fn agreement_request(&self, ctx: &CheckContext) -> Result<Option<JobRequest>, JobError> {
        let Some(agreement) = &self.agreement else {
            return Ok(None);
        };
        let nodes = self
            .deployment
            .as_ref()
            .map(|d| d.nodes.clone())
            .ok_or_else(|| invalid("a job under an agreement needs [deployment] nodes"))?;
        Ok(Some(JobRequest {
            agreement: agreement.hash,
            purpose: agreement.purpose.clone(),
            task: self.task(),
            coordinator: ctx.coordinator.clone(),
            operator: ctx.operator.clone(),
            nodes,
            secure_aggregation: self.secure_aggregation.is_some(),
            dp: self.dp_maximum()?,
            min_clients_per_round: u32::try_from(self.federation.min_clients).unwrap_or(u32::MAX),
            now: ctx.now,
            spent: ctx.spent,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn job(extra: &str) -> Result<Job, JobError> {
        Job::from_toml(&format!(
            "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"mlp\"\nhidden = [4]\n\
             [strategy]\nkind = \"fedprox\"\n\
             [federation]\nrounds = 2\nclients_per_round = 3\nmin_clients = 3\n\
             [deployment]\nnodes = [\"a\", \"b\", \"c\"]\n{extra}"
        ))
    }

    fn ctx() -> CheckContext {
        CheckContext {
            coordinator: "coordinator".parse().unwrap(),
            operator: Some("admin".parse().unwrap()),
            now: privet_audit::Timestamp::parse("2026-06-01T00:00:00Z").unwrap(),
            spent: DpBudget::new(0.5, 0.0).unwrap(),
        }
    }

    #[test]
    fn a_job_names_its_agreement_and_purpose() {
        let j = job("[agreement]\nid = \"study\"\npurpose = \"DUO:0000007\"\n\
             disease = \"MONDO:0005148\"\nmodifiers = [\"DUO:0000046\"]\n")
        .unwrap();
        let r = j.agreement_request(&ctx()).unwrap().unwrap();
        assert_eq!(j.agreement.as_ref().unwrap().id.as_str(), "study");
        assert_eq!(
            r.task,
            Task::Train {
                model: ModelKind::Mlp,
                strategy: StrategyKind::FedProx
            }
        );
        assert_eq!(r.nodes.len(), 3);
        assert_eq!(r.min_clients_per_round, 3);
        assert!(!r.secure_aggregation);
        assert_eq!(r.dp, None);
        assert_eq!(r.spent, ctx().spent);
        assert!(r.agreement.is_none());
    }

    #[test]
    fn a_job_without_the_section_makes_no_request() {
        assert!(
            job("")
                .unwrap()
                .agreement_request(&ctx())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_purposes_are_refused_by_key() {
        for (extra, wanted) in [
            ("purpose = \"DUO:0000046\"\n", "modifier"),
            ("purpose = \"DUO:0000007\"\n", "disease"),
            ("purpose = \"DUO:9999999\"\n", "not a DUO term"),
            ("purpose = \"DUO:0000042\"\nhash = \"zz\"\n", "`hash`"),
            ("purpose = \"DUO:0000042\"\nwhy = 1\n", "unknown field"),
        ] {
            let e = job(&format!("[agreement]\nid = \"study\"\n{extra}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(wanted), "{extra}: {e}");
        }
    }

    #[test]
    fn the_dp_maximum_is_the_budget_or_the_target() {
        let features = "[privacy.features]\nepsilon = 1.0\nbounds = { \"*\" = [0.0, 1.0] }\n\
                        labels = [\"0\", \"1\"]\n";
        let agreement = "[agreement]\nid = \"study\"\npurpose = \"DUO:0000042\"\n";
        let target = job(&format!(
            "{agreement}[privacy]\nclip = 1.0\ntarget_epsilon = 2.0\ndelta = 1e-5\n{features}"
        ))
        .unwrap();
        let dp = target
            .agreement_request(&ctx())
            .unwrap()
            .unwrap()
            .dp
            .unwrap();
        assert_eq!((dp.epsilon(), dp.delta()), (2.0, 1e-5));
        let multiplier = job(&format!(
            "{agreement}[privacy]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\n{features}"
        ))
        .unwrap();
        let e = multiplier
            .agreement_request(&ctx())
            .unwrap_err()
            .to_string();
        assert!(e.contains("target_epsilon"), "{e}");
    }
}
