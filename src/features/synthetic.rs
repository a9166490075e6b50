//! Seeded synthetic feature sets in the cache layout, for benchmarks of the probes at any size (the
//! README's fit-speed figures, the GPU check): Gaussian classes, `mean_c ~ N(0, scale² I)` and
//! `x = mean_y + N(0, I)`, labels uniform.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::cache::{self, CacheKey, FeatureTable, Storage};
use crate::error::Result;

/// Write a train and a val file of `width`-d features over `classes` classes into `dir`.
pub fn write_pair(dir: &Path, rows: (usize, usize), width: usize, classes: usize, scale: f32, seed: u64, storage: Storage) -> Result<(PathBuf, PathBuf)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let means: Vec<f32> = (0..classes * width).map(|_| scale * Distribution::<f32>::sample(&StandardNormal, &mut rng)).collect();
    let mut split = |name: &str, n: usize| -> Result<PathBuf> {
        let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes as u32)).collect();
        let values = Array2::from_shape_fn((n, width), |(i, j)| means[labels[i] as usize * width + j] + Distribution::<f32>::sample(&StandardNormal, &mut rng));
        let ids: Vec<String> = (0..n).map(|i| format!("{name}:{i}")).collect();
        let key = CacheKey {
            encoder: format!("synthetic-{width}x{classes}-s{scale}-seed{seed}"),
            weights_sha256: "none".into(),
            dataset: "synthetic".into(),
            dataset_name: "synthetic".into(),
            dataset_hash: "none".into(),
            split: name.into(),
            subset: None,
            rows: n,
            ids_digest: cache::ids_digest(ids.iter().map(String::as_str)),
            preprocess: "none".into(),
            feature: "avepool".into(),
            dtype: "f32".into(),
            protocol_version: crate::protocol::PROTOCOL_VERSION,
            storage,
        };
        cache::write(dir, &FeatureTable { key, ids, labels, values, skipped: Vec::new() })
    };
    let train = split("train", rows.0)?;
    let val = split("val", rows.1)?;
    Ok((train, val))
}
