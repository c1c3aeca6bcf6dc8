//! The engine's extension channels: what plug-ins (secure aggregation, DP-FedAvg, and, in time, HE
//! aggregation) exchange with clients and report about rounds, by name, without the engine or
//! the runtimes knowing what they mean.
//!
//! - [`ClientParams`]: per-round parameters that the coordinator's aggregate transform publishes
//!   to the round's clients (e.g. DP-FedAvg's clipping bound under adaptive clipping). They
//!   travel with every [`ToClient::Fit`](crate::engine::ToClient::Fit); a networked runtime
//!   carries them in one generic field. To a client they are untrusted input: every plug-in
//!   checks what it reads against its own copy of the job.
//! - [`UpdateContext`]: what a client's [`UpdateTransform`](crate::UpdateTransform)s see while
//!   they transform an update: the published parameters, and `local` parameters that they set
//!   for the client's own aggregation protocol (e.g. the noise a SecAgg+ client must add under
//!   distributed DP). The coordinator cannot set local parameters.
//! - [`RoundDetails`]: per-round facts that the protocol and the aggregate transform report
//!   (SecAgg+'s graph, the privacy spent), keyed by name, as JSON values; they end up in the
//!   round's [`RoundReport`](crate::engine::RoundReport), the simulation's `metrics.json`, the
//!   coordinator's store and `privet status`.

use std::collections::BTreeMap;
use std::fmt;

use crate::{ClientId, FlError};

/// Most entries in a [`ClientParams`].
pub const MAX_PARAMS: usize = 64;
/// Longest parameter or detail name.
pub const MAX_NAME_LEN: usize = 64;
/// Largest parameter value in bytes.
pub const MAX_PARAM_BYTES: usize = 64 << 10;

/// Checks a parameter or detail name: 1 to 64 of `a-z 0-9 . _ -`.
pub fn check_name(name: &str) -> Result<(), FlError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(FlError::InvalidConfig(format!(
            "invalid extension name {:?} (1-{MAX_NAME_LEN} of a-z 0-9 . _ -)",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Named per-round parameters for clients (see the [module documentation](self)).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientParams(BTreeMap<String, Vec<u8>>);

impl ClientParams {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to raw bytes.
    pub fn set_bytes(&mut self, name: &str, value: Vec<u8>) -> Result<(), FlError> {
        check_name(name)?;
        if value.len() > MAX_PARAM_BYTES {
            return Err(FlError::InvalidConfig(format!(
                "parameter {name}: {} bytes, more than {MAX_PARAM_BYTES}",
                value.len()
            )));
        }
        if !self.0.contains_key(name) && self.0.len() >= MAX_PARAMS {
            return Err(FlError::InvalidConfig(format!(
                "more than {MAX_PARAMS} client parameters"
            )));
        }
        self.0.insert(name.to_string(), value);
        Ok(())
    }

    /// Sets `name` to a number (8 bytes, little-endian IEEE 754).
    pub fn set_f64(&mut self, name: &str, value: f64) -> Result<(), FlError> {
        self.set_bytes(name, value.to_le_bytes().to_vec())
    }

    /// The raw value of `name`.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(Vec::as_slice)
    }

    /// The number under `name`; an error if it is present but not 8 bytes.
    pub fn f64(&self, name: &str) -> Result<Option<f64>, FlError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(|b| Some(f64::from_le_bytes(b)))
                .map_err(|_| {
                    FlError::Protocol(format!(
                        "client parameter {name} holds {} bytes, not a number",
                        v.len()
                    ))
                }),
        }
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every entry, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Parameters from untrusted `(name, value)` entries (e.g. off the wire), with every limit
    /// checked.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<Self, FlError> {
        let mut params = ClientParams::new();
        for (name, value) in entries {
            if params.0.contains_key(&name) {
                return Err(FlError::Protocol(format!(
                    "client parameter {name} given twice"
                )));
            }
            params.set_bytes(&name, value)?;
        }
        Ok(params)
    }
}

impl fmt::Debug for ClientParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v.len())))
            .finish()
    }
}

/// What a client's update transforms see and leave for the client's aggregation protocol.
#[derive(Debug)]
pub struct UpdateContext<'a> {
    /// The round.
    pub round: u32,
    /// The client.
    pub client: ClientId,
    /// Parameters the coordinator published for the round (untrusted: check before use).
    pub published: &'a ClientParams,
    /// Parameters set by this client's own transforms for its aggregation protocol.
    pub local: ClientParams,
}

impl<'a> UpdateContext<'a> {
    /// A context for `client` in `round` with the coordinator's `published` parameters.
    pub fn new(round: u32, client: ClientId, published: &'a ClientParams) -> Self {
        UpdateContext {
            round,
            client,
            published,
            local: ClientParams::new(),
        }
    }
}

/// Named facts about a round, as JSON values (see the [module documentation](self)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoundDetails(BTreeMap<String, serde_json::Value>);

impl RoundDetails {
    /// No details.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` under `name` (replacing an earlier value).
    pub fn insert(&mut self, name: &str, value: serde_json::Value) -> Result<(), FlError> {
        check_name(name)?;
        self.0.insert(name.to_string(), value);
        Ok(())
    }

    /// The value under `name`.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.get(name)
    }

    /// The value under `name` as `T`, if present; an error if it does not fit `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, FlError> {
        self.0
            .get(name)
            .map(|v| {
                serde_json::from_value(v.clone())
                    .map_err(|e| FlError::InvalidConfig(format!("round detail {name}: {e}")))
            })
            .transpose()
    }

    /// Whether there are no details.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every entry, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The details as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.clone().into_iter().collect())
    }

    /// Details from a JSON object (e.g. a stored row), names checked.
    pub fn from_json(value: serde_json::Value) -> Result<Self, FlError> {
        let serde_json::Value::Object(map) = value else {
            return Err(FlError::InvalidConfig(
                "round details must be a JSON object".into(),
            ));
        };
        let mut details = RoundDetails::new();
        for (name, v) in map {
            details.insert(&name, v)?;
        }
        Ok(details)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parameters_keep_numbers_and_refuse_what_breaks_the_limits() {
        let mut p = ClientParams::new();
        p.set_f64("dp.clip", 0.25).unwrap();
        assert_eq!(p.f64("dp.clip").unwrap(), Some(0.25));
        assert_eq!(p.f64("absent").unwrap(), None);
        p.set_bytes("odd", vec![1, 2, 3]).unwrap();
        assert!(p.f64("odd").is_err());
        assert!(p.set_bytes("Upper", vec![]).is_err());
        assert!(p.set_bytes("", vec![]).is_err());
        assert!(p.set_bytes("big", vec![0; MAX_PARAM_BYTES + 1]).is_err());
        let many = (0..=MAX_PARAMS).map(|i| (format!("p{i}"), vec![0u8]));
        assert!(ClientParams::from_entries(many).is_err());
        let twice = [("a".to_string(), vec![1]), ("a".to_string(), vec![2])];
        assert!(ClientParams::from_entries(twice).is_err());
    }

    #[test]
    fn details_round_trip_through_one_json_object() {
        let mut d = RoundDetails::new();
        d.insert(
            "secure_aggregation",
            serde_json::json!({"n": 3, "k": 2, "t": 2}),
        )
        .unwrap();
        let back = RoundDetails::from_json(d.to_json()).unwrap();
        assert_eq!(back, d);
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct G {
            n: u32,
        }
        assert_eq!(
            back.decode::<G>("secure_aggregation").unwrap(),
            Some(G { n: 3 })
        );
        assert!(back.decode::<G>("absent").unwrap().is_none());
        assert!(RoundDetails::from_json(serde_json::json!([1])).is_err());
    }
}
