//! The `bbeval` binary end to end: exit codes and what it prints.

mod common;

use std::process::Command;

fn bbeval(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bbeval")).args(args).current_dir(common::root()).output().expect("run bbeval");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn extract_twice_is_a_cache_hit_and_verify_passes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    let data = format!("samples:{}", common::asset("foolbox/cifar10").display());
    let args = ["extract", "--encoder", "raw", "--dataset", &data, "--split", "val", "--cache-dir", cache];
    let (code, first) = bbeval(&args);
    assert_eq!(code, 0, "{first}");
    assert!(first.contains("20 images in"), "{first}");
    let (code, second) = bbeval(&args);
    assert_eq!(code, 0);
    assert!(second.contains("cache hit: nothing computed"), "{second}");
    let (code, verify) = bbeval(&["cache", "verify", "--cache-dir", cache]);
    assert_eq!(code, 0, "{verify}");
    assert!(verify.contains("1 file(s), 0 invalid"), "{verify}");

    // A damaged file makes verify fail with exit code 1 and name it.
    let file = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    std::fs::write(&file, b"PAR1 not really").unwrap();
    let (code, verify) = bbeval(&["cache", "verify", "--cache-dir", cache]);
    assert_eq!(code, 1, "{verify}");
    assert!(verify.contains("INVALID") && verify.contains(&file.file_name().unwrap().to_string_lossy().to_string()), "{verify}");
}

#[test]
fn fid_of_two_npz_files_and_clear_errors() {
    let (a, b) = (common::fixture("frechet_a.npz"), common::fixture("frechet_b.npz"));
    let (code, out) = bbeval(&["fid", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // scipy sqrtm route: 152.7807642635405 (tools/gen_fid_golden.py)
    assert!((v["fid"].as_f64().unwrap() - 152.7807642635405).abs() < 1e-6 * 152.78, "{out}");

    let (code, out) = bbeval(&["extract", "--encoder", "raw", "--dataset", "imagenette:/x"]);
    assert_eq!(code, 2);
    assert!(out.contains("did you mean `imagenet`?"), "{out}");
}
