//! The protocol's messages as typed values (their encoding is in [`crate::wire`]).

use bytes::Bytes;

use crate::dp::{DpConfig, ValueBounds};
use crate::input::CaseRule;

/// What the session computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Functionality {
    /// The intersection size.
    Cardinality,
    /// The intersection size and the sum of the client's values over the intersection.
    Sum,
}

/// Client to server: opens a session.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientHello {
    /// 32 random bytes.
    pub nonce: [u8; 32],
    /// What the client asks for.
    pub functionality: Functionality,
    /// Distinct identifiers the client holds.
    pub set_size: u64,
    /// The client's ElGamal public key (with [`Functionality::Sum`]).
    pub public_key: Option<[u8; 32]>,
    /// The client asks to learn which of its identifiers are in the intersection.
    pub request_intersection: bool,
    /// The client lets the server learn which of its identifiers are in the intersection.
    pub offer_intersection: bool,
    /// Largest chunk the client accepts.
    pub max_chunk_elements: u32,
    /// The client's identifier case rule (must equal the server's).
    pub case_rule: CaseRule,
}

/// Server to client: accepts the session and states its terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerHello {
    /// 32 random bytes.
    pub nonce: [u8; 32],
    /// Distinct identifiers the server holds.
    pub set_size: u64,
    /// Echo of the client's functionality.
    pub functionality: Functionality,
    /// Bounds the client clamps each value to.
    pub bounds: Option<ValueBounds>,
    /// Noise the server will add to the outcome.
    pub noise: Option<DpConfig>,
    /// The client will learn the intersection.
    pub reveal_to_client: bool,
    /// The server will learn the intersection.
    pub reveal_to_server: bool,
    /// Elements per chunk in both directions.
    pub chunk_elements: u32,
}

/// Which list a chunk belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementKind {
    /// Server to client: `H(x)^a`, sorted.
    ServerBlinded,
    /// Client to server: `H(y)^b` (+ ciphertexts), sorted.
    ClientBlinded,
    /// Client to server: tags of `H(x)^ab`.
    ServerTags,
}

/// One chunk of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elements {
    /// The list.
    pub kind: ElementKind,
    /// Index of the first element.
    pub offset: u64,
    /// Compressed points (32 bytes each).
    pub points: Bytes,
    /// Ciphertexts (64 bytes each).
    pub ciphertexts: Bytes,
    /// Tags (`tag_len` bytes each).
    pub tags: Bytes,
}

/// Server to client: the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Intersection size plus noise.
    pub intersection_size: i64,
    /// Encryption of sum plus noise, re-randomised.
    pub encrypted_sum: Option<[u8; 64]>,
    /// One bit per client element (in the order sent) when revealed to the client.
    pub client_membership: Option<Bytes>,
}

/// Any protocol message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// Opens the session.
    ClientHello(ClientHello),
    /// Accepts it.
    ServerHello(ServerHello),
    /// A chunk of a list.
    Elements(Elements),
    /// The result.
    Outcome(Outcome),
    /// The sender gives up, with a fixed reason.
    Abort(String),
}
