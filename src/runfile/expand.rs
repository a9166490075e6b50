//! Seed and feature lists in a run file's entries, expanded before the file is read as a [`super::RunFile`]:
//! a `[[rows]]` or `[[generation]]` entry with `seeds = [1, 2, 3]` stands for one entry per seed, each with
//! `{seed}` in its strings replaced by the seed; a `[[rows]]` entry with `features = ["avepool", "bn_crelu"]`
//! stands for one row per feature (seeds outer, features inner, in the order written). A run over seeds is
//! then one entry per variant rather than one per variant, seed and feature.

use toml::Value;

/// The placeholder that `seeds` replaces.
pub const SEED: &str = "{seed}";

/// Whether any entry of `doc` uses `seeds`, `features` or the placeholder (a file without them is read as
/// written, so its errors keep their line numbers).
pub fn needed(doc: &toml::Table) -> bool {
    let uses = |e: &toml::Table| e.contains_key("seeds") || e.contains_key("features") || e.values().any(|v| v.as_str().is_some_and(|s| s.contains(SEED)));
    ["rows", "generation"].iter().any(|key| entries(doc, key).into_iter().any(uses))
}

fn entries<'a>(doc: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    doc.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_table).collect()).unwrap_or_default()
}

/// `doc` with every `[[rows]]` and `[[generation]]` entry expanded; the error says which entry and why.
pub fn expand(mut doc: toml::Table) -> Result<toml::Table, String> {
    // (array, the key naming an entry, the key naming what it reads)
    for (key, name_key, source_key) in [("rows", "method", "encoder"), ("generation", "variant", "generator")] {
        let Some(Value::Array(list)) = doc.remove(key) else { continue };
        let mut out = Vec::new();
        for entry in list {
            let Value::Table(entry) = entry else {
                out.push(entry);
                continue;
            };
            let label = entry.get(name_key).and_then(Value::as_str).unwrap_or("?").to_string();
            let here = |why: String| format!("[[{key}]] `{label}`: {why}");
            for seeded in by_seed(entry, name_key, source_key).map_err(here)? {
                if key == "rows" {
                    out.extend(by_feature(seeded).map_err(here)?.into_iter().map(Value::Table));
                } else if seeded.contains_key("features") {
                    return Err(here("`features` is for [[rows]]; a generator has no features".into()));
                } else {
                    out.push(Value::Table(seeded));
                }
            }
        }
        doc.insert(key.into(), Value::Array(out));
    }
    Ok(doc)
}

/// One entry per seed of `seeds`, `{seed}` replaced in its strings; the entry itself when it has no seeds.
fn by_seed(mut entry: toml::Table, name_key: &str, source_key: &str) -> Result<Vec<toml::Table>, String> {
    let Some(seeds) = entry.remove("seeds") else {
        if let Some((k, _)) = entry.iter().find(|(_, v)| v.as_str().is_some_and(|s| s.contains(SEED))) {
            return Err(format!("`{k}` holds {SEED} but the entry has no `seeds = [...]` to fill it"));
        }
        return Ok(vec![entry]);
    };
    let seeds: Vec<i64> = seeds
        .as_array()
        .map(|a| a.iter().map(Value::as_integer).collect::<Option<Vec<_>>>())
        .unwrap_or_default()
        .filter(|s| !s.is_empty() && s.iter().all(|&x| x >= 0))
        .ok_or_else(|| "`seeds` must be a non-empty list of integers ≥ 0, e.g. seeds = [1, 2, 3]".to_string())?;
    if let Some(dup) = seeds.iter().enumerate().find_map(|(i, s)| seeds[..i].contains(s).then_some(s)) {
        return Err(format!("seed {dup} is listed twice in `seeds`"));
    }
    // Each seed's entry must name itself and read its own files: a missing placeholder would repeat one.
    for key in [name_key, source_key] {
        if !entry.get(key).and_then(Value::as_str).is_some_and(|s| s.contains(SEED)) {
            return Err(format!("with `seeds`, `{key}` must hold {SEED} (each seed's entry is named by it and reads its own files)"));
        }
    }
    Ok(seeds
        .iter()
        .map(|seed| entry.iter().map(|(k, v)| (k.clone(), match v {
            Value::String(s) => Value::String(s.replace(SEED, &seed.to_string())),
            other => other.clone(),
        })).collect())
        .collect())
}

/// One row per feature of `features`; the row itself when it names one `feature`.
fn by_feature(mut row: toml::Table) -> Result<Vec<toml::Table>, String> {
    let Some(features) = row.remove("features") else { return Ok(vec![row]) };
    if row.contains_key("feature") {
        return Err("give `feature = \"...\"` or `features = [...]`, not both".into());
    }
    let features: Vec<String> = features
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().map(String::from)).collect::<Option<Vec<_>>>())
        .unwrap_or_default()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| "`features` must be a non-empty list of feature names, e.g. features = [\"avepool\", \"bn_crelu\"]".to_string())?;
    Ok(features
        .into_iter()
        .map(|f| {
            let mut r = row.clone();
            r.insert("feature".into(), Value::String(f));
            r
        })
        .collect())
}
