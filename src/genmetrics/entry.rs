//! A run file's `[[generation]]` entries: FID of a generator's samples against a reference set (and IS
//! when a classifier is named), recorded in the results JSON for the Table 1 and Table 3 layouts.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::generator::{Generator, Sampling};
use super::{dataset_statistics, frechet_distance, inception_score, is_label, GENERATOR_SAMPLES, IS_SPLITS};
use crate::config::{GenerationConfig, FID_INCEPTION_MANIFEST};
use crate::data::{Dataset, DatasetKind, DatasetSpec};
use crate::encoder::{self, Precision};
use crate::error::Result;
use crate::features::ExtractOptions;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsResult {
    /// "IS" for TF Inception's 1008 logits, else `IS* (<classifier> logits, non-standard)`.
    pub label: String,
    pub mean: f64,
    pub std: f64,
    pub splits: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerationResult {
    pub variant: String,
    pub generator: String,
    pub generator_sha256: String,
    pub samples: usize,
    pub seed: u64,
    pub truncation: Option<f32>,
    pub reference: String,
    pub reference_n: usize,
    pub fid: f64,
    /// The FID network and the resize method its statistics used.
    pub inception: String,
    pub resize: String,
    pub is: Option<IsResult>,
    /// Train-val top-1 of the probe row named by `cls_row` (Table 1's "Cls.").
    pub cls: Option<f64>,
    pub cls_row: Option<String>,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// Score one entry; `default_reference` is the run's dataset spec (its val split is the reference).
pub fn evaluate(cfg: &GenerationConfig, default_reference: &str, opts: &ExtractOptions) -> Result<GenerationResult> {
    let start = Instant::now();
    let device = tch::Device::cuda_if_available();
    let generator = Generator::open(Path::new(&cfg.generator), device)?;
    let inception_path = cfg.inception.clone().unwrap_or_else(|| FID_INCEPTION_MANIFEST.to_string());
    let mut inception = encoder::open(&inception_path, DatasetKind::Folder, Precision::F32)?;
    let sampling = Sampling { samples: cfg.samples.unwrap_or(GENERATOR_SAMPLES), seed: cfg.seed, truncation: cfg.truncation, batch_size: opts.batch_size };

    let reference_arg = cfg.reference.clone().unwrap_or_else(|| format!("{default_reference}@val"));
    let (spec, split) = DatasetSpec::parse_with_split(&reference_arg, "val")?;
    let reference = Dataset::open(&spec, &split)?.subset(cfg.reference_limit, cfg.seed);
    let (reference_stats, _, _) = dataset_statistics(inception.as_mut(), &reference, opts)?;
    let samples = generator.statistics(inception.as_mut(), &sampling)?;
    let fid = frechet_distance(&samples, &reference_stats)?;
    let warnings: Vec<String> = [("samples", samples.warning()), ("reference", reference_stats.warning())]
        .into_iter()
        .filter_map(|(which, w)| w.map(|w| format!("{which}: {w}")))
        .collect();

    let is = match &cfg.is_classifier {
        None => None,
        Some(path) => {
            let mut classifier = encoder::open(path, DatasetKind::Folder, Precision::F32)?;
            let logits = generator.logits(classifier.as_mut(), &sampling)?;
            let (mean, std) = inception_score(logits.view(), IS_SPLITS);
            Some(IsResult { label: is_label(classifier.name(), logits.ncols()), mean, std, splits: IS_SPLITS })
        }
    };
    Ok(GenerationResult {
        variant: cfg.variant.clone(),
        generator: cfg.generator.clone(),
        generator_sha256: generator.manifest.weights_sha256.clone(),
        samples: sampling.samples,
        seed: cfg.seed,
        truncation: cfg.truncation,
        reference: reference.describe(),
        reference_n: reference.len(),
        fid,
        inception: inception.name().to_string(),
        resize: inception.preprocess().describe(),
        is,
        cls: None,
        cls_row: cfg.cls_row.clone(),
        warnings,
        seconds: start.elapsed().as_secs_f64(),
    })
}
