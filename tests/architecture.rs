//! The crate's structure, read from its own `use` lines: no dependency cycle between top-level modules or
//! between the files of a module, and the boundaries the design promises (DESIGN.md: `report` knows probe
//! results, never tch; `probe` knows feature matrices, never images; `protocol` imports nothing).

mod common;

use std::collections::{BTreeMap, BTreeSet};

/// `(top-level module, file stem)` of every library source file, with its text.
fn sources() -> Vec<(String, String, String)> {
    let src = common::root().join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&src).unwrap();
                let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
                // The binary's files (main, cli, commands/) sit above the library; lib.rs only declares.
                if ["main", "cli", "lib", "commands"].contains(&parts[0].as_str()) {
                    continue;
                }
                let file = parts.last().unwrap().clone();
                out.push((parts[0].clone(), file, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

/// Names after `prefix` in code (comments stripped), e.g. `crate::data::X` → `data`.
fn referenced(text: &str, prefix: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c}`
            group.split('}').next().unwrap_or("").split(',').filter_map(|p| p.trim().split("::").next().map(str::to_string)).collect()
        } else {
            vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()]
        };
        out.extend(names.into_iter().filter(|n| !n.is_empty() && n != "self"));
    }
    out
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(n: &str, graph: &BTreeMap<String, BTreeSet<String>>, state: &mut BTreeMap<String, u8>, path: &mut Vec<String>) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph.keys().find_map(|n| visit(n, graph, &mut state, &mut Vec::new()))
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, text) in sources() {
        let deps: Vec<String> = referenced(&text, "crate::").into_iter().filter(|d| d != &module && d != "Error" && d != "Result").collect();
        graph.entry(module).or_default().extend(deps);
    }
    graph
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph = module_graph();
    assert!(graph.len() > 10, "read too few modules: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn no_cycle_between_the_files_of_a_module() {
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, file, text) in sources() {
        // `super::x` from a file of a module names its sibling `x` (or the module's own mod.rs items).
        let deps: Vec<String> = referenced(&text, "super::").into_iter().filter(|d| d != &file).collect();
        graphs.entry(module).or_default().entry(file).or_default().extend(deps);
    }
    for (module, graph) in graphs {
        // Items of mod.rs are re-exports and shared helpers; edges into it are not file edges.
        let files: BTreeSet<String> = graph.keys().cloned().collect();
        let graph: BTreeMap<String, BTreeSet<String>> = graph.into_iter().filter(|(f, _)| f != "mod").map(|(f, d)| (f, d.into_iter().filter(|x| files.contains(x) && x != "mod").collect())).collect();
        if let Some(cycle) = find_cycle(&graph) {
            panic!("file cycle in {module}: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_design_boundaries_hold() {
    let graph = module_graph();
    let deps = |m: &str| graph.get(m).cloned().unwrap_or_default();
    assert!(deps("protocol").is_empty(), "protocol must import nothing: {:?}", deps("protocol"));
    for leaf in ["seeded", "suggest", "error", "atomic", "testing"] {
        let d: BTreeSet<String> = deps(leaf).into_iter().filter(|d| d != "error").collect();
        assert!(d.is_empty(), "{leaf} is a leaf, imports {d:?}");
    }
    assert!(!deps("probe").contains("data") && !deps("probe").contains("encoder"), "probe sees matrices, never datasets or encoders: {:?}", deps("probe"));
    assert!(!deps("encoder").contains("features"), "encoder knows tensors, never files: {:?}", deps("encoder"));
    for lower in ["data", "encoder", "features", "probe", "genmetrics"] {
        assert!(!deps(lower).contains("runfile") && !deps(lower).contains("run"), "{lower} may not reach up to run files: {:?}", deps(lower));
    }
    let report_uses_tch = sources().iter().any(|(m, _, t)| (m == "report" || m == "compare") && t.contains("tch::"));
    assert!(!report_uses_tch, "report and compare know results, never tch");
}
