//! Temporal persistence: a tracker that carries boxes across frames where the detector misses.
//!
//! Each track keeps its last detected box and a velocity (an exponential average of its centre's
//! motion per frame). On a frame without a matching detection the track *coasts*: its box moves
//! with the velocity and grows with the number of missed frames and the speed, so an object that
//! keeps moving while undetected stays inside it. A track ends after `max_missed` frames without a
//! detection. Tracks also reach backwards: a new track (or one found again after a gap) reports
//! boxes for the frames it was missing, which the video pipeline applies to frames it has held
//! back (`VideoConfig::lookback`).

use crate::geom::{BBox, Detection, ObjectKind};

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Frames a track survives without a detection.
    pub max_missed: u32,
    /// Smallest IoU between a prediction and a detection to match them.
    pub min_iou: f32,
    /// Growth of a coasting box per missed frame, as a fraction of its size.
    pub growth: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_missed: 10,
            min_iou: 0.1,
            growth: 0.08,
        }
    }
}

#[derive(Debug, Clone)]
struct Track {
    bbox: BBox,
    vx: f32,
    vy: f32,
    last_seen: u64,
    kind: ObjectKind,
    score: f32,
    /// The first frame and box, to reach back once the velocity is known.
    born: u64,
    born_box: BBox,
    backfilled: bool,
}

impl Track {
    fn predict(&self, frame: u64, growth: f32) -> BBox {
        let k = (frame - self.last_seen) as f32;
        let moved = self.bbox.shifted(self.vx * k, self.vy * k);
        let gx = self.bbox.width() * growth * k + self.vx.abs() * k * 0.5;
        let gy = self.bbox.height() * growth * k + self.vy.abs() * k * 0.5;
        moved.grown(gx, gy)
    }
}

/// A box to cover on some frame, reported by [`Tracker::update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cover {
    /// The frame it belongs to.
    pub frame: u64,
    /// The box and what it covers.
    pub det: Detection,
    /// Whether a detector found it on this frame (otherwise the tracker carried it).
    pub detected: bool,
}

/// Tracks detections frame by frame.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
}

impl Tracker {
    /// A tracker with no tracks.
    pub fn new(cfg: TrackerConfig) -> Tracker {
        Tracker {
            cfg,
            tracks: Vec::new(),
        }
    }

    /// Number of live tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no track is live.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Feeds frame `frame`'s detections (frames in increasing order). Returns the boxes to cover:
    /// for `frame` itself (detections and coasting tracks), and for up to `lookback` earlier frames
    /// (new tracks reaching back, and the gaps of tracks found again, interpolated).
    pub fn update(&mut self, frame: u64, dets: &[Detection], lookback: u32) -> Vec<Cover> {
        let g = self.cfg.growth;
        // Candidate pairs (track, detection) by IoU of the prediction, or by the detection's centre
        // lying inside the prediction (fast motion).
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            let p = t.predict(frame, g);
            for (di, d) in dets.iter().enumerate() {
                if d.kind != t.kind {
                    continue;
                }
                let iou = p.iou(&d.bbox);
                let (cx, cy) = d.bbox.center();
                let inside = cx >= p.x0 && cx <= p.x1 && cy >= p.y0 && cy <= p.y1;
                if iou >= self.cfg.min_iou || inside {
                    pairs.push((iou + if inside { 0.01 } else { 0.0 }, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut t_used = vec![false; self.tracks.len()];
        let mut d_used = vec![false; dets.len()];
        let mut out = Vec::new();
        for (_, ti, di) in pairs {
            if t_used[ti] || d_used[di] {
                continue;
            }
            t_used[ti] = true;
            d_used[di] = true;
            let t = &mut self.tracks[ti];
            let d = dets[di];
            let gap = frame - t.last_seen;
            let (oc, nc) = (t.bbox.center(), d.bbox.center());
            let (vx, vy) = ((nc.0 - oc.0) / gap as f32, (nc.1 - oc.1) / gap as f32);
            // The frames it was missing: interpolate between the two detections.
            for k in 1..gap {
                let f = frame - k;
                if frame - f > u64::from(lookback) {
                    continue;
                }
                let a = (gap - k) as f32 / gap as f32;
                let lerp = |p: f32, q: f32| p + (q - p) * a;
                let b = BBox::new(
                    lerp(t.bbox.x0, d.bbox.x0),
                    lerp(t.bbox.y0, d.bbox.y0),
                    lerp(t.bbox.x1, d.bbox.x1),
                    lerp(t.bbox.y1, d.bbox.y1),
                );
                let b = b.grown(b.width() * g, b.height() * g);
                out.push(Cover {
                    frame: f,
                    det: Detection {
                        bbox: b,
                        score: d.score,
                        kind: d.kind,
                    },
                    detected: false,
                });
            }
            t.vx = if t.backfilled {
                0.5 * t.vx + 0.5 * vx
            } else {
                vx
            };
            t.vy = if t.backfilled {
                0.5 * t.vy + 0.5 * vy
            } else {
                vy
            };
            if !t.backfilled {
                // Now the velocity is known: extrapolate to the frames before the track began.
                t.backfilled = true;
                for k in 1..=u64::from(lookback).min(t.born) {
                    let f = t.born - k;
                    if frame - f > u64::from(lookback) {
                        break;
                    }
                    let kf = k as f32;
                    let b = t.born_box.shifted(-t.vx * kf, -t.vy * kf);
                    let b = b.grown(
                        b.width() * g * kf + t.vx.abs() * kf * 0.5,
                        b.height() * g * kf + t.vy.abs() * kf * 0.5,
                    );
                    out.push(Cover {
                        frame: f,
                        det: Detection {
                            bbox: b,
                            score: d.score,
                            kind: d.kind,
                        },
                        detected: false,
                    });
                }
            }
            t.bbox = d.bbox;
            t.last_seen = frame;
            t.score = d.score;
            out.push(Cover {
                frame,
                det: d,
                detected: true,
            });
        }
        // Tracks not matched: coast or end.
        let max_missed = u64::from(self.cfg.max_missed);
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (ti, t) in self.tracks.drain(..).enumerate() {
            if t_used[ti] {
                keep.push(t);
            } else if frame - t.last_seen <= max_missed {
                out.push(Cover {
                    frame,
                    det: Detection {
                        bbox: t.predict(frame, g),
                        score: t.score,
                        kind: t.kind,
                    },
                    detected: false,
                });
                keep.push(t);
            }
        }
        self.tracks = keep;
        // New tracks: also cover the held-back frames before this one (the detector may have
        // missed the object's first appearance), grown as a coasting box would be.
        for (di, d) in dets.iter().enumerate() {
            if d_used[di] {
                continue;
            }
            for k in 1..=u64::from(lookback).min(frame) {
                let b = d.bbox.grown(
                    d.bbox.width() * g * k as f32,
                    d.bbox.height() * g * k as f32,
                );
                out.push(Cover {
                    frame: frame - k,
                    det: Detection { bbox: b, ..*d },
                    detected: false,
                });
            }
            out.push(Cover {
                frame,
                det: *d,
                detected: true,
            });
            self.tracks.push(Track {
                bbox: d.bbox,
                vx: 0.0,
                vy: 0.0,
                last_seen: frame,
                kind: d.kind,
                score: d.score,
                born: frame,
                born_box: d.bbox,
                backfilled: false,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32) -> Detection {
        Detection {
            bbox: BBox::from_xywh(x, 50.0, 40.0, 40.0),
            score: 1.0,
            kind: ObjectKind::Face,
        }
    }

    /// `check(detected frames, expected covered frames)`: a face moving 5 px per frame.
    fn check(seen: &[bool], lookback: u32) -> Vec<bool> {
        let mut tr = Tracker::new(TrackerConfig::default());
        let mut covered = vec![false; seen.len()];
        for (f, &s) in seen.iter().enumerate() {
            let truth = det(f as f32 * 5.0);
            let dets = if s { vec![truth] } else { vec![] };
            for c in tr.update(f as u64, &dets, lookback) {
                // Covered if the box holds the whole true face of that frame.
                let t = det(c.frame as f32 * 5.0).bbox;
                if c.det.bbox.intersection(&t) >= t.area() - 1e-3 {
                    covered[c.frame as usize] = true;
                }
            }
        }
        covered
    }

    #[test]
    fn single_missed_frames_are_covered_by_coasting() {
        let seen = [
            true, true, false, true, false, true, true, false, false, true,
        ];
        assert!(check(&seen, 0).iter().all(|&c| c));
    }

    #[test]
    fn a_missed_first_appearance_is_covered_with_lookback_only() {
        let seen = [false, false, true, true];
        assert_eq!(check(&seen, 0), vec![false, false, true, true]);
        assert!(check(&seen, 3).iter().all(|&c| c));
    }

    #[test]
    fn a_track_ends_after_max_missed_frames() {
        let mut tr = Tracker::new(TrackerConfig {
            max_missed: 2,
            ..Default::default()
        });
        tr.update(0, &[det(0.0)], 0);
        assert_eq!(tr.update(1, &[], 0).len(), 1);
        assert_eq!(tr.update(2, &[], 0).len(), 1);
        assert!(tr.update(3, &[], 0).is_empty());
        assert!(tr.is_empty());
    }
}
