//! The shared part of a configuration: what every node of a cluster serves alike (sites,
//! regions, DNS, limits), published once and merged into each node's own file, whose other
//! tables (`[node]`, `[listen]`, `[cache]`, `[admin]`, ...) stay the node's.

use super::{parse, ConfigError, ConfigErrors, Runtime, Source};
use std::path::Path;

/// The top-level tables a published configuration carries.
pub const SHARED_TABLES: [&str; 4] = ["sites", "regions", "dns", "limits"];

fn is_shared(key: &str) -> bool {
    SHARED_TABLES.contains(&key)
}

/// A version of the shared part as the cluster stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The key-value store's revision of this version (increasing).
    pub revision: u64,
    /// The shared tables, as TOML.
    pub text: String,
}

/// Why a text could not be split or merged (before validation).
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("not a TOML document: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("cannot write the merged configuration: {0}")]
    Write(#[from] toml::ser::Error),
}

/// The shared tables of a whole configuration `text`, as a TOML document of their own.
pub fn shared_part(text: &str) -> Result<String, SharedError> {
    let mut table: toml::Table = text.parse()?;
    table.retain(|key, _| is_shared(key));
    Ok(toml::to_string(&table)?)
}

/// `own` (a node's file) with its shared tables replaced by those of `shared`: a shared
/// table the node's file has and the published part lacks is removed, so every node serves
/// the same sites, regions, DNS and limits.
pub fn merge(own: &str, shared: &str) -> Result<String, SharedError> {
    let mut table: toml::Table = own.parse()?;
    table.retain(|key, _| !is_shared(key));
    let shared: toml::Table = shared.parse()?;
    for (key, value) in shared {
        if is_shared(&key) {
            table.insert(key, value);
        }
    }
    Ok(toml::to_string(&table)?)
}

/// Reads the node's file at `path` and validates it with `shared` merged in (paths in it stay
/// relative to `path`). Errors name the keys; their lines are those of the merged text.
pub fn load_merged(path: &Path, shared: &str) -> Result<Runtime, ConfigErrors> {
    let own = super::read(path)?;
    let merged = merge(&own, shared).map_err(|e| {
        ConfigErrors(vec![ConfigError::whole_file(
            path,
            format!("cannot merge the shared configuration: {e}"),
        )])
    })?;
    parse(&Source::new(path, merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = r#"
[node]
name = "edge-2"
location = { lat = 1.0, lon = 2.0 }
[listen]
http = ["127.0.0.1:8082"]
[limits]
max_headers = 10
[[regions]]
name = "old"
location = { lat = 0.0, lon = 0.0 }
origins = ["127.0.0.1:1"]
"#;

    const PUBLISHED: &str = r#"
[node]
name = "edge-1"
location = { lat = 9.0, lon = 9.0 }
[listen]
http = ["127.0.0.1:8081"]
[[regions]]
name = "new"
location = { lat = 0.0, lon = 0.0 }
origins = ["127.0.0.1:2"]
[[sites]]
name = "s"
hosts = ["a.test"]
[[sites.routes]]
path = "/"
"#;

    #[test]
    fn the_shared_part_keeps_only_the_shared_tables() {
        let part: toml::Table = shared_part(PUBLISHED).unwrap().parse().unwrap();
        let keys: Vec<&String> = part.keys().collect();
        assert_eq!(keys, ["regions", "sites"]);
    }

    #[test]
    fn merging_keeps_the_nodes_own_tables_and_takes_every_shared_one_from_the_part() {
        let part = shared_part(PUBLISHED).unwrap();
        let merged: toml::Table = merge(OWN, &part).unwrap().parse().unwrap();
        assert_eq!(merged["node"]["name"].as_str(), Some("edge-2"));
        assert_eq!(merged["listen"]["http"][0].as_str(), Some("127.0.0.1:8082"));
        assert_eq!(merged["regions"][0]["name"].as_str(), Some("new"));
        assert_eq!(merged["sites"][0]["routes"][0]["path"].as_str(), Some("/"));
        assert!(
            !merged.contains_key("limits"),
            "the published part has none"
        );
        assert!(matches!(merge("[node", &part), Err(SharedError::Syntax(_))));
    }
}
