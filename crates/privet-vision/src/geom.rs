//! Boxes and detections.

/// What a detection covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// A human face.
    Face,
    /// A vehicle licence plate.
    Plate,
}

impl ObjectKind {
    /// The name used on the command line and in boxes files.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Face => "face",
            ObjectKind::Plate => "plate",
        }
    }

    /// Parses `face`/`faces` or `plate`/`plates`.
    pub fn parse(s: &str) -> Option<ObjectKind> {
        match s.trim() {
            "face" | "faces" => Some(ObjectKind::Face),
            "plate" | "plates" => Some(ObjectKind::Plate),
            _ => None,
        }
    }
}

/// An axis-aligned box in pixel coordinates: `x0 <= x1`, `y0 <= y1` (x to the right, y down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge (exclusive).
    pub x1: f32,
    /// Bottom edge (exclusive).
    pub y1: f32,
}

impl BBox {
    /// A box from its corners, reordered if needed. Non-finite values become 0.
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> BBox {
        let f = |v: f32| if v.is_finite() { v } else { 0.0 };
        let (x0, y0, x1, y1) = (f(x0), f(y0), f(x1), f(y1));
        BBox {
            x0: x0.min(x1),
            y0: y0.min(y1),
            x1: x0.max(x1),
            y1: y0.max(y1),
        }
    }

    /// A box from its top-left corner and size.
    pub fn from_xywh(x: f32, y: f32, w: f32, h: f32) -> BBox {
        BBox::new(x, y, x + w, y + h)
    }

    /// Width.
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    /// Height.
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    /// Area.
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Centre.
    pub fn center(&self) -> (f32, f32) {
        ((self.x0 + self.x1) * 0.5, (self.y0 + self.y1) * 0.5)
    }

    /// The same centre, each side multiplied by `s`.
    pub fn scaled(&self, s: f32) -> BBox {
        let (cx, cy) = self.center();
        let (hw, hh) = (self.width() * 0.5 * s, self.height() * 0.5 * s);
        BBox::new(cx - hw, cy - hh, cx + hw, cy + hh)
    }

    /// Grown by `dx` left and right and `dy` above and below.
    pub fn grown(&self, dx: f32, dy: f32) -> BBox {
        BBox::new(self.x0 - dx, self.y0 - dy, self.x1 + dx, self.y1 + dy)
    }

    /// Moved by (dx, dy).
    pub fn shifted(&self, dx: f32, dy: f32) -> BBox {
        BBox::new(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)
    }

    /// The smallest box holding both.
    pub fn union(&self, o: &BBox) -> BBox {
        BBox::new(
            self.x0.min(o.x0),
            self.y0.min(o.y0),
            self.x1.max(o.x1),
            self.y1.max(o.y1),
        )
    }

    /// Area of the overlap.
    pub fn intersection(&self, o: &BBox) -> f32 {
        let w = (self.x1.min(o.x1) - self.x0.max(o.x0)).max(0.0);
        let h = (self.y1.min(o.y1) - self.y0.max(o.y0)).max(0.0);
        w * h
    }

    /// Intersection over union (0 for two empty boxes).
    pub fn iou(&self, o: &BBox) -> f32 {
        let i = self.intersection(o);
        let u = self.area() + o.area() - i;
        if u <= 0.0 { 0.0 } else { i / u }
    }

    /// Integer pixel bounds clipped to a `w` x `h` image: `(x0, y0, x1, y1)` with exclusive ends,
    /// or `None` when nothing of the box lies inside.
    pub fn pixel_bounds(&self, w: u32, h: u32) -> Option<(u32, u32, u32, u32)> {
        let x0 = self.x0.floor().max(0.0);
        let y0 = self.y0.floor().max(0.0);
        let x1 = self.x1.ceil().min(w as f32);
        let y1 = self.y1.ceil().min(h as f32);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        Some((x0 as u32, y0 as u32, x1 as u32, y1 as u32))
    }
}

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Where it is.
    pub bbox: BBox,
    /// The detector's confidence (its own scale; higher is surer).
    pub score: f32,
    /// What it is.
    pub kind: ObjectKind,
}

/// Greedy non-maximum suppression: keeps the highest-scoring box of each group overlapping by
/// more than `iou` (per kind).
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep
            .iter()
            .all(|k| k.kind != d.kind || k.bbox.iou(&d.bbox) <= iou)
        {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn pixel_bounds_clip_to_the_image_and_reject_outside_boxes() {
        let b = BBox::new(-5.0, 2.5, 8.2, 50.0);
        assert_eq!(b.pixel_bounds(20, 10), Some((0, 2, 9, 10)));
        assert_eq!(BBox::new(30.0, 0.0, 40.0, 5.0).pixel_bounds(20, 10), None);
        assert_eq!(BBox::new(f32::NAN, 0.0, 4.0, 4.0).x0, 0.0);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_per_kind() {
        let d = |x: f32, s: f32, kind| Detection {
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            score: s,
            kind,
        };
        let out = nms(
            vec![
                d(0.0, 0.5, ObjectKind::Face),
                d(1.0, 0.9, ObjectKind::Face),
                d(1.0, 0.3, ObjectKind::Plate),
                d(50.0, 0.1, ObjectKind::Face),
            ],
            0.3,
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].score, 0.9);
    }
}
