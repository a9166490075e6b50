//! Table-2 layout (Method | Architecture | Feature | Top-1 | Top-5 | n train / train-val / val) as
//! Markdown and CSV, rendered from a [`Results`].

use super::Results;

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!("## {} — linear probes on {}\n\n", r.name, r.dataset.spec));
    out.push_str("| Method | Architecture | Feature | Top-1 (%) ↑ | 95% CI | Top-5 (%) ↑ | Cls. (train-val top-1) | L2 / lr | n train / train-val / val |\n");
    out.push_str("|---|---|---|---:|---:|---:|---:|---|---|\n");
    for row in &r.rows {
        let p = &row.probe;
        let feature = if row.feature_derived { format!("{}*", row.feature) } else { row.feature.clone() };
        let hp = match p.chosen.lr {
            Some(lr) => format!("{:.0e} / {lr}", p.chosen.l2),
            None => format!("{:.0e}", p.chosen.l2),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | [{}, {}] | {} | {} | {} | {} / {} / {} |\n",
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
    let pv = &r.provenance;
    let d = &r.dataset;
    out.push('\n');
    out.push_str(&super::generation_table::markdown(r));
    if r.rows.iter().any(|row| row.feature_derived) {
        out.push_str("\\* BN+CReLU computed by bbeval from AvePool with training-split statistics (no affine, eps 1e-5).\n\n");
    }
    out.push_str(&format!(
        "Protocol v{} · probe {:?} (seed {}) · hyper-parameters chosen on train-val (seed {}), val scored once · \
         train {} ({}), val {} ({}) · bbeval {} commit {} · tch {} / libtorch {} on {} · {}\n",
        r.protocol_version,
        r.config.probe.backend,
        r.config.probe.seed,
        d.split_seed,
        d.n_train,
        short(&d.train_hash),
        d.n_val,
        short(&d.val_hash),
        pv.bbeval_version,
        short_commit(&pv.git_commit),
        pv.tch_version,
        pv.libtorch_version,
        pv.device,
        pv.created
    ));
    for w in &r.warnings {
        out.push_str(&format!("\n> warning: {w}\n"));
    }
    out
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
    let mut out = String::from("method,architecture,feature,top1,top1_lo,top1_hi,top5,train_val_top1,l2,lr,n_fit,n_train_val,n_val,protocol_version\n");
    for row in &r.rows {
        let p = &row.probe;
        out.push_str(&format!(
            "{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{},{},{},{}\n",
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
