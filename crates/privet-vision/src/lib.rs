//! # privet-vision
//!
//! Anonymization of images and video frames at the edge: faces and licence plates are found,
//! followed over time, and blurred, pixelated, blacked out or removed; moving objects in
//! static-camera video are replaced by an estimated background.
//!
//! - [`detect`]: the [`Detector`] trait and its implementations: [`SeetaFace`] (built in, the
//!   model ships inside the `rustface` crate), [`CascadeDetector`] (OpenCV Haar cascades; the
//!   licence-plate cascade from Debian's `opencv-data` is embedded) and, with the `onnx` feature,
//!   `OnnxDetector` for user-supplied ONNX models (CenterFace, or plain box outputs) run by tract.
//! - [`track`]: temporal persistence, so a face the detector misses for a frame stays covered.
//! - [`mask`]: covering regions ([`Mode`]); [`inpaint`]: Telea's fast-marching inpainting.
//! - [`background`]: a motion-aware median background estimate (after LaBGen) and foreground
//!   masks; [`metrics`]: the SBMnet scores used to evaluate it.
//! - [`video`]: the sans-IO video pipeline; [`imageio`]: JPEG/PNG with size limits;
//!   [`boxes`]: the versioned `--boxes` JSON.
//!
//! Nothing here spawns a process, opens a socket or reads a clock: frames come in as
//! [`image::RgbImage`] and go out the same way (the `privet-media` crate talks to ffmpeg).
//!
//! ```
//! use privet_vision::{AnonymizeConfig, Mode, SeetaFace, SeetaConfig, anonymize_image, ImagePolicy};
//! let mut img = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 150]));
//! let mut detectors: Vec<Box<dyn privet_vision::Detector>> =
//!     vec![Box::new(SeetaFace::new(SeetaConfig::default())?)];
//! let cfg = AnonymizeConfig { mode: Mode::Blur, ..AnonymizeConfig::default() };
//! let found = anonymize_image(&mut img, &mut detectors, &cfg, &ImagePolicy::default())?;
//! assert!(found.is_empty()); // a flat image has no face
//! # Ok::<(), privet_vision::VisionError>(())
//! ```

pub mod background;
pub mod boxes;
pub mod detect;
pub mod error;
pub mod geom;
pub mod imageio;
pub mod inpaint;
pub mod mask;
pub mod metrics;
pub mod reid;
pub mod track;
pub mod video;

use image::RgbImage;

pub use detect::Detector;
pub use detect::cascade::{Cascade, CascadeConfig, CascadeDetector};
#[cfg(feature = "onnx")]
pub use detect::onnx::{OnnxConfig, OnnxDetector, OnnxFormat};
pub use detect::seeta::{SeetaConfig, SeetaFace};
pub use error::{Result, VisionError};
pub use geom::{BBox, Detection, ObjectKind};
pub use mask::{Mode, Region, Shape};

/// How detections become covered regions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnonymizeConfig {
    /// How to cover.
    pub mode: Mode,
    /// Each box's sides are multiplied by this before covering (deface's default is 1.3).
    pub mask_scale: f32,
    /// Shape drawn for faces.
    pub face_shape: Shape,
    /// Shape drawn for plates.
    pub plate_shape: Shape,
}

impl Default for AnonymizeConfig {
    fn default() -> Self {
        AnonymizeConfig {
            mode: Mode::Blur,
            mask_scale: 1.3,
            face_shape: Shape::Ellipse,
            plate_shape: Shape::Rect,
        }
    }
}

impl AnonymizeConfig {
    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        if !(self.mask_scale.is_finite() && (0.5..=4.0).contains(&self.mask_scale)) {
            return Err(VisionError::InvalidConfig(format!(
                "mask scale {} must lie in [0.5, 4]",
                self.mask_scale
            )));
        }
        Ok(())
    }
}

/// The regions to cover for some detections.
pub fn regions_for(dets: &[Detection], cfg: &AnonymizeConfig) -> Vec<Region> {
    dets.iter()
        .map(|d| Region {
            bbox: d.bbox.scaled(cfg.mask_scale),
            shape: match d.kind {
                ObjectKind::Face => cfg.face_shape,
                ObjectKind::Plate => cfg.plate_shape,
            },
        })
        .collect()
}

/// Extra effort for still images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImagePolicy {
    /// Err on the side of covering: also detect on the mirrored image, and on a 2x enlargement of
    /// images under 1000 pixels on their longer side (small faces), and keep every box found.
    pub cautious: bool,
}

/// Detects with every detector and covers what was found, in place. Returns the detections (in
/// `img`'s coordinates, before the mask scale).
pub fn anonymize_image(
    img: &mut RgbImage,
    detectors: &mut [Box<dyn Detector>],
    cfg: &AnonymizeConfig,
    policy: &ImagePolicy,
) -> Result<Vec<Detection>> {
    cfg.check()?;
    let dets = detect_image(img, detectors, policy)?;
    let regions = regions_for(&dets, cfg);
    mask::apply(img, &regions, cfg.mode, None)?;
    Ok(dets)
}

/// The detections of every detector on a still image, with the extra passes of a cautious policy.
pub fn detect_image(
    img: &RgbImage,
    detectors: &mut [Box<dyn Detector>],
    policy: &ImagePolicy,
) -> Result<Vec<Detection>> {
    let mut dets = detect::detect_all(detectors, img)?;
    if policy.cautious {
        let w = img.width() as f32;
        let flipped = image::imageops::flip_horizontal(img);
        for d in detect::detect_all(detectors, &flipped)? {
            dets.push(Detection {
                bbox: BBox::new(w - d.bbox.x1, d.bbox.y0, w - d.bbox.x0, d.bbox.y1),
                ..d
            });
        }
        if img.width().max(img.height()) < 1000 {
            let big = image::imageops::resize(
                img,
                img.width() * 2,
                img.height() * 2,
                image::imageops::FilterType::Triangle,
            );
            for d in detect::detect_all(detectors, &big)? {
                let b = d.bbox;
                dets.push(Detection {
                    bbox: BBox::new(b.x0 / 2.0, b.y0 / 2.0, b.x1 / 2.0, b.y1 / 2.0),
                    ..d
                });
            }
        }
        // Merge near-duplicates into their union (covering more, never less).
        let mut merged: Vec<Detection> = Vec::new();
        for d in dets {
            match merged
                .iter_mut()
                .find(|m| m.kind == d.kind && m.bbox.iou(&d.bbox) > 0.4)
            {
                Some(m) => {
                    m.bbox = m.bbox.union(&d.bbox);
                    m.score = m.score.max(d.score);
                }
                None => merged.push(d),
            }
        }
        dets = merged;
    }
    Ok(dets)
}
