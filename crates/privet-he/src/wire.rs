//! Versioned binary encoding of ciphertexts, plaintexts and keys.
//!
//! Every object starts with a header: the magic `PVHE`, a format version (u16), a kind (u8)
//! and the 16-byte fingerprint of its parameter set. Polynomials are written row by row, each
//! residue in exactly as many bits as its prime has (so a 40-bit row costs 40 bits per
//! coefficient). The uniform half of fresh secret-key ciphertexts and of keys is written as the
//! 32-byte seed it is expanded from (as SEAL does), which halves their size.
//!
//! Decoding checks the length against a limit before anything else, then the header, the kind,
//! the fingerprint, levels, sizes, scales and every residue (< its prime); the length of the
//! rest is fully determined by the parameters, so nothing is allocated on the word of the input,
//! and trailing bytes are refused. The Galois keys of a set are written in increasing order of
//! their elements and read only in that order, so a key set has exactly one encoding.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::cipher::Ciphertext;
use crate::context::CkksContext;
use crate::encoding::Plaintext;
use crate::error::{DecodeError, HeError, Result};
use crate::keys::{
    EvaluationKeys, GaloisKey, KeySwitchKey, PublicKey, RelinKey, SecretKey, expand_uniform,
};
use crate::ring::{Prime, RnsPoly, galois_permutation};

/// The magic number.
pub const MAGIC: [u8; 4] = *b"PVHE";
/// The format version written (and the only one read).
pub const VERSION: u16 = 1;
/// Default byte limit: 256 MiB (a full set of N = 2^15 Galois keys can exceed it; raise it
/// deliberately).
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;
/// Most Galois keys accepted in one set.
pub const MAX_GALOIS_KEYS: usize = 128;

/// Limits and expectations for decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Refuse inputs longer than this.
    pub max_bytes: usize,
    /// If set, refuse ciphertexts and plaintexts at another level.
    pub level: Option<usize>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            level: None,
        }
    }
}

/// What a serialized object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A ciphertext.
    Ciphertext = 1,
    /// A plaintext.
    Plaintext = 2,
    /// A public key.
    PublicKey = 3,
    /// A relinearization key.
    RelinKey = 4,
    /// A Galois key.
    GaloisKey = 5,
    /// A set of evaluation keys.
    EvaluationKeys = 6,
    /// A secret key.
    SecretKey = 7,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ciphertext => "ciphertext",
            Kind::Plaintext => "plaintext",
            Kind::PublicKey => "public key",
            Kind::RelinKey => "relinearization key",
            Kind::GaloisKey => "Galois key",
            Kind::EvaluationKeys => "evaluation key set",
            Kind::SecretKey => "secret key",
        }
    }
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Ciphertext,
            2 => Kind::Plaintext,
            3 => Kind::PublicKey,
            4 => Kind::RelinKey,
            5 => Kind::GaloisKey,
            6 => Kind::EvaluationKeys,
            7 => Kind::SecretKey,
            _ => return None,
        })
    }
}

/// Reads the kind of an encoded object without decoding it.
pub fn peek_kind(bytes: &[u8]) -> Result<Kind> {
    if bytes.len() < 7 {
        return Err(DecodeError::Truncated.into());
    }
    if bytes[..4] != MAGIC {
        return Err(DecodeError::BadMagic.into());
    }
    let v = u16::from_le_bytes([bytes[4], bytes[5]]);
    if v != VERSION {
        return Err(DecodeError::UnsupportedVersion(v).into());
    }
    Kind::from_u8(bytes[6]).ok_or(HeError::Decode(DecodeError::Malformed(
        "unknown object kind",
    )))
}

fn bits(q: u64) -> usize {
    (64 - q.leading_zeros()) as usize
}

struct Writer {
    out: Vec<u8>,
    acc: u128,
    nacc: usize,
}

impl Writer {
    fn new(ctx: &CkksContext, kind: Kind, capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + 32);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(kind as u8);
        out.extend_from_slice(&ctx.id);
        Self {
            out,
            acc: 0,
            nacc: 0,
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        debug_assert_eq!(self.nacc, 0);
        self.out.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.bytes(&v.to_le_bytes());
    }
    fn packed(&mut self, values: &[u64], nbits: usize) {
        for &v in values {
            self.acc |= (v as u128) << self.nacc;
            self.nacc += nbits;
            while self.nacc >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.nacc -= 8;
            }
        }
    }
    /// Pads the bit stream to a byte boundary.
    fn flush(&mut self) {
        if self.nacc > 0 {
            self.out.push(self.acc as u8);
        }
        self.acc = 0;
        self.nacc = 0;
    }
    fn poly(&mut self, p: &RnsPoly, primes: &[&Prime]) {
        for (row, pr) in p.data.chunks(p.n).zip(primes) {
            self.packed(row, bits(pr.q));
        }
        self.flush();
    }
}

fn poly_len(n: usize, primes: &[&Prime]) -> usize {
    (primes.iter().map(|p| bits(p.q) * n).sum::<usize>()).div_ceil(8)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        if end > self.b.len() {
            return Err(DecodeError::Truncated.into());
        }
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn f64(&mut self) -> Result<f64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(f64::from_le_bytes(a))
    }
    fn seed(&mut self) -> Result<[u8; 32]> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    fn poly(&mut self, n: usize, primes: &[&Prime]) -> Result<RnsPoly> {
        let len = poly_len(n, primes);
        let src = self.take(len)?;
        let mut p = RnsPoly::zero(n, primes.len(), true);
        let (mut acc, mut nacc, mut i) = (0u128, 0usize, 0usize);
        for (row, pr) in p.data.chunks_mut(n).zip(primes) {
            let nb = bits(pr.q);
            let mask = (1u128 << nb) - 1;
            for o in row.iter_mut() {
                while nacc < nb {
                    acc |= (src[i] as u128) << nacc;
                    i += 1;
                    nacc += 8;
                }
                let v = (acc & mask) as u64;
                acc >>= nb;
                nacc -= nb;
                if v >= pr.q {
                    return Err(DecodeError::Malformed("residue not below its prime").into());
                }
                *o = v;
            }
        }
        if acc != 0 {
            return Err(DecodeError::Malformed("nonzero padding bits").into());
        }
        Ok(p)
    }
    fn finish(&self) -> Result<()> {
        if self.pos != self.b.len() {
            return Err(DecodeError::TrailingBytes(self.b.len() - self.pos).into());
        }
        Ok(())
    }
}

fn open<'a>(
    ctx: &CkksContext,
    bytes: &'a [u8],
    kind: Kind,
    max_bytes: usize,
) -> Result<Reader<'a>> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        }
        .into());
    }
    let found = peek_kind(bytes)?;
    if found != kind {
        return Err(DecodeError::WrongKind {
            expected: kind.name(),
            found: found.name(),
        }
        .into());
    }
    let mut r = Reader { b: bytes, pos: 7 };
    let id = r.take(16)?;
    if id != ctx.id {
        return Err(DecodeError::WrongParameters.into());
    }
    Ok(r)
}

fn read_level(ctx: &CkksContext, r: &mut Reader<'_>, expect: Option<usize>) -> Result<usize> {
    let level = r.u8()? as usize;
    if level > ctx.max_level() {
        return Err(DecodeError::WrongLevel(level).into());
    }
    if let Some(e) = expect
        && e != level
    {
        return Err(DecodeError::WrongLevel(level).into());
    }
    Ok(level)
}

fn read_scale(ctx: &CkksContext, r: &mut Reader<'_>, level: usize, size: usize) -> Result<f64> {
    let scale = r.f64()?;
    // A product before rescaling may carry up to the square of a level's modulus.
    let log_q: f64 = (0..=level).map(|i| (ctx.q_at(i) as f64).log2()).sum();
    if !(scale.is_finite() && scale >= 1.0 && scale.log2() <= log_q * (size as f64 - 1.0).max(1.0))
    {
        return Err(DecodeError::Malformed("scale out of range").into());
    }
    Ok(scale)
}

impl Ciphertext {
    /// Encodes the ciphertext (a fresh secret-key ciphertext as c0 and the seed of c1).
    pub fn to_bytes(&self, ctx: &CkksContext) -> Result<Vec<u8>> {
        if self.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let primes = ctx.q_primes(self.level);
        let mut w = Writer::new(
            ctx,
            Kind::Ciphertext,
            self.c.len() * poly_len(ctx.n, &primes),
        );
        w.u8(self.level as u8);
        w.u8(self.c.len() as u8);
        w.f64(self.scale);
        w.u8(self.seed.is_some() as u8);
        w.poly(&self.c[0], &primes);
        match &self.seed {
            Some(seed) => w.bytes(seed),
            None => w.poly(&self.c[1], &primes),
        }
        for c in &self.c[2..] {
            w.poly(c, &primes);
        }
        Ok(w.out)
    }

    /// Decodes a ciphertext made under `ctx`'s parameters.
    pub fn from_bytes(ctx: &Arc<CkksContext>, bytes: &[u8], opts: &DecodeOptions) -> Result<Self> {
        let mut r = open(ctx, bytes, Kind::Ciphertext, opts.max_bytes)?;
        let level = read_level(ctx, &mut r, opts.level)?;
        let size = r.u8()? as usize;
        if !(2..=3).contains(&size) {
            return Err(DecodeError::Malformed("ciphertext size must be 2 or 3").into());
        }
        let scale = read_scale(ctx, &mut r, level, size)?;
        let seeded = match r.u8()? {
            0 => false,
            1 if size == 2 => true,
            _ => return Err(DecodeError::Malformed("flags").into()),
        };
        let primes = ctx.q_primes(level);
        let mut c = vec![r.poly(ctx.n, &primes)?];
        let seed = if seeded {
            let seed = r.seed()?;
            c.push(expand_uniform(&seed, 1, ctx.n, &primes).remove(0));
            Some(seed)
        } else {
            c.push(r.poly(ctx.n, &primes)?);
            None
        };
        if size == 3 {
            c.push(r.poly(ctx.n, &primes)?);
        }
        r.finish()?;
        Ok(Ciphertext {
            c,
            level,
            scale,
            ctx_id: ctx.id,
            seed,
        })
    }

    /// The encoded size in bytes, without encoding.
    pub fn serialized_len(&self, ctx: &CkksContext) -> usize {
        let primes = ctx.q_primes(self.level);
        let p = poly_len(ctx.n, &primes);
        23 + 11
            + p * (self.c.len() - self.seed.is_some() as usize)
            + if self.seed.is_some() { 32 } else { 0 }
    }
}

impl Plaintext {
    /// Encodes the plaintext.
    pub fn to_bytes(&self, ctx: &CkksContext) -> Result<Vec<u8>> {
        if self.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let primes = ctx.q_primes(self.level);
        let mut w = Writer::new(ctx, Kind::Plaintext, poly_len(ctx.n, &primes));
        w.u8(self.level as u8);
        w.f64(self.scale);
        w.poly(&self.poly, &primes);
        Ok(w.out)
    }

    /// Decodes a plaintext.
    pub fn from_bytes(ctx: &Arc<CkksContext>, bytes: &[u8], opts: &DecodeOptions) -> Result<Self> {
        let mut r = open(ctx, bytes, Kind::Plaintext, opts.max_bytes)?;
        let level = read_level(ctx, &mut r, opts.level)?;
        let scale = read_scale(ctx, &mut r, level, 2)?;
        let poly = r.poly(ctx.n, &ctx.q_primes(level))?;
        r.finish()?;
        Ok(Plaintext {
            poly,
            level,
            scale,
            ctx_id: ctx.id,
        })
    }
}

impl PublicKey {
    /// Encodes the public key (b and the seed of a).
    pub fn to_bytes(&self) -> Vec<u8> {
        let ctx = &self.ctx;
        let primes = ctx.q_primes(ctx.max_level());
        let mut w = Writer::new(ctx, Kind::PublicKey, poly_len(ctx.n, &primes));
        w.bytes(&self.seed);
        w.poly(&self.b, &primes);
        w.out
    }

    /// Decodes a public key.
    pub fn from_bytes(ctx: &Arc<CkksContext>, bytes: &[u8], opts: &DecodeOptions) -> Result<Self> {
        let mut r = open(ctx, bytes, Kind::PublicKey, opts.max_bytes)?;
        let seed = r.seed()?;
        let primes = ctx.q_primes(ctx.max_level());
        let b = r.poly(ctx.n, &primes)?;
        r.finish()?;
        let a = expand_uniform(&seed, 1, ctx.n, &primes).remove(0);
        Ok(PublicKey {
            ctx: ctx.clone(),
            b,
            a,
            seed,
        })
    }
}

fn write_ksk(w: &mut Writer, ctx: &CkksContext, k: &KeySwitchKey) {
    let all = ctx.all_primes();
    w.u8(k.b.len() as u8);
    w.bytes(&k.seed);
    for b in &k.b {
        w.poly(b, &all);
    }
}

fn read_ksk(ctx: &CkksContext, r: &mut Reader<'_>) -> Result<KeySwitchKey> {
    let digits = r.u8()? as usize;
    if digits != ctx.digits[ctx.max_level()].len() {
        return Err(DecodeError::Malformed("digit count does not match the parameters").into());
    }
    let seed = r.seed()?;
    let all = ctx.all_primes();
    let b = (0..digits)
        .map(|_| r.poly(ctx.n, &all))
        .collect::<Result<Vec<_>>>()?;
    let a = expand_uniform(&seed, digits, ctx.n, &all);
    Ok(KeySwitchKey { b, a, seed })
}

fn ksk_len(ctx: &CkksContext) -> usize {
    1 + 32 + ctx.digits[ctx.max_level()].len() * poly_len(ctx.n, &ctx.all_primes())
}

impl RelinKey {
    /// Encodes the key (the b halves and one seed).
    pub fn to_bytes(&self, ctx: &CkksContext) -> Result<Vec<u8>> {
        if self.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let mut w = Writer::new(ctx, Kind::RelinKey, ksk_len(ctx));
        write_ksk(&mut w, ctx, &self.key);
        Ok(w.out)
    }
    /// Decodes a relinearization key.
    pub fn from_bytes(ctx: &Arc<CkksContext>, bytes: &[u8], opts: &DecodeOptions) -> Result<Self> {
        let mut r = open(ctx, bytes, Kind::RelinKey, opts.max_bytes)?;
        let key = read_ksk(ctx, &mut r)?;
        r.finish()?;
        Ok(RelinKey {
            ctx_id: ctx.id,
            key,
        })
    }
}

fn read_galois_element(ctx: &CkksContext, r: &mut Reader<'_>) -> Result<usize> {
    let g = r.u32()? as usize;
    if g.is_multiple_of(2) || g >= 2 * ctx.n || g == 1 {
        return Err(DecodeError::Malformed("invalid Galois element").into());
    }
    Ok(g)
}

impl GaloisKey {
    /// Encodes the key.
    pub fn to_bytes(&self, ctx: &CkksContext) -> Result<Vec<u8>> {
        if self.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let mut w = Writer::new(ctx, Kind::GaloisKey, 4 + ksk_len(ctx));
        w.u32(self.galois_element as u32);
        write_ksk(&mut w, ctx, &self.key);
        Ok(w.out)
    }
    /// Decodes a Galois key.
    pub fn from_bytes(ctx: &Arc<CkksContext>, bytes: &[u8], opts: &DecodeOptions) -> Result<Self> {
        let mut r = open(ctx, bytes, Kind::GaloisKey, opts.max_bytes)?;
        let galois_element = read_galois_element(ctx, &mut r)?;
        let key = read_ksk(ctx, &mut r)?;
        r.finish()?;
        Ok(GaloisKey {
            ctx_id: ctx.id,
            galois_element,
            key,
            perm: Arc::new(galois_permutation(ctx.n, galois_element)),
        })
    }
}

impl EvaluationKeys {
    /// Encodes the whole set (relinearization key if any, then the Galois keys).
    pub fn to_bytes(&self, ctx: &CkksContext) -> Result<Vec<u8>> {
        if self.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let count = self.galois.len() + self.relin.is_some() as usize;
        let mut w = Writer::new(ctx, Kind::EvaluationKeys, count * (4 + ksk_len(ctx)));
        w.u8(self.relin.is_some() as u8);
        w.u32(self.galois.len() as u32);
        if let Some(rk) = &self.relin {
            write_ksk(&mut w, ctx, &rk.key);
        }
        for gk in self.galois.values() {
            w.u32(gk.galois_element as u32);
            write_ksk(&mut w, ctx, &gk.key);
        }
        Ok(w.out)
    }

    /// Decodes a set of evaluation keys.
    pub fn from_bytes(ctx: &Arc<CkksContext>, bytes: &[u8], opts: &DecodeOptions) -> Result<Self> {
        let mut r = open(ctx, bytes, Kind::EvaluationKeys, opts.max_bytes)?;
        let has_relin = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Malformed("flags").into()),
        };
        let count = r.u32()? as usize;
        if count > MAX_GALOIS_KEYS {
            return Err(DecodeError::Malformed("too many Galois keys").into());
        }
        // The rest has a fixed length: check it before decoding anything big.
        let need = (count + has_relin as usize) * ksk_len(ctx) + 4 * count;
        if bytes.len() - r.pos != need {
            return Err(if bytes.len() - r.pos < need {
                DecodeError::Truncated
            } else {
                DecodeError::TrailingBytes(bytes.len() - r.pos - need)
            }
            .into());
        }
        let relin = if has_relin {
            Some(RelinKey {
                ctx_id: ctx.id,
                key: read_ksk(ctx, &mut r)?,
            })
        } else {
            None
        };
        let mut galois = BTreeMap::new();
        for _ in 0..count {
            let g = read_galois_element(ctx, &mut r)?;
            // The encoder writes the keys sorted by element: refuse any other order, so that an
            // encoding is canonical (one set, one byte string).
            match galois.last_key_value() {
                Some((&prev, _)) if g == prev => {
                    return Err(DecodeError::Malformed("duplicate Galois element").into());
                }
                Some((&prev, _)) if g < prev => {
                    return Err(DecodeError::Malformed("Galois keys out of order").into());
                }
                _ => {}
            }
            let key = read_ksk(ctx, &mut r)?;
            let gk = GaloisKey {
                ctx_id: ctx.id,
                galois_element: g,
                key,
                perm: Arc::new(galois_permutation(ctx.n, g)),
            };
            galois.insert(g, gk);
        }
        r.finish()?;
        Ok(EvaluationKeys {
            ctx_id: ctx.id,
            relin,
            galois,
        })
    }
}

impl SecretKey {
    /// Encodes the secret key (2 bits per ternary coefficient). The bytes are the secret: keep
    /// them in a zeroizing buffer, as returned.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let ctx = &self.ctx;
        let mut w = Writer::new(ctx, Kind::SecretKey, ctx.n / 4);
        let codes: Zeroizing<Vec<u64>> = Zeroizing::new(
            self.coeffs
                .iter()
                .map(|&c| match c {
                    0 => 0u64,
                    1 => 1,
                    _ => 2,
                })
                .collect(),
        );
        w.packed(&codes, 2);
        w.flush();
        let out = Zeroizing::new(std::mem::take(&mut w.out));
        w.acc = 0;
        out
    }

    /// Decodes a secret key.
    pub fn from_bytes(ctx: &Arc<CkksContext>, bytes: &[u8], opts: &DecodeOptions) -> Result<Self> {
        let mut r = open(ctx, bytes, Kind::SecretKey, opts.max_bytes)?;
        let src = r.take(ctx.n.div_ceil(4))?;
        r.finish()?;
        let mut coeffs = Zeroizing::new(Vec::with_capacity(ctx.n));
        for k in 0..ctx.n {
            let code = (src[k / 4] >> (2 * (k % 4))) & 3;
            coeffs.push(match code {
                0 => 0i8,
                1 => 1,
                2 => -1,
                _ => return Err(DecodeError::Malformed("secret key coefficient").into()),
            });
        }
        Ok(SecretKey::from_ternary(ctx, coeffs))
    }
}
