//! The generation layouts, rendered from a [`Results`]' `generation` entries: Table 1 (Variant | IS |
//! FID | Cls.) and Table 3 (Method | IS | FID). IS computed with any classifier other than TF Inception's
//! 1008-way one is marked † and named under the table, never shown as IS plain.

use super::{Results, RowResult};
use crate::genmetrics::GenerationResult;

fn is_cell(g: &GenerationResult) -> String {
    match &g.is {
        None => "—".to_string(),
        Some(is) if is.label == "IS" => format!("{:.2} ± {:.2}", is.mean, is.std),
        Some(is) => format!("{:.2} ± {:.2} †", is.mean, is.std),
    }
}

/// One line per distinct note, naming every entry it applies to (the 9 entries of a Table 1 over seeds
/// share one IS note and one FID note).
fn footnotes(generation: &[GenerationResult]) -> String {
    // (marker, note) → the entries it applies to, in first-seen order.
    let mut notes: Vec<((&str, String), Vec<&str>)> = Vec::new();
    let mut add = |marker, note: String, variant| match notes.iter_mut().find(|(n, _)| n.0 == marker && n.1 == note) {
        Some((_, variants)) => variants.push(variant),
        None => notes.push(((marker, note), vec![variant])),
    };
    for g in generation {
        if let Some(is) = g.is.as_ref().filter(|is| is.label != "IS") {
            add("† ", format!("{} over {} splits.", is.label, is.splits), g.variant.as_str());
        }
    }
    for g in generation {
        let note = format!(
            "FID of {} samples (seed {}{}) against {} (n = {}), {} ({}).",
            g.samples,
            g.seed,
            g.truncation.map(|t| format!(", truncation {t}")).unwrap_or_default(),
            g.reference,
            g.reference_n,
            g.inception,
            g.resize
        );
        add("", note, g.variant.as_str());
    }
    notes.iter().map(|((marker, note), variants)| format!("{marker}{}: {note}\n", variants.join(", "))).collect()
}

/// Both layouts as Markdown, or an empty string when the run scored no generator.
pub fn markdown(r: &Results) -> String {
    if r.generation.is_empty() {
        return String::new();
    }
    let mut out = String::from("### Table 1 layout — BiGAN/BigBiGAN variants\n\n| Variant | IS ↑ | FID ↓ | Cls. (train-val top-1, %) ↑ |\n|---|---:|---:|---:|\n");
    for g in &r.generation {
        let cls = g.cls.map(|c| format!("{:.1}", 100.0 * c)).unwrap_or_else(|| "—".into());
        out.push_str(&format!("| {} | {} | {:.2} | {} |\n", g.variant, is_cell(g), g.fid, cls));
    }
    out.push_str("\n### Table 3 layout — unsupervised generation\n\n| Method | IS ↑ | FID ↓ |\n|---|---:|---:|\n");
    for g in &r.generation {
        out.push_str(&format!("| {} | {} | {:.2} |\n", g.variant, is_cell(g), g.fid));
    }
    out.push('\n');
    out.push_str(&seed_summary(r));
    out.push_str(&footnotes(&r.generation));
    out.push('\n');
    out
}

/// Entries and rows whose names differ only by a trailing " (seed N)" are seeds of one variant.
pub fn seed_group(name: &str) -> Option<&str> {
    let (base, tail) = name.rsplit_once(" (seed ")?;
    (tail.ends_with(')') && tail[..tail.len() - 1].chars().all(|c| c.is_ascii_digit())).then_some(base)
}

/// Mean and sample standard deviation (n − 1; 0 for one value); `None` for no values.
fn mean_sd_of(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    Some((mean, sd))
}

/// `mean ± sd` of the values, scaled, or "—".
fn mean_sd(values: &[f64], scale: f64, digits: usize) -> String {
    match mean_sd_of(values) {
        Some((mean, sd)) => format!("{:.digits$} ± {:.digits$}", scale * mean, scale * sd),
        None => "—".into(),
    }
}

/// One variant's values over its seeds, for one probe feature.
struct SeedGroup {
    name: String,
    seeds: usize,
    is: Vec<f64>,
    fid: Vec<f64>,
    cls: Vec<f64>,
    top1: Vec<f64>,
}

/// The probe feature of an entry's Cls.: that of the row its run file's `cls_row` (and `cls_feature`) names,
/// found as the run found it (results hold their run file, rows and entries in its order).
fn cls_feature(r: &Results, entry: usize) -> Option<&str> {
    let row = r.config.generation.get(entry)?.cls_row_index(&r.config.rows).ok()??;
    r.rows.get(row).map(|row| row.feature.as_str())
}

/// Seeds are grouped per variant *and* probe feature: a run file that probes every seed's encoder on AvePool
/// and on BN+CReLU gets a group for each, never one mean across both features. A generator's entry joins the
/// group of the feature its Cls. came from. The feature is named only where a variant has more than one group.
fn seed_groups(r: &Results) -> Vec<SeedGroup> {
    // (variant, feature) of every entry and row whose name carries a seed, computed once.
    let entries: Vec<((&str, Option<&str>), &GenerationResult)> =
        r.generation.iter().enumerate().filter_map(|(i, g)| Some(((seed_group(&g.variant)?, cls_feature(r, i)), g))).collect();
    let rows: Vec<((&str, Option<&str>), &RowResult)> = r.rows.iter().filter_map(|row| Some(((seed_group(&row.method)?, Some(row.feature.as_str())), row))).collect();
    let mut keys: Vec<(&str, Option<&str>)> = Vec::new();
    for &key in entries.iter().map(|(key, _)| key).chain(rows.iter().map(|(key, _)| key)) {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.iter()
        .map(|&(name, feature)| {
            let entries: Vec<&GenerationResult> = entries.iter().filter(|(key, _)| *key == (name, feature)).map(|&(_, g)| g).collect();
            let rows: Vec<&RowResult> = rows.iter().filter(|(key, _)| *key == (name, feature)).map(|&(_, row)| row).collect();
            let shared = keys.iter().filter(|k| k.0 == name).count() > 1;
            SeedGroup {
                name: match feature.filter(|_| shared) {
                    Some(f) => format!("{name} · {f}"),
                    None => name.to_string(),
                },
                seeds: entries.len().max(rows.len()),
                is: entries.iter().filter_map(|g| g.is.as_ref().map(|i| i.mean)).collect(),
                fid: entries.iter().map(|g| g.fid).collect(),
                cls: rows.iter().map(|row| 100.0 * row.probe.train_val_top1).collect(),
                top1: rows.iter().map(|row| 100.0 * row.probe.top1).collect(),
            }
        })
        .collect()
}

/// The paper's Table 1 orderings: (from, to, metric, higher is better). BigBiGAN §4.1: the unary terms improve
/// IS and FID over BiGAN; a higher E learning rate improves Cls.
const PAPER_ORDERINGS: &[(&str, &str, &str, bool)] = &[
    ("BiGAN", "BigBiGAN", "IS", true),
    ("BiGAN", "BigBiGAN", "FID", false),
    ("BigBiGAN", "BigBiGAN, ↑ E LR", "Cls.", true),
];

fn metric<'a>(g: &'a SeedGroup, name: &str) -> &'a [f64] {
    match name {
        "IS" => &g.is,
        "FID" => &g.fid,
        _ => &g.cls,
    }
}

/// Whether each paper ordering holds over the seeds, and how the difference compares with the seed spread.
fn orderings(groups: &[SeedGroup]) -> String {
    let mut out = String::new();
    for &(from, to, name, higher_better) in PAPER_ORDERINGS {
        let (Some(a), Some(b)) = (groups.iter().find(|g| g.name == from), groups.iter().find(|g| g.name == to)) else { continue };
        let (Some((ma, sa)), Some((mb, sb))) = (mean_sd_of(metric(a, name)), mean_sd_of(metric(b, name))) else { continue };
        let delta = mb - ma;
        let better = if higher_better { delta > 0.0 } else { delta < 0.0 };
        let spread = sa.max(sb);
        let verdict = match (better, delta.abs() > spread) {
            (true, true) => "holds, by more than the seed spread",
            (true, false) => "holds on the means, but within the seed spread",
            (false, true) => "does not hold: reversed by more than the seed spread",
            (false, false) => "does not hold on the means (within the seed spread)",
        };
        out.push_str(&format!(
            "* {from} → {to}, {name} ({}): {ma:.2} → {mb:.2}, Δ = {delta:+.2}; largest seed sd {spread:.2}: **{verdict}**.\n",
            if higher_better { "higher is better" } else { "lower is better" }
        ));
    }
    if !out.is_empty() {
        out.insert_str(0, "The paper's orderings (BigBiGAN §4.1, Table 1):\n\n");
        out.push('\n');
    }
    out
}

/// Table 1 over seeds: for every variant that has seeds, mean ± sd of IS, FID and Cls. across them (probe rows
/// with seeds, e.g. the random-init encoders, too), then whether the paper's orderings hold. Empty when nothing
/// has seeds.
fn seed_summary(r: &Results) -> String {
    let groups = seed_groups(r);
    if groups.is_empty() {
        return String::new();
    }
    let mut out = String::from("### Table 1 over seeds — mean ± sd\n\n| Variant | seeds | IS ↑ | FID ↓ | Cls. (train-val top-1, %) ↑ | val top-1 (%) |\n|---|---:|---:|---:|---:|---:|\n");
    for g in &groups {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            g.name,
            g.seeds,
            mean_sd(&g.is, 1.0, 2),
            mean_sd(&g.fid, 1.0, 1),
            mean_sd(&g.cls, 1.0, 1),
            mean_sd(&g.top1, 1.0, 1)
        ));
    }
    out.push('\n');
    out.push_str(&orderings(&groups));
    out
}

/// One CSV line per generator.
pub fn csv(r: &Results) -> String {
    let mut out = String::from("variant,is_label,is_mean,is_std,fid,cls,samples,reference_n,protocol_version\n");
    for g in &r.generation {
        let (label, mean, std) = g.is.as_ref().map_or((String::new(), String::new(), String::new()), |is| (is.label.clone(), format!("{:.6}", is.mean), format!("{:.6}", is.std)));
        out.push_str(&format!(
            "\"{}\",\"{}\",{mean},{std},{:.6},{},{},{},{}\n",
            g.variant.replace('"', "\"\""),
            label.replace('"', "\"\""),
            g.fid,
            g.cls.map(|c| format!("{c:.6}")).unwrap_or_default(),
            g.samples,
            g.reference_n,
            r.protocol_version
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_group_by_the_trailing_seed_and_average() {
        assert_eq!(seed_group("BigBiGAN (seed 2)"), Some("BigBiGAN"));
        assert_eq!(seed_group("BigBiGAN, ↑ E LR (seed 12)"), Some("BigBiGAN, ↑ E LR"));
        assert_eq!(seed_group("BigBiGAN (seedling)"), None);
        assert_eq!(seed_group("BigBiGAN"), None);
        assert_eq!(mean_sd(&[1.0, 2.0, 3.0], 1.0, 2), "2.00 ± 1.00");
        assert_eq!(mean_sd(&[0.5], 100.0, 1), "50.0 ± 0.0");
    }

    fn group(name: &str, is: &[f64], fid: &[f64], cls: &[f64]) -> SeedGroup {
        SeedGroup { name: name.into(), seeds: 3, is: is.to_vec(), fid: fid.to_vec(), cls: cls.to_vec(), top1: vec![] }
    }

    #[test]
    fn orderings_say_whether_they_hold_against_the_seed_spread() {
        let groups = [
            group("BiGAN", &[2.0, 2.1, 2.2], &[50.0, 52.0, 54.0], &[80.0, 80.5, 81.0]),
            // IS up by 1.0 (sd 0.1): holds clearly; FID down by 1 (sd 2): within spread.
            group("BigBiGAN", &[3.0, 3.1, 3.2], &[49.0, 51.0, 53.0], &[81.0, 81.5, 82.0]),
            // Cls. down by 3 (sd 0.5): reversed.
            group("BigBiGAN, ↑ E LR", &[], &[], &[78.0, 78.5, 79.0]),
        ];
        let text = orderings(&groups);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("* ")).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("IS") && lines[0].contains("Δ = +1.00") && lines[0].contains("holds, by more than the seed spread"), "{text}");
        assert!(lines[1].contains("FID") && lines[1].contains("Δ = -1.00") && lines[1].contains("within the seed spread"), "{text}");
        assert!(lines[2].contains("Cls.") && lines[2].contains("reversed by more than the seed spread"), "{text}");
        assert_eq!(orderings(&groups[..1]), "", "nothing to compare with one variant");
    }

    #[test]
    fn entries_sharing_a_note_are_named_on_one_line() {
        let entry = |variant: &str, samples: usize| GenerationResult {
            variant: variant.into(),
            generator: String::new(),
            generator_sha256: String::new(),
            samples,
            seed: 0,
            truncation: None,
            reference: "val".into(),
            reference_n: 2048,
            fid: 1.0,
            inception: "fid-inception-v3".into(),
            resize: "bilinear".into(),
            is: Some(crate::genmetrics::IsResult { label: "IS*".into(), mean: 1.0, std: 0.0, splits: 10 }),
            cls: None,
            cls_row: None,
            warnings: Vec::new(),
            seconds: 0.0,
            reused: false,
        };
        let text = footnotes(&[entry("A (seed 1)", 2048), entry("A (seed 2)", 2048), entry("B", 500)]);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "† A (seed 1), A (seed 2), B: IS* over 10 splits.",
                "A (seed 1), A (seed 2): FID of 2048 samples (seed 0) against val (n = 2048), fid-inception-v3 (bilinear).",
                "B: FID of 500 samples (seed 0) against val (n = 2048), fid-inception-v3 (bilinear).",
            ]
        );
    }

    /// Table 1 over seeds (1,200 steps; `results/bigbigan-fmnist-table1/`) with each random-init row duplicated
    /// as an AvePool row of 50%: the BN+CReLU group keeps the committed report's line, the AvePool rows get
    /// their own, and the variants' generator entries still join their BN+CReLU rows (the feature of the row
    /// their run file's cls_row names).
    #[test]
    fn seeds_are_grouped_per_feature_never_averaged_across_features() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/bigbigan-fmnist-table1/results.json");
        let mut r = Results::load(&path).unwrap();
        let avepool: Vec<RowResult> = r
            .rows
            .iter()
            .filter(|row| row.method.starts_with("Random-init E (seed "))
            .map(|row| {
                let mut row = row.clone();
                row.feature = "avepool".into();
                row.probe.top1 = 0.5;
                row.probe.train_val_top1 = 0.5;
                row
            })
            .collect();
        assert_eq!(avepool.len(), 3);
        r.rows.extend(avepool);
        let text = seed_summary(&r);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("| B") || l.starts_with("| R")).collect();
        // The first four lines as in results/bigbigan-fmnist-table1/report.md.
        assert_eq!(
            lines,
            [
                "| BiGAN | 3 | 1.21 ± 0.05 | 306.3 ± 23.2 | 78.5 ± 0.6 | 80.1 ± 0.9 |",
                "| BigBiGAN | 3 | 1.22 ± 0.06 | 311.0 ± 41.1 | 78.9 ± 1.2 | 78.8 ± 0.8 |",
                "| BigBiGAN, ↑ E LR | 3 | 1.22 ± 0.07 | 303.1 ± 31.8 | 75.8 ± 1.3 | 76.9 ± 0.8 |",
                "| Random-init E · bn_crelu | 3 | — | — | 78.9 ± 0.9 | 80.8 ± 0.4 |",
                "| Random-init E · avepool | 3 | — | — | 50.0 ± 0.0 | 50.0 ± 0.0 |",
            ]
        );
    }
}
