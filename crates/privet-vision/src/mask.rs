//! Covering regions of an image: blur, pixelate, solid fill, or removal (the pixels are replaced
//! by an estimated background or by inpainting, so nothing of the object remains).

use image::RgbImage;

use crate::error::{Result, VisionError};
use crate::geom::BBox;
use crate::inpaint;

/// How a region is covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A strong blur (three box-blur passes, radius a sixth of the region's larger side).
    Blur,
    /// Blocks of the region's average colour, about eight across.
    Pixelate,
    /// Filled black. An ellipse is filled as the disc around it (same centre, diameter the
    /// box's larger side): the outline of a cover that followed the box would show the face's
    /// width-to-height ratio, which tells people apart (`reid`).
    Solid,
    /// Replaced by the background: the supplied background image where there is one (video from a
    /// static camera), otherwise inpainted from the surrounding pixels (Telea's fast marching).
    Remove,
}

impl Mode {
    /// Parses `blur`, `pixelate`, `solid` or `remove`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "blur" => Some(Mode::Blur),
            "pixelate" => Some(Mode::Pixelate),
            "solid" => Some(Mode::Solid),
            "remove" => Some(Mode::Remove),
            _ => None,
        }
    }
}

/// The shape drawn inside a region's box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The ellipse inscribed in the box (faces).
    Ellipse,
    /// The whole box (plates; also the "err on the side of covering" choice for faces).
    Rect,
}

/// One region to cover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// The box (already scaled by the mask scale).
    pub bbox: BBox,
    /// Its shape.
    pub shape: Shape,
}

impl Region {
    /// The region a solid cover fills: an ellipse becomes the disc around it (same centre,
    /// diameter the box's larger side), so the cover's outline no longer follows the box's
    /// proportions; a rectangle is unchanged (plates have standard proportions).
    pub fn outline_hidden(&self) -> Region {
        match self.shape {
            Shape::Rect => *self,
            Shape::Ellipse => {
                let (cx, cy) = self.bbox.center();
                let r = self.bbox.width().max(self.bbox.height()) * 0.5;
                Region {
                    bbox: BBox::new(cx - r, cy - r, cx + r, cy + r),
                    shape: Shape::Ellipse,
                }
            }
        }
    }
}

/// A per-pixel mask of the regions: 1 inside any region, 0 outside.
pub fn region_mask(w: u32, h: u32, regions: &[Region]) -> Vec<u8> {
    let mut mask = vec![0u8; w as usize * h as usize];
    for r in regions {
        for_each_pixel(r, w, h, |x, y| {
            mask[y as usize * w as usize + x as usize] = 1
        });
    }
    mask
}

fn for_each_pixel(r: &Region, w: u32, h: u32, mut f: impl FnMut(u32, u32)) {
    let Some((x0, y0, x1, y1)) = r.bbox.pixel_bounds(w, h) else {
        return;
    };
    let (cx, cy) = r.bbox.center();
    let (rx, ry) = (r.bbox.width() * 0.5, r.bbox.height() * 0.5);
    for y in y0..y1 {
        for x in x0..x1 {
            let inside = match r.shape {
                Shape::Rect => true,
                Shape::Ellipse => {
                    if rx <= 0.0 || ry <= 0.0 {
                        false
                    } else {
                        let dx = (x as f32 + 0.5 - cx) / rx;
                        let dy = (y as f32 + 0.5 - cy) / ry;
                        dx * dx + dy * dy <= 1.0
                    }
                }
            };
            if inside {
                f(x, y);
            }
        }
    }
}

/// Covers `regions` of `img` in place. `background` (same size as `img`) is used by
/// [`Mode::Remove`]; without it removal inpaints.
pub fn apply(
    img: &mut RgbImage,
    regions: &[Region],
    mode: Mode,
    background: Option<&RgbImage>,
) -> Result<()> {
    let (w, h) = img.dimensions();
    if let Some(bg) = background
        && bg.dimensions() != (w, h)
    {
        return Err(VisionError::FrameSize {
            got_w: bg.width(),
            got_h: bg.height(),
            want_w: w,
            want_h: h,
        });
    }
    match mode {
        Mode::Solid => {
            for r in regions {
                let r = r.outline_hidden();
                for_each_pixel(&r, w, h, |x, y| img.put_pixel(x, y, image::Rgb([0, 0, 0])));
            }
        }
        Mode::Blur => {
            for r in regions {
                blur_region(img, r);
            }
        }
        Mode::Pixelate => {
            for r in regions {
                pixelate_region(img, r);
            }
        }
        Mode::Remove => match background {
            Some(bg) => {
                for r in regions {
                    for_each_pixel(r, w, h, |x, y| img.put_pixel(x, y, *bg.get_pixel(x, y)));
                }
            }
            None => {
                let mask = region_mask(w, h, regions);
                inpaint::telea(img, &mask, 5);
            }
        },
    }
    Ok(())
}

fn blur_region(img: &mut RgbImage, r: &Region) {
    let (w, h) = img.dimensions();
    let Some((x0, y0, x1, y1)) = r.bbox.pixel_bounds(w, h) else {
        return;
    };
    let radius = ((r.bbox.width().max(r.bbox.height()) / 6.0).round() as u32).max(2);
    // Work on the box plus a margin, so the blur near the edge draws on real neighbours.
    let m = radius * 3;
    let (bx0, by0) = (x0.saturating_sub(m), y0.saturating_sub(m));
    let (bx1, by1) = ((x1 + m).min(w), (y1 + m).min(h));
    let (cw, ch) = ((bx1 - bx0) as usize, (by1 - by0) as usize);
    let mut buf: Vec<[f32; 3]> = Vec::with_capacity(cw * ch);
    for y in by0..by1 {
        for x in bx0..bx1 {
            let p = img.get_pixel(x, y).0;
            buf.push([p[0] as f32, p[1] as f32, p[2] as f32]);
        }
    }
    let mut tmp = buf.clone();
    for _ in 0..3 {
        box_pass(&buf, &mut tmp, cw, ch, radius as usize, true);
        box_pass(&tmp, &mut buf, cw, ch, radius as usize, false);
    }
    for_each_pixel(r, w, h, |x, y| {
        let v = buf[(y - by0) as usize * cw + (x - bx0) as usize];
        img.put_pixel(
            x,
            y,
            image::Rgb([v[0].round() as u8, v[1].round() as u8, v[2].round() as u8]),
        );
    });
}

/// One box-filter pass along rows (`horizontal`) or columns, edges clamped.
fn box_pass(
    src: &[[f32; 3]],
    dst: &mut [[f32; 3]],
    w: usize,
    h: usize,
    r: usize,
    horizontal: bool,
) {
    let (n, lines) = if horizontal { (w, h) } else { (h, w) };
    let idx = |line: usize, i: usize| {
        if horizontal {
            line * w + i
        } else {
            i * w + line
        }
    };
    let norm = 1.0 / (2 * r + 1) as f32;
    for line in 0..lines {
        let at = |i: isize| src[idx(line, i.clamp(0, n as isize - 1) as usize)];
        let mut acc = [0f32; 3];
        for i in -(r as isize)..=(r as isize) {
            let p = at(i);
            for c in 0..3 {
                acc[c] += p[c];
            }
        }
        for i in 0..n {
            dst[idx(line, i)] = [acc[0] * norm, acc[1] * norm, acc[2] * norm];
            let add = at(i as isize + r as isize + 1);
            let sub = at(i as isize - r as isize);
            for c in 0..3 {
                acc[c] += add[c] - sub[c];
            }
        }
    }
}

fn pixelate_region(img: &mut RgbImage, r: &Region) {
    let (w, h) = img.dimensions();
    let Some((x0, y0, x1, y1)) = r.bbox.pixel_bounds(w, h) else {
        return;
    };
    let block = ((r.bbox.width().max(r.bbox.height()) / 8.0).round() as u32).max(2);
    let mut by = y0;
    while by < y1 {
        let mut bx = x0;
        let ey = (by + block).min(y1);
        while bx < x1 {
            let ex = (bx + block).min(x1);
            let mut sum = [0u64; 3];
            for y in by..ey {
                for x in bx..ex {
                    let p = img.get_pixel(x, y).0;
                    for c in 0..3 {
                        sum[c] += u64::from(p[c]);
                    }
                }
            }
            let n = u64::from((ex - bx) * (ey - by)).max(1);
            let avg = image::Rgb([(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]);
            let cell = Region {
                bbox: BBox::new(bx as f32, by as f32, ex as f32, ey as f32),
                shape: Shape::Rect,
            };
            for_each_pixel(&cell, w, h, |x, y| {
                if inside(r, x, y) {
                    img.put_pixel(x, y, avg);
                }
            });
            bx = ex;
        }
        by = ey;
    }
}

fn inside(r: &Region, x: u32, y: u32) -> bool {
    match r.shape {
        Shape::Rect => true,
        Shape::Ellipse => {
            let (cx, cy) = r.bbox.center();
            let (rx, ry) = (r.bbox.width() * 0.5, r.bbox.height() * 0.5);
            if rx <= 0.0 || ry <= 0.0 {
                return false;
            }
            let dx = (x as f32 + 0.5 - cx) / rx;
            let dy = (y as f32 + 0.5 - cy) / ry;
            dx * dx + dy * dy <= 1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripes(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, _| {
            if x % 2 == 0 {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([0, 0, 0])
            }
        })
    }

    fn region() -> Region {
        Region {
            bbox: BBox::new(10.0, 10.0, 40.0, 40.0),
            shape: Shape::Rect,
        }
    }

    #[test]
    fn each_mode_changes_the_region_and_nothing_outside_it() {
        for mode in [Mode::Blur, Mode::Pixelate, Mode::Solid, Mode::Remove] {
            let orig = stripes(60, 50);
            let mut img = orig.clone();
            apply(&mut img, &[region()], mode, None).unwrap();
            for (x, y, p) in img.enumerate_pixels() {
                let inside = (10..40).contains(&x) && (10..40).contains(&y);
                if !inside {
                    assert_eq!(
                        p,
                        orig.get_pixel(x, y),
                        "{mode:?} changed ({x},{y}) outside the region"
                    );
                }
            }
            if mode == Mode::Remove {
                continue; // inpainting may well continue stripes; see the test below
            }
            // Inside, the high-contrast stripes are gone: neighbours differ by little.
            let max_step = (12..38)
                .map(|x| {
                    (img.get_pixel(x, 25).0[0] as i32 - img.get_pixel(x + 1, 25).0[0] as i32).abs()
                })
                .max()
                .unwrap();
            assert!(
                max_step < 128,
                "{mode:?}: stripes survive (step {max_step})"
            );
        }
    }

    #[test]
    fn removal_without_a_background_inpaints_the_object_away() {
        let mut img = RgbImage::from_fn(60, 50, |x, y| {
            image::Rgb([100 + x as u8, 100 + y as u8, 100])
        });
        for y in 15..35 {
            for x in 15..35 {
                img.put_pixel(x, y, image::Rgb([255, 0, 0]));
            }
        }
        apply(&mut img, &[region()], Mode::Remove, None).unwrap();
        for y in 10..40 {
            for x in 10..40 {
                let p = img.get_pixel(x, y).0;
                assert!(
                    p[0].abs_diff(100 + x as u8) < 10 && p[1].abs_diff(100 + y as u8) < 10,
                    "({x},{y}) = {p:?}"
                );
            }
        }
    }

    #[test]
    fn removal_with_a_background_copies_the_background() {
        let mut img = stripes(60, 50);
        let bg = RgbImage::from_pixel(60, 50, image::Rgb([1, 2, 3]));
        apply(&mut img, &[region()], Mode::Remove, Some(&bg)).unwrap();
        assert_eq!(img.get_pixel(20, 20), &image::Rgb([1, 2, 3]));
        let small = RgbImage::new(5, 5);
        assert!(apply(&mut img, &[region()], Mode::Remove, Some(&small)).is_err());
    }

    /// A solid cover does not show the box's proportions: a wide ellipse is filled as the
    /// disc around it, above and below the box too; the other modes keep to the ellipse.
    #[test]
    fn a_solid_ellipse_is_filled_as_the_disc_around_it() {
        let r = Region {
            bbox: BBox::new(10.0, 20.0, 40.0, 30.0),
            shape: Shape::Ellipse,
        };
        let hidden = r.outline_hidden();
        assert_eq!(hidden.bbox, BBox::new(10.0, 10.0, 40.0, 40.0));
        let mut img = stripes(60, 50);
        apply(&mut img, &[r], Mode::Solid, None).unwrap();
        // Even columns of the stripes are white.
        assert_eq!(
            img.get_pixel(24, 12).0,
            [0, 0, 0],
            "above the box, inside the disc"
        );
        assert_eq!(
            img.get_pixel(24, 38).0,
            [0, 0, 0],
            "below the box, inside the disc"
        );
        assert_eq!(img.get_pixel(10, 10).0, [255, 255, 255], "outside the disc");
        let mut blurred = stripes(60, 50);
        apply(&mut blurred, &[r], Mode::Blur, None).unwrap();
        assert_eq!(blurred.get_pixel(24, 12).0, [255, 255, 255]);
        let plate = Region {
            shape: Shape::Rect,
            ..r
        };
        assert_eq!(plate.outline_hidden(), plate);
    }

    #[test]
    fn an_ellipse_leaves_the_box_corners() {
        let mut img = stripes(60, 50);
        let r = Region {
            shape: Shape::Ellipse,
            ..region()
        };
        apply(&mut img, &[r], Mode::Solid, None).unwrap();
        assert_eq!(img.get_pixel(25, 25).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(10, 10).0, [255, 255, 255]);
    }
}
