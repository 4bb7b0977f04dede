//! Secondary indexes of the cache: stored keys by URL and by surrogate key (tag).
//!
//! Purging a URL must reach every variant, and purging a tag must not scan the cache, so the
//! storage records each committed object here and the moka removal listener takes it out.

use pingora_cache::key::HashBinary;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Keys grouped by a name (a URL or a tag).
#[derive(Default)]
pub(crate) struct KeyIndex {
    map: Mutex<HashMap<Box<str>, HashSet<HashBinary>>>,
}

impl KeyIndex {
    pub(crate) fn add(&self, name: &str, key: HashBinary) {
        if let Ok(mut map) = self.map.lock() {
            map.entry(name.into()).or_default().insert(key);
        }
    }

    pub(crate) fn remove(&self, name: &str, key: &HashBinary) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(set) = map.get_mut(name) {
                set.remove(key);
                if set.is_empty() {
                    map.remove(name);
                }
            }
        }
    }

    /// The keys filed under `name`; the lock is released before the caller acts on them.
    pub(crate) fn keys(&self, name: &str) -> Vec<HashBinary> {
        self.map
            .lock()
            .ok()
            .and_then(|map| map.get(name).map(|s| s.iter().copied().collect()))
            .unwrap_or_default()
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }
}

/// Surrogate keys of a response: `Surrogate-Key` (Fastly, space-separated) and `Cache-Tag`
/// (Cloudflare, comma-separated), deduplicated.
pub(crate) fn surrogate_keys(headers: &http::HeaderMap) -> Box<[Box<str>]> {
    let mut out: Vec<Box<str>> = Vec::new();
    let split = |name: &str, sep: fn(char) -> bool| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(move |v| v.split(sep))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Box::<str>::from)
            .collect::<Vec<_>>()
    };
    for tag in split("surrogate-key", char::is_whitespace)
        .into_iter()
        .chain(split("cache-tag", |c| c == ','))
    {
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogate_keys_come_from_both_headers_deduplicated() {
        let mut h = http::HeaderMap::new();
        h.append("surrogate-key", "a  b".parse().unwrap());
        h.append("cache-tag", "b, c,".parse().unwrap());
        let keys = surrogate_keys(&h);
        let keys: Vec<&str> = keys.iter().map(|k| &**k).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    #[test]
    fn keys_are_added_listed_and_removed() {
        let idx = KeyIndex::default();
        idx.add("t", [1; 16]);
        idx.add("t", [2; 16]);
        let mut keys = idx.keys("t");
        keys.sort();
        assert_eq!(keys, [[1; 16], [2; 16]]);
        idx.remove("t", &[1; 16]);
        idx.remove("t", &[2; 16]);
        assert!(idx.keys("t").is_empty());
        assert_eq!(idx.len(), 0, "empty names are dropped");
    }
}
