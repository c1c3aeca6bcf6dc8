//! Logical messages cut into frames and put back together, with size limits and optional zstd.
//!
//! gRPC messages are capped (4 MiB by default), models are not. Every logical message is
//! protobuf-encoded, optionally compressed, and cut into [`Frame`]s of at most
//! [`Limits::max_frame_bytes`]. The [`Reassembler`] accepts the frames of one message at a time,
//! in order, and refuses a message whose size would pass [`Limits::max_message_bytes`] before
//! buffering it; decompression is bounded by the same limit.

use bytes::Bytes;
use prost::Message;

/// One piece of a logical message on a stream (`privet.v1.Frame` in the `.proto` files, which
/// refer to this type).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Frame {
    /// Number of the logical message on this stream, from 0, consecutive.
    #[prost(uint64, tag = "1")]
    pub message_id: u64,
    /// Whether this is the message's last frame.
    #[prost(bool, tag = "2")]
    pub last: bool,
    /// Whether the message is zstd-compressed (the same for all its frames).
    #[prost(bool, tag = "3")]
    pub zstd: bool,
    /// The piece.
    #[prost(bytes = "bytes", tag = "4")]
    pub data: Bytes,
}

use crate::TransportError;

/// Size limits and compression of one side of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest logical message accepted (after decompression).
    pub max_message_bytes: usize,
    /// Largest frame payload sent; frames received may be up to the gRPC decoding limit.
    pub max_frame_bytes: usize,
    /// Compress messages with zstd before framing (only kept when it saves space).
    pub zstd_level: Option<i32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1 << 30,
            max_frame_bytes: 1 << 20,
            zstd_level: None,
        }
    }
}

impl Limits {
    /// The gRPC decoding limit that fits one frame.
    pub fn grpc_message_limit(&self) -> usize {
        self.max_frame_bytes + 4096
    }
}

/// A logical message, encoded and cut into pieces, ready to be framed for any stream (the pieces
/// are shared, not copied, when the same message goes to many peers).
#[derive(Clone, Debug)]
pub struct Encoded {
    pieces: Vec<Bytes>,
    zstd: bool,
    /// Encoded size before compression.
    pub raw_len: usize,
}

impl Encoded {
    /// Encodes `msg` under `limits`.
    pub fn new(msg: &impl Message, limits: &Limits) -> Result<Encoded, TransportError> {
        let raw = msg.encode_to_vec();
        let raw_len = raw.len();
        if raw_len > limits.max_message_bytes {
            return Err(TransportError::Frame(format!(
                "message of {raw_len} bytes exceeds the {}-byte limit",
                limits.max_message_bytes
            )));
        }
        let (bytes, zstd) = match limits.zstd_level {
            Some(level) => {
                let packed = zstd::bulk::compress(&raw, level)
                    .map_err(|e| TransportError::Frame(format!("zstd: {e}")))?;
                if packed.len() < raw.len() {
                    (Bytes::from(packed), true)
                } else {
                    (Bytes::from(raw), false)
                }
            }
            None => (Bytes::from(raw), false),
        };
        let step = limits.max_frame_bytes.max(1);
        let mut pieces = Vec::with_capacity(bytes.len() / step + 1);
        let mut at = 0;
        loop {
            let end = (at + step).min(bytes.len());
            pieces.push(bytes.slice(at..end));
            at = end;
            if at >= bytes.len() {
                break;
            }
        }
        Ok(Encoded {
            pieces,
            zstd,
            raw_len,
        })
    }

    /// Bytes on the wire (after compression), frame headers excluded.
    pub fn wire_len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// The frames of this message as message number `message_id` of a stream.
    pub fn frames(&self, message_id: u64) -> impl Iterator<Item = Frame> + '_ {
        let last = self.pieces.len() - 1;
        self.pieces.iter().enumerate().map(move |(i, data)| Frame {
            message_id,
            last: i == last,
            zstd: self.zstd,
            data: data.clone(),
        })
    }
}

/// Puts the frames of one stream back into messages.
#[derive(Debug)]
pub struct Reassembler {
    limits: Limits,
    next_id: u64,
    buf: Vec<u8>,
    zstd: Option<bool>,
}

impl Reassembler {
    /// A reassembler for a new stream.
    pub fn new(limits: Limits) -> Self {
        Reassembler {
            limits,
            next_id: 0,
            buf: Vec::new(),
            zstd: None,
        }
    }

    /// Takes the next frame; returns the message's bytes when `frame` was its last.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Vec<u8>>, TransportError> {
        if frame.message_id != self.next_id {
            return Err(TransportError::Frame(format!(
                "frame of message {} while message {} is expected",
                frame.message_id, self.next_id
            )));
        }
        if *self.zstd.get_or_insert(frame.zstd) != frame.zstd {
            return Err(TransportError::Frame(
                "frames of one message disagree on compression".into(),
            ));
        }
        if self.buf.len() + frame.data.len() > self.limits.max_message_bytes {
            return Err(TransportError::Frame(format!(
                "message exceeds the {}-byte limit",
                self.limits.max_message_bytes
            )));
        }
        self.buf.extend_from_slice(&frame.data);
        if !frame.last {
            return Ok(None);
        }
        self.next_id += 1;
        let compressed = self.zstd.take() == Some(true);
        let bytes = std::mem::take(&mut self.buf);
        if compressed {
            let raw =
                zstd::bulk::decompress(&bytes, self.limits.max_message_bytes).map_err(|e| {
                    TransportError::Frame(format!(
                        "zstd message does not decompress within the {}-byte limit: {e}",
                        self.limits.max_message_bytes
                    ))
                })?;
            Ok(Some(raw))
        } else {
            Ok(Some(bytes))
        }
    }

    /// Takes the next frame and decodes the completed message as `M`.
    pub fn push_decode<M: Message + Default>(
        &mut self,
        frame: Frame,
    ) -> Result<Option<M>, TransportError> {
        match self.push(frame)? {
            None => Ok(None),
            Some(bytes) => M::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| TransportError::Frame(format!("undecodable message: {e}"))),
        }
    }
}

/// `f32`s as little-endian bytes.
pub fn f32_to_bytes(values: &[f32]) -> Bytes {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Bytes::from(out)
}

/// Little-endian bytes as `f32`s; the length must be a multiple of 4.
pub fn bytes_to_f32(bytes: &[u8]) -> Result<Vec<f32>, TransportError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(TransportError::Frame(format!(
            "an f32 array of {} bytes (not a multiple of 4)",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A stand-in for a service's message: a name and a vector.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Update {
        #[prost(string, tag = "1")]
        job_id: String,
        #[prost(bytes = "bytes", tag = "2")]
        delta: Bytes,
    }

    fn update(len: usize) -> Update {
        Update {
            job_id: "j".into(),
            delta: f32_to_bytes(&vec![0.25; len]),
        }
    }

    fn roundtrip(msg: &Update, limits: Limits) -> Result<Update, TransportError> {
        let encoded = Encoded::new(msg, &limits)?;
        let mut r = Reassembler::new(limits);
        let mut out = None;
        for frame in encoded.frames(0) {
            assert!(frame.data.len() <= limits.max_frame_bytes);
            out = r.push_decode::<Update>(frame)?;
        }
        Ok(out.unwrap())
    }

    #[test]
    fn messages_survive_framing_with_and_without_zstd() {
        let msg = update(100_000);
        let small = Limits {
            max_frame_bytes: 4096,
            ..Limits::default()
        };
        assert_eq!(roundtrip(&msg, small).unwrap(), msg);
        let packed = Limits {
            zstd_level: Some(3),
            ..small
        };
        assert_eq!(roundtrip(&msg, packed).unwrap(), msg);
        let encoded = Encoded::new(&msg, &packed).unwrap();
        assert!(
            encoded.wire_len() < encoded.raw_len / 10,
            "a constant vector compresses"
        );
    }

    #[test]
    fn oversized_messages_are_refused_on_both_sides() {
        let msg = update(10_000);
        let tight = Limits {
            max_message_bytes: 1000,
            max_frame_bytes: 256,
            zstd_level: None,
        };
        assert!(Encoded::new(&msg, &tight).is_err());
        // A sender with a looser limit: the receiver stops at its own limit.
        let frames: Vec<Frame> = Encoded::new(&msg, &Limits::default())
            .unwrap()
            .frames(0)
            .collect();
        let mut r = Reassembler::new(tight);
        let err = frames
            .into_iter()
            .map(|f| r.push(f))
            .find_map(Result::err)
            .unwrap();
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn a_zstd_bomb_is_refused() {
        let msg = update(1_000_000);
        let sender = Limits {
            zstd_level: Some(3),
            ..Limits::default()
        };
        let frames: Vec<Frame> = Encoded::new(&msg, &sender).unwrap().frames(0).collect();
        let receiver = Limits {
            max_message_bytes: 100_000,
            ..Limits::default()
        };
        let mut r = Reassembler::new(receiver);
        let results: Vec<_> = frames.into_iter().map(|f| r.push(f)).collect();
        assert!(results.last().unwrap().is_err());
    }

    #[test]
    fn out_of_order_and_garbage_frames_are_errors() {
        let mut r = Reassembler::new(Limits::default());
        let frame = Frame {
            message_id: 5,
            last: true,
            zstd: false,
            data: Bytes::from_static(b"x"),
        };
        assert!(r.push(frame).is_err());
        let mut r = Reassembler::new(Limits::default());
        let garbage = Frame {
            message_id: 0,
            last: true,
            zstd: false,
            data: Bytes::from_static(&[0xff, 0xff, 0xff]),
        };
        assert!(r.push_decode::<Update>(garbage).is_err());
        let mut r = Reassembler::new(Limits::default());
        let bad_zstd = Frame {
            message_id: 0,
            last: true,
            zstd: true,
            data: Bytes::from_static(b"not zstd"),
        };
        assert!(r.push(bad_zstd).is_err());
        assert!(bytes_to_f32(&[1, 2, 3]).is_err());
    }
}
