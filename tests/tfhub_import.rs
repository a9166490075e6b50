//! The TF Hub import end to end on synthetic TF1 hub modules with BigBiGAN's signatures
//! (tools/gen_tfhub_modules.py): TF → ONNX → TorchScript checked in Python, then by bbeval through libtorch
//! at batch sizes 1, 7 and 64; tampered weights or records fail; bad modules are refused with the cause
//! and nothing is left behind; an imported encoder runs through `bbeval run` on an ImageNet-layout tree and
//! its generator gives FID rows and reconstructions.
//!
//! Needs the TF tools (`make test` installs them: tools/tfhub/setup_env.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn bbeval(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bbeval")).args(args).current_dir(common::root()).output().expect("run bbeval");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").expect("HOME"))
}

/// The synthetic modules, written once per test process (seeded: always the same files).
fn modules() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let tf = home().join(".cache/bbeval/tfhub-venv/bin/python");
        assert!(tf.exists(), "{} is missing: run `make test` (or bash tools/tfhub/setup_env.sh) first", tf.display());
        let dir = tempfile::tempdir().unwrap();
        let only = "resnet-small,widths-odd,revnet-small,train-only,batch-dependent,wrong-input,no-avepool,unsupported-op,tf2-no-encode";
        let out = Command::new(tf).arg(common::root().join("tools/gen_tfhub_modules.py")).args(["--out", dir.path().to_str().unwrap(), "--only", only]).output().unwrap();
        assert!(out.status.success(), "gen_tfhub_modules.py failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
    .path()
}

fn import(module: &Path, name: &str, out: &Path) -> (i32, String, String) {
    bbeval(&["import-tfhub", "--module", module.to_str().unwrap(), "--name", name, "--out", out.to_str().unwrap(), "--device", "cpu"])
}

fn record(manifest_dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(manifest_dir.join(format!("{name}.verify.json"))).unwrap()).unwrap()
}

/// Run a python snippet with the main venv (torch, numpy).
fn python(code: &str) {
    let script = tempfile::Builder::new().suffix(".py").tempfile().unwrap();
    std::fs::write(script.path(), code).unwrap();
    let status = Command::new(home().join(".cache/bbeval/venv/bin/python")).arg(script.path()).status().unwrap();
    assert!(status.success(), "python failed: {code}");
}

#[test]
fn imports_verify_three_times_and_tampering_is_caught() {
    let out = tempfile::tempdir().unwrap();
    // The compressed download form (files at the archive root) of a ResNet with a generator.
    let (code, text, log) = import(&modules().join("resnet-small.tar.gz"), "rs", out.path());
    assert_eq!(code, 0, "{text}{log}");
    for f in ["rs.pt", "rs.toml", "rs.verify.json", "rs.verify.npz", "rs-g.pt", "rs-g.toml", "rs-g.verify.json", "rs-g.verify.npz"] {
        assert!(out.path().join(f).is_file(), "{f} missing: {text}{log}");
    }
    let r = record(out.path(), "rs");
    assert_eq!(r["passed"], true);
    for stage in ["onnx_vs_tf", "torchscript_vs_tf", "bbeval_tch_cpu"] {
        assert_eq!(r["stages"][stage]["passed"], true, "{stage}: {r}");
    }
    assert_eq!(r["stages"]["bbeval_tch_cpu"]["batch_sizes"], serde_json::json!([1, 7, 64]));
    for (output, e) in r["stages"]["bbeval_tch_cpu"]["outputs"].as_object().unwrap() {
        assert!(e["rel"].as_f64().unwrap() <= 1e-4 && e["min_row_cosine"].as_f64().unwrap() >= 0.99999, "{output}: {e}");
    }
    let manifest = std::fs::read_to_string(out.path().join("rs.toml")).unwrap();
    assert!(manifest.contains("policy = \"bigbigan\"") && manifest.contains("verification = \"rs.verify.json\""), "{manifest}");

    // Widths come from the signature, never assumed (48/96, latent 17).
    let (code, text, log) = import(&modules().join("widths-odd"), "odd", out.path());
    assert_eq!(code, 0, "{text}{log}");
    let m = std::fs::read_to_string(out.path().join("odd.toml")).unwrap();
    assert!(m.contains("avepool = 48") && m.contains("bn_crelu = 96") && m.contains("z_mean = 17"), "{m}");
    // A reversible (RevNet-style) block.
    let (code, text, log) = import(&modules().join("revnet-small"), "rev", out.path());
    assert_eq!(code, 0, "{text}{log}");

    // bbeval re-checks on demand: passes as imported …
    let rs = out.path().join("rs.toml");
    let (code, text, log) = bbeval(&["verify-import", rs.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 0, "{text}{log}");
    // … and fails once one weight of the TorchScript changed (the manifest's hash updated to match, as a
    // careless re-export would): the numbers no longer agree with TF's.
    let pt = out.path().join("rs.pt");
    python(&format!(
        "import torch\nm = torch.jit.load('{p}')\np = next(iter(m.parameters()))\nwith torch.no_grad():\n    p.view(-1)[0] += 0.5\ntorch.jit.save(m, '{p}')\n",
        p = pt.display()
    ));
    let sha = bbeval::data::file_sha256(&pt).unwrap();
    let old = manifest.lines().find(|l| l.starts_with("weights_sha256")).unwrap().to_string();
    std::fs::write(&rs, manifest.replace(&old, &format!("weights_sha256 = \"{sha}\""))).unwrap();
    let (code, text, _) = bbeval(&["verify-import", rs.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 1, "a changed weight must fail: {text}");
    assert!(text.contains("FAILED"), "{text}");

    // A tampered record (TF's outputs changed) fails the untouched revnet import.
    let npz = out.path().join("rev.verify.npz");
    python(&format!(
        "import numpy as np\nd = dict(np.load('{p}'))\nd['tf_avepool'] = d['tf_avepool'] * 1.01\nnp.savez('{p}', **d)\n",
        p = npz.display()
    ));
    let (code, text, _) = bbeval(&["verify-import", out.path().join("rev.toml").to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 1, "a changed record must fail: {text}");
}

#[test]
fn bad_modules_are_refused_with_the_cause_and_leave_nothing() {
    let out = tempfile::tempdir().unwrap();
    let not_a_module = out.path().join("empty");
    std::fs::create_dir_all(&not_a_module).unwrap();
    let corrupt = out.path().join("corrupt.tar.gz");
    std::fs::write(&corrupt, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    let target = out.path().join("encoders");
    let cases: Vec<(PathBuf, &str)> = vec![
        (not_a_module, "no saved_model.pb"),
        (corrupt, "corrupt"),
        (modules().join("train-only"), "train"),
        (modules().join("batch-dependent"), "depend on the rest of the batch"),
        (modules().join("wrong-input"), "expected [?,H,H,3]"),
        (modules().join("no-avepool"), "no `avepool_feat`"),
        (modules().join("unsupported-op"), "Asinh"),
        (modules().join("tf2-no-encode"), "no `encode` signature"),
    ];
    for (module, cause) in cases {
        let (code, text, log) = import(&module, "bad", &target);
        assert_eq!(code, 2, "{}: {text}{log}", module.display());
        assert!(log.contains(cause) && log.contains(&module.display().to_string()), "{}: want `{cause}` in: {log}", module.display());
        let left: Vec<_> = std::fs::read_dir(&target).map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "{} left {left:?}", module.display());
    }
}

/// A few solid-colour JPEGs per class (noise keeps them distinct), in the ImageNet layout: class folders
/// for train, a flat val folder with `val_labels.txt` naming wnids.
fn imagenet_tree(root: &Path) {
    let classes = [("n01440764", [200u8, 30, 30]), ("n01443537", [30, 200, 30]), ("n01484850", [30, 30, 200])];
    std::fs::create_dir_all(root.join("val")).unwrap();
    let mut labels = String::new();
    for (c, (wnid, rgb)) in classes.iter().enumerate() {
        std::fs::create_dir_all(root.join("train").join(wnid)).unwrap();
        for i in 0..14u32 {
            let img = image::RgbImage::from_fn(40, 30, |x, y| {
                let n = ((x * 7 + y * 13 + i * 31 + c as u32 * 5) % 41) as u8;
                image::Rgb([rgb[0].saturating_add(n), rgb[1].saturating_add(n), rgb[2].saturating_add(n)])
            });
            if i < 10 {
                img.save(root.join("train").join(wnid).join(format!("{wnid}_{i}.JPEG"))).unwrap();
            } else {
                let name = format!("ILSVRC2012_val_{c}{i}.JPEG");
                img.save(root.join("val").join(&name)).unwrap();
                labels.push_str(&format!("{name} {wnid}\n"));
            }
        }
    }
    std::fs::write(root.join("val_labels.txt"), labels).unwrap();
}

#[test]
fn an_imported_encoder_and_generator_run_through_bbeval() {
    let dir = tempfile::tempdir().unwrap();
    let enc = dir.path().join("encoders");
    let (code, text, log) = import(&modules().join("resnet-small"), "rs", &enc);
    assert_eq!(code, 0, "{text}{log}");
    let data = dir.path().join("imagenet");
    imagenet_tree(&data);
    let run = dir.path().join("table2.toml");
    let write_run = |name: &str| {
        std::fs::write(
            &run,
            format!(
                r#"name = "{name}"
cache_dir = "{cache}"
out_dir = "{out}"
[dataset]
spec = "imagenet:{data}"
train_val = 6
[probe]
l2 = [1e-3, 1e-1]
[[rows]]
method = "BigBiGAN (synthetic)"
encoder = "{enc}/rs.toml"
feature = "avepool"
[[rows]]
method = "BigBiGAN (synthetic)"
encoder = "{enc}/rs.toml"
feature = "bn_crelu"
[[generation]]
variant = "BigBiGAN (synthetic)"
generator = "{enc}/rs-g.toml"
samples = 24
reference_limit = 24
"#,
                cache = dir.path().join("cache").display(),
                out = dir.path().join("results").join(name).display(),
                data = data.display(),
                enc = enc.display()
            ),
        )
        .unwrap();
    };
    write_run("imported");
    let (code, text, log) = bbeval(&["--json", "run", run.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 0, "{text}{log}");
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["dataset"]["n_train"], 30);
    assert_eq!(r["dataset"]["n_val"], 12);
    for row in r["rows"].as_array().unwrap() {
        // Three colours are easy for any encoder: the labels of the flat val folder were read right.
        assert!(row["probe"]["top1"].as_f64().unwrap() >= 0.9, "{row}");
        assert_eq!(row["unverified"], false);
    }
    assert!(r["generation"][0]["fid"].as_f64().unwrap().is_finite());

    // A record that no longer vouches for its encoder: refused, or used loudly with --allow-unverified.
    let record_path = enc.join("rs.verify.json");
    let original = std::fs::read_to_string(&record_path).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&original).unwrap();
    record["stages"]["bbeval_tch_cpu"]["passed"] = serde_json::json!(false);
    std::fs::write(&record_path, record.to_string()).unwrap();
    write_run("unverified");
    let (code, _, log) = bbeval(&["run", run.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 2);
    assert!(log.contains("bbeval_tch_cpu") && log.contains("rs.verify.json"), "{log}");
    let (code, text, log) = bbeval(&["run", run.to_str().unwrap(), "--device", "cpu", "--allow-unverified"]);
    assert_eq!(code, 0, "{text}{log}");
    assert!(log.contains("UNVERIFIED") && text.contains("⚠ UNVERIFIED"), "{text}{log}");

    // The official generator's reconstructions (Figure 2 layout): x above G(E(x)) at the generator's size.
    std::fs::write(&record_path, original).unwrap();
    let png = dir.path().join("recon.png");
    let spec = format!("imagenet:{}", data.display());
    let (code, text, log) = bbeval(&["reconstruct", "--encoder", enc.join("rs.toml").to_str().unwrap(), "--generator", enc.join("rs-g.toml").to_str().unwrap(), "--dataset", &spec, "--n", "4", "--out", png.to_str().unwrap(), "--device", "cpu"]);
    assert_eq!(code, 0, "{text}{log}");
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (4 * (128 + 2) + 2, 2 * (128 + 2) + 2), "{text}");
}
