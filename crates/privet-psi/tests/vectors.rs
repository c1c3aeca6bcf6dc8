//! Published test vectors.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//!
//! RFC 9496 (The ristretto255 and decaf448 Groups), Appendix A.3, gives the output of the
//! one-way map from 64 uniform bytes to ristretto255 for seven inputs, each the SHA-512 of a
//! label (the same vectors are published on ristretto.group and used by libsodium's and
//! noble-curves' tests). privet-psi's hash-to-group is dalek's `RistrettoPoint::from_hash`
//! (that one-way map over SHA-512) of a domain-separated input, so these vectors test the map
//! it relies on; `hash_to_group_is_the_one_way_map_of_the_stated_encoding` then checks that the
//! crate feeds it exactly the encoding its documentation states.

use curve25519_dalek::ristretto::RistrettoPoint;
use privet_psi::group::{SessionId, hash_to_group};
use sha2::{Digest, Sha512};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const VECTORS: [(&str, &str, &str); 7] = [
    (
        "Ristretto is traditionally a short shot of espresso coffee",
        "5d1be09e3d0c82fc538112490e35701979d99e06ca3e2b5b54bffe8b4dc772c14d98b696a1bbfb5ca32c436cc61c16563790306c79eaca7705668b47dffe5bb6",
        "3066f82a1a747d45120d1740f14358531a8f04bbffe6a819f86dfe50f44a0a46",
    ),
    (
        "made with the normal amount of ground coffee but extracted with",
        "f116b34b8f17ceb56e8732a60d913dd10cce47a6d53bee9204be8b44f6678b270102a56902e2488c46120e9276cfe54638286b9e4b3cdb470b542d46c2068d38",
        "f26e5b6f7d362d2d2a94c5d0e7602cb4773c95a2e5c31a64f133189fa76ed61b",
    ),
    (
        "about half the amount of water in the same amount of time",
        "8422e1bbdaab52938b81fd602effb6f89110e1e57208ad12d9ad767e2e25510c27140775f9337088b982d83d7fcf0b2fa1edffe51952cbe7365e95c86eaf325c",
        "006ccd2a9e6867e6a2c5cea83d3302cc9de128dd2a9a57dd8ee7b9d7ffe02826",
    ),
    (
        "by using a finer grind.",
        "ac22415129b61427bf464e17baee8db65940c233b98afce8d17c57beeb7876c2150d15af1cb1fb824bbd14955f2b57d08d388aab431a391cfc33d5bafb5dbbaf",
        "f8f0c87cf237953c5890aec3998169005dae3eca1fbb04548c635953c817f92a",
    ),
    (
        "This produces a concentrated shot of coffee per volume.",
        "165d697a1ef3d5cf3c38565beefcf88c0f282b8e7dbd28544c483432f1cec7675debea8ebb4e5fe7d6f6e5db15f15587ac4d4d4a1de7191e0c1ca6664abcc413",
        "ae81e7dedf20a497e10c304a765c1767a42d6e06029758d2d7e8ef7cc4c41179",
    ),
    (
        "Just pulling a normal shot short will produce a weaker shot",
        "a836e6c9a9ca9f1e8d486273ad56a78c70cf18f0ce10abb1c7172ddd605d7fd2979854f47ae1ccf204a33102095b4200e5befc0465accc263175485f0e17ea5c",
        "e2705652ff9f5e44d3e841bf1c251cf7dddb77d140870d1ab2ed64f1a9ce8628",
    ),
    (
        "and is not a Ristretto as some believe.",
        "2cdc11eaeb95daf01189417cdddbf95952993aa9cb9c640eb5058d09702c74622c9965a697a3b345ec24ee56335b556e677b30e6f90ac77d781064f866a3c982",
        "80bd07262511cdde4863f8a7434cef696750681cb9510eea557088f76d9e5065",
    ),
];

#[test]
fn rfc9496_one_way_map_vectors() {
    for (label, input, output) in VECTORS {
        let digest = Sha512::digest(label.as_bytes());
        assert_eq!(hex(&digest), input, "SHA-512 of {label:?}");
        let mut uniform = [0u8; 64];
        uniform.copy_from_slice(&digest);
        let p = RistrettoPoint::from_uniform_bytes(&uniform);
        assert_eq!(
            hex(p.compress().as_bytes()),
            output,
            "one-way map of {label:?}"
        );
    }
}

#[test]
fn hash_to_group_is_the_one_way_map_of_the_stated_encoding() {
    let session = SessionId::derive(&[1; 32], &[2; 32]);
    let id = b"alice@example.org";
    let dst = b"privet-psi/v1/hash-to-group";
    let mut input = Vec::new();
    input.extend_from_slice(&(dst.len() as u64).to_le_bytes());
    input.extend_from_slice(dst);
    input.extend_from_slice(session.as_bytes());
    input.extend_from_slice(&(id.len() as u64).to_le_bytes());
    input.extend_from_slice(id);
    let mut uniform = [0u8; 64];
    uniform.copy_from_slice(&Sha512::digest(&input));
    assert_eq!(
        hash_to_group(&session, id),
        RistrettoPoint::from_uniform_bytes(&uniform)
    );
}
