//! The crate's one error type.

/// Everything that can go wrong in `privet-vision`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VisionError {
    /// An image could not be decoded (malformed, truncated, unsupported format).
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// An image or frame is larger than the configured limits (a decompression bomb is refused).
    #[error(
        "image too large: {width}x{height} exceeds the limit of {max_pixels} pixels or {max_side} per side"
    )]
    TooLarge {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// Largest accepted width x height.
        max_pixels: u64,
        /// Largest accepted side.
        max_side: u64,
    },
    /// An image could not be encoded.
    #[error("cannot encode image: {0}")]
    Encode(String),
    /// A frame's size does not match the stream it belongs to.
    #[error("frame is {got_w}x{got_h}, expected {want_w}x{want_h}")]
    FrameSize {
        /// Width received.
        got_w: u32,
        /// Height received.
        got_h: u32,
        /// Width expected.
        want_w: u32,
        /// Height expected.
        want_h: u32,
    },
    /// A detector model (cascade XML, ONNX file) is malformed or unsupported.
    #[error("bad detector model: {0}")]
    BadModel(String),
    /// The detector failed while running.
    #[error("detector failed: {0}")]
    Detector(String),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    InvalidConfig(String),
    /// A boxes file is malformed.
    #[error("bad boxes file: {0}")]
    BadBoxes(String),
}

/// Results in this crate.
pub type Result<T> = std::result::Result<T, VisionError>;
