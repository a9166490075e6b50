//! Seeded permutations, subsets and the train-val split: a leaf module that datasets, probes and training
//! share. Explicit seeds, no global RNG: the same seed gives the same indices on every machine (ChaCha8).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A permutation of `0..n` determined by `seed`.
pub fn seeded_permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    idx
}

/// `limit` of `0..n` chosen by `seed`, returned in increasing order.
pub fn subset(n: usize, limit: usize, seed: u64) -> Vec<usize> {
    let mut keep = seeded_permutation(n, seed);
    keep.truncate(limit.min(n));
    keep.sort_unstable();
    keep
}

/// Train rows split into the part the probe is fit on and the held-out train-val part used for model
/// selection. Both lists are in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainValSplit {
    pub fit: Vec<usize>,
    pub train_val: Vec<usize>,
}

/// Hold `held_out` of `n` train rows out for model selection (seeded; a different stream from `subset`
/// so that a subset's order does not leak into the split).
pub fn train_val_split(n: usize, held_out: usize, seed: u64) -> TrainValSplit {
    let perm = seeded_permutation(n, seed ^ 0x7472_6169_6e76_616c); // "trainval"
    let held_out = held_out.min(n);
    let mut train_val = perm[..held_out].to_vec();
    let mut fit = perm[held_out..].to_vec();
    train_val.sort_unstable();
    fit.sort_unstable();
    TrainValSplit { fit, train_val }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_a_seeded_partition() {
        let a = train_val_split(100, 10, 3);
        assert_eq!(a, train_val_split(100, 10, 3));
        assert_ne!(a, train_val_split(100, 10, 4));
        assert_eq!(a.train_val.len(), 10);
        let mut all: Vec<usize> = a.fit.iter().chain(&a.train_val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn subset_is_sorted_and_bounded() {
        let s = subset(50, 20, 1);
        assert_eq!(s.len(), 20);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(subset(5, 20, 1), vec![0, 1, 2, 3, 4]);
    }
}
