//! Inpainting by Telea's fast marching method (A. Telea, "An Image Inpainting Technique Based on
//! the Fast Marching Method", J. Graphics Tools 9(1), 2004).
//!
//! The hole is filled from its edge inwards in order of distance (the fast marching method solves
//! the eikonal equation |∇T| = 1 from the boundary); each pixel becomes a weighted mean of the known
//! pixels within `radius`, weighted as in the paper by direction (along the normal of the level
//! set), distance and level-set closeness. This is the zeroth-order form of the paper's estimate
//! (the gradient correction term is left out), which smooths slightly more.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use image::RgbImage;

const KNOWN: u8 = 0;
const BAND: u8 = 1;
const INSIDE: u8 = 2;
/// Largest first-order correction per source pixel, in grey levels.
const MAX_CORRECTION: f32 = 24.0;

/// Grows a 0/1 mask by `r` pixels (square structuring element).
pub fn dilate(mask: &[u8], w: u32, h: u32, r: u32) -> Vec<u8> {
    let (w, h, r) = (w as usize, h as usize, r as usize);
    // Separable: rows, then columns.
    let mut rows = vec![0u8; mask.len()];
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] != 0 {
                for xx in x.saturating_sub(r)..=(x + r).min(w - 1) {
                    rows[y * w + xx] = 1;
                }
            }
        }
    }
    let mut out = vec![0u8; mask.len()];
    for y in 0..h {
        for x in 0..w {
            if rows[y * w + x] != 0 {
                for yy in y.saturating_sub(r)..=(y + r).min(h - 1) {
                    out[yy * w + x] = 1;
                }
            }
        }
    }
    out
}

/// Fills the pixels where `mask` is non-zero from the rest of the image. `mask` has one byte per
/// pixel in row order. A mask that covers the whole image leaves it unchanged.
pub fn telea(img: &mut RgbImage, mask: &[u8], radius: u32) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if mask.len() != w * h || !mask.contains(&0) {
        return;
    }
    let mut flag: Vec<u8> = mask
        .iter()
        .map(|&m| if m != 0 { INSIDE } else { KNOWN })
        .collect();
    let mut t = vec![f32::INFINITY; w * h];
    let mut heap: BinaryHeap<Reverse<(u32, usize)>> = BinaryHeap::new();
    let key = |v: f32| v.to_bits(); // T >= 0, so the bit pattern orders like the value.
    let neighbours = |i: usize| {
        let (x, y) = (i % w, i / w);
        let mut n = [usize::MAX; 4];
        if x > 0 {
            n[0] = i - 1;
        }
        if x + 1 < w {
            n[1] = i + 1;
        }
        if y > 0 {
            n[2] = i - w;
        }
        if y + 1 < h {
            n[3] = i + w;
        }
        n
    };
    for i in 0..w * h {
        if flag[i] == KNOWN {
            t[i] = 0.0;
            if neighbours(i)
                .iter()
                .any(|&n| n != usize::MAX && flag[n] == INSIDE)
            {
                flag[i] = BAND;
                heap.push(Reverse((key(0.0), i)));
            }
        }
    }
    let mut pix: Vec<[f32; 3]> = img
        .pixels()
        .map(|p| [p.0[0] as f32, p.0[1] as f32, p.0[2] as f32])
        .collect();
    let rad = radius.max(1) as isize;
    while let Some(Reverse((_, i))) = heap.pop() {
        if flag[i] == KNOWN {
            continue;
        }
        flag[i] = KNOWN;
        for q in neighbours(i) {
            if q == usize::MAX || flag[q] != INSIDE {
                continue;
            }
            let (qx, qy) = ((q % w) as isize, (q / w) as isize);
            // Distance by the eikonal update from the four pairs of neighbours.
            let at = |x: isize, y: isize| -> Option<usize> {
                if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                    None
                } else {
                    Some(y as usize * w + x as usize)
                }
            };
            let mut tq = f32::INFINITY;
            for (a, b) in [
                ((-1, 0), (0, -1)),
                ((1, 0), (0, -1)),
                ((-1, 0), (0, 1)),
                ((1, 0), (0, 1)),
            ] {
                let ta = at(qx + a.0, qy + a.1)
                    .filter(|&j| flag[j] == KNOWN)
                    .map(|j| t[j]);
                let tb = at(qx + b.0, qy + b.1)
                    .filter(|&j| flag[j] == KNOWN)
                    .map(|j| t[j]);
                let s = match (ta, tb) {
                    (Some(t1), Some(t2)) => {
                        let d = t1 - t2;
                        if d.abs() >= 1.0 {
                            1.0 + t1.min(t2)
                        } else {
                            let r = (2.0 - d * d).sqrt();
                            (t1 + t2 + r) * 0.5
                        }
                    }
                    (Some(t1), None) => 1.0 + t1,
                    (None, Some(t2)) => 1.0 + t2,
                    (None, None) => f32::INFINITY,
                };
                tq = tq.min(s);
            }
            t[q] = tq;
            // Normal of the level set at q (gradient of T by central differences over known pixels).
            let grad = |d: (isize, isize)| {
                let f = at(qx + d.0, qy + d.1)
                    .filter(|&j| flag[j] != INSIDE)
                    .map(|j| t[j]);
                let b = at(qx - d.0, qy - d.1)
                    .filter(|&j| flag[j] != INSIDE)
                    .map(|j| t[j]);
                match (f, b) {
                    (Some(f), Some(b)) => (f - b) * 0.5,
                    (Some(f), None) => f - tq,
                    (None, Some(b)) => tq - b,
                    (None, None) => 0.0,
                }
            };
            let (gx, gy) = (grad((1, 0)), grad((0, 1)));
            // Image gradient at a known pixel, from its known neighbours.
            let igrad = |j: usize, c: usize| -> (f32, f32) {
                let (jx, jy) = ((j % w) as isize, (j / w) as isize);
                let g1 = |d: (isize, isize)| {
                    let f = at(jx + d.0, jy + d.1)
                        .filter(|&k| flag[k] != INSIDE)
                        .map(|k| pix[k][c]);
                    let b = at(jx - d.0, jy - d.1)
                        .filter(|&k| flag[k] != INSIDE)
                        .map(|k| pix[k][c]);
                    match (f, b) {
                        (Some(f), Some(b)) => (f - b) * 0.5,
                        (Some(f), None) => f - pix[j][c],
                        (None, Some(b)) => pix[j][c] - b,
                        (None, None) => 0.0,
                    }
                };
                (g1((1, 0)), g1((0, 1)))
            };
            let mut acc = [0f32; 3];
            let mut wsum = 0f32;
            for dy in -rad..=rad {
                for dx in -rad..=rad {
                    let Some(j) = at(qx + dx, qy + dy) else {
                        continue;
                    };
                    if flag[j] == INSIDE || (dx == 0 && dy == 0) {
                        continue;
                    }
                    let d2 = (dx * dx + dy * dy) as f32;
                    if d2 > (rad * rad) as f32 {
                        continue;
                    }
                    let len = d2.sqrt();
                    // Vector from the source pixel to q.
                    let (vx, vy) = (-dx as f32, -dy as f32);
                    let dir = ((vx * gx + vy * gy) / len).abs().max(1e-6);
                    let dst = 1.0 / d2;
                    let lev = 1.0 / (1.0 + (t[j] - tq).abs());
                    let wgt = dir * dst * lev;
                    for c in 0..3 {
                        // First-order estimate: the source value carried along its gradient.
                        // The correction is bounded, so a textured edge (steep, noisy gradients)
                        // cannot throw the estimate far off.
                        let (gx, gy) = igrad(j, c);
                        let corr = (gx * vx + gy * vy).clamp(-MAX_CORRECTION, MAX_CORRECTION);
                        acc[c] += wgt * (pix[j][c] + corr);
                    }
                    wsum += wgt;
                }
            }
            if wsum > 0.0 {
                pix[q] = [acc[0] / wsum, acc[1] / wsum, acc[2] / wsum];
            }
            flag[q] = BAND;
            heap.push(Reverse((key(tq), q)));
        }
    }
    for (p, v) in img.pixels_mut().zip(pix) {
        p.0 = [
            v[0].round().clamp(0.0, 255.0) as u8,
            v[1].round().clamp(0.0, 255.0) as u8,
            v[2].round().clamp(0.0, 255.0) as u8,
        ];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_in_a_smooth_gradient_is_filled_close_to_the_truth() {
        let truth = RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 4) as u8, 100])
        });
        let mut img = truth.clone();
        let mut mask = vec![0u8; 64 * 48];
        for y in 15..33 {
            for x in 20..44 {
                mask[y * 64 + x] = 1;
                img.put_pixel(x as u32, y as u32, image::Rgb([255, 0, 255]));
            }
        }
        telea(&mut img, &mask, 5);
        let mut worst = 0i32;
        for (a, b) in img.pixels().zip(truth.pixels()) {
            for c in 0..3 {
                worst = worst.max((a.0[c] as i32 - b.0[c] as i32).abs());
            }
        }
        // A linear ramp is reproduced to within a few grey levels (no magenta survives).
        assert!(worst <= 12, "max error {worst}");
    }

    #[test]
    fn pixels_outside_the_mask_are_untouched_and_a_full_mask_is_a_no_op() {
        let orig = RgbImage::from_fn(10, 10, |x, y| image::Rgb([x as u8 * 20, y as u8 * 20, 0]));
        let mut img = orig.clone();
        let mut mask = vec![0u8; 100];
        mask[55] = 1;
        telea(&mut img, &mask, 3);
        for i in 0..100u32 {
            if i != 55 {
                assert_eq!(
                    img.get_pixel(i % 10, i / 10),
                    orig.get_pixel(i % 10, i / 10)
                );
            }
        }
        let mut img2 = orig.clone();
        telea(&mut img2, &[1u8; 100], 3);
        assert_eq!(img2, orig);
    }
}
