//! The wire format: `proto/privet/v1/psi.proto`, version 1.
//!
//! [`encode`] turns a [`Message`] into the bytes of one `PsiMessage`; [`decode`] parses them
//! under [`WireLimits`] and never panics, whatever the bytes:
//!
//! * the message is refused before parsing if it is longer than
//!   [`WireLimits::max_message_bytes`];
//! * `version` must be 1 and a body must be present;
//! * nonces and keys must be 32 bytes, an encrypted sum 64, enums known, bounds ordered;
//! * element chunks must carry whole elements (32-byte points, 64-byte ciphertexts); their
//!   counts against the session (chunk size, set sizes, tag length) are the state machines'
//!   business, since only they know the session.
//!
//! Points and ciphertexts are not decompressed here; the state machines refuse non-canonical
//! encodings when they use them.

use bytes::Bytes;
use prost::Message as _;

use crate::dp::{DpConfig, ValueBounds};
use crate::elgamal::CIPHERTEXT_LEN;
use crate::error::{PsiError, Result};
use crate::group::POINT_LEN;
use crate::input::CaseRule;
use crate::messages::{
    ClientHello, ElementKind, Elements, Functionality, Message, Outcome, ServerHello,
};

/// The generated protobuf types.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/privet.v1.psi.rs"));
}

/// The wire format version.
pub const VERSION: u32 = 1;

/// Longest abort reason accepted.
const MAX_REASON: usize = 200;

/// Limits applied when parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireLimits {
    /// Largest encoded message accepted, in bytes.
    pub max_message_bytes: usize,
}

impl Default for WireLimits {
    /// 4 MiB, gRPC's default message limit.
    fn default() -> Self {
        WireLimits {
            max_message_bytes: 4 << 20,
        }
    }
}

fn functionality_to(f: Functionality) -> i32 {
    match f {
        Functionality::Cardinality => proto::Functionality::Cardinality as i32,
        Functionality::Sum => proto::Functionality::Sum as i32,
    }
}

fn functionality_from(v: i32) -> Result<Functionality> {
    match proto::Functionality::try_from(v) {
        Ok(proto::Functionality::Cardinality) => Ok(Functionality::Cardinality),
        Ok(proto::Functionality::Sum) => Ok(Functionality::Sum),
        _ => Err(PsiError::invalid("unknown functionality")),
    }
}

fn kind_to(k: ElementKind) -> i32 {
    match k {
        ElementKind::ServerBlinded => proto::ElementKind::ServerBlinded as i32,
        ElementKind::ClientBlinded => proto::ElementKind::ClientBlinded as i32,
        ElementKind::ServerTags => proto::ElementKind::ServerTags as i32,
    }
}

fn kind_from(v: i32) -> Result<ElementKind> {
    match proto::ElementKind::try_from(v) {
        Ok(proto::ElementKind::ServerBlinded) => Ok(ElementKind::ServerBlinded),
        Ok(proto::ElementKind::ClientBlinded) => Ok(ElementKind::ClientBlinded),
        Ok(proto::ElementKind::ServerTags) => Ok(ElementKind::ServerTags),
        _ => Err(PsiError::invalid("unknown element kind")),
    }
}

fn array32(b: &[u8], what: &str) -> Result<[u8; 32]> {
    b.try_into()
        .map_err(|_| PsiError::invalid(format!("{what} is not 32 bytes")))
}

/// Encodes a message as one `PsiMessage`.
pub fn encode(msg: &Message) -> Vec<u8> {
    use proto::psi_message::Body;
    let body = match msg {
        Message::ClientHello(h) => Body::ClientHello(proto::ClientHello {
            nonce: Bytes::copy_from_slice(&h.nonce),
            functionality: functionality_to(h.functionality),
            set_size: h.set_size,
            elgamal_public_key: h
                .public_key
                .map_or_else(Bytes::new, |k| Bytes::copy_from_slice(&k)),
            request_intersection: h.request_intersection,
            offer_intersection: h.offer_intersection,
            max_chunk_elements: h.max_chunk_elements,
            case_rule: h.case_rule.code(),
        }),
        Message::ServerHello(h) => Body::ServerHello(proto::ServerHello {
            nonce: Bytes::copy_from_slice(&h.nonce),
            set_size: h.set_size,
            functionality: functionality_to(h.functionality),
            bounds: h.bounds.map(|b| proto::ValueBounds {
                lower: b.lower(),
                upper: b.upper(),
            }),
            noise: h.noise.map(|n| proto::NoisePlan {
                mechanism: if n.delta.is_some() {
                    proto::Mechanism::DiscreteGaussian as i32
                } else {
                    proto::Mechanism::DiscreteLaplace as i32
                },
                epsilon: n.epsilon,
                delta: n.delta.unwrap_or(0.0),
            }),
            reveal_intersection_to_client: h.reveal_to_client,
            reveal_intersection_to_server: h.reveal_to_server,
            chunk_elements: h.chunk_elements,
        }),
        Message::Elements(e) => Body::Elements(proto::Elements {
            kind: kind_to(e.kind),
            offset: e.offset,
            points: e.points.clone(),
            ciphertexts: e.ciphertexts.clone(),
            tags: e.tags.clone(),
        }),
        Message::Outcome(o) => Body::Outcome(proto::Outcome {
            intersection_size: o.intersection_size,
            encrypted_sum: o
                .encrypted_sum
                .map_or_else(Bytes::new, |c| Bytes::copy_from_slice(&c)),
            client_membership: o.client_membership.clone().unwrap_or_default(),
        }),
        Message::Abort(reason) => Body::Abort(proto::Abort {
            reason: reason.chars().take(MAX_REASON).collect(),
        }),
    };
    proto::PsiMessage {
        version: VERSION,
        body: Some(body),
    }
    .encode_to_vec()
}

/// Parses one `PsiMessage`; see the [module documentation](self) for the checks.
pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Message> {
    if bytes.len() > limits.max_message_bytes {
        return Err(PsiError::invalid(format!(
            "a message of {} bytes exceeds the limit of {} bytes",
            bytes.len(),
            limits.max_message_bytes
        )));
    }
    let msg = proto::PsiMessage::decode(bytes)
        .map_err(|_| PsiError::invalid("not a PsiMessage (malformed protobuf)"))?;
    if msg.version != VERSION {
        return Err(PsiError::invalid(format!(
            "wire version {} is not supported (expected {VERSION})",
            msg.version
        )));
    }
    use proto::psi_message::Body;
    match msg.body {
        None => Err(PsiError::invalid("empty message")),
        Some(Body::ClientHello(h)) => {
            let functionality = functionality_from(h.functionality)?;
            let public_key = match (functionality, h.elgamal_public_key.is_empty()) {
                (Functionality::Sum, false) => {
                    Some(array32(&h.elgamal_public_key, "the public key")?)
                }
                (Functionality::Cardinality, true) => None,
                (Functionality::Sum, true) => {
                    return Err(PsiError::invalid("a sum session without a public key"));
                }
                (Functionality::Cardinality, false) => {
                    return Err(PsiError::invalid("a public key in a cardinality session"));
                }
            };
            Ok(Message::ClientHello(ClientHello {
                nonce: array32(&h.nonce, "the nonce")?,
                functionality,
                set_size: h.set_size,
                public_key,
                request_intersection: h.request_intersection,
                offer_intersection: h.offer_intersection,
                max_chunk_elements: h.max_chunk_elements,
                case_rule: CaseRule::from_code(h.case_rule)
                    .ok_or_else(|| PsiError::invalid("unknown case rule"))?,
            }))
        }
        Some(Body::ServerHello(h)) => {
            let bounds = h
                .bounds
                .map(|b| ValueBounds::new(b.lower, b.upper))
                .transpose()
                .map_err(|_| PsiError::invalid("invalid value bounds"))?;
            let noise = match h.noise {
                None => None,
                Some(n) => match proto::Mechanism::try_from(n.mechanism) {
                    Ok(proto::Mechanism::None) => None,
                    Ok(proto::Mechanism::DiscreteLaplace) => Some(DpConfig::pure(n.epsilon)),
                    Ok(proto::Mechanism::DiscreteGaussian) => {
                        Some(DpConfig::approximate(n.epsilon, n.delta))
                    }
                    Err(_) => return Err(PsiError::invalid("unknown noise mechanism")),
                },
            };
            Ok(Message::ServerHello(ServerHello {
                nonce: array32(&h.nonce, "the nonce")?,
                set_size: h.set_size,
                functionality: functionality_from(h.functionality)?,
                bounds,
                noise,
                reveal_to_client: h.reveal_intersection_to_client,
                reveal_to_server: h.reveal_intersection_to_server,
                chunk_elements: h.chunk_elements,
            }))
        }
        Some(Body::Elements(e)) => {
            let kind = kind_from(e.kind)?;
            if !e.points.len().is_multiple_of(POINT_LEN)
                || !e.ciphertexts.len().is_multiple_of(CIPHERTEXT_LEN)
            {
                return Err(PsiError::invalid("a chunk carries a partial element"));
            }
            Ok(Message::Elements(Elements {
                kind,
                offset: e.offset,
                points: e.points,
                ciphertexts: e.ciphertexts,
                tags: e.tags,
            }))
        }
        Some(Body::Outcome(o)) => Ok(Message::Outcome(Outcome {
            intersection_size: o.intersection_size,
            encrypted_sum: if o.encrypted_sum.is_empty() {
                None
            } else {
                Some(
                    o.encrypted_sum
                        .as_ref()
                        .try_into()
                        .map_err(|_| PsiError::invalid("the encrypted sum is not 64 bytes"))?,
                )
            },
            client_membership: (!o.client_membership.is_empty()).then_some(o.client_membership),
        })),
        Some(Body::Abort(a)) => {
            let reason: String = a
                .reason
                .chars()
                .take(MAX_REASON)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            Ok(Message::Abort(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(msg: Message) {
        let bytes = encode(&msg);
        assert_eq!(decode(&bytes, &WireLimits::default()).unwrap(), msg);
    }

    #[test]
    fn messages_round_trip() {
        check(Message::ClientHello(ClientHello {
            nonce: [7; 32],
            functionality: Functionality::Sum,
            set_size: 12,
            public_key: Some([9; 32]),
            request_intersection: true,
            offer_intersection: false,
            max_chunk_elements: 100,
            case_rule: CaseRule::Lower,
        }));
        check(Message::ServerHello(ServerHello {
            nonce: [1; 32],
            set_size: 3,
            functionality: Functionality::Sum,
            bounds: Some(ValueBounds::new(-5, 10).unwrap()),
            noise: Some(DpConfig::approximate(1.0, 1e-6)),
            reveal_to_client: false,
            reveal_to_server: true,
            chunk_elements: 50,
        }));
        check(Message::Elements(Elements {
            kind: ElementKind::ClientBlinded,
            offset: 4,
            points: Bytes::from(vec![1u8; 64]),
            ciphertexts: Bytes::from(vec![2u8; 128]),
            tags: Bytes::new(),
        }));
        check(Message::Outcome(Outcome {
            intersection_size: -2,
            encrypted_sum: Some([3; 64]),
            client_membership: Some(Bytes::from_static(&[0b101])),
        }));
        check(Message::Abort("session parameters refused".into()));
    }

    #[test]
    fn hostile_bytes_are_refused_not_panicked_on() {
        let limits = WireLimits::default();
        assert!(decode(&[], &limits).is_err()); // no body
        assert!(decode(&[0xff; 10], &limits).is_err());
        let big = vec![0u8; limits.max_message_bytes + 1];
        assert!(
            decode(&big, &limits)
                .unwrap_err()
                .to_string()
                .contains("exceeds")
        );
        // Version 2.
        let v2 = proto::PsiMessage {
            version: 2,
            body: Some(proto::psi_message::Body::Abort(proto::Abort {
                reason: "x".into(),
            })),
        }
        .encode_to_vec();
        assert!(
            decode(&v2, &limits)
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
        // A partial point.
        let partial = proto::PsiMessage {
            version: 1,
            body: Some(proto::psi_message::Body::Elements(proto::Elements {
                kind: 1,
                offset: 0,
                points: Bytes::from(vec![0u8; 33]),
                ..Default::default()
            })),
        }
        .encode_to_vec();
        assert!(decode(&partial, &limits).is_err());
        // A short nonce.
        let short = proto::PsiMessage {
            version: 1,
            body: Some(proto::psi_message::Body::ClientHello(proto::ClientHello {
                nonce: Bytes::from(vec![0u8; 5]),
                functionality: 1,
                case_rule: 1,
                ..Default::default()
            })),
        }
        .encode_to_vec();
        assert!(decode(&short, &limits).is_err());
    }
}
