//! Plots for `bbeval compare`, each as PNG and SVG: top-1 over training steps for a series of checkpoint
//! runs, and a heat map of train-val top-1 over the L2 × learning-rate grid of a sweep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::deltas::RowKey;
use super::step_of;
use crate::error::{Error, Result};
use crate::report::{Results, RowResult};

const SIZE: (u32, u32) = (800, 500);

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot { path: path.into(), reason: e.to_string() }
}

/// Draw with `draw` into `<stem>.png` and `<stem>.svg`.
fn both_formats(stem: &Path, draw: impl Fn(DrawingArea<BitMapBackend, Shift>) -> std::result::Result<(), String>, draw_svg: impl Fn(DrawingArea<SVGBackend, Shift>) -> std::result::Result<(), String>) -> Result<Vec<PathBuf>> {
    if let Some(dir) = stem.parent() {
        std::fs::create_dir_all(dir).map_err(|e| plot_err(dir, e))?;
    }
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area()).map_err(|e| plot_err(&png, e))?;
    draw_svg(SVGBackend::new(&svg, SIZE).into_drawing_area()).map_err(|e| plot_err(&svg, e))?;
    Ok(vec![png, svg])
}

/// `(step, top-1 %)` per row key, over the runs that have a step.
pub fn series(runs: &[&Results]) -> BTreeMap<RowKey, Vec<(u64, f64)>> {
    let mut out: BTreeMap<RowKey, Vec<(u64, f64)>> = BTreeMap::new();
    for r in runs {
        let Some(step) = step_of(r) else { continue };
        for row in &r.rows {
            out.entry(RowKey::of(row)).or_default().push((step, 100.0 * row.probe.top1));
        }
    }
    for points in out.values_mut() {
        points.sort_by_key(|p| p.0);
    }
    out
}

fn draw_curves<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, data: &BTreeMap<RowKey, Vec<(u64, f64)>>) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    let steps = data.values().flatten().map(|p| p.0);
    let (x0, x1) = (steps.clone().min().unwrap_or(0), steps.max().unwrap_or(1).max(1));
    let tops = data.values().flatten().map(|p| p.1);
    let (y0, y1) = (tops.clone().fold(f64::INFINITY, f64::min), tops.fold(f64::NEG_INFINITY, f64::max));
    let pad = ((y1 - y0) * 0.1).max(0.5);
    let mut chart = ChartBuilder::on(&area)
        .caption("Top-1 over training steps", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1 + (x1 - x0).max(1) / 20, (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    chart.configure_mesh().x_desc("training step").y_desc("val top-1 (%)").draw().map_err(err)?;
    for (i, (key, points)) in data.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(key.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(err)?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    area.present().map_err(err)
}

/// Top-1 against training step for every row over a series of checkpoint runs: `<stem>.png/.svg`.
pub fn top1_curves(runs: &[&Results], stem: &Path) -> Result<Vec<PathBuf>> {
    let data = series(runs);
    if data.values().all(|p| p.is_empty()) {
        return Err(plot_err(stem, "no run has a training step (set `step` in the run file or end its name with the step)"));
    }
    both_formats(stem, |a| draw_curves(a, &data), |a| draw_curves(a, &data))
}

/// Sorted distinct values (the grid's axes).
fn axis(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

fn draw_heatmap<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, title: &str, row: &RowResult) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    let grid = &row.probe.grid;
    let l2s = axis(grid.iter().map(|g| g.l2));
    let lrs = axis(grid.iter().map(|g| g.lr.unwrap_or(0.0)));
    let accs = grid.iter().map(|g| g.train_val_top1);
    let (lo, hi) = (accs.clone().fold(f64::INFINITY, f64::min), accs.fold(f64::NEG_INFINITY, f64::max));
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // A segmented range 0..k has k + 1 cells (a one-value axis keeps an empty second cell).
        .build_cartesian_2d((0..(lrs.len() as i32 - 1).max(1)).into_segmented(), (0..(l2s.len() as i32 - 1).max(1)).into_segmented())
        .map_err(err)?;
    let name = |names: &[String], v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    // A full-batch back-end (L-BFGS) has no learning rate: one column.
    let full_batch = grid.iter().all(|g| g.lr.is_none());
    let lr_names: Vec<String> = if full_batch { vec!["—".into()] } else { lrs.iter().map(|v| format!("{v}")).collect() };
    let l2_names: Vec<String> = l2s.iter().map(|v| format!("{v:.0e}")).collect();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(if full_batch { "full-batch L-BFGS (no learning rate)" } else { "learning rate" })
        .y_desc("L2 (λ)")
        .x_label_formatter(&|v| name(&lr_names, v))
        .y_label_formatter(&|v| name(&l2_names, v))
        .draw()
        .map_err(err)?;
    let centred = Pos::new(HPos::Center, VPos::Center);
    for g in grid {
        let x = lrs.iter().position(|&v| v == g.lr.unwrap_or(0.0)).unwrap_or(0) as i32;
        let y = l2s.iter().position(|&v| v == g.l2).unwrap_or(0) as i32;
        let t = if hi > lo { (g.train_val_top1 - lo) / (hi - lo) } else { 1.0 };
        let cell = [(SegmentValue::Exact(x), SegmentValue::Exact(y)), (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1))];
        chart.draw_series(std::iter::once(Rectangle::new(cell, ViridisRGB::get_color(t).filled()))).map_err(err)?;
        let style = ("sans-serif", 18).into_font().color(if t > 0.6 { &BLACK } else { &WHITE }).pos(centred);
        let label = format!("{:.1}", 100.0 * g.train_val_top1);
        chart.draw_series(std::iter::once(Text::new(label, (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)), style))).map_err(err)?;
    }
    area.present().map_err(err)
}

/// Train-val top-1 over the L2 × learning-rate grid of one row: `<stem>.png/.svg`.
pub fn grid_heatmap(run: &Results, row: &RowResult, stem: &Path) -> Result<Vec<PathBuf>> {
    if row.probe.grid.is_empty() {
        return Err(plot_err(stem, "the row has no grid"));
    }
    let title = format!("{}: {} / {} — train-val top-1 (%)", run.name, row.method, row.feature);
    both_formats(stem, |a| draw_heatmap(a, &title, row), |a| draw_heatmap(a, &title, row))
}
