//! The check the coordinator (at admission) and every node (at its egress chokepoint) run:
//! does a signed agreement cover this job? Pure: the time and the budget already spent are
//! passed in.

use std::fmt;

use privet_identity::Name;

use crate::agreement::{Agreement, DpBudget, ModelKind, PartyRole, StrategyKind};
use crate::duo::Purpose;
use crate::{Hash, Timestamp};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Task {
    /// Federated training of a model kind with a strategy.
    Train {
        /// The model kind.
        model: ModelKind,
        /// The aggregation strategy.
        strategy: StrategyKind,
    },
    /// Differentially private statistics.
    Statistics,
    /// Private set intersection.
    Psi,
    /// Private join and compute.
    Pjc,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Train { model, strategy } => write!(f, "training {model} with {strategy}"),
            Task::Statistics => f.write_str("DP statistics"),
            Task::Psi => f.write_str("private set intersection"),
            Task::Pjc => f.write_str("private join and compute"),
        }
    }
}

/// A job (or one of its rounds) as the agreement sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRequest {
    /// The hash of the agreement the job names, if it names one by hash: it must be this
    /// agreement (a node whose copy differs refuses).
    pub agreement: Option<Hash>,
    /// Why: a DUO permission (with disease) and the modifiers the requester declares.
    pub purpose: Purpose,
    /// What.
    pub task: Task,
    /// The coordinator that runs it (its certificate's name).
    pub coordinator: Name,
    /// The operator who submitted it (its certificate's name), when known.
    pub operator: Option<Name>,
    /// The data-owner nodes taking part.
    pub nodes: Vec<Name>,
    /// Whether secure aggregation is on.
    pub secure_aggregation: bool,
    /// The job's differential-privacy budget (its maximum), or none.
    pub dp: Option<DpBudget>,
    /// The fewest client updates a round combines.
    pub min_clients_per_round: u32,
    /// The time of the check.
    pub now: Timestamp,
    /// The budget already spent (or reserved) under this agreement by earlier jobs, as the
    /// caller persists it. A job's own budget is checked on top of it.
    pub spent: DpBudget,
}

/// A request to take a trained model out of the federation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRequest {
    /// Who receives it (its certificate's name).
    pub party: Name,
    /// Whether the model was trained with differential privacy.
    pub dp_trained: bool,
    /// The time of the request.
    pub now: Timestamp,
}

/// Why an agreement does not cover a job. One line each; [`Refusal::code`] is a stable
/// identifier for logs and metrics.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Refusal {
    /// A party has not signed.
    Unsigned {
        /// The agreement's id.
        agreement: Name,
        /// The party.
        party: Name,
    },
    /// A party's signature does not verify (the text was changed after signing).
    BadSignature {
        /// The agreement's id.
        agreement: Name,
        /// The party.
        party: Name,
    },
    /// Before the validity window.
    NotYetValid {
        /// The agreement's id.
        agreement: Name,
        /// When it starts.
        not_before: Timestamp,
    },
    /// After the validity window.
    Expired {
        /// The agreement's id.
        agreement: Name,
        /// When it ended.
        not_after: Timestamp,
    },
    /// The job names another agreement (or another version).
    OtherAgreement {
        /// The hash of this agreement.
        this: Hash,
        /// The hash the job names.
        named: Hash,
    },
    /// No permitted purpose covers the job's purpose.
    PurposeNotPermitted {
        /// The job's purpose.
        purpose: Purpose,
    },
    /// The task is not permitted.
    TaskNotPermitted {
        /// The task.
        task: Task,
    },
    /// A participant is not a party, or not in the role the job gives it.
    NotAParty {
        /// The participant.
        party: Name,
        /// The role the job gives it.
        role: PartyRole,
    },
    /// A data owner takes part without a data set listed in the agreement.
    NoDataset {
        /// The node.
        node: Name,
    },
    /// Secure aggregation is required and off.
    SecAggRequired,
    /// Differential privacy is required and the job has none.
    DpRequired {
        /// The per-job limit.
        limit: DpBudget,
    },
    /// The job's budget is over the per-job limit.
    OverPerJob {
        /// The job's budget.
        requested: DpBudget,
        /// The limit.
        limit: DpBudget,
    },
    /// The job's budget on top of what was spent is over the total.
    OverTotal {
        /// Spent before.
        spent: DpBudget,
        /// The job's budget.
        requested: DpBudget,
        /// The total.
        total: DpBudget,
    },
    /// Rounds may combine fewer clients than required (or the job has too few nodes).
    TooFewClients {
        /// What the job allows.
        requested: u32,
        /// What the agreement requires.
        required: u32,
    },
    /// A model may not go to this party.
    ExportNotPermitted {
        /// The party.
        party: Name,
        /// Why.
        reason: &'static str,
    },
}

impl Refusal {
    /// A stable identifier (`expired`, `secagg_required`...).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unsigned { .. } => "unsigned",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::Expired { .. } => "expired",
            Refusal::OtherAgreement { .. } => "other_agreement",
            Refusal::PurposeNotPermitted { .. } => "purpose_not_permitted",
            Refusal::TaskNotPermitted { .. } => "task_not_permitted",
            Refusal::NotAParty { .. } => "not_a_party",
            Refusal::NoDataset { .. } => "no_dataset",
            Refusal::SecAggRequired => "secagg_required",
            Refusal::DpRequired { .. } => "dp_required",
            Refusal::OverPerJob { .. } => "over_per_job_budget",
            Refusal::OverTotal { .. } => "over_total_budget",
            Refusal::TooFewClients { .. } => "too_few_clients",
            Refusal::ExportNotPermitted { .. } => "export_not_permitted",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unsigned { agreement, party } => {
                write!(f, "agreement {agreement} is not signed by {party}")
            }
            Refusal::BadSignature { agreement, party } => write!(
                f,
                "the signature of {party} on agreement {agreement} does not match its text (changed after signing)"
            ),
            Refusal::NotYetValid {
                agreement,
                not_before,
            } => write!(f, "agreement {agreement} is not valid before {not_before}"),
            Refusal::Expired {
                agreement,
                not_after,
            } => write!(f, "agreement {agreement} expired at {not_after}"),
            Refusal::OtherAgreement { this, named } => write!(
                f,
                "the job names agreement {named}, but this agreement is {this}"
            ),
            Refusal::PurposeNotPermitted { purpose } => write!(
                f,
                "purpose not permitted by the agreement: {}",
                purpose.describe()
            ),
            Refusal::TaskNotPermitted { task } => {
                write!(f, "task not permitted by the agreement: {task}")
            }
            Refusal::NotAParty { party, role } => {
                write!(f, "{party} is not a {role} party of the agreement")
            }
            Refusal::NoDataset { node } => {
                write!(f, "the agreement lists no data set of {node}")
            }
            Refusal::SecAggRequired => {
                f.write_str("the agreement requires secure aggregation, and the job has it off")
            }
            Refusal::DpRequired { limit } => write!(
                f,
                "the agreement requires differential privacy (at most {limit} per job), and the job has none"
            ),
            Refusal::OverPerJob { requested, limit } => write!(
                f,
                "the job's privacy budget {requested} is over the agreement's {limit} per job"
            ),
            Refusal::OverTotal {
                spent,
                requested,
                total,
            } => write!(
                f,
                "the job's privacy budget {requested} on top of {spent} already spent is over the agreement's total {total}"
            ),
            Refusal::TooFewClients {
                requested,
                required,
            } => write!(
                f,
                "rounds may combine {requested} clients, the agreement requires at least {required}"
            ),
            Refusal::ExportNotPermitted { party, reason } => {
                write!(f, "the model may not be exported to {party}: {reason}")
            }
        }
    }
}

impl std::error::Error for Refusal {}

impl Agreement {
    /// Whether this agreement covers the job: signed by every party, valid at `job.now`, the
    /// job's agreement, purpose, task, participants and protections. The first failing check
    /// is returned, in that order.
    pub fn permits(&self, job: &JobRequest) -> Result<(), Refusal> {
        self.in_force(job.now)?;
        if let Some(named) = job.agreement
            && named != self.hash()
        {
            return Err(Refusal::OtherAgreement {
                this: self.hash(),
                named,
            });
        }
        let body = self.body();
        if !body.purposes.iter().any(|p| p.covers(&job.purpose)) {
            return Err(Refusal::PurposeNotPermitted {
                purpose: job.purpose.clone(),
            });
        }
        let tasks = &body.tasks;
        let task_ok = match job.task {
            Task::Train { model, strategy } => {
                tasks.models.contains(&model) && tasks.strategies.contains(&strategy)
            }
            Task::Statistics => tasks.statistics,
            Task::Psi => tasks.psi,
            Task::Pjc => tasks.pjc,
        };
        if !task_ok {
            return Err(Refusal::TaskNotPermitted { task: job.task });
        }
        let has_role = |name: &Name, role: PartyRole| {
            body.party(name.as_str()).is_some_and(|p| p.role == role)
        };
        if !has_role(&job.coordinator, PartyRole::Coordinator) {
            return Err(Refusal::NotAParty {
                party: job.coordinator.clone(),
                role: PartyRole::Coordinator,
            });
        }
        if let Some(op) = &job.operator
            && !has_role(op, PartyRole::Operator)
        {
            return Err(Refusal::NotAParty {
                party: op.clone(),
                role: PartyRole::Operator,
            });
        }
        for node in &job.nodes {
            if !has_role(node, PartyRole::DataOwner) {
                return Err(Refusal::NotAParty {
                    party: node.clone(),
                    role: PartyRole::DataOwner,
                });
            }
            if !body.datasets.contains_key(node) {
                return Err(Refusal::NoDataset { node: node.clone() });
            }
        }
        let p = &body.protections;
        if p.secure_aggregation && !job.secure_aggregation {
            return Err(Refusal::SecAggRequired);
        }
        if let Some(limits) = p.dp {
            let Some(requested) = job.dp else {
                return Err(Refusal::DpRequired {
                    limit: limits.per_job,
                });
            };
            if !requested.within(limits.per_job) {
                return Err(Refusal::OverPerJob {
                    requested,
                    limit: limits.per_job,
                });
            }
            if !job.spent.plus(requested).within(limits.total) {
                return Err(Refusal::OverTotal {
                    spent: job.spent,
                    requested,
                    total: limits.total,
                });
            }
        }
        let required = p.min_clients_per_round;
        if job.min_clients_per_round < required {
            return Err(Refusal::TooFewClients {
                requested: job.min_clients_per_round,
                required,
            });
        }
        let nodes = u32::try_from(job.nodes.len()).unwrap_or(u32::MAX);
        if nodes < required {
            return Err(Refusal::TooFewClients {
                requested: nodes,
                required,
            });
        }
        Ok(())
    }

    /// Whether a trained model may go to `request.party`.
    pub fn permits_export(&self, request: &ExportRequest) -> Result<(), Refusal> {
        self.in_force(request.now)?;
        let rule = &self.body().protections.export;
        if !rule.parties.contains(&request.party) {
            return Err(Refusal::ExportNotPermitted {
                party: request.party.clone(),
                reason: "not among the parties the agreement lets export models",
            });
        }
        if rule.dp_only && !request.dp_trained {
            return Err(Refusal::ExportNotPermitted {
                party: request.party.clone(),
                reason: "only models trained with differential privacy may leave",
            });
        }
        Ok(())
    }

    /// Signed by every party and valid at `now`.
    pub fn in_force(&self, now: Timestamp) -> Result<(), Refusal> {
        let status = self.signature_status();
        let id = || self.id().clone();
        if let Some(party) = status.invalid.first() {
            return Err(Refusal::BadSignature {
                agreement: id(),
                party: party.clone(),
            });
        }
        if let Some(party) = status.missing.first() {
            return Err(Refusal::Unsigned {
                agreement: id(),
                party: party.clone(),
            });
        }
        let body = self.body();
        if now < body.not_before {
            return Err(Refusal::NotYetValid {
                agreement: id(),
                not_before: body.not_before,
            });
        }
        if now >= body.not_after {
            return Err(Refusal::Expired {
                agreement: id(),
                not_after: body.not_after,
            });
        }
        Ok(())
    }
}
