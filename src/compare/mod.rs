//! Results across runs: [`deltas`] lines up the rows two runs share and bootstraps paired intervals of
//! their differences, [`check`] turns those into a CI gate, [`plots`] draws top-1 over training steps and
//! heat maps of a sweep's grid. Knows results JSON files, never tch or features.

pub mod check;
pub mod deltas;
pub mod plots;

use crate::protocol::PROTOCOL_VERSION;
use crate::error::{Error, Result};
use crate::report::Results;

pub use deltas::{deltas, Delta, RowKey};

/// Refuse to mix results of different protocol versions (with each other or with this build) unless
/// told to: a preprocessing, probe or metric change makes their numbers incomparable.
pub fn versions_agree(runs: &[&Results], allow_mixed: bool) -> Result<()> {
    if allow_mixed {
        return Ok(());
    }
    let odd: Vec<String> =
        runs.iter().filter(|r| r.protocol_version != PROTOCOL_VERSION).map(|r| format!("`{}` is v{}", r.name, r.protocol_version)).collect();
    if odd.is_empty() {
        return Ok(());
    }
    Err(Error::ProtocolMismatch { detail: format!("{} but this bbeval is v{PROTOCOL_VERSION}", odd.join(", ")) })
}

/// The training step a run evaluates: `step` from its run file, else the last number in its name.
pub fn step_of(r: &Results) -> Option<u64> {
    r.config.step.or_else(|| {
        let digits: String = r.name.chars().rev().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
        digits.chars().rev().collect::<String>().parse().ok()
    })
}
