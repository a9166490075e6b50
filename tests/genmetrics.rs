//! FID and IS against scipy/PyTorch references. Goldens: tools/gen_fid_golden.py (scipy 1.17.1,
//! torch 2.13.0 CPU, the same TorchScript Inception, PIL bilinear resize).

mod common;

use bbeval::data::DatasetSpec;
use bbeval::encoder;
use bbeval::features::ExtractOptions;
use bbeval::genmetrics::{dataset_statistics, frechet_distance, RunningStats, Statistics};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// pytorch-fid's scipy.linalg.sqrtm route on tests/fixtures/frechet_{a,b}.npz.
const SCIPY_FRECHET_AB: f64 = 152.7807642635405;
/// Fashion-MNIST train[:100] vs t10k[:100] through PIL float bilinear 299² + the same Inception + scipy.
const PYTHON_FID_FASHION_100: f64 = 93.89979123591056;

fn fixture_stats(name: &str) -> Statistics {
    Statistics::load_npz(&common::fixture(name)).unwrap()
}

#[test]
fn frechet_distance_matches_scipy_and_is_zero_on_itself() {
    let (a, b) = (fixture_stats("frechet_a.npz"), fixture_stats("frechet_b.npz"));
    let d = frechet_distance(&a, &b).unwrap();
    assert!(((d - SCIPY_FRECHET_AB) / SCIPY_FRECHET_AB).abs() < 1e-6, "{d} vs scipy {SCIPY_FRECHET_AB}");
    let same = frechet_distance(&a, &a).unwrap();
    assert!(same.abs() < 1e-9 * a.sigma.diag().sum(), "FID(A, A) = {same}");
}

fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng))
}

#[test]
fn fid_grows_monotonically_with_added_noise() {
    let x = gaussian(2000, 16, 1);
    let noise = gaussian(2000, 16, 2);
    let stats = |m: &Array2<f32>| {
        let mut r = RunningStats::new(16);
        for chunk in m.axis_chunks_iter(ndarray::Axis(0), 300) {
            r.update(chunk);
        }
        r.finish().unwrap()
    };
    let base = stats(&x);
    let fids: Vec<f64> = [0.0f32, 0.25, 0.5, 1.0, 2.0].iter().map(|&s| frechet_distance(&base, &stats(&(&x + &(&noise * s)))).unwrap()).collect();
    assert!(fids[0].abs() < 1e-9, "{fids:?}");
    assert!(fids.windows(2).all(|w| w[0] < w[1]), "{fids:?}");
}

#[test]
fn npz_round_trip_and_numpy_reads_it() {
    let a = fixture_stats("frechet_a.npz"); // written by numpy
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npz");
    let with_n = Statistics { n: 123, ..a.clone() };
    with_n.save_npz(&path).unwrap();
    let back = Statistics::load_npz(&path).unwrap();
    assert_eq!((back.mu.clone(), back.sigma.clone(), back.n), (a.mu.clone(), a.sigma.clone(), 123));
    // numpy (the venv of `make setup`) reads bbeval's file with the same values.
    let python = std::env::var("VIRTUAL_ENV").map(|v| format!("{v}/bin/python")).unwrap_or_else(|_| {
        format!("{}/.cache/bbeval/venv/bin/python", std::env::var("HOME").unwrap_or_default())
    });
    let out = std::process::Command::new(&python)
        .args(["-c", "import numpy as np, sys; f, g = np.load(sys.argv[1]), np.load(sys.argv[2]); \
print(np.array_equal(f['mu'], g['mu']), np.array_equal(f['sigma'], g['sigma']), f['sigma'].dtype, int(f['n']))"])
        .arg(&path)
        .arg(common::fixture("frechet_a.npz"))
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}; run `make setup`"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), "True True float64 123", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fid_of_the_rust_pipeline_matches_python_on_200_real_images() {
    let spec = DatasetSpec::parse(&format!("idx:{}", common::asset("fashion-mnist").display())).unwrap();
    let manifest = common::asset("fid/inception.toml");
    let mut enc = encoder::open(manifest.to_str().unwrap(), spec.kind.channels(), &common::cpu()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = ExtractOptions { cache_dir: dir.path().into(), batch_size: 4, strict: true, ..Default::default() };
    let first_100 = |split: &str| {
        let mut d = common::open(&spec, split).unwrap();
        d.samples.truncate(100);
        d
    };
    let (a, _, hit) = dataset_statistics(enc.as_mut(), &first_100("train"), &opts).unwrap();
    assert!(!hit);
    let (b, _, _) = dataset_statistics(enc.as_mut(), &first_100("val"), &opts).unwrap();
    assert_eq!((a.n, b.n), (100, 100));
    assert!(a.warning().unwrap().contains("100 samples < 2048"));
    let fid = frechet_distance(&a, &b).unwrap();
    let rel = ((fid - PYTHON_FID_FASHION_100) / PYTHON_FID_FASHION_100).abs();
    assert!(rel < 1e-3, "FID {fid} vs Python {PYTHON_FID_FASHION_100} (relative {rel})");
    // Statistics are cached: the second call reads the .npz.
    let (again, _, hit) = dataset_statistics(enc.as_mut(), &first_100("train"), &opts).unwrap();
    assert!(hit);
    assert_eq!(again.mu, a.mu);
}
