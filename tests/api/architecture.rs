//! The layers of ARCHITECTURE.md, kept true: the file-level graph of `use crate::` (and
//! `super::`) paths in `src/` may only point down the layers, or sideways along the edges the
//! table below allows; no cycle of files may span two layers; `domain/` uses no I/O.
//!
//! Test modules (`#[cfg(test)] mod tests { … }` at the end of a file) are left out: a test
//! may reach for anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module, its layer (lowest first), and the modules of its own layer it may
/// use. A module may use anything in a lower layer.
const LAYERS: &[(&str, u8, &[&str])] = &[
    // Pure types and decisions.
    ("domain", 0, &[]),
    // Foundations every part may use: configuration, time, process-level helpers, the metric
    // catalog, fault injection for tests, logging set-up.
    ("settings", 1, &[]),
    ("clock", 1, &[]),
    ("sys", 1, &[]),
    ("faults", 1, &[]),
    ("metrics", 1, &[]),
    ("telemetry", 1, &["settings"]),
    // Data and media: SQL, the media tools, the file tree, the network guard.
    ("db", 2, &[]),
    ("storage", 2, &["db"]),
    ("media", 2, &["storage"]),
    ("net", 2, &[]),
    ("people", 2, &["db"]),
    ("keeping", 2, &["db", "storage"]),
    // The shared services of one app (no actor message types).
    ("context", 3, &[]),
    // The supervision tree; reached from above only through handles.
    ("actors", 4, &[]),
    // The doors, and the composition root that builds them.
    ("intake", 5, &[]),
    ("bot", 5, &["intake"]),
    ("watch", 5, &["intake"]),
    ("http", 5, &["intake", "bot"]),
    ("app", 5, &["intake", "http", "bot", "watch"]),
    ("cli", 5, &["app", "http", "intake"]),
];

/// Inside `db/`: table modules are leaves (they may use only `db/mod.rs`); the use cases
/// above them may use tables and, where named, each other.
const DB_TABLES: &[&str] = &[
    "items",
    "jobs",
    "renditions",
    "breakers",
    "telegram",
    "housekeeping",
    "backup_runs",
    "imports",
    "users",
    "tokens",
    "sessions",
    "usage_history",
    "backup_leases",
];
const DB_USE_CASES: &[(&str, &[&str])] = &[
    ("record", &["twins", "search"]),
    ("twins", &["outcome", "search", "webhooks"]),
    ("outcome", &["quota", "search", "webhooks"]),
    ("removal", &["search", "webhooks"]),
    ("webhooks", &[]),
    ("search", &[]),
    ("user_fields", &["search"]),
    ("recovery", &["outcome"]),
    ("people", &[]),
    ("quota", &[]),
    ("storage_report", &[]),
    ("dump", &["search"]),
];

/// Small rooms: no file over this many lines, and in a file over `CODE_LINES` lines at most
/// `CODE_LINES` outside its test module.
const MAX_LINES: usize = 600;
const CODE_LINES: usize = 400;

/// Crates that do I/O (or run it): `domain/` must not name them.
const IO_CRATES: &[&str] = &[
    "tokio",
    "sqlx",
    "warp",
    "hyper",
    "reqwest",
    "teloxide",
    "ractor",
    "notify",
    "nix",
    "prometheus",
    "std::fs",
    "std::process",
    "std::net::Tcp",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/actors/pipeline/mod.rs` → `["actors", "pipeline"]`.
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src_dir()).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The code of a file without its trailing test module and without comment lines (a doc
/// comment may mention any module).
fn code_of(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a file names from `crate::` or `super::`, with `{…}` groups expanded, each as
/// absolute segments.
fn named_paths(file_module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent_of(file_module))] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            // `$crate::`, `my_crate::` or `super::super::` continuing a longer path.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            let tree = path_tree(rest);
            for path in expand(&tree) {
                let mut full = base.clone();
                full.extend(path);
                out.push(full);
            }
        }
    }
    out
}

/// The module `super::` means in a file (of `src/a/mod.rs`, module `a`, it is the crate
/// root; of `src/a/b.rs`, module `a::b`, it is `a`).
fn parent_of(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// The text of a use tree starting at `text` (up to where the path ends).
fn path_tree(text: &str) -> String {
    let mut depth = 0;
    let mut end = text.len();
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                end = i;
                break;
            }
            '}' => depth -= 1,
            c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    text[..end].to_string()
}

/// `a::{b::C, d}` → `[[a, b, C], [a, d]]`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![
            tree.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self")
                .map(String::from)
                .collect(),
        ];
    };
    let head: Vec<String> = tree[..open]
        .split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    let mut out = Vec::new();
    for part in parts.into_iter().filter(|p| !p.trim().is_empty()) {
        for tail in expand(part) {
            let mut path = head.clone();
            path.extend(tail);
            out.push(path);
        }
    }
    out
}

struct Graph {
    /// File → the files it names (other than itself).
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    modules: BTreeMap<Vec<String>, PathBuf>,
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> =
        files.iter().map(|f| (module_of(f), f.clone())).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let module = module_of(file);
        let mut targets = BTreeSet::new();
        for path in named_paths(&module, &code_of(&text)) {
            // The longest prefix of the path that is a file of the crate.
            let target = (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]));
            if let Some(target) = target.filter(|t| *t != file) {
                targets.insert(target.clone());
            }
        }
        edges.insert(file.clone(), targets);
    }
    Graph { edges, modules }
}

fn top_module(file: &Path) -> String {
    module_of(file)
        .first()
        .cloned()
        .unwrap_or_else(|| "crate root".into())
}

fn layer_of(module: &str) -> Option<(u8, &'static [&'static str])> {
    LAYERS
        .iter()
        .find(|(name, _, _)| *name == module)
        .map(|(_, layer, sideways)| (*layer, *sideways))
}

fn shown(file: &Path) -> String {
    file.strip_prefix(src_dir()).unwrap().display().to_string()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let graph = graph();
    let tops: BTreeSet<String> = graph
        .modules
        .keys()
        .filter_map(|m| m.first().cloned())
        .collect();
    let missing: Vec<&String> = tops.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

#[test]
fn imports_point_down_the_layers_or_along_an_allowed_edge() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (file, targets) in &graph.edges {
        let from = top_module(file);
        let Some((from_layer, sideways)) = layer_of(&from) else {
            continue; // lib.rs and main.rs wire everything
        };
        for target in targets {
            let to = top_module(target);
            if to == from {
                continue;
            }
            let (to_layer, _) = layer_of(&to).expect("every module has a layer");
            let allowed = to_layer < from_layer
                || (to_layer == from_layer && sideways.contains(&to.as_str()));
            if !allowed {
                wrong.push(format!("{} → {}", shown(file), shown(target)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_cycle_of_files_spans_two_layers() {
    let graph = graph();
    let mut cycles = Vec::new();
    for component in strongly_connected(&graph.edges) {
        let layers: BTreeSet<u8> = component
            .iter()
            .filter_map(|f| layer_of(&top_module(f)).map(|(layer, _)| layer))
            .collect();
        if layers.len() > 1 {
            let files: Vec<String> = component.iter().map(|f| shown(f)).collect();
            cycles.push(files.join(", "));
        }
    }
    assert!(
        cycles.is_empty(),
        "cycles across layers:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn database_tables_are_leaves_below_the_use_cases() {
    let graph = graph();
    let db_part = |file: &Path| -> Option<String> {
        let module = module_of(file);
        (module.first().map(String::as_str) == Some("db"))
            .then(|| module.get(1).cloned().unwrap_or_default())
    };
    let mut wrong = Vec::new();
    for (file, targets) in &graph.edges {
        let Some(from) = db_part(file) else { continue };
        for target in targets {
            let Some(to) = db_part(target) else { continue };
            if to == from || to.is_empty() {
                continue;
            }
            let allowed = if DB_TABLES.contains(&from.as_str()) {
                false
            } else if let Some((_, peers)) = DB_USE_CASES.iter().find(|(name, _)| *name == from) {
                DB_TABLES.contains(&to.as_str()) || peers.contains(&to.as_str())
            } else {
                true // db/mod.rs itself
            };
            if !allowed {
                wrong.push(format!("{} → {}", shown(file), shown(target)));
            }
        }
    }
    let known: Vec<&str> = DB_TABLES
        .iter()
        .copied()
        .chain(DB_USE_CASES.iter().map(|(name, _)| *name))
        .collect();
    for file in graph.edges.keys() {
        if let Some(part) = db_part(file).filter(|p| !p.is_empty()) {
            assert!(
                known.contains(&part.as_str()),
                "db/{part} is neither a table nor a use case"
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "db imports against its layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_file_is_a_small_room() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut big = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let total = text.lines().count();
        let code = text
            .find("#[cfg(test)]\nmod tests")
            .map_or(total, |at| text[..at].lines().count());
        if total > MAX_LINES || (total > CODE_LINES && code > CODE_LINES) {
            big.push(format!(
                "{}: {total} lines, {code} outside tests",
                shown(&file)
            ));
        }
    }
    assert!(big.is_empty(), "files too big:\n{}", big.join("\n"));
}

#[test]
fn the_domain_does_no_io() {
    let mut files = Vec::new();
    rust_files(&src_dir().join("domain"), &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for krate in IO_CRATES {
            let named = code_of(&text).lines().any(|line| {
                let line = line.trim_start();
                !line.starts_with("//")
                    && (line.contains(&format!("use {krate}"))
                        || line.contains(&format!("{krate}::"))
                            && !line.contains(&format!("_{krate}::")))
            });
            if named {
                found.push(format!("{} uses {krate}", shown(&file)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "domain/ must stay pure:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_graph_reader_sees_grouped_and_relative_imports() {
    // The checks above are only as good as this reader.
    let module = vec!["bot".to_string(), "handle".to_string()];
    let code = "use crate::{actors::{PipelineHandle, storage::StorageMsg}, db::items};\n\
                use super::replies::render;\nlet x = crate::clock::now_ms();\n\
                let y = $crate::nothing::here; let z = other_crate::db::x;";
    let paths = named_paths(&module, code);
    for expected in [
        vec!["actors", "PipelineHandle"],
        vec!["actors", "storage", "StorageMsg"],
        vec!["db", "items"],
        vec!["bot", "replies", "render"],
        vec!["clock", "now_ms"],
    ] {
        assert!(
            paths.iter().any(|p| p == &expected),
            "{expected:?} not in {paths:?}"
        );
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.first().is_some_and(|s| s == "nothing"))
    );
    assert_eq!(paths.len(), 5, "{paths:?}");
}

/// Tarjan's strongly connected components (iterative enough for a crate's few hundred files).
fn strongly_connected(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        next: usize,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, node: &'a PathBuf) {
        s.index.insert(node, s.next);
        s.low.insert(node, s.next);
        s.next += 1;
        s.stack.push(node);
        s.on_stack.insert(node);
        for next in s.edges.get(node).into_iter().flatten() {
            let Some((next, _)) = s.edges.get_key_value(next) else {
                continue;
            };
            if !s.index.contains_key(next) {
                visit(s, next);
                let low = s.low[next].min(s.low[node]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next) {
                let low = s.index[next].min(s.low[node]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                component.push(top.clone());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in edges.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.out
}
