//! The paper's own numbers (BigBiGAN, Donahue & Simonyan 2019, Table 2: ImageNet val, linear probes), so
//! that a report shows them and the difference beside each row that reproduces one.

use serde::{Deserialize, Serialize};

/// One of the paper's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperRef {
    /// Where the number comes from.
    pub source: String,
    pub top1: f64,
    pub top5: f64,
}

/// (encoder names the TF Hub import writes, feature, top-1 %, top-5 %): Table 2 of the paper.
const TABLE2: [(&str, &str, f64, f64); 4] = [
    ("bigbigan-resnet50", "avepool", 55.4, 77.4),
    ("bigbigan-resnet50", "bn_crelu", 56.6, 78.6),
    ("bigbigan-revnet50x4", "avepool", 60.8, 81.4),
    ("bigbigan-revnet50x4", "bn_crelu", 61.3, 81.9),
];

/// The paper's numbers for `encoder`'s `feature`, as fractions, when the paper has that row.
pub fn reference(encoder: &str, feature: &str) -> Option<PaperRef> {
    TABLE2.iter().find(|(e, f, _, _)| *e == encoder && *f == feature).map(|&(e, f, top1, top5)| PaperRef {
        source: format!("BigBiGAN paper, Table 2 ({e}, {f})"),
        top1: top1 / 100.0,
        top5: top5 / 100.0,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn table2_rows_are_found_by_the_imported_names() {
        let r = super::reference("bigbigan-revnet50x4", "bn_crelu").unwrap();
        assert!((r.top1 - 0.613).abs() < 1e-12 && (r.top5 - 0.819).abs() < 1e-12, "{r:?}");
        assert!(super::reference("bigbigan-resnet50", "z_mean").is_none());
    }
}
