//! A hit served from the disk tier: the body streamed fragment by fragment, each read at once
//! when the page cache holds it (`RWF_NOWAIT`: a proxy thread never waits for the device)
//! and on the blocking pool when it does not, and a range read from the fragments it covers.

use super::DiskTier;
use crate::cache::disk::{DiskObject, DiskStore, ReadError};
use crate::cache::stored_meta::StoredMeta;
use crate::cache::MemoryStorage;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_cache::key::CacheHashKey;
use pingora_cache::storage::{HandleHit, Storage};
use pingora_cache::trace::SpanHandle;
use pingora_cache::CacheKey;
use pingora_error::{Error, ErrorType, Result};
use std::any::Any;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct DiskHit {
    pub(super) store: Arc<DiskStore>,
    pub(super) object: Arc<DiskObject>,
    /// The fragments still to send, each with the part of it to send.
    pub(super) parts: Vec<(usize, Range<usize>)>,
    pub(super) next: usize,
    /// Where the whole body goes once sent, with what was sent so far.
    promotion: Option<(Promotion, Vec<Bytes>)>,
}

/// A disk object's way into the memory tier: put there once its body has streamed whole.
pub(crate) struct Promotion {
    pub(crate) memory: &'static MemoryStorage,
    pub(crate) tier: &'static DiskTier,
    pub(crate) key: CacheKey,
    pub(crate) meta: StoredMeta,
}

impl DiskHit {
    pub fn new(store: Arc<DiskStore>, object: DiskObject) -> DiskHit {
        let parts = object.fragments_for(0, object.body_len);
        DiskHit {
            store,
            object: Arc::new(object),
            parts,
            next: 0,
            promotion: None,
        }
    }

    pub fn body_len(&self) -> u64 {
        self.object.body_len
    }

    /// Keeps the body as it streams and puts it in memory at its end (not after a seek: a
    /// range is not the whole body).
    pub(crate) fn promote_into(&mut self, promotion: Promotion) {
        self.promotion = Some((promotion, Vec::with_capacity(self.parts.len())));
    }

    fn promote(&mut self) {
        let Some((p, chunks)) = self.promotion.take() else {
            return;
        };
        let body_len = self.object.body_len;
        let put = move |body: Bytes| {
            if body.len() as u64 == body_len {
                p.memory.promote(&p.key, p.meta, body);
                p.tier.promotions.fetch_add(1, Ordering::Relaxed);
            }
        };
        match <[Bytes; 1]>::try_from(chunks) {
            // One fragment (most objects) is kept as it is.
            Ok([one]) => put(one),
            // More are joined off the proxy thread (up to cache.max_object of copying).
            Err(many) => {
                tokio::task::spawn_blocking(move || {
                    let mut body = Vec::with_capacity(usize::try_from(body_len).unwrap_or(0));
                    for chunk in &many {
                        body.extend_from_slice(chunk);
                    }
                    put(Bytes::from(body));
                });
            }
        }
    }
}

#[async_trait]
impl HandleHit for DiskHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        let Some((index, range)) = self.parts.get(self.next).cloned() else {
            self.promote();
            return Ok(None);
        };
        self.next += 1;
        // From the page cache at once when it is there; else on the blocking pool.
        let read = match self.store.fragment_now(&self.object, index) {
            Err(ReadError::WouldBlock) => {
                let (store, object) = (self.store.clone(), self.object.clone());
                tokio::task::spawn_blocking(move || store.fragment(&object, index))
                    .await
                    .map_err(|e| {
                        Error::explain(ErrorType::InternalError, format!("disk read: {e}"))
                    })?
            }
            done => done,
        };
        let data = read.map_err(|e| {
            Error::explain(ErrorType::InternalError, format!("disk cache read: {e}"))
        })?;
        if range.end > data.len() {
            return Error::e_explain(
                ErrorType::InternalError,
                "disk cache fragment shorter than indexed",
            );
        }
        let chunk = data.slice(range);
        if let Some((_, chunks)) = &mut self.promotion {
            chunks.push(chunk.clone());
        }
        Ok(Some(chunk))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let len = self.object.body_len;
        let start = start as u64;
        if start >= len {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek start {start} is past the body's {len} bytes"),
            );
        }
        let end = end.map_or(len, |e| (e as u64).min(len));
        self.parts = self.object.fragments_for(start, end);
        self.next = 0;
        // A range is not the whole body: the next whole read of the key promotes it.
        if let Some((p, _)) = self.promotion.take() {
            p.tier.hit_once(&p.key.combined_bin());
        }
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        usize::try_from(self.object.body_len).unwrap_or(usize::MAX)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}
