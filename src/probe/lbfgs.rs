//! Full-batch L-BFGS over many L2 heads, in libtorch (CPU or CUDA): at once, or along the λ path.
//!
//! Every head h minimises `f_h = mean CE(x·W_h + b_h) + λ_h/2 ‖W_h‖²` — scikit-learn's multinomial
//! LogisticRegression objective with `C = 1/(λ n)`, bias unpenalised. The protocol's selection grid runs
//! as a λ path ([`Lbfgs::fit_path`]: one head after another, warm-started); heads fitted at once
//! ([`Lbfgs::fit_report`], e.g. the refit) share each pass over the rows: their weights sit side by side as `[D, H·C]`, so one `[n, D] × [D, H·C]` matmul gives every
//! head's logits and one `[D, n] × [n, H·C]` matmul every head's gradient. Everything else is per head:
//! the two-loop recursion, the backtracking line search (Armijo, with quadratic interpolation), and
//! convergence — a head stops when the largest entry of its gradient is at most `tol` (scipy's `pgtol`,
//! which sklearn sets to its `tol`), when its line search can make no more progress at f32 precision, or at
//! `max_iter`; stopped heads leave the matmul.
//!
//! Compute is f32; the loss and every inner product are reduced in f64, because the line search compares
//! losses that differ in their 7th digit near the optimum. The rows live on the context's device once
//! when they fit in `resident_bytes`; otherwise every pass streams them chunk by chunk (correct but slow,
//! which is why `auto` picks SGD for such sets).

use std::collections::VecDeque;

use tch::{Device, Kind, Tensor};

use super::backend::{Backend, Head, ProbeBackend};
use super::source::RowSource;
use super::{chunk_tensors, models_from_stacked, LinearModel};
use crate::context::ExecutionContext;
use crate::error::Result;

/// The L-BFGS back-end's checked settings (see `ProbeConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct Lbfgs {
    pub l2: Vec<f64>,
    /// Stop a head when `max |∇f_h| ≤ tol`.
    pub tol: f64,
    pub max_iter: usize,
    /// Curvature pairs kept (scipy's `m`, 10).
    pub history: usize,
    /// Sets up to this size are copied to the device once (`None`: the device's default, see
    /// `resident_limit`).
    pub resident_bytes: Option<usize>,
}

impl ProbeBackend for Lbfgs {
    fn kind(&self) -> Backend {
        Backend::Lbfgs
    }
    fn heads(&self) -> Vec<Head> {
        self.l2.iter().map(|&l2| Head { l2, lr: None }).collect()
    }
    /// A selection grid (no `init`) runs as a λ path; a warm-started refit runs its heads at once.
    fn fit(&self, rows: &dyn RowSource, num_classes: usize, heads: &[Head], init: Option<&[LinearModel]>, ctx: &ExecutionContext) -> Result<Vec<LinearModel>> {
        if init.is_none() && heads.len() > 1 {
            return Ok(self.fit_path(rows, num_classes, heads, ctx)?.models);
        }
        Ok(self.fit_report(rows, num_classes, heads, init, ctx)?.models)
    }
}

/// Why a head stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `max |∇f| ≤ tol`.
    Converged,
    /// The line search found no decrease: the optimum is reached to f32 precision.
    Stalled,
    MaxIter,
}

/// Models plus how each head's optimisation went.
#[derive(Debug, Clone)]
pub struct LbfgsReport {
    pub models: Vec<LinearModel>,
    pub iterations: Vec<usize>,
    pub stops: Vec<Stop>,
    /// Final objective of each head.
    pub loss: Vec<f64>,
    /// Full passes over the rows (function + gradient evaluations).
    pub passes: usize,
}

/// Parameters of the active heads: weights `[D, A, C]` and biases `[A, C]`.
struct Params {
    w: Tensor,
    b: Tensor,
}

impl Params {
    /// Per-head inner products `[A]`, reduced in f64.
    fn dot(&self, o: &Params) -> Tensor {
        let w = (&self.w * &o.w).sum_dim_intlist([0i64, 2].as_slice(), false, Kind::Double);
        let b = (&self.b * &o.b).sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
        w + b
    }
    /// `self + alpha ∘ o` with one scalar per head (`alpha` is `[A]`).
    fn axpy(&self, alpha: &Tensor, o: &Params) -> Params {
        let a = alpha.to_kind(Kind::Float);
        Params { w: &self.w + &o.w * a.view([1, -1, 1]), b: &self.b + &o.b * a.view([-1, 1]) }
    }
    fn scale(&self, alpha: &Tensor) -> Params {
        let a = alpha.to_kind(Kind::Float);
        Params { w: &self.w * a.view([1, -1, 1]), b: &self.b * a.view([-1, 1]) }
    }
    fn neg(&self) -> Params {
        Params { w: -&self.w, b: -&self.b }
    }
    fn sub(&self, o: &Params) -> Params {
        Params { w: &self.w - &o.w, b: &self.b - &o.b }
    }
    /// Largest absolute entry per head `[A]`.
    fn max_abs(&self) -> Tensor {
        let w = self.w.abs().amax([0i64, 2].as_slice(), false);
        let b = self.b.abs().amax([1i64].as_slice(), false);
        w.maximum(&b).to_kind(Kind::Double)
    }
    /// Keep the heads `idx` (indices into the active set).
    fn select(&self, idx: &Tensor) -> Params {
        Params { w: self.w.index_select(1, idx), b: self.b.index_select(0, idx) }
    }
}

/// The rows, on the device once, or streamed from the source at every pass.
enum Rows<'a> {
    Resident { x: Tensor, y: Tensor },
    Streamed { src: &'a dyn RowSource, device: Device },
}

/// Rows per block of a pass: bounds the `[rows, A·C]` logits to about 256 MiB.
fn block_rows(active: usize, classes: usize) -> i64 {
    ((64usize << 20) / (active * classes).max(1)).max(256) as i64
}

/// One pass: every active head's objective `[A]` (f64) and gradient at `p`.
fn evaluate(rows: &Rows, p: &Params, l2: &Tensor, n: usize) -> Result<(Tensor, Params)> {
    let (d, a, c) = (p.w.size()[0], p.w.size()[1], p.w.size()[2]);
    let w = p.w.view([d, a * c]);
    let b = p.b.view([a * c]);
    let device = p.w.device();
    let mut loss = Tensor::zeros([a], (Kind::Double, device));
    // MKL's GEMM kernels are uneven for skinny outputs. Measured with torch (same MKL) on 2 cores, 60,000 ×
    // 1,280 rows: with A·C = 10 columns, the forward against W stored as [A·C, D] and transposed in the
    // call takes 85 ms against 144 for x·W as [D, A·C], and the gradient as pᵀ·x 120 ms against 831 for
    // xᵀ·p; from A·C = 20 the plain forms are as fast or faster (A·C = 50: xᵀ·p 167 ms, pᵀ·x 204).
    let skinny = a * c <= 16;
    let wt = if skinny { Some(w.tr().contiguous()) } else { None };
    let mut gw_acc = if skinny { Tensor::zeros([a * c, d], (Kind::Float, device)) } else { Tensor::zeros([d, a * c], (Kind::Float, device)) };
    let mut gb = Tensor::zeros([a * c], (Kind::Float, device));
    let mut block = |x: &Tensor, y: &Tensor| {
        let r = x.size()[0];
        let logits = match &wt {
            Some(wt) => x.matmul(&wt.tr()),
            None => x.matmul(&w),
        };
        let logits = logits.f_add(&b)?.view([r, a, c]);
        let lse = logits.logsumexp([2i64].as_slice(), true);
        let idx = y.view([r, 1, 1]).expand([r, a, 1], false);
        let picked = logits.gather(2, &idx, false);
        loss += (&lse - &picked).sum_dim_intlist([0i64, 2].as_slice(), false, Kind::Double);
        // softmax − one-hot, in place of the logits
        let mut p = (logits - lse).exp();
        let _ = p.scatter_add_(2, &idx, &Tensor::full([r, a, 1], -1.0, (Kind::Float, device)));
        let p = p.view([r, a * c]);
        let _ = if skinny { gw_acc.addmm_(&p.tr(), x) } else { gw_acc.addmm_(&x.tr(), &p) };
        gb += p.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        Ok::<(), crate::Error>(())
    };
    let step = block_rows(a as usize, c as usize);
    match rows {
        Rows::Resident { x, y } => {
            let total = x.size()[0];
            let mut start = 0;
            while start < total {
                let len = step.min(total - start);
                block(&x.narrow(0, start, len), &y.narrow(0, start, len))?;
                start += len;
            }
        }
        Rows::Streamed { src, device } => {
            for i in 0..src.chunk_count() {
                let (x, y) = chunk_tensors(&src.chunk(i)?, *device)?;
                let total = x.size()[0];
                let mut start = 0;
                while start < total {
                    let len = step.min(total - start);
                    block(&x.narrow(0, start, len), &y.narrow(0, start, len))?;
                    start += len;
                }
            }
        }
    }
    let inv_n = 1.0 / n as f64;
    let l2f = l2.to_kind(Kind::Float);
    let gw_acc = if skinny { gw_acc.tr().contiguous() } else { gw_acc };
    let gw = gw_acc.view([d, a, c]) * inv_n + &p.w * l2f.view([1, -1, 1]);
    let gb = gb.view([a, c]) * inv_n;
    let penalty = (&p.w * &p.w).sum_dim_intlist([0i64, 2].as_slice(), false, Kind::Double) * l2 * 0.5;
    Ok((loss * inv_n + penalty, Params { w: gw, b: gb }))
}

/// Armijo's sufficient-decrease constant and the line search's trial limit (scipy: 1e-4 and 20).
const C1: f64 = 1e-4;
const MAX_LINE_SEARCH: usize = 20;
/// A loss change below this relative size is f32 rounding: the line search accepts it as "no worse".
const LOSS_NOISE: f64 = 1e-6;

/// The heads still being optimised and their optimiser state; stopped heads are written to `done_*`.
struct State {
    /// Head index (into the grid) of each active slot.
    active: Vec<usize>,
    x: Params,
    g: Params,
    /// Objective per active head `[A]` (f64).
    f: Tensor,
    l2: Tensor,
    gamma: Tensor,
    /// Curvature pairs (s, y) and ρ = 1/(s·y) per head (0 where the pair was unusable for that head).
    history: VecDeque<(Params, Params, Tensor)>,
    done_w: Tensor,
    done_b: Tensor,
}

impl State {
    /// Write the heads of the slots in `leaving` to the results and drop them from every tensor.
    fn retire(&mut self, leaving: &[bool]) -> Result<()> {
        let mut keep = Vec::new();
        for (k, &leave) in leaving.iter().enumerate() {
            if leave {
                let head = self.active[k] as i64;
                self.done_w.narrow(1, head, 1).copy_(&self.x.w.narrow(1, k as i64, 1));
                self.done_b.narrow(0, head, 1).copy_(&self.x.b.narrow(0, k as i64, 1));
            } else {
                keep.push(k as i64);
            }
        }
        if keep.len() == leaving.len() {
            return Ok(());
        }
        let idx = Tensor::f_from_slice(&keep)?.to_device(self.f.device());
        self.x = self.x.select(&idx);
        self.g = self.g.select(&idx);
        self.f = self.f.index_select(0, &idx);
        self.l2 = self.l2.index_select(0, &idx);
        self.gamma = self.gamma.index_select(0, &idx);
        self.history = std::mem::take(&mut self.history).into_iter().map(|(s, y, rho)| (s.select(&idx), y.select(&idx), rho.index_select(0, &idx))).collect();
        self.active = keep.iter().map(|&k| self.active[k as usize]).collect();
        Ok(())
    }

    /// The L-BFGS direction of every active head (two-loop recursion); a head whose direction does not
    /// descend restarts from steepest descent with its history cleared.
    fn direction(&mut self) -> Result<(Params, Tensor)> {
        let mut q = Params { w: self.g.w.shallow_clone(), b: self.g.b.shallow_clone() };
        let mut alphas = Vec::with_capacity(self.history.len());
        for (s, y, rho) in self.history.iter().rev() {
            let alpha = rho * s.dot(&q);
            q = q.axpy(&(-&alpha), y);
            alphas.push(alpha);
        }
        let mut r = q.scale(&self.gamma);
        for ((s, y, rho), alpha) in self.history.iter().zip(alphas.iter().rev()) {
            let beta = rho * y.dot(&r);
            r = r.axpy(&(alpha - beta), s);
        }
        let dir = r.neg();
        let slope = self.g.dot(&dir);
        let ascent = slope.ge(0.0);
        if !bool::try_from(ascent.any())? {
            return Ok((dir, slope));
        }
        let steepest = self.g.neg().scale(&self.gamma);
        let dir = Params::choose(&ascent, &steepest, &dir);
        let keep_rho = 1.0 - ascent.to_kind(Kind::Double);
        for (_, _, rho) in self.history.iter_mut() {
            *rho = &*rho * &keep_rho;
        }
        let slope = self.g.dot(&dir);
        Ok((dir, slope))
    }
}

impl Params {
    /// Per head: `a` where `mask` is true, else `b`.
    fn choose(mask: &Tensor, a: &Params, b: &Params) -> Params {
        Params { w: a.w.where_self(&mask.view([1, -1, 1]), &b.w), b: a.b.where_self(&mask.view([-1, 1]), &b.b) }
    }
}

impl Lbfgs {
    /// Fit `heads` on `rows` on `device`, warm-starting from `init` when given; returns the models and how
    /// each head's optimisation went.
    pub fn fit_report(&self, src: &dyn RowSource, num_classes: usize, heads: &[Head], init: Option<&[LinearModel]>, ctx: &ExecutionContext) -> Result<LbfgsReport> {
        super::check_fit_inputs(src, heads)?;
        let rows = self.rows(src, ctx)?;
        tch::no_grad(|| self.run(&rows, src.len(), src.width(), num_classes, heads, init, ctx.device))
    }

    /// The heads one after another along the λ path, strong to weak regularisation, each warm-started from
    /// the previous solution — as scikit-learn's `_logistic_regression_path` (LogisticRegressionCV) does.
    /// On a CPU a pass costs in proportion to the heads in it (the matmuls are compute-bound), so running
    /// them together saves nothing, while the warm starts save most iterations of the weak heads: on
    /// 60,000 × 1,280 EfficientNet features, 5 λ: 425 single-head passes along the path against 457 passes
    /// of up to 5 heads at once from zero (1,366 head-iterations). A weak head whose start already meets
    /// `tol` stays there, as in sklearn.
    pub fn fit_path(&self, src: &dyn RowSource, num_classes: usize, heads: &[Head], ctx: &ExecutionContext) -> Result<LbfgsReport> {
        super::check_fit_inputs(src, heads)?;
        let rows = self.rows(src, ctx)?;
        let mut order: Vec<usize> = (0..heads.len()).collect();
        order.sort_by(|&a, &b| heads[b].l2.total_cmp(&heads[a].l2));
        let mut slots: Vec<Option<(LinearModel, usize, Stop, f64)>> = vec![None; heads.len()];
        let mut passes = 0;
        let mut previous: Option<LinearModel> = None;
        for i in order {
            let init = previous.as_ref().map(std::slice::from_ref);
            let mut report = tch::no_grad(|| self.run(&rows, src.len(), src.width(), num_classes, &heads[i..=i], init, ctx.device))?;
            passes += report.passes;
            let model = report.models.remove(0);
            previous = Some(model.clone());
            slots[i] = Some((model, report.iterations[0], report.stops[0], report.loss[0]));
        }
        let done: Vec<_> = slots.into_iter().flatten().collect();
        Ok(LbfgsReport {
            iterations: done.iter().map(|s| s.1).collect(),
            stops: done.iter().map(|s| s.2).collect(),
            loss: done.iter().map(|s| s.3).collect(),
            models: done.into_iter().map(|s| s.0).collect(),
            passes,
        })
    }

    /// The rows on the device once when they fit in `resident_bytes`, else streamed every pass.
    fn rows<'a>(&self, src: &'a dyn RowSource, ctx: &ExecutionContext) -> Result<Rows<'a>> {
        let (n, d, device) = (src.len(), src.width(), ctx.device);
        Ok(if n * d * std::mem::size_of::<f32>() <= super::backend::resident_limit(self.resident_bytes, ctx) {
            let (values, labels) = super::source::collect(src)?;
            let (x, y) = super::rows_tensors(values.view(), &labels, device)?;
            Rows::Resident { x, y }
        } else {
            Rows::Streamed { src, device }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run(&self, rows: &Rows, n: usize, d: usize, c: usize, heads: &[Head], init: Option<&[LinearModel]>, device: Device) -> Result<LbfgsReport> {
        let h = heads.len();
        let (di, ci, hi) = (d as i64, c as i64, h as i64);
        let x = match init {
            Some(models) if models.len() == h => {
                let w: Vec<f32> = (0..d).flat_map(|row| models.iter().flat_map(move |m| m.w.row(row).to_vec())).collect();
                let b: Vec<f32> = models.iter().flat_map(|m| m.b.to_vec()).collect();
                Params { w: Tensor::f_from_slice(&w)?.view([di, hi, ci]).to_device(device), b: Tensor::f_from_slice(&b)?.view([hi, ci]).to_device(device) }
            }
            _ => Params { w: Tensor::zeros([di, hi, ci], (Kind::Float, device)), b: Tensor::zeros([hi, ci], (Kind::Float, device)) },
        };
        let l2: Vec<f64> = heads.iter().map(|hd| hd.l2).collect();
        let l2 = Tensor::f_from_slice(&l2)?.to_device(device);
        let (f, g) = evaluate(rows, &x, &l2, n)?;
        // Before any curvature pair, 1/‖g‖₂ makes the first step of length 1 (scipy's first step).
        let gamma = g.dot(&g).sqrt().clamp_min(1e-12).reciprocal();
        let mut st = State {
            active: (0..h).collect(),
            x,
            g,
            f,
            l2,
            gamma,
            history: VecDeque::new(),
            done_w: Tensor::zeros([di, hi, ci], (Kind::Float, device)),
            done_b: Tensor::zeros([hi, ci], (Kind::Float, device)),
        };
        let mut passes = 1;
        let mut iterations = vec![0usize; h];
        let mut stops = vec![Stop::MaxIter; h];
        let mut final_loss = vec![f64::NAN; h];

        for iter in 0..=self.max_iter {
            // 1. Heads whose gradient is small enough, or that ran out of iterations, stop.
            let gmax = Vec::<f64>::try_from(&st.g.max_abs())?;
            let fv = Vec::<f64>::try_from(&st.f)?;
            let mut leaving = vec![false; st.active.len()];
            for (k, &head) in st.active.iter().enumerate() {
                iterations[head] = iter;
                final_loss[head] = fv[k];
                if gmax[k] <= self.tol {
                    (stops[head], leaving[k]) = (Stop::Converged, true);
                } else if iter == self.max_iter {
                    (stops[head], leaving[k]) = (Stop::MaxIter, true);
                }
            }
            st.retire(&leaving)?;
            if st.active.is_empty() {
                break;
            }

            // 2. Direction, then a backtracking line search with a step per head: heads whose step is
            // accepted keep it while the others backtrack.
            let (dir, slope) = st.direction()?;
            let mut t = Tensor::ones([st.active.len() as i64], (Kind::Double, device));
            let mut accepted = Tensor::zeros_like(&t).to_kind(Kind::Bool);
            let mut trial = st.x.axpy(&t, &dir);
            let (mut f_new, mut g_new) = evaluate(rows, &trial, &st.l2, n)?;
            passes += 1;
            for _ in 0..MAX_LINE_SEARCH {
                let bound = &st.f + &t * &slope * C1 + st.f.abs().clamp_min(1.0) * LOSS_NOISE;
                accepted = accepted.logical_or(&f_new.le_tensor(&bound).logical_and(&f_new.isfinite()));
                if bool::try_from(accepted.all())? {
                    break;
                }
                // Minimiser of the quadratic through f, the slope and f_new, kept within [0.1 t, 0.5 t].
                let curvature = (&f_new - &st.f - &t * &slope) * 2.0;
                let t_quad = (-(&slope) * &t * &t / curvature.clamp_min(1e-300)).nan_to_num(0.0, 0.0, 0.0);
                let t_next = t_quad.minimum(&(&t * 0.5)).maximum(&(&t * 0.1));
                t = t.where_self(&accepted, &t_next);
                trial = st.x.axpy(&t, &dir);
                (f_new, g_new) = evaluate(rows, &trial, &st.l2, n)?;
                passes += 1;
            }

            // 3. Move the accepted heads; keep the curvature pair where it is usable (ρ = 0 elsewhere).
            let x_next = Params::choose(&accepted, &trial, &st.x);
            let g_next = Params::choose(&accepted, &g_new, &st.g);
            let s = x_next.sub(&st.x);
            let y = g_next.sub(&st.g);
            let (sy, yy) = (s.dot(&y), y.dot(&y));
            let usable = sy.gt_tensor(&(&yy * 1e-10)).logical_and(&sy.gt(0.0));
            let rho = sy.clamp_min(1e-300).reciprocal().where_self(&usable, &Tensor::zeros_like(&sy));
            st.gamma = (&sy / yy.clamp_min(1e-300)).where_self(&usable, &st.gamma);
            st.history.push_back((s, y, rho));
            if st.history.len() > self.history {
                st.history.pop_front();
            }
            st.f = f_new.where_self(&accepted, &st.f);
            st.x = x_next;
            st.g = g_next;

            // 4. Heads that found no decrease stop where they are: the optimum at f32 precision.
            let failed = Vec::<bool>::try_from(&accepted.logical_not())?;
            if failed.iter().any(|&b| b) {
                let fv = Vec::<f64>::try_from(&st.f)?;
                for (k, &fail) in failed.iter().enumerate() {
                    if fail {
                        let head = st.active[k];
                        (stops[head], iterations[head], final_loss[head]) = (Stop::Stalled, iter + 1, fv[k]);
                    }
                }
                st.retire(&failed)?;
                if st.active.is_empty() {
                    break;
                }
            }
        }
        // [D, H, C] → [H, D, C]
        let models = models_from_stacked(&st.done_w.permute([1, 0, 2]), &st.done_b, d, c)?;
        Ok(LbfgsReport { models, iterations, stops, loss: final_loss, passes })
    }
}
