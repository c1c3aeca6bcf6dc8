//! The video pipeline, sans I/O: frames go in, anonymized frames come out a few frames later.
//!
//! Each frame is run through the detectors; the [`Tracker`] turns detections into boxes to cover
//! on this frame and on up to `lookback` frames held back, so a face the detector misses on a
//! frame (or on its first frames) is still covered. With a background image (static camera),
//! `Mode::Remove` fills covered regions with the background, and `erase_moving` also replaces
//! everything that differs from the background (moving people and cars).

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;

use image::RgbImage;

use crate::background::{ForegroundConfig, foreground_mask, replace_masked};
use crate::boxes::{FrameBoxes, Source};
use crate::detect::{Detector, detect_all};
use crate::error::{Result, VisionError};
use crate::geom::Detection;
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
        let dets = detect_all(&mut self.detectors, &frame)?;
        self.push_detected(frame, &dets)
    }

    /// Feeds the next frame with detections already made (by [`detect_in_parallel`], or by
    /// detectors the pipeline does not hold); returns the frames that are ready (in order).
    pub fn push_detected(&mut self, frame: RgbImage, dets: &[Detection]) -> Result<Vec<OutFrame>> {
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
        self.held.push_back(Held {
            index,
            image: frame,
            boxes: FrameBoxes {
                frame: index,
                boxes: Vec::new(),
            },
        });
        for c in self.tracker.update(index, dets, self.cfg.lookback) {
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

/// Frames queued per detection thread: enough to keep each busy, few enough to bound memory.
const IN_FLIGHT_PER_THREAD: usize = 2;

/// Runs the detectors on a stream of frames in `threads` threads and hands each frame, with
/// its detections, to `sink` in stream order.
///
/// Detection is the costly part of anonymizing video and each frame's is independent, so
/// frames are dealt round robin to the threads; each thread builds its own detectors with
/// `make` (detectors keep per-call scratch state and some are not `Send`), before any frame is
/// dealt. `source` yields the frames (`None` at the end). At most `2 · threads` frames are in
/// flight. The first error (from `make`, `source`, a detector or `sink`) stops the stream and
/// is returned. The error type is the caller's, so that a command can carry its own context.
pub fn detect_in_parallel<E>(
    threads: usize,
    make: &(dyn Fn() -> std::result::Result<Vec<Box<dyn Detector>>, E> + Sync),
    mut source: impl FnMut() -> std::result::Result<Option<RgbImage>, E>,
    mut sink: impl FnMut(RgbImage, Vec<Detection>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<VisionError> + Send,
{
    let threads = threads.clamp(1, 64);
    let lost = || E::from(VisionError::Detector("a detection thread stopped".into()));
    std::thread::scope(|scope| {
        type Found = Result<Vec<Detection>>;
        let (done_tx, done_rx) = mpsc::channel::<(u64, RgbImage, Found)>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), E>>();
        let mut jobs = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (job_tx, job_rx) = mpsc::channel::<(u64, RgbImage)>();
            let (done_tx, ready_tx) = (done_tx.clone(), ready_tx.clone());
            let work = move || {
                let mut detectors = match make() {
                    Ok(d) => {
                        let _ = ready_tx.send(Ok(()));
                        d
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for (index, frame) in job_rx {
                    let found = detect_all(&mut detectors, &frame);
                    if done_tx.send((index, frame, found)).is_err() {
                        break;
                    }
                }
            };
            // With several detection threads, each runs on a rayon pool of its own thread
            // only, so a detector's own data parallelism (rustface's uses rayon) stays on it:
            // the frames already keep every core busy, and threads sharing one pool spent a
            // third of their time in the scheduler and in lock waits.
            let pool = match threads {
                1 => None,
                _ => rayon::ThreadPoolBuilder::new().num_threads(1).build().ok(),
            };
            scope.spawn(move || match pool {
                Some(pool) => pool.install(work),
                None => work(),
            });
            jobs.push(job_tx);
        }
        drop((done_tx, ready_tx));
        // Every thread has its detectors before any frame is dealt (a thread that failed
        // would otherwise leave its frames unanswered).
        for _ in 0..threads {
            ready_rx.recv().map_err(|_| lost())??;
        }
        let (mut dealt, mut delivered) = (0u64, 0u64);
        let mut finished = false;
        let mut early: BTreeMap<u64, (RgbImage, Found)> = BTreeMap::new();
        loop {
            while !finished && dealt - delivered < (threads * IN_FLIGHT_PER_THREAD) as u64 {
                match source()? {
                    Some(frame) => {
                        let to = jobs
                            .get((dealt % threads as u64) as usize)
                            .ok_or_else(lost)?;
                        to.send((dealt, frame)).map_err(|_| lost())?;
                        dealt += 1;
                    }
                    None => finished = true,
                }
            }
            if delivered == dealt {
                return Ok(());
            }
            let (frame, found) = loop {
                if let Some(next) = early.remove(&delivered) {
                    break next;
                }
                let (index, frame, found) = done_rx.recv().map_err(|_| lost())?;
                early.insert(index, (frame, found));
            };
            delivered += 1;
            sink(frame, found?)?;
        }
    })
}
