//! Mask expansion: the pseudorandom generator that stretches a 32-byte mask key into a vector
//! of words modulo `2^b`.
//!
//! Two generators are defined, each with a one-byte id that travels in every signed key
//! advertisement (wire version 2), so that all clients of a round and the coordinator agree on
//! it; a mismatch is refused at stage 0 (coordinator) and stage 1 (clients):
//!
//! | id | [`MaskPrg`] | job value | stream |
//! |---|---|---|---|
//! | 1 | [`MaskPrg::ChaCha20`] | `"chacha20"` | ChaCha20 (RFC 8439) under the 32-byte key, nonce 0, block counter from 0 |
//! | 2 | [`MaskPrg::Aes128Ctr`] (default) | `"aes128-ctr"` | AES-128 (FIPS 197) in counter mode (NIST SP 800-38A, 128-bit big-endian counter) under the first 16 bytes of the key, initial counter block 0 |
//!
//! Word `i` of a mask is keystream bytes `[i·w, (i+1)·w)` with `w = ⌈b/8⌉`, read
//! little-endian and reduced modulo `2^b` (uniform, since `2^b` divides `2^(8w)`). Every mask
//! key comes from HKDF-SHA256 with a purpose, the round and the clients in its `info` and is
//! used for one stream only, so a fixed nonce or initial counter is safe. AES-128-CTR is the
//! default because the `aes` crate uses the processor's AES instructions (AES-NI, detected at
//! run time; [`hardware_aes`]), where it expands a mask several times faster than ChaCha20.
//! Without them it falls back to a constant-time bitsliced software AES, slower than ChaCha20:
//! choose `"chacha20"` there. A mask is at most `2^28` words (`2^31` bytes, `2^27` AES blocks),
//! far below the `2^64` blocks where a 128-bit block cipher in counter mode becomes
//! distinguishable from random.
//!
//! Expansion is split into chunks of [`CHUNK_WORDS`] words that rayon spreads over the cores;
//! each chunk seeks every stream to its own offset, so the result does not depend on the
//! number of threads (`RAYON_NUM_THREADS=1` runs it on one).

use std::fmt;

use aes::Aes128;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use rayon::prelude::*;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::SecAggError;
use crate::crypto::{Sign, bytes_per_word, combine_words, modulus_mask};

/// AES-128 in counter mode with a 128-bit big-endian counter (NIST SP 800-38A).
type Aes128Ctr = ctr::Ctr128BE<Aes128>;

/// Words per unit of parallel work: a multiple of 64, so that every chunk starts on a cipher
/// block boundary whatever the word width.
pub const CHUNK_WORDS: usize = 16 * 1024;

/// Words of keystream generated at a time (the buffer stays in the L1 cache).
const BUFFER_WORDS: usize = 2048;

/// The pseudorandom generator that expands mask keys (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum MaskPrg {
    /// AES-128-CTR, id 2, the default (`"aes128-ctr"` in a job file).
    #[default]
    #[serde(rename = "aes128-ctr")]
    Aes128Ctr,
    /// ChaCha20, id 1, the generator of wire version 1 (`"chacha20"` in a job file).
    #[serde(rename = "chacha20")]
    ChaCha20,
}

impl MaskPrg {
    /// The one-byte id carried in key advertisements.
    pub fn id(self) -> u8 {
        match self {
            MaskPrg::ChaCha20 => 1,
            MaskPrg::Aes128Ctr => 2,
        }
    }

    /// The generator with wire id `id`.
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(MaskPrg::ChaCha20),
            2 => Some(MaskPrg::Aes128Ctr),
            _ => None,
        }
    }

    /// The name used in job files.
    pub fn name(self) -> &'static str {
        match self {
            MaskPrg::ChaCha20 => "chacha20",
            MaskPrg::Aes128Ctr => "aes128-ctr",
        }
    }
}

impl MaskPrg {
    /// Adds the mask of every key in `keys` to `acc`, word by word modulo `2^bits` (`bits` in
    /// 1..=64): what a client does with its self mask and pairwise masks, all with sign `+`.
    /// Public for known-answer tests and benchmarks; the protocol calls it internally.
    pub fn add_masks(
        self,
        keys: &[[u8; 32]],
        bits: u32,
        acc: &mut [u64],
    ) -> Result<(), SecAggError> {
        if !(1..=64).contains(&bits) {
            return Err(SecAggError::InvalidConfig(format!(
                "mask width must be 1 to 64 bits, got {bits}"
            )));
        }
        let terms: Vec<MaskTerm<'_>> = keys.iter().map(|k| (k, Sign::Add)).collect();
        apply_masks(acc, &terms, bits, self)
    }
}

impl fmt::Display for MaskPrg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether this processor has AES instructions that the `aes` crate uses (checked at run
/// time). Without them [`MaskPrg::Aes128Ctr`] runs a slower software AES.
pub fn hardware_aes() -> bool {
    aes::hardware_accelerated()
}

/// One keystream (the cipher state zeroizes on drop).
enum Stream {
    ChaCha(ChaCha20),
    Aes(Box<Aes128Ctr>),
}

impl Stream {
    /// The stream of `key`, positioned at byte `offset`.
    fn new(prg: MaskPrg, key: &[u8; 32], offset: u64) -> Result<Self, SecAggError> {
        let seek_err = |_| SecAggError::Crypto("mask stream too long".into());
        Ok(match prg {
            MaskPrg::ChaCha20 => {
                let mut c = ChaCha20::new(key.into(), &[0u8; 12].into());
                c.try_seek(offset).map_err(seek_err)?;
                Stream::ChaCha(c)
            }
            MaskPrg::Aes128Ctr => {
                let aes_key: &[u8; 16] = key
                    .first_chunk()
                    .ok_or_else(|| SecAggError::Crypto("mask key length".into()))?;
                let mut c = Aes128Ctr::new(aes_key.into(), &[0u8; 16].into());
                c.try_seek(offset).map_err(seek_err)?;
                Stream::Aes(Box::new(c))
            }
        })
    }

    fn fill(&mut self, bytes: &mut [u8]) -> Result<(), SecAggError> {
        let r = match self {
            Stream::ChaCha(c) => c.try_write_keystream(bytes),
            Stream::Aes(c) => c.try_write_keystream(bytes),
        };
        r.map_err(|_| SecAggError::Crypto("mask stream exhausted".into()))
    }
}

/// One mask to add or subtract: the key of its stream and the sign.
pub(crate) type MaskTerm<'a> = (&'a [u8; 32], Sign);

/// Adds (or subtracts) the masks of `terms` to `acc`, word by word modulo `2^bits`, after
/// calling `base(start, chunk)` on each chunk (`start` is the chunk's first word index; the
/// coordinator adds the masked inputs there). Chunks run in parallel on rayon's pool.
pub(crate) fn apply_masks_with(
    acc: &mut [u64],
    terms: &[MaskTerm<'_>],
    bits: u32,
    prg: MaskPrg,
    base: impl Fn(usize, &mut [u64]) + Sync,
) -> Result<(), SecAggError> {
    let bpw = bytes_per_word(bits);
    let mask = modulus_mask(bits);
    acc.par_chunks_mut(CHUNK_WORDS)
        .enumerate()
        .try_for_each(|(i, chunk)| {
            let start = i * CHUNK_WORDS;
            base(start, chunk);
            let mut buf = Zeroizing::new(vec![0u8; BUFFER_WORDS.min(chunk.len()) * bpw]);
            for &(key, sign) in terms {
                let mut stream = Stream::new(prg, key, (start * bpw) as u64)?;
                for sub in chunk.chunks_mut(BUFFER_WORDS) {
                    let bytes = buf
                        .get_mut(..sub.len() * bpw)
                        .ok_or_else(|| SecAggError::Crypto("mask buffer".into()))?;
                    stream.fill(bytes)?;
                    // Reduction modulo 2^bits is deferred to the end of the chunk: 2^bits
                    // divides 2^64, so wrapping arithmetic commutes with it.
                    match sign {
                        Sign::Add => combine_words(sub, bytes, bpw, u64::wrapping_add),
                        Sign::Sub => combine_words(sub, bytes, bpw, u64::wrapping_sub),
                    }
                }
            }
            for a in chunk.iter_mut() {
                *a &= mask;
            }
            Ok(())
        })
}

/// Adds (or subtracts) the masks of `terms` to `acc` (see [`apply_masks_with`]).
pub(crate) fn apply_masks(
    acc: &mut [u64],
    terms: &[MaskTerm<'_>],
    bits: u32,
    prg: MaskPrg,
) -> Result<(), SecAggError> {
    apply_masks_with(acc, terms, bits, prg, |_, _| {})
}

/// Adds (or subtracts) the mask stream of `key` to `acc`.
#[cfg(test)]
pub(crate) fn apply_mask(
    acc: &mut [u64],
    key: &[u8; 32],
    bits: u32,
    sign: Sign,
    prg: MaskPrg,
) -> Result<(), SecAggError> {
    apply_masks(acc, &[(key, sign)], bits, prg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST SP 800-38A, F.5.1 (CTR-AES128.Encrypt): the stream type used for masks.
    #[test]
    fn aes128_ctr_matches_sp800_38a_f51() {
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let counter: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").try_into().unwrap();
        let mut block = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710"
        ));
        let mut c = Aes128Ctr::new(&key.into(), &counter.into());
        c.apply_keystream(&mut block);
        assert_eq!(
            block,
            hex(concat!(
                "874d6191b620e3261bef6864990db6ce",
                "9806f66b7970fdff8617187bb9fffdff",
                "5ae4df3edbd5d35e5b4f09020db03eab",
                "1e031dda2fbe03d1792170a0f3009cee"
            ))
        );
    }

    /// The mask derivation end to end, against an independent implementation (OpenSSL 3.0:
    /// `openssl kdf ... HKDF` for the key, `openssl enc -aes-128-ctr` / `-chacha20` on zeros
    /// for the stream): the RFC 7748 §6.1 shared secret, HKDF-SHA256 with salt
    /// `privet-secagg/v1` and info `"pairwise-mask" || round 3 || client 1 || client 2`
    /// (little-endian u32s), then the first eight 32-bit words of each generator's mask.
    #[test]
    fn pairwise_mask_derivation_matches_openssl() {
        use crate::crypto::{agree, pairwise_mask_key};
        use privet_fl::ClientId;
        use x25519_dalek::{PublicKey, StaticSecret};
        let alice: [u8; 32] =
            hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .try_into()
                .unwrap();
        let bob: [u8; 32] = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
            .try_into()
            .unwrap();
        let bob_pk = PublicKey::from(&StaticSecret::from(bob)).to_bytes();
        let shared = agree(&StaticSecret::from(alice), &bob_pk, ClientId(2)).unwrap();
        // Either client of the pair derives the same key.
        let key = pairwise_mask_key(&shared, 3, ClientId(2), ClientId(1)).unwrap();
        assert_eq!(
            key.to_vec(),
            hex("53b22dd1778ebddaecb327cfa1a426e04e79444d9352420c8d0b3d6fe61aba44")
        );
        let cases = [
            (
                MaskPrg::Aes128Ctr,
                "5ad739b194db867b3b3683e3c65c35d8914dd933983f4f03dd3ceac1bb91446e",
            ),
            (
                MaskPrg::ChaCha20,
                "a16223929e25d9afa69949da0c2f7a9f3d552c25bc04286df3bfed444440d114",
            ),
        ];
        for (prg, stream) in cases {
            let want: Vec<u64> = hex(stream)
                .chunks_exact(4)
                .map(|w| u64::from(u32::from_le_bytes(w.try_into().unwrap())))
                .collect();
            let mut got = vec![0u64; 8];
            prg.add_masks(&[*key], 32, &mut got).unwrap();
            assert_eq!(got, want, "{prg}");
        }
    }

    #[test]
    fn ids_round_trip_and_unknown_ids_are_refused() {
        for prg in [MaskPrg::ChaCha20, MaskPrg::Aes128Ctr] {
            assert_eq!(MaskPrg::from_id(prg.id()), Some(prg));
        }
        assert_eq!(MaskPrg::from_id(0), None);
        assert_eq!(MaskPrg::from_id(3), None);
        assert_eq!(MaskPrg::default(), MaskPrg::Aes128Ctr);
    }

    /// Word i of a mask is keystream bytes [i w, (i+1) w), little-endian, mod 2^b, for every
    /// width and across chunk boundaries (the parallel split must not change the stream).
    #[test]
    fn masks_are_the_keystream_read_as_words() {
        let key: [u8; 32] = std::array::from_fn(|i| (i * 7 + 1) as u8);
        let len = CHUNK_WORDS * 2 + 77;
        for prg in [MaskPrg::ChaCha20, MaskPrg::Aes128Ctr] {
            for bits in [16u32, 20, 32, 40, 64] {
                let w = bytes_per_word(bits);
                let mut stream = vec![0u8; len * w];
                Stream::new(prg, &key, 0)
                    .unwrap()
                    .fill(&mut stream)
                    .unwrap();
                let mut acc = vec![0u64; len];
                apply_masks(&mut acc, &[(&key, Sign::Add)], bits, prg).unwrap();
                for (i, got) in acc.iter().enumerate() {
                    let mut word = [0u8; 8];
                    word[..w].copy_from_slice(&stream[i * w..(i + 1) * w]);
                    let want = u64::from_le_bytes(word) & modulus_mask(bits);
                    assert_eq!(*got, want, "{prg} bits {bits} word {i}");
                }
                apply_masks(&mut acc, &[(&key, Sign::Sub)], bits, prg).unwrap();
                assert!(acc.iter().all(|&a| a == 0));
            }
        }
    }

    #[test]
    fn the_two_generators_give_different_masks() {
        let key = [9u8; 32];
        let mut a = vec![0u64; 64];
        let mut b = vec![0u64; 64];
        apply_mask(&mut a, &key, 32, Sign::Add, MaskPrg::ChaCha20).unwrap();
        apply_mask(&mut b, &key, 32, Sign::Add, MaskPrg::Aes128Ctr).unwrap();
        assert_ne!(a, b);
    }
}
