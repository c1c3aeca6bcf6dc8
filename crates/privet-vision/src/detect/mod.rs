//! Detectors behind one trait: the built-in SeetaFace face detector, an evaluator for OpenCV's
//! Haar cascades (licence plates), and ONNX models supplied by the user (feature `onnx`).

use image::{GrayImage, RgbImage};

use crate::error::Result;
use crate::geom::{Detection, ObjectKind};

pub mod cascade;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod seeta;

/// Something that finds objects in a frame.
///
/// What it finds must depend on the frame alone, not on the frames it saw before: video runs
/// detection on several threads, each with its own detectors and its own share of the frames
/// ([`detect_in_parallel`](crate::video::detect_in_parallel)); temporal persistence is the
/// tracker's job.
pub trait Detector {
    /// What it finds.
    fn kind(&self) -> ObjectKind;
    /// A short name for reports (`seetaface`, `haar:plate`, `onnx:centerface`).
    fn name(&self) -> String;
    /// The objects in `img` with a score at or above the detector's threshold.
    fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>>;
}

impl std::fmt::Debug for dyn Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Detector({})", self.name())
    }
}

/// BT.601 luma, as OpenCV's and SeetaFace's grey conversion.
pub fn to_gray(img: &RgbImage) -> GrayImage {
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0;
        let v =
            (299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]) + 500) / 1000;
        image::Luma([v as u8])
    })
}

/// Runs several detectors on one frame and concatenates their detections.
pub fn detect_all(detectors: &mut [Box<dyn Detector>], img: &RgbImage) -> Result<Vec<Detection>> {
    let mut out = Vec::new();
    for d in detectors.iter_mut() {
        out.extend(d.detect(img)?);
    }
    Ok(out)
}
