//! The layered map of docs/architecture.md, enforced: every top-level module of the library
//! has a layer, every arrow between two of them (a `crate::` path, or a `super::` path that
//! climbs to the crate root) points to the same layer or one below, and no two modules reach
//! each other through any chain of arrows. A new module, a new upward arrow or a new cycle
//! fails here, naming the file that made it.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top first (the crate's entry, `main.rs` and `cli.rs`, sits above them all).
const LAYERS: &[(&str, &[&str])] = &[
    ("node wiring", &["node"]),
    (
        "services",
        &["edge", "guard", "tls", "dns", "admin", "demo", "cluster"],
    ),
    ("shared regions view", &["regions"]),
    (
        "foundations",
        &[
            "cache",
            "transform",
            "geo",
            "config",
            "metrics",
            "access_log",
            "telemetry",
        ],
    ),
    ("vocabulary", &["vocab"]),
];

/// Files of the binary, not of the library.
const ENTRY: &[&str] = &["main.rs", "cli.rs", "lib.rs"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
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

/// The top-level module a file belongs to, and how many `super::` reach the crate root.
fn place(relative: &Path) -> (String, usize) {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let top = parts[0].trim_end_matches(".rs").to_owned();
    let last = parts.last().unwrap();
    let depth = parts.len() - usize::from(last == "mod.rs" && parts.len() > 1);
    (top, depth)
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Top-level modules named by `crate::` paths (including `crate::{a, b::c}` groups) and by
/// `super::` chains of exactly `depth` steps.
fn referenced(text: &str, depth: usize) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    // Comments name modules too ("see crate::x"); only code counts.
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut nesting = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => nesting += 1,
                    '}' if nesting == 0 => {
                        found.insert(ident(group[start..j].trim()).to_owned());
                        break;
                    }
                    '}' => nesting -= 1,
                    ',' if nesting == 0 => {
                        found.insert(ident(group[start..j].trim()).to_owned());
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest).to_owned());
        }
    }
    let climb = "super::".repeat(depth);
    for (i, _) in code.match_indices(&climb) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c == ':' || c.is_ascii_alphanumeric()) {
            continue; // a longer chain, counted at its own depth
        }
        found.insert(ident(&code[i + climb.len()..]).to_owned());
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Every arrow between top-level modules, with a file that draws it.
fn arrows() -> BTreeMap<(String, String), PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    for f in &files {
        let relative = f.strip_prefix(&src).unwrap();
        if !ENTRY.contains(&relative.to_str().unwrap()) {
            modules.insert(place(relative).0);
        }
    }
    let mut arrows = BTreeMap::new();
    for f in &files {
        let relative = f.strip_prefix(&src).unwrap();
        if ENTRY.contains(&relative.to_str().unwrap()) {
            continue;
        }
        let (from, depth) = place(relative);
        let text = std::fs::read_to_string(f).unwrap();
        for to in referenced(&text, depth) {
            if to != from && modules.contains(&to) {
                arrows
                    .entry((from.clone(), to))
                    .or_insert_with(|| relative.to_path_buf());
            }
        }
    }
    arrows
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let unplaced: BTreeSet<String> = files
        .iter()
        .map(|f| f.strip_prefix(&src).unwrap())
        .filter(|r| !ENTRY.contains(&r.to_str().unwrap()))
        .map(|r| place(r).0)
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer: {unplaced:?}; place them in LAYERS here and in \
         docs/architecture.md"
    );
}

#[test]
fn arrows_between_top_level_modules_point_down() {
    let upward: Vec<String> = arrows()
        .into_iter()
        .filter_map(|((from, to), file)| {
            let (f, t) = (layer_of(&from)?, layer_of(&to)?);
            (t < f).then(|| {
                format!(
                    "{from} ({}) -> {to} ({}) in src/{}",
                    LAYERS[f].0,
                    LAYERS[t].0,
                    file.display()
                )
            })
        })
        .collect();
    assert!(
        upward.is_empty(),
        "arrows pointing up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_two_top_level_modules_reach_each_other() {
    let arrows = arrows();
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in arrows.keys() {
        next.entry(from).or_default().push(to);
    }
    // Depth-first search from each module; a path back to it is a cycle.
    let mut cycles = Vec::new();
    for &start in next.keys() {
        let mut stack = vec![vec![start]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let here = *path.last().unwrap();
            for &to in next.get(here).map_or(&[][..], Vec::as_slice) {
                if to == start {
                    let files: Vec<String> = path
                        .iter()
                        .zip(path.iter().skip(1).chain([&start]))
                        .map(|(a, b)| {
                            let file = &arrows[&((*a).to_owned(), (*b).to_owned())];
                            format!("{a} -> {b} (src/{})", file.display())
                        })
                        .collect();
                    cycles.push(files.join(", "));
                } else if seen.insert(to) {
                    let mut longer = path.clone();
                    longer.push(to);
                    stack.push(longer);
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_scanner_sees_paths_groups_and_climbs() {
    let text = "use crate::{cache::{policy, target}, config};\n\
                use crate::geo::distance; // crate::dns in a comment\n\
                fn f() { super::super::metrics::x(); super::local(); }";
    let found: Vec<String> = referenced(text, 2).into_iter().collect();
    assert_eq!(found, ["cache", "config", "geo", "metrics"]);
}
