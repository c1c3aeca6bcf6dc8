//! The `--boxes` file: what was detected and covered, as versioned JSON.
//!
//! ```json
//! {"format": "privet-boxes", "version": 1, "width": 640, "height": 480,
//!  "frames": [{"frame": 0, "boxes": [{"kind": "face", "x0": 1.0, "y0": 2.0, "x1": 30.0, "y1": 40.0,
//!              "score": 0.93, "source": "detected"}]}]}
//! ```
//! `source` is `detected` (the detector found it on this frame) or `tracked` (carried by the
//! tracker across a miss, or reaching back to an earlier frame).

use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};
use crate::geom::{BBox, Detection, ObjectKind};

/// The format name in every boxes file.
pub const FORMAT: &str = "privet-boxes";
/// The version written and the only one read.
pub const VERSION: u32 = 1;
/// Largest boxes file read.
pub const MAX_BYTES: usize = 256 << 20;

/// Where a covered box came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Found by a detector on this frame.
    Detected,
    /// Carried by the tracker.
    Tracked,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBox {
    kind: String,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    score: f32,
    source: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFrame {
    frame: u64,
    boxes: Vec<WireBox>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFile {
    format: String,
    version: u32,
    width: u32,
    height: u32,
    frames: Vec<WireFrame>,
}

/// The boxes of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameBoxes {
    /// Frame number (0 for a still image).
    pub frame: u64,
    /// The boxes covered, each with its origin.
    pub boxes: Vec<(Detection, Source)>,
}

/// A whole boxes file.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxesFile {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames in order.
    pub frames: Vec<FrameBoxes>,
}

impl BoxesFile {
    /// Serializes as JSON.
    pub fn to_json(&self) -> String {
        let wire = WireFile {
            format: FORMAT.into(),
            version: VERSION,
            width: self.width,
            height: self.height,
            frames: self
                .frames
                .iter()
                .map(|f| WireFrame {
                    frame: f.frame,
                    boxes: f
                        .boxes
                        .iter()
                        .map(|(d, s)| WireBox {
                            kind: d.kind.name().into(),
                            x0: d.bbox.x0,
                            y0: d.bbox.y0,
                            x1: d.bbox.x1,
                            y1: d.bbox.y1,
                            score: if d.score.is_finite() { d.score } else { 0.0 },
                            source: match s {
                                Source::Detected => "detected",
                                Source::Tracked => "tracked",
                            }
                            .into(),
                        })
                        .collect(),
                })
                .collect(),
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses and checks a boxes file.
    pub fn from_json(text: &str) -> Result<BoxesFile> {
        if text.len() > MAX_BYTES {
            return Err(VisionError::BadBoxes(format!(
                "larger than {MAX_BYTES} bytes"
            )));
        }
        let w: WireFile =
            serde_json::from_str(text).map_err(|e| VisionError::BadBoxes(e.to_string()))?;
        if w.format != FORMAT {
            return Err(VisionError::BadBoxes(format!(
                "format is {:?}, expected {FORMAT:?}",
                w.format
            )));
        }
        if w.version != VERSION {
            return Err(VisionError::BadBoxes(format!(
                "version {} is not supported (expected {VERSION})",
                w.version
            )));
        }
        let mut frames = Vec::with_capacity(w.frames.len());
        for f in w.frames {
            let mut boxes = Vec::with_capacity(f.boxes.len());
            for b in f.boxes {
                let kind = ObjectKind::parse(&b.kind)
                    .ok_or_else(|| VisionError::BadBoxes(format!("unknown kind {:?}", b.kind)))?;
                let source = match b.source.as_str() {
                    "detected" => Source::Detected,
                    "tracked" => Source::Tracked,
                    s => return Err(VisionError::BadBoxes(format!("unknown source {s:?}"))),
                };
                if ![b.x0, b.y0, b.x1, b.y1, b.score]
                    .iter()
                    .all(|v| v.is_finite())
                    || b.x1 < b.x0
                    || b.y1 < b.y0
                {
                    return Err(VisionError::BadBoxes(format!(
                        "bad box in frame {}",
                        f.frame
                    )));
                }
                boxes.push((
                    Detection {
                        bbox: BBox::new(b.x0, b.y0, b.x1, b.y1),
                        score: b.score,
                        kind,
                    },
                    source,
                ));
            }
            frames.push(FrameBoxes {
                frame: f.frame,
                boxes,
            });
        }
        Ok(BoxesFile {
            width: w.width,
            height: w.height,
            frames,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let d = Detection {
            bbox: BBox::new(1.0, 2.0, 3.0, 4.0),
            score: 0.5,
            kind: ObjectKind::Plate,
        };
        let f = BoxesFile {
            width: 10,
            height: 20,
            frames: vec![FrameBoxes {
                frame: 3,
                boxes: vec![(d, Source::Tracked)],
            }],
        };
        let j = f.to_json();
        assert_eq!(BoxesFile::from_json(&j).unwrap(), f);
        assert!(BoxesFile::from_json(&j.replace("\"version\":1", "\"version\":2")).is_err());
        assert!(BoxesFile::from_json(&j.replace("plate", "car")).is_err());
        assert!(BoxesFile::from_json(&j.replace("\"x1\":3.0", "\"x1\":-3.0")).is_err());
        assert!(BoxesFile::from_json("{").is_err());
    }
}
