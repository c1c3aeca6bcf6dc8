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
use privet_vision::video::{VideoAnonymizer, VideoConfig, detect_in_parallel};
use privet_vision::{
    AnonymizeConfig, BBox, Detection, Detector, Mode, ObjectKind, SeetaConfig, SeetaFace,
};

/// A detector that misses on the listed frames, decided from the frame itself (its number is
/// stamped in the red channel of the top-left pixel), so that detectors on several threads
/// agree on them.
struct MarkedFlaky {
    inner: SeetaFace,
    miss: Vec<u64>,
}

impl Detector for MarkedFlaky {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Face
    }
    fn name(&self) -> String {
        "marked-flaky".into()
    }
    fn detect(&mut self, img: &RgbImage) -> privet_vision::Result<Vec<Detection>> {
        let f = u64::from(img.get_pixel(0, 0).0[0]);
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
            bg.put_pixel(0, 0, image::Rgb([t as u8, 0, 0]));
            (bg, b)
        })
        .collect()
}

fn config(tracker: TrackerConfig, lookback: u32) -> VideoConfig {
    VideoConfig {
        anonymize: AnonymizeConfig {
            mode: Mode::Solid,
            ..Default::default()
        },
        tracker,
        lookback,
        erase_moving: None,
    }
}

/// Runs the clip and returns, per frame, the share of the true face that is blacked out.
fn run(miss: Vec<u64>, tracker: TrackerConfig, lookback: u32) -> Vec<f32> {
    let frames = clip();
    let det: Box<dyn Detector> = Box::new(MarkedFlaky {
        inner: SeetaFace::new(SeetaConfig::default()).unwrap(),
        miss,
    });
    let mut p = VideoAnonymizer::new(config(tracker, lookback), vec![det], None).unwrap();
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

/// Detection on three threads (as `privet anonymize` runs it on video): frames come back in
/// order with their own detections, and the output equals the one-thread pipeline's pixel
/// for pixel.
#[test]
fn detection_on_several_threads_gives_the_same_video() {
    let frames = clip();
    let one_thread: Vec<RgbImage> = {
        let det: Box<dyn Detector> = Box::new(MarkedFlaky {
            inner: SeetaFace::new(SeetaConfig::default()).unwrap(),
            miss: misses(),
        });
        let mut p =
            VideoAnonymizer::new(config(TrackerConfig::default(), 4), vec![det], None).unwrap();
        let mut out = Vec::new();
        for (f, _) in &frames {
            out.extend(p.push(f.clone()).unwrap());
        }
        out.extend(p.finish().unwrap());
        out.into_iter().map(|o| o.image).collect()
    };
    let mut p =
        VideoAnonymizer::new(config(TrackerConfig::default(), 4), Vec::new(), None).unwrap();
    let mut out = Vec::new();
    let mut next = frames.iter();
    detect_in_parallel(
        3,
        &|| -> privet_vision::Result<Vec<Box<dyn Detector>>> {
            Ok(vec![Box::new(MarkedFlaky {
                inner: SeetaFace::new(SeetaConfig::default())?,
                miss: misses(),
            })])
        },
        || Ok(next.next().map(|(f, _)| f.clone())),
        |frame, dets| {
            out.extend(p.push_detected(frame, &dets)?);
            Ok(())
        },
    )
    .unwrap();
    out.extend(p.finish().unwrap());
    assert_eq!(out.len(), frames.len());
    for (i, (o, (_, truth))) in out.iter().zip(&frames).enumerate() {
        assert_eq!(o.index, i as u64);
        assert!(blacked(&o.image, truth) > 0.99, "frame {i}");
        assert!(
            o.image == one_thread[i],
            "frame {i} differs from the one-thread run"
        );
    }
}

/// A detector that cannot be built, a detector that fails and a source that fails each stop
/// the stream with their error (no hang, no frame handed on after it).
#[test]
fn errors_in_parallel_detection_stop_the_stream() {
    use privet_vision::VisionError;
    let frames = clip();
    let broken = || -> privet_vision::Result<Vec<Box<dyn Detector>>> {
        Err(VisionError::BadModel("no model".into()))
    };
    let mut next = frames.iter();
    let e = detect_in_parallel(
        2,
        &broken,
        || Ok(next.next().map(|(f, _)| f.clone())),
        |_, _| Ok(()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no model"), "{e}");

    struct FailsOn(u64);
    impl Detector for FailsOn {
        fn kind(&self) -> ObjectKind {
            ObjectKind::Face
        }
        fn name(&self) -> String {
            "fails".into()
        }
        fn detect(&mut self, img: &RgbImage) -> privet_vision::Result<Vec<Detection>> {
            if u64::from(img.get_pixel(0, 0).0[0]) == self.0 {
                Err(VisionError::Detector("frame 7".into()))
            } else {
                Ok(Vec::new())
            }
        }
    }
    let mut next = frames.iter();
    let mut handed = Vec::new();
    let e = detect_in_parallel(
        2,
        &|| -> privet_vision::Result<Vec<Box<dyn Detector>>> { Ok(vec![Box::new(FailsOn(7))]) },
        || Ok(next.next().map(|(f, _)| f.clone())),
        |f, _| {
            handed.push(f.get_pixel(0, 0).0[0]);
            Ok(())
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("frame 7"), "{e}");
    assert_eq!(handed, (0..7).collect::<Vec<u8>>());

    let mut count = 0;
    let e = detect_in_parallel(
        2,
        &|| -> privet_vision::Result<Vec<Box<dyn Detector>>> { Ok(Vec::new()) },
        || {
            count += 1;
            if count > 5 {
                Err(VisionError::Decode("truncated".into()))
            } else {
                Ok(Some(frames[0].0.clone()))
            }
        },
        |_, _| Ok(()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
}
