//! A run file's `[[generation]]` entries: FID of a generator's samples against a reference set (and IS
//! when a classifier is named), recorded in the results JSON for the Table 1 and Table 3 layouts.

use std::path::Path;
use std::time::Instant;

use crate::context::{ExecutionContext, Precision};
use crate::data::{Dataset, DatasetSpec, HashOptions};
use crate::encoder;
use crate::error::Result;
use crate::features::cache::Storage;
use crate::features::extract::cache_key;
use crate::features::ExtractOptions;
use crate::genmetrics::generator::{Generator, Sampling};
use crate::genmetrics::{dataset_statistics, frechet_distance, inception_score, is_label, GenerationResult, IsResult, GENERATOR_SAMPLES, IS_SPLITS};
use crate::protocol::FID_INCEPTION_MANIFEST;
use crate::runfile::GenerationConfig;

use super::memo::Memo;

/// Scoring networks read images as RGB.
const RGB: u8 = 3;

/// Score one entry; `default_reference` is the run's dataset spec (its val split is the reference).
/// A finished entry with the same inputs (generator weights, sampling, reference, scoring networks) is
/// taken from `memo` instead of being computed again; its names are this run file's.
pub fn evaluate(cfg: &GenerationConfig, default_reference: &str, opts: &ExtractOptions, ctx: &ExecutionContext, memo: &Memo) -> Result<GenerationResult> {
    let start = Instant::now();
    let generator = Generator::open(Path::new(&cfg.generator), ctx.device)?;
    crate::tfhub::verify::require_generator(&generator)?;
    // FID and IS are defined in f32: the scoring networks never run in half precision.
    let scoring = ctx.with_precision(Precision::F32);
    let inception_path = cfg.inception.clone().unwrap_or_else(|| FID_INCEPTION_MANIFEST.to_string());
    let mut inception = encoder::open(&inception_path, RGB, &scoring)?;
    let sampling = Sampling { samples: cfg.samples.unwrap_or(GENERATOR_SAMPLES), seed: cfg.seed, truncation: cfg.truncation, batch_size: opts.batch_size };

    let reference_arg = cfg.reference.clone().unwrap_or_else(|| format!("{default_reference}@val"));
    let (spec, split) = DatasetSpec::parse_with_split(&reference_arg, "val")?;
    let reference = Dataset::open(&spec, &split, &HashOptions::under(&opts.cache_dir, false))?.subset(cfg.reference_limit, cfg.seed);
    let mut classifier = cfg.is_classifier.as_ref().map(|path| encoder::open(path, RGB, &scoring)).transpose()?;

    let mut inputs = Memo::common_inputs(ctx);
    inputs["generation"] = serde_json::json!({
        "generator_sha256": generator.manifest.weights_sha256, "samples": sampling.samples, "seed": cfg.seed,
        "truncation": cfg.truncation,
        // The FID statistics' cache key holds the Inception's weights, the reference's content and subset, and the resize.
        "reference_stats": cache_key(inception.as_ref(), &reference, "fid-stats", Storage::F32).file_name(),
        "is_classifier": classifier.as_ref().map(|c| c.weights_sha256().to_string()),
    });
    if let Some(done) = memo.get::<GenerationResult>("generation", &inputs) {
        return Ok(GenerationResult { variant: cfg.variant.clone(), generator: cfg.generator.clone(), cls_row: cfg.cls_row.clone(), cls: None, reused: true, ..done });
    }

    let (reference_stats, _, _) = dataset_statistics(inception.as_mut(), &reference, opts)?;
    let samples = generator.statistics(inception.as_mut(), &sampling)?;
    let fid = frechet_distance(&samples, &reference_stats)?;
    let warnings: Vec<String> = [("samples", samples.warning()), ("reference", reference_stats.warning())]
        .into_iter()
        .filter_map(|(which, w)| w.map(|w| format!("{which}: {w}")))
        .collect();

    let is = match classifier.as_mut() {
        None => None,
        Some(classifier) => {
            let logits = generator.logits(classifier.as_mut(), &sampling)?;
            let (mean, std) = inception_score(logits.view(), IS_SPLITS);
            Some(IsResult { label: is_label(classifier.name(), logits.ncols()), mean, std, splits: IS_SPLITS })
        }
    };
    let result = GenerationResult {
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
        reused: false,
    };
    memo.keep("generation", &inputs, &result, &format!("entry {}", cfg.variant), &opts.reporter);
    Ok(result)
}
