//! The probe back-ends against scikit-learn on the same real features (Fashion-MNIST raw pixels).
//!
//! Golden: tools/gen_probe_golden.py — sklearn 1.9.1 LogisticRegression(lbfgs, C = 1/(λ n) = 1/30,
//! tol 1e-8), first 3000 train images fit, first 1000 t10k images scored, pixels/255 standardised with the
//! fit rows' statistics: top-1 0.8290, top-5 0.9950 (an independent scipy L-BFGS-B on the same objective
//! agrees). λ = 1e-2 is strong enough that SGD reaches the optimum in 40 epochs.

mod common;

use bbeval::data::{Dataset, DatasetSpec, Preprocess};
use bbeval::probe::metrics::{accuracy, topk_correct};
use bbeval::probe::torch_backend::{fit_grid, Head, TorchOptions};
use bbeval::probe::{linfa_backend, LinearModel, Standardiser};
use ndarray::Array2;

const SKLEARN_TOP1: f64 = 0.8290;
const SKLEARN_TOP5: f64 = 0.9950;
const L2: f64 = 1e-2;
/// 0.3 points of top-1, as the issue asks.
const AGREEMENT: f64 = 0.003;

fn fashion(split: &str, n: usize) -> (Array2<f32>, Vec<u32>) {
    let spec = DatasetSpec::parse(&format!("idx:{}", common::asset("fashion-mnist").display())).unwrap();
    let data = Dataset::open(&spec, split).unwrap();
    let pre = Preprocess::native(1);
    let mut x = Array2::<f32>::zeros((n, 784));
    for (i, s) in data.samples[..n].iter().enumerate() {
        let (v, _) = pre.load(s).unwrap();
        x.row_mut(i).assign(&ndarray::ArrayView1::from(&v[..]));
    }
    (x, data.labels()[..n].to_vec())
}

fn data() -> (Array2<f32>, Vec<u32>, Array2<f32>, Vec<u32>) {
    let (x, y) = fashion("train", 3000);
    let (xv, yv) = fashion("val", 1000);
    let s = Standardiser::fit(x.view());
    (s.apply(x.view()), y, s.apply(xv.view()), yv)
}

fn top1_top5(m: &LinearModel, x: &Array2<f32>, y: &[u32]) -> (f64, f64) {
    let s = m.scores(x.view());
    (accuracy(&topk_correct(s.view(), y, 1)), accuracy(&topk_correct(s.view(), y, 5)))
}

fn torch_fit(x: &Array2<f32>, y: &[u32], seed: u64) -> LinearModel {
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let opts = TorchOptions { epochs: env("EP", 40.0) as usize, batch_size: env("BS", 256.0) as usize, seed, device: tch::Device::Cpu };
    fit_grid(x.view(), y, 10, &[Head { l2: L2, lr: env("LR", 0.02) }], &opts).unwrap().remove(0)
}

#[test]
fn both_backends_agree_with_sklearn_and_each_other() {
    let (x, y, xv, yv) = data();
    let linfa = linfa_backend::fit(x.view(), &y, 10, L2, 500).unwrap();
    let (l1, l5) = top1_top5(&linfa, &xv, &yv);
    let torch = torch_fit(&x, &y, 0);
    let (t1, t5) = top1_top5(&torch, &xv, &yv);
    let obj = |m: &LinearModel| {
        let s = m.scores(x.view());
        let mut ce = 0.0f64;
        for (row, &l) in s.rows().into_iter().zip(&y) {
            let mx = row.iter().fold(f32::MIN, |a, &b| a.max(b));
            let lse = row.iter().map(|v| ((v - mx) as f64).exp()).sum::<f64>().ln() + mx as f64;
            ce += lse - row[l as usize] as f64;
        }
        ce / y.len() as f64 + 0.5 * L2 * m.w.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>()
    };
    eprintln!("objective linfa {} torch {}", obj(&linfa), obj(&torch));
    eprintln!("sklearn {SKLEARN_TOP1}/{SKLEARN_TOP5}, linfa {l1}/{l5}, torch {t1}/{t5}");
    assert!((l1 - SKLEARN_TOP1).abs() <= AGREEMENT, "linfa top-1 {l1} vs sklearn {SKLEARN_TOP1}");
    assert!((t1 - SKLEARN_TOP1).abs() <= AGREEMENT, "torch top-1 {t1} vs sklearn {SKLEARN_TOP1}");
    assert!((l1 - t1).abs() <= AGREEMENT, "linfa {l1} vs torch {t1}");
    assert!((l5 - SKLEARN_TOP5).abs() <= AGREEMENT && (t5 - SKLEARN_TOP5).abs() <= AGREEMENT);
}

#[test]
fn same_seed_gives_identical_weights_on_cpu() {
    let (x, y, _, _) = data();
    let (x, y) = (x.slice(ndarray::s![..1000, ..]).to_owned(), &y[..1000]);
    let a = torch_fit(&x, y, 5);
    let b = torch_fit(&x, y, 5);
    assert_eq!(a.w, b.w);
    assert_eq!(a.b, b.b);
    let c = torch_fit(&x, y, 6);
    assert_ne!(a.w, c.w, "a different seed must change the batch order");
}
