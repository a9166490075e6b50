//! Extraction at scale: killed at any moment it resumes to exactly the uninterrupted result; shards
//! assemble into the single-process table (missing or foreign parts named); two processes on one key
//! share the work; leftovers of killed writers are shown and collected.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bbeval::features::cache;

/// 5,000 Fashion-MNIST images (3 parts of 2,048), raw 14×14 pixels: fast and deterministic.
fn extract_args(cache_dir: &Path) -> Vec<String> {
    let fm = format!("idx:{}", common::asset("fashion-mnist").display());
    ["extract", "--encoder", "raw:14", "--dataset", &fm, "--split", "train", "--limit", "5000", "--batch-size", "64", "--cache-dir", cache_dir.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn bbeval(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bbeval"));
    cmd.args(args).current_dir(common::root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run bbeval")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect();
    v.sort();
    v
}

/// The single file an extraction into `dir` produced, read whole (checksums and ids checked).
fn table(dir: &Path) -> cache::FeatureTable {
    let files = parquet_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    cache::read(&files[0]).unwrap()
}

fn reference() -> &'static cache::FeatureTable {
    static REF: std::sync::OnceLock<(tempfile::TempDir, cache::FeatureTable)> = std::sync::OnceLock::new();
    &REF.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let o = bbeval(&extract_args(dir.path()), &[]);
        assert!(o.status.success(), "{}", text(&o));
        let t = table(dir.path());
        (dir, t)
    })
    .1
}

#[test]
fn a_killed_extraction_resumes_to_the_uninterrupted_result() {
    let want = reference();
    // Killed mid-part (after 40 batches, inside part 1), between writing a part and renaming it into place,
    // right after a part, and after the final files but before the parts were cleaned up.
    for point in ["batch:40", "part-before-rename:2", "part-written:1", "assembled-before-cleanup:1"] {
        let dir = tempfile::tempdir().unwrap();
        let killed = bbeval(&extract_args(dir.path()), &[("BBEVAL_ABORT_AT", point)]);
        assert!(!killed.status.success(), "{point}: {}", text(&killed));
        assert!(text(&killed).contains("aborting at"), "{point}: {}", text(&killed));
        if point != "assembled-before-cleanup:1" {
            assert!(parquet_files(dir.path()).is_empty(), "{point}: nothing final may exist yet");
            let ls = bbeval(&["cache".into(), "ls".into(), "--cache-dir".into(), dir.path().display().to_string()], &[]);
            assert!(text(&ls).contains("UNFINISHED"), "{point}: {}", text(&ls));
            if point == "part-before-rename:2" {
                // The killed writer's temporary is shown as such, and collected.
                assert!(text(&ls).contains("TEMPORARY") && text(&ls).contains("killed process"), "{}", text(&ls));
                let gc = bbeval(&["cache".into(), "gc".into(), "--cache-dir".into(), dir.path().display().to_string()], &[]);
                assert!(text(&gc).contains(".tmp-") && text(&gc).contains("1 removed"), "{}", text(&gc));
            }
        }
        let again = bbeval(&extract_args(dir.path()), &[]);
        assert!(again.status.success(), "{point}: {}", text(&again));
        // Every kill but the last came after part 0 was written: only parts 1 and 2 are computed again.
        let want_line = if point == "assembled-before-cleanup:1" { "cache hit" } else { "resumed: 1 of this call's 3 parts" };
        assert!(text(&again).contains(want_line), "{point}: {}", text(&again));
        let got = table(dir.path());
        assert_eq!(got.ids, want.ids, "{point}");
        assert_eq!(got.labels, want.labels, "{point}");
        assert_eq!(got.values, want.values, "{point}");
        // Parts of a job whose files were written before its process died are collected too.
        let gc = bbeval(&["cache".into(), "gc".into(), "--cache-dir".into(), dir.path().display().to_string()], &[]);
        assert!(gc.status.success(), "{}", text(&gc));
        let left = bbeval(&["cache".into(), "ls".into(), "--cache-dir".into(), dir.path().display().to_string()], &[]);
        assert!(!text(&left).contains("TEMPORARY") && !text(&left).contains("UNFINISHED"), "{point}: {}", text(&left));
    }
}

#[test]
fn shards_assemble_into_the_single_process_table() {
    let want = reference();
    let dir = tempfile::tempdir().unwrap();
    let shard = |s: &str| {
        let mut a = extract_args(dir.path());
        a.extend(["--shard".into(), s.into()]);
        bbeval(&a, &[])
    };
    for s in ["0/3", "2/3"] {
        let o = shard(s);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(&format!("shard {s} done")), "{}", text(&o));
    }
    assert!(parquet_files(dir.path()).is_empty(), "shards never assemble");
    let merge = || bbeval(&["cache".into(), "merge".into(), "--cache-dir".into(), dir.path().display().to_string()], &[]);
    let o = merge();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("part 1 (images 2048–4095, shard 1/3)"), "{}", text(&o));

    // A part of another extraction dropped into this one is named, never used.
    let jobs = dir.path().join("parts");
    let job = std::fs::read_dir(&jobs).unwrap().next().unwrap().unwrap().path();
    let other = tempfile::tempdir().unwrap();
    let mut a = extract_args(other.path());
    a[8] = "4000".into(); // --limit: other images, another job
    a.extend(["--shard".into(), "1/2".into()]);
    assert!(bbeval(&a, &[]).status.success());
    let foreign = std::fs::read_dir(other.path().join("parts")).unwrap().next().unwrap().unwrap().path().join("part-000001.parquet");
    std::fs::copy(&foreign, job.join("part-000001.parquet")).unwrap();
    let o = merge();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("part-000001.parquet") && text(&o).contains("foreign"), "{}", text(&o));
    std::fs::remove_file(job.join("part-000001.parquet")).unwrap();

    let o = shard("1/3");
    assert!(o.status.success(), "{}", text(&o));
    let o = merge();
    assert!(o.status.success(), "{}", text(&o));
    let got = table(dir.path());
    assert_eq!((&got.ids, &got.labels, &got.values), (&want.ids, &want.labels, &want.values));
    // The merged file is the same cache entry: a plain extract is now a hit.
    assert!(text(&bbeval(&extract_args(dir.path()), &[])).contains("cache hit"));
}

#[test]
fn two_processes_on_one_key_share_the_work() {
    let want = reference();
    let dir = tempfile::tempdir().unwrap();
    let spawn = || Command::new(env!("CARGO_BIN_EXE_bbeval")).args(extract_args(dir.path())).current_dir(common::root()).output();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    let got = table(dir.path());
    assert_eq!((&got.ids, &got.values), (&want.ids, &want.values));
}
