//! Reconstruction grids like the paper's Figure 2: real images x in the top row, G(E(x)) below, for an
//! encoder that outputs `z_mean` or `z_sample` and a generator with a latent of the same width.

use std::path::Path;

use tch::{Kind, Tensor};

use super::generator::Generator;
use crate::data::Dataset;
use crate::encoder::{Batch, Encoder};
use crate::error::{Error, Result};

/// Pixels between cells of the grid.
const PAD: u32 = 2;

/// Which encoder output feeds the generator: the posterior mean if present, else its sample.
pub fn latent_output(encoder: &dyn Encoder) -> Option<&'static str> {
    let outputs = encoder.outputs();
    ["z_mean", "z_sample"].into_iter().find(|name| outputs.iter().any(|o| o == name))
}

/// Encode the first `n` images of `dataset`, decode them with `generator`, and write a 2 × n PNG grid
/// (x above G(E(x)), both at the generator's output size). Returns the grid's size in pixels.
pub fn reconstruction_grid(encoder: &mut dyn Encoder, generator: &Generator, dataset: &Dataset, n: usize, out: &Path) -> Result<(u32, u32)> {
    let latent = latent_output(encoder).ok_or_else(|| Error::EncoderOutput { encoder: encoder.name().into(), reason: "outputs neither z_mean nor z_sample; reconstructions need one".into() })?;
    let samples = &dataset.samples[..n.min(dataset.len())];
    if samples.is_empty() {
        return Err(Error::Dataset { path: dataset.spec.path.clone(), reason: format!("{} has no images to reconstruct", dataset.describe()) });
    }
    let pre = encoder.preprocess().clone();
    let mut pixels = Vec::new();
    let mut shape = [0usize; 3];
    for s in samples {
        let (values, sh) = pre.load(s)?;
        pixels.extend(values);
        shape = sh;
    }
    let n = samples.len();
    let features = encoder.encode(&Batch { pixels: pixels.clone(), n, shape })?;
    let z = features.iter().find(|f| f.name == latent).ok_or_else(|| Error::EncoderOutput { encoder: encoder.name().into(), reason: format!("gave no `{latent}`") })?;
    if z.width != generator.manifest.latent {
        return Err(Error::Manifest {
            path: generator.manifest.weights.clone(),
            reason: format!("the generator's latent is {}, the encoder's `{latent}` has width {}; pair an encoder and generator trained together", generator.manifest.latent, z.width),
        });
    }
    let recon = generator.generate(&z.values, n)?; // [n, 3, H, W], 0–255
    let (h, w) = (recon.size()[2], recon.size()[3]);
    // Undo the encoder's normalisation, replicate gray to RGB and bring x to the generator's size.
    let [c, ih, iw] = shape.map(|v| v as i64);
    let x = Tensor::f_from_slice(&pixels)?.f_view([n as i64, c, ih, iw])?;
    let mean = Tensor::f_from_slice(&pre.mean[..c as usize])?.f_view([1, c, 1, 1])?;
    let std = Tensor::f_from_slice(&pre.std[..c as usize])?.f_view([1, c, 1, 1])?;
    let x = x.f_mul(&std)?.f_add(&mean)?.f_mul_scalar(255.0)?.f_expand([n as i64, 3, ih, iw], false)?;
    let x = x.f_upsample_bilinear2d([h, w], false, None, None)?;
    let grid = Tensor::f_stack(&[x, recon], 0)?.f_clamp(0.0, 255.0)?.f_round()?.f_to_kind(Kind::Uint8)?; // [2, n, 3, H, W]
    let (cw, ch) = (w as u32, h as u32);
    let (gw, gh) = (n as u32 * (cw + PAD) + PAD, 2 * (ch + PAD) + PAD);
    let mut img = image::RgbImage::from_pixel(gw, gh, image::Rgb([255, 255, 255]));
    let bytes = Vec::<u8>::try_from(&grid.f_permute([0, 1, 3, 4, 2])?.f_contiguous()?.f_flatten(0, -1)?)?;
    for row in 0..2u32 {
        for col in 0..n as u32 {
            for y in 0..ch {
                for x in 0..cw {
                    let at = ((((row * n as u32 + col) * ch + y) * cw + x) * 3) as usize;
                    img.put_pixel(PAD + col * (cw + PAD) + x, PAD + row * (ch + PAD) + y, image::Rgb([bytes[at], bytes[at + 1], bytes[at + 2]]));
                }
            }
        }
    }
    img.save(out).map_err(|e| Error::Io { path: out.into(), source: std::io::Error::other(e.to_string()) })?;
    Ok((gw, gh))
}
