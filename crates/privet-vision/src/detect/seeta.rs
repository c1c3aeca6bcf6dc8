//! The built-in face detector: SeetaFace's funnel-structured cascade (frontal model v1.0) through
//! the `rustface` crate. The model (1.2 MB, BSD-2-Clause, from the SeetaFace Detection project of
//! the VIPL group, ICT, CAS) ships inside the `rustface` crate and is embedded into this crate at
//! build time, so nothing is downloaded or read at run time.

use image::RgbImage;

use super::{Detector, to_gray};
use crate::error::{Result, VisionError};
use crate::geom::{BBox, Detection, ObjectKind};

static MODEL: &[u8] = include_bytes!(env!("PRIVET_SEETA_MODEL_PATH"));

/// Settings of the SeetaFace detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeetaConfig {
    /// Smallest face side in pixels (at least 20).
    pub min_face: u32,
    /// Score threshold on SeetaFace's scale (2.0 is the library's example; lower finds more).
    pub threshold: f64,
    /// Ratio between pyramid levels (0.8 in the library's example; closer to 1 finds more, slower).
    pub pyramid_scale: f32,
    /// Sliding-window step in pixels.
    pub step: u32,
}

impl Default for SeetaConfig {
    fn default() -> Self {
        SeetaConfig {
            min_face: 20,
            threshold: 2.0,
            pyramid_scale: 0.8,
            step: 4,
        }
    }
}

/// SeetaFace frontal face detection.
pub struct SeetaFace {
    inner: Box<dyn rustface::Detector>,
    cfg: SeetaConfig,
}

impl std::fmt::Debug for SeetaFace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeetaFace").field("cfg", &self.cfg).finish()
    }
}

impl SeetaFace {
    /// The detector with the embedded model.
    pub fn new(cfg: SeetaConfig) -> Result<SeetaFace> {
        if cfg.min_face < 20 {
            return Err(VisionError::InvalidConfig(
                "SeetaFace: min_face must be at least 20".into(),
            ));
        }
        if !(cfg.threshold.is_finite() && cfg.threshold > 0.0) {
            return Err(VisionError::InvalidConfig(
                "SeetaFace: threshold must be positive".into(),
            ));
        }
        if !(cfg.pyramid_scale > 0.1 && cfg.pyramid_scale < 0.99) {
            return Err(VisionError::InvalidConfig(
                "SeetaFace: pyramid scale must lie in (0.1, 0.99)".into(),
            ));
        }
        if cfg.step == 0 {
            return Err(VisionError::InvalidConfig(
                "SeetaFace: step must be positive".into(),
            ));
        }
        let model = rustface::read_model(MODEL)
            .map_err(|e| VisionError::BadModel(format!("embedded SeetaFace model: {e}")))?;
        let mut inner = rustface::create_detector_with_model(model);
        inner.set_min_face_size(cfg.min_face);
        inner.set_score_thresh(cfg.threshold);
        inner.set_pyramid_scale_factor(cfg.pyramid_scale);
        inner.set_slide_window_step(cfg.step, cfg.step);
        Ok(SeetaFace { inner, cfg })
    }
}

impl Detector for SeetaFace {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Face
    }

    fn name(&self) -> String {
        "seetaface".into()
    }

    fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
        // rustface panics on images smaller than its window.
        if img.width() < self.cfg.min_face || img.height() < self.cfg.min_face {
            return Ok(Vec::new());
        }
        let gray = to_gray(img);
        let data = rustface::ImageData::new(gray.as_raw(), img.width(), img.height());
        let faces = self.inner.detect(&data);
        Ok(faces
            .iter()
            .map(|f| {
                let b = f.bbox();
                Detection {
                    bbox: BBox::from_xywh(
                        b.x() as f32,
                        b.y() as f32,
                        b.width() as f32,
                        b.height() as f32,
                    ),
                    score: f.score() as f32,
                    kind: ObjectKind::Face,
                }
            })
            .collect())
    }
}
