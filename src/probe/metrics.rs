//! Top-k accuracy, per-class accuracy and the bootstrap interval.

use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Whether each row's label is among its `k` highest scores (ties count against the label: a label is
/// in the top k only if fewer than k classes score strictly higher).
pub fn topk_correct(scores: ArrayView2<f32>, labels: &[u32], k: usize) -> Vec<bool> {
    scores
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &label)| {
            let s = row[label as usize];
            row.iter().filter(|&&v| v > s).count() < k
        })
        .collect()
}

pub fn accuracy(correct: &[bool]) -> f64 {
    if correct.is_empty() {
        return 0.0;
    }
    correct.iter().filter(|&&c| c).count() as f64 / correct.len() as f64
}

/// Accuracy per class (`None` for classes absent from `labels`).
pub fn per_class(correct: &[bool], labels: &[u32], num_classes: usize) -> Vec<Option<f64>> {
    let mut hit = vec![0usize; num_classes];
    let mut total = vec![0usize; num_classes];
    for (&c, &l) in correct.iter().zip(labels) {
        total[l as usize] += 1;
        hit[l as usize] += usize::from(c);
    }
    hit.iter().zip(&total).map(|(&h, &t)| (t > 0).then(|| h as f64 / t as f64)).collect()
}

/// Percentile bootstrap 95% interval of the accuracy.
pub fn bootstrap_ci(correct: &[bool], resamples: usize, seed: u64) -> (f64, f64) {
    let n = correct.len();
    if n == 0 || resamples == 0 {
        return (0.0, 0.0);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let accs: Vec<f64> = (0..resamples)
        .map(|_| (0..n).filter(|_| correct[rng.random_range(0..n)]).count() as f64 / n as f64)
        .collect();
    percentile_95(accs)
}

/// The 2.5th and 97.5th percentiles of bootstrap replicates (nearest rank).
fn percentile_95(mut replicates: Vec<f64>) -> (f64, f64) {
    replicates.sort_by(f64::total_cmp);
    let last = replicates.len() - 1;
    let at = |q: f64| replicates[((q * last as f64).round() as usize).min(last)];
    (at(0.025), at(0.975))
}

/// Per-example hits packed 8 to a byte, as hex in the results JSON (50,000 val images → 12.5 kB), so that
/// `compare` can bootstrap paired differences between two runs on the same val set.
pub mod packed_hits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn pack(hits: &[bool]) -> String {
        let bytes: Vec<u8> = hits.chunks(8).map(|c| c.iter().enumerate().fold(0u8, |b, (i, &h)| b | (u8::from(h) << i))).collect();
        format!("{}:{}", hits.len(), hex::encode(bytes))
    }

    pub fn unpack(text: &str) -> Option<Vec<bool>> {
        if text.is_empty() {
            return Some(Vec::new());
        }
        let (n, hex_bytes) = text.split_once(':')?;
        let n: usize = n.parse().ok()?;
        let bytes = hex::decode(hex_bytes).ok()?;
        (bytes.len() == n.div_ceil(8)).then(|| (0..n).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1).collect())
    }

    pub fn serialize<S: Serializer>(hits: &[bool], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&pack(hits))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<bool>, D::Error> {
        let text = String::deserialize(d)?;
        unpack(&text).ok_or_else(|| serde::de::Error::custom("hits must be `<n>:<hex>`"))
    }
}

/// Percentile bootstrap 95% interval of `mean(b) − mean(a)` over the same examples (paired resampling).
pub fn paired_bootstrap_ci(a: &[bool], b: &[bool], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    let n = a.len();
    if n == 0 || n != b.len() || resamples == 0 {
        return None;
    }
    let diff: Vec<i8> = a.iter().zip(b).map(|(&x, &y)| i8::from(y) - i8::from(x)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let deltas: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| i64::from(diff[rng.random_range(0..n)])).sum::<i64>() as f64 / n as f64)
        .collect();
    Some(percentile_95(deltas))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn packed_hits_round_trip_and_paired_interval() {
        let hits: Vec<bool> = (0..21).map(|i| i % 3 == 0).collect();
        let text = packed_hits::pack(&hits);
        assert_eq!(text, "21:499204"); // bits 0,3,6 | 1,4,7 | 2 of bytes 0..3, LSB first: 0x49, 0x92, 0x04
        assert_eq!(packed_hits::unpack(&text).unwrap(), hits);
        assert_eq!(packed_hits::unpack("9:00"), None, "9 hits need 2 bytes");
        // Identical runs: the paired interval is exactly 0; b better on 10 of 100 examples: inside (0, 0.2).
        assert_eq!(paired_bootstrap_ci(&hits, &hits, 200, 0), Some((0.0, 0.0)));
        let a = vec![false; 100];
        let b: Vec<bool> = (0..100).map(|i| i < 10).collect();
        let (lo, hi) = paired_bootstrap_ci(&a, &b, 1000, 0).unwrap();
        assert!(0.0 < lo && lo < 0.1 && 0.1 < hi && hi < 0.2, "{lo} {hi}");
    }

    #[test]
    fn topk_and_per_class() {
        let s = array![[0.1f32, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]];
        let labels = [1, 2, 2];
        assert_eq!(topk_correct(s.view(), &labels, 1), vec![true, false, true]);
        assert_eq!(topk_correct(s.view(), &labels, 2), vec![true, false, true]);
        assert_eq!(topk_correct(s.view(), &labels, 3), vec![true, true, true]);
        let pc = per_class(&[true, false, true], &labels, 3);
        assert_eq!(pc, vec![None, Some(1.0), Some(0.5)]);
    }

    #[test]
    fn bootstrap_brackets_the_accuracy() {
        let correct: Vec<bool> = (0..1000).map(|i| i % 4 != 0).collect(); // 0.75
        let (lo, hi) = bootstrap_ci(&correct, 500, 7);
        assert!(lo < 0.75 && hi > 0.75, "{lo} {hi}");
        // Binomial standard error √(.75·.25/1000) ≈ 0.0137: the interval spans about ±1.96 of it.
        assert!((hi - lo - 2.0 * 1.96 * 0.0137).abs() < 0.012, "{lo} {hi}");
        assert_eq!(bootstrap_ci(&correct, 500, 7), (lo, hi));
    }
}
