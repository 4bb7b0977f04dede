//! A fill written to both tiers: the memory tier's writer (which coalesced readers follow)
//! and, when the disk tier admitted the key, the disk writer thread, fed the same chunks.

use super::writer::DiskWriterHandle;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_cache::storage::{HandleMiss, MissFinishType, MissHandler};
use pingora_error::Result;

pub struct TieredMiss {
    pub(super) memory: MissHandler,
    /// The disk fill, while the disk tier still takes it.
    pub(super) disk: Option<(&'static DiskWriterHandle, u64)>,
}

#[async_trait]
impl HandleMiss for TieredMiss {
    async fn write_body(&mut self, data: Bytes, eof: bool) -> Result<()> {
        if let Some((writer, fill)) = self.disk {
            // Too far behind: the disk copy is abandoned, the client and memory are not.
            if !writer.data(fill, data.clone()) {
                self.disk = None;
            }
        }
        self.memory.write_body(data, eof).await
    }

    async fn finish(mut self: Box<Self>) -> Result<MissFinishType> {
        let disk = self.disk.take();
        let memory = std::mem::replace(&mut self.memory, Box::new(NoMiss));
        let result = memory.finish().await;
        if let Some((writer, fill)) = disk {
            match &result {
                Ok(_) => writer.commit(fill),
                Err(_) => writer.abort(fill),
            }
        }
        result
    }

    fn streaming_write_tag(&self) -> Option<&[u8]> {
        self.memory.streaming_write_tag()
    }
}

impl Drop for TieredMiss {
    /// A fill dropped without `finish` failed: its disk copy must never commit.
    fn drop(&mut self) {
        if let Some((writer, fill)) = self.disk.take() {
            writer.abort(fill);
        }
    }
}

/// Stands in for the memory handler once `finish` has taken it.
struct NoMiss;

#[async_trait]
impl HandleMiss for NoMiss {
    async fn write_body(&mut self, _data: Bytes, _eof: bool) -> Result<()> {
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        Ok(MissFinishType::Created(0))
    }
}
