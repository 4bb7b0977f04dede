//! `pingora_cache::Storage` on moka: a byte-bounded in-memory cache with streaming fills.
//!
//! Complete objects live in a moka cache weighed in bytes (TinyLFU admission, LRU-ish
//! eviction). An object being filled lives in `fills` until its last byte arrives, and readers
//! coalesced behind the cache lock stream it chunk by chunk as it is written.
//!
//! Metadata is kept parsed ([`StoredMeta`]) rather than serialized: pingora's serialized form
//! compresses headers with zstd, and undoing that on every hit costs more than the hit itself.

//! The parts: `object` (a stored object, its weight, the URL and tag indexes), `fills`
//! (objects being written, followed by coalesced readers, and their refinement), `purge`
//! (removal and expiry by key, URL, tag, prefix or all), `handles` (pingora's hit and miss
//! handles). This file holds the store itself and pingora's `Storage` trait over it.

mod fills;
mod handles;
mod object;
mod purge;
#[cfg(test)]
mod tests;

pub use fills::{FillTicket, Refinement};

use super::index::KeyIndex;
use super::stored_meta::StoredMeta;
use super::variants::VariantIndex;
use async_trait::async_trait;
use fills::{Fill, FillState};
use handles::{CompleteHit, MemoryMiss};
use object::{Indexes, StoredObject};
use pingora_cache::key::{CacheHashKey, HashBinary};
use pingora_cache::storage::{
    HitHandler, MissHandler, PurgeOutcome, PurgeTarget, PurgeType, Storage,
};
use pingora_cache::trace::SpanHandle;
use pingora_cache::{CacheKey, CacheMeta};
use pingora_error::{Error, ErrorType, Result};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// A complete object copied out of memory.
pub struct StoredCopy {
    pub meta: CacheMeta,
    pub body: bytes::Bytes,
    pub url: String,
    pub tags: Vec<String>,
}

/// The URL a cache key was made from: its primary key's first line (added request headers
/// follow on their own lines).
pub fn primary_url(key: &CacheKey) -> Arc<str> {
    String::from_utf8_lossy(key.primary_key())
        .split('\n')
        .next()
        .unwrap_or("")
        .into()
}

/// Whether a purge deletes objects or marks them stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PurgeMode {
    /// Remove: the next request is a miss.
    Hard,
    /// Mark stale: the next request revalidates, and the object still serves stale-if-error.
    Soft,
}

/// The in-memory cache storage. Created once at startup and leaked: pingora wants `'static`.
pub struct MemoryStorage {
    objects: moka::sync::Cache<HashBinary, Arc<StoredObject>>,
    indexes: Arc<Indexes>,
    fills: Mutex<HashMap<HashBinary, Arc<Fill>>>,
    /// Pass-through fills by id, found only by their own writer's session.
    passing: Mutex<HashMap<u64, Arc<Fill>>>,
    /// Number of entries in `fills`, so a lookup skips the mutex when nothing is being filled.
    active_fills: AtomicUsize,
    next_fill_id: AtomicU64,
    /// Variants removed because their URL had `max_variants` already.
    variants_replaced: AtomicU64,
    /// Bumped before any purge removes or expires anything: a refinement that began before
    /// a purge must not bring back what the purge removed.
    purge_epoch: AtomicU64,
}

/// What the cache holds, for metrics and `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageStats {
    /// Bytes counted against the memory bound.
    pub bytes: u64,
    /// Complete objects held.
    pub objects: u64,
    /// Variants replaced since start because their URL had `max_variants` already.
    pub variants_replaced: u64,
}

impl MemoryStorage {
    /// A storage holding at most `memory_bytes` (bodies, headers and per-object overhead),
    /// and at most `max_variants` objects per URL.
    pub fn new(memory_bytes: u64, max_variants: usize) -> Self {
        let indexes = Arc::new(Indexes {
            by_url: VariantIndex::new(max_variants),
            by_tag: KeyIndex::default(),
        });
        let listener_indexes = indexes.clone();
        let objects = moka::sync::Cache::builder()
            .max_capacity(memory_bytes)
            .weigher(|_k: &HashBinary, v: &Arc<StoredObject>| v.weight)
            // Runs inside `insert` for a replaced entry, so re-adding after an insert is safe.
            .eviction_listener(move |k: Arc<HashBinary>, v: Arc<StoredObject>, _cause| {
                listener_indexes.remove(&k, &v);
            })
            .build();
        MemoryStorage {
            objects,
            indexes,
            fills: Mutex::new(HashMap::new()),
            passing: Mutex::new(HashMap::new()),
            active_fills: AtomicUsize::new(0),
            next_fill_id: AtomicU64::new(1),
            variants_replaced: AtomicU64::new(0),
            purge_epoch: AtomicU64::new(0),
        }
    }

    /// Puts a complete object read from the disk tier into memory (a promotion).
    pub(crate) fn promote(&self, key: &CacheKey, meta: StoredMeta, body: bytes::Bytes) {
        let url = primary_url(key);
        let obj = StoredObject::new(meta, body, url, key.variance_bin().is_none(), 0);
        self.commit(key.combined_bin(), obj);
    }

    /// The most bytes the memory tier holds (`cache.memory`).
    pub fn capacity(&self) -> u64 {
        self.objects.policy().max_capacity().unwrap_or(u64::MAX)
    }

    fn new_fill(&self, key: &CacheKey, meta: &CacheMeta, kept: bool) -> Arc<Fill> {
        let (state, _) = watch::channel(FillState::Writing { chunks: 0 });
        Arc::new(Fill {
            id: self.next_fill_id.fetch_add(1, Ordering::Relaxed),
            url: primary_url(key),
            primary: key.variance_bin().is_none(),
            meta: StoredMeta::from_cache_meta(meta),
            chunks: RwLock::new(Vec::new()),
            state,
            replacement: Mutex::new(None),
            kept,
        })
    }

    /// A fill that stores nothing in memory: for an object larger than the memory tier takes
    /// (it goes to the disk tier, or nowhere). The writer's own session reads it back chunk
    /// by chunk as pingora requires, each chunk freed once read, so the body is never held
    /// whole; other requests do not follow it (they find no object and fetch it themselves).
    pub fn pass_through_miss(&'static self, key: &CacheKey, meta: &CacheMeta) -> MissHandler {
        let fill = self.new_fill(key, meta, false);
        if let Ok(mut passing) = self.passing.lock() {
            passing.insert(fill.id, fill.clone());
        }
        Box::new(MemoryMiss {
            storage: self,
            key: key.combined_bin(),
            tag: fill.id.to_be_bytes(),
            fill,
            finished: false,
        })
    }

    fn passing_fill(&self, id: u64) -> Option<Arc<Fill>> {
        self.passing.lock().ok()?.get(&id).cloned()
    }

    /// Forgets pass-through fill `id`.
    pub(super) fn end_pass_through(&self, id: u64) {
        if let Ok(mut passing) = self.passing.lock() {
            passing.remove(&id);
        }
    }

    /// Whether a complete object (not a fill in progress) is stored under `key`.
    pub fn holds_complete(&self, key: &HashBinary) -> bool {
        self.objects.contains_key(key)
    }

    /// A copy of the complete object under `key` (meta, body, URL, tags), for the disk tier
    /// to store.
    pub fn complete(&self, key: &HashBinary) -> Option<StoredCopy> {
        let obj = self.objects.get(key)?;
        Some(StoredCopy {
            meta: obj.meta.to_cache_meta(),
            body: obj.body.clone(),
            url: obj.url.to_string(),
            tags: obj.tags.iter().map(|t| t.to_string()).collect(),
        })
    }

    /// Current size; runs moka's pending evictions first so the numbers are settled.
    pub fn stats(&self) -> StorageStats {
        self.objects.run_pending_tasks();
        StorageStats {
            bytes: self.objects.weighted_size(),
            objects: self.objects.entry_count(),
            variants_replaced: self.variants_replaced.load(Ordering::Relaxed),
        }
    }

    /// Stores `obj` under `key` and files it in the indexes; past `max_variants` for its URL,
    /// the oldest variant is removed.
    fn commit(&self, key: HashBinary, obj: StoredObject) {
        let obj = Arc::new(obj);
        self.objects.insert(key, obj.clone());
        // Removed after the index lock is released: moka's listener takes it again.
        for victim in self.indexes.add(key, &obj) {
            self.objects.invalidate(&victim);
            self.variants_replaced.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let hash = key.combined_bin();
        // A fill in progress is newer than any stored object for the key (which is stale, or
        // the fill would not have started), so readers follow the fill.
        if let Some(fill) = self.fill_for(&hash) {
            return Self::partial_hit(fill);
        }
        let Some(obj) = self.objects.get(&hash) else {
            return Ok(None);
        };
        let meta = obj.meta.to_cache_meta();
        let end = obj.body.len();
        let hit = CompleteHit {
            body: obj.body.clone(),
            start: 0,
            end,
            done: false,
        };
        Ok(Some((meta, Box::new(hit))))
    }

    async fn lookup_streaming_write(
        &'static self,
        key: &CacheKey,
        streaming_write_tag: Option<&[u8]>,
        trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(tag) = streaming_write_tag.and_then(|t| <[u8; 8]>::try_from(t).ok()) else {
            return self.lookup(key, trace).await;
        };
        let id = u64::from_be_bytes(tag);
        if let Some(fill) = self.passing_fill(id) {
            return Self::partial_hit(fill);
        }
        match self.fill_for(&key.combined_bin()) {
            Some(fill) if fill.id == id => Self::partial_hit(fill),
            // The write already finished (or was replaced): only that write may be returned.
            _ => Ok(None),
        }
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let hash = key.combined_bin();
        let fill = self.new_fill(key, meta, true);
        let id = fill.id;
        {
            let mut fills = self
                .fills
                .lock()
                .map_err(|_| Error::explain(ErrorType::InternalError, "cache fill map poisoned"))?;
            // A newer writer replaces an older one; the older one's finish will then not commit.
            fills.insert(hash, fill.clone());
            self.active_fills.store(fills.len(), Ordering::Release);
        }
        Ok(Box::new(MemoryMiss {
            storage: self,
            key: hash,
            fill,
            tag: id.to_be_bytes(),
            finished: false,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hash = target.key().combined_bin();
        self.purge_epoch.fetch_add(1, Ordering::AcqRel);
        let fill_removed = match self.fills.lock() {
            Ok(mut fills) => {
                let removed = fills.remove(&hash).is_some();
                self.active_fills.store(fills.len(), Ordering::Release);
                removed
            }
            Err(_) => false,
        };
        let object_removed = self.objects.remove(&hash).is_some();
        Ok(if fill_removed || object_removed {
            PurgeOutcome::Purged(None)
        } else {
            PurgeOutcome::NotFound
        })
    }

    async fn expire(
        &'static self,
        target: PurgeTarget<'_>,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hash = target.key().combined_bin();
        Ok(match self.purge_keys([hash], PurgeMode::Soft) {
            0 => PurgeOutcome::NotFound,
            _ => PurgeOutcome::Expired,
        })
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let hash = key.combined_bin();
        let Some(obj) = self.objects.get(&hash) else {
            return Ok(false);
        };
        let updated = StoredObject::new(
            StoredMeta::from_cache_meta(meta),
            obj.body.clone(),
            obj.url.clone(),
            obj.primary,
            obj.fill_id,
        );
        self.commit(hash, updated);
        Ok(true)
    }

    fn support_streaming_partial_write(&self) -> bool {
        true
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}
