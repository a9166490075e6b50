//! Table-2 layout (Method | Architecture | Feature | Top-1 | Top-5 | n train / train-val / val) as
//! Markdown and CSV, rendered from a [`Results`].

use super::Results;

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!("## {} — linear probes on {}\n\n", r.name, r.dataset.spec));
    let with_paper = r.rows.iter().any(|row| row.paper.is_some());
    let paper_head = if with_paper { " Paper top-1 / top-5 | Δ top-1 / top-5 |" } else { "" };
    out.push_str(&format!("| Method | Architecture | Feature | Top-1 (%) ↑ | 95% CI | Top-5 (%) ↑ |{paper_head} Cls. (train-val top-1) | L2 / lr | n train / train-val / val |\n"));
    out.push_str(&format!("|---|---|---|---:|---:|---:|{}---:|---|---|\n", if with_paper { "---:|---:|" } else { "" }));
    for row in &r.rows {
        let p = &row.probe;
        let mut feature = if row.feature_derived { format!("{}*", row.feature) } else { row.feature.clone() };
        if row.unverified {
            feature.push_str(" ⚠ UNVERIFIED");
        }
        let hp = match p.chosen.lr {
            Some(lr) => format!("{:.0e} / {lr}", p.chosen.l2),
            None => format!("{:.0e}", p.chosen.l2),
        };
        let paper = match (&row.paper, with_paper) {
            (Some(pr), _) => format!(" {} / {} | {:+.1} / {:+.1} |", pct(pr.top1), pct(pr.top5), 100.0 * (p.top1 - pr.top1), 100.0 * (p.top5 - pr.top5)),
            (None, true) => " — | — |".to_string(),
            (None, false) => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | [{}, {}] | {} |{paper} {} | {} | {} / {} / {} |\n",
            row.method,
            row.architecture,
            feature,
            pct(p.top1),
            pct(p.top1_ci95.0),
            pct(p.top1_ci95.1),
            pct(p.top5),
            pct(p.train_val_top1),
            hp,
            p.n_fit,
            p.n_train_val,
            p.n_val
        ));
    }
    if with_paper {
        out.push_str("\nPaper: BigBiGAN (Donahue & Simonyan 2019), Table 2, ImageNet val; Δ = this run − paper, in points.\n");
    }
    let pv = &r.provenance;
    let d = &r.dataset;
    out.push('\n');
    out.push_str(&super::generation_table::markdown(r));
    if r.rows.iter().any(|row| row.feature_derived) {
        out.push_str("\\* BN+CReLU computed by bbeval from AvePool with training-split statistics (no affine, eps 1e-5).\n\n");
    }
    out.push_str(&format!(
        "Protocol v{} · probe {} · hyper-parameters chosen on train-val (seed {}), val scored once · \
         train {} ({}), val {} ({}) · bbeval {} commit {} · tch {} / libtorch {} on {} · {}\n",
        r.protocol_version,
        backends(r),
        d.split_seed,
        d.n_train,
        short(&d.train_hash),
        d.n_val,
        short(&d.val_hash),
        pv.bbeval_version,
        short_commit(&pv.git_commit),
        pv.tch_version,
        pv.libtorch_version,
        device(pv),
        pv.created
    ));
    for w in &r.warnings {
        out.push_str(&format!("\n> warning: {w}\n"));
    }
    out
}

/// The back-ends that fit the rows (`auto` resolved), e.g. `Lbfgs` or `Sgd (seed 0)`.
fn backends(r: &Results) -> String {
    let mut names: Vec<String> = r
        .rows
        .iter()
        .map(|row| match row.probe.backend {
            crate::probe::Backend::Sgd => format!("{:?} (seed {})", row.probe.backend, r.config.probe.seed),
            b => format!("{b:?}"),
        })
        .collect();
    names.dedup();
    if names.is_empty() { format!("{:?}", r.config.probe.backend) } else { names.join(", ") }
}

/// `cpu f32 (2 threads)`; older results recorded only the device.
fn device(pv: &super::Provenance) -> String {
    if pv.precision.is_empty() { pv.device.clone() } else { format!("{} {} ({} threads)", pv.device, pv.precision, pv.threads) }
}

/// The first 12 hex digits of a hash (data digests and commits are shown this short in the footer).
fn short(hash: &str) -> &str {
    &hash[..12.min(hash.len())]
}

/// [`short`] for a commit, keeping the `-dirty` mark of a run from uncommitted changes.
fn short_commit(commit: &str) -> String {
    match commit.strip_suffix("-dirty") {
        Some(hash) => format!("{}-dirty", short(hash)),
        None => short(commit).to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub fn csv(r: &Results) -> String {
    let mut out = String::from("method,architecture,feature,top1,top1_lo,top1_hi,top5,train_val_top1,l2,lr,n_fit,n_train_val,n_val,paper_top1,paper_top5,unverified,protocol_version\n");
    for row in &r.rows {
        let p = &row.probe;
        out.push_str(&format!(
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&row.method),
            csv_field(&row.architecture),
            csv_field(&row.feature),
            p.top1,
            p.top1_ci95.0,
            p.top1_ci95.1,
            p.top5,
            p.train_val_top1,
            p.chosen.l2,
            p.chosen.lr.map(|v| v.to_string()).unwrap_or_default(),
            p.n_fit,
            p.n_train_val,
            p.n_val,
            row.paper.as_ref().map(|pr| format!("{:.6}", pr.top1)).unwrap_or_default(),
            row.paper.as_ref().map(|pr| format!("{:.6}", pr.top5)).unwrap_or_default(),
            row.unverified,
            r.protocol_version
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::short_commit;

    #[test]
    fn short_commit_keeps_the_dirty_mark() {
        assert_eq!(short_commit("75e555098f56eccf4a954d7585c25c672e3ebbcf-dirty"), "75e555098f56-dirty");
        assert_eq!(short_commit("75e555098f56eccf4a954d7585c25c672e3ebbcf"), "75e555098f56");
        assert_eq!(short_commit("unknown"), "unknown");
    }
}
