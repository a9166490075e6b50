//! Criterion benches, one group per stage. The Python side of each figure is tools/bench_python.py
//! (same files, same machine); the README's table gives both.
//!
//! `make bench` (needs `make setup`). Groups: decode_resize, extract, parquet, probe.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bbeval::context::ExecutionContext;
use bbeval::data::{Dataset, DatasetSpec, HashOptions, Preprocess};
use bbeval::encoder;
use bbeval::features::cache::{self, CacheKey, FeatureTable};
use bbeval::features::{extract, ExtractOptions};
use bbeval::probe::lbfgs::Lbfgs;
use bbeval::probe::sgd::{fit_grid, Sgd};
use bbeval::probe::source::InMemory;
use bbeval::probe::Head;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn foolbox() -> Dataset {
    let spec = DatasetSpec::parse(&format!("samples:{}", root().join("assets/foolbox/imagenet").display())).unwrap();
    Dataset::open(&spec, "val", &HashOptions::default()).unwrap()
}

/// Decode + centre crop + bicubic resize of foolbox's 512×512 JPEGs (PIL anchor: 94 images/s on one core).
fn decode_resize(c: &mut Criterion) {
    let data = foolbox();
    let bigbigan = Preprocess::bigbigan();
    let mut g = c.benchmark_group("decode_resize");
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("bigbigan_256_one_thread", |b| {
        b.iter(|| data.samples.iter().map(|s| bigbigan.load(s).unwrap().0.len()).sum::<usize>())
    });
    g.bench_function("bigbigan_256_rayon", |b| {
        b.iter(|| data.samples.par_iter().map(|s| bigbigan.load(s).unwrap().0.len()).sum::<usize>())
    });
    g.finish();
}

/// The whole extraction (decode, prefetch, EfficientNet-Lite0 forward on CPU, Parquet write) of 20 images.
fn extraction(c: &mut Criterion) {
    let data = foolbox();
    let manifest = root().join("assets/encoders/efficientnet-lite0.toml");
    let mut enc = encoder::open(manifest.to_str().unwrap(), data.spec.kind.channels(), &ExecutionContext::cpu()).unwrap();
    let mut g = c.benchmark_group("extract");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(data.len() as u64));
    for batch_size in [bbeval::protocol::BATCH_SIZE_CPU, 20] {
        g.bench_function(format!("efficientnet_lite0_cpu_batch{batch_size}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    let opts = ExtractOptions { cache_dir: dir.path().into(), batch_size, strict: true, ..Default::default() };
                    extract(enc.as_mut(), &data, &opts).unwrap().images
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn big_table(n: usize, d: usize) -> FeatureTable {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    FeatureTable {
        key: CacheKey {
            encoder: "bench".into(),
            weights_sha256: "none".into(),
            dataset: "synthetic".into(),
            dataset_name: "synthetic".into(),
            dataset_hash: "0".into(),
            split: "train".into(),
            subset: None,
            rows: n,
            ids_digest: cache::ids_digest((0..n).map(|i| i.to_string()).collect::<Vec<_>>().iter().map(String::as_str)),
            preprocess: "none".into(),
            feature: "bn_crelu".into(),
            dtype: "f32".into(),
            protocol_version: bbeval::protocol::PROTOCOL_VERSION,
            storage: Default::default(),
        },
        ids: (0..n).map(|i| format!("{i}")).collect(),
        labels: (0..n as u32).map(|i| i % 1000).collect(),
        values: Array2::from_shape_fn((n, d), |_| rng.random::<f32>()),
        skipped: vec![],
    }
}

/// 20,000 × 4096 f32 (328 MB) through the Parquet cache (numpy .npy anchor in tools/bench_python.py).
fn parquet(c: &mut Criterion) {
    let table = big_table(20_000, 4096);
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("parquet_20000x4096");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Bytes((20_000 * 4096 * 4) as u64));
    g.bench_function("write", |b| b.iter(|| cache::write(dir.path(), &table).unwrap()));
    let path = cache::write(dir.path(), &table).unwrap();
    g.bench_function("read", |b| b.iter(|| cache::read(Path::new(&path)).unwrap().values.len()));
    // f16 storage: half the bytes on disk; throughput still counts the f32 matrix delivered.
    let mut half = table.clone();
    half.key.storage = bbeval::features::cache::Storage::F16;
    g.bench_function("write_f16", |b| b.iter(|| cache::write(dir.path(), &half).unwrap()));
    let half_path = cache::write(dir.path(), &half).unwrap();
    g.bench_function("read_f16", |b| b.iter(|| cache::read(Path::new(&half_path)).unwrap().values.len()));
    // What every read adds to check the data: xxh3 over the matrix's bytes (the overhead figure).
    let bytes: Vec<u8> = table.values.iter().flat_map(|v| v.to_le_bytes()).collect();
    g.bench_function("xxh3_checksum", |b| b.iter(|| twox_hash::XxHash3_64::oneshot(&bytes)));
    g.finish();
}

/// One epoch of the SGD trainer (15 heads, and 1) on 60,000 × 1280, 10 classes (Fashion-MNIST shape), and
/// a whole L-BFGS fit of 5 λ heads at once on 10,000 × 1280 (the demo's shape).
fn probe(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (n, d) = (60_000, 1280);
    let x = Array2::from_shape_fn((n, d), |_| rng.random::<f32>() - 0.5);
    let y: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    let heads: Vec<Head> = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1].iter().flat_map(|&l2| [0.01, 0.03, 0.1].map(|lr| Head { l2, lr: Some(lr) })).collect();
    let sgd = Sgd { l2: vec![], lr: vec![], epochs: 1, batch_size: 512, seed: 0, resident_bytes: None };
    let mut g = c.benchmark_group("probe_cpu");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("sgd_15_heads_1_epoch_60000x1280", |b| b.iter(|| fit_grid(x.view(), &y, 10, &heads, &sgd, tch::Device::Cpu).unwrap().len()));
    g.bench_function("sgd_1_head_1_epoch_60000x1280", |b| b.iter(|| fit_grid(x.view(), &y, 10, &heads[..1], &sgd, tch::Device::Cpu).unwrap().len()));
    // Separable-ish classes so that the fit converges as on real features.
    let (n, d) = (10_000, 1280);
    let means = Array2::from_shape_fn((10, d), |_| rng.random::<f32>() - 0.5);
    let y: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    let x = Array2::from_shape_fn((n, d), |(i, j)| means[[y[i] as usize, j]] + rng.random::<f32>() - 0.5);
    let rows = InMemory { name: "bench".into(), values: x.view(), labels: &y, chunk_rows: n };
    let lbfgs = Lbfgs { l2: vec![], tol: 1e-4, max_iter: 1000, history: 10, resident_bytes: None };
    let l2_heads: Vec<Head> = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1].iter().map(|&l2| Head { l2, lr: None }).collect();
    g.bench_function("lbfgs_5_heads_fit_10000x1280", |b| b.iter(|| lbfgs.fit_report(&rows, 10, &l2_heads, None, &ExecutionContext::cpu()).unwrap().passes));
    g.finish();
}

/// Fréchet distance of two 2048-d statistics (scipy.linalg.sqrtm route anchor: 19.5 s).
fn frechet(c: &mut Criterion) {
    use bbeval::genmetrics::{frechet_distance, RunningStats};
    let stats = |seed: u64| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let x = Array2::from_shape_fn((4096, 2048), |_| rng.random::<f32>());
        let mut r = RunningStats::new(2048);
        r.update(x.view());
        r.finish().unwrap()
    };
    let (a, b) = (stats(1), stats(2));
    let mut g = c.benchmark_group("frechet");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("2048d_eigh", |bch| bch.iter(|| frechet_distance(&a, &b).unwrap()));
    g.finish();
}

/// FID Inception statistics over foolbox's 20 JPEGs on CPU (decode, 299² f32 resize, forward, f64 update).
fn inception(c: &mut Criterion) {
    let data = foolbox();
    let manifest = root().join("assets/fid/inception.toml");
    let mut enc = encoder::open(manifest.to_str().unwrap(), data.spec.kind.channels(), &ExecutionContext::cpu()).unwrap();
    let mut g = c.benchmark_group("inception");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("fid_statistics_cpu_batch4", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let opts = ExtractOptions { cache_dir: dir.path().into(), batch_size: 4, strict: true, ..Default::default() };
                bbeval::genmetrics::dataset_statistics(enc.as_mut(), &data, &opts).unwrap().0.n
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    // The binary does the same first thing (see bbeval::runtime).
    bbeval::runtime::tune_allocator();
    decode_resize(c);
    extraction(c);
    parquet(c);
    probe(c);
    frechet(c);
    inception(c);
}

criterion_group!(all, benches);
criterion_main!(all);
