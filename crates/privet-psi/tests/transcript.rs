//! What the transcript shows: no identifier or value in the clear, re-randomised sums,
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! orderings destroyed.

mod common;

use common::*;
use curve25519_dalek::ristretto::CompressedRistretto;
use privet_psi::group::{SessionId, hash_to_group};
use privet_psi::wire::{WireLimits, decode};
use privet_psi::{Direction, ElementKind, Message, ServerConfig};

const SERVER_IDS: [&str; 5] = [
    "needle-ann@example.org",
    "needle-bob@example.org",
    "needle-cid@example.org",
    "needle-dee@example.org",
    "needle-eve@example.org",
];
// Values with a byte pattern that would stand out in the transcript.
const CLIENT: [(&str, i64); 4] = [
    ("needle-bob@example.org", 0x5a_5a5a),
    ("needle-zed@example.org", 0x3c_3c3c),
    ("needle-eve@example.org", 0x69_6969),
    ("needle-yan@example.org", 0x71_7171),
];

fn transcript(client: &[(&str, i64)], seed: u64) -> Vec<(Direction, Vec<u8>)> {
    run(
        ServerConfig::default(),
        ids(&SERVER_IDS),
        sum_client(),
        pairs(client),
        seed,
        true,
    )
    .unwrap()
    .transcript
    .unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn decoded(t: &[(Direction, Vec<u8>)]) -> Vec<Message> {
    t.iter()
        .map(|(_, b)| decode(b, &WireLimits::default()).unwrap())
        .collect()
}

#[test]
fn no_identifier_value_or_unblinded_hash_appears_on_the_wire() {
    let t = transcript(&CLIENT, 1);
    let msgs = decoded(&t);
    let (Message::ClientHello(ch), Message::ServerHello(sh)) = (&msgs[0], &msgs[1]) else {
        panic!("the session does not open with the hellos");
    };
    let session = SessionId::derive(&ch.nonce, &sh.nonce);
    let all: Vec<u8> = t.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    for id in SERVER_IDS.iter().chain(CLIENT.iter().map(|(k, _)| k)) {
        assert!(!contains(&all, id.as_bytes()), "identifier in the clear");
        assert!(
            !contains(&all, b"needle"),
            "identifier fragment in the clear"
        );
        // H(id) itself (what an unblinded protocol would send) never appears.
        let h = hash_to_group(&session, id.as_bytes()).compress();
        assert!(
            !contains(&all, &h.as_bytes()[..12]),
            "an unblinded hash is on the wire"
        );
    }
    for (_, v) in CLIENT {
        assert!(
            !contains(&all, &v.to_le_bytes()[..3]),
            "value in the clear (LE)"
        );
        assert!(
            !contains(&all, &v.to_be_bytes()[5..]),
            "value in the clear (BE)"
        );
        assert!(
            !contains(&all, v.to_string().as_bytes()),
            "value in the clear (text)"
        );
    }
    // The outcome carries the size and one ciphertext, nothing per element.
    let Some(Message::Outcome(o)) = msgs.last() else {
        panic!("no outcome");
    };
    assert_eq!(o.intersection_size, 2);
    assert!(o.client_membership.is_none());
}

#[test]
fn the_encrypted_sum_is_rerandomised() {
    // One common identifier: without re-randomisation the encrypted sum would be that
    // element's ciphertext, byte for byte, and the client could tell which one it was.
    let client = [
        ("needle-bob@example.org", 17),
        ("needle-zed@example.org", 23),
    ];
    let msgs = decoded(&transcript(&client, 2));
    let mut sent = Vec::new();
    for m in &msgs {
        if let Message::Elements(e) = m
            && e.kind == ElementKind::ClientBlinded
        {
            sent.extend(e.ciphertexts.chunks(64).map(<[u8]>::to_vec));
        }
    }
    assert_eq!(sent.len(), 2);
    let Some(Message::Outcome(o)) = msgs.last() else {
        panic!("no outcome");
    };
    let sum = o.encrypted_sum.unwrap();
    for ct in &sent {
        assert_ne!(&sum[..32], &ct[..32]);
        assert_ne!(&sum[32..], &ct[32..]);
    }
}

#[test]
fn every_list_is_sorted_so_input_order_does_not_show() {
    let msgs = decoded(&transcript(&CLIENT, 3));
    let mut lists: [Vec<Vec<u8>>; 3] = Default::default();
    let mut tag_len = 0;
    for m in &msgs {
        if let Message::Elements(e) = m {
            match e.kind {
                ElementKind::ServerBlinded => {
                    lists[0].extend(e.points.chunks(32).map(<[u8]>::to_vec))
                }
                ElementKind::ClientBlinded => {
                    lists[1].extend(e.points.chunks(32).map(<[u8]>::to_vec))
                }
                ElementKind::ServerTags => {
                    tag_len = e.tags.len() / SERVER_IDS.len();
                    lists[2].extend(e.tags.chunks(tag_len).map(|t| {
                        // Tags are little-endian integers: compare them as such.
                        t.iter().rev().copied().collect::<Vec<u8>>()
                    }));
                }
            }
        }
    }
    assert_eq!(tag_len, 8);
    assert_eq!(lists[0].len(), SERVER_IDS.len());
    assert_eq!(lists[1].len(), CLIENT.len());
    for l in &lists {
        assert!(
            l.windows(2).all(|w| w[0] < w[1]),
            "a list is not strictly sorted"
        );
    }
    for p in lists[0].iter().chain(&lists[1]) {
        assert!(
            CompressedRistretto::from_slice(p)
                .unwrap()
                .decompress()
                .is_some()
        );
    }
}

#[test]
fn permuting_the_inputs_leaves_the_transcript_unchanged() {
    // Same generators, rows in another order: every message is byte-identical, so nothing on
    // the wire depends on the order of either party's rows.
    let mut reversed = CLIENT;
    reversed.reverse();
    let a = transcript(&CLIENT, 4);
    let b = transcript(&reversed, 4);
    assert_eq!(a, b);
    let mut server_rev = SERVER_IDS;
    server_rev.reverse();
    let c = run(
        ServerConfig::default(),
        ids(&server_rev),
        sum_client(),
        pairs(&CLIENT),
        4,
        true,
    )
    .unwrap()
    .transcript
    .unwrap();
    assert_eq!(a, c);
}

#[test]
fn fresh_keys_make_every_session_look_different() {
    let a = transcript(&CLIENT, 5);
    let b = transcript(&CLIENT, 6);
    let da = decoded(&a);
    let db = decoded(&b);
    for (x, y) in da.iter().zip(&db) {
        if let (Message::Elements(ex), Message::Elements(ey)) = (x, y) {
            if !ex.points.is_empty() {
                assert_ne!(ex.points, ey.points);
            }
            if !ex.tags.is_empty() {
                assert_ne!(ex.tags, ey.tags);
            }
        }
    }
}
