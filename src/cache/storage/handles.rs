//! The storage's handles on one object: a hit on a complete object, a hit that follows a fill
//! as it is written, and the writer of a fill.

use super::fills::{Fill, FillState};
use super::object::{join, StoredObject};
use super::MemoryStorage;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_cache::key::HashBinary;
use pingora_cache::storage::{HandleHit, HandleMiss, MissFinishType, Storage};
use pingora_cache::trace::SpanHandle;
use pingora_cache::CacheKey;
use pingora_error::{Error, ErrorType, Result};
use std::any::Any;
use std::sync::Arc;
use tokio::sync::watch;

/// A hit on a complete object: one shared `Bytes`, sliced for ranges, never copied.
pub(super) struct CompleteHit {
    pub(super) body: Bytes,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) done: bool,
}

#[async_trait]
impl HandleHit for CompleteHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done || self.start >= self.end {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(self.body.slice(self.start..self.end)))
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
        let len = self.body.len();
        if start >= len {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek start {start} is past the body's {len} bytes"),
            );
        }
        self.start = start;
        self.end = end.map_or(len, |e| e.min(len));
        // Seeking rearms the reader so one handler can serve several ranges.
        self.done = false;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.body.len()
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A hit on an object still being filled: yields chunks as the writer publishes them.
pub(super) struct PartialHit {
    pub(super) fill: Arc<Fill>,
    pub(super) state: watch::Receiver<FillState>,
    pub(super) next: usize,
}

#[async_trait]
impl HandleHit for PartialHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        loop {
            let state = *self.state.borrow_and_update();
            let available = match state {
                FillState::Writing { chunks }
                | FillState::Done { chunks }
                | FillState::Aborted { chunks } => chunks,
            };
            if self.next < available {
                let chunk = self.fill.chunk(self.next).ok_or_else(|| {
                    Error::explain(ErrorType::InternalError, "cache fill chunk missing")
                })?;
                self.next += 1;
                return Ok(Some(chunk));
            }
            match state {
                FillState::Done { .. } => return Ok(None),
                FillState::Aborted { .. } => {
                    return Error::e_explain(
                        ErrorType::InternalError,
                        "the cache fill this response streams from was abandoned",
                    )
                }
                FillState::Writing { .. } => {}
            }
            if self.state.changed().await.is_err() {
                return Error::e_explain(
                    ErrorType::InternalError,
                    "the cache fill this response streams from went away",
                );
            }
        }
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn should_count_access(&self) -> bool {
        false
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// The writer side of a fill.
pub(super) struct MemoryMiss {
    pub(super) storage: &'static MemoryStorage,
    pub(super) key: HashBinary,
    pub(super) fill: Arc<Fill>,
    pub(super) tag: [u8; 8],
    pub(super) finished: bool,
}

impl MemoryMiss {
    fn publish(&self, state: FillState) {
        self.fill.state.send_replace(state);
    }
}

#[async_trait]
impl HandleMiss for MemoryMiss {
    async fn write_body(&mut self, data: Bytes, eof: bool) -> Result<()> {
        let chunks = {
            let mut chunks = self
                .fill
                .chunks
                .write()
                .map_err(|_| Error::explain(ErrorType::InternalError, "cache fill poisoned"))?;
            if !data.is_empty() {
                chunks.push(data);
            }
            chunks.len()
        };
        self.publish(if eof {
            FillState::Done { chunks }
        } else {
            FillState::Writing { chunks }
        });
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<MissFinishType> {
        self.finished = true;
        if !self.fill.kept {
            let chunks = self.fill.chunks.read().map_or(0, |c| c.len());
            self.publish(FillState::Done { chunks });
            self.storage.end_pass_through(self.fill.id);
            return Ok(MissFinishType::Created(0));
        }
        let body = {
            let chunks = self
                .fill
                .chunks
                .read()
                .map_err(|_| Error::explain(ErrorType::InternalError, "cache fill poisoned"))?;
            join(&chunks)
        };
        let size = body.len();
        let chunk_count = self.fill.chunks.read().map_or(0, |c| c.len());
        // Commit and unregister under the fill lock, object first: a lookup then always finds
        // the fill or the object, never neither (which would start a second fetch). Only a
        // fill that is still registered commits: a purge or a newer writer must win.
        let mut meta = self.fill.meta.clone();
        meta.set_body_length(size);
        let obj = StoredObject::new(
            meta,
            body,
            self.fill.url.clone(),
            self.fill.primary,
            self.fill.id,
        );
        self.storage.commit_fill(self.key, self.fill.id, obj);
        self.publish(FillState::Done {
            chunks: chunk_count,
        });
        Ok(MissFinishType::Created(size))
    }

    fn streaming_write_tag(&self) -> Option<&[u8]> {
        Some(&self.tag)
    }
}

impl Drop for MemoryMiss {
    fn drop(&mut self) {
        if !self.fill.kept {
            self.storage.end_pass_through(self.fill.id);
        }
        if !self.finished {
            if self.fill.kept {
                self.storage.unregister_fill(&self.key, self.fill.id);
            }
            let chunks = self.fill.chunks.read().map_or(0, |c| c.len());
            self.publish(FillState::Aborted { chunks });
        }
    }
}
