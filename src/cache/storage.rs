//! `pingora_cache::Storage` on moka: a byte-bounded in-memory cache with streaming fills.
//!
//! Complete objects live in a moka cache weighed in bytes (TinyLFU admission, LRU-ish
//! eviction). An object being filled lives in `fills` until its last byte arrives, and readers
//! coalesced behind the cache lock stream it chunk by chunk as it is written.
//!
//! Metadata is kept parsed ([`StoredMeta`]) rather than serialized: pingora's serialized form
//! compresses headers with zstd, and undoing that on every hit costs more than the hit itself.

use super::index::{surrogate_keys, KeyIndex};
use super::stored_meta::StoredMeta;
use super::variants::VariantIndex;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use handles::{CompleteHit, MemoryMiss, PartialHit};
use moka::ops::compute::{CompResult, Op};
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
use std::time::SystemTime;
use tokio::sync::watch;

/// Fixed per-object overhead counted against the memory bound: the map entry, the `Arc`,
/// the meta's fields and the header map's own allocations.
const OBJECT_OVERHEAD_BYTES: usize = 256;

/// A complete cached response.
struct StoredObject {
    meta: StoredMeta,
    body: Bytes,
    /// The primary cache key (scheme, host, target): what URL purges match.
    url: Arc<str>,
    /// Surrogate keys from the response, for purge by tag.
    tags: Box<[Box<str>]>,
    /// Stored in pingora's primary slot for its URL (no variance).
    primary: bool,
    /// The fill that wrote it: only that fill's refinement may replace its body.
    fill_id: u64,
    /// What this object counts against the memory bound.
    weight: u32,
}

impl StoredObject {
    /// The same object with another (equivalent) body and the fields that describe it.
    fn with_body(&self, refinement: &Refinement) -> StoredObject {
        let mut meta = self.meta.clone();
        meta.set_fields(&refinement.fields);
        meta.set_body_length(refinement.body.len());
        StoredObject::new(
            meta,
            refinement.body.clone(),
            self.url.clone(),
            self.primary,
            self.fill_id,
        )
    }

    fn new(meta: StoredMeta, body: Bytes, url: Arc<str>, primary: bool, fill_id: u64) -> Self {
        let tags = surrogate_keys(meta.headers());
        let tag_bytes: usize = tags.iter().map(|t| t.len()).sum();
        let weight = body.len() + meta.weight() + url.len() + tag_bytes + OBJECT_OVERHEAD_BYTES;
        StoredObject {
            meta,
            body,
            url,
            tags,
            primary,
            fill_id,
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
        }
    }
}

/// The URL and tag indexes, shared with moka's removal listener.
struct Indexes {
    by_url: VariantIndex,
    by_tag: KeyIndex,
}

impl Indexes {
    /// Files `obj`; returns the keys of its URL's variants now past `max_variants`.
    fn add(&self, key: HashBinary, obj: &StoredObject) -> Vec<HashBinary> {
        for tag in obj.tags.iter() {
            self.by_tag.add(tag, key);
        }
        self.by_url.add(&obj.url, key, obj.primary)
    }

    fn remove(&self, key: &HashBinary, obj: &StoredObject) {
        self.by_url.remove(&obj.url, key);
        for tag in obj.tags.iter() {
            self.by_tag.remove(tag, key);
        }
    }
}

/// Whether a purge deletes objects or marks them stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeMode {
    /// Remove: the next request is a miss.
    Hard,
    /// Mark stale: the next request revalidates, and the object still serves stale-if-error.
    Soft,
}

/// Where a fill stands, published to its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FillState {
    /// `chunks` chunks are readable; more may come.
    Writing { chunks: usize },
    /// All `chunks` chunks are written.
    Done { chunks: usize },
    /// The writer went away after `chunks` chunks: readers get those, then an error, so a
    /// truncated body is never taken as whole.
    Aborted { chunks: usize },
}

/// An object being written by the request that missed.
struct Fill {
    id: u64,
    url: Arc<str>,
    /// Written to pingora's primary slot (the key has no variance).
    primary: bool,
    meta: StoredMeta,
    chunks: RwLock<Vec<Bytes>>,
    state: watch::Sender<FillState>,
    /// A refinement (see [`MemoryStorage::refine`]) that arrived before the fill committed:
    /// committed instead of the chunks.
    replacement: Mutex<Option<Refinement>>,
}

impl Fill {
    fn chunk(&self, i: usize) -> Option<Bytes> {
        self.chunks.read().ok()?.get(i).cloned()
    }
}

/// The in-memory cache storage. Created once at startup and leaked: pingora wants `'static`.
pub struct MemoryStorage {
    objects: moka::sync::Cache<HashBinary, Arc<StoredObject>>,
    indexes: Arc<Indexes>,
    fills: Mutex<HashMap<HashBinary, Arc<Fill>>>,
    /// Number of entries in `fills`, so a lookup skips the mutex when nothing is being filled.
    active_fills: AtomicUsize,
    next_fill_id: AtomicU64,
    /// Variants removed because their URL had `max_variants` already.
    variants_replaced: AtomicU64,
    /// Bumped before any purge removes or expires anything: a refinement that began before
    /// a purge must not bring back what the purge removed.
    purge_epoch: AtomicU64,
}

/// An equivalent, better representation of a stored response: a new body (minified,
/// compressed harder) and the header fields that describe it (`Content-Encoding`, a weak
/// `ETag`). `Content-Length` follows the body.
#[derive(Debug, Clone)]
pub struct Refinement {
    pub body: Bytes,
    pub fields: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// A fill's claim to refine what it stores, taken while the fill is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillTicket {
    key: HashBinary,
    fill_id: u64,
    purge_epoch: u64,
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
            active_fills: AtomicUsize::new(0),
            next_fill_id: AtomicU64::new(1),
            variants_replaced: AtomicU64::new(0),
            purge_epoch: AtomicU64::new(0),
        }
    }

    /// The claim of the fill now being written under `key` (a combined cache key), for a
    /// later [`refine`](Self::refine); `None` when nothing is being filled there.
    pub fn fill_ticket(&self, key: &HashBinary) -> Option<FillTicket> {
        let fill = self.fill_for(key)?;
        Some(FillTicket {
            key: *key,
            fill_id: fill.id,
            purge_epoch: self.purge_epoch.load(Ordering::Acquire),
        })
    }

    /// Replaces what a fill stores with an equivalent representation, whether the fill has
    /// committed yet or not. Refused (false) when the object was purged or rewritten since the
    /// ticket was taken: a refinement never brings back old content.
    pub fn refine(&self, ticket: FillTicket, refinement: Refinement) -> bool {
        if self.purge_epoch.load(Ordering::Acquire) != ticket.purge_epoch {
            return false;
        }
        if let Ok(fills) = self.fills.lock() {
            if let Some(fill) = fills.get(&ticket.key).filter(|f| f.id == ticket.fill_id) {
                if let Ok(mut slot) = fill.replacement.lock() {
                    *slot = Some(refinement);
                    return true;
                }
            }
        }
        let purge_epoch = &self.purge_epoch;
        let result = self
            .objects
            .entry(ticket.key)
            .and_compute_with(|current| match current {
                // Checked inside the per-key lock: a purge bumps the epoch before it removes,
                // so either it is seen here or its removal comes after this write.
                Some(entry)
                    if entry.value().fill_id == ticket.fill_id
                        && purge_epoch.load(Ordering::Acquire) == ticket.purge_epoch =>
                {
                    let old = entry.into_value();
                    Op::Put(Arc::new(old.with_body(&refinement)))
                }
                _ => Op::Nop,
            });
        match result {
            CompResult::ReplacedWith(entry) => {
                // moka's listener took the replaced object out of the indexes.
                self.indexes.add(ticket.key, entry.value());
                true
            }
            _ => false,
        }
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

    /// Removes or expires the objects under `keys`; returns how many there were.
    fn purge_keys(&self, keys: impl IntoIterator<Item = HashBinary>, mode: PurgeMode) -> usize {
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

    /// Unregisters the fills `matches` selects, so their finish does not commit.
    fn drop_fills(&self, matches: impl Fn(&Fill) -> bool) {
        self.purge_epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut fills) = self.fills.lock() {
            fills.retain(|_, f| !matches(f));
            self.active_fills.store(fills.len(), Ordering::Release);
        }
    }

    fn fill_for(&self, key: &HashBinary) -> Option<Arc<Fill>> {
        if self.active_fills.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.fills.lock().ok()?.get(key).cloned()
    }

    /// Stores the finished fill `id` of `key`, if it is still the registered one, and then
    /// unregisters it, all under the fill lock.
    fn commit_fill(&self, key: HashBinary, id: u64, obj: StoredObject) {
        let Ok(mut fills) = self.fills.lock() else {
            return;
        };
        if let Some(fill) = fills.get(&key).filter(|f| f.id == id) {
            let replacement = fill.replacement.lock().ok().and_then(|mut r| r.take());
            let obj = match replacement {
                Some(refinement) => obj.with_body(&refinement),
                None => obj,
            };
            self.commit(key, obj);
            fills.remove(&key);
            self.active_fills.store(fills.len(), Ordering::Release);
        }
    }

    /// Removes `key`'s fill if it is still fill `id`; returns whether it was.
    fn unregister_fill(&self, key: &HashBinary, id: u64) -> bool {
        let Ok(mut fills) = self.fills.lock() else {
            return false;
        };
        if fills.get(key).is_some_and(|f| f.id == id) {
            fills.remove(key);
            self.active_fills.store(fills.len(), Ordering::Release);
            true
        } else {
            false
        }
    }

    fn partial_hit(fill: Arc<Fill>) -> Result<Option<(CacheMeta, HitHandler)>> {
        let meta = fill.meta.to_cache_meta();
        let state = fill.state.subscribe();
        let hit = PartialHit {
            fill,
            state,
            next: 0,
        };
        Ok(Some((meta, Box::new(hit))))
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
        let id = self.next_fill_id.fetch_add(1, Ordering::Relaxed);
        let (state, _) = watch::channel(FillState::Writing { chunks: 0 });
        let fill = Arc::new(Fill {
            id,
            // The URL is the key's first line; added request headers follow on their own.
            url: String::from_utf8_lossy(key.primary_key())
                .split('\n')
                .next()
                .unwrap_or("")
                .into(),
            primary: key.variance_bin().is_none(),
            meta: StoredMeta::from_cache_meta(meta),
            chunks: RwLock::new(Vec::new()),
            state,
            replacement: Mutex::new(None),
        });
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

/// A cache URL without its `scheme://`: `host/path?query`.
fn without_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// One `Bytes` for the whole body: free for a single chunk, one copy otherwise.
fn join(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let total = many.iter().map(Bytes::len).sum();
            let mut buf = BytesMut::with_capacity(total);
            for c in many {
                buf.extend_from_slice(c);
            }
            buf.freeze()
        }
    }
}

mod handles;
#[cfg(test)]
mod tests;
