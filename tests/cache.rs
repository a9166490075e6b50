//! The Parquet feature cache: exact round trip, atomic writes, checksums, mismatched or damaged files never
//! valid, the fast reader equal to the general one.

use bbeval::features::cache::{self, ids_digest, CacheKey, FeatureFile, FeatureTable, Storage};
use bbeval::features::maintenance;
use bbeval::protocol::PROTOCOL_VERSION;
use ndarray::Array2;
use rand::{Rng, SeedableRng};

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("img/{i}.jpg")).collect()
}

fn key(feature: &str, n: usize) -> CacheKey {
    let all: Vec<String> = ids(n).into_iter().chain(["bad/0.jpg".to_string()]).collect();
    CacheKey {
        encoder: "enc".into(),
        weights_sha256: "ab".repeat(32),
        dataset: "idx:/data/x".into(),
        dataset_name: "x".into(),
        dataset_hash: "cd".repeat(32),
        split: "train".into(),
        subset: Some((100, 0)),
        rows: n + 1,
        ids_digest: ids_digest(all.iter().map(String::as_str)),
        preprocess: "size=native".into(),
        feature: feature.into(),
        dtype: "f32".into(),
        protocol_version: PROTOCOL_VERSION,
        storage: Storage::F32,
    }
}

fn table(n: usize, d: usize) -> FeatureTable {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut values = Array2::from_shape_fn((n, d), |_| rng.random::<f32>() * 2.0 - 1.0);
    // Awkward but finite values must survive bit for bit.
    values[[0, 0]] = -0.0;
    values[[0, 1]] = f32::MAX;
    values[[0, 2]] = f32::MIN_POSITIVE / 4.0; // subnormal
    FeatureTable { key: key("avepool", n), ids: ids(n), labels: (0..n as u32).map(|i| i % 7).collect(), values, skipped: vec!["bad/0.jpg".into()] }
}

fn bits(a: &Array2<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn parquet_round_trip_is_exact_and_row_groups_read_alone() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(5000, 33); // three row groups
    let path = cache::write(dir.path(), &t).unwrap();
    assert!(path.file_name().unwrap().to_string_lossy().contains(&t.key.digest()));
    let r = cache::read(&path).unwrap();
    assert_eq!(r.key, t.key);
    assert_eq!(r.ids, t.ids);
    assert_eq!(r.labels, t.labels);
    assert_eq!(r.skipped, t.skipped);
    assert_eq!(bits(&r.values), bits(&t.values));
    assert_eq!(cache::shape(&path).unwrap(), (5000, 33));
    let f = FeatureFile::open(&path).unwrap();
    assert_eq!(f.layout.row_groups, [2048, 2048, 904]);
    let (labels, rows) = f.read_groups(1..3).unwrap();
    assert_eq!(labels, t.labels[2048..].to_vec());
    assert_eq!(rows, t.values.slice(ndarray::s![2048.., ..]));
    assert_eq!(f.read_labels().unwrap(), t.labels);
    assert_eq!(cache::lookup(dir.path(), &t.key), Some(path));
}

#[test]
fn temporary_truncated_renamed_or_damaged_files_are_never_valid() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(100, 4);
    let path = cache::write(dir.path(), &t).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    // A killed writer leaves only its temporary (`.tmp-<pid>-…`): not found, not listed, but shown as a
    // leftover whose writer is gone, and removed by gc.
    std::fs::remove_file(&path).unwrap();
    let tmp = dir.path().join(format!("{}{}-abc.parquet", cache::TEMP_PREFIX, u32::MAX - 1));
    std::fs::write(&tmp, &bytes).unwrap();
    // So does a run killed while keeping a finished result (`run::memo`), in the results folder.
    let results = dir.path().join(maintenance::RESULTS_DIR);
    std::fs::create_dir_all(&results).unwrap();
    let tmp_result = results.join(format!("{}{}-abc.json", cache::TEMP_PREFIX, u32::MAX - 1));
    std::fs::write(&tmp_result, "{").unwrap();
    assert_eq!(cache::lookup(dir.path(), &t.key), None);
    assert!(cache::list(dir.path()).unwrap().is_empty());
    let left = maintenance::leftovers(dir.path()).unwrap();
    assert_eq!(left.temporaries, vec![(tmp.clone(), false), (tmp_result.clone(), false)]);
    assert_eq!(maintenance::gc(dir.path()).unwrap(), vec![tmp.clone(), tmp_result.clone()]);
    assert!(!tmp.exists() && !tmp_result.exists());

    // Truncated: a miss, and reading it names the file.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(cache::lookup(dir.path(), &t.key), None);
    let err = cache::read(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    let verified = cache::verify(dir.path()).unwrap();
    assert!(verified[0].1.is_err());

    // Renamed: the stored key does not hash to the name.
    let other = dir.path().join(key("bn_crelu", 100).file_name());
    std::fs::write(&other, &bytes).unwrap();
    let err = cache::read(&other).unwrap_err().to_string();
    assert!(err.contains("hashes to"), "{err}");
    assert_eq!(cache::lookup(dir.path(), &key("bn_crelu", 100)), None);
    std::fs::remove_file(&other).unwrap();

    // One feature value changed in place (same size, valid Parquet): the checksum catches it on read.
    let mut damaged = bytes.clone();
    let needle: Vec<u8> = t.values[[50, 3]].to_le_bytes().to_vec();
    let at = damaged.windows(4).position(|w| w == needle.as_slice()).expect("value bytes in the page");
    damaged[at] ^= 0x40;
    std::fs::write(&path, &damaged).unwrap();
    let err = cache::read(&path).unwrap_err().to_string();
    assert!(err.contains("checksum") && err.contains("delete it"), "{err}");
    assert!(cache::verify(dir.path()).unwrap()[0].1.is_err());
}

#[test]
fn rows_that_are_not_the_keys_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = table(100, 4);
    t.ids[7] = "someone/else.jpg".into();
    let path = cache::write(dir.path(), &t).unwrap();
    let err = cache::read(&path).unwrap_err().to_string();
    assert!(err.contains("not the images its key asks for"), "{err}");
    // A row count that does not match the key is caught from the footer alone.
    let mut short = table(100, 4);
    short.key.rows = 50;
    let path = cache::write(dir.path(), &short).unwrap();
    let err = FeatureFile::open(&path).unwrap_err().to_string();
    assert!(err.contains("the key asks for 50 images"), "{err}");
}

#[test]
fn files_open_with_the_documented_schema_and_foreign_files_probe() {
    // Schema checked from Rust; tools/check_parquet_schema.py checks the same file in pyarrow.
    let dir = tempfile::tempdir().unwrap();
    let t = table(10, 3);
    let path = cache::write(dir.path(), &t).unwrap();
    use polars::prelude::*;
    let mut df = ParquetReader::new(std::fs::File::open(&path).unwrap()).finish().unwrap();
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["index", "id", "label", "feature"]);
    assert_eq!(df.column("index").unwrap().dtype(), &DataType::UInt32);
    assert_eq!(df.column("label").unwrap().dtype(), &DataType::UInt32);
    assert_eq!(df.column("feature").unwrap().dtype(), &DataType::Array(Box::new(DataType::Float32), 3));

    // The same columns written by another tool (no bbeval metadata, other row groups): `probe` reads it.
    let foreign = dir.path().join("from-elsewhere.parquet");
    ParquetWriter::new(std::fs::File::create(&foreign).unwrap()).with_row_group_size(Some(4)).finish(&mut df).unwrap();
    assert!(FeatureFile::open(&foreign).is_err(), "not a cache file");
    let f = FeatureFile::open_any(&foreign).unwrap();
    assert!(f.foreign);
    assert_eq!((f.rows(), f.width()), (10, 3));
    let (labels, values) = f.read_groups(0..f.row_group_count()).unwrap();
    assert_eq!(labels, t.labels);
    assert_eq!(bits(&values), bits(&t.values));
}

#[test]
fn f16_storage_rounds_to_nearest_half_and_has_its_own_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = table(3000, 17);
    t.values[[0, 1]] = 65504.0; // f16::MAX survives; f32::MAX would not
    t.key.storage = Storage::F16;
    let path = cache::write(dir.path(), &t).unwrap();
    assert_ne!(t.key.file_name(), key("avepool", 3000).file_name(), "f16 and f32 files must not collide");
    let r = cache::read(&path).unwrap();
    assert_eq!(r.key, t.key);
    // IEEE round-to-nearest-even, as numpy's astype(float16) does; the subnormal f32 flushes to 0.
    let want = t.values.mapv(|v| half::f16::from_f32(v).to_f32());
    assert_eq!(r.values, want);
    assert!(r.values.iter().zip(&t.values).all(|(a, b)| (a - b).abs() <= b.abs() / 1024.0 + 6e-8));
    assert_eq!(cache::shape(&path).unwrap(), (3000, 17));
    let (labels, rows) = FeatureFile::open(&path).unwrap().read_groups(1..2).unwrap();
    assert_eq!(labels, t.labels[2048..].to_vec());
    assert_eq!(rows, want.slice(ndarray::s![2048.., ..]));
    // Half the bytes of the f32 file.
    let f32_path = cache::write(dir.path(), &table(3000, 17)).unwrap();
    let (a, b) = (std::fs::metadata(&path).unwrap().len(), std::fs::metadata(&f32_path).unwrap().len());
    assert!((a as f64) < 0.65 * b as f64, "f16 {a} bytes vs f32 {b}");

    t.values[[1, 1]] = 1e6;
    let err = cache::write(dir.path(), &t).unwrap_err().to_string();
    assert!(err.contains("out of f16 range") && err.contains("as f32"), "{err}");
}

/// The page-level reader against polars' general one, on labels that need a wide dictionary (1000 classes,
/// bit-packed index runs) and on both storages.
#[test]
fn the_fast_reader_equals_the_general_one() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for storage in [Storage::F32, Storage::F16] {
        let mut t = table(5000, 9);
        t.labels = (0..5000).map(|_| rng.random_range(0..1000u32)).collect();
        t.values[[0, 1]] = 1.0; // f32::MAX does not fit f16
        t.key.storage = storage;
        let path = cache::write(dir.path(), &t).unwrap();
        let df = ParquetReader::new(std::fs::File::open(&path).unwrap()).with_columns(Some(vec!["label".into()])).finish().unwrap();
        let general: Vec<u32> = df.column("label").unwrap().u32().unwrap().into_no_null_iter().collect();
        assert_eq!(general, t.labels);
        let f = FeatureFile::open(&path).unwrap();
        assert_eq!(f.read_labels().unwrap(), t.labels, "{storage:?}");
        let (labels, values) = f.read_groups(0..f.row_group_count()).unwrap();
        assert_eq!(labels, t.labels, "{storage:?}");
        // What was written, rounded to the storage (f16: to nearest half, as `half` converts).
        let stored = match storage {
            Storage::F32 => t.values.clone(),
            Storage::F16 => t.values.mapv(|v| half::f16::from_f32(v).to_f32()),
        };
        assert_eq!(bits(&values), bits(&stored), "{storage:?}");
        let (_, tail) = f.read_groups(1..3).unwrap();
        assert_eq!(bits(&tail), bits(&stored.slice(ndarray::s![2048.., ..]).to_owned()), "{storage:?}");
    }
}

/// Row groups are decoded in parallel; a damaged one is named (the first in row order when several are),
/// and reading only the intact groups still works.
#[test]
fn a_damaged_row_group_is_named_and_the_others_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(5000, 9); // row groups of 2048, 2048, 904
    let path = cache::write(dir.path(), &t).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    for (row, col) in [(4500, 2), (3000, 5)] {
        let needle: Vec<u8> = t.values[[row, col]].to_le_bytes().to_vec();
        let at = bytes.windows(4).position(|w| w == needle.as_slice()).expect("value bytes in the page");
        bytes[at] ^= 0x01;
    }
    std::fs::write(&path, &bytes).unwrap();
    let f = FeatureFile::open(&path).unwrap();
    let err = f.read_groups(0..3).unwrap_err().to_string();
    assert!(err.contains("row group 1 (rows 2048–4095)") && err.contains(&path.display().to_string()), "{err}");
    let err = f.read_groups(2..3).unwrap_err().to_string();
    assert!(err.contains("row group 2 (rows 4096–4999)"), "{err}");
    let (labels, values) = f.read_groups(0..1).unwrap();
    assert_eq!(labels, t.labels[..2048].to_vec());
    assert_eq!(bits(&values), bits(&t.values.slice(ndarray::s![..2048, ..]).to_owned()));
}
