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

/// The shipped run's config (eval/bigbigan-fmnist.toml) written into `dir` with `dir` as its out_dir.
fn shipped_config_in(dir: &std::path::Path) -> std::path::PathBuf {
    let config = std::fs::read_to_string(common::root().join("eval/bigbigan-fmnist.toml")).unwrap();
    let config = config.replacen("seed = 0\n", &format!("seed = 0\nout_dir = \"{}\"\n", dir.display()), 1);
    let path = dir.join("shipped.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The shipped run's generator export is re-created from its committed checkpoint (`make build` does this:
/// the 1.7 MB export is not committed); without a checkpoint the error names the folder and the fix. The
/// pairing probe reads the same checkpoint.
#[test]
fn train_bigbigan_export_generator_re_creates_the_shipped_generator() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = common::root().join("results/bigbigan-fmnist/checkpoint");
    let path = shipped_config_in(dir.path());
    let args = ["train-bigbigan", "--config", path.to_str().unwrap(), "--export-generator", "--threads", "2"];

    let (code, out) = bbeval(&args);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("no checkpoint to export the generator from") && out.contains(&dir.path().join("checkpoint").display().to_string()), "{out}");

    std::fs::create_dir_all(dir.path().join("checkpoint")).unwrap();
    for f in std::fs::read_dir(&shipped).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join("checkpoint").join(f.file_name().unwrap())).unwrap();
    }
    let (code, out) = bbeval(&args);
    assert_eq!(code, 0, "{out}");
    let manifest = dir.path().join("export/bigbigan-fmnist-g.toml");
    assert!(out.contains("at step 7000") && manifest.is_file(), "{out}");
    assert!(std::fs::read_to_string(&manifest).unwrap().contains("source = \"bigbigan-fmnist step 7000\""));
    assert!(!dir.path().join("export/bigbigan-fmnist-e.pt").exists(), "only the generator is exported");
    let g = bbeval::genmetrics::generator::Generator::open(&manifest, tch::Device::Cpu).unwrap();
    let images = g.generate(&vec![0.5f32; 120], 1).unwrap();
    assert_eq!(images.size(), [1, 3, 28, 28]);

    // The pairing probe on the same checkpoint: its own D checks E's pairing of real images a little (59.0%
    // measured 2026-11-29, docs/bigbigan-mini.md, "Why") and ignores G's (51.2%); one step of the fresh D is enough here.
    let (code, out) = bbeval(&["train-bigbigan", "--config", path.to_str().unwrap(), "--pairing-probe", "1", "--threads", "2", "--json", "-q"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let generator_side = v["game_d_scores_own_pair_lower"].as_f64().unwrap();
    let encoder_side = v["game_d_scores_own_encoder_pair_higher"].as_f64().unwrap();
    assert!((generator_side - 0.512).abs() < 0.02, "{out}");
    assert!((encoder_side - 0.590).abs() < 0.02, "{out}");
    // E follows from the shipped E: corr(z, E(G(z))) of the run's E on the held-out latents is 0.006 (measured
    // 2026-11-29; the diagnostics' 0.00–0.02), the same start for both targets, at the run's E learning rate.
    let (towards_d, towards_g) = (v["e_follows_fresh_d"].as_array().unwrap(), v["e_follows_g"].as_array().unwrap());
    assert_eq!(towards_d.iter().map(|p| p["step"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1], "{out}");
    assert_eq!(towards_d[0], towards_g[0], "{out}");
    assert!((towards_d[0]["corr"].as_f64().unwrap() - 0.006).abs() < 0.005, "{out}");
    assert_eq!(v["lr_e"].as_f64(), Some(2e-4), "{out}");
}

/// `--plot-log` draws a run's training plot from its log alone (a run trained without fonts, as on the GPU
/// image, has none); without a log the error names it and the fix.
#[test]
fn train_bigbigan_plot_log_draws_the_plot_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = shipped_config_in(dir.path());
    let args = ["train-bigbigan", "--config", path.to_str().unwrap(), "--plot-log"];
    let (code, out) = bbeval(&args);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("no training log to plot") && out.contains(&dir.path().join("train_log.csv").display().to_string()), "{out}");

    std::fs::copy(common::root().join("results/bigbigan-fmnist/train_log.csv"), dir.path().join("train_log.csv")).unwrap();
    let (code, out) = bbeval(&args);
    assert_eq!(code, 0, "{out}");
    let png = std::fs::read(dir.path().join("train_log.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG", "{out}");
    let (code, out) = bbeval(&["train-bigbigan", "--config", path.to_str().unwrap(), "--plot-log", "--resume"]);
    assert_eq!(code, 2, "clap's usage error: {out}");
}

/// Every config and run file shipped in eval/ loads (a typo in one, e.g. a run file written for a GPU run
/// that has not happened yet, is caught here rather than by its first user). A training config names its
/// dataset as a string (`dataset = "idx:..."`), a run file as a `[dataset]` table.
#[test]
fn every_shipped_training_config_and_run_file_loads() {
    let (mut configs, mut run_files) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(common::root().join("eval")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let value: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if value.get("dataset").is_some_and(|d| d.is_str()) {
            bbeval::bigbigan::TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            configs.push(name);
        } else {
            bbeval::runfile::RunFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            run_files.push(name);
        }
    }
    configs.sort();
    run_files.sort();
    for shipped in ["bigbigan-fmnist.toml", "bigbigan-fmnist-gpu.toml", "bigan-fmnist-mlp.toml"] {
        assert!(configs.iter().any(|c| c == shipped), "{shipped} not among the training configs {configs:?}");
    }
    for shipped in ["demo.toml", "ci-smoke.toml", "bigbigan-fmnist-probe.toml", "bigbigan-fmnist-gpu-probe.toml", "imagenet-table2.toml"] {
        assert!(run_files.iter().any(|c| c == shipped), "{shipped} not among the run files {run_files:?}");
    }
}

/// A time budget that is not a number of seconds is refused before anything is read or trained, with the
/// flag named; `--max-seconds` cannot go with `--export-generator` (which trains nothing).
#[test]
fn train_bigbigan_refuses_a_negative_time_budget() {
    let (code, text) = bbeval(&["train-bigbigan", "--config", "eval/bigbigan-fmnist.toml", "--max-seconds=-1"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("--max-seconds -1") && text.contains("seconds ≥ 0"), "{text}");
    let (code, text) = bbeval(&["train-bigbigan", "--config", "eval/bigbigan-fmnist.toml", "--max-seconds", "5", "--export-generator"]);
    assert_eq!(code, 2, "clap's usage error: {text}");
    assert!(text.contains("--max-seconds") && text.contains("--export-generator"), "{text}");
}
