//! Feeds arbitrary bytes to both sides of SecAgg+ at every stage: as the payload a client
//! receives from the coordinator, and as the payload the coordinator receives from a client.
//! Nothing may panic; a malformed message must be refused.
//!
//! Run with `cargo +nightly fuzz run messages` from `crates/privet-secagg/fuzz`.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use privet_fl::engine::{
    AggregationProtocol, ClientProtocol, FromClient, LocalTrainer, StageContext, StageOutcome,
    ToClient,
};
use privet_fl::{ClientId, ClientTrainConfig, FlError, TrainMetrics};
use privet_secagg::{KeyMap, SecAggClient, SecAggConfig, SecAggProtocol, SigningKey};

const N: u32 = 4;
const MODEL_LEN: usize = 3;

struct Step;

impl LocalTrainer for Step {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        let metrics = TrainMetrics { loss: 1.0, num_examples: 3 };
        Ok((params.iter().map(|p| p + 0.5).collect(), metrics))
    }
}

/// Both sides of a round of N clients.
struct Round {
    protocol: SecAggProtocol,
    clients: Vec<SecAggClient>,
}

fn ctx<'a>(stage: u8, ids: &'a [ClientId], participants: &'a [ClientId]) -> StageContext<'a> {
    StageContext { round: 1, stage, model_len: MODEL_LEN, selected: ids, participants }
}

/// Runs a round up to (not including) stage `upto`; returns it, that stage's messages and
/// participants.
fn round_at(upto: u8, ids: &[ClientId]) -> Option<(Round, Vec<(ClientId, ToClient)>, Vec<ClientId>)> {
    let keys: Vec<SigningKey> =
        (1..=N).map(|i| SigningKey::from_bytes(&[i as u8; 32])).collect();
    let directory: Arc<KeyMap> =
        Arc::new(ids.iter().zip(&keys).map(|(&c, k)| (c, k.verifying_key())).collect());
    let config = SecAggConfig::default();
    let protocol = SecAggProtocol::new(config.clone(), directory.clone()).ok()?;
    let clients = ids
        .iter()
        .zip(keys)
        .map(|(&c, k)| SecAggClient::new(c, k, directory.clone(), config.clone()))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let mut round = Round { protocol, clients };
    let params: Arc<[f32]> = Arc::from(vec![0.0f32; MODEL_LEN]);
    let mut participants = ids.to_vec();
    let mut messages = round
        .protocol
        .begin(&ctx(0, ids, &participants), &params, &ClientTrainConfig::default())
        .ok()?;
    for stage in 0..upto {
        let mut survivors = Vec::new();
        for (to, msg) in messages {
            let client = round.clients.get_mut((to.0 - 1) as usize)?;
            let answer = client.respond(&msg, &mut Step, &[]).ok()?;
            round.protocol.receive(&ctx(stage, ids, &participants), to, answer).ok()?;
            survivors.push(to);
        }
        match round.protocol.end_stage(&ctx(stage, ids, &participants), &survivors).ok()? {
            StageOutcome::Next(next) => messages = next,
            _ => return None,
        }
        participants = survivors;
    }
    Some((round, messages, participants))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let ids: Vec<ClientId> = (1..=N).map(ClientId).collect();
    let stage = selector % 4;
    if selector & 0x80 == 0 {
        // Client side: the payload as the coordinator's stage message (stages 1 to 3).
        let stage = stage.max(1);
        let Some((mut round, _, _)) = round_at(stage, &ids) else { return };
        let msg = ToClient::Protocol { round: 1, stage, payload: payload.to_vec() };
        let _ = round.clients[0].respond(&msg, &mut Step, &[]);
    } else {
        // Coordinator side: the payload as client 1's answer to stage `stage`.
        let Some((mut round, _, participants)) = round_at(stage, &ids) else { return };
        let msg = FromClient::Protocol { round: 1, stage, payload: payload.to_vec() };
        let _ = round.protocol.receive(&ctx(stage, &ids, &participants), ClientId(1), msg);
    }
});
