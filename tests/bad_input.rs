//! Bad input gets a clear error naming the file and the fix, and loses nothing already computed.

mod common;

use std::path::{Path, PathBuf};

use bbeval::runfile::RunFile;
use bbeval::data::{Dataset, DatasetSpec};
use bbeval::encoder;
use bbeval::features::{cache, extract, ExtractOptions};
use bbeval::Error;

/// A samples folder with 2 real images and 4 bad files (zero-byte, truncated JPEG, text named .png, and a
/// random-bytes JPEG).
fn messy_folder(dir: &Path) -> PathBuf {
    let root = dir.join("messy");
    std::fs::create_dir_all(&root).unwrap();
    let jpg = common::asset("foolbox/imagenet/imagenet_00_243.jpg");
    let png = common::asset("foolbox/cifar10/cifar10_00_3.png");
    std::fs::copy(&jpg, root.join("good_1.jpg")).unwrap();
    std::fs::copy(&png, root.join("good_2.png")).unwrap();
    std::fs::write(root.join("zero_3.jpg"), b"").unwrap();
    let bytes = std::fs::read(&jpg).unwrap();
    std::fs::write(root.join("truncated_4.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(root.join("text_5.png"), b"this is not an image\n").unwrap();
    std::fs::write(root.join("noise_6.jpg"), (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>()).unwrap();
    root
}

fn samples(root: &Path) -> Dataset {
    common::open(&DatasetSpec::parse(&format!("samples:{}", root.display())).unwrap(), "val").unwrap()
}

fn opts(cache_dir: &Path, strict: bool) -> ExtractOptions {
    ExtractOptions { cache_dir: cache_dir.into(), batch_size: 4, strict, ..Default::default() }
}

#[test]
fn unreadable_images_are_skipped_and_listed_or_stop_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let data = samples(&messy_folder(dir.path()));
    assert_eq!(data.len(), 6);
    let mut enc = encoder::open("raw:8", data.spec.kind.channels(), &common::cpu()).unwrap();

    let strict = extract(enc.as_mut(), &data, &opts(&dir.path().join("c1"), true)).unwrap_err();
    assert!(matches!(strict, Error::Decode { .. }), "{strict}");
    let msg = strict.to_string();
    assert!(msg.contains("messy/") && msg.contains("--strict"), "{msg}");
    assert!(cache::list(&dir.path().join("c1")).unwrap().is_empty(), "strict failure must write nothing");

    let e = extract(enc.as_mut(), &data, &opts(&dir.path().join("c2"), false)).unwrap();
    let skipped: Vec<&str> = e.skipped.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(skipped, ["noise_6.jpg", "text_5.png", "truncated_4.jpg", "zero_3.jpg"]);
    assert!(e.skipped.iter().all(|(_, why)| why.contains("messy/")));
    let t = cache::read(&e.files["pixels"]).unwrap();
    assert_eq!(t.ids, ["good_1.jpg", "good_2.png"]);
    assert_eq!(t.labels, [1, 2]);
    assert_eq!(t.width(), 8 * 8 * 3);
    assert_eq!(t.skipped.len(), 4);
}

#[test]
fn missing_or_unreadable_dataset_folders_name_the_path() {
    let err = common::open(&DatasetSpec::parse("samples:/nonexistent/bbeval").unwrap(), "val").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/bbeval"), "{err}");
    let err = common::open(&DatasetSpec::parse("idx:/nonexistent/fm").unwrap(), "train").unwrap_err();
    assert!(err.to_string().contains("make setup"), "{err}");
    let err = DatasetSpec::parse("imagenette:/x").unwrap_err();
    assert!(err.to_string().contains("did you mean `imagenet`?"), "{err}");
    // A truncated IDX file.
    let dir = tempfile::tempdir().unwrap();
    let src = common::asset("fashion-mnist");
    let labels = "t10k-labels-idx1-ubyte.gz";
    std::fs::copy(src.join(labels), dir.path().join(labels)).unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2]).unwrap();
    let err = common::open(&DatasetSpec::parse(&format!("idx:{}", dir.path().display())).unwrap(), "val").unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

fn one_image_set(dir: &Path) -> Dataset {
    let root = dir.join("one");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(common::asset("foolbox/imagenet/imagenet_00_243.jpg"), root.join("a_1.jpg")).unwrap();
    std::fs::copy(common::asset("foolbox/imagenet/imagenet_01_559.jpg"), root.join("b_2.jpg")).unwrap();
    samples(&root)
}

#[test]
fn manifest_outputs_that_do_not_match_the_model_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = one_image_set(dir.path());
    let input = "size = 16\nrange = [-1, 1]";

    let ok = common::fixture_encoder(dir.path(), "channel_means.pt", "avepool = 3", input);
    let mut enc = encoder::open(ok.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let e = extract(enc.as_mut(), &data, &opts(&dir.path().join("c"), true)).unwrap();
    let t = cache::read(&e.files["avepool"]).unwrap();
    assert_eq!(t.values.dim(), (2, 3));
    assert!(t.values.iter().all(|v| (-1.0..=1.0).contains(v)));

    let wide = common::fixture_encoder(dir.path(), "channel_means.pt", "avepool = 5", input);
    let mut enc = encoder::open(wide.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let err = extract(enc.as_mut(), &data, &opts(&dir.path().join("c"), true)).unwrap_err().to_string();
    // Same weights and preprocessing: a cache hit, but the declared width is checked against the file.
    assert!(err.contains("[N, 5]") && err.contains("fix the manifest's [outputs]"), "{err}");
    let err = extract(enc.as_mut(), &data, &opts(&dir.path().join("fresh"), true)).unwrap_err().to_string();
    assert!(err.contains("channel-means.toml") && err.contains("[N, 5]") && err.contains("fix [outputs]"), "{err}");

    let extra = common::fixture_encoder(dir.path(), "channel_means.pt", "avepool = 3\nbn_crelu = 6", input);
    let mut enc = encoder::open(extra.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let err = extract(enc.as_mut(), &data, &opts(&dir.path().join("c"), true)).unwrap_err().to_string();
    assert!(err.contains("declares output `bn_crelu`"), "{err}");

    let tuple = common::fixture_encoder(dir.path(), "tuple_encoder.pt", "avepool = 3", input);
    let mut enc = encoder::open(tuple.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let err = extract(enc.as_mut(), &data, &opts(&dir.path().join("c"), true)).unwrap_err().to_string();
    assert!(err.contains("Dict[str, Tensor]"), "{err}");

    let no_avepool = common::fixture_encoder(dir.path(), "channel_means.pt", "logits = 3", input);
    let err = encoder::open(no_avepool.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).err().unwrap().to_string();
    assert!(err.contains("must declare `avepool`"), "{err}");

    // Weights that are not the ones the manifest hashed.
    let ok = common::fixture_encoder(dir.path(), "channel_means.pt", "avepool = 3", input);
    std::fs::write(dir.path().join("channel_means.pt"), b"changed").unwrap();
    let err = encoder::open(ok.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).err().unwrap().to_string();
    assert!(err.contains("sha256") && err.contains("re-export"), "{err}");
}

#[test]
fn nan_features_are_an_error_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = one_image_set(dir.path());
    // range [0, 1] keeps the mean positive, so every row is NaN.
    let nan = common::fixture_encoder(dir.path(), "nan_encoder.pt", "avepool = 3", "size = 16\nrange = [0, 1]");
    let mut enc = encoder::open(nan.to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let cache_dir = dir.path().join("c");
    let err = extract(enc.as_mut(), &data, &opts(&cache_dir, true)).unwrap_err();
    assert!(matches!(err, Error::NonFinite { count: 2, .. }), "{err}");
    assert!(err.to_string().contains("a_1.jpg"), "{err}");
    assert!(cache::list(&cache_dir).unwrap().is_empty());
}

#[test]
fn run_file_with_unknown_key_suggests_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "name = 'x'\n[dataset]\nspec = 'idx:a'\ntrain_limt = 5\n[[rows]]\nmethod='m'\nencoder='raw'\nfeature='pixels'\n").unwrap();
    let err = RunFile::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("did you mean `train_limit`?"), "{err}");
}
