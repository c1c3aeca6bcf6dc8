//! The coordinator side: [`SecAggProtocol`], an
//! [`AggregationProtocol`](privet_fl::engine::AggregationProtocol) of four stages.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use privet_fl::engine::{
    AggregationProtocol, FromClient, ProtocolOutput, RejectReason, StageContext, StageOutcome,
    SumOutput, ToClient,
};
use privet_fl::{
    ClientId, ClientParams, ClientTrainConfig, FlError, Requirement, RoundDetails, TrainMetrics,
    WeightedSum,
};
use rand_core::Rng;
use rayon::prelude::*;
use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use crate::config::SecAggConfig;
use crate::crypto::{
    KeyDirectory, SecretScalar, Sign, advertisement_message, agree, ct_eq32, fresh_rng,
    pairwise_mask_key, self_mask_commitment, self_mask_key, valid_public_key, verify,
};
use crate::graph::Graph;
use crate::params::{self, MIN_CLIENTS, RoundParams};
use crate::prg::apply_masks_with;
use crate::quantize::Quantizer;
use crate::wire::{
    KeyAdvertisement, Kind, MAX_VECTOR_LEN, MaskedInput, ShareKeysRequest, ShareList,
    UnmaskRequest, UnmaskShares,
};
use crate::{SecAggError, shamir};

/// How a round ended, as far as the protocol knows.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundStatus {
    /// The round is still running.
    InProgress,
    /// The sum was unmasked.
    Completed,
    /// The round was abandoned (by the protocol or the engine); nothing was revealed.
    Aborted(String),
}

/// What the run report needs to know about a round of secure aggregation.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundInfo {
    /// Round number.
    pub round: u32,
    /// Clients selected (sent the training request).
    pub selected: usize,
    /// The graph degree and threshold, once the keys are in (`n` = clients that advertised
    /// keys).
    pub params: Option<RoundParams>,
    /// Clients that sent encrypted shares (stage 1 survivors), once known.
    pub shared: Option<usize>,
    /// Clients whose masked input is in the sum (stage 2 survivors), once known.
    pub masked: Option<usize>,
    /// Clients that helped unmask (stage 3 survivors), once known.
    pub unmasked: Option<usize>,
    /// Dropped clients whose pairwise masks had to be rebuilt.
    pub masks_rebuilt: usize,
    /// How the round ended.
    pub status: RoundStatus,
}

/// The coordinator side of SecAgg+: plug into
/// [`Coordinator::new`](privet_fl::engine::Coordinator::new) as the protocol.
///
/// Stage 0 sends [`ToClient::Fit`] and collects signed key advertisements; stage 1 sends each
/// client its neighbours' keys and the round's graph, and collects encrypted shares; stage 2
/// routes the shares and collects masked inputs; stage 3 names the survivors and dropouts to
/// each client, collects the shares needed, and unmasks the sum. It reveals only the sum
/// ([`Requirement::Sum`]).
///
/// The engine owns the protocol once it is boxed into the coordinator, so the per-round
/// information is also available through a [`SecAggMonitor`] taken beforehand.
pub struct SecAggProtocol {
    config: SecAggConfig,
    quantizer: Quantizer,
    directory: Arc<dyn KeyDirectory>,
    round: Option<Box<RoundState>>,
    shared: Arc<Mutex<Observed>>,
}

impl fmt::Debug for SecAggProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecAggProtocol")
            .field("config", &self.config)
            .field("round", &self.round.as_ref().map(|r| r.round))
            .finish_non_exhaustive()
    }
}

/// What the protocol publishes about its rounds.
#[derive(Debug, Default)]
struct Observed {
    info: Option<RoundInfo>,
    sum: Option<Arc<[u64]>>,
}

/// A handle on the per-round information of a [`SecAggProtocol`] that stays with the runtime
/// after the protocol is handed to the engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SecAggMonitor(Arc<Mutex<Observed>>);

impl SecAggMonitor {
    fn read<T>(&self, f: impl FnOnce(&Observed) -> T) -> T {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    /// What is known of the current or last round (`n`, `k`, `t`, survivors per stage,
    /// outcome), `None` before the first.
    pub fn last_round_info(&self) -> Option<RoundInfo> {
        self.read(|o| o.info.clone())
    }

    /// The unmasked sum of the last completed round as words modulo `2^b`: the sum of the
    /// contributors' quantized updates (the same information as the decoded sum).
    pub fn last_sum_words(&self) -> Option<Arc<[u64]>> {
        self.read(|o| o.sum.clone())
    }
}

/// Per-round state of the coordinator.
struct RoundState {
    round: u32,
    model_len: usize,
    /// Stage 0: the advertised keys (of U1 after the stage).
    ads: BTreeMap<ClientId, KeyAdvertisement>,
    /// After stage 0: the graph's parameters and neighbour lists (over U1).
    params: Option<RoundParams>,
    neighbours: BTreeMap<ClientId, Vec<ClientId>>,
    /// Stage 1: encrypted shares by sender.
    shares: BTreeMap<ClientId, ShareList>,
    /// Stage 1 survivors.
    u2: Vec<ClientId>,
    /// Stage 2: masked inputs.
    masked: BTreeMap<ClientId, MaskedInput>,
    /// Stage 2 survivors and the requests sent to them.
    u3: Vec<ClientId>,
    requests: BTreeMap<ClientId, UnmaskRequest>,
    /// Stage 3: the shares revealed.
    revealed: BTreeMap<ClientId, UnmaskShares>,
}

impl RoundState {
    fn neighbours_of(&self, client: ClientId) -> &[ClientId] {
        self.neighbours
            .get(&client)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn t(&self) -> usize {
        self.params.map_or(usize::MAX, |p| p.t)
    }
}

/// `a ∩ b` for sorted slices.
fn intersect(a: &[ClientId], b: &[ClientId]) -> Vec<ClientId> {
    a.iter()
        .copied()
        .filter(|c| b.binary_search(c).is_ok())
        .collect()
}

fn reject(e: SecAggError) -> RejectReason {
    RejectReason::Protocol(e.to_string())
}

impl SecAggProtocol {
    /// The coordinator side with the job's configuration (validated here) and the directory
    /// of the clients' identity keys.
    pub fn new(
        config: SecAggConfig,
        directory: Arc<dyn KeyDirectory>,
    ) -> Result<Self, SecAggError> {
        let quantizer = Quantizer::new(&config)?;
        Ok(SecAggProtocol {
            config,
            quantizer,
            directory,
            round: None,
            shared: Arc::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SecAggConfig {
        &self.config
    }

    /// A handle on the per-round information that outlives handing the protocol to the
    /// engine.
    pub fn monitor(&self) -> SecAggMonitor {
        SecAggMonitor(Arc::clone(&self.shared))
    }

    /// What is known of the current or last round (`n`, `k`, `t`, survivors per stage,
    /// outcome), `None` before the first.
    pub fn last_round_info(&self) -> Option<RoundInfo> {
        self.monitor().last_round_info()
    }

    fn observe(&self, f: impl FnOnce(&mut Observed)) {
        let mut guard = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard);
    }

    fn update_info(&self, f: impl FnOnce(&mut RoundInfo)) {
        self.observe(|o| {
            if let Some(info) = &mut o.info {
                f(info);
            }
        });
    }

    fn max_clients(&self) -> usize {
        self.config.max_clients as usize
    }

    fn state(&mut self, ctx: &StageContext<'_>) -> Result<&mut RoundState, SecAggError> {
        match self.round.as_deref_mut() {
            Some(r) if r.round == ctx.round => Ok(r),
            _ => Err(SecAggError::UnexpectedMessage(format!(
                "no secure aggregation state for round {}",
                ctx.round
            ))),
        }
    }

    fn set_status(&self, status: RoundStatus) {
        self.update_info(|info| info.status = status);
    }

    fn on_message(
        &mut self,
        ctx: &StageContext<'_>,
        from: ClientId,
        payload: Vec<u8>,
    ) -> Result<(), SecAggError> {
        let max = self.max_clients();
        let bits = self.quantizer.modulus_bits();
        let directory = Arc::clone(&self.directory);
        let prg = self.config.mask_prg;
        let r = self.state(ctx)?;
        let round = r.round;
        match ctx.stage {
            0 => {
                let ad = KeyAdvertisement::decode(&payload, round)?;
                if ad.client != from {
                    return Err(SecAggError::Protocol(format!(
                        "keys advertised for client {}",
                        ad.client
                    )));
                }
                let message = advertisement_message(
                    round,
                    from,
                    ad.prg,
                    &ad.enc_pk,
                    &ad.mask_pk,
                    &ad.commitment,
                );
                verify(directory.as_ref(), from, &message, &ad.signature)?;
                if ad.prg != prg {
                    return Err(SecAggError::Protocol(format!(
                        "client {from} expands masks with {}, the round uses {prg}",
                        ad.prg
                    )));
                }
                if !valid_public_key(&ad.enc_pk) || !valid_public_key(&ad.mask_pk) {
                    return Err(SecAggError::BadPublicKey(from));
                }
                r.ads.insert(from, ad);
            }
            1 => {
                let list = ShareList::decode(&payload, Kind::EncryptedShares, round, max)?;
                if !list
                    .entries
                    .iter()
                    .map(|e| e.0)
                    .eq(r.neighbours_of(from).iter().copied())
                {
                    return Err(SecAggError::Protocol(
                        "shares must be addressed to exactly the sender's neighbours".into(),
                    ));
                }
                r.shares.insert(from, list);
            }
            2 => {
                let len = Quantizer::vector_len(r.model_len);
                let input = MaskedInput::decode(payload, round, bits, len)?;
                r.masked.insert(from, input);
            }
            3 => {
                let shares = UnmaskShares::decode(&payload, round, max)?;
                let request = r.requests.get(&from).ok_or_else(|| {
                    SecAggError::UnexpectedMessage("no unmask request was sent".into())
                })?;
                if !shares
                    .self_mask
                    .iter()
                    .map(|s| s.0)
                    .eq(request.survivors.iter().copied())
                    || !shares
                        .mask_key
                        .iter()
                        .map(|s| s.0)
                        .eq(request.dropped.iter().copied())
                {
                    return Err(SecAggError::Protocol(
                        "the shares revealed are not those requested".into(),
                    ));
                }
                r.revealed.insert(from, shares);
            }
            s => {
                return Err(SecAggError::WrongStage {
                    expected: 3,
                    found: s,
                });
            }
        }
        Ok(())
    }

    /// End of stage 0: fix the graph over the clients that advertised keys.
    fn after_keys(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, SecAggError> {
        let config = self.config.clone();
        let r = self.state(ctx)?;
        r.ads.retain(|c, _| survivors.binary_search(c).is_ok());
        let members: Vec<ClientId> = r.ads.keys().copied().collect();
        let n = members.len();
        if n < MIN_CLIENTS {
            return Ok(StageOutcome::Abort(format!(
                "only {n} client(s) advertised keys; secure aggregation needs at least \
                 {MIN_CLIENTS}"
            )));
        }
        let p = params::choose(n, &config);
        let mut seed = [0u8; 32];
        fresh_rng()?.fill_bytes(&mut seed);
        let graph = Graph::new(&seed, r.round, &members, p.k)?;
        r.neighbours = graph.all_neighbours().into_iter().collect();
        r.params = Some(p);
        let k = u32::try_from(p.k).map_err(|_| SecAggError::Protocol("degree too large".into()))?;
        let t =
            u32::try_from(p.t).map_err(|_| SecAggError::Protocol("threshold too large".into()))?;
        let messages = members
            .iter()
            .map(|&u| {
                let neighbours = r
                    .neighbours_of(u)
                    .iter()
                    .filter_map(|v| r.ads.get(v).cloned())
                    .collect();
                let request = ShareKeysRequest {
                    k,
                    t,
                    graph_seed: seed,
                    members: members.clone(),
                    neighbours,
                };
                (u, protocol_message(r.round, 1, request.encode(r.round)))
            })
            .collect();
        self.update_info(|info| info.params = Some(p));
        Ok(StageOutcome::Next(messages))
    }

    /// End of stage 1: route the shares of the clients that sent them.
    fn after_shares(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, SecAggError> {
        let shared = survivors.len();
        self.update_info(|info| info.shared = Some(shared));
        let r = self.state(ctx)?;
        r.shares.retain(|c, _| survivors.binary_search(c).is_ok());
        let u2: Vec<ClientId> = r.shares.keys().copied().collect();
        let t = r.t();
        // Each client's shares reach only its neighbours in U2.
        for &u in &u2 {
            let holders = intersect(r.neighbours_of(u), &u2).len();
            if holders < t {
                let e = SecAggError::NotEnoughShares {
                    client: u,
                    have: holders,
                    need: t,
                };
                return Ok(StageOutcome::Abort(e.to_string()));
            }
        }
        let mut messages = Vec::with_capacity(u2.len());
        for &v in &u2 {
            let mut entries = Vec::new();
            for u in intersect(r.neighbours_of(v), &u2) {
                let ct = r
                    .shares
                    .get(&u)
                    .and_then(|list| {
                        list.entries
                            .binary_search_by_key(&v, |e| e.0)
                            .ok()
                            .and_then(|i| list.entries.get(i))
                    })
                    .ok_or_else(|| SecAggError::Protocol(format!("no share from {u} for {v}")))?;
                entries.push((u, ct.1));
            }
            let payload = ShareList { entries }.encode(Kind::RoutedShares, r.round);
            messages.push((v, protocol_message(r.round, 2, payload)));
        }
        r.u2 = u2;
        Ok(StageOutcome::Next(messages))
    }

    /// End of stage 2: ask the clients whose input is in for the shares needed to unmask.
    fn after_inputs(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, SecAggError> {
        let masked = survivors.len();
        self.update_info(|info| info.masked = Some(masked));
        let r = self.state(ctx)?;
        r.masked.retain(|c, _| survivors.binary_search(c).is_ok());
        let u3: Vec<ClientId> = r.masked.keys().copied().collect();
        let dropped: Vec<ClientId> =
            r.u2.iter()
                .copied()
                .filter(|c| u3.binary_search(c).is_err())
                .collect();
        let t = r.t();
        // The self masks of U3 and the mask keys of dropped clients that masked with U3 must
        // be rebuildable from shares held within U3.
        let needed = u3.iter().chain(
            dropped
                .iter()
                .filter(|&&v| !intersect(r.neighbours_of(v), &u3).is_empty()),
        );
        for &u in needed {
            let holders = intersect(r.neighbours_of(u), &u3).len();
            if holders < t {
                let e = SecAggError::NotEnoughShares {
                    client: u,
                    have: holders,
                    need: t,
                };
                return Ok(StageOutcome::Abort(e.to_string()));
            }
        }
        let mut messages = Vec::with_capacity(u3.len());
        for &u in &u3 {
            let request = UnmaskRequest {
                survivors: intersect(r.neighbours_of(u), &u3),
                dropped: intersect(r.neighbours_of(u), &dropped),
            };
            messages.push((u, protocol_message(r.round, 3, request.encode(r.round))));
            r.requests.insert(u, request);
        }
        r.u3 = u3;
        Ok(StageOutcome::Next(messages))
    }

    /// End of stage 3: rebuild the secrets and unmask the sum.
    fn unmask(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, SecAggError> {
        let unmasked = survivors.len();
        self.update_info(|info| info.unmasked = Some(unmasked));
        let quantizer = self.quantizer.clone();
        let bits = quantizer.modulus_bits();
        let prg = self.config.mask_prg;
        let r = self.state(ctx)?;
        r.revealed.retain(|c, _| survivors.binary_search(c).is_ok());
        let u4: Vec<ClientId> = r.revealed.keys().copied().collect();
        let t = r.t();
        let round = r.round;
        let dropped: Vec<ClientId> =
            r.u2.iter()
                .copied()
                .filter(|c| r.u3.binary_search(c).is_err())
                .collect();

        // The shares of `owner`'s secret held by clients of U4: the first t of them.
        let collect = |owner: ClientId, self_mask: bool| -> Result<SecretScalar, SecAggError> {
            let mut picked: Vec<(ClientId, &SecretScalar)> = Vec::with_capacity(t);
            for holder in intersect(r.neighbours_of(owner), &u4) {
                let Some(revealed) = r.revealed.get(&holder) else {
                    continue;
                };
                let list = if self_mask {
                    &revealed.self_mask
                } else {
                    &revealed.mask_key
                };
                if let Some((_, share)) = list
                    .binary_search_by_key(&owner, |s| s.0)
                    .ok()
                    .and_then(|i| list.get(i))
                {
                    picked.push((holder, share));
                    if picked.len() == t {
                        return shamir::combine(&picked);
                    }
                }
            }
            Err(SecAggError::NotEnoughShares {
                client: owner,
                have: picked.len(),
                need: t,
            })
        };

        // Each survivor's self-mask seed, rebuilt and checked (independent: in parallel).
        let self_keys: Vec<Zeroizing<[u8; 32]>> =
            r.u3.par_iter()
                .map(|&u| {
                    let b = collect(u, true)?;
                    let ad = r.ads.get(&u).ok_or(SecAggError::UnknownClient(u))?;
                    if !ct_eq32(&self_mask_commitment(&b, round, u), &ad.commitment) {
                        return Err(SecAggError::InconsistentShares(u));
                    }
                    self_mask_key(&b, round, u)
                })
                .collect::<Result<_, SecAggError>>()?;
        let mut inputs: Vec<&MaskedInput> = Vec::with_capacity(r.u3.len());
        for u in &r.u3 {
            inputs.push(
                r.masked
                    .get(u)
                    .ok_or_else(|| SecAggError::Protocol(format!("no masked input from {u}")))?,
            );
        }
        let mut masks: Vec<(Zeroizing<[u8; 32]>, Sign)> = Vec::new();
        let mut rebuilt = 0;
        for &v in &dropped {
            let partners = intersect(r.neighbours_of(v), &r.u3);
            if partners.is_empty() {
                continue;
            }
            let s = collect(v, false)?.to_x25519();
            let ad = r.ads.get(&v).ok_or(SecAggError::UnknownClient(v))?;
            if !ct_eq32(PublicKey::from(&s).as_bytes(), &ad.mask_pk) {
                return Err(SecAggError::InconsistentShares(v));
            }
            rebuilt += 1;
            let pairwise: Vec<(Zeroizing<[u8; 32]>, Sign)> = partners
                .par_iter()
                .map(|&u| {
                    let u_pk = r.ads.get(&u).ok_or(SecAggError::UnknownClient(u))?.mask_pk;
                    let shared = agree(&s, &u_pk, u)?;
                    // u added its pairwise mask with v (+ if u < v); take it back out.
                    let added = if u < v { Sign::Add } else { Sign::Sub };
                    Ok((pairwise_mask_key(&shared, round, u, v)?, added.flip()))
                })
                .collect::<Result<_, SecAggError>>()?;
            masks.extend(pairwise);
        }
        let mut terms: Vec<(&[u8; 32], Sign)> = Vec::with_capacity(self_keys.len() + masks.len());
        terms.extend(self_keys.iter().map(|k| (&**k, Sign::Sub)));
        terms.extend(masks.iter().map(|(k, sign)| (&**k, *sign)));

        // Chunk by chunk (in parallel): add the masked inputs, remove the masks.
        let len = Quantizer::vector_len(r.model_len);
        let mut sum = vec![0u64; len];
        apply_masks_with(&mut sum, &terms, bits, prg, |start, chunk| {
            for input in &inputs {
                input.add_range_to(start, chunk);
            }
        })?;
        drop(terms);
        let decoded = quantizer.decode(&sum)?;
        let contributors = r.u3.clone();
        let total = decoded.total_weight as f64;
        let output = SumOutput {
            sum: WeightedSum {
                sum: decoded.sum,
                total_weight: total,
                num_clients: contributors.len(),
            },
            contributors,
            metrics: TrainMetrics {
                // Under distributed DP clients do not reveal their loss (it would carry no
                // noise): the round has none to report.
                loss: if self.config.distributed_dp_noise.is_some() {
                    f32::NAN
                } else {
                    (decoded.loss_sum / total) as f32
                },
                num_examples: decoded.total_weight,
            },
        };
        self.observe(|o| {
            o.sum = Some(Arc::from(sum));
            if let Some(info) = &mut o.info {
                info.masks_rebuilt = rebuilt;
            }
        });
        Ok(StageOutcome::Done(ProtocolOutput::Sum(output)))
    }
}

fn protocol_message(round: u32, stage: u8, payload: Vec<u8>) -> ToClient {
    ToClient::Protocol {
        round,
        stage,
        payload,
    }
}

impl AggregationProtocol for SecAggProtocol {
    fn name(&self) -> &'static str {
        "secagg+"
    }

    fn stages(&self) -> u8 {
        4
    }

    fn reveals(&self) -> Requirement {
        Requirement::Sum
    }

    fn begin(
        &mut self,
        ctx: &StageContext<'_>,
        params: &Arc<[f32]>,
        config: &ClientTrainConfig,
        extensions: &Arc<ClientParams>,
    ) -> Result<Vec<(ClientId, ToClient)>, FlError> {
        self.round = None;
        let info = RoundInfo {
            round: ctx.round,
            selected: ctx.participants.len(),
            params: None,
            shared: None,
            masked: None,
            unmasked: None,
            masks_rebuilt: 0,
            status: RoundStatus::InProgress,
        };
        self.observe(|o| o.info = Some(info));
        if ctx.participants.len() > self.max_clients() {
            let msg = format!(
                "{} clients selected, but secure aggregation is configured for at most {}",
                ctx.participants.len(),
                self.config.max_clients
            );
            self.set_status(RoundStatus::Aborted(msg.clone()));
            return Err(FlError::InvalidConfig(msg));
        }
        if Quantizer::vector_len(ctx.model_len) > MAX_VECTOR_LEN {
            let msg = format!("a model of {} parameters is too large", ctx.model_len);
            self.set_status(RoundStatus::Aborted(msg.clone()));
            return Err(FlError::InvalidConfig(msg));
        }
        self.round = Some(Box::new(RoundState {
            round: ctx.round,
            model_len: ctx.model_len,
            ads: BTreeMap::new(),
            params: None,
            neighbours: BTreeMap::new(),
            shares: BTreeMap::new(),
            u2: Vec::new(),
            masked: BTreeMap::new(),
            u3: Vec::new(),
            requests: BTreeMap::new(),
            revealed: BTreeMap::new(),
        }));
        Ok(ctx
            .participants
            .iter()
            .map(|&c| {
                let msg = ToClient::Fit {
                    round: ctx.round,
                    params: Arc::clone(params),
                    config: config.clone(),
                    extensions: Arc::clone(extensions),
                };
                (c, msg)
            })
            .collect())
    }

    fn receive(
        &mut self,
        ctx: &StageContext<'_>,
        from: ClientId,
        msg: FromClient,
    ) -> Result<(), RejectReason> {
        match msg {
            FromClient::Protocol { payload, .. } => {
                self.on_message(ctx, from, payload).map_err(reject)
            }
            _ => Err(RejectReason::UnexpectedMessage),
        }
    }

    fn end_stage(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, FlError> {
        let outcome = match ctx.stage {
            0 => self.after_keys(ctx, survivors),
            1 => self.after_shares(ctx, survivors),
            2 => self.after_inputs(ctx, survivors),
            3 => self.unmask(ctx, survivors),
            s => Err(SecAggError::WrongStage {
                expected: 3,
                found: s,
            }),
        };
        let outcome = match outcome {
            // A round that cannot be unmasked is aborted, not an engine error.
            Err(e @ (SecAggError::NotEnoughShares { .. } | SecAggError::InconsistentShares(_))) => {
                Ok(StageOutcome::Abort(e.to_string()))
            }
            other => other,
        };
        match &outcome {
            Ok(StageOutcome::Next(_)) => {}
            Ok(StageOutcome::Done(_)) => {
                self.round = None;
                self.set_status(RoundStatus::Completed);
            }
            Ok(StageOutcome::Abort(reason)) => {
                self.round = None;
                self.set_status(RoundStatus::Aborted(reason.clone()));
            }
            Err(e) => {
                self.round = None;
                self.set_status(RoundStatus::Aborted(e.to_string()));
            }
        }
        outcome.map_err(FlError::from)
    }

    fn abort_round(&mut self) {
        self.round = None;
        self.update_info(|info| {
            if info.status == RoundStatus::InProgress {
                info.status = RoundStatus::Aborted("the round was abandoned".into());
            }
        });
    }

    fn round_details(&self, round: u32, details: &mut RoundDetails) -> Result<(), FlError> {
        let Some(info) = self.last_round_info().filter(|i| i.round == round) else {
            return Ok(());
        };
        let Some(p) = info.params else {
            // The graph was never built (too few keys): nothing to report.
            return Ok(());
        };
        let record = SecAggDetails {
            protocol: self.name().to_string(),
            n: p.n as u32,
            k: p.k as u32,
            t: p.t as u32,
            masks_rebuilt: info.masks_rebuilt as u32,
        };
        let value = serde_json::to_value(record)
            .map_err(|e| FlError::InvalidState(format!("secure aggregation details: {e}")))?;
        details.insert(SecAggDetails::NAME, value)
    }
}

/// What a round's report says about secure aggregation, under
/// [`SecAggDetails::NAME`] in its [`RoundDetails`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecAggDetails {
    /// The protocol: "secagg+" (SecAgg when the graph is complete).
    #[serde(default = "secagg_plus")]
    pub protocol: String,
    /// Clients that advertised keys (the graph's size).
    pub n: u32,
    /// Neighbours per client in the masking graph (`n - 1`: complete).
    pub k: u32,
    /// Shares needed to reconstruct a secret.
    pub t: u32,
    /// Pairwise masks rebuilt for clients lost after sharing their keys.
    #[serde(default)]
    pub masks_rebuilt: u32,
}

fn secagg_plus() -> String {
    "secagg+".into()
}

impl SecAggDetails {
    /// The detail's name.
    pub const NAME: &'static str = "secure_aggregation";
}
