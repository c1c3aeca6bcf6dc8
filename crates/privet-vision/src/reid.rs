//! A re-identification attack on obfuscated faces, in the manner of McPherson, Shokri and
//! Shmatikov ("Defeating Image Obfuscation with Deep Learning", 2016): an attacker who has
//! obfuscated pictures of a closed set of people trains a classifier on them and guesses who an
//! obfuscated picture shows. Blur and pixelation keep colours and coarse shapes, so the guess is
//! far above chance. A solid fill and removal by inpainting bring it to chance
//! (`bench/vision/README.md`), as long as the solid cover's outline does not follow the face
//! box: a black ellipse of the box's own proportions showed each face's width-to-height ratio
//! and put the guess at 2-3x chance, so solid covers of faces are discs
//! ([`Region::outline_hidden`](crate::mask::Region::outline_hidden)).
//!
//! The faces are *generated* (no licensed face set is needed): each identity has its own skin
//! and hair colour, hair line, eye spacing and size, brows, nose and mouth; each picture varies
//! position, size, lighting, expression, noise and background. The classifier is deliberately
//! simple (softmax regression on 16x16 colour thumbnails), so the figures are a lower bound on
//! what a real attacker (a CNN, as in the paper) achieves.

use image::RgbImage;

use crate::error::Result;
use crate::geom::BBox;
use crate::mask::{self, Mode, Region, Shape};

/// Settings of one attack run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttackConfig {
    /// Number of people.
    pub identities: usize,
    /// Training pictures per person.
    pub train_per_identity: usize,
    /// Test pictures per person.
    pub test_per_identity: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// Mask scale applied to the face box before obfuscation (privet's default is 1.3).
    pub mask_scale: f32,
}

impl Default for AttackConfig {
    fn default() -> Self {
        AttackConfig {
            identities: 5,
            train_per_identity: 30,
            test_per_identity: 20,
            seed: 7,
            mask_scale: 1.3,
        }
    }
}

/// A small deterministic generator (SplitMix64); the attack needs reproducible pictures, not
/// secrets.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

#[derive(Debug, Clone, Copy)]
struct Identity {
    skin: [f32; 3],
    hair: [f32; 3],
    hairline: f32,
    eye_dx: f32,
    eye_r: f32,
    eye_y: f32,
    brow: f32,
    nose: f32,
    mouth_w: f32,
    mouth_y: f32,
    aspect: f32,
}

impl Identity {
    fn draw(r: &mut Rng) -> Identity {
        let tone = r.unit();
        let skin = [150.0 + 95.0 * tone, 100.0 + 90.0 * tone, 70.0 + 90.0 * tone];
        let hair = [
            r.range(10.0, 230.0),
            r.range(10.0, 150.0),
            r.range(5.0, 80.0),
        ];
        Identity {
            skin: [
                skin[0] + r.range(-15.0, 15.0),
                skin[1] + r.range(-15.0, 15.0),
                skin[2] + r.range(-15.0, 15.0),
            ],
            hair,
            hairline: r.range(0.15, 0.45),
            eye_dx: r.range(0.22, 0.38),
            eye_r: r.range(0.05, 0.1),
            eye_y: r.range(0.35, 0.48),
            brow: r.range(0.0, 0.06),
            nose: r.range(0.1, 0.25),
            mouth_w: r.range(0.15, 0.35),
            mouth_y: r.range(0.7, 0.82),
            aspect: r.range(0.72, 0.92),
        }
    }
}

/// Side of the generated pictures.
pub const SIDE: u32 = 48;

/// Renders one picture of `id` and returns it with its face box.
fn render(id: &Identity, r: &mut Rng) -> (RgbImage, BBox) {
    let bgc = [
        r.range(0.0, 255.0),
        r.range(0.0, 255.0),
        r.range(0.0, 255.0),
    ];
    let light = r.range(0.8, 1.2);
    let scale = r.range(0.9, 1.05);
    let h = 30.0 * scale;
    let w = h * id.aspect;
    let cx = SIDE as f32 * 0.5 + r.range(-2.5, 2.5);
    let cy = SIDE as f32 * 0.5 + r.range(-2.5, 2.5);
    let open = r.unit() < 0.3;
    let (x0, y0) = (cx - w / 2.0, cy - h / 2.0);
    let mut img = RgbImage::new(SIDE, SIDE);
    for py in 0..SIDE {
        for px in 0..SIDE {
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            let (u, v) = ((x - x0) / w, (y - y0) / h); // 0..1 inside the face box
            let (du, dv) = (u - 0.5, v - 0.5);
            let mut c = bgc;
            if du * du / 0.25 + dv * dv / 0.25 <= 1.0 {
                c = id.skin;
                if v < id.hairline {
                    c = id.hair;
                }
                for side in [-1.0f32, 1.0] {
                    let (ex, ey) = (0.5 + side * id.eye_dx, id.eye_y);
                    let d2 = ((u - ex) / id.eye_r).powi(2) + ((v - ey) / (id.eye_r * 0.7)).powi(2);
                    if d2 <= 1.0 {
                        c = if d2 < 0.35 {
                            [20.0, 20.0, 30.0]
                        } else {
                            [240.0, 240.0, 240.0]
                        };
                    }
                    if id.brow > 0.0
                        && (u - ex).abs() < id.eye_r * 1.3
                        && v < ey - id.eye_r
                        && v > ey - id.eye_r - id.brow
                    {
                        c = id.hair;
                    }
                }
                if (u - 0.5).abs() < 0.04 && v > id.eye_y && v < id.eye_y + id.nose {
                    c = [id.skin[0] * 0.75, id.skin[1] * 0.7, id.skin[2] * 0.7];
                }
                let mh = if open { 0.06 } else { 0.025 };
                if (u - 0.5).abs() < id.mouth_w / 2.0 && (v - id.mouth_y).abs() < mh {
                    c = [150.0, 40.0, 50.0];
                }
            }
            let n = r.range(-6.0, 6.0);
            img.put_pixel(
                px,
                py,
                image::Rgb(c.map(|ch| (ch * light + n).clamp(0.0, 255.0) as u8)),
            );
        }
    }
    (img, BBox::new(x0, y0, x0 + w, y0 + h))
}

/// Features: a 16x16 colour thumbnail scaled to 0..1.
fn features(img: &RgbImage) -> Vec<f32> {
    let t = image::imageops::resize(img, 16, 16, image::imageops::FilterType::Triangle);
    t.as_raw().iter().map(|&v| f32::from(v) / 255.0).collect()
}

/// Softmax regression by full-batch gradient descent with L2 weight decay.
fn train(x: &[Vec<f32>], y: &[usize], k: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = x[0].len();
    // Standardize.
    let n = x.len() as f32;
    let mut mean = vec![0f32; d];
    let mut sd = vec![0f32; d];
    for r in x {
        for j in 0..d {
            mean[j] += r[j] / n;
        }
    }
    for r in x {
        for j in 0..d {
            sd[j] += (r[j] - mean[j]).powi(2) / n;
        }
    }
    for s in sd.iter_mut() {
        *s = s.sqrt().max(1e-3);
    }
    let z: Vec<Vec<f32>> = x
        .iter()
        .map(|r| (0..d).map(|j| (r[j] - mean[j]) / sd[j]).collect())
        .collect();
    let mut w = vec![0f32; k * d];
    let mut b = vec![0f32; k];
    let lr = 0.5;
    for _ in 0..300 {
        let mut gw = vec![0f32; k * d];
        let mut gb = vec![0f32; k];
        for (r, &label) in z.iter().zip(y) {
            let p = softmax(&w, &b, r, k);
            for c in 0..k {
                let g = p[c] - if c == label { 1.0 } else { 0.0 };
                gb[c] += g / n;
                for j in 0..d {
                    gw[c * d + j] += g * r[j] / n;
                }
            }
        }
        for i in 0..k * d {
            w[i] -= lr * (gw[i] + 1e-3 * w[i]);
        }
        for c in 0..k {
            b[c] -= lr * gb[c];
        }
    }
    (w, b, mean, sd)
}

fn softmax(w: &[f32], b: &[f32], r: &[f32], k: usize) -> Vec<f32> {
    let d = r.len();
    let logits: Vec<f32> = (0..k)
        .map(|c| b[c] + (0..d).map(|j| w[c * d + j] * r[j]).sum::<f32>())
        .collect();
    let m = logits.iter().copied().fold(f32::MIN, f32::max);
    let e: Vec<f32> = logits.iter().map(|l| (l - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// One obfuscation: `None` is the clear picture.
pub type Obfuscation = Option<Mode>;

/// The attacker's top-1 accuracy on obfuscated test pictures, having trained on pictures
/// obfuscated the same way. Chance is `1 / identities`.
pub fn attack(cfg: &AttackConfig, obfuscation: Obfuscation) -> Result<f64> {
    let mut r = Rng(cfg.seed);
    let ids: Vec<Identity> = (0..cfg.identities)
        .map(|_| Identity::draw(&mut r))
        .collect();
    let make = |per: usize, r: &mut Rng| -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (label, id) in ids.iter().enumerate() {
            for _ in 0..per {
                let (mut img, face) = render(id, r);
                if let Some(mode) = obfuscation {
                    let region = Region {
                        bbox: face.scaled(cfg.mask_scale),
                        shape: Shape::Ellipse,
                    };
                    mask::apply(&mut img, &[region], mode, None)?;
                }
                x.push(features(&img));
                y.push(label);
            }
        }
        Ok((x, y))
    };
    let (xtr, ytr) = make(cfg.train_per_identity, &mut r)?;
    let (xte, yte) = make(cfg.test_per_identity, &mut r)?;
    let (w, b, mean, sd) = train(&xtr, &ytr, cfg.identities);
    let mut correct = 0usize;
    for (row, &label) in xte.iter().zip(&yte) {
        let z: Vec<f32> = row
            .iter()
            .enumerate()
            .map(|(j, v)| (v - mean[j]) / sd[j])
            .collect();
        let p = softmax(&w, &b, &z, cfg.identities);
        let guess = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        if guess == label {
            correct += 1;
        }
    }
    Ok(correct as f64 / yte.len().max(1) as f64)
}
