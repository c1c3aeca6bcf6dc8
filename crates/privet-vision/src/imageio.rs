//! Decoding and encoding still images (JPEG, PNG) with size limits.
//!
//! The limits are checked on the header's dimensions before any pixel buffer is allocated, so a
//! small file that claims a huge image (a decompression bomb) is refused cheaply.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::{Result, VisionError};

/// The largest images and frames accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Largest width x height.
    pub max_pixels: u64,
    /// Largest width or height.
    pub max_side: u32,
}

impl Default for SizeLimits {
    /// 64 megapixels, at most 16,384 per side.
    fn default() -> Self {
        SizeLimits {
            max_pixels: 64_000_000,
            max_side: 16_384,
        }
    }
}

impl SizeLimits {
    /// Refuses `w` x `h` if it exceeds the limits or is empty.
    pub fn check(&self, w: u32, h: u32) -> Result<()> {
        if w == 0 || h == 0 {
            return Err(VisionError::Decode(format!("empty image ({w}x{h})")));
        }
        if w > self.max_side || h > self.max_side || u64::from(w) * u64::from(h) > self.max_pixels {
            return Err(VisionError::TooLarge {
                width: w.into(),
                height: h.into(),
                max_pixels: self.max_pixels,
                max_side: self.max_side.into(),
            });
        }
        Ok(())
    }
}

/// The still-image formats privet reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StillFormat {
    /// JPEG (written at quality 92).
    Jpeg,
    /// PNG.
    Png,
}

impl StillFormat {
    /// The format for a file name's extension (`jpg`, `jpeg`, `png`, any case).
    pub fn from_extension(ext: &str) -> Option<StillFormat> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(StillFormat::Jpeg),
            "png" => Some(StillFormat::Png),
            _ => None,
        }
    }
}

/// Decodes a JPEG or PNG (detected from its bytes) into 8-bit RGB, refusing images beyond `limits`.
/// Metadata (EXIF, comments) is not carried over.
pub fn decode(bytes: &[u8], limits: &SizeLimits) -> Result<RgbImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::Decode(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Jpeg) | Some(ImageFormat::Png) => {}
        Some(f) => {
            return Err(VisionError::Decode(format!(
                "unsupported format {f:?} (JPEG or PNG only)"
            )));
        }
        None => return Err(VisionError::Decode("not a JPEG or PNG file".into())),
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| VisionError::Decode(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    limits.check(w, h)?;
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    // Room for a 16-bit RGBA decode of the largest accepted image.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    decoder
        .set_limits(l)
        .map_err(|e| VisionError::Decode(e.to_string()))?;
    let img = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| VisionError::Decode(e.to_string()))?;
    Ok(img.to_rgb8())
}

/// Encodes an RGB image.
pub fn encode(img: &RgbImage, format: StillFormat) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        StillFormat::Png => {
            img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
                .map_err(|e| VisionError::Encode(e.to_string()))?;
        }
        StillFormat::Jpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92);
            img.write_with_encoder(enc)
                .map_err(|e| VisionError::Encode(e.to_string()))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_and_garbage_is_an_error() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 7]));
        let png = encode(&img, StillFormat::Png).unwrap();
        assert_eq!(decode(&png, &SizeLimits::default()).unwrap(), img);
        assert!(matches!(
            decode(b"not an image", &SizeLimits::default()),
            Err(VisionError::Decode(_))
        ));
        assert!(matches!(
            decode(&png[..png.len() / 2], &SizeLimits::default()),
            Err(VisionError::Decode(_))
        ));
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn a_header_claiming_a_huge_image_is_refused_before_decoding() {
        // A valid PNG whose header (with a correct CRC) claims 60000 x 60000 pixels.
        let mut png = encode(&RgbImage::new(1, 1), StillFormat::Png).unwrap();
        png[16..20].copy_from_slice(&60_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&60_000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&png, &SizeLimits::default());
        assert!(
            matches!(err, Err(VisionError::TooLarge { width: 60_000, .. })),
            "{err:?}"
        );
        let small = SizeLimits {
            max_pixels: 10,
            max_side: 100,
        };
        let ok = encode(&RgbImage::new(4, 4), StillFormat::Png).unwrap();
        assert!(matches!(
            decode(&ok, &small),
            Err(VisionError::TooLarge { .. })
        ));
    }
}
