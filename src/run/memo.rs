//! Finished results of a run — a probe row's outcome, a generation entry's FID/IS — kept in the cache
//! directory under everything that determines them, so a stopped or failed `bbeval run` starts again
//! where it stopped: its features are cached already, and without this every probe and every FID entry
//! (minutes each on a CPU) would be computed again.
//!
//! A record is `<cache>/results/<kind>__<sha256 prefix of its inputs>.json` holding the inputs and the
//! result (names — a row's method, a generation entry's variant — are not inputs: renaming reuses it). It
//! is used only when the stored inputs equal the asked ones, so a record that does not match (another
//! build, another device, an edited file) is recomputed, never trusted. Records are written whole or not
//! at all; an unreadable one is recomputed and replaced.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::atomic;
use crate::context::ExecutionContext;
use crate::error::{IoContext, Result};
use crate::features::maintenance::RESULTS_DIR;
use crate::features::FeatureFile;
use crate::reporter::Reporter;

#[derive(Serialize, Deserialize)]
struct Record<T> {
    inputs: Value,
    result: T,
}

/// Where a run's finished results are kept, and whether they may be reused.
#[derive(Debug, Clone)]
pub struct Memo {
    dir: PathBuf,
    reuse: bool,
}

impl Memo {
    /// Records under `cache_dir`; with `reuse` false every result is recomputed (and its record replaced).
    pub fn under(cache_dir: &Path, reuse: bool) -> Memo {
        Memo { dir: cache_dir.join(RESULTS_DIR), reuse }
    }

    /// What every record's inputs hold besides the entry's own: the build of bbeval (any rebuild may change
    /// the numbers — a CI gate must never be handed a result of the code before its change), the protocol,
    /// and the device and precision (which change the last digits).
    pub fn common_inputs(ctx: &ExecutionContext) -> Value {
        serde_json::json!({
            "bbeval": env!("CARGO_PKG_VERSION"),
            "build": build_digest(),
            "protocol_version": crate::protocol::PROTOCOL_VERSION,
            "device": format!("{} {}", ctx.device_name(), ctx.precision.as_str()),
        })
    }

    fn path(&self, kind: &str, inputs: &Value) -> PathBuf {
        let digest = hex::encode(Sha256::digest(inputs.to_string().as_bytes()));
        self.dir.join(format!("{kind}__{}.json", &digest[..16]))
    }

    /// The stored result for `inputs`, if reuse is on and a matching, readable record exists.
    pub fn get<T: DeserializeOwned>(&self, kind: &str, inputs: &Value) -> Option<T> {
        if !self.reuse {
            return None;
        }
        let text = std::fs::read_to_string(self.path(kind, inputs)).ok()?;
        let record: Record<T> = serde_json::from_str(&text).ok()?;
        (record.inputs == *inputs).then_some(record.result)
    }

    /// Keep `result` for `inputs` (replacing any record there).
    pub fn put<T: Serialize>(&self, kind: &str, inputs: &Value, result: &T) -> Result<()> {
        let path = self.path(kind, inputs);
        let text = serde_json::to_string_pretty(&Record { inputs: inputs.clone(), result }).map_err(std::io::Error::other).at(&path)?;
        let mut tmp = atomic::temp_file(&self.dir, ".json")?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).at(&path)?;
        atomic::persist(tmp, &path)
    }

    /// [`Memo::put`] for a finished result: a record that cannot be written is a warning naming `what`,
    /// never an error, since losing it costs only a recomputation after a stop.
    pub fn keep<T: Serialize>(&self, kind: &str, inputs: &Value, result: &T, what: &str, reporter: &Reporter) {
        if let Err(why) = self.put(kind, inputs, result) {
            reporter.warn(format!("the finished {what} is not kept for a re-run: {why}"));
        }
    }
}

/// What identifies a feature file's values: its name (which holds its cache key: weights, dataset content,
/// subset, preprocessing) and its row groups' checksums (the values themselves, should a file be rewritten
/// under the same key).
pub fn feature_identity(file: &FeatureFile) -> String {
    let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let values = hex::encode(Sha256::digest(file.layout.checksums.join(",").as_bytes()));
    format!("{name}#{}", &values[..16])
}

/// XXH3-64 of this executable's bytes (read once; ~50 MB in tens of milliseconds), or `unknown` when it
/// cannot be read — then records never match a later process's inputs by accident of a shared build.
fn build_digest() -> String {
    static DIGEST: OnceLock<String> = OnceLock::new();
    DIGEST
        .get_or_init(|| {
            let bytes = std::env::current_exe().and_then(std::fs::read);
            match bytes {
                Ok(b) => format!("{:016x}", twox_hash::XxHash3_64::oneshot(&b)),
                Err(_) => format!("unknown-{}", std::process::id()),
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_reused_only_for_equal_inputs_and_never_when_reuse_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let memo = Memo::under(dir.path(), true);
        let inputs = serde_json::json!({"entry": "a", "samples": 2048});
        memo.put("generation", &inputs, &287.42_f64).unwrap();
        assert_eq!(memo.get::<f64>("generation", &inputs), Some(287.42));
        let other = serde_json::json!({"entry": "a", "samples": 4096});
        assert_eq!(memo.get::<f64>("generation", &other), None);
        assert_eq!(Memo::under(dir.path(), false).get::<f64>("generation", &inputs), None);
    }

    #[test]
    fn a_damaged_or_foreign_record_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let memo = Memo::under(dir.path(), true);
        let inputs = serde_json::json!({"entry": "a"});
        memo.put("probe", &inputs, &1.0_f64).unwrap();
        let path = memo.path("probe", &inputs);
        // A record whose stored inputs differ from the asked ones (a hash collision, a hand edit).
        std::fs::write(&path, r#"{"inputs": {"entry": "b"}, "result": 2.0}"#).unwrap();
        assert_eq!(memo.get::<f64>("probe", &inputs), None);
        std::fs::write(&path, "{ truncated").unwrap();
        assert_eq!(memo.get::<f64>("probe", &inputs), None);
    }

    /// A finished probe or entry must never fail because its record cannot be written.
    #[test]
    fn a_record_that_cannot_be_written_is_a_warning_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // The records' folder is a file: nothing can be written under it.
        std::fs::write(dir.path().join(RESULTS_DIR), "").unwrap();
        let memo = Memo::under(dir.path(), true);
        let inputs = serde_json::json!({"entry": "a"});
        assert!(memo.put("probe", &inputs, &1.0_f64).is_err());
        memo.keep("probe", &inputs, &1.0_f64, "probe of a", &Reporter::silent());
        assert_eq!(memo.get::<f64>("probe", &inputs), None);
    }
}
