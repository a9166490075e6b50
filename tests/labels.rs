//! Data whose labels or splits cannot be right is an error or a loud warning, never a number; results are
//! never replaced silently; `--strict` means the same on a cache hit; a changed image is a cache miss.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bbeval::data::{Dataset, DatasetSpec, HashOptions};
use bbeval::Error;

fn jpeg(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(16, 12, |x, y| image::Rgb([shade, (x * 9) as u8, (y * 13) as u8])).save(path).unwrap();
}

/// `ROOT/train/<wnid>/` with two classes of three images.
fn train(root: &Path) {
    for (c, wnid) in ["n0001", "n0002"].iter().enumerate() {
        for i in 0..3 {
            jpeg(&root.join(format!("train/{wnid}/{wnid}_{i}.JPEG")), (60 * c + 10 * i) as u8);
        }
    }
}

fn open(kind: &str, root: &Path, split: &str) -> bbeval::Result<Dataset> {
    Dataset::open(&DatasetSpec::parse(&format!("{kind}:{}", root.display())).unwrap(), split, &HashOptions::default())
}

#[test]
fn a_val_class_that_train_lacks_is_an_error_not_a_silent_drop() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    jpeg(&dir.path().join("val/n0001/a.JPEG"), 1);
    jpeg(&dir.path().join("val/n0009/b.JPEG"), 2);
    for kind in ["imagenet", "folder"] {
        let err = open(kind, dir.path(), "val").unwrap_err();
        assert!(matches!(err, Error::Labels { .. }), "{err}");
        assert!(err.to_string().contains("n0009") && err.to_string().contains("not a class of train"), "{err}");
    }
}

#[test]
fn a_flat_val_folder_needs_its_label_file_in_the_right_place() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    jpeg(&dir.path().join("val/v1.JPEG"), 1);
    jpeg(&dir.path().join("val/v2.JPEG"), 2);
    // No label file at all.
    let err = open("imagenet", dir.path(), "val").unwrap_err().to_string();
    assert!(err.contains("val_labels.txt") && err.contains("write lines"), "{err}");
    // One inside val/: it names where it must go.
    std::fs::write(dir.path().join("val/val_labels.txt"), "v1.JPEG n0001\nv2.JPEG n0002\n").unwrap();
    let err = open("imagenet", dir.path(), "val").unwrap_err().to_string();
    assert!(err.contains("move it to") && err.contains(&dir.path().join("val_labels.txt").display().to_string()), "{err}");
    // In place, but one image unlisted, then a duplicate line.
    std::fs::remove_file(dir.path().join("val/val_labels.txt")).unwrap();
    std::fs::write(dir.path().join("val_labels.txt"), "v1.JPEG n0001\n").unwrap();
    let err = open("imagenet", dir.path(), "val").unwrap_err().to_string();
    assert!(err.contains("have no label line") && err.contains("v2.JPEG"), "{err}");
    std::fs::write(dir.path().join("val_labels.txt"), "v1.JPEG n0001\nv2.JPEG 1\nv1.JPEG n0002\n").unwrap();
    let err = open("imagenet", dir.path(), "val").unwrap_err().to_string();
    assert!(err.contains("line 3") && err.contains("listed again"), "{err}");
    std::fs::write(dir.path().join("val_labels.txt"), "v1.JPEG n0001\nv2.JPEG 1\n").unwrap();
    let val = open("imagenet", dir.path(), "val").unwrap();
    assert_eq!(val.labels(), [0, 1]);
}

#[test]
fn entries_that_are_not_images_and_empty_classes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    std::fs::write(dir.path().join("train/n0001/README.txt"), "notes").unwrap();
    std::fs::create_dir_all(dir.path().join("train/n0003")).unwrap();
    let t = open("folder", dir.path(), "train").unwrap();
    assert_eq!(t.len(), 6);
    let notes = t.notes.join("\n");
    assert!(notes.contains("not an image") && notes.contains("README.txt"), "{notes}");
    assert!(notes.contains("hold no images") && notes.contains("n0003"), "{notes}");
}

#[test]
fn a_same_size_change_to_an_image_changes_the_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path());
    let hashing = HashOptions::under(&dir.path().join("cache"), false);
    let spec = DatasetSpec::parse(&format!("folder:{}", dir.path().display())).unwrap();
    let before = Dataset::open(&spec, "train", &hashing).unwrap().content_hash;
    // Overwrite one byte in place: same size; the stat cache must not hide it.
    let file = dir.path().join("train/n0002/n0002_1.JPEG");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let after = Dataset::open(&spec, "train", &hashing).unwrap().content_hash;
    assert_ne!(before, after);
}

fn bbeval(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_bbeval")).args(args).current_dir(common::root()).output().unwrap();
    (o.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn run_file(dir: &Path, data: &Path, train_limit: usize) -> PathBuf {
    let path = dir.join("r.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"r\"\ncache_dir = \"{c}\"\nout_dir = \"{o}\"\n[dataset]\nspec = \"folder:{d}\"\ntrain_limit = {train_limit}\ntrain_val = 2\n[[rows]]\nmethod = \"Raw\"\nencoder = \"raw:4\"\nfeature = \"pixels\"\n",
            c = dir.join("cache").display(),
            o = dir.join("out").display(),
            d = data.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn results_are_never_replaced_silently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train(&data);
    for (c, wnid) in ["n0001", "n0002"].iter().enumerate() {
        jpeg(&data.join(format!("val/{wnid}/v{c}.JPEG")), (60 * c) as u8);
    }
    let run = run_file(dir.path(), &data, 6);
    let (code, out) = bbeval(&["run", run.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = bbeval(&["run", run.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("already exist") && out.contains("--overwrite"), "{out}");
    let (code, out) = bbeval(&["run", run.to_str().unwrap(), "--device", "cpu", "--overwrite"]);
    assert_eq!(code, 0, "{out}");

    // A subset that leaves one class: an error, not "100 ± 0".
    let one_class = tempfile::tempdir().unwrap();
    let data1 = one_class.path().join("data");
    for i in 0..6 {
        jpeg(&data1.join(format!("train/n0001/a{i}.JPEG")), i * 10);
    }
    jpeg(&data1.join("val/n0001/v.JPEG"), 3);
    let run = run_file(one_class.path(), &data1, 6);
    let (code, out) = bbeval(&["run", run.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("1 class(es)"), "{out}");
}

#[test]
fn strict_means_the_same_on_a_cache_hit_and_limits_must_be_positive() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    jpeg(&root.join("a_1.jpg"), 1);
    jpeg(&root.join("b_2.jpg"), 2);
    std::fs::write(root.join("c_3.jpg"), b"not a jpeg").unwrap();
    let cache = dir.path().join("cache");
    let args = |strict: bool| {
        let mut a = vec!["extract", "--encoder", "raw:4", "--dataset", root.to_str().unwrap(), "--split", "val", "--cache-dir", cache.to_str().unwrap()];
        if strict {
            a.push("--strict");
        }
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let spec = format!("samples:{}", root.display());
    let run = |strict| {
        let mut a = args(strict);
        a[4] = spec.clone();
        bbeval(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (code, out) = run(false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("skipped c_3.jpg"), "{out}");
    // Without --strict the message does not advise running without it.
    assert!(!out.contains("run without --strict"), "{out}");
    let (code, out) = run(true);
    assert_eq!(code, 2, "the cached features skipped an image: {out}");
    assert!(out.contains("c_3.jpg") && out.contains("--strict"), "{out}");

    let (code, out) = bbeval(&["extract", "--encoder", "raw", "--dataset", &spec, "--split", "val", "--limit", "0"]);
    assert_eq!(code, 2);
    assert!(out.contains("--limit") && !out.contains("first: ;"), "{out}");
}
