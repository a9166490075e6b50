//! Test hooks for what only a killed process shows.
//!
//! `BBEVAL_ABORT_AT=<point>:<n>` aborts the process — no destructors, no cleanup, as `kill -9` would —
//! the n-th time it reaches the named point (`batch`, `part-before-rename`, `part-written`,
//! `assembled-before-cleanup`). The resume tests use it; nothing sets it in normal use, and an unset
//! variable costs one cached lookup.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

fn target() -> &'static Option<(String, usize)> {
    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    TARGET.get_or_init(|| {
        let v = std::env::var("BBEVAL_ABORT_AT").ok()?;
        let (point, n) = v.rsplit_once(':')?;
        Some((point.to_string(), n.parse().ok()?))
    })
}

/// Abort here if `BBEVAL_ABORT_AT` names this point and this is its n-th visit.
pub fn abort_point(point: &str) {
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    if let Some((name, n)) = target() {
        if name == point && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            eprintln!("BBEVAL_ABORT_AT: aborting at {point} #{n}");
            std::process::abort();
        }
    }
}
