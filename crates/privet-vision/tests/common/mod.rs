//! Shared helpers for the integration tests: the committed test images (see data/README.md) and
//! composites with exact ground truth.

#![allow(dead_code, clippy::unwrap_used)]

use image::RgbImage;
use privet_vision::BBox;
use privet_vision::imageio::{SizeLimits, decode};

pub fn load(name: &str) -> RgbImage {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    decode(&std::fs::read(&p).unwrap(), &SizeLimits::default()).unwrap()
}

/// The astronaut's head (public domain, NASA) and its face box inside the crop.
pub fn head() -> (RgbImage, BBox) {
    (
        load("astronaut_head.jpg"),
        BBox::new(37.0, 46.0, 132.0, 141.0),
    )
}

/// Pastes `sprite` scaled by `scale` with its top-left at (x, y), through an elliptical mask
/// around the face (so hair and the face come along, the crop's corners do not). Returns the
/// face box in `dst`'s coordinates.
pub fn paste_head(dst: &mut RgbImage, scale: f32, x: i32, y: i32) -> BBox {
    let (h, face) = head();
    let (w, hh) = (
        (h.width() as f32 * scale) as u32,
        (h.height() as f32 * scale) as u32,
    );
    let s = image::imageops::resize(&h, w, hh, image::imageops::FilterType::Triangle);
    let (cx, cy) = (w as f32 * 0.5, hh as f32 * 0.52);
    let (rx, ry) = (w as f32 * 0.47, hh as f32 * 0.5);
    for sy in 0..hh {
        for sx in 0..w {
            let dx = (sx as f32 + 0.5 - cx) / rx;
            let dy = (sy as f32 + 0.5 - cy) / ry;
            if dx * dx + dy * dy > 1.0 {
                continue;
            }
            let (tx, ty) = (x + sx as i32, y + sy as i32);
            if tx >= 0 && ty >= 0 && (tx as u32) < dst.width() && (ty as u32) < dst.height() {
                dst.put_pixel(tx as u32, ty as u32, *s.get_pixel(sx, sy));
            }
        }
    }
    BBox::new(
        x as f32 + face.x0 * scale,
        y as f32 + face.y0 * scale,
        x as f32 + face.x1 * scale,
        y as f32 + face.y1 * scale,
    )
}

/// Share of the pixels inside `b`'s inscribed ellipse that are (near) black.
pub fn blacked(img: &RgbImage, b: &BBox) -> f32 {
    let (cx, cy) = b.center();
    let (rx, ry) = (b.width() * 0.5, b.height() * 0.5);
    let (mut n, mut black) = (0u32, 0u32);
    let Some((x0, y0, x1, y1)) = b.pixel_bounds(img.width(), img.height()) else {
        return 0.0;
    };
    for y in y0..y1 {
        for x in x0..x1 {
            let dx = (x as f32 + 0.5 - cx) / rx;
            let dy = (y as f32 + 0.5 - cy) / ry;
            if dx * dx + dy * dy <= 1.0 {
                n += 1;
                if img.get_pixel(x, y).0.iter().all(|&v| v < 8) {
                    black += 1;
                }
            }
        }
    }
    if n == 0 { 0.0 } else { black as f32 / n as f32 }
}
