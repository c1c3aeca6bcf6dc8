//! Exponential ("lifted") ElGamal over ristretto255: the additively homomorphic encryption of
//! the intersection sum.
//!
//! `Enc(m; r) = (r G, m G + r Y)` with `Y = x G` the public key; ciphertexts add
//! componentwise, so `Enc(a) + Enc(b) = Enc(a + b)`; decryption computes `m G = C2 - x C1`
//! and recovers `m` by baby-step giant-step inside a range the decrypting party states
//! ([`SumRange`]). Everything is dalek group arithmetic: fixed-base multiplications through
//! precomputed tables (the basepoint's and one built for the public key), constant time in
//! `r` and `m`.
//!
//! # Limits (why the range matters)
//!
//! * Plaintexts are integers modulo the group order `l ~ 2^252`; negative values are
//!   `l - |v|`. A sum is recovered only if it lies in the stated range, whose width is at most
//!   [`MAX_RANGE_WIDTH`] (`2^44`, about 1.8e13): e.g. a million values of up to 10^7 each.
//!   Decryption costs about `2 sqrt(width)` group additions (at most 2^22 + 2^22 steps, a few
//!   seconds on two cores; about 0.1 s for a width of 10^10).
//! * Each value is one ciphertext of 64 bytes (two compressed points); encryption costs three
//!   fixed-base multiplications.
//! * Semantic security rests on decisional Diffie-Hellman in ristretto255 (~128-bit security).
//!   It is not CCA-secure (it is homomorphic by design) and carries no proof that the
//!   plaintext is in range: a malicious encryptor can encrypt anything.

use curve25519_dalek::Scalar;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::traits::Identity;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use rayon::prelude::*;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{PsiError, Result};
use crate::group::{POINT_LEN, decode_point, random_scalar};

/// Bytes of a serialized ciphertext.
pub const CIPHERTEXT_LEN: usize = 64;

/// Widest range [`SecretKey::decrypt`] searches: `2^44`.
pub const MAX_RANGE_WIDTH: u64 = 1 << 44;

/// Most baby steps (the table's entries): `2^22`.
const MAX_BABY_STEPS: u64 = 1 << 22;

const BATCH: usize = 512;

/// The scalar of a signed integer.
pub(crate) fn scalar_of(v: i64) -> Scalar {
    let s = Scalar::from(v.unsigned_abs());
    if v < 0 { -s } else { s }
}

/// The decryption key. Zeroized on drop; `Debug` prints nothing secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    x: Scalar,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<secret>)")
    }
}

/// The encryption key, with a precomputed fixed-base table (about 30 KiB).
#[derive(Clone)]
pub struct PublicKey {
    compressed: CompressedRistretto,
    table: Box<RistrettoBasepointTable>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PublicKey").field(&self.compressed).finish()
    }
}

/// An ElGamal ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ciphertext {
    c1: RistrettoPoint,
    c2: RistrettoPoint,
}

impl SecretKey {
    /// A fresh key pair.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> (SecretKey, PublicKey) {
        let x = random_scalar(rng);
        let y = RISTRETTO_BASEPOINT_TABLE * &x;
        (SecretKey { x }, PublicKey::from_point(&y))
    }

    /// Decrypts a ciphertext whose plaintext lies in `range`; an error otherwise.
    pub fn decrypt(&self, ct: &Ciphertext, range: SumRange) -> Result<i64> {
        let m_g = ct.c2 - self.x * ct.c1;
        discrete_log(&m_g, range)
    }

    /// Serialized encryptions of every value (64 bytes each, in order) by the key's owner, in
    /// parallel; each worker draws its randomness from a ChaCha20 stream keyed by `rng`.
    ///
    /// Knowing `x`, the owner computes `c2 = m G + r Y = (m + r x) G` with one fixed-base
    /// multiplication instead of two; the ciphertexts are distributed exactly as public-key
    /// encryptions.
    pub fn encrypt_batch<R: RngCore + CryptoRng + ?Sized>(
        &self,
        values: &[i64],
        rng: &mut R,
    ) -> Vec<u8> {
        let chunks = values.len().div_ceil(BATCH);
        let mut seeds: Vec<[u8; 32]> = (0..chunks)
            .map(|_| {
                let mut s = [0u8; 32];
                rng.fill_bytes(&mut s);
                s
            })
            .collect();
        let mut out = vec![0u8; values.len() * CIPHERTEXT_LEN];
        out.par_chunks_mut(BATCH * CIPHERTEXT_LEN)
            .zip(values.par_chunks(BATCH))
            .zip(seeds.par_iter())
            .for_each(|((out, values), seed)| {
                let mut rng = ChaCha20Rng::from_seed(*seed);
                // Halved scalars, so that one batch compression of the doubled points gives
                // the ciphertext: c1 = 2 (r/2) G = r G, c2 = 2 ((m + r x)/2) G.
                let mut pts = Vec::with_capacity(2 * values.len());
                for &m in values {
                    let mut r = random_scalar(&mut rng);
                    let mut e = scalar_of(m) + r * self.x;
                    let mut half_r = r.div_by_2();
                    let mut half_e = e.div_by_2();
                    pts.push(RISTRETTO_BASEPOINT_TABLE * &half_r);
                    pts.push(RISTRETTO_BASEPOINT_TABLE * &half_e);
                    r.zeroize();
                    e.zeroize();
                    half_r.zeroize();
                    half_e.zeroize();
                }
                for (o, c) in out
                    .chunks_exact_mut(POINT_LEN)
                    .zip(RistrettoPoint::double_and_compress_batch(&pts))
                {
                    o.copy_from_slice(c.as_bytes());
                }
            });
        seeds.zeroize();
        out
    }
}

impl PublicKey {
    fn from_point(y: &RistrettoPoint) -> Self {
        PublicKey {
            compressed: y.compress(),
            table: Box::new(RistrettoBasepointTable::create(y)),
        }
    }

    /// Parses a public key (canonical, not the identity).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(Self::from_point(&decode_point(bytes)?))
    }

    /// The compressed key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.compressed.to_bytes()
    }

    /// `Enc(m; r)` with a fresh `r`.
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(&self, m: i64, rng: &mut R) -> Ciphertext {
        let mut r = random_scalar(rng);
        let ct = Ciphertext {
            c1: RISTRETTO_BASEPOINT_TABLE * &r,
            c2: RISTRETTO_BASEPOINT_TABLE * &scalar_of(m) + &*self.table * &r,
        };
        r.zeroize();
        ct
    }

    /// `ct + Enc(m)`: adds `m` and fresh randomness, so the result is unlinkable to `ct`
    /// (re-randomisation when `m = 0`).
    pub fn add_and_rerandomize<R: RngCore + CryptoRng + ?Sized>(
        &self,
        ct: &Ciphertext,
        m: i64,
        rng: &mut R,
    ) -> Ciphertext {
        ct.add(&self.encrypt(m, rng))
    }
}

impl Ciphertext {
    /// The encryption of zero with zero randomness (the neutral element of [`Self::add`]).
    pub fn zero() -> Self {
        Ciphertext {
            c1: RistrettoPoint::identity(),
            c2: RistrettoPoint::identity(),
        }
    }

    /// Homomorphic addition.
    pub fn add(&self, other: &Ciphertext) -> Ciphertext {
        Ciphertext {
            c1: self.c1 + other.c1,
            c2: self.c2 + other.c2,
        }
    }

    /// The 64-byte encoding.
    pub fn to_bytes(&self) -> [u8; CIPHERTEXT_LEN] {
        let mut out = [0u8; CIPHERTEXT_LEN];
        out[..32].copy_from_slice(self.c1.compress().as_bytes());
        out[32..].copy_from_slice(self.c2.compress().as_bytes());
        out
    }

    /// Parses a 64-byte encoding (both halves canonical; the identity is allowed, as
    /// `c2` of an encryption of zero can never be, but `c1 = rG` is never the identity either:
    /// both are refused).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != CIPHERTEXT_LEN {
            return Err(PsiError::invalid("a ciphertext is not 64 bytes"));
        }
        Ok(Ciphertext {
            c1: decode_point(&bytes[..32])?,
            c2: decode_point(&bytes[32..])?,
        })
    }

    /// The sum of the serialized ciphertexts at `indices` of `all` (parallel).
    pub fn sum_selected(all: &[u8], indices: &[u32]) -> Result<Ciphertext> {
        indices
            .par_chunks(BATCH)
            .map(|chunk| {
                let mut acc = Ciphertext::zero();
                for &i in chunk {
                    let start = i as usize * CIPHERTEXT_LEN;
                    let bytes = all
                        .get(start..start + CIPHERTEXT_LEN)
                        .ok_or_else(|| PsiError::misuse("ciphertext index out of range"))?;
                    acc = acc.add(&Ciphertext::from_bytes(bytes)?);
                }
                Ok(acc)
            })
            .try_reduce(Ciphertext::zero, |a, b| Ok(a.add(&b)))
    }
}

/// The inclusive range a decrypted sum is searched in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SumRange {
    min: i64,
    max: i64,
}

impl SumRange {
    /// `[min, max]`, at most [`MAX_RANGE_WIDTH`] wide.
    pub fn new(min: i64, max: i64) -> Result<Self> {
        if min > max {
            return Err(PsiError::config("sum range: min is above max"));
        }
        let width = max.abs_diff(min);
        if width > MAX_RANGE_WIDTH {
            return Err(PsiError::config(format!(
                "the sum can lie anywhere in a range of {width} integers, more than the 2^44 \
                 that exponential ElGamal can decrypt; lower the value bounds"
            )));
        }
        Ok(SumRange { min, max })
    }

    /// The lower end.
    pub fn min(&self) -> i64 {
        self.min
    }

    /// The upper end.
    pub fn max(&self) -> i64 {
        self.max
    }
}

/// The 8-byte lookup key of `2 P` (batch-compressed).
fn keys_of(points: &[RistrettoPoint]) -> Vec<u64> {
    RistrettoPoint::double_and_compress_batch(points)
        .iter()
        .map(|c| {
            let mut k = [0u8; 8];
            k.copy_from_slice(&c.as_bytes()[..8]);
            u64::from_le_bytes(k)
        })
        .collect()
}

/// Finds `m` in `range` with `m G = target` (baby-step giant-step, parallel).
fn discrete_log(target: &RistrettoPoint, range: SumRange) -> Result<i64> {
    let g = RISTRETTO_BASEPOINT_TABLE.basepoint();
    let width = range.max.abs_diff(range.min); // values 0..=width
    let count = u128::from(width) + 1;
    let baby = (count as f64)
        .sqrt()
        .ceil()
        .clamp(1.0, MAX_BABY_STEPS as f64) as u64;
    let giants = count.div_ceil(u128::from(baby)) as u64;

    // Baby steps: key(j G) for j in 0..baby, sorted for binary search.
    let mut table: Vec<(u64, u32)> = (0..baby.div_ceil(BATCH as u64))
        .into_par_iter()
        .map(|b| b * BATCH as u64)
        .flat_map_iter(|start| {
            let end = (start + BATCH as u64).min(baby);
            let mut p = RISTRETTO_BASEPOINT_TABLE * &Scalar::from(start);
            let mut pts = Vec::with_capacity((end - start) as usize);
            for _ in start..end {
                pts.push(p);
                p += g;
            }
            keys_of(&pts)
                .into_iter()
                .zip(start as u32..end as u32)
                .collect::<Vec<_>>()
        })
        .collect();
    table.par_sort_unstable();

    // Giant steps: P_i = target - min G - i baby G, for i in 0..giants.
    let base = target - RISTRETTO_BASEPOINT_TABLE * &scalar_of(range.min);
    let step = RISTRETTO_BASEPOINT_TABLE * &Scalar::from(baby);
    let found = (0..giants.div_ceil(BATCH as u64))
        .into_par_iter()
        .map(|b| b * BATCH as u64)
        .find_map_any(|start| {
            let end = (start + BATCH as u64).min(giants);
            let mut p = base - step * Scalar::from(start);
            let mut pts = Vec::with_capacity((end - start) as usize);
            for _ in start..end {
                pts.push(p);
                p -= step;
            }
            for (i, key) in (start..end).zip(keys_of(&pts)) {
                let lo = table.partition_point(|&(k, _)| k < key);
                for &(k, j) in &table[lo..] {
                    if k != key {
                        break;
                    }
                    let offset = u128::from(i) * u128::from(baby) + u128::from(j);
                    if offset >= count {
                        continue;
                    }
                    let offset = offset as u64;
                    // Confirm on the full point (the key is only 8 bytes).
                    if RISTRETTO_BASEPOINT_TABLE * &Scalar::from(offset) == base {
                        return Some(offset);
                    }
                }
            }
            None
        });
    match found {
        Some(offset) => Ok((i128::from(range.min) + i128::from(offset)) as i64),
        None => Err(PsiError::Decrypt(format!(
            "the plaintext is not in [{}, {}]",
            range.min, range.max
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    #[test]
    fn encrypt_add_decrypt() {
        let mut r = rng(1);
        let (sk, pk) = SecretKey::generate(&mut r);
        let range = SumRange::new(-1000, 1000).unwrap();
        for m in [-1000, -7, 0, 1, 999, 1000] {
            let ct = pk.encrypt(m, &mut r);
            assert_eq!(sk.decrypt(&ct, range).unwrap(), m);
        }
        let s = pk.encrypt(300, &mut r).add(&pk.encrypt(-45, &mut r));
        assert_eq!(sk.decrypt(&s, range).unwrap(), 255);
        assert!(sk.decrypt(&pk.encrypt(1001, &mut r), range).is_err());
    }

    #[test]
    fn batch_encryptions_decrypt_and_sum() {
        let mut r = rng(2);
        let (sk, pk) = SecretKey::generate(&mut r);
        let values: Vec<i64> = (0..1500).map(|i| (i * 37) % 201 - 100).collect();
        let bytes = sk.encrypt_batch(&values, &mut r);
        assert_eq!(bytes.len(), values.len() * CIPHERTEXT_LEN);
        let range = SumRange::new(-200_000, 200_000).unwrap();
        for i in [0usize, 511, 512, 1499] {
            let ct = Ciphertext::from_bytes(&bytes[i * 64..(i + 1) * 64]).unwrap();
            assert_eq!(sk.decrypt(&ct, range).unwrap(), values[i]);
        }
        let idx: Vec<u32> = (0..1500).step_by(3).collect();
        // Owner and public-key encryptions mix.
        let sum = Ciphertext::sum_selected(&bytes, &idx)
            .unwrap()
            .add(&pk.encrypt(5, &mut r));
        let want: i64 = idx.iter().map(|&i| values[i as usize]).sum::<i64>() + 5;
        assert_eq!(sk.decrypt(&sum, range).unwrap(), want);
    }

    #[test]
    fn rerandomisation_changes_the_ciphertext_not_the_plaintext() {
        let mut r = rng(3);
        let (sk, pk) = SecretKey::generate(&mut r);
        let ct = pk.encrypt(42, &mut r);
        let ct2 = pk.add_and_rerandomize(&ct, 0, &mut r);
        assert_ne!(ct.to_bytes()[..32], ct2.to_bytes()[..32]);
        assert_ne!(ct.to_bytes()[32..], ct2.to_bytes()[32..]);
        let range = SumRange::new(0, 100).unwrap();
        assert_eq!(sk.decrypt(&ct2, range).unwrap(), 42);
        let back = Ciphertext::from_bytes(&ct2.to_bytes()).unwrap();
        assert_eq!(back, ct2);
    }

    #[test]
    fn ranges_off_zero_and_wide_ranges_work() {
        let mut r = rng(4);
        let (sk, pk) = SecretKey::generate(&mut r);
        let range = SumRange::new(1_000_000_000, 1_000_000_000 + (1 << 30)).unwrap();
        let m = 1_000_000_000 + 987_654_321;
        assert_eq!(sk.decrypt(&pk.encrypt(m, &mut r), range).unwrap(), m);
        assert!(SumRange::new(0, (1 << 44) + 1).is_err());
        assert!(SumRange::new(5, 4).is_err());
    }

    #[test]
    fn malformed_ciphertexts_are_refused() {
        assert!(Ciphertext::from_bytes(&[0u8; 63]).is_err());
        assert!(Ciphertext::from_bytes(&[0xff; 64]).is_err());
        assert!(Ciphertext::from_bytes(&[0u8; 64]).is_err());
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let (sk, _) = SecretKey::generate(&mut rng(5));
        assert_eq!(format!("{sk:?}"), "SecretKey(<secret>)");
    }
}
