//! When the disk tier writes its checkpoint (see `cache::disk::checkpoint`): as the node
//! begins to stop (a restart or an upgrade then reads it instead of the whole log), and every
//! ten minutes (so a crash costs a scan of at most the log written since). The tier also
//! writes one as soon as it has opened (`TieredStorage::open_disk`), since opening consumes
//! the one it read.

use super::TieredStorage;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(600);

pub struct DiskCheckpoints(pub &'static TieredStorage);

impl DiskCheckpoints {
    async fn write(&self) {
        let Some(disk) = self.0.disk() else { return };
        let store = disk.store.clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(())) => log::info!(
                "disk cache: checkpoint of {} objects written in {} ms",
                disk.store.stats().objects,
                started.elapsed().as_millis()
            ),
            Ok(Err(e)) => log::warn!("disk cache: checkpoint: {e}"),
            Err(e) => log::warn!("disk cache: checkpoint task: {e}"),
        }
    }
}

#[async_trait]
impl BackgroundService for DiskCheckpoints {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut every = tokio::time::interval(EVERY);
        // The first tick is at once: nothing to save yet.
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => self.write().await,
                _ = shutdown.changed() => {
                    self.write().await;
                    return;
                }
            }
        }
    }
}
