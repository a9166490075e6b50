//! Group whitening of E's codes (IterNorm, Huang et al. 2019): the latents in groups of `group`, each group
//! centred and multiplied by an approximate Σ^{-1/2} of its covariance, so the codes cannot all vary along a
//! few directions. Batch normalisation gives each latent the prior's variance but leaves them free to move
//! together, and the plain game's codes do (about two directions of 120; docs/bigbigan-mini.md).
//!
//! Σ^{-1/2} comes from ten coupled Newton–Schulz iterations on Σ/tr(Σ) (matrix products only, so gradients
//! are stable where eigenvalues nearly coincide, as they do for collapsed codes; an eigendecomposition's
//! are not). IterNorm's five leave a direction with 10⁻³ of the group's variance at a quarter of the
//! prior's; ten bring it near 1 (measured on such codes: participation ratio 1.6 → 2.5 with five, 12.1 of
//! 16 with ten). The uncoupled iteration overflows in f32 past nine; the coupled one converges.
//!
//! In training the batch's mean and covariance are used and averaged into `running_mean` / `running_cov`
//! with BatchNorm's momentum 0.1, which [`super::calibrate`] then replaces with means over training batches,
//! as it does for BatchNorm; eval mode (and the export) whitens with those.

use tch::nn;
use tch::{Kind, Tensor};

/// BatchNorm's momentum, which [`super::calibrate`] assumes for every running statistic.
const MOMENTUM: f64 = 0.1;
/// Newton–Schulz iterations (IterNorm's T is 5).
const ITERATIONS: usize = 10;
/// Added to each covariance's diagonal.
const EPS: f64 = 1e-5;

#[derive(Debug)]
pub struct GroupWhitening {
    group: i64,
    running_mean: Tensor,
    running_cov: Tensor,
}

impl GroupWhitening {
    /// `latent` must be a multiple of `group` (checked with the config).
    pub fn new(p: &nn::Path, latent: i64, group: i64) -> GroupWhitening {
        let groups = latent / group;
        let running_mean = p.zeros_no_train("running_mean", &[groups, 1, group]);
        let mut running_cov = p.zeros_no_train("running_cov", &[groups, group, group]);
        tch::no_grad(|| running_cov.copy_(&Tensor::eye(group, (Kind::Float, p.device())).expand([groups, group, group], false)));
        GroupWhitening { group, running_mean, running_cov }
    }

    /// Codes `[N, latent]` whitened group by group.
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        // Sizes read here become constants in a traced export: the batch dimension stays -1, so the exported
        // encoder takes any batch size.
        let latent = z.size()[1];
        let groups = latent / self.group;
        let grouped = z.reshape([-1, groups, self.group]).transpose(0, 1); // [groups, N, group]
        let (mean, cov) = if train {
            let mean = grouped.mean_dim([1i64].as_slice(), true, Kind::Float);
            let centred = &grouped - &mean;
            let cov = centred.transpose(1, 2).matmul(&centred) / z.size()[0] as f64;
            tch::no_grad(|| {
                let (mut rm, mut rc) = (self.running_mean.shallow_clone(), self.running_cov.shallow_clone());
                let _ = rm.lerp_(&mean.detach(), MOMENTUM);
                let _ = rc.lerp_(&cov.detach(), MOMENTUM);
            });
            (mean, cov)
        } else {
            (self.running_mean.shallow_clone(), self.running_cov.shallow_clone())
        };
        let whitened = (&grouped - &mean).matmul(&inverse_sqrt(&cov));
        whitened.transpose(0, 1).reshape([-1, latent])
    }
}

/// Approximate Σ^{-1/2} of each `[g, g]` covariance in a `[groups, g, g]` batch (symmetric, so it multiplies
/// row vectors from the right as it would column vectors from the left). Coupled Newton–Schulz on
/// N = Σ/tr(Σ), whose eigenvalues lie in (0, 1]: Y → N^{1/2}, Z → N^{-1/2}.
fn inverse_sqrt(cov: &Tensor) -> Tensor {
    let g = cov.size()[1];
    let eye = Tensor::eye(g, (Kind::Float, cov.device()));
    let cov = cov + &eye * EPS;
    let trace = cov.diagonal(0, 1, 2).sum_dim_intlist([1i64].as_slice(), true, Kind::Float).unsqueeze(2); // [groups, 1, 1]
    let mut y = &cov / &trace;
    let mut z = eye.expand_as(&cov);
    for _ in 0..ITERATIONS {
        let t = (&eye * 3.0 - z.matmul(&y)) * 0.5;
        y = y.matmul(&t);
        z = t.matmul(&z);
    }
    z / trace.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Codes that vary along two directions of sixteen with a little noise along the rest (the module doc's
    /// example; PyTorch on the same seed and construction gives participation ratios 1.56 before and 12.07
    /// after): whitened in two groups of eight, each group's covariance comes near the identity.
    #[test]
    fn collapsed_codes_come_out_spread_across_the_group() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let w = GroupWhitening::new(&vs.root(), 16, 8);
        let basis = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
        let z = Tensor::randn([512, 2], (Kind::Float, Device::Cpu)).matmul(&basis) * 3.0 + Tensor::randn([512, 16], (Kind::Float, Device::Cpu)) * 0.3;
        let pr = |t: &Tensor| crate::bigbigan::diagnostics::CodeSpread::of(t).rank;
        let out = w.forward_t(&z, true);
        // Participation ratio: about 2 before (two strong directions); 16 would be fully white.
        assert!(pr(&z) < 3.0, "before {}", pr(&z));
        assert!(pr(&out) > 12.0, "after {}", pr(&out));
        // Each group's batch covariance is near the identity.
        let g = out.view([512, 2, 8]).select(1, 0);
        let c = &g - g.mean_dim([0i64].as_slice(), true, Kind::Float);
        let cov = c.tr().matmul(&c) / 512.0;
        let off = (&cov - Tensor::eye(8, (Kind::Float, Device::Cpu))).abs().max().double_value(&[]);
        assert!(off < 0.1, "max |cov − I| = {off}");
        // The running statistics moved towards the batch's, and eval mode uses them.
        assert!(w.running_cov.abs().max().double_value(&[]) > 1.5);
        let eval = w.forward_t(&z, false);
        assert_eq!(eval.size(), [512, 16]);
    }
}
