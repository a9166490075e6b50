//! The three networks with their variable stores, and the EMA copy of G that is exported.

use tch::{nn, Device};

use super::nets::{Discriminator, Encoder, Generator};
use super::TrainConfig;

/// The networks and their variable stores (`g_ema` is the exported generator).
pub struct Models {
    pub vs_g: nn::VarStore,
    pub vs_e: nn::VarStore,
    pub vs_d: nn::VarStore,
    pub vs_g_ema: nn::VarStore,
    pub g: Generator,
    pub e: Encoder,
    pub d: Discriminator,
    pub g_ema: Generator,
}

impl Models {
    /// Fresh networks; weights depend only on `seed`.
    pub fn new(cfg: &TrainConfig, device: Device) -> Models {
        tch::manual_seed(cfg.seed as i64);
        let (vs_g, vs_e, vs_d, mut vs_g_ema) = (nn::VarStore::new(device), nn::VarStore::new(device), nn::VarStore::new(device), nn::VarStore::new(device));
        let a = &cfg.architecture;
        let g = Generator::new(&vs_g.root(), a);
        let e = Encoder::new(&vs_e.root(), a);
        let d = Discriminator::new(&vs_d.root(), a);
        let g_ema = Generator::new(&vs_g_ema.root(), a);
        let _ = vs_g_ema.copy(&vs_g);
        Models { vs_g, vs_e, vs_d, vs_g_ema, g, e, d, g_ema }
    }

    pub(super) fn stores(&mut self) -> [(&'static str, &mut nn::VarStore); 4] {
        [("g", &mut self.vs_g), ("e", &mut self.vs_e), ("d", &mut self.vs_d), ("g_ema", &mut self.vs_g_ema)]
    }
}

