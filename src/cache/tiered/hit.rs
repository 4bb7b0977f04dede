//! A hit served from the disk tier: the body streamed fragment by fragment, each read at once
//! when the page cache holds it (`RWF_NOWAIT`: a proxy thread never waits for the device)
//! and on the blocking pool when it does not, and a range read from the fragments it covers.
//!
//! Where the connection allows it ([`DiskHit::allow_file_regions`]), a fragment the page cache
//! holds is not read at all: the hit hands out a placeholder and keeps the fragment's file
//! region, which the edge passes to the HTTP/1 session to `sendfile` (src/edge/file_body.rs).

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
use pingora_core::protocols::file_region::FileRegion;
use pingora_error::{Error, ErrorType, Result};
use std::any::Any;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The longest fragment part sent with `sendfile`; longer ones are read and written.
///
/// Measured on loopback (benches/results/2026-12-02-vm/disk-tier.md): a 64 KiB disk hit costs
/// 0.7x the CPU with `sendfile` (its cold page-cache copy is gone), but a 1 MiB one, in
/// 256 KiB fragments, 1.6x: the kernel splices a file to a socket through a pipe of 16
/// pages, one TCP push per 64 KiB, where a write of the whole fragment pushes once.
const SENDFILE_MAX: usize = 64 << 10;

pub struct DiskHit {
    pub(super) store: Arc<DiskStore>,
    pub(super) object: Arc<DiskObject>,
    /// The fragments still to send, each with the part of it to send.
    pub(super) parts: Vec<(usize, Range<usize>)>,
    pub(super) next: usize,
    /// Where the whole body goes once sent, with what was sent so far.
    promotion: Option<(Promotion, Vec<Bytes>)>,
    /// Fragments may be sent as file regions (the edge said the connection takes them).
    file_regions: bool,
    /// The region the last placeholder handed out stands for, until the edge takes it.
    region: Option<FileRegion>,
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
            file_regions: false,
            region: None,
        }
    }

    /// Lets fragments the page cache holds go out as file regions: for a connection that
    /// sends them ([`take_region`](Self::take_region) must follow each placeholder). A hit
    /// that promotes its object still reads it (memory needs the bytes).
    pub fn allow_file_regions(&mut self) {
        self.file_regions = true;
    }

    /// The region the last body chunk, a placeholder, stands for.
    pub fn take_region(&mut self) -> Option<FileRegion> {
        self.region.take()
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
        if self.file_regions && self.promotion.is_none() && range.len() <= SENDFILE_MAX {
            // A region the page cache does not hold, or a fragment that does not check out,
            // is left to the read below (which waits for the device off this thread, and
            // reports damage).
            if let Ok(Some(region)) = self
                .store
                .fragment_region(&self.object, index, range.clone())
            {
                let placeholder = region.placeholder();
                self.region = Some(region);
                return Ok(Some(placeholder));
            }
        }
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
        self.store
            .counters
            .read_bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
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
