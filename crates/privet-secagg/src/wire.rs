//! The binary encoding of protocol payloads (version 2).
//!
//! Every payload starts with a 6-byte header: the version byte (`2`), a kind byte (which
//! message, hence which stage), and the round as a little-endian `u32`. Then, by kind (all
//! integers little-endian, client ids `u32`, lists as a `u32` count followed by the entries in
//! strictly ascending client order):
//!
//! | kind | direction, stage | body |
//! |---|---|---|
//! | 1 advertise keys | client → coordinator, 0 | id, mask generator id (u8, [`MaskPrg::id`]), encryption key (32), mask key (32), self-mask commitment (32), Ed25519 signature (64) over all of it |
//! | 2 share keys | coordinator → client, 1 | `k` (u32), `t` (u32), graph seed (32), member ids (list), neighbours' advertisements (list of kind-1 bodies) |
//! | 3 encrypted shares | client → coordinator, 1 | list of (recipient id, ciphertext (80)) |
//! | 4 routed shares | coordinator → client, 2 | list of (sender id, ciphertext (80)) |
//! | 5 masked input | client → coordinator, 2 | `b` (u8), word count (u32), words of `⌈b/8⌉` bytes, each `< 2^b` |
//! | 6 unmask request | coordinator → client, 3 | surviving neighbours (list of ids), dropped neighbours (list of ids) |
//! | 7 unmask shares | client → coordinator, 3 | self-mask shares (list of (owner id, scalar (32))), mask-key shares (same) |
//!
//! Parsing never panics and never trusts a length: counts are checked against the caller's
//! limits (the round's client bound, the model length) and against the bytes actually left
//! before anything is allocated; trailing bytes, unknown versions, kinds or mask generators,
//! unsorted or duplicate lists, non-canonical scalars and out-of-range words are refused.
//!
//! Version 2 added the mask generator id to the advertisement (version 1 always expanded masks
//! with ChaCha20); a version-1 peer's messages are refused as an unsupported version.

use privet_fl::ClientId;

use crate::SecAggError;
use crate::crypto::{CIPHERTEXT_LEN, SecretScalar, bytes_per_word, combine_words, modulus_mask};
use crate::prg::MaskPrg;

/// The payload format version.
pub(crate) const VERSION: u8 = 2;

/// Bytes of the header.
pub(crate) const HEADER_LEN: usize = 6;

/// The longest encoded vector accepted (model length plus two).
pub(crate) const MAX_VECTOR_LEN: usize = 1 << 28;

/// Bytes of an encoded key advertisement.
pub(crate) const ADVERTISEMENT_LEN: usize = 4 + 1 + 32 + 32 + 32 + 64;

/// Which message a payload holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    AdvertiseKeys = 1,
    ShareKeys = 2,
    EncryptedShares = 3,
    RoutedShares = 4,
    MaskedInput = 5,
    UnmaskRequest = 6,
    UnmaskShares = 7,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::AdvertiseKeys,
            2 => Kind::ShareKeys,
            3 => Kind::EncryptedShares,
            4 => Kind::RoutedShares,
            5 => Kind::MaskedInput,
            6 => Kind::UnmaskRequest,
            7 => Kind::UnmaskShares,
            _ => return None,
        })
    }

    /// The stage the message belongs to.
    pub(crate) fn stage(self) -> u8 {
        match self {
            Kind::AdvertiseKeys => 0,
            Kind::ShareKeys | Kind::EncryptedShares => 1,
            Kind::RoutedShares | Kind::MaskedInput => 2,
            Kind::UnmaskRequest | Kind::UnmaskShares => 3,
        }
    }
}

/// A bounds-checked cursor over a payload.
struct Reader<'a> {
    buf: &'a [u8],
}

fn malformed(what: impl Into<String>) -> SecAggError {
    SecAggError::Malformed(what.into())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SecAggError> {
        let (head, rest) = self
            .buf
            .split_at_checked(n)
            .ok_or_else(|| malformed("truncated"))?;
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SecAggError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| malformed("truncated"))
    }

    fn u8(&mut self) -> Result<u8, SecAggError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, SecAggError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn client(&mut self) -> Result<ClientId, SecAggError> {
        Ok(ClientId(self.u32()?))
    }

    /// A list count, checked against `limit` and against the bytes left for entries of at
    /// least `entry_len` bytes.
    fn count(&mut self, limit: usize, entry_len: usize, what: &str) -> Result<usize, SecAggError> {
        let count = self.u32()? as usize;
        if count > limit {
            return Err(malformed(format!(
                "{what}: {count} entries, at most {limit} allowed"
            )));
        }
        if count.saturating_mul(entry_len) > self.buf.len() {
            return Err(malformed(format!("{what}: truncated")));
        }
        Ok(count)
    }

    fn finish(self) -> Result<(), SecAggError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!("{} trailing bytes", self.buf.len())))
        }
    }
}

/// Checks that `ids` are strictly ascending.
fn check_sorted(ids: impl Iterator<Item = ClientId>, what: &str) -> Result<(), SecAggError> {
    let mut last: Option<ClientId> = None;
    for id in ids {
        if last.is_some_and(|l| l >= id) {
            return Err(malformed(format!(
                "{what}: not in strictly ascending order"
            )));
        }
        last = Some(id);
    }
    Ok(())
}

/// Reads the header of `payload` and checks it announces `kind` for `round`.
fn open(payload: &[u8], kind: Kind, round: u32) -> Result<Reader<'_>, SecAggError> {
    let mut r = Reader { buf: payload };
    let version = r.u8()?;
    if version != VERSION {
        return Err(malformed(format!("unsupported version {version}")));
    }
    let found = Kind::from_byte(r.u8()?).ok_or_else(|| malformed("unknown message kind"))?;
    let found_round = r.u32()?;
    if found.stage() != kind.stage() {
        return Err(SecAggError::WrongStage {
            expected: kind.stage(),
            found: found.stage(),
        });
    }
    if found != kind {
        return Err(malformed(format!(
            "expected a {kind:?} message, found {found:?}"
        )));
    }
    if found_round != round {
        return Err(SecAggError::WrongRound {
            expected: round,
            found: found_round,
        });
    }
    Ok(r)
}

fn header(kind: Kind, round: u32, body_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.push(VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&round.to_le_bytes());
    out
}

fn put_ids(out: &mut Vec<u8>, ids: &[ClientId]) {
    out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.0.to_le_bytes());
    }
}

fn get_ids(r: &mut Reader<'_>, limit: usize, what: &str) -> Result<Vec<ClientId>, SecAggError> {
    let count = r.count(limit, 4, what)?;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(r.client()?);
    }
    check_sorted(ids.iter().copied(), what)?;
    Ok(ids)
}

/// What a payload that parsed completely announced: its round and stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// The round in the header.
    pub round: u32,
    /// The protocol stage the message belongs to (0 to 3).
    pub stage: u8,
}

/// Parses `payload` as whichever message its header announces, under the same limits as the
/// protocol (`max_clients` for every list, a masked input of `Quantizer::vector_len(model_len)`
/// words of `bits` bits), without any protocol state. Runtimes can use it to refuse garbage
/// before it reaches a client or the coordinator; the fuzz target `secagg_wire` runs every
/// decoder through it.
pub fn inspect(
    payload: &[u8],
    max_clients: usize,
    model_len: usize,
    bits: u32,
) -> Result<Inspected, SecAggError> {
    let mut r = Reader { buf: payload };
    let version = r.u8()?;
    if version != VERSION {
        return Err(malformed(format!("unsupported version {version}")));
    }
    let kind = Kind::from_byte(r.u8()?).ok_or_else(|| malformed("unknown message kind"))?;
    let round = r.u32()?;
    match kind {
        Kind::AdvertiseKeys => KeyAdvertisement::decode(payload, round).map(drop)?,
        Kind::ShareKeys => ShareKeysRequest::decode(payload, round, max_clients).map(drop)?,
        Kind::EncryptedShares | Kind::RoutedShares => {
            ShareList::decode(payload, kind, round, max_clients).map(drop)?
        }
        Kind::MaskedInput => {
            let len = model_len.saturating_add(2);
            MaskedInput::decode(payload.to_vec(), round, bits, len).map(drop)?
        }
        Kind::UnmaskRequest => UnmaskRequest::decode(payload, round, max_clients).map(drop)?,
        Kind::UnmaskShares => UnmaskShares::decode(payload, round, max_clients).map(drop)?,
    }
    Ok(Inspected {
        round,
        stage: kind.stage(),
    })
}

/// A client's signed round keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyAdvertisement {
    pub(crate) client: ClientId,
    pub(crate) prg: MaskPrg,
    pub(crate) enc_pk: [u8; 32],
    pub(crate) mask_pk: [u8; 32],
    pub(crate) commitment: [u8; 32],
    pub(crate) signature: [u8; 64],
}

impl KeyAdvertisement {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.client.0.to_le_bytes());
        out.push(self.prg.id());
        out.extend_from_slice(&self.enc_pk);
        out.extend_from_slice(&self.mask_pk);
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(&self.signature);
    }

    fn get(r: &mut Reader<'_>) -> Result<Self, SecAggError> {
        Ok(KeyAdvertisement {
            client: r.client()?,
            prg: {
                let id = r.u8()?;
                MaskPrg::from_id(id)
                    .ok_or_else(|| malformed(format!("unknown mask generator id {id}")))?
            },
            enc_pk: r.array()?,
            mask_pk: r.array()?,
            commitment: r.array()?,
            signature: r.array()?,
        })
    }

    pub(crate) fn encode(&self, round: u32) -> Vec<u8> {
        let mut out = header(Kind::AdvertiseKeys, round, ADVERTISEMENT_LEN);
        self.put(&mut out);
        out
    }

    pub(crate) fn decode(payload: &[u8], round: u32) -> Result<Self, SecAggError> {
        let mut r = open(payload, Kind::AdvertiseKeys, round)?;
        let ad = Self::get(&mut r)?;
        r.finish()?;
        Ok(ad)
    }
}

/// Stage 1 request: the round's graph and the recipient's neighbours' keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShareKeysRequest {
    pub(crate) k: u32,
    pub(crate) t: u32,
    pub(crate) graph_seed: [u8; 32],
    pub(crate) members: Vec<ClientId>,
    pub(crate) neighbours: Vec<KeyAdvertisement>,
}

impl ShareKeysRequest {
    pub(crate) fn encode(&self, round: u32) -> Vec<u8> {
        let body = 8 + 32 + 8 + 4 * self.members.len() + ADVERTISEMENT_LEN * self.neighbours.len();
        let mut out = header(Kind::ShareKeys, round, body);
        out.extend_from_slice(&self.k.to_le_bytes());
        out.extend_from_slice(&self.t.to_le_bytes());
        out.extend_from_slice(&self.graph_seed);
        put_ids(&mut out, &self.members);
        out.extend_from_slice(&(self.neighbours.len() as u32).to_le_bytes());
        for ad in &self.neighbours {
            ad.put(&mut out);
        }
        out
    }

    pub(crate) fn decode(
        payload: &[u8],
        round: u32,
        max_clients: usize,
    ) -> Result<Self, SecAggError> {
        let mut r = open(payload, Kind::ShareKeys, round)?;
        let k = r.u32()?;
        let t = r.u32()?;
        let graph_seed = r.array()?;
        let members = get_ids(&mut r, max_clients, "members")?;
        let count = r.count(max_clients, ADVERTISEMENT_LEN, "neighbours")?;
        let mut neighbours = Vec::with_capacity(count);
        for _ in 0..count {
            neighbours.push(KeyAdvertisement::get(&mut r)?);
        }
        check_sorted(neighbours.iter().map(|a| a.client), "neighbours")?;
        r.finish()?;
        Ok(ShareKeysRequest {
            k,
            t,
            graph_seed,
            members,
            neighbours,
        })
    }
}

/// Encrypted shares, addressed to recipients (kind 3) or from senders (kind 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShareList {
    pub(crate) entries: Vec<(ClientId, [u8; CIPHERTEXT_LEN])>,
}

impl ShareList {
    pub(crate) fn encode(&self, kind: Kind, round: u32) -> Vec<u8> {
        let mut out = header(kind, round, 4 + self.entries.len() * (4 + CIPHERTEXT_LEN));
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (id, ct) in &self.entries {
            out.extend_from_slice(&id.0.to_le_bytes());
            out.extend_from_slice(ct);
        }
        out
    }

    pub(crate) fn decode(
        payload: &[u8],
        kind: Kind,
        round: u32,
        max_clients: usize,
    ) -> Result<Self, SecAggError> {
        let mut r = open(payload, kind, round)?;
        let count = r.count(max_clients, 4 + CIPHERTEXT_LEN, "shares")?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            entries.push((r.client()?, r.array()?));
        }
        check_sorted(entries.iter().map(|e| e.0), "shares")?;
        r.finish()?;
        Ok(ShareList { entries })
    }
}

/// Encodes a masked vector.
pub(crate) fn encode_masked_input(round: u32, bits: u32, words: &[u64]) -> Vec<u8> {
    let bpw = bytes_per_word(bits);
    let mut out = header(Kind::MaskedInput, round, 5 + words.len() * bpw);
    out.push(bits as u8);
    out.extend_from_slice(&(words.len() as u32).to_le_bytes());
    let start = out.len();
    out.resize(start + words.len() * bpw, 0);
    let body = out.get_mut(start..).unwrap_or_default();
    if bpw == 4 {
        // The default 32-bit modulus, specialized so that the loop vectorizes.
        for (dst, w) in body.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&(*w as u32).to_le_bytes());
        }
    } else {
        for (dst, w) in body.chunks_exact_mut(bpw).zip(words) {
            dst.copy_from_slice(w.to_le_bytes().get(..bpw).unwrap_or_default());
        }
    }
    out
}

/// A validated masked input, kept in its wire form (the coordinator holds one per client
/// until the stage ends, so the compact form matters).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct MaskedInput {
    payload: Vec<u8>,
    bits: u32,
}

impl std::fmt::Debug for MaskedInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskedInput")
            .field("bits", &self.bits)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

impl MaskedInput {
    /// Validates a masked input of exactly `len` words modulo `2^bits`.
    pub(crate) fn decode(
        payload: Vec<u8>,
        round: u32,
        bits: u32,
        len: usize,
    ) -> Result<Self, SecAggError> {
        let mut r = open(&payload, Kind::MaskedInput, round)?;
        let found_bits = u32::from(r.u8()?);
        if found_bits != bits {
            return Err(malformed(format!(
                "modulus 2^{found_bits}, expected 2^{bits}"
            )));
        }
        let found_len = r.u32()? as usize;
        if found_len != len || len > MAX_VECTOR_LEN {
            return Err(malformed(format!("{found_len} words, expected {len}")));
        }
        let words = r.take(len.saturating_mul(bytes_per_word(bits)))?;
        r.finish()?;
        // Only the last byte of a word can carry bits at or above 2^b.
        if !bits.is_multiple_of(8) {
            let high = !modulus_mask(bits % 8);
            let bpw = bytes_per_word(bits);
            if words
                .chunks_exact(bpw)
                .any(|w| w.last().is_some_and(|b| u64::from(*b) & high != 0))
            {
                return Err(malformed("a word is not reduced modulo 2^b"));
            }
        }
        Ok(MaskedInput { payload, bits })
    }

    /// Adds the words to `acc` modulo `2^bits` (`acc` has the vector's length).
    #[cfg(test)]
    pub(crate) fn add_to(&self, acc: &mut [u64]) {
        let bpw = bytes_per_word(self.bits);
        let mask = modulus_mask(self.bits);
        let words = self.payload.get(HEADER_LEN + 5..).unwrap_or_default();
        combine_words(acc, words, bpw, |a, w| a.wrapping_add(w) & mask);
    }

    /// Adds words `start..start + acc.len()` of the vector to `acc`, without reducing modulo
    /// `2^b` (the caller reduces; `2^b` divides `2^64`).
    pub(crate) fn add_range_to(&self, start: usize, acc: &mut [u64]) {
        let bpw = bytes_per_word(self.bits);
        let from = HEADER_LEN + 5 + start * bpw;
        let words = self
            .payload
            .get(from..from + acc.len() * bpw)
            .unwrap_or_default();
        combine_words(acc, words, bpw, u64::wrapping_add);
    }
}

/// Stage 3 request: which neighbours survived and which dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnmaskRequest {
    pub(crate) survivors: Vec<ClientId>,
    pub(crate) dropped: Vec<ClientId>,
}

impl UnmaskRequest {
    pub(crate) fn encode(&self, round: u32) -> Vec<u8> {
        let body = 8 + 4 * (self.survivors.len() + self.dropped.len());
        let mut out = header(Kind::UnmaskRequest, round, body);
        put_ids(&mut out, &self.survivors);
        put_ids(&mut out, &self.dropped);
        out
    }

    pub(crate) fn decode(
        payload: &[u8],
        round: u32,
        max_clients: usize,
    ) -> Result<Self, SecAggError> {
        let mut r = open(payload, Kind::UnmaskRequest, round)?;
        let survivors = get_ids(&mut r, max_clients, "survivors")?;
        let dropped = get_ids(&mut r, max_clients, "dropped")?;
        r.finish()?;
        Ok(UnmaskRequest { survivors, dropped })
    }
}

/// Stage 3 answer: shares of survivors' self-mask secrets and of dropped clients' mask keys.
#[derive(Clone, Debug)]
pub(crate) struct UnmaskShares {
    pub(crate) self_mask: Vec<(ClientId, SecretScalar)>,
    pub(crate) mask_key: Vec<(ClientId, SecretScalar)>,
}

fn put_shares(out: &mut Vec<u8>, shares: &[(ClientId, SecretScalar)]) {
    out.extend_from_slice(&(shares.len() as u32).to_le_bytes());
    for (id, s) in shares {
        out.extend_from_slice(&id.0.to_le_bytes());
        out.extend_from_slice(s.to_bytes().as_ref());
    }
}

fn get_shares(
    r: &mut Reader<'_>,
    limit: usize,
    what: &str,
) -> Result<Vec<(ClientId, SecretScalar)>, SecAggError> {
    let count = r.count(limit, 36, what)?;
    let mut shares = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.client()?;
        let value = SecretScalar::from_canonical(r.array()?)
            .ok_or_else(|| malformed(format!("{what}: not a canonical scalar")))?;
        shares.push((id, value));
    }
    check_sorted(shares.iter().map(|s| s.0), what)?;
    Ok(shares)
}

impl UnmaskShares {
    pub(crate) fn encode(&self, round: u32) -> Vec<u8> {
        let body = 8 + 36 * (self.self_mask.len() + self.mask_key.len());
        let mut out = header(Kind::UnmaskShares, round, body);
        put_shares(&mut out, &self.self_mask);
        put_shares(&mut out, &self.mask_key);
        out
    }

    pub(crate) fn decode(
        payload: &[u8],
        round: u32,
        max_clients: usize,
    ) -> Result<Self, SecAggError> {
        let mut r = open(payload, Kind::UnmaskShares, round)?;
        let self_mask = get_shares(&mut r, max_clients, "self-mask shares")?;
        let mask_key = get_shares(&mut r, max_clients, "mask-key shares")?;
        r.finish()?;
        Ok(UnmaskShares {
            self_mask,
            mask_key,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn ad(id: u32) -> KeyAdvertisement {
        KeyAdvertisement {
            client: ClientId(id),
            prg: MaskPrg::Aes128Ctr,
            enc_pk: [1; 32],
            mask_pk: [2; 32],
            commitment: [3; 32],
            signature: [4; 64],
        }
    }

    fn samples() -> Vec<(Kind, Vec<u8>)> {
        vec![
            (Kind::AdvertiseKeys, ad(7).encode(9)),
            (
                Kind::ShareKeys,
                ShareKeysRequest {
                    k: 2,
                    t: 2,
                    graph_seed: [5; 32],
                    members: vec![ClientId(1), ClientId(7), ClientId(9)],
                    neighbours: vec![ad(1), ad(9)],
                }
                .encode(9),
            ),
            (
                Kind::EncryptedShares,
                ShareList {
                    entries: vec![(ClientId(1), [6; CIPHERTEXT_LEN]), (ClientId(9), [7; 80])],
                }
                .encode(Kind::EncryptedShares, 9),
            ),
            (
                Kind::MaskedInput,
                encode_masked_input(9, 20, &[0, 1, (1 << 20) - 1]),
            ),
            (
                Kind::UnmaskRequest,
                UnmaskRequest {
                    survivors: vec![ClientId(1)],
                    dropped: vec![ClientId(9)],
                }
                .encode(9),
            ),
            (
                Kind::UnmaskShares,
                UnmaskShares {
                    self_mask: vec![(ClientId(1), SecretScalar(5u64.into()))],
                    mask_key: vec![(ClientId(9), SecretScalar(6u64.into()))],
                }
                .encode(9),
            ),
        ]
    }

    /// Parses `payload` as `kind` for round 9 with small limits.
    fn parse(kind: Kind, payload: &[u8]) -> Result<(), SecAggError> {
        match kind {
            Kind::AdvertiseKeys => KeyAdvertisement::decode(payload, 9).map(drop),
            Kind::ShareKeys => ShareKeysRequest::decode(payload, 9, 16).map(drop),
            Kind::EncryptedShares | Kind::RoutedShares => {
                ShareList::decode(payload, kind, 9, 16).map(drop)
            }
            Kind::MaskedInput => MaskedInput::decode(payload.to_vec(), 9, 20, 3).map(drop),
            Kind::UnmaskRequest => UnmaskRequest::decode(payload, 9, 16).map(drop),
            Kind::UnmaskShares => UnmaskShares::decode(payload, 9, 16).map(drop),
        }
    }

    #[test]
    fn samples_round_trip() {
        for (kind, payload) in samples() {
            parse(kind, &payload).unwrap();
        }
        let mut acc = vec![1u64; 3];
        MaskedInput::decode(encode_masked_input(9, 20, &[0, 1, (1 << 20) - 1]), 9, 20, 3)
            .unwrap()
            .add_to(&mut acc);
        assert_eq!(acc, [1, 2, 0]);
    }

    #[test]
    fn inspect_parses_every_kind_and_names_round_and_stage() {
        for (kind, payload) in samples() {
            let got = inspect(&payload, 10, 1, 20).unwrap();
            assert_eq!(
                got,
                Inspected {
                    round: 9,
                    stage: kind.stage()
                },
                "{kind:?}"
            );
            assert!(inspect(&payload[..payload.len() - 1], 10, 1, 20).is_err());
        }
        assert!(inspect(&[], 10, 1, 20).is_err());
        assert!(inspect(&[VERSION, 0, 9, 0, 0, 0], 10, 1, 20).is_err());
    }

    #[test]
    fn header_problems_are_named() {
        let payload = ad(7).encode(9);
        assert_eq!(
            KeyAdvertisement::decode(&payload, 10),
            Err(SecAggError::WrongRound {
                expected: 10,
                found: 9
            })
        );
        // Other versions, the previous one (1, before the mask generator id) included.
        for version in [1u8, 3] {
            let mut other = payload.clone();
            other[0] = version;
            assert_eq!(
                KeyAdvertisement::decode(&other, 9),
                Err(SecAggError::Malformed(format!(
                    "unsupported version {version}"
                )))
            );
        }
        let request = UnmaskRequest {
            survivors: vec![],
            dropped: vec![],
        }
        .encode(9);
        assert_eq!(
            KeyAdvertisement::decode(&request, 9),
            Err(SecAggError::WrongStage {
                expected: 0,
                found: 3
            })
        );
    }

    #[test]
    fn lists_must_be_sorted_and_within_limits() {
        let unsorted = UnmaskRequest {
            survivors: vec![ClientId(2), ClientId(1)],
            dropped: vec![],
        }
        .encode(9);
        assert!(UnmaskRequest::decode(&unsorted, 9, 16).is_err());
        let dup = UnmaskRequest {
            survivors: vec![ClientId(2), ClientId(2)],
            dropped: vec![],
        }
        .encode(9);
        assert!(UnmaskRequest::decode(&dup, 9, 16).is_err());
        let long = UnmaskRequest {
            survivors: (0..20).map(ClientId).collect(),
            dropped: vec![],
        }
        .encode(9);
        assert!(UnmaskRequest::decode(&long, 9, 16).is_err());
        // A huge count with no bytes behind it is refused before allocating.
        let mut huge = header(Kind::UnmaskRequest, 9, 8);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(UnmaskRequest::decode(&huge, 9, usize::MAX).is_err());
    }

    #[test]
    fn masked_words_must_be_reduced() {
        let bad = encode_masked_input(9, 20, &[1 << 20, 0, 0]);
        assert!(MaskedInput::decode(bad, 9, 20, 3).is_err());
        let wrong_len = encode_masked_input(9, 20, &[0, 0]);
        assert!(MaskedInput::decode(wrong_len, 9, 20, 3).is_err());
        let wrong_bits = encode_masked_input(9, 24, &[0, 0, 0]);
        assert!(MaskedInput::decode(wrong_bits, 9, 20, 3).is_err());
    }

    #[test]
    fn non_canonical_scalars_are_refused() {
        let mut payload = UnmaskShares {
            self_mask: vec![(ClientId(1), SecretScalar(5u64.into()))],
            mask_key: vec![],
        }
        .encode(9);
        // The scalar starts after header (6), count (4) and id (4); make it 2^256 - 1.
        payload[14..46].fill(0xff);
        assert!(UnmaskShares::decode(&payload, 9, 16).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Truncations, byte flips and insertions of valid payloads give errors, not panics;
        /// a truncated payload never parses.
        #[test]
        fn mutated_payloads_never_panic(
            which in 0usize..6,
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            insert in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let (kind, payload) = samples().swap_remove(which);
            let truncated = &payload[..cut.index(payload.len())];
            prop_assert!(parse(kind, truncated).is_err());
            let mut mutated = payload.clone();
            for (i, b) in flips {
                let i = i.index(mutated.len());
                mutated[i] ^= b;
            }
            if let Some((i, b)) = insert {
                mutated.insert(i.index(mutated.len() + 1), b);
            }
            let _ = parse(kind, &mutated);
        }

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            for kind in [
                Kind::AdvertiseKeys, Kind::ShareKeys, Kind::EncryptedShares,
                Kind::RoutedShares, Kind::MaskedInput, Kind::UnmaskRequest, Kind::UnmaskShares,
            ] {
                let _ = parse(kind, &bytes);
            }
        }
    }
}
