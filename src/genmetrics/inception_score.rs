//! Inception Score: exp(E_x KL(p(y|x) ‖ p(y))) over splits, from any classifier's logits.
//!
//! With TF Inception's 1008 logits it is the standard IS; with any other classifier the value is a
//! non-standard variant and reports say which classifier produced it (see [`is_label`]).

use ndarray::{ArrayView2, Axis};

/// Mean and standard deviation of the score over `splits` consecutive chunks (as Salimans et al.).
pub fn inception_score(logits: ArrayView2<f32>, splits: usize) -> (f64, f64) {
    let n = logits.nrows();
    let splits = splits.clamp(1, n.max(1));
    // Row-wise softmax in f64.
    let probs: Vec<Vec<f64>> = logits
        .axis_iter(Axis(0))
        .map(|row| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
            let z: f64 = e.iter().sum();
            e.into_iter().map(|v| v / z).collect()
        })
        .collect();
    let scores: Vec<f64> = (0..splits)
        .map(|k| {
            let part = &probs[k * n / splits..(k + 1) * n / splits];
            let c = part.first().map_or(0, Vec::len);
            let py: Vec<f64> = (0..c).map(|j| part.iter().map(|p| p[j]).sum::<f64>() / part.len() as f64).collect();
            let kl: f64 = part
                .iter()
                .map(|p| p.iter().zip(&py).filter(|(pi, _)| **pi > 0.0).map(|(pi, qi)| pi * (pi.ln() - qi.ln())).sum::<f64>())
                .sum::<f64>()
                / part.len() as f64;
            kl.exp()
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64;
    (mean, var.sqrt())
}

/// "IS" only for TF Inception's 1008-way logits; otherwise name the classifier.
pub fn is_label(classifier: &str, num_logits: usize) -> String {
    if num_logits == 1008 {
        "IS".to_string()
    } else {
        format!("IS* ({classifier} logits, non-standard)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn uniform_classifier_scores_one_and_confident_balanced_scores_classes() {
        let uniform = Array2::<f32>::zeros((100, 10));
        let (m, s) = inception_score(uniform.view(), 10);
        assert!((m - 1.0).abs() < 1e-12 && s < 1e-12);
        // One-hot-like logits, each class equally often in every split.
        let confident = Array2::from_shape_fn((200, 10), |(i, j)| if i % 10 == j { 60.0 } else { 0.0 });
        let (m, _) = inception_score(confident.view(), 10);
        assert!((m - 10.0).abs() < 1e-6, "{m}");
        assert_eq!(is_label("efficientnet-lite0", 1000), "IS* (efficientnet-lite0 logits, non-standard)");
        assert_eq!(is_label("inception", 1008), "IS");
    }
}
