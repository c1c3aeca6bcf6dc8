//! # privet-wire: the federation's wire format
//!
//! `proto/privet/v1/federation.proto` (package `privet.v1`) defines every message between the
//! coordinator, the nodes and the operators; this crate compiles it (with a vendored `protoc`)
//! and converts between the protobuf messages and privet's typed values, checking everything
//! that arrives: a node or a coordinator never acts on a raw protobuf message, only on what
//! survived these conversions. Only this crate and the services that use it know protobuf.
//!
//! - Engine messages: [`to_coordinator_body`] / [`Addressed<ToClient>`] for what the
//!   coordinator sends a node, [`to_node_body`] / [`from_node_body`] for what a node answers.
//! - Data summaries: [`summary_to_proto`] and `DataSummary::try_from(&proto::DataSummary)`
//!   (via [`summary_from_proto`]), with size limits.
//! - [`PROTOCOL_VERSION`]: what a `Hello` and a `Welcome` carry.

use std::collections::HashMap;
use std::sync::Arc;

use privet_data::{ColumnSummary, DataSummary};
use privet_fl::engine::{FromClient, ToClient};
use privet_fl::{ClientId, ClientParams, ClientTrainConfig, ClientUpdate, TrainMetrics};
use privet_transport::{bytes_to_f32, f32_to_bytes};

/// Generated protobuf and gRPC code for `privet.v1`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("privet.v1");
}

use proto::coordinator_message::Body as ToNode;
use proto::node_message::Body as ToCoordinator;

/// The wire protocol version this build speaks (`Hello.protocol_version`). Version 2 carries a
/// round's client parameters as the generic `Fit.extensions` map and round reports as named
/// JSON `details`.
pub const PROTOCOL_VERSION: u32 = 2;

/// A message that does not convert into a typed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {why}")]
pub struct WireError {
    /// Which message.
    pub what: &'static str,
    /// What is wrong with it.
    pub why: String,
}

fn malformed(what: &'static str, why: impl std::fmt::Display) -> WireError {
    WireError {
        what,
        why: why.to_string(),
    }
}

/// A typed message for the job `job_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Addressed<T> {
    /// The job it belongs to.
    pub job_id: String,
    /// The message.
    pub msg: T,
}

/// What the coordinator sends a node for an engine message of job `job_id`.
pub fn to_coordinator_body(job_id: &str, msg: &ToClient) -> Result<ToNode, WireError> {
    match msg {
        ToClient::Fit {
            round,
            params,
            config,
            extensions,
        } => Ok(ToNode::Fit(proto::Fit {
            job_id: job_id.to_string(),
            round: *round,
            params: f32_to_bytes(params),
            proximal_mu: config.proximal_mu,
            extensions: extensions
                .iter()
                .map(|(k, v)| (k.to_string(), bytes::Bytes::copy_from_slice(v)))
                .collect(),
        })),
        ToClient::Protocol {
            round,
            stage,
            payload,
        } => Ok(ToNode::Protocol(proto::ProtocolMessage {
            job_id: job_id.to_string(),
            round: *round,
            stage: u32::from(*stage),
            payload: payload.clone().into(),
        })),
        other => Err(malformed(
            "engine message",
            format!("no wire form for {other:?}"),
        )),
    }
}

impl TryFrom<proto::Fit> for Addressed<ToClient> {
    type Error = WireError;

    fn try_from(fit: proto::Fit) -> Result<Self, WireError> {
        let params = bytes_to_f32(&fit.params).map_err(|e| malformed("Fit", e))?;
        let extensions = ClientParams::from_entries(
            fit.extensions
                .into_iter()
                .map(|(name, value)| (name, value.to_vec())),
        )
        .map_err(|e| malformed("Fit", e))?;
        if let Some(mu) = fit.proximal_mu
            && !(mu.is_finite() && mu >= 0.0)
        {
            return Err(malformed("Fit", format!("proximal_mu {mu}")));
        }
        Ok(Addressed {
            job_id: fit.job_id,
            msg: ToClient::Fit {
                round: fit.round,
                params: params.into(),
                config: ClientTrainConfig {
                    proximal_mu: fit.proximal_mu,
                },
                extensions: Arc::new(extensions),
            },
        })
    }
}

impl TryFrom<proto::ProtocolMessage> for Addressed<ToClient> {
    type Error = WireError;

    fn try_from(p: proto::ProtocolMessage) -> Result<Self, WireError> {
        let stage = u8::try_from(p.stage)
            .map_err(|_| malformed("protocol message", format!("stage {}", p.stage)))?;
        Ok(Addressed {
            job_id: p.job_id,
            msg: ToClient::Protocol {
                round: p.round,
                stage,
                payload: p.payload.to_vec(),
            },
        })
    }
}

/// What a node sends for its engine answer in job `job_id`.
pub fn to_node_body(job_id: &str, msg: &FromClient) -> Result<ToCoordinator, WireError> {
    match msg {
        FromClient::Update { round, update } => Ok(ToCoordinator::Update(proto::Update {
            job_id: job_id.to_string(),
            round: *round,
            delta: f32_to_bytes(&update.delta),
            num_examples: update.num_examples,
            loss: update.metrics.loss,
        })),
        FromClient::Protocol {
            round,
            stage,
            payload,
        } => Ok(ToCoordinator::Protocol(proto::ProtocolMessage {
            job_id: job_id.to_string(),
            round: *round,
            stage: u32::from(*stage),
            payload: payload.clone().into(),
        })),
        other => Err(malformed(
            "engine answer",
            format!("no wire form for {other:?}"),
        )),
    }
}

/// The engine message in a node's `Update` or `ProtocolMessage`, attributed to `from` (the
/// authenticated sender, never a field of the message); `None` for other bodies.
pub fn from_node_body(
    body: &ToCoordinator,
    from: ClientId,
) -> Option<Result<FromClient, WireError>> {
    match body {
        ToCoordinator::Update(u) => Some(
            bytes_to_f32(&u.delta)
                .map_err(|e| malformed("Update", e))
                .map(|delta| FromClient::Update {
                    round: u.round,
                    update: ClientUpdate {
                        client: from,
                        delta,
                        num_examples: u.num_examples,
                        metrics: TrainMetrics {
                            loss: u.loss,
                            num_examples: u.num_examples,
                        },
                    },
                }),
        ),
        ToCoordinator::Protocol(p) => Some(
            u8::try_from(p.stage)
                .map_err(|_| malformed("protocol message", format!("stage {}", p.stage)))
                .map(|stage| FromClient::Protocol {
                    round: p.round,
                    stage,
                    payload: p.payload.to_vec(),
                }),
        ),
        _ => None,
    }
}

/// Most columns and categories a data summary may describe.
pub const MAX_SUMMARY_COLUMNS: usize = 100_000;

/// A node's summary in its typed form, checked: every named column has statistics, the
/// statistics are finite, and the sizes are within [`MAX_SUMMARY_COLUMNS`].
pub fn summary_from_proto(s: &proto::DataSummary) -> Result<DataSummary, WireError> {
    let bad = |why: String| malformed("data summary", why);
    if s.columns.len() > MAX_SUMMARY_COLUMNS || s.labels.len() > MAX_SUMMARY_COLUMNS {
        return Err(bad("too large".into()));
    }
    let mut numeric: HashMap<&str, &proto::NumericColumn> =
        s.numeric.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut categorical: HashMap<&str, &proto::CategoricalColumn> =
        s.categorical.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut columns = Vec::with_capacity(s.columns.len());
    for name in &s.columns {
        let shown: String = name.chars().take(64).collect();
        if let Some(c) = numeric.remove(name.as_str()) {
            if !(c.mean.is_finite() && c.m2.is_finite() && c.m2 >= 0.0) {
                return Err(bad(format!("column {shown:?}: non-finite statistics")));
            }
            columns.push(ColumnSummary::Numeric {
                name: name.clone(),
                count: c.count,
                mean: c.mean,
                m2: c.m2,
            });
        } else if let Some(c) = categorical.remove(name.as_str()) {
            if c.categories.len() > MAX_SUMMARY_COLUMNS {
                return Err(bad(format!("column {shown:?}: too many categories")));
            }
            columns.push(ColumnSummary::Categorical {
                name: name.clone(),
                categories: c.categories.clone(),
            });
        } else {
            return Err(bad(format!("column {shown:?} has no statistics")));
        }
    }
    Ok(DataSummary {
        rows: s.rows,
        columns,
        labels: s.labels.clone(),
    })
}

/// A typed summary in its wire form, for job `job_id`.
pub fn summary_to_proto(job_id: &str, s: &DataSummary) -> proto::DataSummary {
    let mut out = proto::DataSummary {
        job_id: job_id.to_string(),
        rows: s.rows,
        labels: s.labels.clone(),
        ..Default::default()
    };
    for column in &s.columns {
        out.columns.push(column.name().to_string());
        match column {
            ColumnSummary::Numeric {
                name,
                count,
                mean,
                m2,
            } => out.numeric.push(proto::NumericColumn {
                name: name.clone(),
                count: *count,
                mean: *mean,
                m2: *m2,
            }),
            ColumnSummary::Categorical { name, categories } => {
                out.categorical.push(proto::CategoricalColumn {
                    name: name.clone(),
                    categories: categories.clone(),
                })
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn engine_messages_survive_the_wire() {
        let mut ext = ClientParams::new();
        ext.set_f64("dp.clip", 0.5).unwrap();
        let fit = ToClient::Fit {
            round: 3,
            params: Arc::from(vec![1.0f32, -2.0]),
            config: ClientTrainConfig {
                proximal_mu: Some(0.1),
            },
            extensions: Arc::new(ext),
        };
        let ToNode::Fit(wire) = to_coordinator_body("j", &fit).unwrap() else {
            panic!("not a Fit");
        };
        let back = Addressed::<ToClient>::try_from(wire).unwrap();
        assert_eq!(back.job_id, "j");
        assert_eq!(back.msg, fit);

        let answer = FromClient::Protocol {
            round: 3,
            stage: 2,
            payload: vec![1, 2, 3],
        };
        let body = to_node_body("j", &answer).unwrap();
        assert_eq!(from_node_body(&body, ClientId(4)).unwrap().unwrap(), answer);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let fit = proto::Fit {
            params: vec![1u8, 2, 3].into(),
            ..Default::default()
        };
        assert!(Addressed::<ToClient>::try_from(fit).is_err());
        let fit = proto::Fit {
            proximal_mu: Some(f32::NAN),
            ..Default::default()
        };
        assert!(Addressed::<ToClient>::try_from(fit).is_err());
        let p = proto::ProtocolMessage {
            stage: 300,
            ..Default::default()
        };
        assert!(Addressed::<ToClient>::try_from(p).is_err());
        let summary = proto::DataSummary {
            columns: vec!["ghost".into()],
            ..Default::default()
        };
        assert!(summary_from_proto(&summary).is_err());
    }

    #[test]
    fn summaries_round_trip() {
        let s = DataSummary {
            rows: 3,
            columns: vec![
                ColumnSummary::Numeric {
                    name: "age".into(),
                    count: 3,
                    mean: 40.0,
                    m2: 2.0,
                },
                ColumnSummary::Categorical {
                    name: "city".into(),
                    categories: vec!["a".into()],
                },
            ],
            labels: vec!["0".into(), "1".into()],
        };
        assert_eq!(summary_from_proto(&summary_to_proto("j", &s)).unwrap(), s);
    }
}
