//! The Parquet feature cache: exact round trip, atomic writes, mismatched or damaged files never valid.

use bbeval::config::PROTOCOL_VERSION;
use bbeval::features::cache::{self, CacheKey, FeatureTable};
use ndarray::Array2;
use rand::{Rng, SeedableRng};

fn key(feature: &str) -> CacheKey {
    CacheKey {
        encoder: "enc".into(),
        weights_sha256: "ab".repeat(32),
        dataset: "idx:/data/x".into(),
        dataset_name: "x".into(),
        dataset_hash: "cd".repeat(32),
        split: "train".into(),
        subset: Some((100, 0)),
        preprocess: "size=native".into(),
        feature: feature.into(),
        dtype: "f32".into(),
        protocol_version: PROTOCOL_VERSION,
        storage: Default::default(),
    }
}

fn table(n: usize, d: usize) -> FeatureTable {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut values = Array2::from_shape_fn((n, d), |_| rng.random::<f32>() * 2.0 - 1.0);
    // Awkward but finite values must survive bit for bit.
    values[[0, 0]] = -0.0;
    values[[0, 1]] = f32::MAX;
    values[[0, 2]] = f32::MIN_POSITIVE / 4.0; // subnormal
    FeatureTable {
        key: key("avepool"),
        ids: (0..n).map(|i| format!("img/{i}.jpg")).collect(),
        labels: (0..n as u32).map(|i| i % 7).collect(),
        values,
        skipped: vec!["bad/0.jpg".into()],
    }
}

#[test]
fn parquet_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(5000, 33); // several row groups
    let path = cache::write(dir.path(), &t).unwrap();
    assert!(path.file_name().unwrap().to_string_lossy().contains(&t.key.digest()));
    let r = cache::read(&path).unwrap();
    assert_eq!(r.key, t.key);
    assert_eq!(r.ids, t.ids);
    assert_eq!(r.labels, t.labels);
    assert_eq!(r.skipped, t.skipped);
    let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&r.values), bits(&t.values));
    assert_eq!(cache::shape(&path).unwrap(), (5000, 33));
    let (labels, rows) = cache::read_rows(&path, 4090, 20).unwrap();
    assert_eq!(labels, t.labels[4090..4110].to_vec());
    assert_eq!(rows, t.values.slice(ndarray::s![4090..4110, ..]));
    assert_eq!(cache::lookup(dir.path(), &t.key), Some(path));
}

#[test]
fn temporary_truncated_or_renamed_files_are_never_valid() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(100, 4);
    let path = cache::write(dir.path(), &t).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    // A killed run leaves only `<name>.parquet.tmp`: not found, not listed.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(path.with_extension("parquet.tmp"), &bytes).unwrap();
    assert_eq!(cache::lookup(dir.path(), &t.key), None);
    assert!(cache::list(dir.path()).unwrap().is_empty());

    // Truncated: a miss, and reading it names the file.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(cache::lookup(dir.path(), &t.key), None);
    let err = cache::read(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    let verified = cache::verify(dir.path()).unwrap();
    assert!(verified[0].1.is_err());

    // Renamed: the stored key does not hash to the name.
    let other = dir.path().join(key("bn_crelu").file_name());
    std::fs::write(&other, &bytes).unwrap();
    let err = cache::read(&other).unwrap_err().to_string();
    assert!(err.contains("hashes to"), "{err}");
    assert_eq!(cache::lookup(dir.path(), &key("bn_crelu")), None);
}

#[test]
fn files_open_with_the_documented_schema() {
    // Schema checked from Rust; tools/check_parquet_schema.py checks the same file in pyarrow.
    let dir = tempfile::tempdir().unwrap();
    let path = cache::write(dir.path(), &table(10, 3)).unwrap();
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(&path).unwrap()).finish().unwrap();
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["index", "id", "label", "feature"]);
    assert_eq!(df.column("index").unwrap().dtype(), &DataType::UInt32);
    assert_eq!(df.column("label").unwrap().dtype(), &DataType::UInt32);
    assert_eq!(df.column("feature").unwrap().dtype(), &DataType::Array(Box::new(DataType::Float32), 3));
}

#[test]
fn f16_storage_rounds_to_nearest_half_and_has_its_own_key() {
    use bbeval::features::cache::Storage;
    let dir = tempfile::tempdir().unwrap();
    let mut t = table(3000, 17);
    t.values[[0, 1]] = 65504.0; // f16::MAX survives; f32::MAX would not
    t.key.storage = Storage::F16;
    let path = cache::write(dir.path(), &t).unwrap();
    assert_ne!(t.key.file_name(), key("avepool").file_name(), "f16 and f32 files must not collide");
    // An f32 key keeps the digest it had before storage existed (no `storage` field in its JSON).
    assert!(!serde_json::to_string(&key("avepool")).unwrap().contains("storage"));
    let r = cache::read(&path).unwrap();
    assert_eq!(r.key, t.key);
    // IEEE round-to-nearest-even, as numpy's astype(float16) does; the subnormal f32 flushes to 0.
    let want = t.values.mapv(|v| half::f16::from_f32(v).to_f32());
    assert_eq!(r.values, want);
    assert!(r.values.iter().zip(&t.values).all(|(a, b)| (a - b).abs() <= b.abs() / 1024.0 + 6e-8));
    assert_eq!(cache::shape(&path).unwrap(), (3000, 17));
    let (labels, rows) = cache::read_rows(&path, 2040, 20).unwrap();
    assert_eq!(labels, t.labels[2040..2060].to_vec());
    assert_eq!(rows, want.slice(ndarray::s![2040..2060, ..]));
    // Half the bytes of the f32 file.
    let f32_path = cache::write(dir.path(), &table(3000, 17)).unwrap();
    let (a, b) = (std::fs::metadata(&path).unwrap().len(), std::fs::metadata(&f32_path).unwrap().len());
    assert!((a as f64) < 0.65 * b as f64, "f16 {a} bytes vs f32 {b}");

    t.values[[1, 1]] = 1e6;
    let err = cache::write(dir.path(), &t).unwrap_err().to_string();
    assert!(err.contains("out of f16 range") && err.contains("as f32"), "{err}");
}
