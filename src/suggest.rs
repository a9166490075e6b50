//! "Did you mean …?" for unknown names (run-file keys, datasets, encoders, features).

/// Levenshtein distance, used only to rank suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The closest known name within an edit distance of a third of the name's length (at least 2).
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    known
        .iter()
        .map(|k| (distance(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// " (did you mean `x`?)" or "", to append to an error message.
pub fn did_you_mean(name: &str, known: &[&str]) -> String {
    closest(name, known).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default()
}

/// A TOML error for people: serde names the unknown field and lists the expected ones; add "did you mean
/// …?".
pub fn explain_toml_error(e: &toml::de::Error) -> String {
    let msg = e.message().to_string();
    let mut out = e.to_string().trim_end().to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        out.push_str(&did_you_mean(name, &known));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        assert_eq!(closest("epohcs", &["epochs", "seed", "l2"]), Some("epochs"));
        assert_eq!(closest("zzzzzz", &["epochs", "seed"]), None);
        assert_eq!(did_you_mean("sed", &["seed"]), " (did you mean `seed`?)");
    }
}
