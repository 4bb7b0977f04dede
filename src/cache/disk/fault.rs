//! What the store does after a failed write (a full disk, an I/O error, its directory gone):
//! it takes no new fills for a while, so the node caches in memory meanwhile and logs the
//! fault once, then tries again. Reads go on: what was written whole is still served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long writes pause after a failed one.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(super) struct WriteFault {
    origin: Instant,
    /// Milliseconds after `origin` before which no write is tried (0: writable).
    until_ms: AtomicU64,
}

impl WriteFault {
    pub(super) fn new() -> WriteFault {
        WriteFault {
            origin: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether writes are being tried.
    pub(super) fn writable(&self) -> bool {
        self.now_ms() >= self.until_ms.load(Ordering::Acquire)
    }

    /// Notes a failed write; true when the store was writable until now (the fault is new,
    /// worth a log line).
    pub(super) fn trip(&self) -> bool {
        let now = self.now_ms();
        let until = now.saturating_add(u64::try_from(RETRY_AFTER.as_millis()).unwrap_or(0));
        let before = self.until_ms.swap(until, Ordering::AcqRel);
        now >= before
    }
}
