//! ristretto255 operations of the PSI: domain-separated hash-to-group, commutative blinding
//! with a secret scalar, truncated comparison tags.
//!
//! Everything here is a composition of curve25519-dalek's group operations and SHA-512 from
//! RustCrypto; nothing is implemented from scratch.
//!
//! * `H(x) = RistrettoPoint::from_hash(SHA-512(len(DST) || DST || session || len(x) || x))`, the
//!   RFC 9496 one-way map (two Elligator maps of the two halves of a 64-byte uniform string,
//!   added) applied to a domain-separated SHA-512. `DST` names the protocol and its version, the
//!   session id binds the hash to one run (both parties' nonces), and the length prefixes make
//!   the encoding injective.
//! * Blinding multiplies by a secret scalar `k` drawn from 64 bytes of a CSPRNG reduced modulo
//!   the group order (zero refused), zeroized on drop and never printed. Multiplication is
//!   dalek's constant-time variable-base scalar multiplication (its AVX2 / AVX-512 backend is
//!   selected at run time where the CPU has it).
//! * Points are compressed in batches with `double_and_compress_batch` (one field inversion
//!   per batch instead of one inverse square root per point): the scalar is halved first
//!   (`Scalar::div_by_2`), so `compress(2 * (k/2) P) = compress(k P)`.
//! * A *tag* is the first `tag_len` bytes of `SHA-512(DST_TAG || session || compress(P))`; tags
//!   of the doubly blinded points are all that is compared, so the last message of a set costs
//!   `tag_len` bytes per element instead of 32 (see [`tag_len`] for the collision bound).

use curve25519_dalek::Scalar;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{PsiError, Result};

/// Protocol name and wire version in every domain-separation tag.
pub const PROTOCOL: &[u8] = b"privet-psi/v1";
const DST_SESSION: &[u8] = b"privet-psi/v1/session";
const DST_HASH: &[u8] = b"privet-psi/v1/hash-to-group";
const DST_TAG: &[u8] = b"privet-psi/v1/tag";

/// Bytes of a compressed ristretto255 point.
pub const POINT_LEN: usize = 32;

/// Points per batch compression (one field inversion each).
const BATCH: usize = 512;

/// The id of one session: SHA-512 of both parties' nonces, truncated to 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionId([u8; 32]);

impl SessionId {
    /// Derives the session id from the client's and the server's nonces.
    pub fn derive(client_nonce: &[u8; 32], server_nonce: &[u8; 32]) -> Self {
        let mut h = Sha512::new();
        h.update((DST_SESSION.len() as u64).to_le_bytes());
        h.update(DST_SESSION);
        h.update(client_nonce);
        h.update(server_nonce);
        let out = h.finalize();
        let mut id = [0u8; 32];
        id.copy_from_slice(&out[..32]);
        SessionId(id)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The domain-separated hash of one (normalised) identifier to the group.
pub fn hash_to_group(session: &SessionId, id: &[u8]) -> RistrettoPoint {
    let mut h = Sha512::new();
    h.update((DST_HASH.len() as u64).to_le_bytes());
    h.update(DST_HASH);
    h.update(session.0);
    h.update((id.len() as u64).to_le_bytes());
    h.update(id);
    RistrettoPoint::from_hash(h)
}

/// Bytes of a comparison tag for sets of `n_server` and `n_client` elements: enough that the
/// expected number of false matches among all `n_server * n_client` pairs is below `2^-40`,
/// i.e. `8 * tag_len >= log2(n_server * n_client) + 40`, at least 8 bytes.
pub fn tag_len(n_server: u64, n_client: u64) -> usize {
    let pairs = u128::from(n_server.max(1)) * u128::from(n_client.max(1));
    let log2 = 128 - pairs.leading_zeros() as usize; // ceil-ish: bits needed
    (log2 + 40).div_ceil(8).clamp(8, 16)
}

/// The tag of a compressed point (first `len` bytes of a domain-separated SHA-512, as a
/// little-endian `u128` whose unused high bytes are zero).
pub fn tag_of(session: &SessionId, point: &CompressedRistretto, len: usize) -> u128 {
    let mut h = Sha512::new();
    h.update((DST_TAG.len() as u64).to_le_bytes());
    h.update(DST_TAG);
    h.update(session.0);
    h.update(point.as_bytes());
    let out = h.finalize();
    let mut b = [0u8; 16];
    b[..len].copy_from_slice(&out[..len]);
    u128::from_le_bytes(b)
}

/// Writes the `len` low bytes of a tag.
pub fn put_tag(out: &mut Vec<u8>, tag: u128, len: usize) {
    out.extend_from_slice(&tag.to_le_bytes()[..len]);
}

/// Reads a tag of `len` bytes.
pub fn read_tag(bytes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    u128::from_le_bytes(b)
}

/// A uniformly random non-zero scalar from 64 bytes of `rng` (wide reduction).
pub(crate) fn random_scalar<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let s = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        if s != Scalar::ZERO {
            return s;
        }
    }
}

/// A party's secret blinding exponent. Zeroized on drop; `Debug` prints nothing secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct BlindingKey {
    half: Scalar,
}

impl std::fmt::Debug for BlindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindingKey(<secret>)")
    }
}

impl BlindingKey {
    /// A fresh key from a cryptographically secure generator.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = random_scalar(rng);
        let half = k.div_by_2();
        k.zeroize();
        BlindingKey { half }
    }

    /// `compress(k * H(id))` for every identifier, in input order (parallel).
    pub fn blind_identifiers(&self, session: &SessionId, ids: &[Box<[u8]>]) -> Vec<[u8; 32]> {
        let mut out = vec![[0u8; 32]; ids.len()];
        out.par_chunks_mut(BATCH)
            .zip(ids.par_chunks(BATCH))
            .for_each(|(out, ids)| {
                let pts: Vec<RistrettoPoint> = ids
                    .iter()
                    .map(|id| self.half * hash_to_group(session, id))
                    .collect();
                for (o, c) in out
                    .iter_mut()
                    .zip(RistrettoPoint::double_and_compress_batch(&pts))
                {
                    *o = c.to_bytes();
                }
            });
        out
    }

    /// The tags of `k * P` for each compressed point `P` in `points` (a multiple of 32 bytes),
    /// in order. Refuses non-canonical encodings and the identity.
    pub fn tag_points(
        &self,
        session: &SessionId,
        points: &[u8],
        tag_len: usize,
    ) -> Result<Vec<u128>> {
        if !points.len().is_multiple_of(POINT_LEN) {
            return Err(PsiError::invalid(
                "point list is not a multiple of 32 bytes",
            ));
        }
        let n = points.len() / POINT_LEN;
        let mut out = vec![0u128; n];
        out.par_chunks_mut(BATCH)
            .zip(points.par_chunks(BATCH * POINT_LEN))
            .try_for_each(|(out, bytes)| -> Result<()> {
                let mut pts = Vec::with_capacity(out.len());
                for enc in bytes.chunks_exact(POINT_LEN) {
                    let p = decode_point(enc)?;
                    pts.push(self.half * p);
                }
                for (o, c) in out
                    .iter_mut()
                    .zip(RistrettoPoint::double_and_compress_batch(&pts))
                {
                    *o = tag_of(session, &c, tag_len);
                }
                Ok(())
            })?;
        Ok(out)
    }
}

/// Decodes a canonical compressed point that is not the identity.
pub(crate) fn decode_point(enc: &[u8]) -> Result<RistrettoPoint> {
    let c = CompressedRistretto::from_slice(enc)
        .map_err(|_| PsiError::invalid("a point is not 32 bytes"))?;
    if c.as_bytes() == &[0u8; 32] {
        return Err(PsiError::invalid("a point is the identity"));
    }
    c.decompress()
        .ok_or_else(|| PsiError::invalid("a point is not a canonical ristretto255 encoding"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ids(v: &[&str]) -> Vec<Box<[u8]>> {
        v.iter().map(|s| s.as_bytes().into()).collect()
    }

    #[test]
    fn blinding_commutes_and_tags_match() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let s = SessionId::derive(&[1; 32], &[2; 32]);
        let a = BlindingKey::random(&mut rng);
        let b = BlindingKey::random(&mut rng);
        let xs = ids(&["alice", "bob", "carol"]);
        let ys = ids(&["carol", "dave", "alice"]);
        let xa: Vec<u8> = a.blind_identifiers(&s, &xs).concat();
        let yb: Vec<u8> = b.blind_identifiers(&s, &ys).concat();
        let xab = b.tag_points(&s, &xa, 10).unwrap();
        let yba = a.tag_points(&s, &yb, 10).unwrap();
        assert_eq!(xab[0], yba[2]); // alice
        assert_eq!(xab[2], yba[0]); // carol
        assert_ne!(xab[1], yba[1]);
        assert!(xab.iter().all(|t| t >> 80 == 0));
    }

    #[test]
    fn blinding_matches_plain_scalar_multiplication() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let s = SessionId::derive(&[0; 32], &[0; 32]);
        let k = BlindingKey::random(&mut rng);
        let full = k.half + k.half;
        let got = k.blind_identifiers(&s, &ids(&["x"]));
        assert_eq!(
            got[0],
            (full * hash_to_group(&s, b"x")).compress().to_bytes()
        );
    }

    #[test]
    fn sessions_and_lengths_separate_hashes() {
        let s1 = SessionId::derive(&[1; 32], &[2; 32]);
        let s2 = SessionId::derive(&[2; 32], &[1; 32]);
        assert_ne!(s1, s2);
        assert_ne!(hash_to_group(&s1, b"a"), hash_to_group(&s2, b"a"));
        assert_ne!(hash_to_group(&s1, b"ab"), hash_to_group(&s1, b"a"));
    }

    #[test]
    fn bad_points_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let s = SessionId::derive(&[1; 32], &[2; 32]);
        let k = BlindingKey::random(&mut rng);
        assert!(k.tag_points(&s, &[0u8; 31], 8).is_err());
        assert!(k.tag_points(&s, &[0u8; 32], 8).is_err());
        assert!(k.tag_points(&s, &[0xffu8; 32], 8).is_err());
    }

    #[test]
    fn tag_length_grows_with_the_sets() {
        assert_eq!(tag_len(1, 1), 8);
        assert_eq!(tag_len(10_000, 10_000), 9); // 27 + 40 bits
        assert_eq!(tag_len(1_000_000, 1_000_000), 10); // 40 + 40 bits
        assert_eq!(tag_len(u64::MAX, u64::MAX), 16);
    }

    #[test]
    fn debug_hides_the_key() {
        let k = BlindingKey::random(&mut ChaCha20Rng::seed_from_u64(4));
        assert_eq!(format!("{k:?}"), "BlindingKey(<secret>)");
    }
}
