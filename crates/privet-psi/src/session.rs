//! Configuration shared by both parties and helpers for chunked lists.

use bytes::Bytes;

use crate::dp::{DpConfig, ValueBounds};
use crate::elgamal::CIPHERTEXT_LEN;
use crate::error::{PsiError, Result};
use crate::group::POINT_LEN;
use crate::messages::{ElementKind, Elements, Functionality, Message};
use crate::wire::WireLimits;

/// Default elements per chunk: 16,384 (1.5 MiB for the largest chunk, points with
/// ciphertexts).
pub const DEFAULT_CHUNK_ELEMENTS: u32 = 16_384;

/// Default largest set accepted from the peer: 2^24 (16.7 million).
pub const DEFAULT_MAX_PEER_SET: u64 = 1 << 24;

/// Bytes per element of the largest chunk (a point and a ciphertext), plus framing headroom.
const LARGEST_ELEMENT: usize = POINT_LEN + CIPHERTEXT_LEN;
const HEADROOM: usize = 1024;

/// Size limits of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Largest set size accepted from the peer.
    pub max_peer_set_size: u64,
    /// Largest chunk (elements) sent or accepted.
    pub chunk_elements: u32,
    /// Parsing limits.
    pub wire: WireLimits,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_peer_set_size: DEFAULT_MAX_PEER_SET,
            chunk_elements: DEFAULT_CHUNK_ELEMENTS,
            wire: WireLimits::default(),
        }
    }
}

impl SessionLimits {
    /// Checks that a chunk of `chunk_elements` fits in one message.
    pub fn validate(&self) -> Result<()> {
        if self.chunk_elements == 0 {
            return Err(PsiError::config("chunk_elements must be at least 1"));
        }
        if self.max_peer_set_size == 0 {
            return Err(PsiError::config("max_peer_set_size must be at least 1"));
        }
        self.check_chunk(self.chunk_elements)
    }

    pub(crate) fn check_chunk(&self, chunk: u32) -> Result<()> {
        let need = (chunk as usize)
            .saturating_mul(LARGEST_ELEMENT)
            .saturating_add(HEADROOM);
        if need > self.wire.max_message_bytes {
            return Err(PsiError::config(format!(
                "chunks of {chunk} elements need messages of {need} bytes, more than the limit \
                 of {} bytes",
                self.wire.max_message_bytes
            )));
        }
        Ok(())
    }
}

/// The server's side of the terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Limits.
    pub limits: SessionLimits,
    /// Whether a client may ask for the sum (its values are summed over the intersection).
    pub allow_sum: bool,
    /// Noise on the outcome; `None` releases exact values.
    pub dp: Option<DpConfig>,
    /// Bounds the client must clamp values to; required with `dp` for a sum.
    pub bounds: Option<ValueBounds>,
    /// Whether a client that asks may learn which of its identifiers are in the intersection.
    pub allow_reveal_to_client: bool,
    /// Whether the server wants to learn the intersection (the client must offer it).
    pub learn_intersection: bool,
}

impl Default for ServerConfig {
    /// Size and sum allowed, no noise, no bounds, nobody learns the intersection.
    fn default() -> Self {
        ServerConfig {
            limits: SessionLimits::default(),
            allow_sum: true,
            dp: None,
            bounds: None,
            allow_reveal_to_client: false,
            learn_intersection: false,
        }
    }
}

impl ServerConfig {
    /// Refuses contradictory settings.
    pub fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        if self.dp.is_some() && (self.allow_reveal_to_client || self.learn_intersection) {
            return Err(PsiError::config(
                "noise on the outcome is pointless when a party learns the intersection itself; \
                 choose one",
            ));
        }
        if let Some(dp) = self.dp {
            crate::dp::NoisePlan::new(dp, self.bounds)?;
            if self.allow_sum && self.bounds.is_none() {
                return Err(PsiError::config(
                    "noise on a sum needs value bounds (each value is clamped to them)",
                ));
            }
        }
        Ok(())
    }
}

/// The client's side of the terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Limits.
    pub limits: SessionLimits,
    /// What to compute.
    pub functionality: Functionality,
    /// Ask to learn which identifiers are in the intersection.
    pub request_intersection: bool,
    /// Let the server learn which identifiers are in the intersection.
    pub offer_intersection: bool,
}

impl ClientConfig {
    /// Default limits, no intersection either way.
    pub fn new(functionality: Functionality) -> Self {
        ClientConfig {
            limits: SessionLimits::default(),
            functionality,
            request_intersection: false,
            offer_intersection: false,
        }
    }
}

/// Cuts a list of fixed-size elements into [`Elements`] messages of at most `chunk` elements.
pub(crate) fn chunk_messages(
    kind: ElementKind,
    points: Option<&Bytes>,
    ciphertexts: Option<&Bytes>,
    tags: Option<(&Bytes, usize)>,
    count: usize,
    chunk: usize,
) -> Vec<Message> {
    let mut out = Vec::with_capacity(count.div_ceil(chunk.max(1)));
    let mut start = 0;
    while start < count {
        let end = (start + chunk).min(count);
        let slice = |b: Option<&Bytes>, width: usize| {
            b.map_or_else(Bytes::new, |b| b.slice(start * width..end * width))
        };
        out.push(Message::Elements(Elements {
            kind,
            offset: start as u64,
            points: slice(points, POINT_LEN),
            ciphertexts: slice(ciphertexts, CIPHERTEXT_LEN),
            tags: tags.map_or_else(Bytes::new, |(b, w)| b.slice(start * w..end * w)),
        }));
        start = end;
    }
    out
}

/// Checks one incoming chunk's place and size: returns its element count.
pub(crate) fn check_chunk(
    e: &Elements,
    received: usize,
    total: u64,
    chunk: u32,
    element_len: usize,
    bytes: &Bytes,
) -> Result<usize> {
    if e.offset != received as u64 {
        return Err(PsiError::peer(format!(
            "a chunk starts at element {} but {received} have arrived",
            e.offset
        )));
    }
    if bytes.is_empty() || !bytes.len().is_multiple_of(element_len) {
        return Err(PsiError::invalid(
            "a chunk is empty or carries a partial element",
        ));
    }
    let n = bytes.len() / element_len;
    if n > chunk as usize {
        return Err(PsiError::peer(format!(
            "a chunk of {n} elements exceeds the agreed {chunk}"
        )));
    }
    if (received + n) as u64 > total {
        return Err(PsiError::peer(format!(
            "more elements than the {total} announced"
        )));
    }
    Ok(n)
}

/// A sorted order of `items` by their bytes: `order[i]` is the input index of the `i`-th
/// smallest.
pub(crate) fn sorted_order(items: &[[u8; 32]]) -> Vec<u32> {
    use rayon::prelude::*;
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    order.par_sort_unstable_by_key(|&i| items[i as usize]);
    order
}
