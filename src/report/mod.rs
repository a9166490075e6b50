//! Reports: the results JSON (with provenance) is the single source; Markdown and CSV tables are rendered
//! from it, never computed separately. [`metrics`] describes every metric (direction, unit) for the tables,
//! `compare` and `check`; [`paper`] holds the paper's numbers shown beside matching rows. Knows probe
//! results, never tch.

pub mod generation_table;
pub mod metrics;
pub mod paper;
pub mod results;
pub mod table;

pub use results::{DatasetRecord, Provenance, Results, RowResult};
