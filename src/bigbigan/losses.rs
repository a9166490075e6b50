//! BigBiGAN's hinge losses, term by term (BigBiGAN §3): h(t) = max(0, 1 − t), y = +1 for encoder pairs
//! (x, E(x)) and −1 for generator pairs (G(z), z).

use tch::{Kind, Tensor};

use super::nets::Scores;

/// The loss terms of one evaluation, per score: D's hinge terms and E/G's score differences.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Terms {
    pub d_xz: f64,
    pub d_x: f64,
    pub d_z: f64,
    pub eg_xz: f64,
    pub eg_x: f64,
    pub eg_z: f64,
}

/// h(y·s) with h(t) = max(0, 1 − t); y = +1 for encoder pairs, −1 for generator pairs.
pub fn hinge_pair(e: &Tensor, g: &Tensor) -> Tensor {
    (e.neg() + 1.0).relu().mean(Kind::Float) + (g + 1.0).relu().mean(Kind::Float)
}

/// E/G's term of one score: mean over encoder pairs minus mean over generator pairs.
pub fn score_gap(e: &Tensor, g: &Tensor) -> Tensor {
    e.mean(Kind::Float) - g.mean(Kind::Float)
}

impl Terms {
    pub fn of(enc: &Scores, gen: &Scores) -> Terms {
        let v = |t: Tensor| t.double_value(&[]);
        Terms {
            d_xz: v(hinge_pair(&enc.s_xz, &gen.s_xz)),
            d_x: v(hinge_pair(&enc.s_x, &gen.s_x)),
            d_z: v(hinge_pair(&enc.s_z, &gen.s_z)),
            eg_xz: v(score_gap(&enc.s_xz, &gen.s_xz)),
            eg_x: v(score_gap(&enc.s_x, &gen.s_x)),
            eg_z: v(score_gap(&enc.s_z, &gen.s_z)),
        }
    }
}

