//! The probe back-ends against scikit-learn on the same real features.
//!
//! Goldens: tools/gen_probe_golden.py, sklearn 1.9.1 LogisticRegression(lbfgs, tol 1e-8, C = 1/(λ n)) on
//! features standardised with the fit rows' statistics (constant dimensions → 0, as bbeval does):
//! * raw pixels — first 3000 Fashion-MNIST train images fit, first 1000 t10k scored, λ = 1e-2:
//!   top-1 0.8290, top-5 0.9950 (an independent scipy L-BFGS-B on the same objective agrees);
//! * EfficientNet-Lite0 AvePool — the Parquet files this test extracts (seeded subsets: 3000 train,
//!   1000 val, seed 0), read back with pyarrow, λ = 1e-3: top-1 0.8550, top-5 0.9960 (155 iterations).
//!
//! * the objective `mean CE + λ/2 ‖W‖²` of the raw-pixel fit (same script): 0.299554379 at sklearn's default
//!   tol 1e-4 (276 iterations), 0.299503321 at tol 1e-8.
//!
//! Top-1 must agree within 0.3 points (the bound); top-5, a coarser metric, within 0.5.

mod common;

use bbeval::data::{DatasetSpec, Preprocess};
use bbeval::encoder;
use bbeval::features::{cache, extract, ExtractOptions};
use bbeval::probe::metrics::{accuracy, topk_correct};
use bbeval::probe::lbfgs::{Lbfgs, Stop};
use bbeval::probe::sgd::{fit_grid, Sgd};
use bbeval::probe::source::InMemory;
use bbeval::probe::{linfa_backend, Head, LinearModel, Standardiser};
use ndarray::Array2;

/// 0.3 points of top-1, as the issue asks.
const AGREEMENT: f64 = 0.003;
const AGREEMENT_TOP5: f64 = 0.005;

const PIXELS_L2: f64 = 1e-2;
const PIXELS_TOP1: f64 = 0.8290;
const PIXELS_TOP5: f64 = 0.9950;
const PIXELS_OBJECTIVE_TOL4: f64 = 0.299554379;
const PIXELS_OBJECTIVE_OPTIMUM: f64 = 0.299503321;

const EFFNET_L2: f64 = 1e-3;
const EFFNET_TOP1: f64 = 0.8550;
const EFFNET_TOP5: f64 = 0.9960;

fn fashion_spec() -> DatasetSpec {
    DatasetSpec::parse(&format!("idx:{}", common::asset("fashion-mnist").display())).unwrap()
}

fn fashion_pixels(split: &str, n: usize) -> (Array2<f32>, Vec<u32>) {
    let data = common::open(&fashion_spec(), split).unwrap();
    let pre = Preprocess::native(1);
    let mut x = Array2::<f32>::zeros((n, 784));
    for (i, s) in data.samples[..n].iter().enumerate() {
        let (v, _) = pre.load(s).unwrap();
        x.row_mut(i).assign(&ndarray::ArrayView1::from(&v[..]));
    }
    (x, data.labels()[..n].to_vec())
}

/// EfficientNet-Lite0 AvePool of seeded Fashion-MNIST subsets, cached in the repository's
/// `.bbeval-cache` so that reruns skip the extraction (about 2 minutes on 2 cores).
fn effnet_features(split: &str, limit: usize) -> (Array2<f32>, Vec<u32>, std::path::PathBuf) {
    let data = common::open(&fashion_spec(), split).unwrap().subset(Some(limit), 0);
    let mut enc = encoder::open(common::efficientnet_manifest().to_str().unwrap(), data.spec.kind.channels(), &common::cpu()).unwrap();
    let opts = ExtractOptions { cache_dir: common::root().join(".bbeval-cache"), batch_size: 4, strict: true, ..Default::default() };
    let e = extract(enc.as_mut(), &data, &opts).unwrap();
    let path = e.files["avepool"].clone();
    let t = cache::read(&path).unwrap();
    (t.values, t.labels, path)
}

fn standardised(x: Array2<f32>, xv: Array2<f32>) -> (Array2<f32>, Array2<f32>) {
    let s = Standardiser::fit(x.view());
    (s.apply(x.view()), s.apply(xv.view()))
}

fn top1_top5(m: &LinearModel, x: &Array2<f32>, y: &[u32]) -> (f64, f64) {
    let s = m.scores(x.view());
    (accuracy(&topk_correct(s.view(), y, 1)), accuracy(&topk_correct(s.view(), y, 5)))
}

fn sgd(epochs: usize, seed: u64) -> Sgd {
    Sgd { l2: vec![], lr: vec![], epochs, batch_size: 128, seed, resident_bytes: Some(0) }
}

fn torch_fit(x: &Array2<f32>, y: &[u32], l2: f64, seed: u64) -> LinearModel {
    fit_grid(x.view(), y, 10, &[Head { l2, lr: Some(0.05) }], &sgd(40, seed), tch::Device::Cpu).unwrap().remove(0)
}

fn lbfgs(tol: f64) -> Lbfgs {
    Lbfgs { l2: vec![], tol, max_iter: 1000, history: 10, resident_bytes: None }
}

/// The full-batch L-BFGS back-end on a matrix, every head of `l2s` at once (optionally warm-started).
fn lbfgs_fit(x: &Array2<f32>, y: &[u32], l2s: &[f64], tol: f64, init: Option<&[LinearModel]>) -> bbeval::probe::lbfgs::LbfgsReport {
    let rows = InMemory { name: "x".into(), values: x.view(), labels: y, chunk_rows: x.nrows() };
    let heads: Vec<Head> = l2s.iter().map(|&l2| Head { l2, lr: None }).collect();
    lbfgs(tol).fit_report(&rows, 10, &heads, init, &common::cpu()).unwrap()
}

fn assert_close(what: &str, got: f64, want: f64) {
    assert_within(what, got, want, AGREEMENT);
}

fn assert_within(what: &str, got: f64, want: f64, tolerance: f64) {
    // 1e-9 absorbs the binary representation of k/1000 accuracies.
    assert!((got - want).abs() <= tolerance + 1e-9, "{what}: {got} vs {want}");
}

#[test]
fn linfa_matches_sklearn_on_raw_pixels() {
    let (x, y) = fashion_pixels("train", 3000);
    let (xv, yv) = fashion_pixels("val", 1000);
    let (x, xv) = standardised(x, xv);
    let linfa = linfa_backend::fit(x.view(), &y, 10, PIXELS_L2, 500).unwrap();
    let (l1, l5) = top1_top5(&linfa, &xv, &yv);
    assert_close("linfa top-1", l1, PIXELS_TOP1);
    assert_within("linfa top-5", l5, PIXELS_TOP5, AGREEMENT_TOP5);
}

/// The default optimiser: L-BFGS over many λ heads at once, each head against sklearn's golden, and its
/// objective at sklearn's default tol at least as low as sklearn's at the same tol.
#[test]
fn lbfgs_heads_match_sklearn_at_its_default_tol() {
    let (x, y) = fashion_pixels("train", 3000);
    let (xv, yv) = fashion_pixels("val", 1000);
    let (x, xv) = standardised(x, xv);
    // The golden λ among others: each head must come out as if fit alone.
    let report = lbfgs_fit(&x, &y, &[1e-4, PIXELS_L2, 1e-1], 1e-4, None);
    assert!(report.stops.iter().all(|s| *s != Stop::MaxIter), "{:?}", report.stops);
    let (l1, l5) = top1_top5(&report.models[1], &xv, &yv);
    assert_close("lbfgs top-1", l1, PIXELS_TOP1);
    assert_within("lbfgs top-5", l5, PIXELS_TOP5, AGREEMENT_TOP5);
    let ours = objective(&report.models[1], &x, &y, PIXELS_L2);
    eprintln!("objective at λ={PIXELS_L2}: lbfgs {ours:.9} ({} iterations), sklearn {PIXELS_OBJECTIVE_TOL4} (276)", report.iterations[1]);
    assert!(ours <= PIXELS_OBJECTIVE_TOL4 + 1e-6, "lbfgs {ours} vs sklearn {PIXELS_OBJECTIVE_TOL4} at the same tol");
    assert!(ours >= PIXELS_OBJECTIVE_OPTIMUM - 1e-6, "below the optimum: {ours}");
}

/// A head warm-started from another λ's solution (the protocol's refit starts from the selection fit)
/// reaches the same optimum as a cold start.
#[test]
fn warm_started_heads_reach_the_cold_start_optimum() {
    let (x, y) = fashion_pixels("train", 2000);
    let (xv, yv) = fashion_pixels("val", 1000);
    let (x, xv) = standardised(x, xv);
    let strong = lbfgs_fit(&x, &y, &[1e-2], 1e-5, None).models;
    let cold = lbfgs_fit(&x, &y, &[1e-3], 1e-5, None);
    let warm = lbfgs_fit(&x, &y, &[1e-3], 1e-5, Some(&strong));
    let (fc, fw) = (objective(&cold.models[0], &x, &y, 1e-3), objective(&warm.models[0], &x, &y, 1e-3));
    eprintln!("cold {fc:.9} ({} it), warm {fw:.9} ({} it)", cold.iterations[0], warm.iterations[0]);
    // Both stop at tol 1e-5 on the gradient, not at the exact optimum: the warm start must end at least as
    // low as the cold one (measured: 0.082897543 vs 0.082900307).
    assert!(fw <= fc + 1e-5 * fc, "warm {fw} above cold {fc}");
    assert!(warm.iterations[0] < cold.iterations[0], "a warm start from a nearby optimum takes fewer iterations");
    let (c1, _) = top1_top5(&cold.models[0], &xv, &yv);
    let (w1, _) = top1_top5(&warm.models[0], &xv, &yv);
    assert_within("warm vs cold top-1", w1, c1, 0.002);
}

/// The protocol's selection grid runs as a λ path (strong → weak, each head warm-started from the one
/// before, as sklearn's LogisticRegressionCV): every head must reach the objective of its own cold start,
/// at sklearn's default tol, with fewer passes in all than the cold starts' iterations.
#[test]
fn the_lambda_path_reaches_each_cold_start_optimum() {
    let (x, y) = fashion_pixels("train", 2000);
    let (xv, yv) = fashion_pixels("val", 1000);
    let (x, xv) = standardised(x, xv);
    let grid = [1e-4, 1e-3, 1e-2, 1e-1];
    let rows = InMemory { name: "x".into(), values: x.view(), labels: &y, chunk_rows: x.nrows() };
    let heads: Vec<Head> = grid.iter().map(|&l2| Head { l2, lr: None }).collect();
    let path = lbfgs(1e-4).fit_path(&rows, 10, &heads, &common::cpu()).unwrap();
    let mut cold_iterations = 0;
    for (k, &l2) in grid.iter().enumerate() {
        let cold = lbfgs_fit(&x, &y, &[l2], 1e-4, None);
        cold_iterations += cold.iterations[0];
        let (fc, fp) = (objective(&cold.models[0], &x, &y, l2), objective(&path.models[k], &x, &y, l2));
        eprintln!("λ {l2}: cold {fc:.9} ({} it), path {fp:.9} ({} it, {:?})", cold.iterations[0], path.iterations[k], path.stops[k]);
        assert!(fp <= fc + 1e-4 * fc, "λ {l2}: path {fp} above cold start {fc}");
        let (c1, _) = top1_top5(&cold.models[0], &xv, &yv);
        let (p1, _) = top1_top5(&path.models[k], &xv, &yv);
        // Where both stop at one optimum, they predict alike. Where the path stops clearly lower, the cold start
        // stopped short on a flat objective (λ 1e-4 on a 2-core machine of 2026-11-30: cold 0.020515 after 128
        // iterations, path 0.020155, top-1 0.791 vs 0.795), and the path must only predict no worse.
        if fp >= fc - 1e-3 * fc {
            assert_within(&format!("λ {l2}: path vs cold top-1"), p1, c1, AGREEMENT);
        } else {
            assert!(p1 >= c1 - AGREEMENT - 1e-9, "λ {l2}: path top-1 {p1} below the cold start's {c1}, though its objective {fp} is lower than {fc}");
        }
    }
    eprintln!("path: {} passes; cold starts: {cold_iterations} iterations", path.passes);
    assert!(path.passes < cold_iterations, "the path must save work: {} passes vs {cold_iterations}", path.passes);
}

/// `mean CE + λ/2 ‖W‖²` in f64 (sklearn's objective with C = 1/(λ n)).
fn objective(m: &LinearModel, x: &Array2<f32>, y: &[u32], l2: f64) -> f64 {
    let s = m.scores(x.view());
    let ce: f64 = s
        .rows()
        .into_iter()
        .zip(y)
        .map(|(r, &l)| {
            let max = r.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v)));
            let lse = max + r.iter().map(|&v| (f64::from(v) - max).exp()).sum::<f64>().ln();
            lse - f64::from(r[l as usize])
        })
        .sum();
    ce / x.nrows() as f64 + 0.5 * l2 * m.w.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>()
}

#[test]
fn both_backends_agree_with_sklearn_and_each_other_on_efficientnet_features() {
    let (x, y, train_path) = effnet_features("train", 3000);
    let (xv, yv, val_path) = effnet_features("val", 1000);
    eprintln!("golden: tools/gen_probe_golden.py --features {} {} --l2 {EFFNET_L2}", train_path.display(), val_path.display());
    let (x, xv) = standardised(x, xv);
    let linfa = linfa_backend::fit(x.view(), &y, 10, EFFNET_L2, 500).unwrap();
    let (l1, l5) = top1_top5(&linfa, &xv, &yv);
    let torch = torch_fit(&x, &y, EFFNET_L2, 0);
    let (t1, t5) = top1_top5(&torch, &xv, &yv);
    let lb = lbfgs_fit(&x, &y, &[EFFNET_L2], 1e-4, None);
    let (b1, b5) = top1_top5(&lb.models[0], &xv, &yv);
    eprintln!("sklearn {EFFNET_TOP1}/{EFFNET_TOP5}, linfa {l1}/{l5}, sgd {t1}/{t5}, lbfgs {b1}/{b5} ({} iterations)", lb.iterations[0]);
    assert_close("linfa top-1", l1, EFFNET_TOP1);
    assert_close("sgd top-1", t1, EFFNET_TOP1);
    assert_close("lbfgs top-1", b1, EFFNET_TOP1);
    assert_close("linfa vs sgd top-1", l1, t1);
    assert_within("linfa top-5", l5, EFFNET_TOP5, AGREEMENT_TOP5);
    assert_within("sgd top-5", t5, EFFNET_TOP5, AGREEMENT_TOP5);
    assert_within("lbfgs top-5", b5, EFFNET_TOP5, AGREEMENT_TOP5);
}

#[test]
fn same_seed_gives_identical_weights_on_cpu() {
    let (x, y) = fashion_pixels("train", 1000);
    let (x, _) = standardised(x.clone(), x);
    let a = torch_fit(&x, &y, PIXELS_L2, 5);
    let b = torch_fit(&x, &y, PIXELS_L2, 5);
    assert_eq!(a.w, b.w);
    assert_eq!(a.b, b.b);
    let c = torch_fit(&x, &y, PIXELS_L2, 6);
    assert_ne!(a.w, c.w, "a different seed must change the batch order");
}


/// The probe reads the Parquet cache in chunks (ImageNet-size sets never sit in memory at once): reading
/// in one chunk or many gives the in-memory protocol exactly (a set under PROBE_RESIDENT_BYTES is fit in
/// memory); the streaming trainer fed by the cache or by an in-memory matrix cut the same way trains
/// identical weights, and chunking changes its batch order.
#[test]
fn streaming_from_the_parquet_cache_in_chunks() {
    use bbeval::probe::protocol::{run, run_rows, ProbeSetup};
    use bbeval::probe::sgd::fit_grid_rows;
    use bbeval::probe::source::ParquetRows;
    use bbeval::probe::{Backend, ProbeConfig};
    let (_, _, train_path) = effnet_features("train", 3000);
    let (_, _, val_path) = effnet_features("val", 1000);
    let (train, val) = (cache::read(&train_path).unwrap(), cache::read(&val_path).unwrap());
    let open = |p: &std::path::Path, rows| ParquetRows::open(p, rows).unwrap();
    for backend in [Backend::Sgd, Backend::Lbfgs] {
        let config = |chunk_rows| ProbeConfig { backend, epochs: 10, l2: vec![EFFNET_L2], lr: vec![0.05], chunk_rows, ..Default::default() };
        let whole_probe = config(1 << 20).check("test").unwrap();
        let setup = |probe| ProbeSetup { probe, train_val: 300, split_seed: 0, bn_crelu_from_avepool: true, ctx: common::cpu() };
        let whole = run((train.values.view(), &train.labels), (val.values.view(), &val.labels), &setup(&whole_probe)).unwrap();
        let one_chunk = run_rows(&open(&train_path, 1 << 20), &open(&val_path, 1 << 20), &setup(&whole_probe)).unwrap();
        assert_eq!((one_chunk.top1, one_chunk.top5, &one_chunk.grid), (whole.top1, whole.top5, &whole.grid), "{backend:?}");

        // Read in chunks of at least 700 rows (whole row groups: 2048 rows, then the short rest):
        // transforms and scoring stream, the fit itself loads the (small) matrix once.
        let chunked_probe = config(700).check("test").unwrap();
        let chunked = run_rows(&open(&train_path, 700), &open(&val_path, 700), &setup(&chunked_probe)).unwrap();
        // Statistics summed chunk by chunk in row order are the whole-matrix ones: nothing changes.
        assert_eq!((chunked.top1, chunked.top5, &chunked.grid), (whole.top1, whole.top5, &whole.grid), "{backend:?}");
        assert_eq!((chunked.n_fit, chunked.n_train_val, chunked.n_val), (2700, 300, 1000));
    }

    let opts = sgd(2, 3);
    let heads = [Head { l2: EFFNET_L2, lr: Some(0.05) }];
    let from_parquet = fit_grid_rows(&open(&train_path, 700), 10, &heads, &opts, tch::Device::Cpu).unwrap();
    let memory = InMemory { name: "train".into(), values: train.values.view(), labels: &train.labels, chunk_rows: 2048 };
    let from_memory = fit_grid_rows(&memory, 10, &heads, &opts, tch::Device::Cpu).unwrap();
    assert_eq!(from_parquet[0].w, from_memory[0].w);
    assert_ne!(from_parquet[0].w, fit_grid(train.values.view(), &train.labels, 10, &heads, &opts, tch::Device::Cpu).unwrap()[0].w, "chunking changes the batch order");
}
