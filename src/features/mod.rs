//! Features: the extraction loop (batches, device, progress) and the content-addressed Parquet cache.
//! Only this module (and, later, genmetrics) drives a device.

pub mod cache;
pub mod extract;

pub use cache::{CacheKey, FeatureTable};
pub use extract::{extract, ExtractOptions, Extraction};
