//! Decode, centre-crop, resize and normalise one sample into a CHW f32 array.
//!
//! Resizing uses fast_image_resize's convolution with Pillow's kernels (bicubic = Catmull-Rom, a = -0.5,
//! with support scaled when shrinking), so results track `PIL.Image.resize(..., BICUBIC, box=...)`.
//! The crop is a centred square of `crop_fraction` × the short side, resampled straight to `size` (the
//! fractional box is kept, as timm's crop_pct and PIL's `box=` do).

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use serde::{Deserialize, Serialize};

use super::{Sample, Source};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    Bicubic,
    Bilinear,
}

/// How pixels reach an encoder. Part of every feature cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Output side in pixels; `None` keeps the native size (raw pixels of fixed-size sets).
    pub size: Option<u32>,
    /// A centred square of this fraction of the short side is resampled to `size`.
    pub crop_fraction: f64,
    pub filter: Filter,
    /// 1 (gray) or 3 (RGB); gray images are replicated to RGB when 3.
    pub channels: u8,
    /// Per-channel mean and std applied to pixels scaled to [0, 1].
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Resample in f32 without rounding back to 8 bits (as clean-fid does with PIL's mode "F").
    #[serde(default)]
    pub float_resize: bool,
}

/// Named policies a manifest or the CLI can ask for.
pub const POLICIES: [&str; 2] = ["bigbigan", "resnet-eval"];

impl Preprocess {
    /// BigBiGAN's TF Hub colab: centre square crop of the short side, bicubic to 256, x/127.5 − 1.
    pub fn bigbigan() -> Preprocess {
        Preprocess {
            size: Some(256),
            crop_fraction: 1.0,
            filter: Filter::Bicubic,
            channels: 3,
            mean: [0.5; 3],
            std: [0.5; 3],
            float_resize: false,
        }
    }

    /// ResNet-style evaluation: centre crop of 224/256 of the short side, bicubic to 224, ImageNet mean/std.
    pub fn resnet_eval() -> Preprocess {
        Preprocess {
            size: Some(224),
            crop_fraction: 224.0 / 256.0,
            filter: Filter::Bicubic,
            channels: 3,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            float_resize: false,
        }
    }

    /// Native size, no crop, values in [0, 1]: the raw-pixel baseline.
    pub fn native(channels: u8) -> Preprocess {
        Preprocess { size: None, crop_fraction: 1.0, filter: Filter::Bicubic, channels, mean: [0.0; 3], std: [1.0; 3], float_resize: false }
    }

    pub fn policy(name: &str) -> Option<Preprocess> {
        match name {
            "bigbigan" => Some(Preprocess::bigbigan()),
            "resnet-eval" => Some(Preprocess::resnet_eval()),
            _ => None,
        }
    }

    /// A stable one-line description, used in cache keys and reports.
    pub fn describe(&self) -> String {
        let size = self.size.map(|s| s.to_string()).unwrap_or_else(|| "native".into());
        let resample = if self.float_resize { " resample=f32" } else { "" };
        format!(
            "size={size} crop={} filter={:?} channels={} mean={:?} std={:?}{resample}",
            self.crop_fraction, self.filter, self.channels, self.mean, self.std
        )
        .to_lowercase()
    }

    /// Load one sample: returns CHW values and the shape `[c, h, w]`.
    pub fn load(&self, sample: &Sample) -> Result<(Vec<f32>, [usize; 3])> {
        let (pixels, w, h, c) = self.decode(&sample.source)?;
        let to_f32 = |p: Vec<u8>| p.into_iter().map(f32::from).collect::<Vec<f32>>();
        let (pixels, w, h) = match self.size {
            // Already the requested square with nothing to crop: resampling would only add rounding.
            Some(size) if size == w && size == h && self.crop_fraction == 1.0 => (to_f32(pixels), w, h),
            Some(size) if self.float_resize => (self.resize_f32(&sample.source, to_f32(pixels), w, h, c, size)?, size, size),
            Some(size) => (to_f32(self.resize(&sample.source, pixels, w, h, c, size)?), size, size),
            None => (to_f32(pixels), w, h),
        };
        Ok((self.normalise(&pixels, c as usize), [c as usize, h as usize, w as usize]))
    }

    /// Interleaved 8-bit pixels with `channels` channels.
    fn decode(&self, source: &Source) -> Result<(Vec<u8>, u32, u32, u8)> {
        match source {
            Source::Gray { images, index } => {
                let gray = images.image(*index);
                let (w, h) = (images.cols as u32, images.rows as u32);
                let pixels = if self.channels == 3 { gray.iter().flat_map(|&g| [g, g, g]).collect() } else { gray.to_vec() };
                Ok((pixels, w, h, self.channels))
            }
            Source::File(path) => {
                let img = decode_file(path)?;
                let (w, h) = (img.width(), img.height());
                let pixels = if self.channels == 1 { img.into_luma8().into_raw() } else { img.into_rgb8().into_raw() };
                Ok((pixels, w, h, self.channels))
            }
        }
    }

    fn resize(&self, source: &Source, pixels: Vec<u8>, w: u32, h: u32, c: u8, size: u32) -> Result<Vec<u8>> {
        let pixel_type = if c == 1 { PixelType::U8 } else { PixelType::U8x3 };
        self.resample(source, pixels, (w, h), pixel_type, size)
    }

    /// Resample 0–255 values held as f32 (4 native-endian bytes each) without rounding.
    fn resize_f32(&self, source: &Source, pixels: Vec<f32>, w: u32, h: u32, c: u8, size: u32) -> Result<Vec<f32>> {
        let pixel_type = if c == 1 { PixelType::F32 } else { PixelType::F32x3 };
        let bytes: Vec<u8> = pixels.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let out = self.resample(source, bytes, (w, h), pixel_type, size)?;
        Ok(out.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn resample(&self, source: &Source, bytes: Vec<u8>, (w, h): (u32, u32), pixel_type: PixelType, size: u32) -> Result<Vec<u8>> {
        let fail = |reason: String| match source {
            Source::File(path) => Error::Decode { path: path.clone(), reason },
            Source::Gray { images, index } => Error::Decode { path: format!("IDX record {index} ({}×{})", images.cols, images.rows).into(), reason: format!("resize: {reason}") },
        };
        let src = Image::from_vec_u8(w, h, bytes, pixel_type).map_err(|e| fail(e.to_string()))?;
        let mut dst = Image::new(size, size, pixel_type);
        let side = self.crop_fraction * f64::from(w.min(h));
        let filter = match self.filter {
            Filter::Bicubic => FilterType::CatmullRom,
            Filter::Bilinear => FilterType::Bilinear,
        };
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(filter))
            .crop((f64::from(w) - side) / 2.0, (f64::from(h) - side) / 2.0, side, side);
        Resizer::new().resize(&src, &mut dst, &options).map_err(|e| fail(e.to_string()))?;
        Ok(dst.into_vec())
    }

    /// `pixels` are 0–255 values (interleaved channels).
    fn normalise(&self, pixels: &[f32], c: usize) -> Vec<f32> {
        let hw = pixels.len() / c;
        let mut out = vec![0f32; pixels.len()];
        for ch in 0..c {
            let (mean, std) = (self.mean[ch], self.std[ch]);
            let plane = &mut out[ch * hw..(ch + 1) * hw];
            for (i, v) in plane.iter_mut().enumerate() {
                *v = (pixels[i * c + ch] / 255.0 - mean) / std;
            }
        }
        out
    }
}

/// Decode an image file (JPEG incl. progressive and CMYK, PNG incl. 16-bit, alpha and gray).
pub fn decode_file(path: &std::path::Path) -> Result<image::DynamicImage> {
    let fail = |reason: String| Error::Decode { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    if bytes.is_empty() {
        return Err(fail("empty file".into()));
    }
    if is_truncated_jpeg(&bytes) {
        // zune-jpeg fills a cut-off scan with grey and reports success; PIL refuses such files too.
        return Err(fail("truncated JPEG (no end-of-image marker)".into()));
    }
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .decode()
        .map_err(|e| fail(e.to_string()))
}

/// A JPEG (SOI `FF D8`) whose data does not end with the EOI marker `FF D9` (trailing zero padding and a
/// few bytes of trailing junk are tolerated).
fn is_truncated_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let tail = &bytes[end.saturating_sub(64)..end];
    !tail.windows(2).any(|w| w == [0xFF, 0xD9])
}
