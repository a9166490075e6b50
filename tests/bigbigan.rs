//! The mini BigBiGAN in tch: shapes and ranges, one training step moves weights and losses the right
//! way, export → load round trip, and deterministic training on CPU. Tiny widths on real Fashion-MNIST.

mod common;

use bbeval::bigbigan::export::{export_encoder, export_generator, export_generator_of_run, export_run};
use bbeval::bigbigan::losses::hinge_pair;
use bbeval::bigbigan::nets::next_in_batch;
use bbeval::bigbigan::follow::{encoder_follow, generator_follow, EncoderTarget, GeneratorTarget};
use bbeval::bigbigan::pairing::{game_d_encoder_pairing, game_d_pairing, pairing_capacity, PairingProbe};
use bbeval::bigbigan::train::{load_images, Models, Trainer};
use bbeval::bigbigan::{Architecture, MismatchSide, TrainConfig};
use bbeval::encoder::{self, Batch};
use bbeval::genmetrics::generator::Generator;
use tch::{Device, Kind, Tensor};

/// libtorch's RNG is process-global and cargo runs tests on parallel threads: these tests take turns.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(dir: &std::path::Path) -> TrainConfig {
    config_with(dir, "")
}

/// The tiny config with more `[architecture]` lines.
fn config_with(dir: &std::path::Path, architecture: &str) -> TrainConfig {
    let text = format!(
        "name = \"tiny\"\ndataset = \"idx:{}\"\ntrain_limit = 64\nout_dir = \"{}\"\nsteps = 3\nlog_every = 3\nbatch_size = 8\nlr_g = 2e-4\nlr_e = 2e-4\nlr_d = 2e-4\n[architecture]\nlatent = 8\ng_width = 4\ne_width = 4\nd_width = 4\nhead_width = 16\nj_width = 16\n{architecture}",
        common::asset("fashion-mnist").display(),
        dir.display()
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    TrainConfig::load(&path).unwrap()
}

/// Writes `text` as `bad.toml` in `dir` and asserts that loading it fails with an error naming the file and
/// containing `refused`.
fn assert_refused(dir: &std::path::Path, text: &str, refused: &str) {
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let err = TrainConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains(refused), "{err}");
}

/// The tiny config written by [`config`] with one more top-level line.
fn tiny_with(dir: &std::path::Path, line: &str) -> String {
    std::fs::read_to_string(dir.join("tiny.toml")).unwrap().replace("steps = 3\n", &format!("steps = 3\n{line}\n"))
}

fn images(cfg: &TrainConfig) -> Tensor {
    let (x, side) = load_images(&cfg.dataset, cfg.train_limit, cfg.seed, cfg.architecture.image_size()).unwrap();
    assert_eq!((x.size(), side), (vec![64, 1, 28, 28], 28));
    assert!(x.min().double_value(&[]) >= -1.0 && x.max().double_value(&[]) <= 1.0);
    x
}

#[test]
fn resnet_networks_work_at_32_with_the_images_padded() {
    let (x, side) = load_images(&format!("idx:{}", common::asset("fashion-mnist").display()), Some(8), 0, 32).unwrap();
    assert_eq!((x.size(), side), (vec![8, 1, 32, 32], 28));
    // Padding is the background value −1.
    assert_eq!(x.narrow(3, 0, 2).max().double_value(&[]), -1.0);
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

type Variables = std::collections::HashMap<String, Tensor>;

/// Copies of D's, E's and G's variables, by "store/name".
fn variables_of(m: &Models) -> Variables {
    [("d", &m.vs_d), ("e", &m.vs_e), ("g", &m.vs_g)].iter().flat_map(|(s, vs)| vs.variables().into_iter().map(move |(k, v)| (format!("{s}/{k}"), v.copy()))).collect()
}

/// The largest difference between two sets of variables (or gradients) over the names `part` picks.
fn largest_gap(a: &Variables, b: &Variables, part: impl Fn(&str) -> bool) -> f64 {
    a.iter().filter(|(k, _)| part(k)).map(|(k, v)| max_abs_diff(v, &b[k])).fold(0.0, f64::max)
}

#[test]
fn networks_have_the_paper_outputs_in_range() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let m = Models::new(&cfg, Device::Cpu);
    let a: &Architecture = &cfg.architecture;
    let z = Tensor::randn([5, a.latent], (Kind::Float, Device::Cpu));
    let g = m.g.forward_t(&z, false);
    assert_eq!(g.size(), [5, 1, 28, 28]);
    assert!(g.abs().max().double_value(&[]) <= 1.0);
    let x = images(&cfg).narrow(0, 0, 5);
    let e = m.e.forward_t(&x, false);
    assert_eq!(e.avepool.size(), [5, 4 * a.e_width]);
    assert_eq!(e.bn_crelu.size(), [5, 8 * a.e_width]);
    assert!(e.bn_crelu.min().double_value(&[]) >= 0.0, "CReLU halves are non-negative");
    assert_eq!((e.z_mean.size(), e.z_sample.size()), (vec![5, a.latent], vec![5, a.latent]));
    assert!(e.z_stdev.min().double_value(&[]) > 0.0);
    // σ is bounded by z_stdev_max (0.5 by default): E cannot match the prior with noise alone.
    assert!(e.z_stdev.max().double_value(&[]) <= 0.5 + 1e-4);
    let s = m.d.forward_t(&x, &e.z_sample, false);
    assert_eq!((s.s_x.size(), s.s_z.size(), s.s_xz.size()), (vec![5], vec![5], vec![5]));
    // H is residual: it keeps z's scale (the old plain MLP shrank it to a tenth), so J can see z.
    let z = Tensor::randn([256, a.latent], (Kind::Float, Device::Cpu));
    let ratio = m.d.latent_features(&z, false).norm().double_value(&[]) / z.norm().double_value(&[]);
    assert!((0.7..1.5).contains(&ratio), "|H(z)|/|z| = {ratio}");
}

/// The architecture's options beyond the recipe's defaults keep the contract and do what they say:
/// `z_batch_norm` gives E's latents the prior's moments on a training batch; `f_readout = "dense"` widens
/// F(x) to `head_width`; `projection` adds F(x)ᵀ·W·H(z) to s_xz (so s_xz = J's MLP alone + that term);
/// `e_layers = d_layers = 4` add a fourth convolution to E and to D's F whose 3×3 map the dense readout
/// reads whole, and E's AvePool keeps its width; `contrastive_joint` makes s_xz exactly 0 when every image
/// has the same latent (nothing to pair), which the plain J does not.
#[test]
fn the_optional_encoder_and_discriminator_parts_do_what_they_say() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.architecture.z_batch_norm = true;
    cfg.architecture.f_readout = bbeval::bigbigan::nets::Readout::Dense;
    cfg.architecture.projection = true;
    (cfg.architecture.e_layers, cfg.architecture.d_layers) = (4, 4);
    let a = cfg.architecture.clone();
    let m = Models::new(&cfg, Device::Cpu);
    assert!(m.vs_e.variables().contains_key("conv3.weight") && m.vs_d.variables().keys().any(|k| k.starts_with("f3.")), "the fourth convolutions exist");
    // The readout's input is D's whole last map: 4·d_width channels × 3 × 3 once F halves the 7×7 map.
    assert_eq!(m.vs_d.variables()["readout.weight"].size(), [a.head_width, 4 * a.d_width * 9]);
    assert_eq!(m.e.forward_t(&images(&cfg).narrow(0, 0, 4), false).avepool.size(), [4, 4 * a.e_width]);
    let x = images(&cfg).narrow(0, 0, 32);
    let z = m.e.forward_t(&x, true).z_mean;
    let (mean, var) = (z.mean_dim(0, false, Kind::Float), z.var_dim(0, false, false));
    assert!(mean.abs().max().double_value(&[]) < 1e-4, "batch-normalised latents have mean 0");
    // BN divides by sqrt(var + 1e-5): latents whose raw spread is small at initialisation land a little under 1.
    let worst = (var - 1.0).abs().max().double_value(&[]);
    assert!(worst < 0.05, "and variance 1 (worst dimension off by {worst})");
    let fx = m.d.features(&x, false);
    assert_eq!(fx.size(), [32, a.head_width]);
    // Scores in eval mode (no dropout): s_xz differs from the same D's MLP-only joint score by the
    // projection term, which is not zero at initialisation.
    let zs = Tensor::randn([32, a.latent], (Kind::Float, Device::Cpu));
    let hz = m.d.latent_features(&zs, false);
    let with = m.d.joint(&fx, &hz, false);
    let without = m.d.joint_mlp(&fx, &hz, false);
    assert!(max_abs_diff(&with, &without) > 1e-3, "the projection term is part of s_xz");
    assert_eq!(m.d.forward_t(&x, &zs, false).s_xz.size(), [32]);
    let same = zs.narrow(0, 0, 1).repeat([32, 1]);
    assert!(m.d.forward_t(&x, &same, false).s_xz.abs().max().double_value(&[]) > 1e-3, "the plain joint score is not a contrast");
    let mut contrastive = cfg.clone();
    contrastive.architecture.contrastive_joint = true;
    let c = Models::new(&contrastive, Device::Cpu);
    assert_eq!(c.d.forward_t(&x, &same, false).s_xz.abs().max().double_value(&[]), 0.0, "one latent for all: nothing to pair");
    assert!(c.d.forward_t(&x, &zs, false).s_xz.abs().max().double_value(&[]) > 1e-3);
}

/// `head_reads_bn_crelu`: E's head reads the BN+CReLU feature (twice AvePool's width), so in training mode
/// (batch statistics) scaling the AvePool feature changes its codes only through BN's ε (1e-5, against
/// feature variances of ~1e-3 at initialisation); the default head reads the raw AvePool feature, and the
/// same scaling moves its codes over a hundred times more (1.72 against 0.013 here).
#[test]
fn the_head_reads_the_batch_normalised_feature_when_asked() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let x = images(&cfg).narrow(0, 0, 32);
    let codes_move = |cfg: &TrainConfig| {
        let m = Models::new(cfg, Device::Cpu);
        let avepool = m.e.avepool(&x, true);
        let (plain, scaled) = (m.e.from_avepool(avepool.shallow_clone(), true).z_mean, m.e.from_avepool(&avepool * 3.0, true).z_mean);
        (m.vs_e.variables()["head1.weight"].size(), max_abs_diff(&plain, &scaled))
    };
    let width = cfg.architecture.avepool_width();
    let (shape, raw) = codes_move(&cfg);
    assert_eq!(shape, [cfg.architecture.head_width, width]);
    cfg.architecture.head_reads_bn_crelu = true;
    let (shape, normalised) = codes_move(&cfg);
    assert_eq!(shape, [cfg.architecture.head_width, 2 * width]);
    eprintln!("codes moved by tripling AvePool: raw head {raw:.4}, BN+CReLU head {normalised:.4}");
    assert!(normalised * 10.0 < raw, "batch norm removes the scale before the head: {normalised} against {raw}");
}

/// `mismatch_weight` adds w · mean h(−s_xz(x, E(x′))) (encoder side: D's −1 class) or w · mean h(s_xz(G(z), z′))
/// (generator side: D's +1 class) to D's loss. J's output bias is shifted so that s_xz ≈ ±3 on every pair:
/// with s ≈ +3 the −1 class's hinge is ≈ 4 and the +1 class's 0, and the other way round with s ≈ −3 — so
/// a missing term, a doubled one or a wrong class fails.
#[test]
fn mismatched_pairs_add_their_hinge_to_ds_loss() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let d_loss = |weight: f64, side: MismatchSide, shift: f64| {
        let mut cfg = config(dir.path());
        cfg.mismatch_weight = weight;
        cfg.mismatch_side = side;
        cfg.architecture.dropout = 0.0;
        let x = images(&cfg).narrow(0, 0, 16);
        let mut t = Trainer::new(cfg, Device::Cpu).unwrap();
        tch::no_grad(|| {
            let mut bias = t.models.vs_d.variables()["j2.bias"].shallow_clone();
            let _ = bias.f_add_scalar_(shift).unwrap();
        });
        tch::manual_seed(3);
        let z = Tensor::randn([16, 8], (Kind::Float, Device::Cpu));
        t.d_step(&x, &z).unwrap()
    };
    for (shift, encoder_term, generator_term) in [(3.0, 4.0, 0.0), (-3.0, 0.0, 4.0)] {
        let plain = d_loss(0.0, MismatchSide::Encoder, shift);
        for (side, want) in [(MismatchSide::Encoder, encoder_term), (MismatchSide::Generator, generator_term)] {
            let extra = d_loss(1.0, side, shift) - plain;
            assert!((extra - want).abs() < 0.5, "s_xz ≈ {shift}: the mismatched {side:?} pairs' hinge is {extra}, not ≈ {want}");
        }
    }
    assert_refused(dir.path(), &tiny_with(dir.path(), "mismatch_weight = -1"), "mismatch_weight ≥ 0");
}

/// The three comparison terms add exactly their weighted error to E/G's loss, computed here independently on
/// the same fresh networks: BiGAN's latent regressor λ · mean_i ‖E(G(z_i)) − z_i‖², ALICE's cycle consistency
/// λ · MSE(x, G(E(x))) (per pixel) and the same cycle in D's features λ · MSE(F(x), F(G(E(x)))) (D's last map, in
/// eval mode). A term left out, applied twice, on the wrong pair or without its weight fails; and the feature
/// cycle leaves D as it was (weights and power-iteration vectors: E/G's step must not train D).
#[test]
fn the_comparison_terms_add_their_weighted_error_to_the_eg_loss() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let fresh = |latent_regression: f64, image_reconstruction: f64, feature_reconstruction: f64| {
        deterministic_trainer(dir.path(), |cfg| {
            cfg.latent_regression = latent_regression;
            cfg.image_reconstruction = image_reconstruction;
            cfg.feature_reconstruction = feature_reconstruction;
        })
    };
    let (x, z) = images_and_latents(dir.path());
    let eg_loss = |mut t: Trainer| t.eg_step(&x, &z).unwrap().0;
    let plain = eg_loss(fresh(0.0, 0.0, 0.0));
    let (latent_error, image_error, feature_error) = tch::no_grad(|| {
        let m = &fresh(0.0, 0.0, 0.0).models;
        let recovered = m.e.forward_t(&m.g.forward_t(&z, true), true).z_mean;
        let latent = (recovered - &z).square().sum(Kind::Float).double_value(&[]) / 16.0;
        let code = m.e.forward_t(&x, true).z_mean;
        let reconstructed = m.g.forward_t(&code, true);
        let image = (&reconstructed - &x).square().mean(Kind::Float).double_value(&[]);
        // The step scores its pairs first (a pass each, in training mode), which advances D's power
        // iterations that eval mode then reads.
        let _ = (m.d.forward_t(&x, &code, true), m.d.forward_t(&m.g.forward_t(&z, true), &z, true));
        let feature = (m.d.feature_map(&reconstructed, false) - m.d.feature_map(&x, false)).square().mean(Kind::Float).double_value(&[]);
        (latent, image, feature)
    });
    assert!(latent_error > 1.0 && image_error > 0.1 && feature_error > 1e-4, "fresh networks neither invert each other: {latent_error}, {image_error}, {feature_error}");
    for (weights, want) in [
        ((0.5, 0.0, 0.0), 0.5 * latent_error),
        ((0.0, 3.0, 0.0), 3.0 * image_error),
        ((0.0, 0.0, 7.0), 7.0 * feature_error),
        ((0.5, 3.0, 7.0), 0.5 * latent_error + 3.0 * image_error + 7.0 * feature_error),
    ] {
        let extra = eg_loss(fresh(weights.0, weights.1, weights.2)) - plain;
        assert!((extra - want).abs() < 1e-3 * want, "weights {weights:?}: the E/G loss grew by {extra}, not {want}");
    }
    // E/G's step advances D's power iterations either way; the feature cycle must change nothing more in D.
    let (mut without, mut with) = (fresh(0.0, 0.0, 0.0), fresh(0.0, 0.0, 7.0));
    without.eg_step(&x, &z).unwrap();
    with.eg_step(&x, &z).unwrap();
    let (without, with) = (variables_of(&without.models), variables_of(&with.models));
    assert_eq!(largest_gap(&without, &with, |k| k.starts_with("d/")), 0.0, "the feature cycle changed D");
    assert!(largest_gap(&without, &with, |k| k.starts_with("e/") && !k.contains("running_")) > 1e-6, "the feature cycle did not reach E");
    assert_refused(dir.path(), &tiny_with(dir.path(), "image_reconstruction = -1"), "image_reconstruction ≥ 0");
    assert_refused(dir.path(), &tiny_with(dir.path(), "feature_reconstruction = -1"), "feature_reconstruction ≥ 0");
}

/// `cycle_input_noise` feeds E a noisy copy of x in the cycle term alone: the E/G loss grows by
/// λ·MSE(x, G(E(x + sd·ε))), ε the step's draw after E's own, and not by the clean cycle's error; the
/// adversarial pairs keep the clean x. Refused without a cycle term to act in.
#[test]
fn the_denoising_cycle_reconstructs_the_clean_image_from_a_noisy_code() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let (x, z) = images_and_latents(dir.path());
    let fresh = |noise: f64, lambda: f64| {
        deterministic_trainer(dir.path(), |cfg| {
            cfg.image_reconstruction = lambda;
            cfg.cycle_input_noise = noise;
        })
    };
    let eg_loss = |mut t: Trainer| {
        tch::manual_seed(11);
        t.eg_step(&x, &z).unwrap().0
    };
    let plain = eg_loss(fresh(0.0, 0.0));
    let (clean_error, noisy_error) = tch::no_grad(|| {
        let m = &fresh(0.0, 0.0).models;
        let error = |code: Tensor| (m.g.forward_t(&code, true) - &x).square().mean(Kind::Float).double_value(&[]);
        tch::manual_seed(11);
        let code = m.e.forward_t(&x, true).z_sample; // draws E's ε (times σ = 0) first, as the step does
        let noisy = &x + x.randn_like() * 0.5;
        (error(code), error(m.e.forward_t(&noisy, true).z_sample))
    });
    assert!((noisy_error - clean_error).abs() > 1e-3 * clean_error, "the noise moved nothing: {noisy_error} vs {clean_error}");
    let extra = eg_loss(fresh(0.5, 3.0)) - plain;
    assert!((extra - 3.0 * noisy_error).abs() < 1e-3 * 3.0 * noisy_error, "the E/G loss grew by {extra}, not 3 × {noisy_error} (clean: 3 × {clean_error})");
    assert_refused(dir.path(), &tiny_with(dir.path(), "cycle_input_noise = 0.5"), "set image_reconstruction or feature_reconstruction");
    assert_refused(dir.path(), &tiny_with(dir.path(), "image_reconstruction = 1\ncycle_input_noise = -1"), "cycle_input_noise ≥ 0");
}

/// `flip_images` mirrors each training image left–right with probability ½: every row of a training batch is
/// the epoch order's image or its mirror, both occur, and the players' step sees them (its losses differ from
/// the same seed's without flips).
#[test]
fn flipped_batches_hold_each_image_or_its_mirror() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let images = images(&config(dir.path()));
    let trainer = |flip: bool| {
        let mut cfg = config(dir.path());
        cfg.flip_images = flip;
        Trainer::new(cfg, Device::Cpu).unwrap()
    };
    let mut t = trainer(true);
    tch::manual_seed(5);
    let (order, seen) = (t.batch(&images, 0).unwrap(), t.training_batch(&images, 0).unwrap());
    let rows_equal = |a: &Tensor| Vec::<bool>::try_from((a - &seen).abs().amax([1i64, 2, 3].as_slice(), false).eq(0.0)).unwrap();
    let (kept, mirrored) = (rows_equal(&order), rows_equal(&order.flip([3])));
    assert!(kept.iter().zip(&mirrored).all(|(k, m)| *k || *m), "a row is neither the image nor its mirror: {kept:?} {mirrored:?}");
    assert!(kept.iter().zip(&mirrored).any(|(k, m)| *m && !*k) && kept.contains(&true), "not both kinds: {kept:?} {mirrored:?}");
    assert_eq!(trainer(false).training_batch(&images, 0).unwrap(), order, "without flips the batch is the epoch order's");
    let first_step = |flip: bool| {
        let mut t = trainer(flip);
        tch::manual_seed(5);
        t.train_step(&images).unwrap().values().unwrap()
    };
    assert_ne!(first_step(true), first_step(false), "the players' step did not see the flips");
}

/// A fixed batch of 16 training images and 16 seeded latents, for steps compared across configs.
fn images_and_latents(dir: &std::path::Path) -> (Tensor, Tensor) {
    let x = images(&config(dir)).narrow(0, 0, 16);
    tch::manual_seed(3);
    (x, Tensor::randn([16, 8], (Kind::Float, Device::Cpu)))
}

/// Fresh networks whose only randomness is the batch and latents given to them (no dropout, E deterministic),
/// with the comparison terms set by `terms`.
fn deterministic_trainer(dir: &std::path::Path, terms: impl FnOnce(&mut TrainConfig)) -> Trainer {
    let mut cfg = config(dir);
    terms(&mut cfg);
    cfg.architecture.dropout = 0.0;
    cfg.architecture.deterministic_e = true;
    Trainer::new(cfg, Device::Cpu).unwrap()
}

/// `one_d_pass` scores encoder and generator pairs in one pass of D over both batches stacked: once the
/// spectral norms' power iterations have converged (a pass each runs one more per step), both players' steps
/// give the losses and gradients of a pass each; from fresh networks D's power iteration has advanced once per
/// D step (one pass), not twice; and it is refused with the contrastive joint, whose shuffled latents would
/// cross from one batch to the other.
#[test]
fn one_d_pass_trains_as_a_pass_each() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let (x, z) = images_and_latents(dir.path());
    let trainer = |one_d_pass: bool| deterministic_trainer(dir.path(), |cfg| cfg.one_d_pass = one_d_pass);
    let d_u = |k: &str| k.starts_with("d/") && k.ends_with(".u");

    // From fresh networks: the power iteration of one D pass in training mode is what the D step leaves.
    let reference = trainer(false);
    tch::no_grad(|| reference.models.d.forward_t(&x, &z, true));
    let (mut one, mut each) = (trainer(true), trainer(false));
    one.d_step(&x, &z).unwrap();
    each.d_step(&x, &z).unwrap();
    let after_one_pass = variables_of(&reference.models);
    assert!(largest_gap(&variables_of(&one.models), &after_one_pass, d_u) < 1e-6, "one_d_pass must advance D's power iteration once per D step");
    assert!(largest_gap(&variables_of(&each.models), &after_one_pass, d_u) > 1e-3, "a pass each advances it twice");

    // Converged power iterations: the same steps.
    let (mut one, mut each) = (trainer(true), trainer(false));
    for t in [&one, &each] {
        tch::no_grad(|| {
            for _ in 0..300 {
                let _ = t.models.d.forward_t(&x, &z, true);
            }
        });
    }
    // Compared by gradients, which the players' steps leave in their weights: Adam's first step turns a
    // gradient at rounding level (a bias before batch norm) into a whole step of either sign.
    let grads = |vs: &tch::nn::VarStore| vs.variables().into_iter().filter_map(|(k, v)| v.grad().defined().then(|| (k, v.grad().copy()))).collect::<Variables>();
    let assert_same_grads = |player: &str, a: &Variables, b: &Variables| {
        let scale = b.values().map(|g| g.abs().max().double_value(&[])).fold(0.0, f64::max);
        let gap = largest_gap(a, b, |_| true);
        assert!(!a.is_empty() && a.len() == b.len() && gap < 1e-4 * scale, "{player}'s gradients differ by {gap} (largest {scale})");
    };
    let (d_one, d_each) = (one.d_step(&x, &z).unwrap(), each.d_step(&x, &z).unwrap());
    assert!((d_one - d_each).abs() < 1e-5 * d_each.abs(), "D's loss: {d_one} in one pass, {d_each} in a pass each");
    assert_same_grads("D", &grads(&one.models.vs_d), &grads(&each.models.vs_d));
    let ((eg_one, se_one, sg_one), (eg_each, se_each, sg_each)) = (one.eg_step(&x, &z).unwrap(), each.eg_step(&x, &z).unwrap());
    assert!((eg_one - eg_each).abs() < 1e-5 * eg_each.abs() && (se_one - se_each).abs() < 1e-4 && (sg_one - sg_each).abs() < 1e-4, "E/G's loss and scores: ({eg_one}, {se_one}, {sg_one}) in one pass, ({eg_each}, {se_each}, {sg_each}) in a pass each");
    assert_same_grads("E", &grads(&one.models.vs_e), &grads(&each.models.vs_e));
    assert_same_grads("G", &grads(&one.models.vs_g), &grads(&each.models.vs_g));

    let contrastive = format!("{}contrastive_joint = true\n", tiny_with(dir.path(), "one_d_pass = true"));
    assert_refused(dir.path(), &contrastive, "one_d_pass cannot be combined with contrastive_joint");
}

/// The latent regressor reaches the players asked for: by default (BiGAN's joint regressor) E's body, E's head
/// and G; with `latent_regression_trains_g = false` not G (G(z) is a constant for it); with
/// `latent_regression_trains_e_body = false` not E's body (the features the probes read move as in the plain
/// game), while E's head and G (unless also held) learn exactly what the joint regressor teaches them.
#[test]
fn the_latent_regressor_trains_only_the_players_asked() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let (x, z) = images_and_latents(dir.path());
    // E/G's loss and the weights after one E/G step from the same fresh networks, batch and latents.
    let after_step = |latent_regression: f64, trains_g: bool, trains_e_body: bool| {
        let mut t = deterministic_trainer(dir.path(), |cfg| {
            cfg.latent_regression = latent_regression;
            cfg.latent_regression_trains_g = trains_g;
            cfg.latent_regression_trains_e_body = trains_e_body;
        });
        let loss = t.eg_step(&x, &z).unwrap().0;
        (loss, variables_of(&t.models))
    };
    // The largest difference between two of those over the trained weights of one part (BN's running
    // statistics move with every forward pass in training mode, so they are left out).
    let moved = |a: &Variables, b: &Variables, part: fn(&str) -> bool| largest_gap(a, b, |k| part(k) && !k.contains("running_"));
    // E's head is the two linear layers reading the AvePool feature; the rest of E is its body.
    let e_head: fn(&str) -> bool = |k| k.starts_with("e/head");
    let e_body: fn(&str) -> bool = |k| k.starts_with("e/") && !k.starts_with("e/head");
    let g: fn(&str) -> bool = |k| k.starts_with("g/");
    let (_, plain) = after_step(0.0, true, true);
    let (joint_loss, joint) = after_step(0.5, true, true);
    let (_, e_only) = after_step(0.5, false, true);
    let (body_held_loss, body_held) = after_step(0.5, true, false);
    let (_, head_only) = after_step(0.5, false, false);
    // A first Adam step moves every weight with a gradient by about the learning rate (2e-4).
    assert!(moved(&joint, &plain, e_body) > 1e-5 && moved(&joint, &plain, e_head) > 1e-5 && moved(&joint, &plain, g) > 1e-5, "BiGAN's joint latent regressor (the default) must reach E's body and head and G");
    assert!(moved(&e_only, &plain, e_body) > 1e-5, "the latent regressor must reach E");
    assert_eq!(moved(&e_only, &plain, g), 0.0, "with latent_regression_trains_g = false G's step must be the plain game's");
    assert_eq!(moved(&body_held, &plain, e_body), 0.0, "with latent_regression_trains_e_body = false E's body must move as in the plain game");
    assert!(moved(&body_held, &joint, e_head) < 1e-7 && moved(&body_held, &joint, g) < 1e-7, "with E's body held, E's head and G must learn what the joint regressor teaches them");
    assert!((body_held_loss - joint_loss).abs() < 1e-5 * joint_loss.abs(), "E/G's loss is the same error however it trains: {body_held_loss} against {joint_loss}");
    assert_eq!((moved(&head_only, &plain, e_body), moved(&head_only, &plain, g)), (0.0, 0.0), "with both held only E's head may learn from the regressor");
    assert!(moved(&head_only, &joint, e_head) < 1e-7, "E's head learns from the regressor whatever else is held");
}

/// The latent regressor acts from `latent_regression_from_step` on: before it E/G's loss is the plain game's,
/// from it on the plain game's plus the regressor's error (the same fresh networks, batch and latents at each step).
#[test]
fn the_latent_regressor_acts_from_its_first_step() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let (x, z) = images_and_latents(dir.path());
    let eg_loss_at = |latent_regression: f64, step: usize| {
        let mut t = deterministic_trainer(dir.path(), |cfg| {
            cfg.latent_regression = latent_regression;
            cfg.latent_regression_from_step = 5;
        });
        t.step = step;
        t.eg_step(&x, &z).unwrap().0
    };
    let plain = eg_loss_at(0.0, 4);
    assert_eq!(eg_loss_at(0.0, 5), plain, "without the regressor the step number does not enter E/G's loss");
    assert_eq!(eg_loss_at(0.5, 4), plain, "before its first step the regressor must not act");
    // Fresh networks do not invert each other: the regressor's error is ≈ the latent's dimension (8) and more.
    let extra = eg_loss_at(0.5, 5) - plain;
    assert!(extra > 0.5, "from its first step on the regressor must add its error: E/G's loss grew by {extra}");
    assert!((eg_loss_at(0.5, 6) - plain - extra).abs() < 1e-5 * extra, "after its first step the regressor keeps acting");
}

#[test]
fn instance_noise_reaches_ds_images_in_both_players_steps_and_anneals_to_zero() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let losses = |noise: f64, step: usize| {
        let mut cfg = config(dir.path());
        cfg.instance_noise = noise;
        cfg.steps = 10;
        // No other randomness than the noise: no dropout, E deterministic.
        cfg.architecture.dropout = 0.0;
        cfg.architecture.deterministic_e = true;
        let x = images(&cfg).narrow(0, 0, 16);
        // D's step and E/G's step, each from the same initial weights.
        let by_player: Vec<(f64, f64)> = (0..2)
            .map(|player| {
                let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
                t.step = step;
                tch::manual_seed(3);
                let z = Tensor::randn([16, 8], (Kind::Float, Device::Cpu));
                let loss = if player == 0 { t.d_step(&x, &z).unwrap() } else { t.eg_step(&x, &z).unwrap().0 };
                (loss, t.instance_noise_sd())
            })
            .collect();
        (by_player[0].0, by_player[1].0, by_player[0].1)
    };
    let (d_plain, eg_plain, none) = losses(0.0, 0);
    let (d_start, eg_start, sd_start) = losses(1.0, 0);
    let (_, _, sd_half) = losses(1.0, 5);
    let (d_end, eg_end, sd_end) = losses(1.0, 10);
    assert_eq!((none, sd_start, sd_half, sd_end), (0.0, 1.0, 0.5, 0.0), "linear from instance_noise at step 0 to 0 at `steps`");
    // Same weights, images and latents: only the noise on D's images changes the players' losses.
    assert!((d_start - d_plain).abs() > 1e-3, "noise of sd 1 left D's loss at {d_start} (clean {d_plain})");
    assert!((eg_start - eg_plain).abs() > 1e-3, "noise of sd 1 left E/G's loss at {eg_start} (clean {eg_plain})");
    assert_eq!((d_end, eg_end), (d_plain, eg_plain), "at the last step D must see the clean images");
    assert_refused(dir.path(), &tiny_with(dir.path(), "instance_noise = -0.1"), "instance_noise ≥ 0");
}

#[test]
fn one_step_changes_the_weights_and_lowers_each_players_loss() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let x = images(&cfg).narrow(0, 0, 8);
    let mut t = Trainer::new(cfg, Device::Cpu).unwrap();
    let z = Tensor::randn([8, 8], (Kind::Float, Device::Cpu));
    let snapshot = |vs: &tch::nn::VarStore| vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect::<std::collections::HashMap<_, _>>();
    let (d0, e0, g0) = (snapshot(&t.models.vs_d), snapshot(&t.models.vs_e), snapshot(&t.models.vs_g));

    // Converge the spectral norms' power iterations first (a train-mode forward advances them), so that
    // only the update moves the losses; then measure both players' losses in eval mode (no dropout, no
    // noise) on the same batch and latents before and after one update of each.
    tch::no_grad(|| {
        for _ in 0..50 {
            let _ = t.models.d.forward_t(&x, &z, true);
        }
    });
    let (d_before, _) = t.losses(&x, &z);
    t.d_step(&x, &z).unwrap();
    let (d_after, _) = t.losses(&x, &z);
    assert!(d_after < d_before, "D's hinge loss must fall after its step: {d_before} → {d_after}");
    // E and G train with batch statistics: their loss is measured as they train, with the same seeded
    // noise and dropout masks before and after.
    let eg_loss = |t: &Trainer| {
        tch::manual_seed(12);
        tch::no_grad(|| {
            let m = &t.models;
            let total = |s: bbeval::bigbigan::nets::Scores| (s.s_xz + s.s_x + s.s_z).mean(Kind::Float);
            let enc = total(m.d.forward_t(&x, &m.e.forward_t(&x, true).z_sample, true));
            let gen = total(m.d.forward_t(&m.g.forward_t(&z, true), &z, true));
            (enc - gen).double_value(&[])
        })
    };
    let eg_before = eg_loss(&t);
    tch::manual_seed(12);
    t.eg_step(&x, &z).unwrap();
    let eg_after = eg_loss(&t);
    assert!(eg_after < eg_before, "E/G's loss must fall after their step: {eg_before} → {eg_after}");

    for (name, before, vs) in [("D", &d0, &t.models.vs_d), ("E", &e0, &t.models.vs_e), ("G", &g0, &t.models.vs_g)] {
        let moved = vs.trainable_variables().iter().any(|v| before.values().all(|b| b.size() != v.size() || max_abs_diff(b, v) > 0.0));
        let changed = vs.variables().iter().filter(|(k, v)| max_abs_diff(&before[*k], v) > 0.0).count();
        assert!(moved && changed > 0, "{name}'s weights did not change");
    }
}

#[test]
fn export_then_load_gives_the_same_outputs() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    let imgs = images(&cfg);
    t.train(&imgs, &bbeval::reporter::Reporter::silent()).unwrap(); // 3 steps, so BN statistics are not the initial ones
    let m = &mut t.models;
    let out = dir.path().join("export");
    let e_manifest = export_encoder(&m.e, &mut m.vs_e, &cfg.architecture, 28, &out, "tiny-e", "test").unwrap();
    let g_manifest = export_generator(&m.g_ema, &mut m.vs_g_ema, &out, "tiny-g", "test").unwrap();
    assert_exports_reproduce(m, &imgs, &e_manifest, &g_manifest);
    // Exports trace with the weights moved to the CPU and frozen: the run's weights are put back, trainable.
    for vs in [&m.vs_e, &m.vs_g_ema] {
        assert_eq!(vs.device(), Device::Cpu);
        assert!(vs.trainable_variables().iter().all(|v| v.requires_grad()), "an export left the weights frozen");
    }
}

#[test]
fn a_plot_that_cannot_be_drawn_neither_fails_the_run_nor_leaves_a_blank_picture() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let imgs = images(&cfg);
    // A folder where the picture goes: drawing succeeds, putting it in place fails (as a machine without
    // fonts fails after the background is written).
    let png = cfg.plot_path();
    std::fs::create_dir_all(&png).unwrap();
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    t.train(&imgs, &bbeval::reporter::Reporter::silent()).expect("a plot that fails must not fail the run");
    assert_eq!(t.step, 3);
    assert!(cfg.checkpoint_dir().join("state.json").exists(), "the run's checkpoint is written");
    assert!(png.is_dir() && !cfg.out_dir().join("train_log.tmp.png").exists(), "the half-made picture is removed");
    let log = cfg.log_path();
    let err = bbeval::bigbigan::diagnostics::plot(&log, &png).unwrap_err().to_string();
    assert!(err.contains("train_log.png"), "{err}");
    // Drawn again where it can be: a whole picture of the log, 1200×1200 (six panels).
    std::fs::remove_dir(&png).unwrap();
    bbeval::bigbigan::diagnostics::plot(&log, &png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    assert_eq!((u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap())), (1200, 1200));
}

/// The exported encoder and generator, loaded as the harness loads them, give what the networks give:
/// E's outputs on 6 training images (the harness feeds 28×28 gray pixels in [-1, 1]; the export pads them
/// itself) and G's images for the same z (gray repeated to RGB, mapped to 0–255 by the harness).
/// The largest difference between the exported encoder's outputs and `e`'s in eval mode, on 6 images.
fn encoder_export_gap(e: &bbeval::bigbigan::nets::Encoder, imgs: &Tensor, e_manifest: &std::path::Path) -> f64 {
    let x28 = imgs.narrow(0, 0, 6).contiguous();
    let mut loaded = encoder::open(e_manifest.to_str().unwrap(), 1, &common::cpu()).unwrap();
    let pixels = Vec::<f32>::try_from(&x28.flatten(0, -1)).unwrap();
    let features = loaded.encode(&Batch { pixels, n: 6, shape: [1, 28, 28] }).unwrap();
    let direct = tch::no_grad(|| e.forward_t(&imgs.narrow(0, 0, 6), false));
    [("avepool", &direct.avepool), ("bn_crelu", &direct.bn_crelu), ("z_mean", &direct.z_mean)]
        .iter()
        .map(|(name, want)| max_abs_diff(&Tensor::from_slice(&features.iter().find(|f| f.name == *name).unwrap().values).view([6, -1]), want))
        .fold(0.0, f64::max)
}

fn assert_exports_reproduce(m: &Models, imgs: &Tensor, e_manifest: &std::path::Path, g_manifest: &std::path::Path) {
    let gap = encoder_export_gap(&m.e, imgs, e_manifest);
    assert!(gap < 1e-5, "the encoder's outputs differ after export: {gap}");

    let g = Generator::open(g_manifest, Device::Cpu).unwrap();
    let z: Vec<f32> = (0..2 * 8).map(|i| (i as f32 * 0.37).sin()).collect();
    let got = g.generate(&z, 2).unwrap();
    let want = tch::no_grad(|| m.g_ema.forward_t(&Tensor::from_slice(&z).view([2, 8]), false));
    let want = (want.repeat([1, 3, 1, 1]) + 1.0) * 127.5;
    assert_eq!(got.size(), [2, 3, 28, 28]);
    assert!(max_abs_diff(&got, &want) < 1e-3, "{}", max_abs_diff(&got, &want));
}

/// `kind = "mlp"` (BiGAN's permutation-invariant MNIST networks) keeps every network's contract: G gives
/// 28×28 images in [-1, 1] from a dense last layer, E's AvePool is its second hidden layer (`e_width` wide,
/// BN+CReLU twice that) and D's F(x) is its last hidden layer (`d_width` wide); three steps move all three;
/// a trained run exports and loads back with the same outputs; and the convolution-only options are refused
/// for it.
#[test]
fn mlp_networks_keep_the_contract_train_and_export() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    // Widths 4, as the tiny dcgan config: the convolutional kinds' AvePool and F(x) would be 4 × 4 wide.
    let cfg = config_with(dir.path(), "kind = \"mlp\"\n");
    let a = &cfg.architecture;
    assert_eq!((a.image_size(), a.f_width(), a.avepool_width()), (28, 4, 4));
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    let imgs = images(&cfg);
    {
        let m = &t.models;
        let g = m.g.forward_t(&Tensor::randn([5, a.latent], (Kind::Float, Device::Cpu)), false);
        assert_eq!(g.size(), [5, 1, 28, 28]);
        assert!(g.abs().max().double_value(&[]) <= 1.0);
        let x = imgs.narrow(0, 0, 5);
        let e = m.e.forward_t(&x, false);
        assert_eq!((e.avepool.size(), e.bn_crelu.size()), (vec![5, 4], vec![5, 8]));
        assert_eq!(m.d.features(&x, false).size(), [5, 4]);
        let s = m.d.forward_t(&x, &e.z_sample, false);
        assert_eq!(s.s_xz.size(), [5]);
    }
    let before = variables_of(&t.models);
    t.train(&imgs, &bbeval::reporter::Reporter::silent()).unwrap();
    let after = variables_of(&t.models);
    for name in ["e/fc0.weight", "g/fc1.weight", "d/f1.weight"] {
        assert!(max_abs_diff(&before[name], &after[name]) > 0.0, "{name} did not move in 3 steps");
    }
    let (e_manifest, g_manifest) = export_run(&mut t, &imgs, 28).unwrap();
    assert_exports_reproduce(&t.models, &imgs, &e_manifest, &g_manifest);

    for (extra, refused) in [("e_layers = 4\n", "dcgan\" only"), ("f_readout = \"dense\"\n", "convolutional kinds only")] {
        assert_refused(dir.path(), &format!("name = \"bad\"\ndataset = \"idx:x\"\n[architecture]\nkind = \"mlp\"\n{extra}"), refused);
    }
}

/// `train-bigbigan --export-generator` re-creates the shipped run's generator (not committed: over 1 MB)
/// from its checkpoint: the same bytes as the run's own export, calibration included, and the encoder's
/// exports left alone.
#[test]
fn the_generator_alone_is_re_exported_from_the_checkpoint_as_the_run_exported_it() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let imgs = images(&cfg);
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    t.train(&imgs, &bbeval::reporter::Reporter::silent()).unwrap();
    let (e_manifest, g_manifest) = export_run(&mut t, &imgs, 28).unwrap();
    let g_weights = g_manifest.with_extension("pt");
    let (e_before, g_before) = (std::fs::read(e_manifest.with_extension("pt")).unwrap(), std::fs::read(&g_weights).unwrap());
    std::fs::remove_file(&g_weights).unwrap();
    std::fs::remove_file(&g_manifest).unwrap();
    // A fresh process's state: new models, RNG elsewhere, then the checkpoint.
    tch::manual_seed(12345);
    let mut again = Trainer::new(cfg, Device::Cpu).unwrap();
    assert_eq!(again.resume().unwrap(), 3);
    assert_eq!(export_generator_of_run(&mut again).unwrap(), g_manifest);
    assert!(std::fs::read(&g_weights).unwrap() == g_before, "the re-exported generator differs from the run's export");
    assert!(std::fs::read_to_string(&g_manifest).unwrap().contains("source = \"tiny step 3\""));
    assert!(std::fs::read(e_manifest.with_extension("pt")).unwrap() == e_before, "the encoder's export was rewritten");
}

/// The pairing probe learns what it says: a fresh D trained on (G(z), z) against (G(z), z′) with G frozen
/// (here the untrained tiny one) ends far above chance on held-out latents, starting near it.
#[test]
fn a_fresh_discriminator_learns_to_tell_a_latent_from_another_images() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let m = Models::new(&cfg, Device::Cpu);
    // Measured: 0.50 at step 0, 0.81 at 1,000 (0.80 at 1,000 of a 2,000-step run).
    let probe = PairingProbe { steps: 1000, batch: 32, lr: 1e-3, beta1: 0.5, every: 500, seed: 0 };
    let points = pairing_capacity(&m, &cfg.architecture, &probe).unwrap().points;
    assert_eq!(points.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 500, 1000]);
    let (first, last) = (points[0].accuracy, points[2].accuracy);
    assert!((0.4..0.6).contains(&first), "an untrained D is near chance: {first}");
    assert!(last > 0.7, "after 1,000 steps: {last}");
    let game = game_d_pairing(&m, 0).unwrap();
    assert!((0.35..0.65).contains(&game), "the untrained game D ignores the pairing: {game}");
}

/// The encoder-side question reads D the right way round: an untrained D ignores the pairing (≈ 0.5); a D
/// trained to score (x, E(x)) above (x, E(x′)) — as the game's D would if it checked E's pairing, encoder
/// pairs being its +1 class — scores the own code higher for most images, and one trained the other way
/// round for few.
#[test]
fn the_encoder_side_pairing_is_read_with_the_encoder_pairs_sign() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let imgs = images(&cfg);
    let trained = |sign: f64| {
        let m = Models::new(&cfg, Device::Cpu);
        let untrained = game_d_encoder_pairing(&m, &imgs, 0).unwrap();
        let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &m.vs_d, 1e-3).unwrap();
        let z = tch::no_grad(|| m.e.forward_t(&imgs, false).z_mean);
        for _ in 0..300 {
            let own = m.d.forward_t(&imgs, &z, true).s_xz * sign;
            let other = m.d.forward_t(&imgs, &next_in_batch(&z), true).s_xz * sign;
            opt.backward_step(&hinge_pair(&own, &other));
        }
        (untrained, game_d_encoder_pairing(&m, &imgs, 0).unwrap())
    };
    // Measured: 0.52 untrained; after 300 full-batch steps 0.73 (+1) and 0.28 (−1) (the measure pairs each
    // image with another neighbour than training did).
    let (untrained, own_higher) = trained(1.0);
    assert!((0.35..0.65).contains(&untrained), "an untrained D ignores the pairing: {untrained}");
    assert!(own_higher > 0.65, "a D trained to prefer the own code: {own_higher}");
    let (_, reversed) = trained(-1.0);
    assert!(reversed < 0.35, "a D trained to prefer another image's code: {reversed}");
}

/// G trained alone does what it is trained towards, from the run's G, and only G moves: towards D's joint
/// score its held-out s_xz rises; towards E itself corr(z, E(G(z))) rises; both start from the run's live G
/// (moved away from its initialisation first, so a fresh G would not pass for a copy); D and E collect no
/// gradients, keep their weights and are trainable again after.
#[test]
fn generator_follow_trains_a_copy_of_g_alone_towards_its_target() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut m = Models::new(&cfg, Device::Cpu);
    let at_start = |m: &mut Models| {
        let probe = PairingProbe { steps: 0, batch: 32, lr: 1e-3, beta1: 0.5, every: 100, seed: 0 };
        generator_follow(m, &cfg.architecture, &probe, GeneratorTarget::JointScore).unwrap()[0]
    };
    let initial = at_start(&mut m);
    tch::no_grad(|| {
        for (_, mut v) in m.vs_g.variables() {
            let _ = v.f_mul_scalar_(1.5).unwrap();
        }
    });
    let moved = at_start(&mut m);
    assert!(moved.s_xz != initial.s_xz && moved.corr != initial.corr, "the copy starts from the run's G: {initial:?} {moved:?}");

    let before = variables_of(&m);
    let probe = PairingProbe { steps: 200, batch: 32, lr: 1e-3, beta1: 0.5, every: 100, seed: 0 };
    let joint = generator_follow(&mut m, &cfg.architecture, &probe, GeneratorTarget::JointScore).unwrap();
    let encoder = generator_follow(&mut m, &cfg.architecture, &probe, GeneratorTarget::Encoder).unwrap();
    // Measured: s_xz −0.108 → −0.050 towards D (the untrained tiny D's scores are small); corr −0.075 → 0.437
    // towards E. Without the freeze, D and E collect gradients (the check below fails).
    assert_eq!(joint.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 100, 200]);
    assert_eq!((joint[0], encoder[0]), (moved, moved), "both targets start from the same copy");
    assert!(joint[2].s_xz > joint[0].s_xz + 0.025, "towards D: {joint:?}");
    assert!(encoder[2].corr > encoder[0].corr + 0.3, "towards E: {encoder:?}");
    let after = variables_of(&m);
    for (k, v) in &before {
        assert!(max_abs_diff(v, &after[k]) == 0.0, "{k} moved: only the copy of G is trained");
    }
    let frozen: Vec<Tensor> = m.vs_d.trainable_variables().into_iter().chain(m.vs_e.trainable_variables()).collect();
    assert!(frozen.iter().all(|v| !v.grad().defined()), "D and E collect no gradients while G follows");
    assert!(frozen.iter().all(|v| v.requires_grad()), "D and E are unfrozen after");
}

/// E-follow, the mirror of G-follow: a copy of E trained alone towards a D that checks G's pairing raises
/// that D's score of its codes, towards G itself it inverts G; the run's E, G and the checker stay as they
/// were.
#[test]
fn encoder_follow_trains_a_copy_of_e_alone_towards_its_target() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let m = Models::new(&cfg, Device::Cpu);
    let imgs = images(&cfg);
    let checker = pairing_capacity(&m, &cfg.architecture, &PairingProbe { steps: 300, batch: 32, lr: 1e-3, beta1: 0.5, every: 300, seed: 0 }).unwrap();
    let before = variables_of(&m);
    let checker_before: Vec<(String, Tensor)> = checker.vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect();
    let probe = PairingProbe { steps: 200, batch: 32, lr: 1e-3, beta1: 0.5, every: 100, seed: 0 };
    let towards_d = encoder_follow(&m, &checker.d, &cfg.architecture, &imgs, &probe, EncoderTarget::PairingChecker).unwrap();
    let towards_g = encoder_follow(&m, &checker.d, &cfg.architecture, &imgs, &probe, EncoderTarget::Generator).unwrap();
    // Measured (the untrained tiny networks, 64 images): towards the checker s_xz −0.015 → 9.05 with the share of
    // codes passing its check flat (0.47 → 0.47) and corr −0.04 → 0.07; towards G corr −0.04 → 0.65.
    assert_eq!(towards_d.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 100, 200]);
    assert_eq!(towards_d[0], towards_g[0], "both targets start from the same copy");
    assert!(towards_d[2].s_xz > towards_d[0].s_xz + 0.1, "towards the checker: {towards_d:?}");
    assert!(towards_g[2].corr > towards_g[0].corr + 0.3, "towards G: {towards_g:?}");
    let after = variables_of(&m);
    for (k, v) in &before {
        assert!(max_abs_diff(v, &after[k]) == 0.0, "{k} moved: only the copy of E is trained");
    }
    let checker_after = checker.vs.variables();
    for (k, v) in &checker_before {
        assert!(max_abs_diff(v, &checker_after[k]) == 0.0, "the checker's {k} moved");
    }
    // The copy starts from the run's E: scaling the run's E moves the starting point.
    tch::no_grad(|| {
        for (_, mut v) in m.vs_e.variables() {
            let _ = v.f_mul_scalar_(1.5).unwrap();
        }
    });
    let at_start = PairingProbe { steps: 0, ..probe };
    let moved = encoder_follow(&m, &checker.d, &cfg.architecture, &imgs, &at_start, EncoderTarget::Generator).unwrap()[0];
    assert!(moved.s_xz != towards_d[0].s_xz && moved.corr != towards_d[0].corr, "{moved:?} {:?}", towards_d[0]);
}

#[test]
fn training_is_deterministic_on_cpu_and_resumes_from_its_checkpoint() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let run = |sub: &str| {
        let mut cfg = config(&dir.path().join(sub));
        cfg.out_dir = Some(dir.path().join(sub));
        let imgs = images(&cfg);
        let mut t = Trainer::new(cfg, Device::Cpu).unwrap();
        t.train(&imgs, &bbeval::reporter::Reporter::silent()).unwrap();
        t
    };
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    let (a, b) = (run("a"), run("b"));
    for (k, v) in a.models.vs_g.variables() {
        assert!(max_abs_diff(&v, &b.models.vs_g.variables()[&k]) == 0.0, "G's {k} differs between identical runs");
    }
    let log = std::fs::read_to_string(dir.path().join("a/train_log.csv")).unwrap();
    assert!(log.starts_with("step,d_loss,eg_loss,d_xz,d_x,d_z,eg_xz,eg_x,eg_z,sigma,corr_z,sxz_shuffle"), "{log}");
    assert_eq!(log.lines().count(), 2, "one diagnostics line (log_every 3 in 3 steps): {log}");
    assert!(dir.path().join("a/train_log.png").is_file(), "the diagnostics plot is written next to the log");
    assert_eq!(a.cfg.d_steps, 2, "BigGAN's two D steps per E/G step is the default");

    // Resume restores the weights and the step from the checkpoint.
    let mut cfg = a.cfg.clone();
    cfg.steps = 5;
    let mut resumed = Trainer::new(cfg, Device::Cpu).unwrap();
    assert_eq!(resumed.resume().unwrap(), 3);
    for (k, v) in a.models.vs_e.variables() {
        assert!(max_abs_diff(&v, &resumed.models.vs_e.variables()[&k]) == 0.0, "E's {k} not restored");
    }

    // A fresh run in the same folder starts a new log instead of appending a second header to the old one.
    run("a");
    let log = std::fs::read_to_string(dir.path().join("a/train_log.csv")).unwrap();
    assert_eq!(log.matches("step,d_loss").count(), 1, "{log}");
}

/// `--max-seconds`: a zero budget stops after the first step, which is logged and checkpointed as a last
/// step is (so a lent GPU's run comes back resumable), and `--resume` restores that step's weights and goes
/// on to the config's steps.
#[test]
fn a_time_budget_stops_at_a_logged_checkpoint_that_resumes_to_the_configs_steps() {
    use bbeval::bigbigan::train::Stopped;
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let silent = bbeval::reporter::Reporter::silent();
    let cfg = config(dir.path());
    let imgs = images(&cfg);
    let initial = variables_of(&Trainer::new(cfg.clone(), Device::Cpu).unwrap().models);
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    assert_eq!(t.train_within(&imgs, &silent, Some(std::time::Duration::ZERO)).unwrap(), Stopped::TimeBudget);
    assert_eq!(t.step, 1, "a zero budget still trains one step");
    // The step column of the training log, below its header.
    let logged_steps = || -> Vec<String> {
        let log = std::fs::read_to_string(cfg.out_dir().join("train_log.csv")).unwrap();
        log.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect()
    };
    assert_eq!(logged_steps(), ["1"], "the stopping step is logged (log_every is 3)");

    let mut resumed = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    assert_eq!(resumed.resume().unwrap(), 1, "the stopping step is checkpointed");
    let (stopped_at, restored) = (variables_of(&t.models), variables_of(&resumed.models));
    let mut moved = 0.0f64;
    for (k, v) in &stopped_at {
        assert!(max_abs_diff(v, &restored[k]) == 0.0, "{k} is not the stopping step's");
        moved = moved.max(max_abs_diff(v, &initial[k]));
    }
    assert!(moved > 0.0, "the checkpoint holds the initial weights, not the trained step's");
    // A budget the run does not reach changes nothing: it finishes at the config's steps.
    assert_eq!(resumed.train_within(&imgs, &silent, Some(std::time::Duration::from_secs(3600))).unwrap(), Stopped::Finished);
    assert_eq!(resumed.step, 3);
    assert_eq!(logged_steps(), ["1", "3"]);
}

#[test]
fn a_config_with_zero_d_steps_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(dir.path(), "name = \"bad\"\ndataset = \"idx:x\"\nd_steps = 0\n", "d_steps ≥ 1");
    // The extra convolutions exist for the dcgan family only.
    assert_refused(dir.path(), "name = \"bad\"\ndataset = \"idx:x\"\n[architecture]\nkind = \"resnet\"\ne_layers = 4\n", "dcgan\" only");
}

/// A run killed after its checkpoint at step 200 logged up to 300 (and half a line); the resume keeps the
/// header and rows ≤ 200 and continues the clock, so no step appears twice in the log or its plot.
#[test]
fn a_resumed_log_drops_the_rows_after_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train_log.csv");
    std::fs::write(&path, "step,d_loss,seconds\n100,1.0,20.5\n200,0.9,41.0\n300,0.8,61.5\n40").unwrap();
    let seconds = bbeval::bigbigan::diagnostics::truncate_log(&path, 200, "step,d_loss,seconds").unwrap();
    assert_eq!(seconds, 41.0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,d_loss,seconds\n100,1.0,20.5\n200,0.9,41.0\n");
}

/// A run logged before a diagnostic column existed and resumed after: its kept rows are laid out under
/// the current header, the new column empty in them, so the rows appended next line up with the header.
#[test]
fn a_resumed_log_without_the_new_columns_gets_them_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train_log.csv");
    std::fs::write(&path, "step,d_loss,seconds\n100,1.0,20.5\n200,0.9,41.0\n").unwrap();
    let seconds = bbeval::bigbigan::diagnostics::truncate_log(&path, 100, "step,d_loss,z_norm,z_rank,seconds").unwrap();
    assert_eq!(seconds, 20.5);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,d_loss,z_norm,z_rank,seconds\n100,1.0,,,20.5\n");
}

/// The code-spread diagnostic. Hand-computed: codes (±1, 0) and (0, ±2) have mean 0 and covariance
/// diag(2, 8)/3, so the participation ratio is (10/3)² / ((4 + 64)/9) = 100/68; their mean length is
/// 1.5, over √2. Prior latents of the diagnostic batch's shape (256 × 120) vary along ≈ 120 / (1 + 120/256)
/// = 81.7 directions (Marchenko–Pastur; measured 116.7 on 4,096 latents), with length ≈ 1; the shipped
/// recipe's E (results/bigbigan-fmnist, step 7,000) gave 2.5 and 1.70 on 4,096 training images, codes on two
/// lines with an offset, which a `z_rank` of 2 and a `z_norm` well above 1 show here.
#[test]
fn code_spread_tells_prior_latents_from_collapsed_codes() {
    use bbeval::bigbigan::diagnostics::CodeSpread;
    let hand = CodeSpread::of(&Tensor::from_slice(&[1.0f32, 0.0, -1.0, 0.0, 0.0, 2.0, 0.0, -2.0]).view([4, 2]));
    assert!((hand.rank - 100.0 / 68.0).abs() < 1e-9, "{hand:?}");
    assert!((hand.norm - 1.5 / 2f64.sqrt()).abs() < 1e-9, "{hand:?}");

    let _turn = rng_lock();
    tch::manual_seed(0);
    let prior = CodeSpread::of(&Tensor::randn([256, 120], (tch::Kind::Float, Device::Cpu)));
    assert!((prior.norm - 1.0).abs() < 0.03, "{prior:?}");
    assert!((75.0..90.0).contains(&prior.rank), "{prior:?}");

    // Two directions plus an offset of length 15 along a third: what the shipped E's codes look like.
    let t = Tensor::randn([256, 2], (tch::Kind::Float, Device::Cpu));
    let collapsed = Tensor::zeros([256, 120], (tch::Kind::Float, Device::Cpu));
    collapsed.narrow(1, 0, 2).copy_(&t);
    let _ = collapsed.narrow(1, 2, 1).fill_(15.0);
    let spread = CodeSpread::of(&collapsed);
    assert!(spread.rank < 2.1 && spread.rank > 1.5, "{spread:?}");
    assert!(spread.norm > 1.3, "{spread:?}");
}

/// Defect 1 of the old design: D's joint score ignored z (shuffling the latents across a batch moved s_xz
/// by ~1.5% of its value). With mean-pooled F, a residual H and a 2-layer J, a D trained for a while must
/// score shuffled pairs measurably differently: the mean change is a sizeable fraction of s_xz's spread.
#[test]
fn the_joint_score_changes_when_the_latents_are_shuffled() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.steps = 40;
    cfg.log_every = 40;
    let imgs = images(&cfg);
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    t.train(&imgs, &bbeval::reporter::Reporter::silent()).unwrap();
    let row = bbeval::bigbigan::diagnostics::Diagnostics::new(&t.models, cfg.seed, &imgs).unwrap().measure(&t.models).unwrap();
    let ratio = row.sxz_shuffle / row.sxz_std;
    eprintln!("|Δ s_xz| under shuffled z = {:.4}, sd(s_xz) = {:.4}, ratio {ratio:.3}", row.sxz_shuffle, row.sxz_std);
    assert!(ratio > 0.3, "s_xz hardly depends on z: |Δ| {} vs sd {}", row.sxz_shuffle, row.sxz_std);
}

/// Defect 3: the random-init baseline was exported with BatchNorm's initial statistics (mean 0, var 1), so
/// BN was the identity and half of its BN+CReLU feature constant. Every export calibrates on training images.
#[test]
fn the_random_init_encoder_is_exported_with_calibrated_batch_norm() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let imgs = images(&cfg);
    let mut t = Trainer::new(cfg, Device::Cpu).unwrap();
    bbeval::bigbigan::export::export_random_encoder(&mut t, &imgs, 28).unwrap();
    let vars = t.models.vs_e.variables();
    let stats: Vec<_> = vars.iter().filter(|(k, _)| k.ends_with("running_mean") || k.ends_with("running_var")).collect();
    assert!(!stats.is_empty(), "E has BatchNorm layers");
    for (k, v) in stats {
        let initial = if k.ends_with("running_mean") { 0.0 } else { 1.0 };
        let moved = (v - initial).abs().max().double_value(&[]);
        assert!(moved > 1e-3, "{k} still holds its initial value {initial}: not calibrated");
    }
}

/// `z_whitening_group`: in training each group of E's codes leaves the batch centred with covariance near
/// the identity (ten Newton–Schulz iterations on freshly initialised codes), and after calibration the eval
/// mode, which uses the running statistics, gives the codes of the calibration batch itself (the 64 images
/// are one calibration batch), so the export whitens with the statistics it was calibrated on; the exported
/// module gives the same codes for a batch of another size than the one it was traced with.
#[test]
fn whitened_codes_are_decorrelated_in_training_and_in_the_calibrated_export() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(dir.path(), "z_whitening_group = 4");
    let x = images(&cfg);
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    let trained = tch::no_grad(|| t.models.e.forward_t(&x, true).z_mean);
    for g in 0..2 {
        let group = trained.narrow(1, 4 * g, 4);
        let centred = &group - group.mean_dim(0, true, Kind::Float);
        let cov = centred.tr().matmul(&centred) / 64.0;
        let off = max_abs_diff(&cov, &Tensor::eye(4, (Kind::Float, Device::Cpu)));
        assert!(off < 0.05, "group {g}: max |cov − I| = {off}");
    }
    let raw = cfg.architecture.clone();
    assert!(raw.z_whitening_group == 4 && !raw.z_batch_norm);
    t.calibrate(&x).unwrap();
    assert!(t.models.vs_e.variables().contains_key("whiten_z.running_cov"));
    let exported = tch::no_grad(|| t.models.e.forward_t(&x, false).z_mean);
    // Not to 1e-6: E's BatchNorm keeps the unbiased variance as its running statistic (n/(n − 1) = 64/63 of
    // the batch's), which moves the codes by 0.0025. With `running_cov` left out of the calibration they were
    // off by 2.8 (checked by taking it out).
    let off = max_abs_diff(&exported, &trained);
    assert!(off < 0.01, "eval-mode codes off the calibration batch's by {off}");
    // The TorchScript export (traced on a batch of two) whitens batches of any size as the model does.
    let m = &mut t.models;
    let out = dir.path().join("export");
    let e_manifest = export_encoder(&m.e, &mut m.vs_e, &cfg.architecture, 28, &out, "white-e", "test").unwrap();
    let g_manifest = export_generator(&m.g_ema, &mut m.vs_g_ema, &out, "white-g", "test").unwrap();
    assert_exports_reproduce(m, &x, &e_manifest, &g_manifest);
    // Refused: a group that does not divide the latent, one not below the batch, and both normalisations.
    for (line, refused) in [("z_whitening_group = 3", "z_whitening_group = 3"), ("z_whitening_group = 8", "below batch_size"), ("z_whitening_group = 4\nz_batch_norm = true", "without z_batch_norm")] {
        let text = std::fs::read_to_string(dir.path().join("tiny.toml")).unwrap().replace("z_whitening_group = 4", line);
        assert_refused(dir.path(), &text, refused);
    }
}

/// A run that diverges between log rows (the loop reads the losses only there) stops with an error naming
/// the step, and its last good checkpoint stays as it was: 3 steps checkpointed, then resumed with a
/// learning rate of 1e30, which overflows the weights within the next three steps.
#[test]
fn a_diverged_run_keeps_its_last_good_checkpoint() {
    let _turn = rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.checkpoint_every = 3;
    let imgs = images(&cfg);
    let mut t = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    t.train(&imgs, &bbeval::reporter::Reporter::silent()).unwrap();
    let good = std::fs::read(dir.path().join("checkpoint/e.safetensors")).unwrap();
    cfg.steps = 6;
    (cfg.lr_d, cfg.lr_e, cfg.lr_g) = (1e30, 1e30, 1e30);
    let mut wild = Trainer::new(cfg, Device::Cpu).unwrap();
    assert_eq!(wild.resume().unwrap(), 3);
    let err = wild.train(&imgs, &bbeval::reporter::Reporter::silent()).unwrap_err().to_string();
    assert!(err.contains("diverged by step 6") && err.contains("lower the learning rates"), "{err}");
    let state = std::fs::read_to_string(dir.path().join("checkpoint/state.json")).unwrap();
    assert!(state.contains("\"step\": 3"), "{state}");
    assert!(std::fs::read(dir.path().join("checkpoint/e.safetensors")).unwrap() == good, "E's checkpoint was overwritten");
}

/// `encoder_ema_decay` keeps an average of E's weights and exports it as the trained encoder: the live
/// networks train exactly as without it (the same weights after the same steps), the average after each step
/// is the previous one moved by 1 − decay towards the live E, a checkpoint carries it over to a resumed run,
/// and the export is the average's (BN calibrated with it in place), not the live E's, whose weights the
/// export leaves as they were.
#[test]
fn the_encoder_average_is_exported_and_leaves_training_alone() {
    let _turn = rng_lock();
    let (plain_dir, average_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain_cfg = config(plain_dir.path());
    let imgs = images(&plain_cfg);
    let mut cfg = config(average_dir.path());
    cfg.encoder_ema_decay = 0.75;
    let (mut plain, mut t) = (Trainer::new(plain_cfg.clone(), Device::Cpu).unwrap(), Trainer::new(cfg.clone(), Device::Cpu).unwrap());
    let weights = |vs: &tch::nn::VarStore| -> Variables { vs.variables().into_iter().map(|(k, v)| (k, v.copy())).collect() };
    let averaged = |t: &Trainer| -> Variables { t.e_average.as_ref().unwrap().variables().iter().map(|(k, v)| (k.clone(), v.copy())).collect() };
    let mut expected = weights(&t.models.vs_e);
    tch::manual_seed(7);
    for _ in 0..3 {
        plain.train_step(&imgs).unwrap();
    }
    tch::manual_seed(7);
    for _ in 0..3 {
        t.train_step(&imgs).unwrap();
        let live = weights(&t.models.vs_e);
        expected = expected.iter().map(|(k, a)| (k.clone(), a + (&live[k] - a) * 0.25)).collect();
    }
    assert_eq!(largest_gap(&variables_of(&plain.models), &variables_of(&t.models), |_| true), 0.0, "the average changed how the live networks train");
    let average = averaged(&t);
    assert!(largest_gap(&average, &expected, |_| true) < 1e-6, "the average is not the step-by-step EMA of E's weights");
    let live = weights(&t.models.vs_e);
    assert!(largest_gap(&average, &live, |k| !k.contains("running_")) > 1e-4, "the average should lag the live weights");

    t.save_checkpoint().unwrap();
    tch::manual_seed(12345);
    let mut resumed = Trainer::new(cfg.clone(), Device::Cpu).unwrap();
    assert_eq!(resumed.resume().unwrap(), 3);
    assert_eq!(largest_gap(&averaged(&resumed), &average, |_| true), 0.0, "the checkpoint did not carry the average over");

    let (e_manifest, _) = export_run(&mut t, &imgs, 28).unwrap();
    assert_eq!(largest_gap(&weights(&t.models.vs_e), &live, |k| !k.contains("running_")), 0.0, "the export changed the live E's weights");
    // The plain trainer with the average copied into its E and calibrated the same way is what was exported.
    tch::no_grad(|| {
        for (k, v) in plain.models.vs_e.variables() {
            v.shallow_clone().copy_(&average[&k]);
        }
    });
    plain.calibrate(&imgs).unwrap();
    let gap = encoder_export_gap(&plain.models.e, &imgs, &e_manifest);
    assert!(gap < 1e-5, "the exported encoder is not the calibrated average: {gap}");
    t.calibrate(&imgs).unwrap();
    let live_gap = encoder_export_gap(&t.models.e, &imgs, &e_manifest);
    assert!(live_gap > 1e-3, "the export is the live E's, not the average's: {live_gap}");
    assert!(std::fs::read_to_string(&e_manifest).unwrap().contains("averaged (decay 0.75)"));

    assert_refused(average_dir.path(), "name = \"bad\"\ndataset = \"idx:x\"\nencoder_ema_decay = 1.0\n", "encoder_ema_decay < 1");
}
