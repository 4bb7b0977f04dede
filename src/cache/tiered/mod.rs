//! The cache's two tiers behind pingora's one `Storage`: memory first, the disk beneath.
//!
//! - A lookup tries memory; on a miss it tries the disk (from the page cache at once, else on
//!   the blocking pool) and streams the body from there (or hands out its file regions, for
//!   `sendfile`: [`hit`]). A key hit twice on disk within about a memory tier's worth of disk
//!   hits is promoted (the body it streams is kept in memory) when it fits the memory tier's
//!   `max_object`.
//! - The disk takes a key on its second request (TinyLFU's doorkeeper, chosen by measurement:
//!   benches/results/2026-12-01-vm/disk-policy.md): a second miss streams its fill to disk
//!   as it streams to the client; a memory hit on a key not yet on disk queues a copy of the
//!   memory object. One-hit wonders never cost a disk write.
//! - Every disk write goes through one writer thread ([`writer`]); purges go through it too,
//!   so a purge always lands after the writes sent before it and stops fills it selects.
//!
//! Without `[cache.disk]` the memory storage is handed to pingora directly: the memory-only
//! node pays nothing for the tiering. With it, the tier opens in the background and the node
//! serves from memory until it is ready.

mod checkpoints;
pub mod hit;
mod meta;
pub mod miss;
mod tier;
pub mod writer;

pub use checkpoints::DiskCheckpoints;
pub use tier::DiskTier;

use super::disk::record::{Purge, Selector};
use super::index::surrogate_keys;
use super::storage::primary_url;
use super::{MemoryStorage, PurgeMode};
use crate::config::runtime::DiskSettings;
use async_trait::async_trait;
use hit::{DiskHit, Promotion};
use meta::{decode_meta, encode_meta};
use miss::TieredMiss;
use pingora_cache::key::CacheHashKey;
use pingora_cache::storage::{
    HitHandler, MissHandler, PurgeOutcome, PurgeTarget, PurgeType, Storage,
};
use pingora_cache::trace::SpanHandle;
use pingora_cache::{CacheKey, CacheMeta};
use pingora_error::Result;
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;
use tier::open_tier;

/// Marks a hit served from the disk tier, for `Cache-Status` and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromDisk;

/// The cache's storage: memory, and the disk tier when configured.
pub struct TieredStorage {
    memory: &'static MemoryStorage,
    /// `[cache.disk]` is set: pingora is given this storage, not the memory one.
    disk_configured: bool,
    /// The disk tier once it is open (in the background: see [`open_disk`](Self::open_disk)).
    disk: OnceLock<DiskTier>,
    /// Purges made while the tier was opening, applied to it before it serves.
    pending_purges: Mutex<Vec<Purge>>,
    /// The tier could not be opened: the node caches in memory only.
    disk_failed: AtomicBool,
    /// The memory tier's largest object (`cache.max_object`); larger ones go to disk only.
    memory_max_object: u64,
    /// Lookups skip the disk tier: what it holds was stored before this process started,
    /// and the cluster's purges made meanwhile have not all been applied yet.
    disk_held: AtomicBool,
}

impl TieredStorage {
    pub fn new(
        memory: &'static MemoryStorage,
        disk_configured: bool,
        memory_max_object: u64,
    ) -> TieredStorage {
        TieredStorage {
            memory,
            disk_configured,
            disk: OnceLock::new(),
            pending_purges: Mutex::new(Vec::new()),
            disk_failed: AtomicBool::new(false),
            memory_max_object,
            disk_held: AtomicBool::new(false),
        }
    }

    /// Serves nothing from the disk tier until [`release_disk`](Self::release_disk): the
    /// cluster replays the purges this node missed first (fills still go to it).
    pub fn hold_disk(&self) {
        self.disk_held.store(true, Ordering::Release);
    }

    pub fn release_disk(&self) {
        self.disk_held.store(false, Ordering::Release);
    }

    /// Whether disk lookups are held (see [`hold_disk`](Self::hold_disk)).
    pub fn disk_held(&self) -> bool {
        self.disk_held.load(Ordering::Acquire)
    }

    /// The largest response the cache takes: the disk tier's `max_object` once it is open,
    /// else the memory tier's (`memory_max`, from the configuration in force).
    pub fn max_object(&self, memory_max: usize) -> usize {
        match self.disk() {
            Some(disk) if disk.store.writable() => {
                usize::try_from(disk.store.config().max_object).unwrap_or(usize::MAX)
            }
            _ => memory_max,
        }
    }

    /// Opens the disk tier on a thread of its own, and serves from memory alone until it is
    /// ready: a node with a million objects on disk answers at once, and a process taking the
    /// sockets over (graceful upgrade) waits for the old one to let go of the directory (an
    /// exclusive `flock` on `path/lock`) without refusing a request meanwhile. A failure is
    /// logged and leaves the node caching in memory.
    pub fn open_disk(&'static self, settings: DiskSettings) {
        let spawned = std::thread::Builder::new()
            .name("disk-open".into())
            .spawn(move || {
                let path = settings.path.display().to_string();
                match open_tier(&settings, self.memory_max_object, self.memory.capacity()) {
                    Ok(tier) => {
                        log::info!(
                            "disk cache {path}: ready, {} objects",
                            tier.store.stats().objects
                        );
                        // Under the lock purges take: none can slip between these and serving.
                        let mut pending = self
                            .pending_purges
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        for purge in pending.drain(..) {
                            if let Err(e) = tier.store.purge(purge) {
                                log::error!("disk cache {path}: purge: {e}");
                            }
                        }
                        let _ = self.disk.set(tier);
                        // The checkpoint just read was consumed: without a new one, a crash
                        // before the next periodic one would cost a scan of the whole log.
                        if let Some(tier) = self.disk() {
                            if let Err(e) = tier.store.checkpoint() {
                                log::warn!("disk cache {path}: checkpoint after opening: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        log::error!("disk cache {path}: {e}; caching in memory only");
                        self.disk_failed.store(true, Ordering::Release);
                        self.pending_purges
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .clear();
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("disk cache: cannot start opening it: {e}; caching in memory only");
        }
    }

    pub fn memory(&self) -> &'static MemoryStorage {
        self.memory
    }

    /// The disk tier, once it is open.
    pub fn disk(&self) -> Option<&DiskTier> {
        self.disk.get()
    }

    /// Whether `[cache.disk]` is configured (ready or not yet).
    pub fn disk_configured(&self) -> bool {
        self.disk_configured
    }

    /// What pingora is given: the memory storage itself when there is no disk tier.
    pub fn for_pingora(&'static self) -> &'static (dyn Storage + Sync) {
        if self.disk_configured {
            self
        } else {
            self.memory
        }
    }

    fn purge_disk(&self, selector: Selector, mode: PurgeMode) {
        if !self.disk_configured || self.disk_failed.load(Ordering::Acquire) {
            return;
        }
        let purge = Purge {
            selector,
            soft: mode == PurgeMode::Soft,
        };
        let mut pending = self
            .pending_purges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match self.disk() {
            Some(disk) => disk.writer.purge(purge),
            // Still opening (or failed to): kept for it, so a purge is never lost.
            None => pending.push(purge),
        }
    }

    /// Purges every variant of `url` in both tiers; returns the memory objects purged (the
    /// disk's are purged by a rule applied when they are looked up).
    pub fn purge_url(&self, url: &str, mode: PurgeMode) -> usize {
        self.purge_disk(Selector::Url(url.to_owned()), mode);
        self.memory.purge_url(url, mode)
    }

    pub fn purge_prefix(&self, prefix: &str, mode: PurgeMode) -> usize {
        self.purge_disk(Selector::Prefix(prefix.to_owned()), mode);
        self.memory.purge_prefix(prefix, mode)
    }

    pub fn purge_tag(&self, tag: &str, mode: PurgeMode) -> usize {
        self.purge_disk(Selector::Tag(tag.to_owned()), mode);
        self.memory.purge_tag(tag, mode)
    }

    pub fn purge_all(&self, mode: PurgeMode) -> usize {
        self.purge_disk(Selector::All, mode);
        self.memory.purge_all(mode)
    }

    /// On a memory hit: a key asked for the second time and not yet on disk gets a copy
    /// written there.
    fn copy_to_disk(&self, key: &CacheKey) {
        let Some(disk) = self.disk() else { return };
        let hash = key.combined_bin();
        // Only a complete object can be copied (a hit may follow a fill still being written):
        // the doorkeeper is asked only then, so the second request is not spent on nothing.
        if disk.store.contains(&hash)
            || !self.memory.holds_complete(&hash)
            || !disk.store.admit(&hash)
        {
            return;
        }
        let Some(copy) = self.memory.complete(&hash) else {
            return;
        };
        if copy.body.len() as u64 > disk.store.config().max_object {
            return;
        }
        if let Some(meta) = encode_meta(&copy.meta) {
            disk.writer
                .store(hash, copy.url, copy.tags, meta, copy.body);
        }
    }

    async fn lookup_disk(
        &'static self,
        disk: &'static DiskTier,
        key: &CacheKey,
    ) -> Option<(CacheMeta, HitHandler)> {
        let hash = key.combined_bin();
        // From the page cache at once when it is there (the usual case for a hot tier);
        // only what would wait for the device goes to the blocking pool.
        let object = match disk.store.lookup_now(&hash) {
            Ok(found) => found?,
            Err(_would_block) => {
                let store = disk.store.clone();
                tokio::task::spawn_blocking(move || store.lookup(&hash))
                    .await
                    .ok()??
            }
        };
        let mut stored = decode_meta(&object.meta)?;
        if object.soft_purged {
            stored.expire_at(SystemTime::now());
        }
        let mut hit = DiskHit::new(disk.store.clone(), object);
        let mut meta = if disk.promote(&hash, hit.body_len()) {
            let meta = stored.to_cache_meta();
            // Promoted from the bytes this hit streams anyway: no second read.
            hit.promote_into(Promotion {
                memory: self.memory,
                tier: disk,
                key: key.clone(),
                // Its header values are views of the commit record read: kept on their own.
                meta: stored.detached(),
            });
            meta
        } else {
            stored.into_cache_meta()
        };
        meta.extensions_mut().insert(FromDisk);
        Some((meta, Box::new(hit)))
    }
}

/// The body length a response's header states.
fn content_length(meta: &CacheMeta) -> Option<u64> {
    meta.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[async_trait]
impl Storage for TieredStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        if let Some(hit) = self.memory.lookup(key, trace).await? {
            self.copy_to_disk(key);
            return Ok(Some(hit));
        }
        match self.disk().filter(|_| !self.disk_held()) {
            Some(disk) => Ok(self.lookup_disk(disk, key).await),
            None => Ok(None),
        }
    }

    async fn lookup_streaming_write(
        &'static self,
        key: &CacheKey,
        streaming_write_tag: Option<&[u8]>,
        trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        // Fills are followed in memory.
        self.memory
            .lookup_streaming_write(key, streaming_write_tag, trace)
            .await
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        trace: &SpanHandle,
    ) -> Result<MissHandler> {
        // Larger than the memory tier takes (the origin said how large): disk only. pingora
        // lets such a response be cached only while the disk tier is open (`max_object`).
        let large = content_length(meta).is_some_and(|len| len > self.memory_max_object);
        let memory = if large {
            self.memory.pass_through_miss(key, meta)
        } else {
            self.memory.get_miss_handler(key, meta, trace).await?
        };
        let disk = self.disk().and_then(|disk| {
            let hash = key.combined_bin();
            // A key with a copy on disk was admitted once: its new fill replaces that copy
            // (else a copy gone stale would stay, and be revalidated after every restart).
            if !disk.store.contains(&hash) && !disk.store.admit(&hash) {
                return None;
            }
            let meta_bytes = encode_meta(meta)?;
            let tags = surrogate_keys(meta.headers())
                .iter()
                .map(|t| t.to_string())
                .collect();
            let fill = disk
                .writer
                .begin(hash, primary_url(key).to_string(), tags, meta_bytes);
            Some((&disk.writer, fill))
        });
        Ok(Box::new(TieredMiss { memory, disk }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        purge_type: PurgeType,
        trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hash = target.key().combined_bin();
        self.purge_disk(Selector::Key(hash), PurgeMode::Hard);
        self.memory.purge(target, purge_type, trace).await
    }

    async fn expire(
        &'static self,
        target: PurgeTarget<'_>,
        trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let hash = target.key().combined_bin();
        self.purge_disk(Selector::Key(hash), PurgeMode::Soft);
        self.memory.expire(target, trace).await
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        trace: &SpanHandle,
    ) -> Result<bool> {
        let hash = key.combined_bin();
        let mut updated = self.memory.update_meta(key, meta, trace).await?;
        if let Some(disk) = self.disk() {
            if disk.store.contains(&hash) {
                if let Some(bytes) = encode_meta(meta) {
                    // Awaited (off the proxy threads), not queued: the next request must find
                    // the object refreshed, or it would revalidate again. A purge queued
                    // meanwhile still lands after this commit and applies to it.
                    let store = disk.store.clone();
                    updated |= tokio::task::spawn_blocking(move || store.update_meta(&hash, bytes))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .unwrap_or(false);
                }
            }
        }
        Ok(updated)
    }

    fn support_streaming_partial_write(&self) -> bool {
        true
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}
