//! Stored keys by URL, oldest first, bounded per URL: what purge by URL reaches, and what
//! keeps `Vary` on a header the client chooses (`User-Agent`) from multiplying objects.
//!
//! pingora keeps the first variant of a URL in its primary slot (the key without variance)
//! and finds the others through it, so past the bound the oldest *secondary* variant goes
//! first: dropping the primary would make every variant of the URL unreachable at once.

use pingora_cache::key::HashBinary;
use std::collections::HashMap;
use std::sync::Mutex;

/// One stored key of a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: HashBinary,
    /// Stored in pingora's primary slot (no variance).
    primary: bool,
}

/// Keys grouped by URL in the order they were stored.
pub(crate) struct VariantIndex {
    map: Mutex<HashMap<Box<str>, Vec<Entry>>>,
    max_per_url: usize,
}

impl VariantIndex {
    pub(crate) fn new(max_per_url: usize) -> Self {
        VariantIndex {
            map: Mutex::new(HashMap::new()),
            max_per_url: max_per_url.max(1),
        }
    }

    /// Files `key` under `url`; returns the keys that now exceed the bound, oldest first,
    /// for the caller to remove once this index's lock is released.
    pub(crate) fn add(&self, url: &str, key: HashBinary, primary: bool) -> Vec<HashBinary> {
        let Ok(mut map) = self.map.lock() else {
            return Vec::new();
        };
        let entries = map.entry(url.into()).or_default();
        if entries.iter().any(|e| e.key == key) {
            return Vec::new();
        }
        entries.push(Entry { key, primary });
        let mut victims = Vec::new();
        while entries.len() > self.max_per_url {
            // Never the entry just added: it is what the client is being served.
            let newest = entries.len() - 1;
            let pick = entries[..newest]
                .iter()
                .position(|e| !e.primary)
                .unwrap_or(0);
            victims.push(entries.remove(pick).key);
        }
        victims
    }

    pub(crate) fn remove(&self, url: &str, key: &HashBinary) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(entries) = map.get_mut(url) {
                entries.retain(|e| e.key != *key);
                if entries.is_empty() {
                    map.remove(url);
                }
            }
        }
    }

    /// The keys filed under `url`; the lock is released before the caller acts on them.
    pub(crate) fn keys(&self, url: &str) -> Vec<HashBinary> {
        self.map
            .lock()
            .ok()
            .and_then(|map| map.get(url).map(|e| e.iter().map(|e| e.key).collect()))
            .unwrap_or_default()
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_the_oldest_secondary_variant_goes() {
        let idx = VariantIndex::new(3);
        assert!(idx.add("u", [0; 16], true).is_empty());
        assert!(idx.add("u", [1; 16], false).is_empty());
        assert!(idx.add("u", [2; 16], false).is_empty());
        assert!(
            idx.add("u", [2; 16], false).is_empty(),
            "a re-store is no new variant"
        );
        assert_eq!(idx.add("u", [3; 16], false), vec![[1; 16]]);
        assert_eq!(idx.add("u", [4; 16], false), vec![[2; 16]]);
        assert_eq!(idx.keys("u"), vec![[0; 16], [3; 16], [4; 16]]);
        assert!(
            idx.add("other", [9; 16], true).is_empty(),
            "bounded per URL"
        );
    }

    #[test]
    fn with_only_primaries_the_oldest_goes_and_removal_empties_the_url() {
        let idx = VariantIndex::new(1);
        assert!(idx.add("u", [0; 16], true).is_empty());
        assert_eq!(idx.add("u", [1; 16], true), vec![[0; 16]]);
        idx.remove("u", &[1; 16]);
        assert!(idx.keys("u").is_empty());
        assert!(idx.map.lock().unwrap().is_empty());
    }
}
