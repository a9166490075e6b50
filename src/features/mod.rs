//! Features: the extraction loop (batches, device, progress; resumable and sharded in parts) and the
//! content-addressed Parquet cache with its fast reader.

pub mod cache;
pub mod diff;
pub mod extract;
pub mod key;
pub mod maintenance;
mod parquet_fast;
pub mod parts;
pub mod synthetic;

pub use cache::{CacheKey, FeatureFile, FeatureTable};
pub use extract::{extract, ExtractOptions, Extraction};
pub use parts::Shard;
