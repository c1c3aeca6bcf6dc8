//! The client: holds identifiers (and values for the sum) and the ElGamal key; opens the
//! session and learns the outcome.

use bytes::Bytes;
use privet_dp::noise::NoiseRng;

use crate::dp::{DpConfig, NoiseInfo, NoisePlan};
use crate::elgamal::{Ciphertext, SecretKey, SumRange};
use crate::error::{PsiError, Result};
use crate::group::{BlindingKey, POINT_LEN, SessionId, put_tag, tag_len};
use crate::input::InputSet;
use crate::messages::{ClientHello, ElementKind, Functionality, Message, Outcome, ServerHello};
use crate::server::message_name;
use crate::session::{ClientConfig, check_chunk, chunk_messages, sorted_order};

/// What the client learns.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOutput {
    /// The functionality that ran.
    pub functionality: Functionality,
    /// The server's set size (announced in its hello).
    pub server_set_size: u64,
    /// The intersection size as released (exact without noise; may be negative with noise).
    pub intersection_size: i64,
    /// The sum of the client's (clamped) values over the intersection, as released.
    pub sum: Option<i64>,
    /// The privacy parameters of the release, if noise was added.
    pub dp: Option<DpConfig>,
    /// The size's noise.
    pub size_noise: Option<NoiseInfo>,
    /// The sum's noise.
    pub sum_noise: Option<NoiseInfo>,
    /// The bounds values were clamped to, and how many values were changed by clamping.
    pub clamped: Option<(crate::dp::ValueBounds, usize)>,
    /// Indices (into the client's input) of identifiers in the intersection, when revealed;
    /// ascending.
    pub intersection: Option<Vec<usize>>,
}

struct AwaitHello {
    nonce: [u8; 32],
    keys: Option<SecretKey>,
}

struct Running {
    hello: ServerHello,
    session: SessionId,
    tag_len: usize,
    key: BlindingKey,
    secret: Option<SecretKey>,
    range: Option<SumRange>,
    noise: Option<NoisePlan>,
    clamped: Option<(crate::dp::ValueBounds, usize)>,
    /// `order[i]`: input index of the `i`-th element sent.
    order: Vec<u32>,
    server_tags: Vec<u128>,
}

enum State {
    Start,
    AwaitHello(Box<AwaitHello>),
    Collecting(Box<Running>),
    AwaitOutcome(Box<Running>),
    Done(Box<ClientOutput>),
    Failed,
}

/// The client's state machine: [`PjcClient::start`] gives the first message; feed it every
/// message from the server with [`PjcClient::handle`] and send what it returns.
pub struct PjcClient {
    config: ClientConfig,
    set: InputSet,
    rng: NoiseRng,
    state: State,
}

impl std::fmt::Debug for PjcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Start => "not started",
            State::AwaitHello(_) => "awaiting hello",
            State::Collecting(_) => "collecting",
            State::AwaitOutcome(_) => "awaiting outcome",
            State::Done(_) => "done",
            State::Failed => "failed",
        };
        f.debug_struct("PjcClient")
            .field("set", &self.set)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl PjcClient {
    /// A client for `set` under `config`, drawing keys from the operating system.
    pub fn new(config: ClientConfig, set: InputSet) -> Result<Self> {
        let rng =
            privet_dp::noise::os_seeded_rng().map_err(|e| PsiError::Randomness(e.to_string()))?;
        Self::with_rng(config, set, rng)
    }

    /// The same with an explicit ChaCha20 generator (seeded in tests only).
    pub fn with_rng(config: ClientConfig, set: InputSet, rng: NoiseRng) -> Result<Self> {
        config.limits.validate()?;
        if config.functionality == Functionality::Sum && set.values().is_none() {
            return Err(PsiError::config("a sum needs a value for every identifier"));
        }
        Ok(PjcClient {
            config,
            set,
            rng,
            state: State::Start,
        })
    }

    /// The outcome once the session is over.
    pub fn output(&self) -> Option<&ClientOutput> {
        match &self.state {
            State::Done(o) => Some(o),
            _ => None,
        }
    }

    /// Whether the session is over (successfully or not).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done(_) | State::Failed)
    }

    /// The client's input set.
    pub fn input(&self) -> &InputSet {
        &self.set
    }

    /// Opens the session: the client hello.
    pub fn start(&mut self) -> Result<Vec<Message>> {
        if !matches!(self.state, State::Start) {
            return Err(PsiError::misuse("start called twice"));
        }
        let mut nonce = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut self.rng, &mut nonce);
        let (keys, public_key) = match self.config.functionality {
            Functionality::Sum => {
                let (sk, pk) = SecretKey::generate(&mut self.rng);
                (Some(sk), Some(pk.to_bytes()))
            }
            Functionality::Cardinality => (None, None),
        };
        let hello = ClientHello {
            nonce,
            functionality: self.config.functionality,
            set_size: self.set.len() as u64,
            public_key,
            request_intersection: self.config.request_intersection,
            offer_intersection: self.config.offer_intersection,
            max_chunk_elements: self.config.limits.chunk_elements,
            case_rule: self.set.case_rule(),
        };
        self.state = State::AwaitHello(Box::new(AwaitHello { nonce, keys }));
        Ok(vec![Message::ClientHello(hello)])
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
            (State::AwaitHello(a), Message::ServerHello(h)) => self.on_hello(*a, h),
            (State::Collecting(mut r), Message::Elements(e)) => {
                if e.kind != ElementKind::ServerBlinded {
                    return Err(PsiError::peer("the server sent a client list"));
                }
                check_chunk(
                    &e,
                    r.server_tags.len(),
                    r.hello.set_size,
                    r.hello.chunk_elements,
                    POINT_LEN,
                    &e.points,
                )?;
                if !e.ciphertexts.is_empty() || !e.tags.is_empty() {
                    return Err(PsiError::invalid("a server chunk carries more than points"));
                }
                let tags = r.key.tag_points(&r.session, &e.points, r.tag_len)?;
                r.server_tags.extend(tags);
                if (r.server_tags.len() as u64) < r.hello.set_size {
                    return Ok((State::Collecting(r), Vec::new()));
                }
                // Sorted, the tags cannot be matched back to the server's order (unless the
                // client agreed to reveal the intersection to the server).
                if !r.hello.reveal_to_server {
                    rayon::slice::ParallelSliceMut::par_sort_unstable(&mut r.server_tags[..]);
                }
                let mut bytes = Vec::with_capacity(r.server_tags.len() * r.tag_len);
                for &t in &r.server_tags {
                    put_tag(&mut bytes, t, r.tag_len);
                }
                let bytes = Bytes::from(bytes);
                let out = chunk_messages(
                    ElementKind::ServerTags,
                    None,
                    None,
                    Some((&bytes, r.tag_len)),
                    r.server_tags.len(),
                    r.hello.chunk_elements as usize,
                );
                r.server_tags = Vec::new();
                Ok((State::AwaitOutcome(r), out))
            }
            (State::AwaitOutcome(r), Message::Outcome(o)) => {
                let out = self.on_outcome(*r, o)?;
                Ok((State::Done(Box::new(out)), Vec::new()))
            }
            (State::Done(_), _) | (State::Failed, _) | (State::Start, _) => Err(PsiError::misuse(
                "a message for a session that is not running",
            )),
            (_, other) => Err(PsiError::peer(format!(
                "unexpected message now: {}",
                message_name(&other)
            ))),
        }
    }

    fn on_hello(&mut self, a: AwaitHello, h: ServerHello) -> Result<(State, Vec<Message>)> {
        let cfg = &self.config;
        if h.functionality != cfg.functionality {
            return Err(PsiError::peer("the server runs another functionality"));
        }
        if h.set_size == 0 || h.set_size > cfg.limits.max_peer_set_size {
            return Err(PsiError::peer(format!(
                "the server announces {} identifiers; accepted: 1 to {}",
                h.set_size, cfg.limits.max_peer_set_size
            )));
        }
        if h.chunk_elements == 0 || h.chunk_elements > cfg.limits.chunk_elements {
            return Err(PsiError::peer("the server's chunk size is out of range"));
        }
        if h.reveal_to_client != cfg.request_intersection {
            return Err(PsiError::peer(
                "the server answers another intersection request",
            ));
        }
        if h.reveal_to_server && !cfg.offer_intersection {
            return Err(PsiError::peer(
                "the server wants the intersection, which the client did not offer",
            ));
        }
        let sum = cfg.functionality == Functionality::Sum;
        if h.bounds.is_some() && !sum {
            return Err(PsiError::peer("value bounds in a cardinality session"));
        }
        if sum && h.noise.is_some() && h.bounds.is_none() {
            return Err(PsiError::peer("noise on the sum without value bounds"));
        }
        let noise = h
            .noise
            .map(|dp| NoisePlan::new(dp, h.bounds))
            .transpose()
            .map_err(|_| PsiError::invalid("the server's noise parameters are invalid"))?;

        let session = SessionId::derive(&a.nonce, &h.nonce);
        let tag_len = tag_len(h.set_size, self.set.len() as u64);
        let key = BlindingKey::random(&mut self.rng);
        let blinded = key.blind_identifiers(&session, self.set.identifiers());
        let order = sorted_order(&blinded);
        let mut points = Vec::with_capacity(blinded.len() * POINT_LEN);
        for &i in &order {
            points.extend_from_slice(&blinded[i as usize]);
        }
        drop(blinded);
        let points = Bytes::from(points);

        let (ciphertexts, range, clamped) = match (sum, &a.keys, self.set.values()) {
            (true, Some(sk), Some(values)) => {
                let mut changed = 0usize;
                let ordered: Vec<i64> = order
                    .iter()
                    .map(|&i| {
                        let v = values[i as usize];
                        match h.bounds {
                            Some(b) => {
                                let c = b.clamp(v);
                                changed += usize::from(c != v);
                                c
                            }
                            None => v,
                        }
                    })
                    .collect();
                let neg: i64 = ordered.iter().filter(|&&v| v < 0).sum();
                let pos: i64 = ordered.iter().filter(|&&v| v > 0).sum();
                let tail = noise.as_ref().map_or(0, NoisePlan::sum_tail);
                let tail = i64::try_from(tail).unwrap_or(i64::MAX);
                let range = SumRange::new(neg.saturating_sub(tail), pos.saturating_add(tail))?;
                let cts = Bytes::from(sk.encrypt_batch(&ordered, &mut self.rng));
                (Some(cts), Some(range), h.bounds.map(|b| (b, changed)))
            }
            (true, _, _) => return Err(PsiError::misuse("a sum session without key or values")),
            _ => (None, None, None),
        };
        let out = chunk_messages(
            ElementKind::ClientBlinded,
            Some(&points),
            ciphertexts.as_ref(),
            None,
            order.len(),
            h.chunk_elements as usize,
        );
        let running = Running {
            hello: h,
            session,
            tag_len,
            key,
            secret: a.keys,
            range,
            noise,
            clamped,
            order,
            server_tags: Vec::new(),
        };
        Ok((State::Collecting(Box::new(running)), out))
    }

    fn on_outcome(&mut self, r: Running, o: Outcome) -> Result<ClientOutput> {
        let sum = match (&r.secret, r.range, o.encrypted_sum) {
            (Some(sk), Some(range), Some(bytes)) => {
                let ct = Ciphertext::from_bytes(&bytes)?;
                Some(sk.decrypt(&ct, range)?)
            }
            (None, None, None) => None,
            _ => {
                return Err(PsiError::peer(
                    "the outcome's sum does not match the session",
                ));
            }
        };
        let n = r.order.len();
        let intersection = match (r.hello.reveal_to_client, o.client_membership) {
            (true, Some(bits)) => {
                if bits.len() != n.div_ceil(8) {
                    return Err(PsiError::invalid(
                        "the membership bitmap has the wrong length",
                    ));
                }
                let mut ids = Vec::new();
                for (byte_i, &b) in bits.iter().enumerate() {
                    for bit in 0..8 {
                        if b & (1 << bit) != 0 {
                            let pos = byte_i * 8 + bit;
                            let &i = r.order.get(pos).ok_or_else(|| {
                                PsiError::invalid("the membership bitmap has bits past the set")
                            })?;
                            ids.push(i as usize);
                        }
                    }
                }
                if r.hello.noise.is_none() && ids.len() as i64 != o.intersection_size {
                    return Err(PsiError::peer("the membership disagrees with the size"));
                }
                ids.sort_unstable();
                Some(ids)
            }
            (false, None) => None,
            // A size-only outcome without membership is fine when revealing was not agreed.
            (true, None) if o.intersection_size == 0 => Some(Vec::new()),
            _ => {
                return Err(PsiError::peer(
                    "the outcome's membership does not match the session",
                ));
            }
        };
        if r.hello.noise.is_none()
            && (o.intersection_size < 0
                || o.intersection_size as u64 > r.hello.set_size.min(n as u64))
        {
            return Err(PsiError::peer("the intersection size is impossible"));
        }
        Ok(ClientOutput {
            functionality: r.hello.functionality,
            server_set_size: r.hello.set_size,
            intersection_size: o.intersection_size,
            sum,
            dp: r.hello.noise,
            size_noise: r.noise.as_ref().map(NoisePlan::size_info),
            sum_noise: r.noise.as_ref().and_then(NoisePlan::sum_info),
            clamped: r.clamped,
            intersection,
        })
    }
}
