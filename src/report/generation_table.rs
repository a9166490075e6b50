//! The generation layouts, rendered from a [`Results`]' `generation` entries: Table 1 (Variant | IS |
//! FID | Cls.) and Table 3 (Method | IS | FID). IS computed with any classifier other than TF Inception's
//! 1008-way one is marked † and named under the table, never shown as IS plain.

use super::Results;
use crate::genmetrics::GenerationResult;

fn is_cell(g: &GenerationResult) -> String {
    match &g.is {
        None => "—".to_string(),
        Some(is) if is.label == "IS" => format!("{:.2} ± {:.2}", is.mean, is.std),
        Some(is) => format!("{:.2} ± {:.2} †", is.mean, is.std),
    }
}

fn footnotes(generation: &[GenerationResult]) -> String {
    let mut out = String::new();
    for g in generation {
        if let Some(is) = g.is.as_ref().filter(|is| is.label != "IS") {
            out.push_str(&format!("† {}: {} over {} splits.\n", g.variant, is.label, is.splits));
        }
    }
    for g in generation {
        out.push_str(&format!(
            "{}: FID of {} samples (seed {}{}) against {} (n = {}), {} ({}).\n",
            g.variant,
            g.samples,
            g.seed,
            g.truncation.map(|t| format!(", truncation {t}")).unwrap_or_default(),
            g.reference,
            g.reference_n,
            g.inception,
            g.resize
        ));
    }
    out
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
    out.push_str(&footnotes(&r.generation));
    out.push('\n');
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
