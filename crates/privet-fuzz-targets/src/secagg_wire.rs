//! SecAgg+ messages (privet-secagg wire): the first byte picks a receiver, the rest is the
//! payload. Every payload goes through `wire::inspect` (all decoders, stateless); then, by the
//! selector, to a client that has advertised its keys (as a message of stage 1, 2 or 3) or to
//! the coordinator at stage 0 (as a key advertisement).

use std::sync::Arc;

use privet_fl::engine::{
    AggregationProtocol, ClientProtocol, FromClient, LocalTrainer, StageContext, ToClient,
};
use privet_fl::{ClientId, ClientParams, ClientTrainConfig, FlError, TrainMetrics};
use privet_secagg::{KeyMap, SecAggClient, SecAggConfig, SecAggProtocol, SigningKey, wire};

struct Step;

impl LocalTrainer for Step {
    fn fit(
        &mut self,
        _round: u32,
        params: &[f32],
        _config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError> {
        Ok((
            params.iter().map(|p| p + 0.25).collect(),
            TrainMetrics {
                loss: 0.5,
                num_examples: 10,
            },
        ))
    }
}

const MODEL_LEN: usize = 3;

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let config = SecAggConfig::default();
    let _ = wire::inspect(
        payload,
        config.max_clients as usize,
        MODEL_LEN,
        config.modulus_bits,
    );

    let ids: Vec<ClientId> = (1..=4).map(ClientId).collect();
    let keys: Vec<SigningKey> = (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let directory: Arc<KeyMap> = Arc::new(
        ids.iter()
            .zip(&keys)
            .map(|(&id, k)| (id, k.verifying_key()))
            .collect(),
    );
    let params = vec![0.0f32; MODEL_LEN];
    if selector % 4 == 0 {
        // The coordinator, stage 0 of round 1, receiving an advertisement from client 1.
        let Ok(mut protocol) = SecAggProtocol::new(config, directory) else {
            return;
        };
        let ctx = StageContext {
            round: 1,
            stage: 0,
            model_len: MODEL_LEN,
            selected: &ids,
            participants: &ids,
        };
        let shared: Arc<[f32]> = Arc::from(params);
        if protocol
            .begin(
                &ctx,
                &shared,
                &ClientTrainConfig::default(),
                &Arc::new(ClientParams::new()),
            )
            .is_err()
        {
            return;
        }
        let msg = FromClient::Protocol {
            round: 1,
            stage: 0,
            payload: payload.to_vec(),
        };
        let _ = protocol.receive(&ctx, ClientId(1), msg);
        let _ = protocol.end_stage(&ctx, &ids[..1]);
    } else {
        // Client 1 after stage 0 of round 1, receiving a message of stage 1, 2 or 3.
        let Ok(mut client) = SecAggClient::new(ids[0], keys[0].clone(), directory, config) else {
            return;
        };
        let fit = ToClient::Fit {
            round: 1,
            params: Arc::from(params),
            config: ClientTrainConfig::default(),
            extensions: Arc::new(ClientParams::new()),
        };
        if client.respond(&fit, &mut Step, &[]).is_err() {
            return;
        }
        let msg = ToClient::Protocol {
            round: 1,
            stage: selector % 4,
            payload: payload.to_vec(),
        };
        let _ = client.respond(&msg, &mut Step, &[]);
    }
}
