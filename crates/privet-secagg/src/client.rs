//! The client side: one [`SecAggClient`] per client, answering the four stages of a round.

use std::fmt;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use privet_fl::engine::{ClientProtocol, FromClient, LocalTrainer, ToClient, compute_update};
use privet_fl::{ClientId, ClientParams, FlError, UpdateTransform};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{Rounding, SecAggConfig};
use rayon::prelude::*;
use x25519_dalek::SharedSecret;

use crate::crypto::{
    KeyDirectory, SecretRng, SecretScalar, Sign, advertisement_message, agree, decrypt_shares,
    encrypt_shares, fresh_rng, pairwise_mask_key, random_scalar, self_mask_commitment,
    self_mask_key, sign, valid_public_key, verify,
};
use crate::graph::Graph;
use crate::params::{self, MIN_CLIENTS, RoundParams};
use crate::prg::apply_masks;
use crate::quantize::Quantizer;
use crate::wire::{
    KeyAdvertisement, Kind, ShareKeysRequest, ShareList, UnmaskRequest, UnmaskShares,
    encode_masked_input,
};
use crate::{SecAggError, shamir};

/// The client side of SecAgg+ for one client; implements
/// [`ClientProtocol`](privet_fl::engine::ClientProtocol).
///
/// The runtime creates one per client, with the client's long-term Ed25519 identity key, the
/// directory of the other clients' verifying keys, and the job's [`SecAggConfig`] (the same as
/// the coordinator's: the client recomputes the round's `k` and `t` and refuses others). It keeps
/// the object across rounds and hands it every message addressed to the client.
///
/// Per round (stage-0 [`ToClient::Fit`] to stage-3 request) the client draws fresh X25519 key
/// pairs and secrets from an OS-seeded CSPRNG; all are zeroized when the round ends or a new one
/// starts. A message for another round or stage, or one that does not parse, is refused and the
/// round goes on; a message that parses but violates the protocol (bad signature, a graph that
/// does not match the configuration, shares that do not decrypt, a request to reveal both
/// secrets of one neighbour, ...) is refused and ends the client's part in the round.
pub struct SecAggClient {
    id: ClientId,
    identity: SigningKey,
    directory: Arc<dyn KeyDirectory>,
    config: SecAggConfig,
    quantizer: Quantizer,
    /// The last round started (rounds must increase).
    last_round: Option<u32>,
    state: State,
    /// The input buffer of the last round, zeroized, kept for its capacity (see
    /// [`Quantizer::encode_into`]).
    buffer: Zeroizing<Vec<u64>>,
}

impl fmt::Debug for SecAggClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecAggClient")
            .field("id", &self.id)
            .field("last_round", &self.last_round)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The X25519 keys and Shamir secrets of one round.
struct RoundSecrets {
    /// Agreement key for share encryption (`c_u`).
    enc: StaticSecret,
    /// The masking key (`s_u`) as a scalar (shared) and as an X25519 key (used).
    mask_scalar: SecretScalar,
    mask: StaticSecret,
    /// The self-mask seed (`b_u`).
    self_mask: SecretScalar,
}

impl fmt::Debug for RoundSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoundSecrets(..)")
    }
}

/// What a client agreed with one neighbour in stage 1 (both zeroized on drop): the
/// share-encryption key (used again to decrypt its shares in stage 2) and the pairwise mask
/// key (used in stage 2 if the neighbour sent shares).
struct Neighbour {
    id: ClientId,
    enc_shared: SharedSecret,
    mask_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Neighbour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Neighbour")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The shares a client holds for one neighbour.
#[derive(Debug)]
struct Held {
    owner: ClientId,
    self_mask: SecretScalar,
    mask_key: SecretScalar,
}

/// What a client trains on once its round is viable.
#[derive(Debug)]
struct PendingFit {
    params: std::sync::Arc<[f32]>,
    config: privet_fl::ClientTrainConfig,
    published: std::sync::Arc<ClientParams>,
}

#[derive(Debug)]
struct Advertised {
    round: u32,
    secrets: RoundSecrets,
    fit: PendingFit,
    rng: SecretRng,
}

#[derive(Debug)]
struct SharesSent {
    round: u32,
    t: usize,
    secrets: RoundSecrets,
    input: Zeroizing<Vec<u64>>,
    neighbours: Vec<Neighbour>,
}

#[derive(Debug)]
struct MaskedSent {
    round: u32,
    t: usize,
    held: Vec<Held>,
}

/// Stage 2's answer, the state after it, and the input buffer (masked, to be zeroized and kept).
type MaskedAnswer = (Vec<u8>, State, Zeroizing<Vec<u64>>);

/// Where the client stands in the current round.
enum State {
    Idle,
    /// Stage 0 answered: waiting for the neighbours' keys.
    Advertised(Box<Advertised>),
    /// Stage 1 answered: waiting for the shares addressed to this client.
    SharesSent(Box<SharesSent>),
    /// Stage 2 answered: waiting for the unmask request.
    MaskedSent(Box<MaskedSent>),
    /// The round is over for this client (finished or abandoned).
    Closed {
        round: u32,
    },
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position() {
            Some((round, stage)) => write!(f, "awaiting stage {stage} of round {round}"),
            None => match self {
                State::Closed { round } => write!(f, "round {round} closed"),
                _ => f.write_str("idle"),
            },
        }
    }
}

impl State {
    /// The round and stage the client expects a message for.
    fn position(&self) -> Option<(u32, u8)> {
        match self {
            State::Advertised(s) => Some((s.round, 1)),
            State::SharesSent(s) => Some((s.round, 2)),
            State::MaskedSent(s) => Some((s.round, 3)),
            State::Idle | State::Closed { .. } => None,
        }
    }
}

/// A stage-1..3 message, parsed.
enum Request {
    ShareKeys(ShareKeysRequest),
    Shares(ShareList),
    Unmask(UnmaskRequest),
}

impl SecAggClient {
    /// The client `id` with its identity key, the directory of the other clients' identity
    /// keys, and the job's configuration (validated here).
    pub fn new(
        id: ClientId,
        identity: SigningKey,
        directory: Arc<dyn KeyDirectory>,
        config: SecAggConfig,
    ) -> Result<Self, SecAggError> {
        let quantizer = Quantizer::new(&config)?;
        Ok(SecAggClient {
            id,
            identity,
            directory,
            config,
            quantizer,
            last_round: None,
            state: State::Idle,
            buffer: Zeroizing::new(Vec::new()),
        })
    }

    /// The client this object answers for.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The round and stage whose message the client awaits, if a round is in progress.
    pub fn awaiting(&self) -> Option<(u32, u8)> {
        self.state.position()
    }

    fn max_clients(&self) -> usize {
        self.config.max_clients as usize
    }

    /// Stage 0: draw the round's secrets and advertise signed keys. Training waits for stage 1:
    /// only a round that got enough advertised keys to go on costs the client its training.
    fn advertise(&mut self, round: u32, fit: PendingFit) -> Result<FromClient, FlError> {
        if let Some(last) = self.last_round
            && round <= last
        {
            return Err(SecAggError::UnexpectedMessage(format!(
                "training request for round {round}, but round {last} was already started"
            ))
            .into());
        }
        // A new round: whatever the previous one left is dropped (and zeroized) now.
        self.state = State::Closed { round };
        self.last_round = Some(round);
        let mut rng = fresh_rng()?;
        let enc = StaticSecret::random_from_rng(&mut rng);
        let mask_scalar = random_scalar(&mut rng);
        let mask = mask_scalar.to_x25519();
        let self_mask = random_scalar(&mut rng);
        let enc_pk = PublicKey::from(&enc).to_bytes();
        let mask_pk = PublicKey::from(&mask).to_bytes();
        let commitment = self_mask_commitment(&self_mask, round, self.id);
        let prg = self.config.mask_prg;
        let message = advertisement_message(round, self.id, prg, &enc_pk, &mask_pk, &commitment);
        let ad = KeyAdvertisement {
            client: self.id,
            prg,
            enc_pk,
            mask_pk,
            commitment,
            signature: sign(&self.identity, &message),
        };
        self.state = State::Advertised(Box::new(Advertised {
            round,
            secrets: RoundSecrets {
                enc,
                mask_scalar,
                mask,
                self_mask,
            },
            fit,
            rng,
        }));
        Ok(FromClient::Protocol {
            round,
            stage: 0,
            payload: ad.encode(round),
        })
    }

    /// Trains, computes the update through the job's transforms, and encodes it (with the
    /// distributed-DP noise the client's own transforms ask for) as the round's input.
    fn train_input(
        &self,
        round: u32,
        fit: &PendingFit,
        rng: &mut SecretRng,
        trainer: &mut dyn LocalTrainer,
        transforms: &[Box<dyn UpdateTransform>],
        mut input: Zeroizing<Vec<u64>>,
    ) -> Result<Zeroizing<Vec<u64>>, FlError> {
        let (local, metrics) = trainer.fit(round, &fit.params, &fit.config)?;
        let (update, local_params) = compute_update(
            self.id,
            round,
            &fit.params,
            &local,
            metrics,
            transforms,
            &fit.published,
        )?;
        let noise_std = self.distributed_noise(&local_params)?;
        let stochastic = self.config.rounding == Rounding::Stochastic;
        // Under distributed DP the training loss is not revealed: it would leave the client
        // without noise.
        let loss = if noise_std.is_some() {
            0.0
        } else {
            update.metrics.loss
        };
        self.quantizer.encode_into(
            &update.delta,
            update.num_examples,
            loss,
            stochastic.then_some(rng),
            &mut input,
        )?;
        if let Some(std) = noise_std {
            let mut noise_rng = privet_dp::noise::os_seeded_rng()
                .map_err(|e| SecAggError::Randomness(e.to_string()))?;
            self.quantizer.add_discrete_noise(
                &mut input,
                update.delta.len(),
                std,
                &mut noise_rng,
            )?;
        }
        Ok(input)
    }

    /// The distributed-DP noise this client's own update transforms ask for
    /// ([`NOISE_PARAM`](crate::NOISE_PARAM) among their local parameters, which the coordinator
    /// cannot set), checked against the headroom the configuration reserved
    /// ([`SecAggConfig::distributed_dp_noise`]).
    fn distributed_noise(&self, local: &ClientParams) -> Result<Option<f64>, FlError> {
        let Some(std) = local.f64(crate::NOISE_PARAM)? else {
            return Ok(None);
        };
        let reserved = self.config.distributed_dp_noise;
        match reserved {
            Some(max) if std.is_finite() && std > 0.0 && std <= max * (1.0 + 1e-9) => Ok(Some(std)),
            Some(max) => Err(FlError::InvalidConfig(format!(
                "distributed DP noise {std} exceeds the {max} the secure aggregation \
                 configuration leaves room for"
            ))),
            None => Err(FlError::InvalidConfig(
                "distributed DP noise asked for, but the secure aggregation configuration \
                 reserves no room for it"
                    .into(),
            )),
        }
    }

    /// Stages 1 to 3 (training happens at stage 1).
    fn answer(
        &mut self,
        round: u32,
        stage: u8,
        payload: &[u8],
        trainer: &mut dyn LocalTrainer,
        transforms: &[Box<dyn UpdateTransform>],
    ) -> Result<FromClient, FlError> {
        let Some((expected_round, expected_stage)) = self.state.position() else {
            return Err(SecAggError::UnexpectedMessage(format!(
                "stage {stage} message for round {round}, but no round is in progress ({:?})",
                self.state
            ))
            .into());
        };
        if round != expected_round {
            return Err(SecAggError::WrongRound {
                expected: expected_round,
                found: round,
            }
            .into());
        }
        if stage != expected_stage {
            return Err(SecAggError::WrongStage {
                expected: expected_stage,
                found: stage,
            }
            .into());
        }
        // Parse before touching the state: a malformed message is refused, the round goes on.
        let max = self.max_clients();
        let request = match stage {
            1 => Request::ShareKeys(ShareKeysRequest::decode(payload, round, max)?),
            2 => Request::Shares(ShareList::decode(payload, Kind::RoutedShares, round, max)?),
            _ => Request::Unmask(UnmaskRequest::decode(payload, round, max)?),
        };
        // From here on a failure ends this client's part in the round.
        let state = std::mem::replace(&mut self.state, State::Closed { round });
        let (payload, next) = match (state, request) {
            (State::Advertised(s), Request::ShareKeys(req)) => {
                let buffer = std::mem::take(&mut self.buffer);
                self.share_keys(*s, req, trainer, transforms, buffer)?
            }
            (State::SharesSent(s), Request::Shares(list)) => {
                let (payload, next, mut masked) = self.mask_input(*s, list)?;
                // Sent: zeroized now, its capacity kept for the next round's input.
                masked.zeroize();
                self.buffer = masked;
                (payload, next)
            }
            (State::MaskedSent(s), Request::Unmask(req)) => self.unmask(*s, req)?,
            _ => {
                return Err(SecAggError::UnexpectedMessage(
                    "message does not match the client's state".into(),
                )
                .into());
            }
        };
        self.state = next;
        Ok(FromClient::Protocol {
            round,
            stage,
            payload,
        })
    }

    /// Checks a stage-1 request: the round's size, membership, `k` and `t`, the graph, and
    /// every neighbour's signed keys. Returns the graph parameters and this client's neighbours.
    fn check_share_keys(
        &self,
        round: u32,
        req: &ShareKeysRequest,
    ) -> Result<(RoundParams, Vec<ClientId>), SecAggError> {
        let n = req.members.len();
        if n < MIN_CLIENTS || n > self.max_clients() {
            return Err(SecAggError::Protocol(format!(
                "a round of {n} clients (allowed: {MIN_CLIENTS} to {})",
                self.max_clients()
            )));
        }
        if req.members.binary_search(&self.id).is_err() {
            return Err(SecAggError::Protocol(
                "this client is not among the members".into(),
            ));
        }
        let p = params::choose(n, &self.config);
        if (req.k as usize, req.t as usize) != (p.k, p.t) {
            return Err(SecAggError::Protocol(format!(
                "the coordinator set k = {}, t = {} for {n} clients; the configuration gives \
                 k = {}, t = {}",
                req.k, req.t, p.k, p.t
            )));
        }
        let graph = Graph::new(&req.graph_seed, round, &req.members, p.k)?;
        let expected = graph
            .neighbours(self.id)
            .ok_or_else(|| SecAggError::Protocol("this client is not in the graph".into()))?;
        if !req
            .neighbours
            .iter()
            .map(|a| a.client)
            .eq(expected.iter().copied())
        {
            return Err(SecAggError::Protocol(
                "the keys sent are not those of this client's neighbours".into(),
            ));
        }
        // Every neighbour's signed keys (and mask generator) are checked before this client
        // trains: a round that fails here costs no training (in parallel: one signature each).
        let prg = self.config.mask_prg;
        let directory = self.directory.as_ref();
        req.neighbours.par_iter().try_for_each(|ad| {
            let message = advertisement_message(
                round,
                ad.client,
                ad.prg,
                &ad.enc_pk,
                &ad.mask_pk,
                &ad.commitment,
            );
            verify(directory, ad.client, &message, &ad.signature)?;
            if ad.prg != prg {
                return Err(SecAggError::Protocol(format!(
                    "client {} expands masks with {}, this client with {prg}",
                    ad.client, ad.prg
                )));
            }
            if !valid_public_key(&ad.enc_pk) || !valid_public_key(&ad.mask_pk) {
                return Err(SecAggError::BadPublicKey(ad.client));
            }
            Ok(())
        })?;
        Ok((p, expected))
    }

    /// Stage 1: check the graph and the neighbours' signed keys; then train (the round is
    /// viable), share both secrets among the neighbours, encrypt each neighbour's shares to it.
    fn share_keys(
        &self,
        s: Advertised,
        req: ShareKeysRequest,
        trainer: &mut dyn LocalTrainer,
        transforms: &[Box<dyn UpdateTransform>],
        buffer: Zeroizing<Vec<u64>>,
    ) -> Result<(Vec<u8>, State), FlError> {
        let Advertised {
            round,
            secrets,
            fit,
            mut rng,
        } = s;
        let (p, expected) = self.check_share_keys(round, &req)?;
        // The two agreements with every neighbour (share encryption and pairwise mask: two
        // X25519 each, the costliest part of a client's round after mask expansion) do not
        // depend on the update: the pool computes them while this thread trains.
        let mut agreed: Option<Result<Vec<Neighbour>, SecAggError>> = None;
        let input = rayon::in_place_scope(|scope| {
            let (id, secrets, neighbours) = (self.id, &secrets, &req.neighbours);
            let agreed = &mut agreed;
            scope.spawn(move |_| *agreed = Some(agree_with(id, round, secrets, neighbours)));
            self.train_input(round, &fit, &mut rng, trainer, transforms, buffer)
        });
        let neighbours =
            agreed.ok_or_else(|| SecAggError::Crypto("key agreement did not run".into()))??;
        let input = input?;
        let self_mask_shares = shamir::split(&secrets.self_mask, p.t, &expected, &mut rng)?;
        let mask_key_shares = shamir::split(&secrets.mask_scalar, p.t, &expected, &mut rng)?;
        let entries = neighbours
            .iter()
            .zip(&self_mask_shares)
            .zip(&mask_key_shares)
            .map(|((nb, b), k)| {
                let ct = encrypt_shares(&nb.enc_shared, round, self.id, nb.id, b, k)?;
                Ok((nb.id, ct))
            })
            .collect::<Result<Vec<_>, SecAggError>>()?;
        let payload = ShareList { entries }.encode(Kind::EncryptedShares, round);
        let next = SharesSent {
            round,
            t: p.t,
            secrets,
            input,
            neighbours,
        };
        Ok((payload, State::SharesSent(Box::new(next))))
    }

    /// Stage 2: decrypt the shares held for the neighbours that sent some, and mask the input
    /// with the self mask and one pairwise mask per such neighbour.
    fn mask_input(&self, s: SharesSent, list: ShareList) -> Result<MaskedAnswer, SecAggError> {
        let round = s.round;
        if list.entries.len() < s.t {
            return Err(SecAggError::Protocol(format!(
                "only {} neighbour(s) sent shares, {} needed",
                list.entries.len(),
                s.t
            )));
        }
        let bits = self.quantizer.modulus_bits();
        let mut masked = s.input; // masked in place: the plain input is not needed again
        let self_key = self_mask_key(&s.secrets.self_mask, round, self.id)?;
        let mut terms: Vec<(&[u8; 32], Sign)> = Vec::with_capacity(list.entries.len() + 1);
        terms.push((&self_key, Sign::Add));
        let mut held = Vec::with_capacity(list.entries.len());
        // Per sender of shares: decrypt them (the keys were agreed in stage 1).
        for (sender, ct) in &list.entries {
            let nb = s
                .neighbours
                .binary_search_by_key(sender, |n| n.id)
                .ok()
                .and_then(|i| s.neighbours.get(i))
                .ok_or_else(|| {
                    SecAggError::Protocol(format!("shares from client {sender}, not a neighbour"))
                })?;
            let (self_mask, mask_key) = decrypt_shares(&nb.enc_shared, round, nb.id, self.id, ct)?;
            let sign = if self.id < nb.id {
                Sign::Add
            } else {
                Sign::Sub
            };
            terms.push((&nb.mask_key, sign));
            held.push(Held {
                owner: nb.id,
                self_mask,
                mask_key,
            });
        }
        apply_masks(&mut masked, &terms, bits, self.config.mask_prg)?;
        drop(terms);
        let payload = encode_masked_input(round, bits, &masked);
        let next = MaskedSent {
            round,
            t: s.t,
            held,
        };
        Ok((payload, State::MaskedSent(Box::new(next)), masked))
    }

    /// Stage 3: reveal self-mask shares of surviving neighbours and mask-key shares of dropped
    /// ones, never both for one neighbour.
    fn unmask(&self, s: MaskedSent, req: UnmaskRequest) -> Result<(Vec<u8>, State), SecAggError> {
        if let Some(both) = req
            .survivors
            .iter()
            .find(|c| req.dropped.binary_search(c).is_ok())
        {
            return Err(SecAggError::Protocol(format!(
                "asked for both secrets of client {both}"
            )));
        }
        let mut named: Vec<ClientId> = req.survivors.iter().chain(&req.dropped).copied().collect();
        named.sort_unstable();
        if !named.iter().copied().eq(s.held.iter().map(|h| h.owner)) {
            return Err(SecAggError::Protocol(
                "the survivors and dropouts named are not the neighbours whose shares this \
                 client holds"
                    .into(),
            ));
        }
        if req.survivors.len() + 1 < s.t {
            return Err(SecAggError::Protocol(format!(
                "only {} surviving neighbour(s), the threshold is {}",
                req.survivors.len(),
                s.t
            )));
        }
        let pick = |ids: &[ClientId], self_mask: bool| -> Vec<(ClientId, SecretScalar)> {
            s.held
                .iter()
                .filter(|h| ids.binary_search(&h.owner).is_ok())
                .map(|h| {
                    let share = if self_mask { &h.self_mask } else { &h.mask_key };
                    (h.owner, share.clone())
                })
                .collect()
        };
        let answer = UnmaskShares {
            self_mask: pick(&req.survivors, true),
            mask_key: pick(&req.dropped, false),
        };
        Ok((answer.encode(s.round), State::Closed { round: s.round }))
    }
}

/// Stage 1's agreements with every neighbour (keys checked beforehand), in parallel: the
/// share-encryption key and the pairwise mask key, in the neighbours' order.
fn agree_with(
    id: ClientId,
    round: u32,
    secrets: &RoundSecrets,
    neighbours: &[KeyAdvertisement],
) -> Result<Vec<Neighbour>, SecAggError> {
    neighbours
        .par_iter()
        .map(|ad| {
            let enc_shared = agree(&secrets.enc, &ad.enc_pk, ad.client)?;
            let pair = agree(&secrets.mask, &ad.mask_pk, ad.client)?;
            Ok(Neighbour {
                id: ad.client,
                enc_shared,
                mask_key: pairwise_mask_key(&pair, round, id, ad.client)?,
            })
        })
        .collect()
}

impl ClientProtocol for SecAggClient {
    fn respond(
        &mut self,
        msg: &ToClient,
        trainer: &mut dyn LocalTrainer,
        transforms: &[Box<dyn UpdateTransform>],
    ) -> Result<FromClient, FlError> {
        match msg {
            ToClient::Fit {
                round,
                params,
                config,
                extensions,
            } => self.advertise(
                *round,
                PendingFit {
                    params: std::sync::Arc::clone(params),
                    config: config.clone(),
                    published: std::sync::Arc::clone(extensions),
                },
            ),
            ToClient::Protocol {
                round,
                stage,
                payload,
            } => self.answer(*round, *stage, payload, trainer, transforms),
            other => Err(FlError::Unsupported(format!(
                "secure aggregation does not answer {other:?}"
            ))),
        }
    }
}
