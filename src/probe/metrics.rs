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
    let mut accs: Vec<f64> = (0..resamples)
        .map(|_| (0..n).filter(|_| correct[rng.random_range(0..n)]).count() as f64 / n as f64)
        .collect();
    accs.sort_by(f64::total_cmp);
    let at = |q: f64| accs[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (at(0.025), at(0.975))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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
