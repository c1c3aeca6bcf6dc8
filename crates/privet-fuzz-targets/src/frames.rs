//! Framed protobuf messages (privet-transport frame reassembly): the input is a sequence of frames,
//! each a 2-byte little-endian length and an encoded `Frame`; completed messages are decoded as
//! `NodeMessage` (coordinator side) and `CoordinatorMessage` (node side).

use privet_transport::{Frame, Limits, Reassembler, bytes_to_f32};
use privet_wire::proto::{CoordinatorMessage, NodeMessage};
use prost::Message;

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let limits = Limits {
        max_message_bytes: 1 << 16,
        max_frame_bytes: 1 << 12,
        zstd_level: None,
    };
    let mut to_coordinator = Reassembler::new(limits);
    let mut to_node = Reassembler::new(limits);
    let mut rest = data;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let n = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (frame, tail) = tail.split_at(n);
        rest = tail;
        let Ok(frame) = Frame::decode(frame) else {
            continue;
        };
        if let Ok(Some(msg)) = to_coordinator.push_decode::<NodeMessage>(frame.clone()) {
            // Model updates carry f32 arrays as bytes.
            let _ = bytes_to_f32(&msg.encode_to_vec());
        }
        let _ = to_node.push_decode::<CoordinatorMessage>(frame);
    }
}
