//! The node's egress chokepoint: everything that leaves the node goes through [`Egress`].
//!
//! A node sends its coordinator a closed set of message kinds ([`Outgoing`]): its `Hello`, one
//! feature summary per job, the answers of the job's aggregation protocol, and failures. Before
//! anything is framed, [`Egress::release`] checks it against the job's [`EgressPolicy`] (from the
//! node's own parse of the job); a job under a signed data-sharing agreement is first checked
//! against the node's own copy and policy ([`crate::audit`]) before its summary or any answer
//! is made:
//!
//! - a feature summary is computed here from the node's table, exactly or, under `[privacy]`,
//!   with differential privacy ([`privet_job::release_dp_summary`]); nothing else can make one;
//! - an answer must be the kind the job's protocol sends: plain updates, or under secure
//!   aggregation only masked protocol messages (a plain update would reveal what masking hides);
//! - a failure is a [`Failure`], whose text names file, line and column only: cell values, labels
//!   and training internals stay in the node's own log.
//!
//! Messages for a job whose policy the node does not know are refused.

use std::collections::HashMap;

use privet_data::{DataSummary, Table};
use privet_fl::engine::FromClient;
use privet_job::{AnswerPolicy, EgressPolicy, Job, SummaryPolicy};
use privet_wire::proto::node_message::Body;
use privet_wire::proto::{self, NodeMessage};

use crate::error::NodeError;

/// Why something may not leave the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("egress refused for job {job_id}: {why}")]
pub struct EgressRefusal {
    /// The job.
    pub job_id: String,
    /// What the policy forbids.
    pub why: String,
}

/// Why a node could not do what its coordinator asked, as it may be told.
#[derive(Debug)]
pub enum Failure {
    /// The node's data is unusable: where (file, line, column), never what.
    Data(privet_data::DataError),
    /// The job does not fit this node (its data, its name, its policy): a reason without data.
    Job(String),
    /// Local training or a protocol step failed.
    Round(privet_fl::FlError),
    /// A message from the coordinator was malformed or out of place.
    Protocol(String),
    /// The node has not joined the job.
    NotJoined,
    /// The node's copy of the job's agreement, or its local policy, does not allow it.
    Refused(crate::audit::NodeRefusal),
}

impl Failure {
    /// The text sent to the coordinator.
    fn text(&self) -> String {
        match self {
            Failure::Data(e) => format!("local data unusable: {}", e.redacted()),
            Failure::Job(why) => why.clone(),
            Failure::Round(e) => match e {
                // Training errors can quote the model or the data; say only that it failed.
                privet_fl::FlError::Training(_) => "local training failed".into(),
                other => format!("protocol step failed: {other}"),
            },
            Failure::Protocol(why) => format!("bad message from the coordinator: {why}"),
            Failure::NotJoined => "this node has not joined the job".into(),
            Failure::Refused(r) => r.reason.clone(),
        }
    }
}

/// A node's feature summary, computed here under the job's summary policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    summary: DataSummary,
    dp: bool,
}

/// Everything a node can send.
#[derive(Debug)]
pub enum Outgoing {
    /// The session's first message.
    Hello(proto::Hello),
    /// The feature summary of `job_id`.
    Summary {
        /// The job.
        job_id: String,
        /// The summary, from [`Egress::summarize`].
        summary: Released,
    },
    /// A protocol answer in `job_id`.
    Answer {
        /// The job.
        job_id: String,
        /// The answer.
        answer: FromClient,
    },
    /// A failure in `job_id` (round 0 outside rounds).
    Failure {
        /// The job.
        job_id: String,
        /// The round.
        round: u32,
        /// What went wrong.
        failure: Failure,
    },
}

/// The chokepoint (see the [module documentation](self)).
#[derive(Debug, Default)]
pub struct Egress {
    jobs: HashMap<String, (Job, EgressPolicy)>,
}

impl Egress {
    /// Records `job`'s policy under `job_id`. A job id already known with another job file is
    /// refused: the coordinator cannot describe one job and run another under its name.
    pub fn register(&mut self, job_id: &str, job: &Job) -> Result<(), EgressRefusal> {
        match self.jobs.get(job_id) {
            Some((known, _)) if known != job => Err(EgressRefusal {
                job_id: job_id.into(),
                why: "the job file differs from the one this node was first sent".into(),
            }),
            Some(_) => Ok(()),
            None => {
                self.jobs
                    .insert(job_id.into(), (job.clone(), job.egress_policy()));
                Ok(())
            }
        }
    }

    /// Forgets a finished job.
    pub fn forget(&mut self, job_id: &str) {
        self.jobs.remove(job_id);
    }

    fn policy(&self, job_id: &str) -> Result<&EgressPolicy, EgressRefusal> {
        self.jobs
            .get(job_id)
            .map(|(_, p)| p)
            .ok_or_else(|| EgressRefusal {
                job_id: job_id.into(),
                why: "no policy is known for this job".into(),
            })
    }

    /// The node's feature summary of `table` for `job_id`, as the job's policy allows it
    /// released: exact, or with differential privacy under `[privacy]`.
    pub fn summarize(&self, job_id: &str, table: &Table) -> Result<Released, NodeError> {
        let policy = self
            .policy(job_id)
            .map_err(|e| NodeError::Config(e.to_string()))?;
        match &policy.summary {
            SummaryPolicy::Exact => Ok(Released {
                summary: DataSummary::of_table(table),
                dp: false,
            }),
            SummaryPolicy::Dp(features) => {
                let mut rng = privet_dp::noise::os_seeded_rng()
                    .map_err(|e| NodeError::Config(format!("randomness: {e}")))?;
                Ok(Released {
                    summary: privet_job::release_dp_summary(table, features, &mut rng)?,
                    dp: true,
                })
            }
        }
    }

    /// Checks `out` against its job's policy and turns it into the wire message.
    pub fn release(&self, out: Outgoing) -> Result<NodeMessage, EgressRefusal> {
        let body = match out {
            Outgoing::Hello(hello) => Body::Hello(hello),
            Outgoing::Summary { job_id, summary } => {
                let policy = self.policy(&job_id)?;
                let allowed = matches!(
                    (&policy.summary, summary.dp),
                    (SummaryPolicy::Exact, false) | (SummaryPolicy::Dp(_), true)
                );
                if !allowed {
                    return Err(EgressRefusal {
                        job_id,
                        why: "the job's policy does not allow this kind of feature summary".into(),
                    });
                }
                Body::DataSummary(privet_wire::summary_to_proto(&job_id, &summary.summary))
            }
            Outgoing::Answer { job_id, answer } => {
                let policy = self.policy(&job_id)?;
                let allowed = matches!(
                    (policy.answers, &answer),
                    (AnswerPolicy::PlainUpdates, FromClient::Update { .. })
                        | (AnswerPolicy::SecureAggregation, FromClient::Protocol { .. })
                );
                if !allowed {
                    return Err(EgressRefusal {
                        job_id,
                        why: format!(
                            "the job's protocol does not send this kind of answer ({:?} policy)",
                            policy.answers
                        ),
                    });
                }
                privet_wire::to_node_body(&job_id, &answer).map_err(|e| EgressRefusal {
                    job_id: job_id.clone(),
                    why: e.to_string(),
                })?
            }
            Outgoing::Failure {
                job_id,
                round,
                failure,
            } => Body::Error(proto::NodeError {
                job_id,
                round,
                message: failure.text(),
                refusal: match &failure {
                    Failure::Refused(r) => r.code.clone(),
                    _ => String::new(),
                },
            }),
        };
        Ok(NodeMessage { body: Some(body) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use privet_data::{Column, Table};
    use privet_fl::{ClientId, ClientUpdate, TrainMetrics};

    use super::*;

    fn job(extra: &str) -> Job {
        Job::from_toml(&format!(
            "[data]\npath = \"x.csv\"\nlabel = \"y\"\n[model]\nkind = \"logreg\"\n\
             [federation]\nrounds = 2\nclients_per_round = 3\nmin_clients = 3\n{extra}\
             [deployment]\nnodes = [\"a\", \"b\", \"c\"]\n"
        ))
        .unwrap()
    }

    const DP: &str = "[privacy]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-5\n\
                      [privacy.features]\nepsilon = 1.0\nbounds = { \"*\" = [0.0, 10.0] }\n\
                      labels = [\"0\", \"1\"]\n";

    fn table() -> Table {
        Table {
            source: "node.csv".into(),
            columns: vec![Column::Numeric {
                name: "x".into(),
                values: (0..200).map(|i| f64::from(i % 10)).collect(),
            }],
            labels: Some((0..200).map(|i| (i % 2).to_string()).collect()),
            label_name: Some("y".into()),
            dropped: vec![],
            row_lines: vec![],
        }
    }

    fn update() -> FromClient {
        FromClient::Update {
            round: 1,
            update: ClientUpdate {
                client: ClientId(0),
                delta: vec![0.5],
                num_examples: 3,
                metrics: TrainMetrics {
                    loss: 0.1,
                    num_examples: 3,
                },
            },
        }
    }

    #[test]
    fn a_plain_update_cannot_leave_a_secure_aggregation_job() {
        let mut egress = Egress::default();
        egress
            .register("j", &job("secure_aggregation = \"secagg+\"\n"))
            .unwrap();
        let out = Outgoing::Answer {
            job_id: "j".into(),
            answer: update(),
        };
        assert!(egress.release(out).is_err());
        let masked = Outgoing::Answer {
            job_id: "j".into(),
            answer: FromClient::Protocol {
                round: 1,
                stage: 0,
                payload: vec![1],
            },
        };
        assert!(egress.release(masked).is_ok());
    }

    #[test]
    fn nothing_leaves_for_an_unknown_job_and_a_job_cannot_change() {
        let mut egress = Egress::default();
        let out = Outgoing::Answer {
            job_id: "nope".into(),
            answer: update(),
        };
        assert!(egress.release(out).is_err());
        egress.register("j", &job("")).unwrap();
        assert!(egress.register("j", &job(DP)).is_err());
    }

    #[test]
    fn under_privacy_the_summary_is_noisy_and_exact_statistics_are_refused() {
        let mut egress = Egress::default();
        egress.register("dp", &job(DP)).unwrap();
        egress.register("plain", &job("")).unwrap();
        let exact = egress.summarize("plain", &table()).unwrap();
        assert_eq!(exact.summary, DataSummary::of_table(&table()));
        // An exact summary cannot go out under a DP job's name.
        let smuggled = Outgoing::Summary {
            job_id: "dp".into(),
            summary: exact,
        };
        assert!(egress.release(smuggled).is_err());
        let noisy = egress.summarize("dp", &table()).unwrap();
        assert!(noisy.dp);
        let privet_data::ColumnSummary::Numeric { mean, count, .. } = &noisy.summary.columns[0]
        else {
            panic!("numeric");
        };
        // 200 rows of 0..9: mean 4.5; epsilon 1/3 per query gives noise of a few units.
        assert!((mean - 4.5).abs() < 1.0, "{mean}");
        assert!((*count as f64 - 200.0).abs() < 60.0, "{count}");
        let msg = egress
            .release(Outgoing::Summary {
                job_id: "dp".into(),
                summary: noisy,
            })
            .unwrap();
        assert!(matches!(msg.body, Some(Body::DataSummary(_))));
    }

    #[test]
    fn failures_never_carry_cell_values() {
        let err = privet_data::DataError::NotNumeric {
            path: "node.csv".into(),
            line: 7,
            column: "age".into(),
            value: "PATIENT Jane Doe".into(),
        };
        let mut egress = Egress::default();
        egress.register("j", &job("")).unwrap();
        let msg = egress
            .release(Outgoing::Failure {
                job_id: "j".into(),
                round: 0,
                failure: Failure::Data(err),
            })
            .unwrap();
        let Some(Body::Error(e)) = msg.body else {
            panic!("an error")
        };
        assert!(e.message.contains("line 7, column `age`"), "{}", e.message);
        assert!(!e.message.contains("Jane"), "{}", e.message);
        let training = Failure::Round(privet_fl::FlError::Training("value 4.2 at row 9".into()));
        assert_eq!(training.text(), "local training failed");
    }
}
