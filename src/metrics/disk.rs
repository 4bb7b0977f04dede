//! The disk tier: how full it is, and what happened to the objects it was offered and asked
//! for. Set from the tier's own counters at each scrape (they only grow; the metrics catch up).

use crate::cache::tiered::DiskTier;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::atomic::{AtomicU64, Ordering};

/// Event labels, in the order of [`DiskMetrics::events`].
const EVENTS: [&str; 11] = [
    "hit",
    "miss",
    "write",
    "eviction",
    "reinsert",
    "not_admitted",
    "promotion",
    "damaged",
    "read_error",
    "write_error",
    "abandoned",
];

/// Handles resolved once.
pub struct DiskMetrics {
    pub bytes: IntGauge,
    pub objects: IntGauge,
    /// 0 while writes are paused after a failed one (the node caches in memory meanwhile).
    pub writable: IntGauge,
    events: [IntCounter; 11],
    /// Disk hits' body bytes by how they left: `sendfile` (never read into memory) or `read`.
    sent_sendfile: IntCounter,
    sent_read: IntCounter,
}

impl DiskMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let bytes = IntGauge::new(
            "meridian_disk_cache_bytes",
            "Bytes the disk tier's segment files hold (bounded by cache.disk.size plus one segment)",
        )?;
        let objects = IntGauge::new("meridian_disk_cache_objects", "Objects the disk tier holds")?;
        let writable = IntGauge::new(
            "meridian_disk_cache_writable",
            "1 when the disk tier takes writes, 0 while they are paused after a failed one \
             (full disk, I/O error, directory gone): the node caches in memory meanwhile",
        )?;
        let vec = IntCounterVec::new(
            Opts::new(
                "meridian_disk_cache_events_total",
                "Disk tier events: hits and misses of lookups that missed memory, objects \
                 written, evicted, reinserted (hit since written), not admitted (first request), \
                 promoted to memory, found damaged, read and write errors, fills abandoned \
                 because the writer was behind",
            ),
            &["event"],
        )?;
        let sent = IntCounterVec::new(
            Opts::new(
                "meridian_disk_cache_hit_bytes_total",
                "Body bytes of disk hits, by how they were sent: `sendfile` from the segment \
                 file (plain HTTP/1, page cache warm) or `read` into memory first",
            ),
            &["via"],
        )?;
        registry.register(Box::new(sent.clone()))?;
        registry.register(Box::new(bytes.clone()))?;
        registry.register(Box::new(objects.clone()))?;
        registry.register(Box::new(writable.clone()))?;
        registry.register(Box::new(vec.clone()))?;
        let events = EVENTS.map(|e| vec.with_label_values(&[e]));
        Ok(DiskMetrics {
            bytes,
            objects,
            writable,
            events,
            sent_sendfile: sent.with_label_values(&["sendfile"]),
            sent_read: sent.with_label_values(&["read"]),
        })
    }

    /// Brings the metrics up to the tier's counters.
    pub fn observe(&self, disk: &DiskTier) {
        let stats = disk.store.stats();
        self.bytes
            .set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
        self.objects
            .set(i64::try_from(stats.objects).unwrap_or(i64::MAX));
        self.writable.set(i64::from(disk.store.writable()));
        let c = &disk.store.counters;
        let values: [&AtomicU64; 11] = [
            &c.hits,
            &c.misses,
            &c.writes,
            &c.evictions,
            &c.reinserted,
            &c.not_admitted,
            &disk.promotions,
            &c.damaged,
            &c.read_errors,
            &c.write_errors,
            &disk.writer.abandoned,
        ];
        let sendfile = c.regions.sendfile.load(Ordering::Relaxed);
        let read = c.read_bytes.load(Ordering::Relaxed) + c.regions.read.load(Ordering::Relaxed);
        let sent = [(&self.sent_sendfile, sendfile), (&self.sent_read, read)];
        let events = values.map(|v| v.load(Ordering::Relaxed));
        for (counter, now) in self.events.iter().zip(events).chain(sent) {
            counter.inc_by(now.saturating_sub(counter.get()));
        }
    }
}
