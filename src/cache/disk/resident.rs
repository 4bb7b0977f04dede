//! Which file regions were found in the page cache a moment ago.
//!
//! A disk hit sends its body with `sendfile` only when every page of it is in the page cache
//! (`cachestat(2)` in [`FileRegion::cached`]), so that a proxy thread never waits for the
//! device. That check is a system call on every disk hit. A hot object is hit many times a
//! second, and the pages a hit has just sent are among the last the kernel reclaims, so a
//! region found cached is trusted for [`WINDOW`] without asking again. When the kernel did
//! reclaim it meanwhile, the cost is one `sendfile` that reads from the device on a proxy
//! thread: what nginx accepts on every hit, here at most once per region and window.
//!
//! Direct-mapped: a slot per hash of the region, which a later region may take over (it then
//! only costs that region its next check). A slot holds a tag of the region and when it was
//! found cached, in one atomic word: no lock, no allocation after start.
//!
//! [`FileRegion::cached`]: pingora_core::protocols::file_region::FileRegion::cached

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a region found in the page cache is trusted to still be there.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Slots of the table: 512 KiB of memory, room for the regions of tens of thousands of
/// objects hit within a window (a region evicted from its slot is checked again, nothing
/// worse).
pub const SLOTS: usize = 1 << 16;

/// A body region of the log: its segment, where it starts there, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionId {
    pub segment: u32,
    pub offset: u64,
    pub len: usize,
}

impl RegionId {
    fn hash(self) -> u64 {
        // Positions in the log, not chosen by clients: a multiplicative mix spreads them.
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let x = (u64::from(self.segment).rotate_left(40) ^ self.offset).wrapping_mul(K)
            ^ (self.len as u64).wrapping_mul(K.rotate_left(17));
        (x ^ (x >> 31)).wrapping_mul(K)
    }
}

/// Regions found in the page cache within the last [`WINDOW`] (see the module's comment).
#[derive(Debug)]
pub struct ResidentMemo {
    slots: Box<[AtomicU64]>,
    epoch: Instant,
    window_ms: u32,
}

impl ResidentMemo {
    /// A table of `slots` slots (rounded up to a power of two) trusting a region for `window`.
    pub fn new(slots: usize, window: Duration) -> ResidentMemo {
        let slots = slots.max(1).next_power_of_two();
        ResidentMemo {
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            window_ms: u32::try_from(window.as_millis()).unwrap_or(u32::MAX),
        }
    }

    /// Whether `region` was found in the page cache within the window.
    pub fn recently_cached(&self, region: RegionId) -> bool {
        let (slot, tag) = self.place(region);
        let word = slot.load(Ordering::Relaxed);
        (word >> 32) as u32 == tag && self.now_ms().wrapping_sub(word as u32) < self.window_ms
    }

    /// Notes that `region` was just found in the page cache.
    pub fn found_cached(&self, region: RegionId) {
        let (slot, tag) = self.place(region);
        slot.store(
            u64::from(tag) << 32 | u64::from(self.now_ms()),
            Ordering::Relaxed,
        );
    }

    /// The region's slot, and its tag there (never 0, so an empty slot matches nothing).
    fn place(&self, region: RegionId) -> (&AtomicU64, u32) {
        let h = region.hash();
        let slot = &self.slots[h as usize & (self.slots.len() - 1)];
        (slot, (h >> 32) as u32 | 1)
    }

    /// Milliseconds since the table was made, wrapping (every 49 days; an age is a wrapping
    /// difference, so only a slot untouched for exactly that long could look fresh).
    fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(segment: u32, offset: u64) -> RegionId {
        RegionId {
            segment,
            offset,
            len: 65536,
        }
    }

    #[test]
    fn a_region_found_cached_is_trusted_within_the_window_and_no_other_region_is() {
        let memo = ResidentMemo::new(SLOTS, Duration::from_secs(3600));
        assert!(
            !memo.recently_cached(region(1, 16)),
            "an empty table trusts nothing"
        );
        memo.found_cached(region(1, 16));
        assert!(memo.recently_cached(region(1, 16)));
        for other in [
            region(2, 16),
            region(1, 17),
            RegionId {
                len: 1,
                ..region(1, 16)
            },
        ] {
            assert!(!memo.recently_cached(other), "{other:?}");
        }
    }

    #[test]
    fn a_region_is_checked_again_once_the_window_has_passed() {
        let memo = ResidentMemo::new(SLOTS, Duration::ZERO);
        memo.found_cached(region(1, 16));
        assert!(!memo.recently_cached(region(1, 16)));
    }

    #[test]
    fn a_region_that_takes_a_slot_over_leaves_the_former_one_to_be_checked_again() {
        let memo = ResidentMemo::new(1, Duration::from_secs(3600));
        memo.found_cached(region(1, 16));
        memo.found_cached(region(1, 4096));
        assert!(memo.recently_cached(region(1, 4096)));
        assert!(!memo.recently_cached(region(1, 16)));
    }
}
