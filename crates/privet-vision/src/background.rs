//! Background estimation for static cameras, and erasing what moves.
//!
//! [`MotionAwareMedian`] follows the idea of LaBGen (Laugraud, Piérard, Van Droogenbroeck 2017):
//! a pixel's background value is chosen only among the moments when that pixel is *not in motion*,
//! so a plain per-pixel temporal median's failure (the background visible less than half of the
//! time) turns into a much weaker requirement: the background must be the majority among the
//! static moments only. Motion at a pixel is the frame difference to the previous and next frames,
//! averaged over a window (LaBGen's patch), so the uniform inside of a moving object counts as
//! moving too. Frames are kept at a stride with bounded memory (when the store is full, every other
//! frame is dropped and the stride doubles), and the estimate is the per-channel median of the
//! static samples (the least-moving samples where no sample is static).
//!
//! [`TemporalMedian`] is the plain per-pixel median, kept as the baseline.

use image::RgbImage;

use crate::error::{Result, VisionError};

/// Settings of [`MotionAwareMedian`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackgroundConfig {
    /// Most frames kept (memory is this many frames plus one motion byte per pixel each).
    pub max_frames: usize,
    /// Half-size of the motion window in pixels (0: derived from the frame size, 1/320 of the
    /// larger side, at least 1; larger windows did worse on bench/vision's scenes).
    pub window: u32,
    /// A sample is static where its windowed mean absolute grey difference is at most this.
    pub static_threshold: u8,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        BackgroundConfig {
            max_frames: 96,
            window: 0,
            static_threshold: 6,
        }
    }
}

fn gray(img: &RgbImage) -> Vec<u8> {
    img.pixels()
        .map(|p| {
            ((299 * u32::from(p.0[0]) + 587 * u32::from(p.0[1]) + 114 * u32::from(p.0[2]) + 500)
                / 1000) as u8
        })
        .collect()
}

/// Mean of `v` over a (2r+1)^2 window, edges clamped, via an integral image.
fn box_mean(v: &[u16], w: usize, h: usize, r: usize) -> Vec<u8> {
    let s = w + 1;
    let mut ii = vec![0u32; s * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += u32::from(v[y * w + x]);
            ii[(y + 1) * s + x + 1] = ii[y * s + x + 1] + row;
        }
    }
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let sum = ii[y1 * s + x1] + ii[y0 * s + x0] - ii[y0 * s + x1] - ii[y1 * s + x0];
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            out[y * w + x] = (sum / n).min(255) as u8;
        }
    }
    out
}

/// The motion-aware background estimator (see the module docs).
#[derive(Debug)]
pub struct MotionAwareMedian {
    cfg: BackgroundConfig,
    w: u32,
    h: u32,
    /// Kept samples: frame and its motion map.
    samples: Vec<(RgbImage, Vec<u8>)>,
    stride: u64,
    seen: u64,
    prev_gray: Option<Vec<u8>>,
    /// The frame waiting for its next neighbour: (index, image, grey, difference to previous).
    pending: Option<(u64, RgbImage, Vec<u8>, Vec<u16>)>,
}

impl MotionAwareMedian {
    /// An empty estimator for `w` x `h` frames.
    pub fn new(w: u32, h: u32, cfg: BackgroundConfig) -> Result<MotionAwareMedian> {
        if w == 0 || h == 0 {
            return Err(VisionError::InvalidConfig(
                "frame size must be positive".into(),
            ));
        }
        if cfg.max_frames < 2 {
            return Err(VisionError::InvalidConfig(
                "background: max_frames must be at least 2".into(),
            ));
        }
        Ok(MotionAwareMedian {
            cfg,
            w,
            h,
            samples: Vec::new(),
            stride: 1,
            seen: 0,
            prev_gray: None,
            pending: None,
        })
    }

    fn window(&self) -> usize {
        if self.cfg.window > 0 {
            self.cfg.window as usize
        } else {
            (self.w.max(self.h) as usize / 320).max(1)
        }
    }

    /// Feeds the next frame.
    pub fn push(&mut self, frame: &RgbImage) -> Result<()> {
        if frame.dimensions() != (self.w, self.h) {
            return Err(VisionError::FrameSize {
                got_w: frame.width(),
                got_h: frame.height(),
                want_w: self.w,
                want_h: self.h,
            });
        }
        let g = gray(frame);
        let diff_prev: Vec<u16> = match &self.prev_gray {
            Some(p) => p
                .iter()
                .zip(&g)
                .map(|(&a, &b)| u16::from(a.abs_diff(b)))
                .collect(),
            None => vec![0; g.len()],
        };
        // The pending frame now has both neighbours.
        if let Some((idx, img, _, dprev)) = self.pending.take() {
            let has_prev = idx > 0;
            let motion: Vec<u16> = dprev
                .iter()
                .zip(&diff_prev)
                .map(|(&a, &b)| if has_prev { a.max(b) } else { b })
                .collect();
            self.keep(idx, img, motion);
        }
        let idx = self.seen;
        self.seen += 1;
        if idx.is_multiple_of(self.stride) {
            self.pending = Some((idx, frame.clone(), g.clone(), diff_prev));
        }
        self.prev_gray = Some(g);
        Ok(())
    }

    fn keep(&mut self, idx: u64, img: RgbImage, motion: Vec<u16>) {
        if !idx.is_multiple_of(self.stride) {
            return;
        }
        let m = box_mean(&motion, self.w as usize, self.h as usize, self.window());
        self.samples.push((img, m));
        if self.samples.len() >= self.cfg.max_frames {
            // Keep every other sample and double the stride.
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
        }
    }

    /// Number of samples kept so far.
    pub fn samples(&self) -> usize {
        self.samples.len() + usize::from(self.pending.is_some())
    }

    /// The background estimate. Needs at least one frame.
    pub fn finish(mut self) -> Result<RgbImage> {
        if let Some((idx, img, _, dprev)) = self.pending.take() {
            let motion = if idx > 0 {
                dprev
            } else {
                vec![0; img.len() / 3]
            };
            self.stride = 1;
            self.keep(0, img, motion);
        }
        if self.samples.is_empty() {
            return Err(VisionError::InvalidConfig("background: no frames".into()));
        }
        let thr = self.cfg.static_threshold;
        let (w, h) = (self.w as usize, self.h as usize);
        let mut out = RgbImage::new(self.w, self.h);
        let mut vals: [Vec<u8>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for i in 0..w * h {
            for v in vals.iter_mut() {
                v.clear();
            }
            let min_motion = self.samples.iter().map(|(_, m)| m[i]).min().unwrap_or(0);
            // Static samples; where there are none, those as still as the stillest (plus a margin).
            let limit = if min_motion <= thr {
                thr
            } else {
                min_motion.saturating_add(thr)
            };
            for (img, m) in &self.samples {
                if m[i] <= limit {
                    let p = &img.as_raw()[i * 3..i * 3 + 3];
                    for c in 0..3 {
                        vals[c].push(p[c]);
                    }
                }
            }
            let mut px = [0u8; 3];
            for c in 0..3 {
                let v = &mut vals[c];
                let mid = v.len() / 2;
                px[c] = *v.select_nth_unstable(mid).1;
            }
            out.put_pixel((i % w) as u32, (i / w) as u32, image::Rgb(px));
        }
        let _ = h;
        Ok(out)
    }
}

/// The plain per-pixel temporal median (the baseline that fails where the background is visible
/// less than half of the time). Keeps at most `max_frames` frames at a doubling stride.
#[derive(Debug)]
pub struct TemporalMedian {
    frames: Vec<RgbImage>,
    max_frames: usize,
    stride: u64,
    seen: u64,
}

impl TemporalMedian {
    /// An empty estimator.
    pub fn new(max_frames: usize) -> TemporalMedian {
        TemporalMedian {
            frames: Vec::new(),
            max_frames: max_frames.max(2),
            stride: 1,
            seen: 0,
        }
    }

    /// Feeds the next frame.
    pub fn push(&mut self, frame: &RgbImage) -> Result<()> {
        if let Some(f) = self.frames.first()
            && f.dimensions() != frame.dimensions()
        {
            return Err(VisionError::FrameSize {
                got_w: frame.width(),
                got_h: frame.height(),
                want_w: f.width(),
                want_h: f.height(),
            });
        }
        if self.seen.is_multiple_of(self.stride) {
            self.frames.push(frame.clone());
            if self.frames.len() >= self.max_frames {
                let mut i = 0;
                self.frames.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
        Ok(())
    }

    /// The median image.
    pub fn finish(self) -> Result<RgbImage> {
        let first = self
            .frames
            .first()
            .ok_or_else(|| VisionError::InvalidConfig("background: no frames".into()))?;
        let (w, h) = first.dimensions();
        let mut out = RgbImage::new(w, h);
        let mut v = Vec::with_capacity(self.frames.len());
        for (i, px) in out.as_mut().iter_mut().enumerate() {
            v.clear();
            v.extend(self.frames.iter().map(|f| f.as_raw()[i]));
            let mid = v.len() / 2;
            *px = *v.select_nth_unstable(mid).1;
        }
        Ok(out)
    }
}

/// Settings for finding what differs from the background.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForegroundConfig {
    /// A pixel is foreground where some channel differs from the background by more than this.
    pub threshold: u8,
    /// Pixels added around the foreground (covers blurred edges and shadows).
    pub dilate: u32,
    /// Fraction of a (2*dilate+1)^2 window that must be foreground before dilation (removes
    /// isolated noise pixels).
    pub min_fill: f32,
}

impl Default for ForegroundConfig {
    fn default() -> Self {
        ForegroundConfig {
            threshold: 30,
            dilate: 4,
            min_fill: 0.15,
        }
    }
}

/// A 0/1 mask of the pixels where `frame` differs from `background`.
pub fn foreground_mask(
    frame: &RgbImage,
    background: &RgbImage,
    cfg: &ForegroundConfig,
) -> Result<Vec<u8>> {
    if frame.dimensions() != background.dimensions() {
        return Err(VisionError::FrameSize {
            got_w: frame.width(),
            got_h: frame.height(),
            want_w: background.width(),
            want_h: background.height(),
        });
    }
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let raw: Vec<u16> = frame
        .pixels()
        .zip(background.pixels())
        .map(|(a, b)| {
            let d = (0..3).map(|c| a.0[c].abs_diff(b.0[c])).max().unwrap_or(0);
            if d > cfg.threshold { 255 } else { 0 }
        })
        .collect();
    let r = cfg.dilate as usize;
    if r == 0 {
        return Ok(raw.iter().map(|&v| u8::from(v > 0)).collect());
    }
    // Denoise: keep pixels whose neighbourhood is at least min_fill foreground, then dilate.
    let fill = box_mean(&raw, w, h, r);
    let cut = (cfg.min_fill.clamp(0.0, 1.0) * 255.0) as u8;
    let core: Vec<u8> = raw
        .iter()
        .zip(&fill)
        .map(|(&v, &f)| u8::from(v > 0 && f >= cut))
        .collect();
    Ok(crate::inpaint::dilate(
        &core, w as u32, h as u32, cfg.dilate,
    ))
}

/// Replaces the pixels of `frame` where `mask` is set by the background's.
pub fn replace_masked(frame: &mut RgbImage, background: &RgbImage, mask: &[u8]) {
    let bg = background.as_raw();
    for (i, px) in frame.as_mut().chunks_exact_mut(3).enumerate() {
        if mask.get(i).copied().unwrap_or(0) != 0 {
            px.copy_from_slice(&bg[i * 3..i * 3 + 3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured background with a block that crosses it slowly and covers the middle column
    /// 70% of the time.
    fn scene(t: u32, n: u32) -> (RgbImage, RgbImage) {
        let bg = RgbImage::from_fn(40, 20, |x, y| {
            image::Rgb([(x * 5) as u8, (y * 9) as u8, 120])
        });
        let mut f = bg.clone();
        // Block 28 px wide moving 1 px/frame from x=-8 over n frames.
        let x0 = t as i32 - 8;
        for y in 4..16 {
            for x in x0.max(0)..(x0 + 28).min(40) {
                // Textured, so its inside moves too (a uniform block's inside shows no motion).
                let u = (x - x0) as u32;
                f.put_pixel(
                    x as u32,
                    y,
                    image::Rgb([200 + (u * 37 % 50) as u8, (u * 53 % 200) as u8, 40]),
                );
            }
        }
        let _ = n;
        (bg, f)
    }

    #[test]
    fn motion_aware_median_beats_the_plain_median_where_the_background_is_mostly_hidden() {
        let n = 40;
        let mut ma = MotionAwareMedian::new(
            40,
            20,
            BackgroundConfig {
                window: 1,
                ..Default::default()
            },
        )
        .unwrap();
        let mut tm = TemporalMedian::new(100);
        let mut truth = None;
        for t in 0..n {
            let (bg, f) = scene(t, n);
            ma.push(&f).unwrap();
            tm.push(&f).unwrap();
            truth = Some(bg);
        }
        let truth = truth.unwrap();
        let err = |img: &RgbImage| {
            img.pixels()
                .zip(truth.pixels())
                .filter(|(a, b)| (0..3).any(|c| a.0[c].abs_diff(b.0[c]) > 20))
                .count()
        };
        let (e_ma, e_tm) = (err(&ma.finish().unwrap()), err(&tm.finish().unwrap()));
        assert!(
            e_tm > 100,
            "the plain median should fail here ({e_tm} bad pixels)"
        );
        assert!(e_ma * 4 < e_tm, "motion-aware {e_ma} vs median {e_tm}");
    }

    #[test]
    fn frames_of_another_size_are_refused() {
        let mut ma = MotionAwareMedian::new(4, 4, BackgroundConfig::default()).unwrap();
        assert!(ma.push(&RgbImage::new(5, 4)).is_err());
        assert!(
            MotionAwareMedian::new(4, 4, BackgroundConfig::default())
                .unwrap()
                .finish()
                .is_err()
        );
    }

    #[test]
    fn foreground_mask_finds_the_object_and_ignores_noise() {
        let bg = RgbImage::from_pixel(30, 30, image::Rgb([100, 100, 100]));
        let mut f = bg.clone();
        for y in 10..20 {
            for x in 10..20 {
                f.put_pixel(x, y, image::Rgb([200, 50, 50]));
            }
        }
        f.put_pixel(2, 2, image::Rgb([255, 255, 255])); // an isolated noise pixel
        let m = foreground_mask(
            &f,
            &bg,
            &ForegroundConfig {
                dilate: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(m[15 * 30 + 15], 1);
        assert_eq!(m[2 * 30 + 2], 0);
        replace_masked(&mut f, &bg, &m);
        f.put_pixel(2, 2, image::Rgb([100, 100, 100]));
        assert_eq!(f, bg);
    }
}
