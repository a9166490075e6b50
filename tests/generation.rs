//! Generation metrics inside run files (Table 1 / Table 3 layouts) and reconstruction grids, with the
//! tiny TorchScript fixtures of tools/gen_fixture_models.py on real images.

mod common;

use std::path::{Path, PathBuf};

use bbeval::data::DatasetSpec;
use bbeval::encoder;
use bbeval::genmetrics::generator::Generator;
use bbeval::genmetrics::reconstruct::reconstruction_grid;
use bbeval::run::RunOptions;

fn generator_manifest(dir: &Path) -> PathBuf {
    let weights = dir.join("tiny_generator.pt");
    std::fs::copy(common::fixture("tiny_generator.pt"), &weights).unwrap();
    let sha = bbeval::data::file_sha256(&weights).unwrap();
    let path = dir.join("gen.toml");
    std::fs::write(&path, format!("name = \"tiny\"\nweights = \"tiny_generator.pt\"\nweights_sha256 = \"{sha}\"\nlatent = 16\nrange = [-1, 1]\n")).unwrap();
    path
}

#[test]
fn generation_entries_feed_table_1_and_table_3() {
    let dir = tempfile::tempdir().unwrap();
    let gen = generator_manifest(dir.path());
    let run = dir.path().join("gen.toml.run");
    std::fs::write(
        &run,
        format!(
            r#"name = "gen"
cache_dir = "{cache}"
out_dir = "{out}"
[dataset]
spec = "idx:{fm}"
train_limit = 600
val_limit = 200
[probe]
l2 = [1e-3]
lr = [0.05]
epochs = 5
[[rows]]
method = "Raw pixels"
encoder = "raw"
feature = "pixels"
[[generation]]
variant = "tiny generator"
generator = "{gen}"
samples = 12
reference = "samples:{cifar}@val"
inception = "{inception}"
is_classifier = "{effnet}"
cls_row = "Raw pixels"
"#,
            cache = dir.path().join("cache").display(),
            out = dir.path().join("out").display(),
            fm = common::asset("fashion-mnist").display(),
            gen = gen.display(),
            cifar = common::asset("foolbox/cifar10").display(),
            inception = common::asset("fid/inception.toml").display(),
            effnet = common::efficientnet_manifest().display(),
        ),
    )
    .unwrap();
    let opts = RunOptions { strict: true, ..RunOptions::cpu() };
    let (results, out) = common::run(&run, &opts).unwrap();
    let g = &results.generation[0];
    // Flat-coloured 8×8 blocks against real CIFAR-10 photos: far apart, but finite.
    assert!(g.fid.is_finite() && g.fid > 50.0, "{}", g.fid);
    assert_eq!((g.samples, g.reference_n), (12, 20));
    let is = g.is.as_ref().unwrap();
    assert_eq!(is.label, "IS* (efficientnet-lite0 logits, non-standard)");
    assert!(is.mean >= 1.0 && is.mean <= 1000.0, "{}", is.mean);
    assert_eq!(g.cls, Some(results.rows[0].probe.train_val_top1));
    assert!(results.warnings.iter().any(|w| w.contains("2048")), "{:?}", results.warnings);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("### Table 1 layout") && md.contains("### Table 3 layout"), "{md}");
    assert!(md.contains(&format!("| tiny generator | {:.2} ± {:.2} † | {:.2} |", is.mean, is.std, g.fid)), "{md}");
    assert!(md.contains("† tiny generator: IS* (efficientnet-lite0 logits, non-standard)"), "{md}");
    let csv = std::fs::read_to_string(out.join("generation.csv")).unwrap();
    assert!(csv.lines().nth(1).unwrap().starts_with("\"tiny generator\",\"IS* (efficientnet-lite0"), "{csv}");
    // The JSON round-trips with the generation entries.
    let loaded = bbeval::report::Results::load(&out.join("results.json")).unwrap();
    assert_eq!(loaded.generation[0].fid, g.fid);
    assert!(!g.reused && !results.rows[0].probe_reused);

    // Run again (as after a stop) with the entry renamed: the finished probe and entry are taken from the
    // cache with the new name; --recompute computes them again, to the same values (fixed seeds).
    let text = std::fs::read_to_string(&run).unwrap().replace("variant = \"tiny generator\"", "variant = \"tiny G\"");
    std::fs::write(&run, text).unwrap();
    let (again, _) = common::run(&run, &opts).unwrap();
    let h = &again.generation[0];
    assert!(h.reused && again.rows[0].probe_reused);
    assert_eq!((h.variant.as_str(), h.fid, h.cls), ("tiny G", g.fid, g.cls));
    assert_eq!(again.rows[0].probe.top1, results.rows[0].probe.top1);
    let (fresh, _) = common::run(&run, &RunOptions { recompute: true, ..opts.clone() }).unwrap();
    assert!(!fresh.generation[0].reused && !fresh.rows[0].probe_reused);
    assert_eq!(fresh.generation[0].fid, g.fid);
    // A different sample count is another input: computed, not reused.
    let text = std::fs::read_to_string(&run).unwrap().replace("samples = 12", "samples = 10");
    std::fs::write(&run, text).unwrap();
    let (other, _) = common::run(&run, &opts).unwrap();
    assert!(!other.generation[0].reused && other.rows[0].probe_reused);
    assert_eq!(other.generation[0].samples, 10);
}

#[test]
fn reconstruction_grid_puts_x_above_g_of_e_of_x() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::fixture_encoder(dir.path(), "tiny_z_encoder.pt", "avepool = 3\nz_mean = 16", "size = 32\nrange = [0, 1]");
    let spec = DatasetSpec::parse(&format!("samples:{}", common::asset("foolbox/cifar10").display())).unwrap();
    let data = common::open(&spec, "val").unwrap();
    let mut enc = encoder::open(manifest.to_str().unwrap(), spec.kind.channels(), &common::cpu()).unwrap();
    let gen = Generator::open(&generator_manifest(dir.path()), tch::Device::Cpu).unwrap();
    let out = dir.path().join("grid.png");
    let (w, h) = reconstruction_grid(enc.as_mut(), &gen, &data, 4, &out).unwrap();
    assert_eq!((w, h), (4 * 34 + 2, 2 * 34 + 2));
    let grid = image::open(&out).unwrap().to_rgb8();
    assert_eq!(grid.dimensions(), (w, h));
    // Top-left cell is the first CIFAR-10 image itself (32×32, no resize, [0, 1] scaling undone).
    let first = image::open(common::asset("foolbox/cifar10").join(&data.samples[0].id)).unwrap().to_rgb8();
    for (x, y) in [(0, 0), (5, 17), (31, 31)] {
        let (a, b) = (grid.get_pixel(2 + x, 2 + y).0, first.get_pixel(x, y).0);
        assert!(a.iter().zip(b).all(|(p, q)| p.abs_diff(q) <= 1), "({x}, {y}): {a:?} vs {b:?}");
    }
    // The bottom row is the generator's: flat 4×4-pixel blocks (8×8 up-sampled ×4), unlike the photo.
    let (a, b) = (grid.get_pixel(2, 36).0, grid.get_pixel(5, 39).0);
    assert_eq!(a, b, "a generated block is flat");

    // An encoder without a latent is refused, naming what is needed.
    let plain = common::fixture_encoder(dir.path(), "channel_means.pt", "avepool = 3", "size = 32\nrange = [0, 1]");
    let mut plain = encoder::open(plain.to_str().unwrap(), spec.kind.channels(), &common::cpu()).unwrap();
    let err = reconstruction_grid(plain.as_mut(), &gen, &data, 4, &out).unwrap_err().to_string();
    assert!(err.contains("neither z_mean nor z_sample"), "{err}");
}
