//! Hostile or broken peers: every deviation is an error of the right category, never a panic,
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! and the session is over afterwards.

mod common;

use bytes::Bytes;
use common::*;
use privet_psi::{
    ClientConfig, ElementKind, Elements, Functionality, Message, Outcome, PjcClient, PjcServer,
    PsiError, ServerConfig, abort_for,
};

/// A server that has answered a client hello, and that hello's answer.
fn opened() -> (PjcServer, PjcClient, Vec<Message>) {
    let mut server =
        PjcServer::with_rng(ServerConfig::default(), ids(&["a", "b", "c"]), rng(1)).unwrap();
    let mut client = PjcClient::with_rng(
        small_chunks(sum_client(), 2),
        pairs(&[("a", 1), ("b", 2), ("z", 3)]),
        rng(2),
    )
    .unwrap();
    let hello = client.start().unwrap().remove(0);
    let answer = server.handle(hello).unwrap();
    (server, client, answer)
}

fn chunk(kind: ElementKind, offset: u64, points: usize, cts: usize, tags: usize) -> Message {
    Message::Elements(Elements {
        kind,
        offset,
        points: Bytes::from(vec![0u8; points]),
        ciphertexts: Bytes::from(vec![0u8; cts]),
        tags: Bytes::from(vec![0u8; tags]),
    })
}

/// A valid client chunk, from a real client.
fn client_chunks(client: &mut PjcClient, answer: &[Message]) -> Vec<Message> {
    client.handle(answer[0].clone()).unwrap()
}

#[test]
fn the_server_refuses_malformed_or_misplaced_chunks() {
    type Check = fn(&PsiError) -> bool;
    let cases: Vec<(Message, Check)> = vec![
        // Wrong offset.
        (chunk(ElementKind::ClientBlinded, 1, 32, 64, 0), |e| {
            matches!(e, PsiError::PeerMisbehaved(_))
        }),
        // More than the agreed chunk of 2.
        (chunk(ElementKind::ClientBlinded, 0, 96, 192, 0), |e| {
            matches!(e, PsiError::PeerMisbehaved(_))
        }),
        // Ciphertexts missing in a sum session.
        (chunk(ElementKind::ClientBlinded, 0, 32, 0, 0), |e| {
            matches!(e, PsiError::InvalidMessage(_))
        }),
        // Not a point (all zeros is the identity).
        (chunk(ElementKind::ClientBlinded, 0, 32, 64, 0), |e| {
            matches!(e, PsiError::InvalidMessage(_))
        }),
        // A server list from the client.
        (chunk(ElementKind::ServerBlinded, 0, 32, 0, 0), |e| {
            matches!(e, PsiError::PeerMisbehaved(_))
        }),
        // Tags of the wrong width (tag length is 8 here).
        (chunk(ElementKind::ServerTags, 0, 0, 0, 7), |e| {
            matches!(e, PsiError::InvalidMessage(_))
        }),
        // A second hello.
        (
            Message::Outcome(Outcome {
                intersection_size: 1,
                encrypted_sum: None,
                client_membership: None,
            }),
            |e| matches!(e, PsiError::PeerMisbehaved(_)),
        ),
        (Message::Abort("bye".into()), |e| {
            matches!(e, PsiError::PeerAborted(_))
        }),
    ];
    for (i, (msg, ok)) in cases.into_iter().enumerate() {
        let (mut server, _, _) = opened();
        let err = server.handle(msg).unwrap_err();
        assert!(ok(&err), "case {i}: {err:?}");
        assert!(server.is_finished());
        assert!(server.handle(Message::Abort("x".into())).is_err());
        assert!(matches!(abort_for(&err), Message::Abort(_)));
    }
}

#[test]
fn the_server_refuses_more_elements_than_announced() {
    let (mut server, mut client, answer) = opened();
    let mut chunks = client_chunks(&mut client, &answer);
    assert_eq!(chunks.len(), 2); // 3 elements in chunks of 2
    let first = chunks.remove(0);
    server.handle(first.clone()).unwrap();
    let Message::Elements(mut e) = first else {
        panic!()
    };
    e.offset = 2;
    // A full chunk of 2 at offset 2 would make 4 > 3 announced.
    let err = server.handle(Message::Elements(e)).unwrap_err();
    assert!(err.to_string().contains("more elements than"), "{err}");
}

#[test]
fn the_client_refuses_bad_hellos_and_outcomes() {
    // An outcome before anything else.
    let mut client = PjcClient::with_rng(sum_client(), pairs(&[("a", 1)]), rng(3)).unwrap();
    client.start().unwrap();
    let err = client
        .handle(Message::Outcome(Outcome {
            intersection_size: 5,
            encrypted_sum: None,
            client_membership: None,
        }))
        .unwrap_err();
    assert!(matches!(err, PsiError::PeerMisbehaved(_)), "{err:?}");

    // A hello for another functionality.
    let (_, _, answer) = opened();
    let Message::ServerHello(mut h) = answer[0].clone() else {
        panic!()
    };
    h.functionality = Functionality::Cardinality;
    let mut client = PjcClient::with_rng(sum_client(), pairs(&[("a", 1)]), rng(4)).unwrap();
    client.start().unwrap();
    assert!(client.handle(Message::ServerHello(h.clone())).is_err());

    // A hello announcing a set above the client's limit.
    let mut cfg = ClientConfig::new(Functionality::Sum);
    cfg.limits.max_peer_set_size = 2;
    let mut client = PjcClient::with_rng(cfg, pairs(&[("a", 1)]), rng(5)).unwrap();
    client.start().unwrap();
    h.functionality = Functionality::Sum;
    let err = client.handle(Message::ServerHello(h)).unwrap_err();
    assert!(err.to_string().contains("accepted: 1 to 2"), "{err}");
}

#[test]
fn an_impossible_outcome_is_refused() {
    let (mut server, mut client, answer) = opened();
    let mut to_server = Vec::new();
    for m in answer {
        to_server.extend(client.handle(m).unwrap());
    }
    let mut outcome = None;
    for m in to_server {
        outcome = server.handle(m).unwrap().pop().or(outcome);
    }
    let Some(Message::Outcome(mut o)) = outcome else {
        panic!("no outcome")
    };
    o.intersection_size = 7; // more than either set
    let err = client.handle(Message::Outcome(o.clone())).unwrap_err();
    assert!(err.to_string().contains("impossible"), "{err}");
}
