//! The configuration reference (docs/configuration.md) is checked against the code: every
//! key the parser accepts is documented there, and every documented key exists. Keys are
//! discovered from the parser itself: a probe key in each table makes serde list the
//! table's fields ("unknown field, expected one of ..."), and a field that takes a probe
//! table is a table to descend into.

use crate::config::file::FileConfig;
use std::collections::BTreeSet;

const PROBE: &str = "zz_probe";

/// How a path component is written in a TOML header.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Table,
    Array,
}

/// A document whose deepest table, at `path`, holds only the probe key.
fn probe_document(path: &[(String, Kind)]) -> String {
    let mut doc = String::new();
    for depth in 1..=path.len() {
        let name: Vec<&str> = path[..depth].iter().map(|(n, _)| n.as_str()).collect();
        let name = name.join(".");
        match path[depth - 1].1 {
            Kind::Table => doc.push_str(&format!("[{name}]\n")),
            Kind::Array => doc.push_str(&format!("[[{name}]]\n")),
        }
    }
    doc.push_str(&format!("{PROBE} = 0\n"));
    doc
}

/// The fields of the table at `path`, if it is a table the parser checks.
fn fields_at(path: &[(String, Kind)]) -> Option<Vec<String>> {
    let err = toml::from_str::<FileConfig>(&probe_document(path)).err()?;
    let message = err.message().to_owned();
    let listed = message.strip_prefix(&format!("unknown field `{PROBE}`, "))?;
    let listed = listed
        .strip_prefix("expected one of ")
        .or_else(|| listed.strip_prefix("expected "))?;
    // "expected `a`", "expected `a` or `b`", "expected one of `a`, `b`, `c`".
    Some(
        listed
            .split(", ")
            .flat_map(|f| f.split(" or "))
            .map(|f| f.trim_matches('`').to_owned())
            .collect(),
    )
}

/// Every key path the parser accepts: leaves, and tables (marked with a trailing `.`).
fn discovered() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![Vec::<(String, Kind)>::new()];
    while let Some(path) = stack.pop() {
        let Some(fields) = fields_at(&path) else {
            continue;
        };
        for field in fields {
            let dotted = |p: &[(String, Kind)]| {
                p.iter()
                    .map(|(n, _)| n.as_str())
                    .chain([field.as_str()])
                    .collect::<Vec<_>>()
                    .join(".")
            };
            let mut deeper = None;
            for kind in [Kind::Table, Kind::Array] {
                let mut p = path.clone();
                p.push((field.clone(), kind));
                if fields_at(&p).is_some() {
                    deeper = Some(p);
                    break;
                }
            }
            match deeper {
                Some(p) => {
                    out.insert(format!("{}.", dotted(&path)));
                    stack.push(p);
                }
                None => {
                    out.insert(dotted(&path));
                }
            }
        }
    }
    out
}

/// Tables that take the keys of another, documented once under that one's name.
const SAME_KEYS_AS: &[(&str, &str)] = &[
    ("regions.origins.health_check.", "regions.health_check."),
    ("dns.edges.health_check.", "regions.health_check."),
    ("shield.health_check.", "regions.health_check."),
    ("sites.routes.compression.", "compression."),
];

/// A table of at most this many keys may be documented as one row (`node.location` as
/// `{ lat, lon }`); larger tables list each key.
const WHOLE_TABLE_MAX_KEYS: usize = 3;

fn canonical(key: &str) -> String {
    for (from, to) in SAME_KEYS_AS {
        if let Some(rest) = key.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    key.to_owned()
}

/// The keys the reference documents: the backquoted names in the first cell of each row of
/// its tables.
fn documented() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let Some(cell) = line.strip_prefix("| `").map(|_| line.split('|').nth(1)) else {
            continue;
        };
        for (i, part) in cell.unwrap_or("").split('`').enumerate() {
            if i % 2 == 1 {
                keys.insert(part.to_owned());
            }
        }
    }
    keys
}

#[test]
fn every_configuration_key_is_in_the_reference_and_every_documented_key_exists() {
    let found = discovered();
    let documented = documented();
    assert!(
        documented.len() > 50,
        "docs/configuration.md lists {} keys: is the file there?",
        documented.len()
    );
    // A table may be named as written (`sites.routes.compression`) or as documented.
    let tables: BTreeSet<String> = found
        .iter()
        .filter(|k| k.ends_with('.'))
        .flat_map(|t| [t.clone(), canonical(t)])
        .map(|t| t.trim_end_matches('.').to_owned())
        .collect();
    let leaves: BTreeSet<String> = found
        .iter()
        .filter(|k| !k.ends_with('.'))
        .map(|k| canonical(k))
        .collect();
    let leaves_of = |table: &str| {
        leaves
            .iter()
            .filter(|l| {
                l.strip_prefix(table)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| !r.contains('.'))
            })
            .count()
    };
    let undocumented: Vec<&String> = leaves
        .iter()
        .filter(|leaf| {
            let parent = leaf.rsplit_once('.').map_or("", |(p, _)| p);
            let whole_table =
                documented.contains(parent) && leaves_of(parent) <= WHOLE_TABLE_MAX_KEYS;
            !(documented.contains(*leaf) || whole_table)
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys the parser accepts that docs/configuration.md does not document: {undocumented:?}"
    );
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|k| !leaves.contains(*k) && !tables.contains(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "keys docs/configuration.md documents that the parser does not accept: {unknown:?}"
    );
}

#[test]
fn discovery_finds_nested_tables_arrays_and_leaves() {
    let found = discovered();
    for key in [
        "node.name",
        "node.location.lat",
        "sites.routes.cache_key.",
        "sites.routes.cache_key.scheme",
        "dns.zones.records.type",
        "regions.origins.weight",
    ] {
        assert!(found.contains(key), "{key} not discovered in {found:?}");
    }
}
