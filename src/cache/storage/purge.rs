//! Purges of the memory tier: by key set, URL, tag, prefix or everything, hard or soft.

use super::object::StoredObject;
use super::{MemoryStorage, PurgeMode};
use pingora_cache::key::HashBinary;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

impl MemoryStorage {
    /// Removes or expires the objects under `keys`; returns how many there were.
    pub(super) fn purge_keys(
        &self,
        keys: impl IntoIterator<Item = HashBinary>,
        mode: PurgeMode,
    ) -> usize {
        self.purge_epoch.fetch_add(1, Ordering::AcqRel);
        let mut n = 0;
        for key in keys {
            let Some(obj) = self.objects.get(&key) else {
                continue;
            };
            n += 1;
            match mode {
                PurgeMode::Hard => self.objects.invalidate(&key),
                PurgeMode::Soft => {
                    let mut meta = obj.meta.clone();
                    meta.expire_at(SystemTime::now());
                    self.commit(
                        key,
                        StoredObject::new(
                            meta,
                            obj.body.clone(),
                            obj.url.clone(),
                            obj.primary,
                            obj.fill_id,
                        ),
                    );
                }
            }
        }
        n
    }

    /// Purges every variant stored for `url` (a primary key: `http://host/path?query`).
    pub fn purge_url(&self, url: &str, mode: PurgeMode) -> usize {
        self.drop_fills(|fill| &*fill.url == url);
        self.purge_keys(self.indexes.by_url.keys(url), mode)
    }

    /// Purges every object tagged `tag` (`Surrogate-Key` / `Cache-Tag`), through the index.
    pub fn purge_tag(&self, tag: &str, mode: PurgeMode) -> usize {
        self.purge_keys(self.indexes.by_tag.keys(tag), mode)
    }

    /// Purges every object whose URL starts with `prefix`, whichever scheme either names
    /// (routes with `cache_key.scheme` store `https://` keys beside `http://` ones). Scans the
    /// cache.
    pub fn purge_prefix(&self, prefix: &str, mode: PurgeMode) -> usize {
        let prefix = without_scheme(prefix);
        let matches = |url: &str| without_scheme(url).starts_with(prefix);
        self.drop_fills(|fill| matches(&fill.url));
        let keys: Vec<HashBinary> = self
            .objects
            .iter()
            .filter(|(_, obj)| matches(&obj.url))
            .map(|(k, _)| *k)
            .collect();
        self.purge_keys(keys, mode)
    }

    /// Purges everything; returns how many objects there were.
    pub fn purge_all(&self, mode: PurgeMode) -> usize {
        self.drop_fills(|_| true);
        match mode {
            PurgeMode::Hard => {
                self.purge_epoch.fetch_add(1, Ordering::AcqRel);
                let n = self.stats().objects;
                self.objects.invalidate_all();
                self.objects.run_pending_tasks();
                self.indexes.by_url.clear();
                self.indexes.by_tag.clear();
                usize::try_from(n).unwrap_or(usize::MAX)
            }
            PurgeMode::Soft => {
                let keys: Vec<HashBinary> = self.objects.iter().map(|(k, _)| *k).collect();
                self.purge_keys(keys, mode)
            }
        }
    }
}

/// A cache URL without its `scheme://`: `host/path?query`.
fn without_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}
