//! What the training log records every `log_every` steps, measured on a fixed seeded batch of images and
//! latents with E, G (live, not EMA) and D in eval mode: the three hinge terms of D and of E/G
//! separately, E's mean σ, corr(z, E(G(z))) (does E invert G?), how much D's joint score moves when
//! the latents of encoder pairs are shuffled across the batch (does J use z at all?), and how E's codes
//! spread compared with the prior's (their length, and over how many directions they vary: a collapsed
//! E hands G a few directions of its latent, whatever D's unary z term says). `plot` draws them next to
//! the log.

use std::path::Path;

use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Kind, Tensor};

use super::losses::Terms;
use super::models::Models;
use super::nets::select_rows;
use crate::error::{Error, IoContext, Result};
use crate::seeded::seeded_permutation;

pub const LOG_HEADER: &str = "step,d_loss,eg_loss,d_xz,d_x,d_z,eg_xz,eg_x,eg_z,sigma,corr_z,sxz_shuffle,sxz_std,z_norm,z_rank,seconds";

/// Images and latents in the diagnostic batch.
const BATCH: usize = 256;

/// The fixed batch the diagnostics are measured on.
pub struct Diagnostics {
    x: Tensor,
    z: Tensor,
    perm: Tensor,
}

/// One log line's diagnostics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Row {
    pub terms: Terms,
    pub sigma: f64,
    pub corr_z: f64,
    /// Mean |s_xz(x, E(x)) − s_xz(x, E(x′))| with the latents shuffled across the batch.
    pub sxz_shuffle: f64,
    /// Standard deviation of s_xz over encoder pairs (the scale the shuffle change compares to).
    pub sxz_std: f64,
    /// E's codes against the prior: see [`CodeSpread`].
    pub codes: CodeSpread,
}

/// How a batch of codes `[N, L]` spreads, beside what the prior N(0, I) gives.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CodeSpread {
    /// Mean ‖z‖ / √L: ≈ 1 for prior latents.
    pub norm: f64,
    /// Participation ratio (Σλ)² / Σλ² of the eigenvalues λ of the codes' covariance over the batch:
    /// how many directions they vary along, 1 (one line) to L. Sampling noise keeps prior latents below L:
    /// ≈ L / (1 + L/N), 82 for L = 120 and N = 256 (the diagnostic batch).
    pub rank: f64,
}

impl CodeSpread {
    pub fn of(z: &Tensor) -> CodeSpread {
        let z = z.to_kind(Kind::Double);
        let n = z.size()[0];
        let dim = z.size()[1] as f64;
        let norm = z.square().sum_dim_intlist([1i64].as_slice(), false, Kind::Double).sqrt().mean(Kind::Double).double_value(&[]) / dim.sqrt();
        let centred = &z - z.mean_dim(0, true, Kind::Double);
        let cov = centred.tr().matmul(&centred) / (n - 1).max(1) as f64;
        // Σλ = trace, Σλ² = ‖cov‖²_F: no eigendecomposition needed.
        let trace = cov.trace().double_value(&[]);
        let frobenius = cov.square().sum(Kind::Double).double_value(&[]);
        CodeSpread { norm, rank: if frobenius > 0.0 { trace * trace / frobenius } else { 0.0 } }
    }
}

impl Row {
    pub fn csv(&self) -> String {
        let t = &self.terms;
        format!(
            "{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.5},{:.3}",
            t.d_xz, t.d_x, t.d_z, t.eg_xz, t.eg_x, t.eg_z, self.sigma, self.corr_z, self.sxz_shuffle, self.sxz_std, self.codes.norm, self.codes.rank
        )
    }
}

/// Mean over columns of the Pearson correlation between the columns of `a` and `b` (`[N, L]` each).
pub fn mean_column_correlation(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    let (a, b) = (&a - a.mean_dim(0, true, Kind::Double), &b - b.mean_dim(0, true, Kind::Double));
    let dims = [0i64].as_slice();
    let num = (&a * &b).sum_dim_intlist(dims, false, Kind::Double);
    let den = (a.square().sum_dim_intlist(dims, false, Kind::Double) * b.square().sum_dim_intlist(dims, false, Kind::Double)).sqrt().clamp_min(1e-12);
    (num / den).mean(Kind::Double).double_value(&[])
}

impl Diagnostics {
    /// A seeded batch of the training images and of latents (from their own ChaCha stream, so that the
    /// diagnostics never shift the training's random numbers).
    pub fn new(models: &Models, seed: u64, images: &Tensor) -> Result<Diagnostics> {
        let n = images.size()[0] as usize;
        let take = BATCH.min(n);
        let device = images.device();
        let x = select_rows(images, &seeded_permutation(n, seed ^ 0x6469_6167)[..take])?; // "diag"
        let latent = models.g.latent();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6469_6167);
        let z: Vec<f32> = (0..take * latent as usize).map(|_| StandardNormal.sample(&mut rng)).collect();
        let z = Tensor::f_from_slice(&z)?.f_view([take as i64, latent])?.f_to_device(device)?;
        let perm: Vec<i64> = seeded_permutation(take, seed ^ 0x7368_7566).into_iter().map(|i| i as i64).collect(); // "shuf"
        Ok(Diagnostics { x, z, perm: Tensor::f_from_slice(&perm)?.f_to_device(device)? })
    }

    pub fn measure(&self, m: &Models) -> Result<Row> {
        tch::no_grad(|| {
            let e = m.e.forward_t(&self.x, false);
            let gz = m.g.forward_t(&self.z, false);
            let enc = m.d.forward_t(&self.x, &e.z_mean, false);
            let gen = m.d.forward_t(&gz, &self.z, false);
            let recovered = m.e.forward_t(&gz, false).z_mean;
            let fx = m.d.features(&self.x, false);
            let shuffled = m.d.joint(&fx, &m.d.latent_features(&e.z_mean.index_select(0, &self.perm), false), false);
            Ok(Row {
                terms: Terms::of(&enc, &gen),
                sigma: e.z_stdev.mean(Kind::Float).double_value(&[]),
                corr_z: mean_column_correlation(&self.z, &recovered),
                sxz_shuffle: (&enc.s_xz - shuffled).abs().mean(Kind::Float).double_value(&[]),
                sxz_std: enc.s_xz.std(true).double_value(&[]),
                codes: CodeSpread::of(&e.z_mean),
            })
        })
    }
}

/// Columns of the log, by name.
fn read_log(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text = std::fs::read_to_string(path).at(path)?;
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(str::to_string).collect();
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap_or(f64::NAN)).collect()).filter(|r: &Vec<f64>| r.len() == header.len()).collect();
    Ok((header, rows))
}

/// Keep the log's rows up to `step` (a resumed run restarts from its checkpoint, so rows written after it
/// by the interrupted run would otherwise appear twice), laid out under `header`: a log written before a
/// column was added gets the column, empty in its old rows, so the rows the resumed run appends line up
/// with the header. Returns the kept rows' last `seconds`, from which the resumed run's clock continues.
pub fn truncate_log(path: &Path, step: usize, header: &str) -> Result<f64> {
    let text = std::fs::read_to_string(path).at(path)?;
    let mut lines = text.lines();
    let old: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    // For each of `header`'s columns, its place in the old rows (None: not logged then).
    let source: Vec<Option<usize>> = header.split(',').map(|name| old.iter().position(|o| *o == name)).collect();
    let mut kept = format!("{header}\n");
    let mut seconds = 0.0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        // A half-written line from a kill has fewer fields.
        match fields.first().and_then(|v| v.parse::<usize>().ok()) {
            Some(s) if s <= step && fields.len() == old.len() => {
                seconds = fields.last().and_then(|v| v.parse().ok()).unwrap_or(seconds);
                let row: Vec<&str> = source.iter().map(|i| i.map_or("", |i| fields[i])).collect();
                kept.push_str(&row.join(","));
                kept.push('\n');
            }
            _ => continue,
        }
    }
    crate::atomic::write(path, kept.as_bytes())?;
    Ok(seconds)
}

/// A panel of the plot: its title and its named lines of (step, value).
type Panel<'a> = (&'a str, Vec<(&'a str, Vec<(f64, f64)>)>);

/// Six panels next to the log: D's hinge terms, corr(z, E(G(z))), σ, the shuffled-z change of s_xz
/// relative to its spread, and the length and spread of E's codes (logs written before those two columns
/// leave their panels empty).
pub fn plot(log: &Path, png: &Path) -> Result<()> {
    // Drawn beside and renamed over `png` when whole: a machine without fonts fails after the white
    // background is written, and a blank picture must not pass for the run's plot.
    let tmp = png.with_extension("tmp.png");
    let done = draw(log, png, &tmp).and_then(|drawn| if drawn { std::fs::rename(&tmp, png).at(png) } else { Ok(()) });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Draw the plot of `log` into `file` (errors name `png`, the plot's own path); false when the log has no rows.
fn draw(log: &Path, png: &Path, file: &Path) -> Result<bool> {
    let (header, rows) = read_log(log)?;
    if rows.is_empty() {
        return Ok(false);
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let series = |name: &str| -> Vec<(f64, f64)> { col(name).map(|c| rows.iter().map(|r| (r[0], r[c])).filter(|p| p.1.is_finite()).collect()).unwrap_or_default() };
    let ratio: Vec<(f64, f64)> = match (col("sxz_shuffle"), col("sxz_std")) {
        (Some(a), Some(b)) => rows.iter().map(|r| (r[0], r[a] / r[b].max(1e-9))).collect(),
        _ => Vec::new(),
    };
    let panels: [Panel; 6] = [
        ("D hinge terms", vec![("d_xz", series("d_xz")), ("d_x", series("d_x")), ("d_z", series("d_z"))]),
        ("corr(z, E(G(z)))", vec![("corr", series("corr_z"))]),
        ("E's mean σ", vec![("σ", series("sigma"))]),
        ("|Δ s_xz| under shuffled z / sd(s_xz)", vec![("ratio", ratio)]),
        ("‖E(x)‖ / √latent (prior: 1)", vec![("norm", series("z_norm"))]),
        ("directions E's codes vary along (prior: ≈ L / (1 + L/256))", vec![("participation ratio", series("z_rank"))]),
    ];
    let err = |e: &dyn std::fmt::Display| Error::Plot { path: png.into(), reason: e.to_string() };
    let root = BitMapBackend::new(file, (1200, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let x_max = rows.iter().map(|r| r[0]).fold(1.0, f64::max);
    for (area, (title, lines)) in root.split_evenly((3, 2)).iter().zip(panels) {
        let ys = lines.iter().flat_map(|(_, s)| s.iter().map(|p| p.1));
        let (lo, hi) = ys.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        if !lo.is_finite() {
            continue;
        }
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..x_max, (lo - pad)..(hi + pad))
            .map_err(|e| err(&e))?;
        chart.configure_mesh().x_desc("step").draw().map_err(|e| err(&e))?;
        for (i, (name, points)) in lines.into_iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(true)
}
