//! `bbeval compare` and `bbeval check` on real Fashion-MNIST runs: an identical re-run passes, an encoder
//! whose features got noisier is caught, missing rows and mixed protocol versions are errors, and the
//! plots are written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bbeval::compare::check::{check, CheckOptions, Tolerances};
use bbeval::compare::{deltas, plots, step_of, versions_agree};
use bbeval::features::cache;
use bbeval::report::Results;
use bbeval::run::RunOptions;
use bbeval::Error;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

fn opts() -> RunOptions {
    RunOptions { strict: true, ..RunOptions::cpu() }
}

/// A raw-pixel run (two probe rows: 28×28 and 14×14 pixels) of a seeded Fashion-MNIST subset.
fn write_run(dir: &Path, name: &str, step: u64) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"name = "{name}"
step = {step}
cache_dir = "{cache}"
out_dir = "{out}"
[dataset]
spec = "idx:{fm}"
train_limit = 1500
val_limit = 500
[probe]
l2 = [1e-4, 1e-2]
lr = [0.02, 0.05]
epochs = 8
[[rows]]
method = "Raw pixels"
encoder = "raw"
feature = "pixels"
[[rows]]
method = "Raw pixels 14x14"
encoder = "raw:14"
feature = "pixels"
"#,
        cache = dir.join("cache").display(),
        out = dir.join("results").join(name).display(),
        fm = common::asset("fashion-mnist").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn options() -> CheckOptions {
    CheckOptions { tolerances: Tolerances::parse(&["0.5".into()]).unwrap(), interval: false, allow_mixed_versions: false }
}

/// Add N(0, sigma²) noise to every cached feature of the 28×28 raw encoder (same key, same file name).
fn degrade_cache(cache_dir: &Path, sigma: f32) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let noise = Normal::new(0.0f32, sigma).unwrap();
    for entry in std::fs::read_dir(cache_dir).unwrap() {
        let path = entry.unwrap().path();
        // The cache directory also holds finished results (`results/`) and the stat cache.
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let mut table = cache::read(&path).unwrap();
        if table.key.encoder != "raw" {
            continue;
        }
        table.values.mapv_inplace(|v| v + noise.sample(&mut rng));
        assert_eq!(cache::write(cache_dir, &table).unwrap(), path);
    }
}

#[test]
fn identical_rerun_passes_and_noisier_features_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let run = write_run(dir.path(), "smoke", 0);
    let (baseline, out) = common::run(&run, &opts()).unwrap();
    // Keep the baseline aside: later runs of the same file overwrite results/smoke.
    let baseline_json = dir.path().join("baseline.json");
    std::fs::copy(out.join("results.json"), &baseline_json).unwrap();

    // The same run again (cache hit): every delta is 0 and its paired interval is [0, 0].
    let (same, _) = common::run(&run, &opts()).unwrap();
    let report = check(&baseline, &same, &options()).unwrap();
    assert!(report.passed);
    assert_eq!(report.findings.len(), 2 * 3, "2 rows × top1/top5/train_val_top1");
    for f in &report.findings {
        assert_eq!(f.delta.delta, 0.0);
        if f.delta.metric != "train_val_top1" {
            assert_eq!(f.delta.ci95, Some((0.0, 0.0)));
        }
    }

    // Noise on the 28×28 pixels (σ = 1.5 on [0, 1] pixels) costs many points; the 14×14 row is untouched.
    degrade_cache(&dir.path().join("cache"), 1.5);
    let (noisy, _) = common::run(&run, &opts()).unwrap();
    let report = check(&baseline, &noisy, &options()).unwrap();
    assert!(!report.passed);
    let regressed: Vec<(String, String)> = report.regressions().map(|f| (f.delta.row.method.clone(), f.delta.metric.clone())).collect();
    assert!(regressed.contains(&("Raw pixels".to_string(), "top1".to_string())), "{regressed:?}");
    assert!(regressed.iter().all(|(m, _)| m == "Raw pixels"), "{regressed:?}");
    let top1 = report.findings.iter().find(|f| f.delta.row.method == "Raw pixels" && f.delta.metric == "top1").unwrap();
    let (lo, hi) = top1.delta.ci95.unwrap();
    assert!(top1.delta.delta < -0.05 && lo <= top1.delta.delta && top1.delta.delta <= hi && hi < 0.0, "{:?}", top1.delta);
    assert!(report.regressions_markdown().contains("| smoke → smoke | Raw pixels | pixels | top1 ↑ |"));

    // The binary: exit 1 and a table of what regressed; --json for machines. (The cache is still noisy.)
    let bin = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_bbeval")).args(args).output().unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    let (code, text, log) = bin(&["check", "--baseline", baseline_json.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 1, "{text}{log}");
    assert!(text.contains("check FAILED") && text.contains("Raw pixels") && text.contains("more than the tolerance"), "{text}");
    let (code, text, log) = bin(&["check", "--baseline", baseline_json.to_str().unwrap(), "--device", "cpu", "--json", "--tolerance", "100"]);
    assert_eq!(code, 0, "a 100-point tolerance lets anything pass: {text}{log}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["passed"], true);
    // Tolerances must be numbers ≥ 0, and `--out` may never be the baseline's own folder.
    let (code, text, log) = bin(&["check", "--baseline", baseline_json.to_str().unwrap(), "--tolerance", "-1"]);
    assert_eq!(code, 2, "{text}{log}");
    assert!(log.contains("finite and ≥ 0"), "{log}");
    let (code, _, log) = bin(&["check", "--baseline", baseline_json.to_str().unwrap(), "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(log.contains("never writes over the baseline"), "{log}");
}

#[test]
fn missing_rows_and_mixed_versions_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (baseline, _) = common::run(&write_run(dir.path(), "v", 0), &opts()).unwrap();

    let mut fewer = baseline.clone();
    fewer.rows.truncate(1);
    let err = check(&baseline, &fewer, &options()).unwrap_err().to_string();
    assert!(err.contains("missing from the new run") && err.contains("Raw pixels 14x14 / pixels"), "{err}");

    let mut old = baseline.clone();
    old.protocol_version = 0;
    assert!(matches!(check(&old, &baseline, &options()), Err(Error::ProtocolMismatch { .. })));
    assert!(matches!(versions_agree(&[&baseline, &old], false), Err(Error::ProtocolMismatch { .. })));
    let allowed = CheckOptions { allow_mixed_versions: true, ..options() };
    assert!(check(&old, &baseline, &allowed).unwrap().passed);

    let mut other_data = baseline.clone();
    other_data.dataset.val_hash = "0".repeat(64);
    let err = check(&baseline, &other_data, &options()).unwrap_err().to_string();
    assert!(err.contains("other data"), "{err}");
}

#[test]
fn compare_draws_curves_over_steps_and_grid_heat_maps() {
    let dir = tempfile::tempdir().unwrap();
    // Three "checkpoints": the same data at steps 1000..3000, with more noise on earlier ones.
    let mut runs = Vec::new();
    for (step, sigma) in [(1000u64, 1.0f32), (2000, 0.5), (3000, 0.0)] {
        let sub = dir.path().join(format!("s{step}"));
        std::fs::create_dir_all(&sub).unwrap();
        let run = write_run(&sub, &format!("ckpt-{step}"), step);
        if sigma > 0.0 {
            common::run(&run, &opts()).unwrap();
            degrade_cache(&sub.join("cache"), sigma);
        }
        runs.push(common::run(&run, &opts()).unwrap().0);
    }
    assert_eq!(runs.iter().map(step_of).collect::<Vec<_>>(), [Some(1000), Some(2000), Some(3000)]);
    let refs: Vec<&Results> = runs.iter().collect();
    let series = plots::series(&refs);
    let raw = &series[&deltas::RowKey { method: "Raw pixels".into(), feature: "pixels".into() }];
    assert!(raw[0].1 < raw[2].1, "less noise, higher top-1: {raw:?}");

    // The deltas table pairs checkpoints on the same val images.
    let d = deltas::deltas(&runs[0], &runs[2]);
    assert!(d.iter().filter(|x| x.metric != "train_val_top1").all(|x| x.ci95.is_some()));
    assert!(deltas::markdown(&d).contains("ckpt-1000 → ckpt-3000"));

    let plot_dir = dir.path().join("plots");
    let curves = plots::top1_curves(&refs, &plot_dir.join("top1_vs_step")).unwrap();
    let heat = plots::grid_heatmap(&runs[2], &runs[2].rows[0], &plot_dir.join("grid")).unwrap();
    for file in curves.iter().chain(&heat) {
        assert!(std::fs::metadata(file).unwrap().len() > 1000, "{} is (nearly) empty", file.display());
    }
    // The PNG holds a drawing, not a blank canvas.
    let png = image::open(&heat[0]).unwrap().to_rgb8();
    let coloured = png.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(coloured > png.len() / 3 / 10, "{coloured} non-white pixels");
    let svg = std::fs::read_to_string(&curves[1]).unwrap();
    assert!(svg.contains("<svg") && svg.contains("polyline"), "curves SVG has no lines");
}

#[test]
fn protocol_defaults_are_pinned_to_the_protocol_version() {
    use sha2::Digest;
    let text = bbeval::protocol::protocol_defaults();
    let hash = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    assert_eq!(
        (bbeval::protocol::PROTOCOL_VERSION, &hash[..16]),
        (2, "7982a74be89c2a7e"),
        "a default that changes reported numbers changed ({text}): bump PROTOCOL_VERSION, add a line to its changelog in protocol.rs, and pin the new hash here"
    );
}
