//! The video pipeline, sans I/O: frames go in, anonymized frames come out a few frames later.
//!
//! Each frame is run through the detectors; the [`Tracker`] turns detections into boxes to cover
//! on this frame and on up to `lookback` frames held back, so a face the detector misses on a
//! frame (or on its first frames) is still covered. With a background image (static camera),
//! `Mode::Remove` fills covered regions with the background, and `erase_moving` also replaces
//! everything that differs from the background (moving people and cars).

use std::collections::VecDeque;

use image::RgbImage;

use crate::background::{ForegroundConfig, foreground_mask, replace_masked};
use crate::boxes::{FrameBoxes, Source};
use crate::detect::{Detector, detect_all};
use crate::error::{Result, VisionError};
use crate::track::{Tracker, TrackerConfig};
use crate::{AnonymizeConfig, Mode, regions_for};

/// Settings of the video pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoConfig {
    /// How regions are covered.
    pub anonymize: AnonymizeConfig,
    /// Temporal persistence.
    pub tracker: TrackerConfig,
    /// Frames held back so new tracks can reach backwards (latency in frames).
    pub lookback: u32,
    /// With a background: replace everything that differs from it.
    pub erase_moving: Option<ForegroundConfig>,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            anonymize: AnonymizeConfig::default(),
            tracker: TrackerConfig::default(),
            lookback: 4,
            erase_moving: None,
        }
    }
}

/// An anonymized frame.
#[derive(Debug, Clone)]
pub struct OutFrame {
    /// Its number in the stream (from 0).
    pub index: u64,
    /// The pixels.
    pub image: RgbImage,
    /// What was covered on it.
    pub boxes: FrameBoxes,
}

#[derive(Debug)]
struct Held {
    index: u64,
    image: RgbImage,
    boxes: FrameBoxes,
}

/// The video anonymizer (see the module docs).
#[derive(Debug)]
pub struct VideoAnonymizer {
    cfg: VideoConfig,
    detectors: Vec<Box<dyn Detector>>,
    tracker: Tracker,
    background: Option<RgbImage>,
    held: VecDeque<Held>,
    next: u64,
    size: Option<(u32, u32)>,
}

impl VideoAnonymizer {
    /// A pipeline with these detectors and, for a static camera, its background.
    pub fn new(
        cfg: VideoConfig,
        detectors: Vec<Box<dyn Detector>>,
        background: Option<RgbImage>,
    ) -> Result<VideoAnonymizer> {
        cfg.anonymize.check()?;
        if cfg.lookback > 120 {
            return Err(VisionError::InvalidConfig(
                "lookback must be at most 120 frames".into(),
            ));
        }
        if cfg.erase_moving.is_some() && background.is_none() {
            return Err(VisionError::InvalidConfig(
                "erasing moving objects needs a background".into(),
            ));
        }
        let size = background.as_ref().map(|b| b.dimensions());
        Ok(VideoAnonymizer {
            cfg,
            detectors,
            tracker: Tracker::new(cfg.tracker),
            background,
            held: VecDeque::new(),
            next: 0,
            size,
        })
    }

    /// Feeds the next frame; returns the frames that are ready (in order).
    pub fn push(&mut self, frame: RgbImage) -> Result<Vec<OutFrame>> {
        let (w, h) = frame.dimensions();
        match self.size {
            Some((ew, eh)) if (ew, eh) != (w, h) => {
                return Err(VisionError::FrameSize {
                    got_w: w,
                    got_h: h,
                    want_w: ew,
                    want_h: eh,
                });
            }
            _ => self.size = Some((w, h)),
        }
        let index = self.next;
        self.next += 1;
        let dets = detect_all(&mut self.detectors, &frame)?;
        self.held.push_back(Held {
            index,
            image: frame,
            boxes: FrameBoxes {
                frame: index,
                boxes: Vec::new(),
            },
        });
        for c in self.tracker.update(index, &dets, self.cfg.lookback) {
            if let Some(hf) = self.held.iter_mut().find(|hf| hf.index == c.frame) {
                hf.boxes.boxes.push((
                    c.det,
                    if c.detected {
                        Source::Detected
                    } else {
                        Source::Tracked
                    },
                ));
            }
        }
        let mut out = Vec::new();
        while self.held.len() > self.cfg.lookback as usize {
            if let Some(hf) = self.held.pop_front() {
                out.push(self.render(hf)?);
            }
        }
        Ok(out)
    }

    /// Flushes the frames still held back.
    pub fn finish(mut self) -> Result<Vec<OutFrame>> {
        let mut out = Vec::new();
        while let Some(hf) = self.held.pop_front() {
            out.push(self.render(hf)?);
        }
        Ok(out)
    }

    fn render(&self, hf: Held) -> Result<OutFrame> {
        let mut image = hf.image;
        if let (Some(fg), Some(bg)) = (&self.cfg.erase_moving, &self.background) {
            let mask = foreground_mask(&image, bg, fg)?;
            replace_masked(&mut image, bg, &mask);
        }
        let dets: Vec<_> = hf.boxes.boxes.iter().map(|(d, _)| *d).collect();
        let regions = regions_for(&dets, &self.cfg.anonymize);
        let bg = if self.cfg.anonymize.mode == Mode::Remove {
            self.background.as_ref()
        } else {
            None
        };
        crate::mask::apply(&mut image, &regions, self.cfg.anonymize.mode, bg)?;
        Ok(OutFrame {
            index: hf.index,
            image,
            boxes: hf.boxes,
        })
    }
}
