//! Messages from outside are refused with an error, never a panic: malformed, truncated,
//! replayed (earlier round), wrong-round and wrong-stage messages, bad signatures, lying
//! coordinators, and random mutations of both sides' messages.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::{Fixture, Trainer};
use privet_fl::engine::{
    AggregationProtocol, ClientProtocol, FromClient, RejectReason, RoundOutcome, StageContext,
    StageOutcome, ToClient,
};
use privet_fl::{ClientId, ClientTrainConfig, FlError};
use privet_secagg::{KeyMap, MaskPrg, SecAggClient, SecAggConfig, SecAggProtocol};
use proptest::prelude::*;

/// Drives `SecAggProtocol` and the clients directly, stage by stage, without the engine.
struct Manual {
    protocol: SecAggProtocol,
    clients: Vec<SecAggClient>,
    trainers: Vec<Trainer>,
    ids: Vec<ClientId>,
    round: u32,
    stage: u8,
    participants: Vec<ClientId>,
    model_len: usize,
}

fn idx(c: ClientId) -> usize {
    c.0 as usize - 1
}

impl Manual {
    fn new(fx: &Fixture, model_len: usize) -> Self {
        Manual {
            protocol: SecAggProtocol::new(fx.config.clone(), fx.directory.clone()).unwrap(),
            clients: (0..fx.ids.len()).map(|i| fx.client(i)).collect(),
            trainers: fx.ids.iter().map(|&c| Trainer::new(c)).collect(),
            ids: fx.ids.clone(),
            round: 0,
            stage: 0,
            participants: Vec::new(),
            model_len,
        }
    }

    /// Starts the next round: the stage-0 messages.
    fn begin(&mut self) -> Vec<(ClientId, ToClient)> {
        self.round += 1;
        self.stage = 0;
        self.participants = self.ids.clone();
        let params: Arc<[f32]> = Arc::from(vec![0.0f32; self.model_len]);
        let ctx = StageContext {
            round: self.round,
            stage: 0,
            model_len: self.model_len,
            selected: &self.ids,
            participants: &self.ids,
        };
        self.protocol
            .begin(
                &ctx,
                &params,
                &ClientTrainConfig::default(),
                &Arc::default(),
            )
            .unwrap()
    }

    fn answer(&mut self, to: ClientId, msg: &ToClient) -> Result<FromClient, FlError> {
        let i = idx(to);
        self.clients[i].respond(msg, &mut self.trainers[i], &[])
    }

    fn receive(&mut self, from: ClientId, msg: FromClient) -> Result<(), RejectReason> {
        let ctx = StageContext {
            round: self.round,
            stage: self.stage,
            model_len: self.model_len,
            selected: &self.ids,
            participants: &self.participants,
        };
        self.protocol.receive(&ctx, from, msg)
    }

    /// Delivers `msgs`, feeds the answers back, ends the stage; returns the next messages or
    /// the outcome.
    fn step(&mut self, msgs: Vec<(ClientId, ToClient)>) -> StageOutcome {
        let mut survivors = Vec::new();
        for (to, msg) in msgs {
            if let Ok(answer) = self.answer(to, &msg)
                && self.receive(to, answer).is_ok()
            {
                survivors.push(to);
            }
        }
        self.end(&survivors)
    }

    fn end(&mut self, survivors: &[ClientId]) -> StageOutcome {
        let ctx = StageContext {
            round: self.round,
            stage: self.stage,
            model_len: self.model_len,
            selected: &self.ids,
            participants: &self.participants,
        };
        let outcome = self.protocol.end_stage(&ctx, survivors).unwrap();
        self.stage += 1;
        self.participants = survivors.to_vec();
        outcome
    }

    /// Runs the stages up to (not including) `stage` of a new round; returns that stage's
    /// messages.
    fn until(&mut self, stage: u8) -> Vec<(ClientId, ToClient)> {
        let mut msgs = self.begin();
        while self.stage < stage {
            match self.step(msgs) {
                StageOutcome::Next(next) => msgs = next,
                other => panic!("{other:?}"),
            }
        }
        msgs
    }
}

fn payload_of(msg: &ToClient) -> Vec<u8> {
    match msg {
        ToClient::Protocol { payload, .. } => payload.clone(),
        _ => panic!("not a protocol message"),
    }
}

fn with_payload(msg: &ToClient, payload: Vec<u8>) -> ToClient {
    match msg {
        ToClient::Protocol { round, stage, .. } => ToClient::Protocol {
            round: *round,
            stage: *stage,
            payload,
        },
        _ => panic!("not a protocol message"),
    }
}

fn message_for(msgs: &[(ClientId, ToClient)], c: u32) -> ToClient {
    msgs.iter()
        .find(|(to, _)| *to == ClientId(c))
        .unwrap()
        .1
        .clone()
}

/// The error text of a refused message.
fn refused(r: Result<FromClient, FlError>) -> String {
    match r {
        Ok(answer) => panic!("accepted: {answer:?}"),
        Err(e) => e.to_string(),
    }
}

fn done(outcome: StageOutcome) -> bool {
    matches!(outcome, StageOutcome::Done(_))
}

#[test]
fn clients_refuse_messages_of_other_rounds_and_stages_and_carry_on() {
    let fx = Fixture::new(4, SecAggConfig::default());
    let mut m = Manual::new(&fx, 3);
    // Round 1 runs to completion, remembering client 1's stage-1 message.
    let mut msgs = m.until(1);
    let old = message_for(&msgs, 1);
    loop {
        match m.step(msgs) {
            StageOutcome::Next(next) => msgs = next,
            other => {
                assert!(done(other));
                break;
            }
        }
    }
    let msgs = m.until(1);
    let genuine = message_for(&msgs, 1);
    let c1 = ClientId(1);
    // The round-1 message as it was, and its payload under the round-2 wrapper.
    assert!(refused(m.answer(c1, &old)).contains("round 1, expected round 2"));
    let replay = with_payload(&genuine, payload_of(&old));
    assert!(refused(m.answer(c1, &replay)).contains("round 1, expected round 2"));
    // The stage-1 payload announced as stage 2.
    let ToClient::Protocol { payload, .. } = &genuine else {
        unreachable!()
    };
    let wrong_stage = ToClient::Protocol {
        round: 2,
        stage: 2,
        payload: payload.clone(),
    };
    assert!(refused(m.answer(c1, &wrong_stage)).contains("stage 2, expected stage 1"));
    // Truncated, empty, garbage.
    for bad in [
        payload[..payload.len() - 1].to_vec(),
        vec![],
        vec![1, 2, 2, 0, 0, 0, 7],
    ] {
        let err = refused(m.answer(c1, &with_payload(&genuine, bad)));
        assert!(err.contains("malformed"), "{err}");
    }
    // A duplicate training request for the running round.
    let fit = ToClient::Fit {
        round: 2,
        params: Arc::from(vec![0.0f32; 3]),
        config: ClientTrainConfig::default(),
        extensions: Arc::default(),
    };
    assert!(refused(m.answer(c1, &fit)).contains("already started"));
    // None of that disturbed the round: it completes with everyone.
    let mut msgs = msgs;
    loop {
        match m.step(msgs) {
            StageOutcome::Next(next) => msgs = next,
            StageOutcome::Done(privet_fl::engine::ProtocolOutput::Sum(out)) => {
                assert_eq!(out.contributors, fx.ids);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn clients_refuse_forged_keys_and_a_lying_coordinator() {
    let fx = Fixture::new(5, SecAggConfig::default());
    // Each case corrupts client 1's stage-1 payload and names the refusal.
    type Corrupt = fn(&mut Vec<u8>);
    let cases: [(Corrupt, &str); 4] = [
        // First advertisement's signature: header 6, k 4, t 4, seed 32, members 4 + 4·5,
        // count 4, then (id 4, keys 96, commitment 32, signature 64).
        (|p| p[74 + 100 + 10] ^= 1, "bad signature"),
        // Its mask key.
        (|p| p[74 + 40] ^= 1, "bad signature"),
        (|p| p[6] = 2, "the coordinator set k = 2"),
        (|p| p[10] = 2, "t = 2"),
    ];
    for (corrupt, expect) in cases {
        let mut m = Manual::new(&fx, 3);
        let msgs = m.until(1);
        let genuine = message_for(&msgs, 1);
        let mut payload = payload_of(&genuine);
        corrupt(&mut payload);
        let err = refused(m.answer(ClientId(1), &with_payload(&genuine, payload)));
        assert!(err.contains(expect), "{err}");
        // A protocol violation ends the client's part in the round.
        assert!(refused(m.answer(ClientId(1), &genuine)).contains("no round is in progress"));
    }
    // A member list that leaves the recipient out (the last id, 5, becomes 99).
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(1);
    let genuine = message_for(&msgs, 5);
    let mut payload = payload_of(&genuine);
    payload[66..70].copy_from_slice(&99u32.to_le_bytes());
    let err = refused(m.answer(ClientId(5), &with_payload(&genuine, payload)));
    assert!(err.contains("not among the members"), "{err}");

    // In a Harary graph, another graph seed gives other neighbours.
    let config = SecAggConfig {
        degree: Some(4),
        ..Default::default()
    };
    let fx = Fixture::new(12, config);
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(1);
    let genuine = message_for(&msgs, 1);
    let mut payload = payload_of(&genuine);
    payload[14] ^= 1;
    let err = refused(m.answer(ClientId(1), &with_payload(&genuine, payload)));
    assert!(
        err.contains("not those of this client's neighbours"),
        "{err}"
    );
}

#[test]
fn clients_refuse_tampered_shares_and_double_reveals() {
    let fx = Fixture::new(5, SecAggConfig::default());
    // A flipped ciphertext byte in the routed shares.
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(2);
    let genuine = message_for(&msgs, 2);
    let mut payload = payload_of(&genuine);
    let last = payload.len() - 1;
    payload[last] ^= 0x80;
    let err = refused(m.answer(ClientId(2), &with_payload(&genuine, payload)));
    assert!(err.contains("do not decrypt"), "{err}");

    // Shares claimed to come from a non-neighbour (here: the client itself).
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(2);
    let genuine = message_for(&msgs, 2);
    let mut payload = payload_of(&genuine);
    // Entries start after header 6 and count 4; client 2's first sender is client 1.
    payload[10..14].copy_from_slice(&2u32.to_le_bytes());
    let err = refused(m.answer(ClientId(2), &with_payload(&genuine, payload)));
    assert!(err.contains("not a neighbour"), "{err}");

    // Stage 3: asking for both secrets of a neighbour, or an inconsistent list.
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(3);
    let genuine = message_for(&msgs, 3);
    // Survivors 1, 2, 4, 5 and no dropouts; ask for 1 both ways, or leave 5 out.
    let request = |survivors: &[u32], dropped: &[u32]| {
        let mut p = vec![2u8, 6];
        p.extend_from_slice(&1u32.to_le_bytes());
        for list in [survivors, dropped] {
            p.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for id in list {
                p.extend_from_slice(&id.to_le_bytes());
            }
        }
        with_payload(&genuine, p)
    };
    let err = refused(m.answer(ClientId(3), &request(&[1, 2, 4, 5], &[1])));
    assert!(err.contains("both secrets of client 1"), "{err}");
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(3);
    let genuine3 = message_for(&msgs, 3);
    assert_eq!(
        payload_of(&genuine3),
        payload_of(&request(&[1, 2, 4, 5], &[]))
    );
    let err = refused(m.answer(ClientId(3), &request(&[1, 2, 4], &[])));
    assert!(err.contains("not the neighbours whose shares"), "{err}");
    // The genuine request is answered once; a repeat is refused.
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(3);
    let genuine3 = message_for(&msgs, 3);
    m.answer(ClientId(3), &genuine3).unwrap();
    assert!(refused(m.answer(ClientId(3), &genuine3)).contains("no round is in progress"));
}

#[test]
fn the_coordinator_refuses_forged_misaddressed_and_replayed_messages() {
    let fx = Fixture::new(5, SecAggConfig::default());
    let mut m = Manual::new(&fx, 3);
    let msgs = m.begin();
    let mut answers: Vec<(ClientId, FromClient)> = msgs
        .iter()
        .map(|(to, msg)| (*to, m.answer(*to, msg).unwrap()))
        .collect();
    let payload = |a: &FromClient| match a {
        FromClient::Protocol { payload, .. } => payload.clone(),
        _ => unreachable!(),
    };
    let reject = |m: &mut Manual, from: u32, p: Vec<u8>| -> String {
        let msg = FromClient::Protocol {
            round: m.round,
            stage: m.stage,
            payload: p,
        };
        match m.receive(ClientId(from), msg) {
            Err(RejectReason::Protocol(why)) => why,
            other => panic!("{other:?}"),
        }
    };
    let ad1 = payload(&answers[0].1);
    // A flipped signature byte; keys advertised under another id; another client's message.
    let mut bad = ad1.clone();
    bad[6 + 4 + 1 + 96 + 3] ^= 4;
    assert!(reject(&mut m, 1, bad).contains("bad signature"));
    let mut other_id = ad1.clone();
    other_id[6..10].copy_from_slice(&2u32.to_le_bytes());
    assert!(reject(&mut m, 2, other_id).contains("bad signature"));
    assert!(reject(&mut m, 2, ad1.clone()).contains("keys advertised for client 1"));
    // A stage-0 payload of another round.
    let mut replay = ad1.clone();
    replay[2..6].copy_from_slice(&7u32.to_le_bytes());
    assert!(reject(&mut m, 1, replay).contains("round 7, expected round 1"));
    // A small-order key, properly signed, would need the identity key: the coordinator checks
    // keys after the signature, so a forged key fails on the signature first.
    let mut zero_key = ad1.clone();
    zero_key[11..43].fill(0);
    assert!(reject(&mut m, 1, zero_key).contains("bad signature"));
    // A plain update is not accepted by this protocol.
    let update = FromClient::Update {
        round: 1,
        update: privet_fl::ClientUpdate {
            client: ClientId(1),
            delta: vec![0.0; 3],
            num_examples: 1,
            metrics: privet_fl::TrainMetrics::default(),
        },
    };
    assert_eq!(
        m.receive(ClientId(1), update),
        Err(RejectReason::UnexpectedMessage)
    );

    // The genuine answers go through; stage 1.
    for (from, a) in answers.drain(..) {
        m.receive(from, a).unwrap();
    }
    let StageOutcome::Next(msgs) = m.end(&fx.ids) else {
        panic!()
    };
    let a1 = m.answer(ClientId(1), &message_for(&msgs, 1)).unwrap();
    let shares = payload(&a1);
    // A stage-0 payload in stage 1, shares to a wrong recipient, a truncated list.
    assert!(reject(&mut m, 1, ad1).contains("expected stage 1"));
    let mut misaddressed = shares.clone();
    misaddressed[10..14].copy_from_slice(&1u32.to_le_bytes());
    assert!(reject(&mut m, 1, misaddressed).contains("exactly the sender's neighbours"));
    assert!(reject(&mut m, 1, shares[..shares.len() - 3].to_vec()).contains("truncated"));
    m.receive(ClientId(1), a1).unwrap();
}

#[test]
fn unknown_clients_are_refused() {
    let fx = Fixture::new(4, SecAggConfig::default());
    // Client 4 is not enrolled in the coordinator's directory.
    let enrolled: KeyMap = fx
        .ids
        .iter()
        .zip(&fx.keys)
        .take(3)
        .map(|(&id, k)| (id, k.verifying_key()))
        .collect();
    let protocol = SecAggProtocol::new(fx.config.clone(), Arc::new(enrolled)).unwrap();
    let mut m = Manual::new(&fx, 3);
    m.protocol = protocol;
    let msgs = m.begin();
    let (to, msg) = msgs.last().unwrap().clone();
    let answer = m.answer(to, &msg).unwrap();
    match m.receive(to, answer) {
        Err(RejectReason::Protocol(why)) => assert!(why.contains("not in the key directory")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sum_only_strategies_are_required() {
    let fx = Fixture::new(3, SecAggConfig::default());
    let protocol = SecAggProtocol::new(fx.config.clone(), fx.directory.clone()).unwrap();
    let engine = privet_fl::engine::EngineConfig {
        rounds: 1,
        sampler: privet_fl::ClientSampler {
            size: privet_fl::SampleSize::Fraction(1.0),
            min_clients: 1,
            seed: 0,
        },
        min_clients: 1,
        max_retries: 0,
    };
    let median = privet_fl::StrategyConfig::Median.build().unwrap();
    let err = privet_fl::engine::Coordinator::new(engine, median, Box::new(protocol), vec![0.0])
        .unwrap_err();
    assert!(matches!(err, FlError::Unsupported(_)), "{err}");
}

#[test]
fn invalid_configurations_are_refused_at_construction() {
    let fx = Fixture::new(3, SecAggConfig::default());
    let bad = [
        SecAggConfig {
            clipping_range: 0.0,
            ..Default::default()
        },
        SecAggConfig {
            modulus_bits: 8,
            ..Default::default()
        },
        SecAggConfig {
            modulus_bits: 65,
            ..Default::default()
        },
        SecAggConfig {
            max_clients: 2,
            ..Default::default()
        },
        SecAggConfig {
            max_weight: 0,
            ..Default::default()
        },
        // 2^16 levels cannot hold 1000 clients' sums with 256 levels each.
        SecAggConfig {
            modulus_bits: 16,
            ..Default::default()
        },
        // 1000 clients of weight up to 2^32 overflow 32 bits.
        SecAggConfig {
            max_weight: 1 << 32,
            ..Default::default()
        },
        SecAggConfig {
            corrupt_fraction: 0.5,
            ..Default::default()
        },
        SecAggConfig {
            degree: Some(5),
            ..Default::default()
        },
        SecAggConfig {
            reconstruction_threshold: Some(privet_secagg::Threshold::Absolute(1)),
            ..Default::default()
        },
        SecAggConfig {
            max_loss: f64::NAN,
            ..Default::default()
        },
    ];
    for config in bad {
        let err = SecAggProtocol::new(config.clone(), fx.directory.clone()).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid secure aggregation configuration"),
            "{err}"
        );
        assert!(
            SecAggClient::new(
                ClientId(1),
                fx.keys[0].clone(),
                fx.directory.clone(),
                config
            )
            .is_err()
        );
    }
    // Unknown keys in a job file are refused by name.
    let err = toml::from_str::<SecAggConfig>("clip_range = 3.0").unwrap_err();
    assert!(err.to_string().contains("clip_range"), "{err}");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let fx = Fixture::new(3, SecAggConfig::default());
    let mut m = Manual::new(&fx, 3);
    let _ = m.until(2);
    let text = format!("{:?} {:?}", m.clients[0], m.protocol);
    assert!(text.contains("awaiting stage 2 of round 1"), "{text}");
    assert!(!text.to_lowercase().contains("secret_key"), "{text}");
    assert!(!text.contains("Scalar("), "{text}");
}

/// Where a mutation hits.
#[derive(Clone, Debug)]
struct Mutation {
    client: u32,
    stage: u8,
    /// (position, xor) pairs, positions taken modulo the payload length.
    flips: Vec<(usize, u8)>,
    truncate: Option<usize>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        1u32..=6,
        0u8..4,
        prop::collection::vec((any::<usize>(), 1u8..=255), 0..3),
        prop::option::weighted(0.3, any::<usize>()),
    )
        .prop_map(|(client, stage, flips, truncate)| Mutation {
            client,
            stage,
            flips,
            truncate,
        })
}

fn mutate(payload: &mut Vec<u8>, m: &Mutation) {
    if !payload.is_empty() {
        for &(at, x) in &m.flips {
            let i = at % payload.len();
            payload[i] ^= x;
        }
    }
    if let Some(len) = m.truncate {
        payload.truncate(len % (payload.len() + 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// One client's answer at one stage is mutated on its way to the coordinator, through the
    /// real engine. Nothing panics; the round completes or aborts; a completed round is exact
    /// unless the mutation hit the masked input itself (which nothing can check).
    #[test]
    fn mutated_client_messages_never_break_the_coordinator(m in mutation()) {
        let fx = Fixture::new(6, SecAggConfig::default());
        let mut sim = fx.sim(1, 4, 0);
        let target = m.clone();
        sim.tamper_from = Some(Box::new(move |from, msg| {
            if let FromClient::Protocol { stage, payload, .. } = msg
                && from == ClientId(target.client)
                && *stage == target.stage
            {
                mutate(payload, &target);
            }
        }));
        let (outcome, before) = sim.run_round();
        if let RoundOutcome::Completed(report) = outcome
            && m.stage != 2
        {
            let got = sim.monitor.last_sum_words().unwrap();
            let want = sim.expected_sum(1, &before, &report.completed);
            prop_assert_eq!(&got[..], &want[..]);
        }
    }

    /// One coordinator message to one client is mutated: the client refuses it or answers;
    /// nothing panics, and a completed round is exact (the clients' checks and the
    /// coordinator's commitments catch what the mutation breaks).
    #[test]
    fn mutated_coordinator_messages_never_break_a_client(m in mutation()) {
        let fx = Fixture::new(6, SecAggConfig::default());
        let mut sim = fx.sim(1, 4, 0);
        let target = m.clone();
        sim.tamper_to = Some(Box::new(move |to, msg| {
            if let ToClient::Protocol { stage, payload, .. } = msg
                && to == ClientId(target.client)
                && *stage == target.stage.max(1)
            {
                mutate(payload, &target);
            }
        }));
        let (outcome, before) = sim.run_round();
        if let RoundOutcome::Completed(report) = outcome {
            let got = sim.monitor.last_sum_words().unwrap();
            let want = sim.expected_sum(1, &before, &report.completed);
            prop_assert_eq!(&got[..], &want[..]);
        }
    }

    /// Random bytes as any stage's message, to a client in any state: an error, and the
    /// client's round goes on when the bytes do not parse.
    #[test]
    fn random_bytes_never_break_a_client(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        at in 1u8..4,
        claimed in 0u8..5,
    ) {
        let fx = Fixture::new(3, SecAggConfig::default());
        let mut m = Manual::new(&fx, 2);
        let msgs = m.until(at);
        let msg = ToClient::Protocol { round: 1, stage: claimed, payload: bytes };
        prop_assert!(m.answer(ClientId(1), &msg).is_err());
        // The genuine message is still answered (random bytes never parse as a valid one
        // for the right stage, except with negligible probability).
        prop_assert!(m.answer(ClientId(1), &message_for(&msgs, 1)).is_ok());
    }
}

/// The mask generator is part of the signed advertisement: a coordinator refuses a client that
/// expands masks with another generator than the round's, and a client refuses a neighbour's
/// (validly signed) keys for another generator, since their masks would not cancel.
#[test]
fn a_mask_generator_mismatch_is_refused_by_both_ends() {
    let fx = Fixture::new(5, SecAggConfig::default());
    // Coordinator side: client 1 is configured for ChaCha20, the round for AES-128-CTR.
    let mut m = Manual::new(&fx, 3);
    let chacha = SecAggConfig {
        mask_prg: MaskPrg::ChaCha20,
        ..SecAggConfig::default()
    };
    m.clients[0] =
        SecAggClient::new(fx.ids[0], fx.keys[0].clone(), fx.directory.clone(), chacha).unwrap();
    let msgs = m.begin();
    let answer = m.answer(ClientId(1), &message_for(&msgs, 1)).unwrap();
    let err = m.receive(ClientId(1), answer).unwrap_err();
    assert!(
        format!("{err:?}").contains("expands masks with chacha20, the round uses aes128-ctr"),
        "{err:?}"
    );
    // The others are accepted.
    let answer = m.answer(ClientId(2), &message_for(&msgs, 2)).unwrap();
    m.receive(ClientId(2), answer).unwrap();

    // Client side: a stage-1 message whose first neighbour advertisement names ChaCha20 (id 1)
    // and is re-signed by that neighbour's own identity key.
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(1);
    let genuine = message_for(&msgs, 1);
    let mut payload = payload_of(&genuine);
    let round = m.round;
    // Layout (wire version 2): header 6, k 4, t 4, seed 32, members (count 4 + 4 each),
    // neighbours (count 4 + 165-byte advertisements).
    let members = u32::from_le_bytes(payload[46..50].try_into().unwrap()) as usize;
    let first = 50 + 4 * members + 4;
    let ad = &mut payload[first..first + 165];
    let owner = u32::from_le_bytes(ad[..4].try_into().unwrap());
    assert_eq!(ad[4], MaskPrg::Aes128Ctr.id());
    ad[4] = MaskPrg::ChaCha20.id();
    let mut signed = b"privet-secagg/v2/advertise-keys".to_vec();
    signed.extend_from_slice(&round.to_le_bytes());
    signed.extend_from_slice(&ad[..4 + 1 + 96]);
    let signature = {
        use ed25519_dalek::Signer;
        fx.keys[owner as usize - 1].sign(&signed).to_bytes()
    };
    ad[4 + 1 + 96..].copy_from_slice(&signature);
    let err = refused(m.answer(ClientId(1), &with_payload(&genuine, payload.clone())));
    assert!(
        err.contains(&format!(
            "client {owner} expands masks with chacha20, this client with aes128-ctr"
        )),
        "{err}"
    );
    // The same change without re-signing is a bad signature.
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(1);
    let genuine = message_for(&msgs, 1);
    let mut payload = payload_of(&genuine);
    payload[first + 4] = MaskPrg::ChaCha20.id();
    let err = refused(m.answer(ClientId(1), &with_payload(&genuine, payload)));
    assert!(err.contains("bad signature"), "{err}");
    // An unknown generator id does not parse, and the round goes on for the client.
    let mut m = Manual::new(&fx, 3);
    let msgs = m.until(1);
    let genuine = message_for(&msgs, 1);
    let mut payload = payload_of(&genuine);
    payload[first + 4] = 9;
    let err = refused(m.answer(ClientId(1), &with_payload(&genuine, payload)));
    assert!(err.contains("unknown mask generator id 9"), "{err}");
    m.answer(ClientId(1), &genuine).unwrap();
}
