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
    /// Keys (first 8 bytes) hit once on disk recently.
    hit_once: Mutex<HashSet<u64>>,
    memory_max_object: u64,
    pub promotions: AtomicU64,
}

impl DiskTier {
    pub fn new(store: Arc<DiskStore>, memory_max_object: u64) -> std::io::Result<DiskTier> {
        Ok(DiskTier {
            writer: DiskWriterHandle::start(store.clone())?,
            store,
            _lock: None,
            hit_once: Mutex::new(HashSet::new()),
            memory_max_object,
            promotions: AtomicU64::new(0),
        })
    }

    /// Whether a disk hit on `key` should bring the object into memory: on its second hit.
    pub(super) fn promote(&self, key: &[u8; 16], body_len: u64) -> bool {
        if body_len > self.memory_max_object {
            return false;
        }
        let short = short_key(key);
        let mut seen = self.hit_once.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.remove(&short) {
            return true;
        }
        if seen.len() >= 65_536 {
            seen.clear();
        }
        seen.insert(short);
        false
    }

    /// Counts one disk hit on `key` toward its promotion again (a hit that was to promote it
    /// turned out to be a range).
    pub(super) fn hit_once(&self, key: &[u8; 16]) {
        let mut seen = self.hit_once.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(short_key(key));
    }
}

/// Takes the directory (waiting while another process holds it), opens the store and starts
/// its writer.
pub(super) fn open_tier(
    settings: &DiskSettings,
    memory_max_object: u64,
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
    let mut tier = DiskTier::new(store, memory_max_object).map_err(OpenError::Writer)?;
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
