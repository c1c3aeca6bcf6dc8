//! An evaluator for OpenCV's boosted Haar cascades (the `opencv_storage` XML format written by
//! `opencv_traincascade`, `<featureType>HAAR</featureType>`), following OpenCV's
//! `CascadeClassifier` (cascadedetect.cpp): per scale the grey image is resized, integral images
//! (plain, squared, 45°-tilted) are built, each window's feature sums are normalized by the
//! window's standard deviation, stages of boosted stumps or trees reject windows early, and the
//! hits are grouped as `groupRectangles` does.
//!
//! The licence-plate cascade that Debian's `opencv-data` ships
//! (`haarcascade_russian_plate_number.xml`, BSD-3-Clause, see `models/LICENSE-opencv-cascades.txt`)
//! is embedded. Old-format cascades (`type_id="opencv-haar-classifier"`) and LBP cascades are
//! refused with a clear error.

use image::{GrayImage, RgbImage};

use super::{Detector, to_gray};
use crate::error::{Result, VisionError};
use crate::geom::{BBox, Detection, ObjectKind};

/// The embedded licence-plate cascade (OpenCV, BSD-3-Clause).
pub static RUSSIAN_PLATE_XML: &str =
    include_str!("../../models/haarcascade_russian_plate_number.xml");

const MAX_XML_BYTES: usize = 16 << 20;

#[derive(Debug, Clone)]
struct Feature {
    tilted: bool,
    rects: Vec<(i32, i32, i32, i32, f32)>,
}

#[derive(Debug, Clone)]
struct Node {
    left: i32,
    right: i32,
    feature: usize,
    threshold: f32,
}

#[derive(Debug, Clone)]
struct Weak {
    nodes: Vec<Node>,
    leaves: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Stage {
    threshold: f32,
    weak: Vec<Weak>,
}

/// A parsed Haar cascade.
#[derive(Debug, Clone)]
pub struct Cascade {
    width: u32,
    height: u32,
    stages: Vec<Stage>,
    features: Vec<Feature>,
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Result<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name)).ok_or_else(|| {
        VisionError::BadModel(format!(
            "cascade: <{}> has no <{name}>",
            n.tag_name().name()
        ))
    })
}

fn text<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> Result<&'a str> {
    Ok(child(n, name)?.text().unwrap_or("").trim())
}

fn nums<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split_whitespace()
        .map(|t| {
            t.parse::<T>()
                .map_err(|_| VisionError::BadModel(format!("cascade: bad number {t:?} in {what}")))
        })
        .collect()
}

fn items<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.has_tag_name("_"))
}

impl Cascade {
    /// Parses a new-format Haar cascade XML.
    pub fn parse(xml: &str) -> Result<Cascade> {
        if xml.len() > MAX_XML_BYTES {
            return Err(VisionError::BadModel(format!(
                "cascade XML larger than {MAX_XML_BYTES} bytes"
            )));
        }
        let doc = roxmltree::Document::parse(xml)
            .map_err(|e| VisionError::BadModel(format!("cascade XML: {e}")))?;
        let root = doc.root_element();
        let casc = root.children().find(|c| c.has_tag_name("cascade")).ok_or_else(|| {
            VisionError::BadModel("not a new-format OpenCV cascade (no <cascade>; old-format cascades are not supported)".into())
        })?;
        if text(casc, "stageType")? != "BOOST" {
            return Err(VisionError::BadModel(
                "cascade: only BOOST stages are supported".into(),
            ));
        }
        let ft = text(casc, "featureType")?;
        if ft != "HAAR" {
            return Err(VisionError::BadModel(format!(
                "cascade: feature type {ft} is not supported (HAAR only)"
            )));
        }
        let width: u32 = text(casc, "width")?
            .parse()
            .map_err(|_| VisionError::BadModel("cascade: bad width".into()))?;
        let height: u32 = text(casc, "height")?
            .parse()
            .map_err(|_| VisionError::BadModel("cascade: bad height".into()))?;
        if !(1..=256).contains(&width) || !(1..=256).contains(&height) {
            return Err(VisionError::BadModel(format!(
                "cascade: window {width}x{height} out of range"
            )));
        }
        let mut features = Vec::new();
        for f in items(child(casc, "features")?) {
            let tilted = text(f, "tilted").map(|t| t == "1").unwrap_or(false);
            let mut rects = Vec::new();
            for r in items(child(f, "rects")?) {
                let v: Vec<f32> = nums(r.text().unwrap_or(""), "rects")?;
                if v.len() != 5 {
                    return Err(VisionError::BadModel(
                        "cascade: a rect needs 5 numbers".into(),
                    ));
                }
                let (x, y, w, h) = (v[0] as i32, v[1] as i32, v[2] as i32, v[3] as i32);
                let fits = if tilted {
                    x - h >= 0 && x + w <= width as i32 && y >= 0 && y + w + h <= height as i32
                } else {
                    x >= 0
                        && y >= 0
                        && w >= 0
                        && h >= 0
                        && x + w <= width as i32
                        && y + h <= height as i32
                };
                if !fits || w < 0 || h < 0 {
                    return Err(VisionError::BadModel(
                        "cascade: a feature rect lies outside the window".into(),
                    ));
                }
                rects.push((x, y, w, h, v[4]));
            }
            if rects.is_empty() || rects.len() > 3 {
                return Err(VisionError::BadModel(
                    "cascade: a feature needs 1 to 3 rects".into(),
                ));
            }
            features.push(Feature { tilted, rects });
        }
        let mut stages = Vec::new();
        for s in items(child(casc, "stages")?) {
            let threshold: f32 = text(s, "stageThreshold")?
                .parse()
                .map_err(|_| VisionError::BadModel("cascade: bad stageThreshold".into()))?;
            let mut weak = Vec::new();
            for w in items(child(s, "weakClassifiers")?) {
                let internal: Vec<f32> = nums(text(w, "internalNodes")?, "internalNodes")?;
                let leaves: Vec<f32> = nums(text(w, "leafValues")?, "leafValues")?;
                if internal.is_empty() || !internal.len().is_multiple_of(4) {
                    return Err(VisionError::BadModel(
                        "cascade: internalNodes must come in fours".into(),
                    ));
                }
                let nodes: Vec<Node> = internal
                    .chunks(4)
                    .map(|c| Node {
                        left: c[0] as i32,
                        right: c[1] as i32,
                        feature: c[2] as usize,
                        threshold: c[3],
                    })
                    .collect();
                for n in &nodes {
                    if n.feature >= features.len() {
                        return Err(VisionError::BadModel(
                            "cascade: a node names a missing feature".into(),
                        ));
                    }
                    for c in [n.left, n.right] {
                        let ok = if c > 0 {
                            (c as usize) < nodes.len()
                        } else {
                            ((-c) as usize) < leaves.len()
                        };
                        if !ok {
                            return Err(VisionError::BadModel(
                                "cascade: a node points outside its tree".into(),
                            ));
                        }
                    }
                }
                weak.push(Weak { nodes, leaves });
            }
            stages.push(Stage { threshold, weak });
        }
        if stages.is_empty() {
            return Err(VisionError::BadModel("cascade has no stages".into()));
        }
        Ok(Cascade {
            width,
            height,
            stages,
            features,
        })
    }

    /// The detection window's size.
    pub fn window(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}

/// Integral images of one scale.
struct Integrals {
    w: usize,
    h: usize,
    sum: Vec<i64>,
    sq: Vec<f64>,
    /// Tilted integral over an extended grid: columns -pad..w+pad.
    tilted: Vec<i64>,
    pad: usize,
    tw: usize,
}

impl Integrals {
    fn new(g: &GrayImage, need_tilted: bool) -> Integrals {
        let (w, h) = (g.width() as usize, g.height() as usize);
        let px = g.as_raw();
        let s = w + 1;
        let mut sum = vec![0i64; s * (h + 1)];
        let mut sq = vec![0f64; s * (h + 1)];
        for y in 0..h {
            let (mut rs, mut rq) = (0i64, 0f64);
            for x in 0..w {
                let v = i64::from(px[y * w + x]);
                rs += v;
                rq += (v * v) as f64;
                sum[(y + 1) * s + x + 1] = sum[y * s + x + 1] + rs;
                sq[(y + 1) * s + x + 1] = sq[y * s + x + 1] + rq;
            }
        }
        let pad = if need_tilted { h + 2 } else { 0 };
        let tw = w + 1 + 2 * pad;
        let mut tilted = Vec::new();
        if need_tilted {
            // T(X, Y) = sum over y < Y, |x - X + 1| <= Y - y - 1 of I(x, y), for X in -pad..=w+pad.
            tilted = vec![0i64; tw * (h + 1)];
            let pix = |x: isize, y: isize| -> i64 {
                if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                    0
                } else {
                    i64::from(px[y as usize * w + x as usize])
                }
            };
            for yy in 1..=h {
                for c in 0..tw {
                    let xx = c as isize - pad as isize;
                    let l = if c > 0 {
                        tilted[(yy - 1) * tw + c - 1]
                    } else {
                        0
                    };
                    let r = if c + 1 < tw {
                        tilted[(yy - 1) * tw + c + 1]
                    } else {
                        0
                    };
                    let up2 = if yy >= 2 {
                        tilted[(yy - 2) * tw + c]
                    } else {
                        0
                    };
                    let v = l + r - up2
                        + pix(xx - 1, yy as isize - 1)
                        + if yy >= 2 {
                            pix(xx - 1, yy as isize - 2)
                        } else {
                            0
                        };
                    tilted[yy * tw + c] = v;
                }
            }
        }
        Integrals {
            w,
            h,
            sum,
            sq,
            tilted,
            pad,
            tw,
        }
    }

    #[inline]
    fn rect(&self, x: usize, y: usize, w: usize, h: usize) -> i64 {
        let s = self.w + 1;
        self.sum[y * s + x] - self.sum[y * s + x + w] - self.sum[(y + h) * s + x]
            + self.sum[(y + h) * s + x + w]
    }

    #[inline]
    fn rect_sq(&self, x: usize, y: usize, w: usize, h: usize) -> f64 {
        let s = self.w + 1;
        self.sq[y * s + x] - self.sq[y * s + x + w] - self.sq[(y + h) * s + x]
            + self.sq[(y + h) * s + x + w]
    }

    #[inline]
    fn t(&self, x: isize, y: usize) -> i64 {
        self.tilted[y * self.tw + (x + self.pad as isize) as usize]
    }

    #[inline]
    fn tilted_rect(&self, x: isize, y: usize, w: usize, h: usize) -> i64 {
        let (wi, hi) = (w as isize, h as isize);
        self.t(x, y) - self.t(x - hi, y + h) - self.t(x + wi, y + w)
            + self.t(x + wi - hi, y + w + h)
    }
}

/// Settings of a cascade search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeConfig {
    /// Ratio between scales (OpenCV's `scaleFactor`, 1.1).
    pub scale_factor: f32,
    /// Hits a group needs beyond the first (OpenCV's `minNeighbors`, 3; lower finds more).
    pub min_neighbors: u32,
    /// Smallest object width in pixels (0: the cascade's window).
    pub min_width: u32,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        CascadeConfig {
            scale_factor: 1.1,
            min_neighbors: 3,
            min_width: 0,
        }
    }
}

impl Cascade {
    /// Evaluates the cascade at window (wx, wy) of one scale. `None`: rejected.
    fn eval(&self, ii: &Integrals, wx: usize, wy: usize) -> bool {
        // Variance normalization over the window shrunk by one pixel, as OpenCV does.
        let (nw, nh) = (self.width as usize - 2, self.height as usize - 2);
        let area = (nw * nh) as f64;
        let s = ii.rect(wx + 1, wy + 1, nw, nh) as f64;
        let q = ii.rect_sq(wx + 1, wy + 1, nw, nh);
        let nf = area * q - s * s;
        let inv = if nf > 0.0 {
            let nf = nf.sqrt();
            // OpenCV rejects windows this flat (standard deviation below about 10 grey levels).
            if area / nf >= 0.1 {
                return false;
            }
            1.0 / nf
        } else {
            return false;
        };
        for st in &self.stages {
            let mut acc = 0f32;
            for wk in &st.weak {
                let mut idx = 0i32;
                loop {
                    let n = &wk.nodes[idx as usize];
                    let f = &self.features[n.feature];
                    let mut v = 0f64;
                    for &(x, y, w, h, wt) in &f.rects {
                        let r = if f.tilted {
                            ii.tilted_rect(
                                wx as isize + x as isize,
                                wy + y as usize,
                                w as usize,
                                h as usize,
                            )
                        } else {
                            ii.rect(wx + x as usize, wy + y as usize, w as usize, h as usize)
                        };
                        v += f64::from(wt) * r as f64;
                    }
                    let val = (v * inv) as f32;
                    idx = if val < n.threshold { n.left } else { n.right };
                    if idx <= 0 {
                        acc += wk.leaves[(-idx) as usize];
                        break;
                    }
                }
            }
            if acc < st.threshold {
                return false;
            }
        }
        true
    }

    /// All windows the cascade accepts, in original image coordinates, grouped as OpenCV's
    /// `groupRectangles(min_neighbors, 0.2)`; each box's score is its number of hits.
    pub fn detect_gray(&self, g: &GrayImage, cfg: &CascadeConfig) -> Vec<(BBox, u32)> {
        let need_tilted = self.features.iter().any(|f| f.tilted);
        let (iw, ih) = (g.width() as f32, g.height() as f32);
        let mut hits = Vec::new();
        let sf = cfg.scale_factor.max(1.01);
        let min_scale = if cfg.min_width > self.width {
            cfg.min_width as f32 / self.width as f32
        } else {
            1.0
        };
        let mut factor = 1.0f32;
        while factor < min_scale {
            factor *= sf;
        }
        loop {
            let (sw, sh) = ((iw / factor).round() as u32, (ih / factor).round() as u32);
            if sw < self.width + 1 || sh < self.height + 1 {
                break;
            }
            let scaled = resize_bilinear(g, sw, sh);
            let ii = Integrals::new(&scaled, need_tilted);
            let step = if factor > 2.0 { 1 } else { 2 };
            let mut y = 0;
            while y + (self.height as usize) < ii.h {
                let mut x = 0;
                while x + (self.width as usize) < ii.w {
                    if self.eval(&ii, x, y) {
                        hits.push(BBox::from_xywh(
                            (x as f32 * factor).round(),
                            (y as f32 * factor).round(),
                            (self.width as f32 * factor).round(),
                            (self.height as f32 * factor).round(),
                        ));
                    }
                    x += step;
                }
                y += step;
            }
            factor *= sf;
        }
        group_rectangles(&hits, cfg.min_neighbors, 0.2)
    }
}

/// Bilinear resize with OpenCV's pixel-centre convention.
fn resize_bilinear(g: &GrayImage, w: u32, h: u32) -> GrayImage {
    if g.dimensions() == (w, h) {
        return g.clone();
    }
    let (sw, sh) = (g.width() as f32, g.height() as f32);
    let (fx, fy) = (sw / w as f32, sh / h as f32);
    let src = g.as_raw();
    let gw = g.width() as usize;
    let mut out = vec![0u8; w as usize * h as usize];
    let xs: Vec<(usize, usize, f32)> = (0..w)
        .map(|x| {
            let s = ((x as f32 + 0.5) * fx - 0.5).clamp(0.0, sw - 1.0);
            let x0 = s.floor() as usize;
            (x0, (x0 + 1).min(gw - 1), s - x0 as f32)
        })
        .collect();
    for y in 0..h as usize {
        let s = ((y as f32 + 0.5) * fy - 0.5).clamp(0.0, sh - 1.0);
        let y0 = s.floor() as usize;
        let y1 = (y0 + 1).min(g.height() as usize - 1);
        let ay = s - y0 as f32;
        for (x, &(x0, x1, ax)) in xs.iter().enumerate() {
            let p = |xx: usize, yy: usize| f32::from(src[yy * gw + xx]);
            let top = p(x0, y0) * (1.0 - ax) + p(x1, y0) * ax;
            let bot = p(x0, y1) * (1.0 - ax) + p(x1, y1) * ax;
            out[y * w as usize + x] = (top * (1.0 - ay) + bot * ay).round() as u8;
        }
    }
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| GrayImage::new(w, h))
}

/// OpenCV's `groupRectangles`: clusters similar boxes, keeps clusters of more than `min_neighbors`
/// boxes, averages each, and drops a cluster nested inside a stronger one.
fn group_rectangles(rects: &[BBox], min_neighbors: u32, eps: f32) -> Vec<(BBox, u32)> {
    let n = rects.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let similar = |a: &BBox, b: &BBox| {
        let delta = eps * (a.width().min(b.width()) + a.height().min(b.height())) * 0.5;
        (a.x0 - b.x0).abs() <= delta
            && (a.y0 - b.y0).abs() <= delta
            && (a.x1 - b.x1).abs() <= delta
            && (a.y1 - b.y1).abs() <= delta
    };
    for i in 0..n {
        for j in 0..i {
            if similar(&rects[i], &rects[j]) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut acc: std::collections::BTreeMap<usize, ([f32; 4], u32)> = Default::default();
    for (i, rect) in rects.iter().enumerate() {
        let r = find(&mut parent, i);
        let e = acc.entry(r).or_insert(([0.0; 4], 0));
        e.0[0] += rect.x0;
        e.0[1] += rect.y0;
        e.0[2] += rect.x1;
        e.0[3] += rect.y1;
        e.1 += 1;
    }
    let groups: Vec<(BBox, u32)> = acc
        .values()
        .filter(|(_, c)| *c > min_neighbors)
        .map(|(s, c)| {
            let k = *c as f32;
            (
                BBox::new(
                    (s[0] / k).round(),
                    (s[1] / k).round(),
                    (s[2] / k).round(),
                    (s[3] / k).round(),
                ),
                *c,
            )
        })
        .collect();
    groups
        .iter()
        .filter(|(r1, n1)| {
            !groups.iter().any(|(r2, n2)| {
                if r1 == r2 {
                    return false;
                }
                let dx = (r2.width() * eps).round();
                let dy = (r2.height() * eps).round();
                r1.x0 >= r2.x0 - dx
                    && r1.y0 >= r2.y0 - dy
                    && r1.x1 <= r2.x1 + dx
                    && r1.y1 <= r2.y1 + dy
                    && (*n2 > (*n1).max(3) || *n1 < 3)
            })
        })
        .copied()
        .collect()
}

/// A cascade as a [`Detector`].
#[derive(Debug, Clone)]
pub struct CascadeDetector {
    cascade: Cascade,
    cfg: CascadeConfig,
    kind: ObjectKind,
    name: String,
}

impl CascadeDetector {
    /// A detector for `kind` from a cascade.
    pub fn new(
        cascade: Cascade,
        cfg: CascadeConfig,
        kind: ObjectKind,
        name: &str,
    ) -> Result<CascadeDetector> {
        if !(cfg.scale_factor > 1.0 && cfg.scale_factor < 4.0) {
            return Err(VisionError::InvalidConfig(
                "cascade scale factor must lie in (1, 4)".into(),
            ));
        }
        Ok(CascadeDetector {
            cascade,
            cfg,
            kind,
            name: name.into(),
        })
    }

    /// The embedded licence-plate cascade.
    pub fn plates(cfg: CascadeConfig) -> Result<CascadeDetector> {
        CascadeDetector::new(
            Cascade::parse(RUSSIAN_PLATE_XML)?,
            cfg,
            ObjectKind::Plate,
            "haar:russian_plate_number",
        )
    }
}

impl Detector for CascadeDetector {
    fn kind(&self) -> ObjectKind {
        self.kind
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>> {
        let g = to_gray(img);
        Ok(self
            .cascade
            .detect_gray(&g, &self.cfg)
            .into_iter()
            .map(|(bbox, n)| Detection {
                bbox,
                score: n as f32,
                kind: self.kind,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_plate_cascade_parses() {
        let c = Cascade::parse(RUSSIAN_PLATE_XML).unwrap();
        assert_eq!(c.window(), (60, 20));
        assert_eq!(c.stages.len(), 20);
        assert!(c.features.iter().any(|f| f.tilted));
    }

    #[test]
    fn malformed_cascades_are_errors() {
        for bad in [
            "",
            "<opencv_storage/>",
            "<opencv_storage><cascade><stageType>BOOST</stageType><featureType>LBP</featureType></cascade></opencv_storage>",
            &RUSSIAN_PLATE_XML.replace("<width>60</width>", "<width>x</width>"),
            &RUSSIAN_PLATE_XML.replace("0 -1 193 1.0079263709485531e-002", "0 -1 99999 1.0"),
            &RUSSIAN_PLATE_XML.replace("0 -1 193 1.0079263709485531e-002", "0 7 193 1.0"),
        ] {
            assert!(
                matches!(Cascade::parse(bad), Err(VisionError::BadModel(_))),
                "accepted: {:.80}",
                bad
            );
        }
    }

    #[test]
    fn tilted_integral_matches_a_direct_sum() {
        let g = GrayImage::from_fn(9, 7, |x, y| image::Luma([((x * 7 + y * 13) % 23) as u8]));
        let ii = Integrals::new(&g, true);
        for yy in 0..=7usize {
            for xx in -3isize..=12 {
                let mut direct = 0i64;
                for y in 0..yy as isize {
                    for x in 0..9isize {
                        if (x - xx + 1).abs() < yy as isize - y {
                            direct += i64::from(g.get_pixel(x as u32, y as u32).0[0]);
                        }
                    }
                }
                assert_eq!(ii.t(xx, yy), direct, "T({xx},{yy})");
            }
        }
    }

    #[test]
    fn grouping_needs_enough_neighbours() {
        let b = BBox::from_xywh(10.0, 10.0, 60.0, 20.0);
        let many = vec![
            b,
            b.shifted(1.0, 0.0),
            b.shifted(0.0, 1.0),
            b.shifted(1.0, 1.0),
        ];
        assert_eq!(group_rectangles(&many, 3, 0.2).len(), 1);
        assert_eq!(group_rectangles(&many[..3], 3, 0.2).len(), 0);
    }
}
