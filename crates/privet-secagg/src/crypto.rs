//! The cryptographic building blocks: randomness, key derivation, mask expansion, share
//! encryption, signatures on key advertisements, and the identity key directory.
//!
//! Every derived key goes through HKDF-SHA256 with the salt [`SALT`] and an `info` string that
//! names its purpose, the round and the clients involved, so no two uses share a key.

use std::collections::BTreeMap;
use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use privet_fl::ClientId;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::SecAggError;
use crate::prg::MaskPrg;

/// HKDF salt of every key derived by this crate (version 1 of the protocol).
pub(crate) const SALT: &[u8] = b"privet-secagg/v1";

/// Bytes of a share ciphertext: two 32-byte share values and the 16-byte Poly1305 tag.
pub(crate) const CIPHERTEXT_LEN: usize = 2 * 32 + 16;

/// A CSPRNG for one client's or one round's secrets: ChaCha20 seeded from the operating
/// system, zeroized on drop.
pub(crate) type SecretRng = chacha20::ChaCha20Rng;

/// A fresh [`SecretRng`] seeded by the operating system.
pub(crate) fn fresh_rng() -> Result<SecretRng, SecAggError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut())
        .map_err(|e| SecAggError::Randomness(format!("the operating system RNG failed: {e}")))?;
    Ok(SecretRng::from_seed(*seed))
}

/// A uniformly random scalar (from 64 random bytes reduced mod ℓ).
pub(crate) fn random_scalar(rng: &mut SecretRng) -> SecretScalar {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(wide.as_mut());
    SecretScalar(Scalar::from_bytes_mod_order_wide(&wide))
}

/// A secret scalar (a Shamir secret or share value), zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretScalar(pub(crate) Scalar);

impl fmt::Debug for SecretScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretScalar(..)")
    }
}

impl SecretScalar {
    /// The canonical little-endian encoding (secret: the caller must not keep it around).
    pub(crate) fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// Parses a canonical scalar encoding.
    pub(crate) fn from_canonical(bytes: [u8; 32]) -> Option<Self> {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes)).map(SecretScalar)
    }

    /// The X25519 secret key whose bytes are this scalar's encoding (X25519 clamps them).
    pub(crate) fn to_x25519(&self) -> StaticSecret {
        StaticSecret::from(*self.to_bytes())
    }
}

/// Whether `bytes` is an X25519 public key on the curve and not of small order (a small-order
/// key would force a known shared secret).
pub(crate) fn valid_public_key(bytes: &[u8; 32]) -> bool {
    MontgomeryPoint(*bytes)
        .to_edwards(0)
        .is_some_and(|p| !p.is_small_order())
}

/// X25519 with a check that the result depends on both keys.
pub(crate) fn agree(
    secret: &StaticSecret,
    their_public: &[u8; 32],
    peer: ClientId,
) -> Result<SharedSecret, SecAggError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*their_public));
    if shared.was_contributory() {
        Ok(shared)
    } else {
        Err(SecAggError::BadPublicKey(peer))
    }
}

/// HKDF-SHA256 of `ikm` into a 32-byte key for `info`.
fn derive(ikm: &[u8], info: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    let hk = Hkdf::<Sha256>::new(Some(SALT), ikm);
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(info, okm.as_mut())
        .map_err(|_| SecAggError::Crypto("HKDF output length".into()))?;
    Ok(okm)
}

/// The mask key shared by clients `a` and `b` in `round`, from their X25519 agreement (the same
/// whichever of the two computes it).
pub(crate) fn pairwise_mask_key(
    shared: &SharedSecret,
    round: u32,
    a: ClientId,
    b: ClientId,
) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    derive(
        shared.as_bytes(),
        &[
            b"pairwise-mask",
            &round.to_le_bytes(),
            &lo.0.to_le_bytes(),
            &hi.0.to_le_bytes(),
        ],
    )
}

/// The self-mask key of `client` in `round`, from its self-mask secret `b`.
pub(crate) fn self_mask_key(
    b: &SecretScalar,
    round: u32,
    client: ClientId,
) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    derive(
        b.to_bytes().as_ref(),
        &[b"self-mask", &round.to_le_bytes(), &client.0.to_le_bytes()],
    )
}

/// The commitment to a self-mask secret that a client signs into its key advertisement, so
/// the coordinator can tell a correct reconstruction from a corrupted one.
pub(crate) fn self_mask_commitment(b: &SecretScalar, round: u32, client: ClientId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"privet-secagg/v1/self-mask-commitment");
    h.update(round.to_le_bytes());
    h.update(client.0.to_le_bytes());
    h.update(b.to_bytes().as_ref());
    h.finalize().into()
}

/// Whether two 32-byte values are equal, in constant time.
pub(crate) fn ct_eq32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// How a mask stream is combined with an accumulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sign {
    Add,
    Sub,
}

impl Sign {
    pub(crate) fn flip(self) -> Self {
        match self {
            Sign::Add => Sign::Sub,
            Sign::Sub => Sign::Add,
        }
    }
}

/// Bytes per word of a vector modulo `2^bits`.
pub(crate) fn bytes_per_word(bits: u32) -> usize {
    bits.div_ceil(8) as usize
}

/// The mask `2^bits - 1`.
pub(crate) fn modulus_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// `acc[i] = f(acc[i], word i of bytes)` for little-endian words of `bpw` bytes (fast paths for
/// 4 and 8).
#[inline]
pub(crate) fn combine_words(
    acc: &mut [u64],
    bytes: &[u8],
    bpw: usize,
    f: impl Fn(u64, u64) -> u64,
) {
    match bpw {
        4 => {
            for (a, w) in acc.iter_mut().zip(bytes.chunks_exact(4)) {
                let w = <[u8; 4]>::try_from(w).map_or(0, u32::from_le_bytes);
                *a = f(*a, u64::from(w));
            }
        }
        8 => {
            for (a, w) in acc.iter_mut().zip(bytes.chunks_exact(8)) {
                *a = f(*a, <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes));
            }
        }
        _ => {
            for (a, w) in acc.iter_mut().zip(bytes.chunks_exact(bpw)) {
                *a = f(*a, le_word(w));
            }
        }
    }
}

/// A little-endian word of up to 8 bytes.
#[inline]
pub(crate) fn le_word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(bytes) {
        *d = *s;
    }
    u64::from_le_bytes(w)
}

/// The AEAD key and associated data for the shares `sender` encrypts to `recipient` in
/// `round`. The key is directional (sender and recipient in order), so each key encrypts one
/// message and the nonce can be zero.
fn share_key_and_aad(
    shared: &SharedSecret,
    round: u32,
    sender: ClientId,
    recipient: ClientId,
) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>), SecAggError> {
    let key = derive(
        shared.as_bytes(),
        &[
            b"share-encryption",
            &round.to_le_bytes(),
            &sender.0.to_le_bytes(),
            &recipient.0.to_le_bytes(),
        ],
    )?;
    let mut aad = Vec::with_capacity(40);
    aad.extend_from_slice(b"privet-secagg/v1/shares");
    aad.extend_from_slice(&round.to_le_bytes());
    aad.extend_from_slice(&sender.0.to_le_bytes());
    aad.extend_from_slice(&recipient.0.to_le_bytes());
    Ok((key, aad))
}

/// Encrypts `sender`'s two shares for `recipient`.
pub(crate) fn encrypt_shares(
    shared: &SharedSecret,
    round: u32,
    sender: ClientId,
    recipient: ClientId,
    self_mask_share: &SecretScalar,
    mask_key_share: &SecretScalar,
) -> Result<[u8; CIPHERTEXT_LEN], SecAggError> {
    let (key, aad) = share_key_and_aad(shared, round, sender, recipient)?;
    let mut plaintext = Zeroizing::new([0u8; 64]);
    plaintext[..32].copy_from_slice(self_mask_share.to_bytes().as_ref());
    plaintext[32..].copy_from_slice(mask_key_share.to_bytes().as_ref());
    let key: &[u8; 32] = &key;
    let cipher = ChaCha20Poly1305::new(key.into());
    let ct = cipher
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: plaintext.as_ref(),
                aad: &aad,
            },
        )
        .map_err(|_| SecAggError::Crypto("share encryption failed".into()))?;
    <[u8; CIPHERTEXT_LEN]>::try_from(ct.as_slice())
        .map_err(|_| SecAggError::Crypto("unexpected ciphertext length".into()))
}

/// Decrypts the shares `sender` encrypted for `recipient`: `(self-mask share, mask-key share)`.
pub(crate) fn decrypt_shares(
    shared: &SharedSecret,
    round: u32,
    sender: ClientId,
    recipient: ClientId,
    ciphertext: &[u8; CIPHERTEXT_LEN],
) -> Result<(SecretScalar, SecretScalar), SecAggError> {
    let (key, aad) = share_key_and_aad(shared, round, sender, recipient)?;
    let key: &[u8; 32] = &key;
    let cipher = ChaCha20Poly1305::new(key.into());
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                &Nonce::default(),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecAggError::Decryption(sender))?,
    );
    let half = |range: std::ops::Range<usize>| {
        plaintext
            .get(range)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(SecretScalar::from_canonical)
            .ok_or(SecAggError::Decryption(sender))
    };
    Ok((half(0..32)?, half(32..64)?))
}

/// The bytes a client signs to advertise its round keys and the mask generator it uses
/// (wire version 2; version 1 had no generator byte and always used ChaCha20).
pub(crate) fn advertisement_message(
    round: u32,
    client: ClientId,
    prg: MaskPrg,
    enc_pk: &[u8; 32],
    mask_pk: &[u8; 32],
    commitment: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + 9 + 96);
    m.extend_from_slice(b"privet-secagg/v2/advertise-keys");
    m.extend_from_slice(&round.to_le_bytes());
    m.extend_from_slice(&client.0.to_le_bytes());
    m.push(prg.id());
    m.extend_from_slice(enc_pk);
    m.extend_from_slice(mask_pk);
    m.extend_from_slice(commitment);
    m
}

/// Signs `message` with a client's identity key.
pub(crate) fn sign(identity: &SigningKey, message: &[u8]) -> [u8; 64] {
    identity.sign(message).to_bytes()
}

/// Verifies `signature` on `message` by `client` against the directory (strict Ed25519
/// verification: no malleable or small-order encodings).
pub(crate) fn verify(
    directory: &dyn KeyDirectory,
    client: ClientId,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SecAggError> {
    let key = directory
        .verifying_key(client)
        .ok_or(SecAggError::UnknownClient(client))?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| SecAggError::BadSignature(client))
}

/// Where the long-term Ed25519 identity keys of the federation's clients are looked up.
///
/// Both sides verify key advertisements against it: the coordinator when they arrive, each
/// client when the coordinator relays its neighbours' keys. How the directory is populated
/// (enrolment, certificates) is the runtime's business.
pub trait KeyDirectory: Send + Sync + fmt::Debug {
    /// The identity key of `client`, if it is enrolled.
    fn verifying_key(&self, client: ClientId) -> Option<VerifyingKey>;
}

/// A [`KeyDirectory`] held in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyMap(BTreeMap<ClientId, VerifyingKey>);

impl KeyMap {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enrols `client` with `key`, replacing any earlier key.
    pub fn insert(&mut self, client: ClientId, key: VerifyingKey) {
        self.0.insert(client, key);
    }

    /// Number of enrolled clients.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no client is enrolled.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(ClientId, VerifyingKey)> for KeyMap {
    fn from_iter<I: IntoIterator<Item = (ClientId, VerifyingKey)>>(iter: I) -> Self {
        KeyMap(iter.into_iter().collect())
    }
}

impl KeyDirectory for KeyMap {
    fn verifying_key(&self, client: ClientId) -> Option<VerifyingKey> {
        self.0.get(&client).copied()
    }
}

/// A [`KeyDirectory`] that fills while the protocol runs, shared between the protocol and the
/// runtime that enrols keys as it verifies them (a networked coordinator from its TLS
/// handshakes, a node from the certificates relayed to it). Cheap to clone: clones share the
/// same keys.
#[derive(Clone, Debug, Default)]
pub struct SharedKeyMap(std::sync::Arc<std::sync::RwLock<KeyMap>>);

impl SharedKeyMap {
    /// Enrols (or replaces, after a certificate renewal) `client`'s key.
    pub fn insert(&self, client: ClientId, key: VerifyingKey) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(client, key);
    }

    /// Whether `client` is enrolled with exactly `key`.
    pub fn has(&self, client: ClientId, key: &VerifyingKey) -> bool {
        self.verifying_key(client).as_ref() == Some(key)
    }
}

impl KeyDirectory for SharedKeyMap {
    fn verifying_key(&self, client: ClientId) -> Option<VerifyingKey> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .verifying_key(client)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    /// RFC 7748 §5.2, the two single-iteration X25519 vectors.
    #[test]
    fn x25519_matches_rfc7748_vectors() {
        let cases = [
            (
                "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
            ),
            // §5.2, the iterated test after one iteration: k = u = 9.
            (
                "0900000000000000000000000000000000000000000000000000000000000000",
                "0900000000000000000000000000000000000000000000000000000000000000",
                "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
            ),
        ];
        for (scalar, u, out) in cases {
            let got = StaticSecret::from(hex::<32>(scalar))
                .diffie_hellman(&PublicKey::from(hex::<32>(u)));
            assert_eq!(got.to_bytes(), hex::<32>(out));
        }
        // RFC 7748 §6.1: Alice and Bob agree.
        let alice_sk = StaticSecret::from(hex::<32>(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob_sk = StaticSecret::from(hex::<32>(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        let alice_pk = PublicKey::from(&alice_sk);
        let bob_pk = PublicKey::from(&bob_sk);
        assert_eq!(
            alice_pk.to_bytes(),
            hex::<32>("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        assert_eq!(
            bob_pk.to_bytes(),
            hex::<32>("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        );
        let k = hex::<32>("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(alice_sk.diffie_hellman(&bob_pk).to_bytes(), k);
        assert_eq!(bob_sk.diffie_hellman(&alice_pk).to_bytes(), k);
    }

    /// RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
    #[test]
    fn ed25519_matches_rfc8032_vectors() {
        let cases: [(&str, &str, &[u8], &str); 2] = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                b"",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                &[0x72],
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (sk, pk, msg, sig) in cases {
            let signing = SigningKey::from_bytes(&hex::<32>(sk));
            assert_eq!(signing.verifying_key().to_bytes(), hex::<32>(pk));
            let signature = sign(&signing, msg);
            assert_eq!(signature, hex::<64>(sig));
            let mut dir = KeyMap::new();
            dir.insert(ClientId(1), signing.verifying_key());
            verify(&dir, ClientId(1), msg, &signature).unwrap();
            let mut forged = signature;
            forged[0] ^= 1;
            assert_eq!(
                verify(&dir, ClientId(1), msg, &forged),
                Err(SecAggError::BadSignature(ClientId(1)))
            );
            assert_eq!(
                verify(&dir, ClientId(2), msg, &signature),
                Err(SecAggError::UnknownClient(ClientId(2)))
            );
        }
    }

    /// RFC 5869 A.1 (HKDF-SHA256, basic case), through the same crate and hash used here.
    #[test]
    fn hkdf_matches_rfc5869_vector() {
        let ikm = [0x0bu8; 22];
        let salt = hex::<13>("000102030405060708090a0b0c");
        let info = hex::<10>("f0f1f2f3f4f5f6f7f8f9");
        let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            okm,
            hex::<42>(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
        );
    }

    /// RFC 8439 §2.4.2 keystream: the mask stream is plain ChaCha20 (here with the RFC's nonce
    /// and counter, through the same cipher type).
    #[test]
    fn chacha20_matches_rfc8439_vector() {
        use chacha20::ChaCha20;
        use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let nonce = hex::<12>("000000000000004a00000000");
        let mut cipher = ChaCha20::new(&key.into(), &nonce.into());
        cipher.seek(64u32);
        let mut buf = *b"Ladies and Gentlemen of the class of '99: If I could offer you o";
        cipher.apply_keystream(&mut buf);
        assert_eq!(buf[..16], hex::<16>("6e2e359a2568f98041ba0728dd0d6981"));
    }

    #[test]
    fn small_order_and_off_curve_keys_are_refused() {
        assert!(!valid_public_key(&[0u8; 32]));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(!valid_public_key(&one));
        let sk = StaticSecret::from([7u8; 32]);
        assert!(valid_public_key(PublicKey::from(&sk).as_bytes()));
    }

    #[test]
    fn shares_decrypt_only_for_the_bound_round_and_direction() {
        let mut rng = fresh_rng().unwrap();
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb) = (PublicKey::from(&a), PublicKey::from(&b));
        let (ida, idb) = (ClientId(1), ClientId(2));
        let s1 = random_scalar(&mut rng);
        let s2 = random_scalar(&mut rng);
        let ab = agree(&a, pb.as_bytes(), idb).unwrap();
        let ba = agree(&b, pa.as_bytes(), ida).unwrap();
        let ct = encrypt_shares(&ab, 5, ida, idb, &s1, &s2).unwrap();
        let (d1, d2) = decrypt_shares(&ba, 5, ida, idb, &ct).unwrap();
        assert_eq!((d1.0, d2.0), (s1.0, s2.0));
        assert!(decrypt_shares(&ba, 6, ida, idb, &ct).is_err());
        assert!(decrypt_shares(&ba, 5, idb, ida, &ct).is_err());
        let mut bad = ct;
        bad[3] ^= 0x40;
        assert!(decrypt_shares(&ba, 5, ida, idb, &bad).is_err());
    }

    #[test]
    fn secrets_are_not_printed() {
        let mut rng = fresh_rng().unwrap();
        let s = random_scalar(&mut rng);
        assert_eq!(format!("{s:?}"), "SecretScalar(..)");
    }
}
