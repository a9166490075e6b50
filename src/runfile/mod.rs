//! Run files: the TOML files of `eval/` that `bbeval run` executes (dataset, probe settings, encoder rows,
//! generator entries). Sits above data, features and probe: it names their settings, they never see it.
//!
//! Defaults come from [`crate::protocol`]; the `[probe]` table is the probe module's own
//! [`ProbeConfig`], checked once when the file is loaded, with errors that name the file. Entries over seeds
//! and features are written once ([`expand`]).

pub mod expand;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::{DeviceChoice, ExecutionContext, Precision};
use crate::error::{Error, Result};
use crate::features::cache::Storage;
pub use crate::probe::ProbeConfig;
use crate::protocol::{CACHE_DIR, SPLIT_SEED};
use crate::suggest::explain_toml_error;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// `kind:path`, e.g. `idx:assets/fashion-mnist` (see `data::DatasetSpec`).
    pub spec: String,
    /// Use at most this many train images (seeded subset); all by default.
    pub train_limit: Option<usize>,
    /// Use at most this many val images (seeded subset); all by default.
    pub val_limit: Option<usize>,
    /// Images held out of train for model selection; TRAIN_VAL_IMAGENET for ImageNet, else
    /// TRAIN_VAL_FRACTION of train.
    pub train_val: Option<usize>,
    /// Seed of subsets and of the train-val split; defaults to `SPLIT_SEED`.
    #[serde(default = "default_split_seed")]
    pub seed: u64,
}

fn default_split_seed() -> u64 {
    SPLIT_SEED
}

/// One row of a Table-2 style report: an encoder and one of its features.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowConfig {
    /// The "Method" column, e.g. "BigBiGAN" or "Raw pixels".
    pub method: String,
    /// `raw` for raw pixels, or the path of an encoder manifest (TOML beside its TorchScript file).
    pub encoder: String,
    /// `avepool`, `bn_crelu`, `pixels`, … (`bn_crelu` is derived from `avepool` if the encoder lacks it).
    pub feature: String,
    /// The "Architecture" column; defaults to the manifest's architecture.
    pub architecture: Option<String>,
}

/// A `[[generation]]` entry of a run file: a generator scored by FID (and IS with a classifier), one
/// line of the Table 1 / Table 3 layouts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationConfig {
    /// The "Variant" (Table 1) or "Method" (Table 3) column.
    pub variant: String,
    /// Generator manifest (TOML beside its TorchScript file).
    pub generator: String,
    /// Samples drawn; defaults to `genmetrics::GENERATOR_SAMPLES`.
    pub samples: Option<usize>,
    #[serde(default = "default_split_seed")]
    pub seed: u64,
    /// Re-draw latent entries with |z| above this (BigGAN's truncation trick).
    pub truncation: Option<f32>,
    /// FID reference `kind:path[@split]`; defaults to the run's dataset, val split.
    pub reference: Option<String>,
    /// Seeded subset of the reference.
    pub reference_limit: Option<usize>,
    /// FID Inception manifest; defaults to `FID_INCEPTION_MANIFEST`.
    pub inception: Option<String>,
    /// Classifier manifest with `logits` for IS (labelled non-standard unless TF Inception's 1008).
    pub is_classifier: Option<String>,
    /// Method of the probe row whose train-val top-1 fills the "Cls." column (Table 1).
    pub cls_row: Option<String>,
    /// Feature of that row, needed when the method has rows for several features (e.g. `bn_crelu`).
    pub cls_feature: Option<String>,
}

impl GenerationConfig {
    /// Index into `rows` of the row whose top-1 fills this entry's "Cls." column (`None` without cls_row);
    /// the error says why when cls_row (with cls_feature) names no row or several. Checked at load, used
    /// after the run: one rule for both.
    pub fn cls_row_index(&self, rows: &[RowConfig]) -> std::result::Result<Option<usize>, String> {
        let Some(method) = &self.cls_row else { return Ok(None) };
        let matching: Vec<usize> = (0..rows.len()).filter(|&i| &rows[i].method == method && self.cls_feature.as_ref().is_none_or(|f| &rows[i].feature == f)).collect();
        match matching.as_slice() {
            [i] => Ok(Some(*i)),
            [] => Err(format!("[[generation]] `{}` names cls_row `{method}`: no [[rows]] has that method (and feature, if cls_feature is given)", self.variant)),
            many => Err(format!("[[generation]] `{}` names cls_row `{method}`: {} [[rows]] have that method; add cls_feature = \"<feature>\" to choose one", self.variant, many.len())),
        }
    }
}

/// A run file: `bbeval run eval/<name>.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub name: String,
    /// Training step of the checkpoint this run evaluates (x axis of `bbeval compare`'s curves); when
    /// absent, the last number in `name` is used, if any.
    pub step: Option<u64>,
    /// Feature cache folder; defaults to `CACHE_DIR`.
    pub cache_dir: Option<PathBuf>,
    /// Results folder; defaults to `results/<name>`.
    pub out_dir: Option<PathBuf>,
    /// Images per encoder batch; defaults to `default_batch_size(device)`.
    pub batch_size: Option<usize>,
    /// How features are stored in the cache: `f32` (default) or `f16`.
    #[serde(default)]
    pub storage: Storage,
    /// Where encoders, generators and probes run (`auto`, `cpu`, `cuda`, `cuda:N`); `--device` overrides.
    pub device: Option<DeviceChoice>,
    /// Forward-pass precision of the encoders (`f32`, `f16`, `bf16`); `--dtype` overrides.
    pub dtype: Option<Precision>,
    pub dataset: DatasetConfig,
    #[serde(default)]
    pub probe: ProbeConfig,
    #[serde(default)]
    pub rows: Vec<RowConfig>,
    #[serde(default)]
    pub generation: Vec<GenerationConfig>,
}

impl RunFile {
    pub fn load(path: &Path) -> Result<RunFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::RunFile { path: path.into(), reason: e.to_string() })?;
        let toml_error = |e: toml::de::Error| Error::RunFile { path: path.into(), reason: explain_toml_error(&e) };
        let doc: toml::Table = toml::from_str(&text).map_err(toml_error)?;
        let run: RunFile = if expand::needed(&doc) {
            let doc = expand::expand(doc).map_err(|reason| Error::RunFile { path: path.into(), reason })?;
            toml::Value::Table(doc).try_into().map_err(toml_error)?
        } else {
            toml::from_str(&text).map_err(toml_error)?
        };
        run.probe.check(&format!("run file {}, [probe]", path.display()))?;
        if run.rows.is_empty() && run.generation.is_empty() {
            return Err(Error::RunFile { path: path.into(), reason: "no [[rows]] or [[generation]]: add at least one encoder row or generator".into() });
        }
        for g in &run.generation {
            g.cls_row_index(&run.rows).map_err(|reason| Error::RunFile { path: path.into(), reason })?;
        }
        Ok(run)
    }

    /// The execution context: flags over the run file over `auto`, decided once for the whole run.
    pub fn context(&self, device: Option<DeviceChoice>, dtype: Option<Precision>, threads: Option<usize>) -> Result<ExecutionContext> {
        ExecutionContext::decide(device.or(self.device).unwrap_or_default(), dtype.or(self.dtype).unwrap_or_default(), threads)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| PathBuf::from(CACHE_DIR))
    }

    pub fn out_dir(&self) -> PathBuf {
        self.out_dir.clone().unwrap_or_else(|| Path::new("results").join(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_gets_a_suggestion() {
        let text = "name='x'\nrows=[]\n[dataset]\nspec='idx:a'\n[probe]\nepohcs=3\n";
        let err = toml::from_str::<RunFile>(text).unwrap_err();
        let msg = explain_toml_error(&err);
        assert!(msg.contains("did you mean `epochs`?"), "{msg}");
    }

    /// Table 1's Cls. column must name exactly one probe row: an ambiguous method (AvePool and BN+CReLU
    /// rows) is refused at load, before any extraction, unless cls_feature picks one.
    #[test]
    fn cls_row_must_name_exactly_one_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t1.toml");
        let rows = "[[rows]]\nmethod='E'\nencoder='raw'\nfeature='avepool'\n[[rows]]\nmethod='E'\nencoder='raw'\nfeature='bn_crelu'\n";
        let gen = "[[generation]]\nvariant='G'\ngenerator='g.toml'\ncls_row='E'\n";
        let write = |extra: &str| std::fs::write(&path, format!("name='t1'\n[dataset]\nspec='idx:a'\n{rows}{gen}{extra}")).unwrap();
        write("");
        let err = RunFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("t1.toml") && err.contains("2 [[rows]] have that method") && err.contains("cls_feature"), "{err}");
        write("cls_feature='bn_crelu'\n");
        assert_eq!(RunFile::load(&path).unwrap().generation[0].cls_feature.as_deref(), Some("bn_crelu"));
        write("cls_feature='z_mean'\n");
        assert!(RunFile::load(&path).unwrap_err().to_string().contains("no [[rows]] has that method"));
    }

    fn load_text(dir: &Path, text: &str) -> Result<RunFile> {
        let path = dir.join("seeds.toml");
        std::fs::write(&path, format!("name='s'\n[dataset]\nspec='idx:a'\n{text}")).unwrap();
        RunFile::load(&path)
    }

    /// An entry over seeds and features reads as the entries written out one by one: seeds outer, features
    /// inner, `{seed}` replaced in every string (the Cls. row too), other entries left where they are.
    #[test]
    fn seeds_and_features_expand_to_the_entries_written_out() {
        let dir = tempfile::tempdir().unwrap();
        let short = load_text(
            dir.path(),
            "[[rows]]\nmethod='Raw'\nencoder='raw'\nfeature='pixels'\n\
             [[rows]]\nmethod='E (seed {seed})'\nencoder='r-seed{seed}/e.toml'\nfeatures=['avepool','bn_crelu']\nseeds=[1,2]\n\
             [[generation]]\nvariant='G (seed {seed})'\ngenerator='r-seed{seed}/g.toml'\nsamples=64\ncls_row='E (seed {seed})'\ncls_feature='bn_crelu'\nseeds=[1,2]\n",
        )
        .unwrap();
        let mut long = String::from("[[rows]]\nmethod='Raw'\nencoder='raw'\nfeature='pixels'\n");
        for seed in [1, 2] {
            for feature in ["avepool", "bn_crelu"] {
                long += &format!("[[rows]]\nmethod='E (seed {seed})'\nencoder='r-seed{seed}/e.toml'\nfeature='{feature}'\n");
            }
        }
        for seed in [1, 2] {
            long += &format!("[[generation]]\nvariant='G (seed {seed})'\ngenerator='r-seed{seed}/g.toml'\nsamples=64\ncls_row='E (seed {seed})'\ncls_feature='bn_crelu'\n");
        }
        let long = load_text(dir.path(), &long).unwrap();
        let json = |r: &RunFile| serde_json::to_string(r).unwrap();
        assert_eq!(json(&short), json(&long));
        assert_eq!(short.rows.len(), 5);
        assert_eq!(short.rows[4].encoder, "r-seed2/e.toml");
        assert_eq!(short.generation[1].cls_row.as_deref(), Some("E (seed 2)"));
    }

    /// A seed list that would repeat an entry, a placeholder nothing fills, or a feature given twice is
    /// refused at load, with the file, the entry and the fix.
    #[test]
    fn seed_and_feature_lists_that_cannot_expand_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |text: &str, why: &str| {
            let err = load_text(dir.path(), text).unwrap_err().to_string();
            assert!(err.contains("seeds.toml") && err.contains(why), "{err}");
        };
        refused("[[rows]]\nmethod='E {seed}'\nencoder='e.toml'\nfeature='avepool'\nseeds=[1]\n", "`encoder` must hold {seed}");
        refused("[[rows]]\nmethod='E'\nencoder='e{seed}.toml'\nfeature='avepool'\nseeds=[1]\n", "`method` must hold {seed}");
        refused("[[rows]]\nmethod='E {seed}'\nencoder='e{seed}.toml'\nfeature='avepool'\n", "has no `seeds = [...]`");
        refused("[[rows]]\nmethod='E {seed}'\nencoder='e{seed}.toml'\nfeature='avepool'\nseeds=[1,1]\n", "seed 1 is listed twice");
        refused("[[rows]]\nmethod='E {seed}'\nencoder='e{seed}.toml'\nfeature='avepool'\nseeds=[]\n", "non-empty list of integers");
        refused("[[rows]]\nmethod='E'\nencoder='e.toml'\nfeature='avepool'\nfeatures=['bn_crelu']\n", "not both");
        refused("[[rows]]\nmethod='E'\nencoder='e.toml'\nfeatures=[]\n", "non-empty list of feature names");
        refused("[[generation]]\nvariant='G'\ngenerator='g.toml'\nfeatures=['x']\n", "`features` is for [[rows]]");
        // After expansion the entries are read as ever: an unknown key still gets its suggestion.
        refused("[[rows]]\nmethod='E'\nencoder='e.toml'\nfeatures=['avepool']\narchitecure='x'\n", "did you mean `architecture`?");
    }
}
