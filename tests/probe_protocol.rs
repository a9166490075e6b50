//! The probe protocol: train-val selection, bad inputs, and a run file end to end on real data.

mod common;

use bbeval::features::cache;
use bbeval::probe::protocol::{run, ProbeOutcome, ProbeSetup};
use bbeval::probe::{Backend, ProbeConfig};
use bbeval::report::Results;
use bbeval::run::RunOptions;
use bbeval::Error;
use ndarray::Array2;

fn config() -> ProbeConfig {
    ProbeConfig { epochs: 3, l2: vec![1e-4], lr: vec![0.1], ..ProbeConfig::default() }
}

fn probe(train: (&Array2<f32>, &[u32]), val: (&Array2<f32>, &[u32]), config: &ProbeConfig, train_val: usize) -> bbeval::Result<ProbeOutcome> {
    let probe = config.check("test").unwrap();
    let setup = ProbeSetup { probe: &probe, train_val, split_seed: 0, bn_crelu_from_avepool: false, ctx: common::cpu() };
    run((train.0.view(), train.1), (val.0.view(), val.1), &setup)
}

#[test]
fn bad_probe_inputs_are_clear_errors() {
    let y: Vec<u32> = (0..20).map(|i| i % 2).collect();
    let ones = Array2::ones((20, 4));
    let err = probe((&ones, &y), (&Array2::ones((5, 5)), &[0; 5]), &config(), 4).unwrap_err();
    assert!(matches!(err, Error::WidthMismatch { train: 4, other: 5, .. }), "{err}");

    let err = probe((&ones, &y), (&Array2::ones((5, 4)), &[0, 1, 7, 0, 1]), &config(), 4).unwrap_err();
    assert!(matches!(err, Error::UnseenClass { label: 7, .. }), "{err}");

    let mut x = Array2::ones((20, 4));
    x[[3, 2]] = f32::NAN;
    let err = probe((&x, &y), (&Array2::ones((5, 4)), &[0; 5]), &config(), 4).unwrap_err().to_string();
    assert!(err.contains("NaN") && err.contains("row 3"), "{err}");

    // One class only: there is nothing to learn, and no accuracy means anything (was 100 ± 0).
    let err = probe((&ones, &[1; 20]), (&Array2::ones((5, 4)), &[1; 5]), &config(), 4).unwrap_err();
    assert!(matches!(err, Error::Labels { .. }) && err.to_string().contains("1 class"), "{err}");

    let err = probe((&ones, &y), (&Array2::ones((5, 4)), &[0; 5]), &config(), 20).unwrap_err();
    assert!(matches!(err, Error::TooFewRows { rows: 20, held_out: 20 }), "{err}");

    let err = cache::read(std::path::Path::new("/nonexistent/x.parquet")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/x.parquet"), "{err}");
}

#[test]
fn selection_uses_train_val_only_and_separable_data_is_solved() {
    // Two well-separated classes: any reasonable probe gets 100% on val.
    let n = 200;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| if j == 0 { if i % 2 == 0 { 2.0 } else { -2.0 } } else { ((i * 31 + j * 7) % 13) as f32 / 13.0 });
    let y: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let xv = x.slice(ndarray::s![..50, ..]).to_owned();
    for backend in [Backend::Sgd, Backend::Lbfgs, Backend::Linfa] {
        let cfg = ProbeConfig { backend, l2: vec![1e-4, 1e-1], ..config() };
        let out = probe((&x, &y), (&xv, &y[..50]), &cfg, 40).unwrap();
        assert_eq!(out.top1, 1.0, "{backend:?}");
        assert_eq!(out.backend, backend);
        assert_eq!((out.n_fit, out.n_train_val, out.n_val), (160, 40, 50));
        assert_eq!(out.grid.len(), 2);
        assert_eq!(out.chosen, out.grid[0], "ties go to the first grid point");
    }
    // `auto` fits resident sets by L-BFGS.
    let out = probe((&x, &y), (&xv, &y[..50]), &config(), 40).unwrap();
    assert_eq!(out.backend, Backend::Lbfgs);
}

/// Raw pixels of a small seeded Fashion-MNIST subset, through `bbeval run`, twice.
#[test]
fn run_file_end_to_end_is_deterministic_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let run_path = dir.path().join("small.toml");
    let text = format!(
        r#"name = "small"
cache_dir = "{cache}"
out_dir = "{out}"
[dataset]
spec = "idx:{fm}"
train_limit = 2000
val_limit = 500
[probe]
l2 = [1e-4, 1e-2]
[[rows]]
method = "Raw pixels"
encoder = "raw"
feature = "pixels"
"#,
        cache = dir.path().join("cache").display(),
        out = dir.path().join("out").display(),
        fm = common::asset("fashion-mnist").display()
    );
    std::fs::write(&run_path, text).unwrap();
    let opts = RunOptions { strict: true, ..RunOptions::cpu() };
    let (first, out) = common::run(&run_path, &opts).unwrap();
    let row = &first.rows[0];
    assert!(!row.cache_hit);
    // Raw-pixel logistic regression on Fashion-MNIST is ~0.80–0.84 top-1 with 2k training images.
    assert!(row.probe.top1 > 0.75 && row.probe.top1 < 0.9, "{}", row.probe.top1);
    assert!(row.probe.top5 > 0.97);
    assert!(row.probe.top1_ci95.0 < row.probe.top1 && row.probe.top1 < row.probe.top1_ci95.1);
    assert_eq!((row.probe.n_fit, row.probe.n_train_val, row.probe.n_val), (1800, 200, 500));
    assert_eq!(row.probe.per_class_top1.len(), 10);

    let (second, _) = common::run(&run_path, &opts).unwrap();
    assert!(second.rows[0].cache_hit);
    assert_eq!(second.rows[0].probe.top1, row.probe.top1);
    assert_eq!(second.rows[0].probe.grid, row.probe.grid);

    let loaded = Results::load(&out.join("results.json")).unwrap();
    assert_eq!(loaded.rows[0].probe.top1, row.probe.top1);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| Raw pixels | — | pixels |") && md.contains(&format!("Protocol v{}", bbeval::protocol::PROTOCOL_VERSION)), "{md}");
    assert!(md.contains("Lbfgs") && md.contains("cpu f32"), "{md}");
    assert_eq!(loaded.provenance.device, "cpu");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2);
    assert!(csv.lines().nth(1).unwrap().starts_with("Raw pixels,—,pixels,"));
}
