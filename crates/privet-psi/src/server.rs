//! The server: holds identifiers only, compares the doubly blinded sets, sums the matching
//! ciphertexts and adds the noise.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use privet_dp::noise::NoiseRng;

use crate::dp::NoisePlan;
use crate::elgamal::{CIPHERTEXT_LEN, Ciphertext, PublicKey};
use crate::error::{PsiError, Result};
use crate::group::{BlindingKey, POINT_LEN, SessionId, read_tag, tag_len};
use crate::input::InputSet;
use crate::messages::{ClientHello, ElementKind, Functionality, Message, Outcome, ServerHello};
use crate::session::{ServerConfig, check_chunk, chunk_messages, sorted_order};

/// What the server learns.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerOutput {
    /// The functionality that ran.
    pub functionality: Functionality,
    /// The client's set size (announced in its hello).
    pub client_set_size: u64,
    /// The exact intersection size: the server compares the blinded sets, so it always learns
    /// it, noise or not.
    pub exact_intersection_size: u64,
    /// What the client was sent (with noise, if any).
    pub released_intersection_size: i64,
    /// Indices (into the server's input) of the identifiers in the intersection, when the
    /// client agreed to reveal it; ascending.
    pub intersection: Option<Vec<usize>>,
    /// The noise that was added, if any.
    pub noise: Option<NoisePlan>,
}

struct Collecting {
    functionality: Functionality,
    session: SessionId,
    tag_len: usize,
    chunk: u32,
    n_client: u64,
    key: BlindingKey,
    public_key: Option<PublicKey>,
    noise: Option<NoisePlan>,
    reveal_to_client: bool,
    reveal_to_server: bool,
    /// `order[i]`: input index of the `i`-th element sent.
    order: Vec<u32>,
    client_tags: Vec<u128>,
    client_ciphertexts: Vec<u8>,
    server_tags: Vec<u128>,
}

enum State {
    AwaitHello,
    Collecting(Box<Collecting>),
    Done(Box<ServerOutput>),
    Failed,
}

/// The server's state machine. Feed it every message from the client with
/// [`PjcServer::handle`] and send what it returns; it does no I/O.
pub struct PjcServer {
    config: ServerConfig,
    set: InputSet,
    rng: NoiseRng,
    state: State,
}

impl std::fmt::Debug for PjcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::AwaitHello => "awaiting hello",
            State::Collecting(_) => "collecting",
            State::Done(_) => "done",
            State::Failed => "failed",
        };
        f.debug_struct("PjcServer")
            .field("set", &self.set)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl PjcServer {
    /// A server for `set` under `config`, drawing keys and noise from the operating system.
    pub fn new(config: ServerConfig, set: InputSet) -> Result<Self> {
        let rng =
            privet_dp::noise::os_seeded_rng().map_err(|e| PsiError::Randomness(e.to_string()))?;
        Self::with_rng(config, set, rng)
    }

    /// The same with an explicit ChaCha20 generator (tests seed it for reproducibility; in
    /// production it must be keyed from the operating system).
    pub fn with_rng(config: ServerConfig, set: InputSet, rng: NoiseRng) -> Result<Self> {
        config.validate()?;
        Ok(PjcServer {
            config,
            set,
            rng,
            state: State::AwaitHello,
        })
    }

    /// The outcome once the session is over.
    pub fn output(&self) -> Option<&ServerOutput> {
        match &self.state {
            State::Done(o) => Some(o),
            _ => None,
        }
    }

    /// Whether the session is over (successfully or not).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done(_) | State::Failed)
    }

    /// Handles one message and returns the messages to send. After an error the session is
    /// failed; tell the peer with [`crate::abort_for`].
    pub fn handle(&mut self, msg: Message) -> Result<Vec<Message>> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (next, out) = self.step(state, msg)?;
        self.state = next;
        Ok(out)
    }

    fn step(&mut self, state: State, msg: Message) -> Result<(State, Vec<Message>)> {
        match (state, msg) {
            (_, Message::Abort(reason)) => Err(PsiError::PeerAborted(reason)),
            (State::AwaitHello, Message::ClientHello(h)) => self.on_hello(h),
            (State::Collecting(mut c), Message::Elements(e)) => {
                match e.kind {
                    ElementKind::ClientBlinded => {
                        let n = check_chunk(
                            &e,
                            c.client_tags.len(),
                            c.n_client,
                            c.chunk,
                            POINT_LEN,
                            &e.points,
                        )?;
                        let want_ct = if c.functionality == Functionality::Sum {
                            n * CIPHERTEXT_LEN
                        } else {
                            0
                        };
                        if e.ciphertexts.len() != want_ct || !e.tags.is_empty() {
                            return Err(PsiError::invalid(
                                "a client chunk's ciphertexts do not match its points",
                            ));
                        }
                        let tags = c.key.tag_points(&c.session, &e.points, c.tag_len)?;
                        c.client_tags.extend(tags);
                        c.client_ciphertexts.extend_from_slice(&e.ciphertexts);
                    }
                    ElementKind::ServerTags => {
                        check_chunk(
                            &e,
                            c.server_tags.len(),
                            self.set.len() as u64,
                            c.chunk,
                            c.tag_len,
                            &e.tags,
                        )?;
                        if !e.points.is_empty() || !e.ciphertexts.is_empty() {
                            return Err(PsiError::invalid("a tag chunk carries points"));
                        }
                        c.server_tags
                            .extend(e.tags.chunks_exact(c.tag_len).map(read_tag));
                    }
                    ElementKind::ServerBlinded => {
                        return Err(PsiError::peer("the client sent server elements"));
                    }
                }
                if c.client_tags.len() as u64 == c.n_client && c.server_tags.len() == self.set.len()
                {
                    self.finish(*c)
                } else {
                    Ok((State::Collecting(c), Vec::new()))
                }
            }
            (State::Done(_), _) | (State::Failed, _) => {
                Err(PsiError::misuse("a message for a finished session"))
            }
            (_, other) => Err(PsiError::peer(format!(
                "unexpected message now: {}",
                message_name(&other)
            ))),
        }
    }

    fn on_hello(&mut self, h: ClientHello) -> Result<(State, Vec<Message>)> {
        let cfg = &self.config;
        if h.set_size == 0 || h.set_size > cfg.limits.max_peer_set_size {
            return Err(PsiError::peer(format!(
                "the client announces {} identifiers; accepted: 1 to {}",
                h.set_size, cfg.limits.max_peer_set_size
            )));
        }
        if h.case_rule != self.set.case_rule() {
            return Err(PsiError::config(
                "the client normalises identifiers with another case rule",
            ));
        }
        if h.functionality == Functionality::Sum && !cfg.allow_sum {
            return Err(PsiError::config("this server does not compute sums"));
        }
        if h.request_intersection && !cfg.allow_reveal_to_client {
            return Err(PsiError::config(
                "the client asks for the intersection, which this server does not reveal",
            ));
        }
        if cfg.learn_intersection && !h.offer_intersection {
            return Err(PsiError::config(
                "this server learns the intersection, and the client does not offer it",
            ));
        }
        let public_key = match h.public_key {
            Some(k) => Some(PublicKey::from_bytes(&k)?),
            None => None,
        };
        let sum = h.functionality == Functionality::Sum;
        let bounds = if sum { cfg.bounds } else { None };
        let noise = cfg.dp.map(|dp| NoisePlan::new(dp, bounds)).transpose()?;
        let chunk = cfg.limits.chunk_elements.min(h.max_chunk_elements);
        if chunk == 0 {
            return Err(PsiError::peer("the client accepts chunks of 0 elements"));
        }

        let mut nonce = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut self.rng, &mut nonce);
        let session = SessionId::derive(&h.nonce, &nonce);
        let n_server = self.set.len() as u64;
        let tag_len = tag_len(n_server, h.set_size);
        let key = BlindingKey::random(&mut self.rng);
        let blinded = key.blind_identifiers(&session, self.set.identifiers());
        // Sorted by encoding: the order reveals nothing about the input's order.
        let order = sorted_order(&blinded);
        let mut points = Vec::with_capacity(blinded.len() * POINT_LEN);
        for &i in &order {
            points.extend_from_slice(&blinded[i as usize]);
        }
        drop(blinded);
        let points = Bytes::from(points);

        let hello = ServerHello {
            nonce,
            set_size: n_server,
            functionality: h.functionality,
            bounds,
            noise: noise.as_ref().map(NoisePlan::config),
            reveal_to_client: h.request_intersection,
            reveal_to_server: cfg.learn_intersection,
            chunk_elements: chunk,
        };
        let mut out = vec![Message::ServerHello(hello)];
        out.extend(chunk_messages(
            ElementKind::ServerBlinded,
            Some(&points),
            None,
            None,
            order.len(),
            chunk as usize,
        ));
        let state = Collecting {
            functionality: h.functionality,
            session,
            tag_len,
            chunk,
            n_client: h.set_size,
            key,
            public_key,
            noise,
            reveal_to_client: h.request_intersection,
            reveal_to_server: cfg.learn_intersection,
            order,
            client_tags: Vec::new(),
            client_ciphertexts: Vec::new(),
            server_tags: Vec::new(),
        };
        Ok((State::Collecting(Box::new(state)), out))
    }

    fn finish(&mut self, c: Collecting) -> Result<(State, Vec<Message>)> {
        let mut by_tag: HashMap<u128, u32> = HashMap::with_capacity(c.client_tags.len());
        for (i, &t) in c.client_tags.iter().enumerate() {
            if by_tag.insert(t, i as u32).is_some() {
                return Err(PsiError::peer("the client's elements repeat"));
            }
        }
        let mut seen: HashSet<u128> = HashSet::with_capacity(c.server_tags.len());
        let mut matched_client = Vec::new();
        let mut matched_server = Vec::new();
        for (pos, &t) in c.server_tags.iter().enumerate() {
            if !seen.insert(t) {
                return Err(PsiError::peer(
                    "the server's doubly blinded elements repeat",
                ));
            }
            if let Some(&i) = by_tag.get(&t) {
                matched_client.push(i);
                matched_server.push(pos);
            }
        }
        let exact = matched_client.len() as u64;
        let size_noise = c.noise.as_ref().map_or(0, |n| n.sample_size(&mut self.rng));
        let released = exact as i64 + size_noise;

        let encrypted_sum = match (&c.public_key, c.functionality) {
            (Some(pk), Functionality::Sum) => {
                let sum = Ciphertext::sum_selected(&c.client_ciphertexts, &matched_client)?;
                let sum_noise = c.noise.as_ref().map_or(0, |n| n.sample_sum(&mut self.rng));
                // Adding a fresh encryption (of the noise, or of zero) re-randomises the sum.
                Some(
                    pk.add_and_rerandomize(&sum, sum_noise, &mut self.rng)
                        .to_bytes(),
                )
            }
            _ => None,
        };
        let client_membership = c.reveal_to_client.then(|| {
            let mut bits = vec![0u8; (c.n_client as usize).div_ceil(8)];
            for &i in &matched_client {
                bits[i as usize / 8] |= 1 << (i % 8);
            }
            Bytes::from(bits)
        });
        let intersection = c.reveal_to_server.then(|| {
            let mut ids: Vec<usize> = matched_server
                .iter()
                .map(|&p| c.order[p] as usize)
                .collect();
            ids.sort_unstable();
            ids
        });
        let output = ServerOutput {
            functionality: c.functionality,
            client_set_size: c.n_client,
            exact_intersection_size: exact,
            released_intersection_size: released,
            intersection,
            noise: c.noise,
        };
        let outcome = Outcome {
            intersection_size: released,
            encrypted_sum,
            client_membership,
        };
        Ok((
            State::Done(Box::new(output)),
            vec![Message::Outcome(outcome)],
        ))
    }

    /// The server's input set.
    pub fn input(&self) -> &InputSet {
        &self.set
    }
}

pub(crate) fn message_name(m: &Message) -> &'static str {
    match m {
        Message::ClientHello(_) => "client hello",
        Message::ServerHello(_) => "server hello",
        Message::Elements(_) => "elements",
        Message::Outcome(_) => "outcome",
        Message::Abort(_) => "abort",
    }
}
