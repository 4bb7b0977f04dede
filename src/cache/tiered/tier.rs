//! The disk tier as the node holds it: the store, its writer thread, this process's lock on
//! the directory, and the doorkeeper that decides promotions to memory.

use super::writer::DiskWriterHandle;
use crate::cache::disk::{DiskConfig, DiskError, DiskStore};
use crate::config::runtime::DiskSettings;
use nix::fcntl::{Flock, FlockArg};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

/// The disk tier: its store, its writer, and the promotion doorkeeper.
pub struct DiskTier {
    pub store: Arc<DiskStore>,
    pub writer: DiskWriterHandle,
    /// This process's exclusive hold on the directory (see [`TieredStorage::open_disk`]).
    _lock: Option<Flock<File>>,
    /// Keys hit on disk recently, for promotions.
    recent: Mutex<RecentHits>,
    memory_max_object: u64,
    /// The memory tier's size: how far apart two disk hits on a key may be for a promotion.
    memory_bytes: u64,
    pub promotions: AtomicU64,
}

/// Keys (first 8 bytes) hit on disk recently, in two generations, each closed once its
/// hits add up to the memory tier's size in bytes.
///
/// A key is promoted when it is hit again while it is still here: within one to two memory
/// tiers' worth of disk-hit bytes, about the distance at which an LRU memory of that size
/// would still hold it at its next hit. Promoting a key that comes back less often only
/// evicts something as hot from memory: with a uniform working set ten times the memory
/// (issue 15's benchmark) promoting on every second hit made nearly every disk hit a
/// promotion, each reading its body into memory and evicting another object, for the same
/// memory hit ratio (memory / working set) either way.
#[derive(Default)]
struct RecentHits {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    /// Bytes of the hits in `current`.
    bytes: u64,
}

/// The most keys a generation holds whatever their sizes (16 B a key: 4 MiB for both).
const GENERATION_KEYS: usize = 1 << 17;

impl RecentHits {
    /// Records a hit of `len` bytes on `key`: true when the key was hit within the window
    /// (`window` bytes of hits or more), which the hit then uses up.
    fn hit_again(&mut self, key: u64, len: u64, window: u64) -> bool {
        if self.current.remove(&key) || self.previous.remove(&key) {
            return true;
        }
        self.current.insert(key);
        self.bytes = self.bytes.saturating_add(len);
        if self.bytes >= window || self.current.len() >= GENERATION_KEYS {
            self.previous = std::mem::take(&mut self.current);
            self.bytes = 0;
        }
        false
    }
}

impl DiskTier {
    /// `memory_bytes` is the memory tier's size (`cache.memory`): the promotion window.
    pub fn new(
        store: Arc<DiskStore>,
        memory_max_object: u64,
        memory_bytes: u64,
    ) -> std::io::Result<DiskTier> {
        Ok(DiskTier {
            writer: DiskWriterHandle::start(store.clone())?,
            store,
            _lock: None,
            recent: Mutex::new(RecentHits::default()),
            memory_max_object,
            memory_bytes,
            promotions: AtomicU64::new(0),
        })
    }

    /// Whether a disk hit on `key` should bring the object into memory: when it was hit on
    /// disk recently enough (see [`RecentHits`]).
    pub(super) fn promote(&self, key: &[u8; 16], body_len: u64) -> bool {
        if body_len > self.memory_max_object {
            return false;
        }
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hit_again(short_key(key), body_len, self.memory_bytes)
    }

    /// Counts one disk hit on `key` toward its promotion again (a hit that was to promote it
    /// turned out to be a range).
    pub(super) fn hit_once(&self, key: &[u8; 16]) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.current.insert(short_key(key));
    }
}

/// Takes the directory (waiting while another process holds it), opens the store and starts
/// its writer.
pub(super) fn open_tier(
    settings: &DiskSettings,
    memory_max_object: u64,
    memory_bytes: u64,
) -> Result<DiskTier, OpenError> {
    let lock_path = settings.path.join("lock");
    let lock_error = |source| OpenError::Lock {
        path: lock_path.display().to_string(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(lock_error)?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| lock_error(std::io::Error::from(errno)))?;
    let config = DiskConfig::new(settings.path.clone(), settings.size, settings.max_object);
    let store = DiskStore::open(config)?;
    let mut tier =
        DiskTier::new(store, memory_max_object, memory_bytes).map_err(OpenError::Writer)?;
    tier._lock = Some(lock);
    Ok(tier)
}

/// Why the disk tier could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot take the directory's lock {path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] DiskError),
    #[error("cannot start the writer thread: {0}")]
    Writer(#[source] std::io::Error),
}

pub(super) fn short_key(key: &[u8; 16]) -> u64 {
    u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ])
}

#[cfg(test)]
mod tests {
    use super::RecentHits;

    /// Hits on `n` other keys of `len` bytes each.
    fn others(recent: &mut RecentHits, from: u64, n: u64, len: u64, window: u64) {
        for k in from..from + n {
            assert!(!recent.hit_again(k, len, window), "key {k} is new");
        }
    }

    #[test]
    fn a_key_hit_again_within_a_memory_of_hits_is_promoted_once() {
        let mut recent = RecentHits::default();
        assert!(!recent.hit_again(1, 100, 1000));
        others(&mut recent, 10, 9, 100, 1000); // 1,000 bytes of hits since: still in the window
        assert!(recent.hit_again(1, 100, 1000));
        assert!(
            !recent.hit_again(1, 100, 1000),
            "a promotion uses the hit up"
        );
    }

    #[test]
    fn a_key_that_comes_back_after_two_memories_of_hits_is_not_promoted() {
        let mut recent = RecentHits::default();
        assert!(!recent.hit_again(1, 100, 1000));
        others(&mut recent, 10, 20, 100, 1000); // 2,100 bytes of hits since
        assert!(!recent.hit_again(1, 100, 1000));
        // Counted afresh: its next hit soon after promotes.
        assert!(recent.hit_again(1, 100, 1000));
    }
}
