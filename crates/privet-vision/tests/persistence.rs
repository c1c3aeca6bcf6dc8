//! No frame slips: a clip where the detector misses single frames (and the first frames of a
//! face), run through the video pipeline; every frame's face must be covered.
//!
//! The clip: the astronaut's head (public domain) moving across the brick wall (CC0), 36 frames.
//! The detector is the real SeetaFace, wrapped so that it returns nothing on chosen frames.

#![allow(clippy::unwrap_used)]

mod common;

use common::{blacked, load, paste_head};
use image::RgbImage;
use privet_vision::track::TrackerConfig;
use privet_vision::video::{VideoAnonymizer, VideoConfig};
use privet_vision::{
    AnonymizeConfig, BBox, Detection, Detector, Mode, ObjectKind, SeetaConfig, SeetaFace,
};

/// A detector that misses on the listed frames.
struct Flaky {
    inner: SeetaFace,
    frame: u64,
    miss: Vec<u64>,
}

impl Detector for Flaky {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Face
    }
    fn name(&self) -> String {
        "flaky".into()
    }
    fn detect(&mut self, img: &RgbImage) -> privet_vision::Result<Vec<Detection>> {
        let f = self.frame;
        self.frame += 1;
        let d = self.inner.detect(img)?;
        Ok(if self.miss.contains(&f) {
            Vec::new()
        } else {
            d
        })
    }
}

fn clip() -> Vec<(RgbImage, BBox)> {
    (0..36)
        .map(|t| {
            let mut bg = load("brick_bg.jpg");
            // 4 px right and 1 px down per frame.
            let b = paste_head(&mut bg, 0.6, 10 + 4 * t, 40 + t);
            (bg, b)
        })
        .collect()
}

/// Runs the clip and returns, per frame, the share of the true face that is blacked out.
fn run(miss: Vec<u64>, tracker: TrackerConfig, lookback: u32) -> Vec<f32> {
    let frames = clip();
    let det: Box<dyn Detector> = Box::new(Flaky {
        inner: SeetaFace::new(SeetaConfig::default()).unwrap(),
        frame: 0,
        miss,
    });
    let cfg = VideoConfig {
        anonymize: AnonymizeConfig {
            mode: Mode::Solid,
            ..Default::default()
        },
        tracker,
        lookback,
        erase_moving: None,
    };
    let mut p = VideoAnonymizer::new(cfg, vec![det], None).unwrap();
    let mut out = Vec::new();
    for (f, _) in &frames {
        out.extend(p.push(f.clone()).unwrap());
    }
    out.extend(p.finish().unwrap());
    assert_eq!(out.len(), frames.len());
    out.iter()
        .zip(&frames)
        .map(|(o, (_, truth))| blacked(&o.image, truth))
        .collect()
}

/// Frames the detector misses: the first two (a late first detection), then single frames and
/// one pair.
fn misses() -> Vec<u64> {
    vec![0, 1, 5, 9, 13, 14, 20, 27, 31]
}

#[test]
fn no_face_is_left_uncovered_for_a_single_frame() {
    let covered = run(misses(), TrackerConfig::default(), 4);
    for (f, c) in covered.iter().enumerate() {
        assert!(
            *c > 0.99,
            "frame {f}: only {:.1}% of the face covered",
            c * 100.0
        );
    }
}

#[test]
fn without_persistence_the_same_clip_leaks_faces() {
    // The check above can fail: without coasting and lookback, the missed frames show the face.
    let covered = run(
        misses(),
        TrackerConfig {
            max_missed: 0,
            ..Default::default()
        },
        0,
    );
    let leaked: Vec<usize> = covered
        .iter()
        .enumerate()
        .filter(|(_, c)| **c < 0.5)
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        leaked,
        misses().iter().map(|&f| f as usize).collect::<Vec<_>>()
    );
}
