//! The SBMnet / SBI background-estimation metrics, on grey levels (MATLAB's `rgb2gray` weights):
//! AGE (average grey-level error), pEPs (share of error pixels, |error| > 20), pCEPs (share of
//! clustered error pixels: error pixels whose four neighbours are error pixels too) and PSNR.

use image::RgbImage;

use crate::error::{Result, VisionError};

/// The metrics of one estimate against its ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackgroundScores {
    /// Average grey-level error (lower is better).
    pub age: f64,
    /// Share of pixels off by more than 20 grey levels (lower is better).
    pub peps: f64,
    /// Share of error pixels whose 4-neighbours are all error pixels (lower is better).
    pub pceps: f64,
    /// Peak signal-to-noise ratio in dB (higher is better; capped at 99 for identical images).
    pub psnr: f64,
}

fn gray(img: &RgbImage) -> Vec<f64> {
    img.pixels()
        .map(|p| {
            0.2989 * f64::from(p.0[0]) + 0.5870 * f64::from(p.0[1]) + 0.1140 * f64::from(p.0[2])
        })
        .collect()
}

/// Scores `estimate` against `truth`.
pub fn score(estimate: &RgbImage, truth: &RgbImage) -> Result<BackgroundScores> {
    if estimate.dimensions() != truth.dimensions() {
        return Err(VisionError::FrameSize {
            got_w: estimate.width(),
            got_h: estimate.height(),
            want_w: truth.width(),
            want_h: truth.height(),
        });
    }
    let (w, h) = (truth.width() as usize, truth.height() as usize);
    let n = (w * h) as f64;
    let (a, b) = (gray(estimate), gray(truth));
    let err: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).collect();
    let age = err.iter().sum::<f64>() / n;
    let ep: Vec<bool> = err.iter().map(|&e| e > 20.0).collect();
    let peps = ep.iter().filter(|&&e| e).count() as f64 / n;
    let mut cep = 0usize;
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let i = y * w + x;
            if ep[i] && ep[i - 1] && ep[i + 1] && ep[i - w] && ep[i + w] {
                cep += 1;
            }
        }
    }
    let mse = err.iter().map(|e| e * e).sum::<f64>() / n;
    let psnr = if mse <= 1e-10 {
        99.0
    } else {
        (10.0 * (255.0f64 * 255.0 / mse).log10()).min(99.0)
    };
    Ok(BackgroundScores {
        age,
        peps,
        pceps: cep as f64 / n,
        psnr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        let t = RgbImage::from_pixel(10, 10, image::Rgb([100, 100, 100]));
        let s = score(&t, &t).unwrap();
        assert_eq!((s.age, s.peps, s.pceps, s.psnr), (0.0, 0.0, 0.0, 99.0));
        let mut e = t.clone();
        for y in 0..5 {
            for x in 0..10 {
                e.put_pixel(x, y, image::Rgb([150, 150, 150]));
            }
        }
        let s = score(&e, &t).unwrap();
        assert!((s.age - 25.0 * 0.9999).abs() < 0.01, "{}", s.age);
        assert!((s.peps - 0.5).abs() < 1e-9);
        // Rows 1..=3, columns 1..=8 of the erroneous half are interior error pixels: 3 x 8 = 24.
        assert!((s.pceps - 0.24).abs() < 1e-9, "{}", s.pceps);
        assert!(
            (s.psnr - 10.0 * (255.0f64 * 255.0 / (0.5 * 49.995 * 49.995)).log10()).abs() < 0.01
        );
        assert!(score(&t, &RgbImage::new(3, 3)).is_err());
    }
}
