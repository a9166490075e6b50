//! Reports: the results JSON (with provenance) is the single source; Markdown and CSV tables are rendered
//! from it, never computed separately. Knows probe results, never tch.

pub mod generation_table;
pub mod results;
pub mod table;

pub use results::{DatasetRecord, Provenance, Results, RowResult};
