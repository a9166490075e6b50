//! Sampling a TorchScript generator into FID statistics (tests/fixtures/tiny_generator.pt, made by
//! tools/gen_fixture_models.py: z [N, 16] → tanh images [N, 3, 32, 32]).

mod common;

use std::path::{Path, PathBuf};

use bbeval::encoder;
use bbeval::genmetrics::frechet_distance;
use bbeval::genmetrics::generator::{Generator, Sampling};

fn manifest(dir: &Path, latent: usize) -> PathBuf {
    let weights = dir.join("tiny_generator.pt");
    std::fs::copy(common::fixture("tiny_generator.pt"), &weights).unwrap();
    let sha = bbeval::data::file_sha256(&weights).unwrap();
    let path = dir.join(format!("gen{latent}.toml"));
    std::fs::write(&path, format!("name = \"tiny\"\nweights = \"tiny_generator.pt\"\nweights_sha256 = \"{sha}\"\nlatent = {latent}\nrange = [-1, 1]\n")).unwrap();
    path
}

#[test]
fn samples_are_seeded_in_range_and_truncation_changes_them() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::open(&manifest(dir.path(), 16), tch::Device::Cpu).unwrap();
    let z = vec![0.5f32; 2 * 16];
    let x = g.generate(&z, 2).unwrap();
    assert_eq!(x.size(), [2, 3, 32, 32]);
    let (lo, hi) = (x.min().double_value(&[]), x.max().double_value(&[]));
    assert!(lo >= 0.0 && hi <= 255.0 && hi > lo, "{lo} {hi}");

    let mut inception = encoder::open(common::asset("fid/inception.toml").to_str().unwrap(), 3, &common::cpu()).unwrap();
    let sampling = Sampling { samples: 8, seed: 0, truncation: None, batch_size: 4 };
    let a = g.statistics(inception.as_mut(), &sampling).unwrap();
    let again = g.statistics(inception.as_mut(), &sampling).unwrap();
    assert_eq!(a.mu, again.mu, "same seed, same samples");
    assert_eq!(a.n, 8);
    let other = g.statistics(inception.as_mut(), &Sampling { seed: 1, ..sampling }).unwrap();
    assert_ne!(a.mu, other.mu);
    let truncated = g.statistics(inception.as_mut(), &Sampling { truncation: Some(0.5), ..sampling }).unwrap();
    assert_ne!(a.mu, truncated.mu);
    // Truncated samples are less diverse: their covariance has a smaller trace.
    assert!(truncated.sigma.diag().sum() < a.sigma.diag().sum());
    let self_fid = frechet_distance(&a, &again).unwrap();
    // 8 samples in 2048-d: √ of ~2040 rounding-level eigenvalues in the null space adds ~1e-6 of the trace.
    assert!(self_fid.abs() < 1e-5 * a.sigma.diag().sum(), "FID(A, A) = {self_fid}, trace {}", a.sigma.diag().sum());
}

#[test]
fn a_wrong_latent_width_names_the_manifest_field() {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::open(&manifest(dir.path(), 20), tch::Device::Cpu).unwrap();
    let err = g.generate(&[0.0; 20], 1).unwrap_err().to_string();
    assert!(err.contains("is `latent` right?") && err.contains("[1, 20]"), "{err}");
}
