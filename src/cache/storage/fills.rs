//! Fills: objects being written by the request that missed, which coalesced readers follow
//! chunk by chunk, and their refinement (a better body made off the proxy threads) before or
//! after they commit.

use super::handles::PartialHit;
use super::object::StoredObject;
use super::MemoryStorage;
use crate::cache::stored_meta::StoredMeta;
use bytes::Bytes;
use moka::ops::compute::{CompResult, Op};
use pingora_cache::key::HashBinary;
use pingora_cache::storage::HitHandler;
use pingora_cache::CacheMeta;
use pingora_error::Result;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// Where a fill stands, published to its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FillState {
    /// `chunks` chunks are readable; more may come.
    Writing { chunks: usize },
    /// All `chunks` chunks are written.
    Done { chunks: usize },
    /// The writer went away after `chunks` chunks: readers get those, then an error, so a
    /// truncated body is never taken as whole.
    Aborted { chunks: usize },
}

/// An object being written by the request that missed.
pub(super) struct Fill {
    pub(super) id: u64,
    pub(super) url: Arc<str>,
    /// Written to pingora's primary slot (the key has no variance).
    pub(super) primary: bool,
    pub(super) meta: StoredMeta,
    pub(super) chunks: RwLock<Vec<Bytes>>,
    pub(super) state: watch::Sender<FillState>,
    /// A refinement (see [`MemoryStorage::refine`]) that arrived before the fill committed:
    /// committed instead of the chunks.
    pub(super) replacement: Mutex<Option<Refinement>>,
    /// False for a pass-through fill (see [`MemoryStorage::pass_through_miss`]): its one
    /// reader takes each chunk, and nothing is committed.
    pub(super) kept: bool,
}

impl Fill {
    /// Chunk `i`; a pass-through fill's chunk is handed over, not kept.
    pub(super) fn chunk(&self, i: usize) -> Option<Bytes> {
        if self.kept {
            self.chunks.read().ok()?.get(i).cloned()
        } else {
            self.chunks.write().ok()?.get_mut(i).map(std::mem::take)
        }
    }
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

impl MemoryStorage {
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

    /// Unregisters the fills `matches` selects, so their finish does not commit.
    pub(super) fn drop_fills(&self, matches: impl Fn(&Fill) -> bool) {
        self.purge_epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut fills) = self.fills.lock() {
            fills.retain(|_, f| !matches(f));
            self.active_fills.store(fills.len(), Ordering::Release);
        }
    }

    pub(super) fn fill_for(&self, key: &HashBinary) -> Option<Arc<Fill>> {
        if self.active_fills.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.fills.lock().ok()?.get(key).cloned()
    }

    /// Stores the finished fill `id` of `key`, if it is still the registered one, and then
    /// unregisters it, all under the fill lock.
    pub(super) fn commit_fill(&self, key: HashBinary, id: u64, obj: StoredObject) {
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
    pub(super) fn unregister_fill(&self, key: &HashBinary, id: u64) -> bool {
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

    pub(super) fn partial_hit(fill: Arc<Fill>) -> Result<Option<(CacheMeta, HitHandler)>> {
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
