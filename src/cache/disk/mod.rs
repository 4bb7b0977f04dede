//! The disk tier's store: a log of checksummed records in a few large segment files, with
//! the index of what it holds in memory.
//!
//! Why a log: a fill is appended as it streams in (body fragments of at most
//! [`FRAGMENT_BYTES`], interleaved with other fills'), and becomes an object only when its
//! commit record (key, body length and CRC, where its fragments are, URL, tags, metadata) is
//! written. A crash at any point leaves either no commit (the fragments are garbage) or a
//! commit whose CRC proves it whole; the body is checked against its CRC before a restarted
//! node serves its first byte. Space comes back a whole segment at a time, oldest first, so
//! bytes on disk stay within `size` plus at most one segment, with no directory walk and no
//! file per object (nginx's and Varnish's file stores' weak points).
//!
//! Purges are records too, so they hold after a restart: a key purge drops the entry; a
//! prefix, tag or "all" purge is kept as a rule (Varnish's ban) that applies to every object
//! committed before it, checked when the object is looked up, and forgotten once the
//! segments holding such objects are gone.

mod checkpoint;
mod fault;
pub mod record;
mod resident;
mod segments;

#[cfg(test)]
mod tests;

use fault::WriteFault;
use pingora_core::protocols::file_region::{FileRegion, RegionTally};
use record::{Commit, Damage, FragmentRef, Kind, Position, Purge, Selector};
use resident::ResidentMemo;
use segments::{SegmentReader, Segments};

pub use fault::RETRY_AFTER;

pub use segments::{ReadError, ReadMode};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// Body bytes gathered before a fragment is appended: a fill is never buffered whole, and a
/// small object is one fragment.
pub const FRAGMENT_BYTES: usize = 256 << 10;

/// Where and how large the store is.
#[derive(Debug, Clone)]
pub struct DiskConfig {
    pub path: PathBuf,
    /// Bound on bytes in segment files; at most one segment more while the oldest goes.
    pub size: u64,
    /// Larger bodies are not stored.
    pub max_object: u64,
    /// Bytes per segment file.
    pub segment_size: u32,
    /// How long a body region found in the page cache is trusted to still be there.
    pub resident_window: std::time::Duration,
}

impl DiskConfig {
    /// Segments of 1/16 of `size`, between 1 MiB and 256 MiB: small enough that evicting one
    /// frees little of the working set, large enough that there are few files.
    pub fn new(path: PathBuf, size: u64, max_object: u64) -> DiskConfig {
        let segment = (size / 16).clamp(1 << 20, 256 << 20);
        DiskConfig {
            path,
            size,
            max_object,
            segment_size: u32::try_from(segment).unwrap_or(256 << 20),
            resident_window: resident::WINDOW,
        }
    }
}

/// A read that does not wait found what it needs not in memory: ask again with waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldBlock;

/// Why the store failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("disk cache {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("body larger than the disk tier's max_object")]
    TooLarge,
    /// A write failed a moment ago; writes resume after [`RETRY_AFTER`].
    #[error("disk cache writes paused after a failed write")]
    Paused,
}

/// What the index keeps per object: where its commit record is, and the oldest segment any
/// of its records is in (the object goes when that segment goes).
#[derive(Debug)]
struct Entry {
    commit: Position,
    first_segment: u32,
    body_len: u64,
    /// Its body has been checked against its CRC since this process opened the store.
    verified: AtomicBool,
    /// Served since it was (re)written: when its segment goes, it is written again (a
    /// second chance, as CLOCK) instead of being dropped.
    hit: AtomicBool,
    /// The commit record's payload length, so a lookup reads that record and nothing
    /// past it (fewer page-cache pages, no bytes copied for nothing). 0: not known yet
    /// (an entry from a checkpoint learns it at its first lookup) or 64 KiB and more.
    /// Fits the padding after the flags: an entry stays 24 bytes.
    commit_len: AtomicU16,
}

/// A commit payload length as [`Entry::commit_len`] keeps it.
fn commit_len(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(0)
}

/// Counters for metrics and `/status`.
#[derive(Debug, Default)]
pub struct DiskCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub writes: AtomicU64,
    /// Objects dropped because their segment was evicted.
    pub evictions: AtomicU64,
    /// Objects written again because they were hit since their last write.
    pub reinserted: AtomicU64,
    /// Fills not written because the key was not seen missing before (the doorkeeper).
    pub not_admitted: AtomicU64,
    /// Objects found damaged (failed length or CRC check) and dropped.
    pub damaged: AtomicU64,
    pub read_errors: AtomicU64,
    pub write_errors: AtomicU64,
    /// Body bytes of disk hits handed out as file regions, by how the connection sent them
    /// (`sendfile`, or read by the HTTP/1 session after all).
    pub regions: Arc<RegionTally>,
    /// Body bytes of disk hits read into memory by the hit itself.
    pub read_bytes: AtomicU64,
}

/// A snapshot of the store's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskStats {
    pub bytes: u64,
    pub objects: u64,
    pub segments: u64,
}

/// The disk store. Its methods do blocking file I/O: call them off the proxy's threads.
#[derive(Debug)]
pub struct DiskStore {
    config: DiskConfig,
    log: Mutex<Segments>,
    index: RwLock<HashMap<[u8; 16], Entry>>,
    /// Prefix, tag, all and soft purges in force, in log order.
    rules: RwLock<Vec<(Position, Purge)>>,
    next_fill: AtomicU64,
    /// Keys (their first 8 bytes) that missed once recently: a fill is written only on a
    /// key's second miss, so objects requested once never cost a disk write.
    doorkeeper: Mutex<HashSet<u64>>,
    fault: WriteFault,
    pub counters: DiskCounters,
    /// How the index was rebuilt when the store opened.
    recovery: Recovery,
    /// Body regions found in the page cache a moment ago (not asked about again for a while).
    resident: ResidentMemo,
}

/// How an opened store rebuilt its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// From a checkpoint and the log written after it.
    Checkpoint,
    /// From every record of the log (no usable checkpoint).
    Log,
}

impl Recovery {
    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::Checkpoint => "checkpoint",
            Recovery::Log => "log",
        }
    }
}

impl DiskStore {
    /// Opens the store at `config.path`, recovering what a previous process committed.
    pub fn open(config: DiskConfig) -> Result<Arc<DiskStore>, DiskError> {
        let path = config.path.display().to_string();
        let io_err = |source| DiskError::Io {
            path: path.clone(),
            source,
        };
        let segments = Segments::open(&config.path, config.segment_size).map_err(io_err)?;
        let mut store = DiskStore {
            log: Mutex::new(segments),
            index: RwLock::new(HashMap::new()),
            rules: RwLock::new(Vec::new()),
            next_fill: AtomicU64::new(1),
            doorkeeper: Mutex::new(HashSet::new()),
            fault: WriteFault::new(),
            counters: DiskCounters::default(),
            resident: ResidentMemo::new(resident::SLOTS, config.resident_window),
            config,
            recovery: Recovery::Log,
        };
        store.recovery = store.recover().map_err(io_err)?;
        Ok(Arc::new(store))
    }

    /// How the index was rebuilt when the store opened.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    pub fn config(&self) -> &DiskConfig {
        &self.config
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Segments> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rebuilds the index: from the last checkpoint and the log written after it when there
    /// is a usable one, else from every record of the log.
    fn recover(&self) -> io::Result<Recovery> {
        let mut log = self.log();
        if let Some(snapshot) = checkpoint::take(&self.config.path) {
            let (at, next_fill) = (snapshot.at, snapshot.next_fill);
            if self.restore(&log, snapshot) {
                let max_fill = self.scan(&mut log, at)?;
                self.next_fill
                    .store(max_fill.max(next_fill), Ordering::Relaxed);
                return Ok(Recovery::Checkpoint);
            }
            log::warn!(
                "disk cache {}: its checkpoint is damaged or does not match the log; reading the whole log",
                self.config.path.display()
            );
            self.index
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            self.rules
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        let from = Position {
            segment: 0,
            offset: 0,
        };
        let max_fill = self.scan(&mut log, from)?;
        self.next_fill.store(max_fill + 1, Ordering::Relaxed);
        Ok(Recovery::Log)
    }

    /// Files a checkpoint's entries and rules as they are read, but those in segments evicted
    /// since. False when the checkpoint is damaged or the log is shorter than it says it was
    /// (bytes before its position were lost): then only a full scan is right, and the caller
    /// clears what was filed.
    fn restore(&self, log: &Segments, mut snapshot: checkpoint::SnapshotReader) -> bool {
        let empty = Position {
            segment: 0,
            offset: 0,
        };
        let in_log = snapshot.at == empty
            || log
                .len_of(snapshot.at.segment)
                .is_some_and(|len| len >= snapshot.at.offset);
        if !in_log {
            return false;
        }
        let oldest = log.oldest().unwrap_or(u32::MAX);
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        // Sized once (to what the file can hold, whatever its count says): growing a
        // million-entry map doubles it several times on the way.
        index.reserve(snapshot.capacity());
        for e in snapshot.by_ref() {
            if e.first_segment >= oldest && log.len_of(e.commit.segment).is_some() {
                index.insert(
                    e.key,
                    Entry {
                        commit: e.commit,
                        first_segment: e.first_segment,
                        body_len: e.body_len,
                        // Checked before its first serve, as after a full scan.
                        verified: AtomicBool::new(false),
                        hit: AtomicBool::new(false),
                        commit_len: AtomicU16::new(0),
                    },
                );
            }
        }
        drop(index);
        let Some(rules) = snapshot.finish() else {
            return false;
        };
        self.rules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(rules.into_iter().filter(|(at, _)| at.segment >= oldest));
        true
    }

    /// Reads the log's records from `from` on, in order: commits enter the index, purges
    /// apply, and a torn tail of the last segment is cut off so appends continue after the
    /// last whole record. Returns the highest fill id seen.
    fn scan(&self, log: &mut Segments, from: Position) -> io::Result<u64> {
        let numbers: Vec<u32> = log
            .numbers()
            .into_iter()
            .filter(|n| *n >= from.segment)
            .collect();
        let last = log.numbers().last().copied();
        let mut max_fill = 0;
        for number in numbers {
            let len = log.len_of(number).unwrap_or(0);
            let mut offset = if number == from.segment {
                from.offset
            } else {
                0
            };
            while offset < len {
                let at = Position {
                    segment: number,
                    offset,
                };
                let header = match log.read_header(at) {
                    Ok(h) => h,
                    Err(ReadError::Io(e)) => return Err(e),
                    Err(_) => break,
                };
                let next = offset + (record::HEADER_LEN + header.payload_len) as u32;
                match header.kind {
                    Kind::Fragment => {}
                    Kind::Commit => match log.read(at, Kind::Commit) {
                        Ok(payload) => match Commit::decode(&payload) {
                            Ok(commit) => {
                                max_fill = max_fill.max(commit.fill);
                                self.file_commit(at, &commit, payload.len(), false);
                            }
                            Err(_) => self.count_damaged(),
                        },
                        Err(ReadError::Io(e)) => return Err(e),
                        Err(_) => break,
                    },
                    Kind::Purge => match log.read(at, Kind::Purge) {
                        Ok(payload) => {
                            if let Ok(purge) = Purge::decode(&payload) {
                                self.apply_purge(at, purge);
                            }
                        }
                        Err(ReadError::Io(e)) => return Err(e),
                        Err(_) => break,
                    },
                }
                offset = next;
            }
            if offset < len && Some(number) == last {
                log.truncate(number, offset)?;
            }
        }
        Ok(max_fill)
    }

    /// Writes a checkpoint of the index and rules as of the log's end, so that the next open
    /// reads it and only the log written after it. Taken under the log's lock (writes wait
    /// for the copy of the index, not for the file), written beside the segments.
    pub fn checkpoint(&self) -> Result<(), DiskError> {
        let snapshot = {
            // Lock order: log, then index, then rules.
            let log = self.log();
            let at = log.end();
            let entries = self
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(key, e)| checkpoint::SavedEntry {
                    key: *key,
                    commit: e.commit,
                    first_segment: e.first_segment,
                    body_len: e.body_len,
                })
                .collect();
            let rules = self
                .rules
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            checkpoint::Snapshot {
                at,
                next_fill: self.next_fill.load(Ordering::Relaxed),
                entries,
                rules,
            }
        };
        checkpoint::write(&self.config.path, &snapshot).map_err(|source| DiskError::Io {
            path: self.config.path.display().to_string(),
            source,
        })
    }

    /// Puts a committed object in the index (replacing an older one under its key);
    /// `payload_len` is its commit record's.
    fn file_commit(&self, at: Position, commit: &Commit, payload_len: usize, verified: bool) {
        let first_segment = commit
            .fragments
            .iter()
            .map(|f| f.at.segment)
            .chain([at.segment])
            .min()
            .unwrap_or(at.segment);
        let entry = Entry {
            commit: at,
            first_segment,
            body_len: commit.body_len,
            verified: AtomicBool::new(verified),
            hit: AtomicBool::new(false),
            commit_len: AtomicU16::new(commit_len(payload_len)),
        };
        self.index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(commit.key, entry);
    }

    /// Applies a purge to the index and the rules. Locks are taken one at a time (never
    /// the index while holding the rules, or the other way), so lookups cannot deadlock
    /// with purges.
    fn apply_purge(&self, at: Position, purge: Purge) {
        let rules = || self.rules.write().unwrap_or_else(PoisonError::into_inner);
        match (&purge.selector, purge.soft) {
            (Selector::Key(key), false) => {
                self.index
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(key);
            }
            (Selector::All, false) => {
                self.index
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                // Nothing older is left for an earlier rule to apply to.
                rules().clear();
            }
            _ => rules().push((at, purge)),
        }
    }

    fn count_damaged(&self) {
        self.counters.damaged.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a fill of `key` should be written: yes on the key's second miss within the
    /// doorkeeper's window (about as many keys as the store holds objects, at least 4096),
    /// no on its first. Measured on a Zipf trace (benches/results/2026-12-01-vm/disk-policy.md):
    /// with reinsertion, this matches LRU with the same admission and beats plain LRU, for a
    /// tenth of the bytes written.
    pub fn admit(&self, key: &[u8; 16]) -> bool {
        if !self.writable() {
            return false;
        }
        let short = u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ]);
        let window = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            .max(4096);
        let mut seen = self
            .doorkeeper
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.remove(&short) {
            return true;
        }
        if seen.len() >= window {
            seen.clear();
        }
        seen.insert(short);
        self.counters.not_admitted.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Starts writing an object; nothing is visible until [`DiskWriter::commit`].
    pub fn writer(
        self: &Arc<Self>,
        key: [u8; 16],
        url: String,
        tags: Vec<String>,
        meta: Vec<u8>,
    ) -> DiskWriter {
        DiskWriter {
            store: self.clone(),
            fill: self.next_fill.fetch_add(1, Ordering::Relaxed),
            seq: 0,
            buf: Vec::new(),
            fragments: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            commit: Commit {
                key,
                fill: 0,
                body_len: 0,
                body_crc: 0,
                fragments: Vec::new(),
                url,
                tags,
                meta: meta.into(),
            },
        }
    }

    /// Whether writes are being tried (none for [`RETRY_AFTER`] after a failed one).
    pub fn writable(&self) -> bool {
        self.fault.writable()
    }

    /// Appends a record and evicts the oldest segments past `size`. While writes are paused
    /// only purges are tried: a purge must be recorded if it can be.
    fn append(&self, kind: Kind, payload: &[u8]) -> Result<Position, DiskError> {
        if kind != Kind::Purge && !self.writable() {
            return Err(DiskError::Paused);
        }
        let mut log = self.log();
        let at = log.append(kind, payload).map_err(|source| {
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            if self.fault.trip() {
                log::error!(
                    "disk cache {}: cannot write: {source}; serving from memory meanwhile, \
                     writes tried again in {} s",
                    self.config.path.display(),
                    RETRY_AFTER.as_secs()
                );
            }
            DiskError::Io {
                path: self.config.path.display().to_string(),
                source,
            }
        })?;
        self.evict(&mut log);
        Ok(at)
    }

    /// Deletes the oldest segments while the log is over `size`. Objects hit since their
    /// last write that would go with a segment are written again at the head first; each
    /// must be hit again to survive the next round, so the rewrites stay bounded.
    fn evict(&self, log: &mut Segments) {
        while log.total_bytes() > self.config.size {
            let Some(oldest) = log.oldest().filter(|_| log.numbers().len() > 1) else {
                break;
            };
            let survivors: Vec<([u8; 16], Position)> = self
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|(_, e)| e.first_segment == oldest && e.hit.load(Ordering::Relaxed))
                .map(|(k, e)| (*k, e.commit))
                .collect();
            for (key, at) in survivors {
                if self.rewrite(log, &key, at).is_some() {
                    self.counters.reinserted.fetch_add(1, Ordering::Relaxed);
                }
            }
            match log.delete_oldest() {
                Ok(Some(number)) => self.forget_segment(number),
                Ok(None) => break,
                Err(e) => {
                    log::error!(
                        "disk cache {}: cannot evict: {e}",
                        self.config.path.display()
                    );
                    self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }

    /// Copies the object committed at `at` to the head of the log (fragments, then a new
    /// commit) and points the index at the copy. None when it cannot be read whole, or a
    /// purge since its write selects it.
    fn rewrite(&self, log: &mut Segments, key: &[u8; 16], at: Position) -> Option<()> {
        let mut commit = Commit::decode(&log.read(at, Kind::Commit).ok()?).ok()?;
        // A purge made since the object was written must keep applying: an object a later
        // rule selects (removed or marked stale) is let go rather than moved past the rule.
        if self.selected_since(at, &commit, true) {
            return None;
        }
        let fill = self.next_fill.fetch_add(1, Ordering::Relaxed);
        let mut fragments = Vec::with_capacity(commit.fragments.len());
        for (seq, f) in commit.fragments.iter().enumerate() {
            let payload = log.read(f.at, Kind::Fragment).ok()?;
            let data = record::fragment_data(&payload, commit.fill, seq as u32).ok()?;
            let payload = record::fragment_payload(fill, seq as u32, data);
            let new_at = log.append(Kind::Fragment, &payload).ok()?;
            fragments.push(FragmentRef {
                at: new_at,
                len: f.len,
            });
        }
        commit.fill = fill;
        commit.fragments = fragments;
        let payload = commit.encode();
        let new_at = log.append(Kind::Commit, &payload).ok()?;
        let verified = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .is_some_and(|e| e.verified.load(Ordering::Relaxed));
        self.file_commit(new_at, &commit, payload.len(), verified);
        Some(())
    }

    /// Whether a purge rule recorded after `at` selects `commit` (soft ones too, with
    /// `with_soft`).
    fn selected_since(&self, at: Position, commit: &Commit, with_soft: bool) -> bool {
        self.rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(rule_at, purge)| {
                *rule_at > at && (with_soft || !purge.soft) && selects(&purge.selector, commit)
            })
    }

    /// Drops what lived in an evicted segment: objects with a record there, and rules
    /// no object older than them is left for.
    fn forget_segment(&self, number: u32) {
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let before = index.len();
        index.retain(|_, e| e.first_segment > number);
        self.counters
            .evictions
            .fetch_add((before - index.len()) as u64, Ordering::Relaxed);
        drop(index);
        self.rules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(at, _)| at.segment > number);
    }

    /// The object under `key`, checked: purged objects are misses (soft-purged ones come back
    /// marked), and a body not yet checked since the store was opened is read and checked
    /// against its length and CRC first (a damaged one is dropped and counted).
    pub fn lookup(&self, key: &[u8; 16]) -> Option<DiskObject> {
        self.lookup_with(key, ReadMode::Wait).unwrap_or(None)
    }

    /// [`lookup`](Self::lookup) from what the page cache holds, without waiting: for a
    /// proxy thread. `Err(WouldBlock)` when it would have to wait (then ask [`lookup`]
    /// on the blocking pool); nothing is counted or dropped then.
    pub fn lookup_now(&self, key: &[u8; 16]) -> Result<Option<DiskObject>, WouldBlock> {
        self.lookup_with(key, ReadMode::NoWait)
    }

    fn lookup_with(
        &self,
        key: &[u8; 16],
        mode: ReadMode,
    ) -> Result<Option<DiskObject>, WouldBlock> {
        // One probe of the index: where the commit is, whether the body was checked, how
        // long the commit is; and the entry is marked hit (for its second chance) now, as
        // a lookup that goes on to fail drops the entry anyway.
        let found = self
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map(|e| {
                e.hit.store(true, Ordering::Relaxed);
                let len = e.commit_len.load(Ordering::Relaxed);
                (e.commit, e.verified.load(Ordering::Acquire), len)
            });
        let Some((at, verified, known_len)) = found else {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        let expected = (known_len > 0).then_some(usize::from(known_len));
        let Some((commit, payload_len)) = self.read_commit(at, key, mode, expected)? else {
            self.drop_entry(key, at);
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        };
        // The rules made after this object: any hard one removes it, a soft one marks it.
        let (mut removed, mut soft_purged) = (false, false);
        for (_, purge) in self
            .rules
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(rule_at, _)| *rule_at > at)
        {
            if selects(&purge.selector, &commit) {
                removed |= !purge.soft;
                soft_purged |= purge.soft;
            }
        }
        if removed {
            self.drop_entry(key, at);
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let body_crc = commit.body_crc;
        let object = DiskObject {
            body_len: commit.body_len,
            fill: commit.fill,
            fragments: commit.fragments,
            url: commit.url,
            tags: commit.tags,
            meta: commit.meta,
            soft_purged,
        };
        if !verified {
            if let Err(damage) = self.verify(&object, body_crc, mode)? {
                log::warn!(
                    "disk cache {}: dropped {} ({damage})",
                    self.config.path.display(),
                    object.url
                );
                self.count_damaged();
                self.drop_entry(key, at);
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            if let Some(e) = self
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .filter(|e| e.commit == at)
            {
                e.verified.store(true, Ordering::Release);
                e.commit_len
                    .store(commit_len(payload_len), Ordering::Relaxed);
            }
        }
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        Ok(Some(object))
    }

    /// Reads the record at `at`; the log's lock is held only to find the segment (and,
    /// without waiting, not even waited for).
    fn read_record(
        &self,
        at: Position,
        kind: Kind,
        mode: ReadMode,
        check_crc: bool,
        expected: Option<usize>,
    ) -> Result<bytes::Bytes, ReadError> {
        self.reader(at.segment, mode)?
            .read(at.offset, kind, mode, check_crc, expected)
    }

    /// A reader of `segment`; without waiting, not even for the log's lock.
    fn reader(&self, segment: u32, mode: ReadMode) -> Result<SegmentReader, ReadError> {
        let reader = match mode {
            ReadMode::Wait => self.log().reader(segment),
            ReadMode::NoWait => match self.log.try_lock() {
                Ok(log) => log.reader(segment),
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().reader(segment),
                Err(std::sync::TryLockError::WouldBlock) => return Err(ReadError::WouldBlock),
            },
        };
        reader.ok_or(ReadError::Gone)
    }

    /// The commit record at `at` if it is `key`'s, and its payload length; `None` when it
    /// cannot be read (counted). `expected`: its payload length when the index knows it.
    fn read_commit(
        &self,
        at: Position,
        key: &[u8; 16],
        mode: ReadMode,
        expected: Option<usize>,
    ) -> Result<Option<(Commit, usize)>, WouldBlock> {
        let payload = match self.read_record(at, Kind::Commit, mode, true, expected) {
            Ok(p) => p,
            Err(ReadError::WouldBlock) => return Err(WouldBlock),
            Err(e) => {
                self.note_read_failure(&e);
                return Ok(None);
            }
        };
        Ok(Commit::decode(&payload)
            .ok()
            .filter(|c| &c.key == key)
            .map(|c| (c, payload.len())))
    }

    fn note_read_failure(&self, e: &ReadError) {
        match e {
            ReadError::Gone | ReadError::WouldBlock => {}
            ReadError::Damaged(_) => self.count_damaged(),
            ReadError::Io(err) => {
                self.counters.read_errors.fetch_add(1, Ordering::Relaxed);
                log::error!(
                    "disk cache {}: read failed: {err}",
                    self.config.path.display()
                );
            }
        }
    }

    /// Reads the whole body once, fragment by fragment, against its length and CRC.
    fn verify(
        &self,
        object: &DiskObject,
        body_crc: u32,
        mode: ReadMode,
    ) -> Result<Result<(), Damage>, WouldBlock> {
        let mut crc = crc32fast::Hasher::new();
        let mut len = 0u64;
        for i in 0..object.fragments.len() {
            let data = match self.fragment_with(object, i, mode, true) {
                Ok(data) => data,
                Err(ReadError::WouldBlock) => return Err(WouldBlock),
                Err(ReadError::Damaged(d)) => return Ok(Err(d)),
                Err(_) => return Ok(Err(Damage::Truncated)),
            };
            len += data.len() as u64;
            crc.update(&data);
        }
        if len != object.body_len {
            return Ok(Err(Damage::Truncated));
        }
        if crc.finalize() != body_crc {
            return Ok(Err(Damage::Checksum));
        }
        Ok(Ok(()))
    }

    /// The body bytes of fragment `i` of `object`. An object comes from
    /// [`lookup`](Self::lookup), which checked its whole body against its CRC since the
    /// store opened: its fragments are not checked record by record again (their fill id
    /// and sequence number still are, so a wrong record is never served).
    pub fn fragment(&self, object: &DiskObject, i: usize) -> Result<bytes::Bytes, ReadError> {
        self.fragment_with(object, i, ReadMode::Wait, false)
    }

    /// [`fragment`](Self::fragment) from the page cache without waiting, or
    /// [`ReadError::WouldBlock`].
    pub fn fragment_now(&self, object: &DiskObject, i: usize) -> Result<bytes::Bytes, ReadError> {
        self.fragment_with(object, i, ReadMode::NoWait, false)
    }

    fn fragment_with(
        &self,
        object: &DiskObject,
        i: usize,
        mode: ReadMode,
        check_crc: bool,
    ) -> Result<bytes::Bytes, ReadError> {
        let f = object
            .fragments
            .get(i)
            .ok_or(ReadError::Damaged(Damage::Malformed))?;
        let expected = record::FRAGMENT_PREFIX + f.len as usize;
        let payload = self.read_record(f.at, Kind::Fragment, mode, check_crc, Some(expected))?;
        let data_len = record::fragment_data(&payload, object.fill, i as u32)
            .map_err(ReadError::Damaged)?
            .len();
        if data_len != f.len as usize {
            return Err(ReadError::Damaged(Damage::Malformed));
        }
        // The data is the payload's tail: a view of it, not a copy.
        Ok(payload.slice(payload.len() - data_len..))
    }

    /// Bytes `range` of fragment `i` of `object` as a region of its segment file, to send
    /// without reading it (`sendfile`): `None` when the page cache does not hold them all or
    /// the log is busy (read them with [`fragment_now`](Self::fragment_now) instead). A
    /// region found in the page cache within the last second is trusted to still be there
    /// (one system call less per hit on hot objects; see `resident.rs`).
    ///
    /// Nothing of the record is read again: the lookup that gave `object` checked every one of
    /// its fragments since the store opened (record header, fill id, sequence number, and the
    /// whole body against its length and CRC), and the log never writes over a record. A
    /// read of the record's header here would guard nothing the body bytes sent after it
    /// are not equally exposed to, at the cost of a system call per hit.
    pub fn fragment_region(
        &self,
        object: &DiskObject,
        i: usize,
        range: std::ops::Range<usize>,
    ) -> Result<Option<FileRegion>, ReadError> {
        let f = object
            .fragments
            .get(i)
            .ok_or(ReadError::Damaged(Damage::Malformed))?;
        let reader = match self.reader(f.at.segment, ReadMode::NoWait) {
            Err(ReadError::WouldBlock) => return Ok(None),
            found => found?,
        };
        let data = record::FRAGMENT_PREFIX + range.start..record::FRAGMENT_PREFIX + range.end;
        let region = reader.payload_region(
            (f.at.segment, f.at.offset),
            record::FRAGMENT_PREFIX + f.len as usize,
            data,
            &self.resident,
        )?;
        Ok(region.map(|r| r.tallied(self.counters.regions.clone())))
    }

    /// Removes `key`'s entry if it still points at `at`.
    fn drop_entry(&self, key: &[u8; 16], at: Position) {
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        if index.get(key).is_some_and(|e| e.commit == at) {
            index.remove(key);
        }
    }

    /// Records a purge (so that it holds after a restart) and applies it. Returns how many
    /// objects a key purge removed; rules count nothing here (they apply at lookup).
    ///
    /// A purge that cannot be recorded (the disk is full or failing) empties the tier:
    /// deleting its files needs no space, and no purged object can then come back, in this
    /// process or after a restart. Rare (a disk fault and a purge together), and safe.
    pub fn purge(&self, purge: Purge) -> Result<usize, DiskError> {
        let at = match self.append(Kind::Purge, &purge.encode()) {
            Ok(at) => at,
            Err(e) => {
                let removed = self.stats().objects as usize;
                self.wipe();
                log::error!(
                    "disk cache {}: a purge could not be recorded ({e}): emptied the disk \
                     tier so that nothing it selects can be served again",
                    self.config.path.display()
                );
                return Ok(removed);
            }
        };
        let removed = match &purge.selector {
            Selector::Key(k) if !purge.soft => usize::from(
                self.index
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains_key(k),
            ),
            Selector::All if !purge.soft => self
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            _ => 0,
        };
        self.apply_purge(at, purge);
        Ok(removed)
    }

    /// Deletes every segment and forgets every object and rule.
    fn wipe(&self) {
        let mut log = self.log();
        checkpoint::remove(&self.config.path);
        if let Err(e) = log.delete_all() {
            log::error!(
                "disk cache {}: cannot delete segments: {e}",
                self.config.path.display()
            );
        }
        // Lock order: log, then index, then rules.
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let evicted = index.len() as u64;
        index.clear();
        drop(index);
        self.rules
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.counters
            .evictions
            .fetch_add(evicted, Ordering::Relaxed);
    }

    pub fn stats(&self) -> DiskStats {
        let log = self.log();
        DiskStats {
            bytes: log.total_bytes(),
            segments: log.numbers().len() as u64,
            objects: self
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len() as u64,
        }
    }

    /// Where `key`'s commit record is, and whether its body was checked since the store
    /// opened.
    fn filed(&self, key: &[u8; 16]) -> Option<(Position, bool)> {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map(|e| (e.commit, e.verified.load(Ordering::Acquire)))
    }

    /// Whether an object is filed under `key` (no checks: for admission decisions).
    pub fn contains(&self, key: &[u8; 16]) -> bool {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key)
    }

    /// Replaces the metadata of the object under `key` (a revalidation refreshed it): a new
    /// commit record for the same fragments. False when nothing usable is stored there.
    pub fn update_meta(&self, key: &[u8; 16], meta: Vec<u8>) -> Result<bool, DiskError> {
        let found = self.filed(key);
        let Some((at, verified)) = found else {
            return Ok(false);
        };
        let Ok(Some((mut commit, _))) = self.read_commit(at, key, ReadMode::Wait, None) else {
            return Ok(false);
        };
        // A new commit comes after the rules made since the old one. A hard one must keep
        // applying; a soft one is what this revalidation answered, and is done with.
        if self.selected_since(at, &commit, false) {
            return Ok(false);
        }
        commit.meta = meta.into();
        let payload = commit.encode();
        let new_at = self.append(Kind::Commit, &payload)?;
        let oldest = self.log().oldest().unwrap_or(0);
        if commit.fragments.iter().any(|f| f.at.segment < oldest) {
            return Ok(false);
        }
        self.file_commit(new_at, &commit, payload.len(), verified);
        Ok(true)
    }

    /// The body length stored under `key`, if any (no checks: for sizing decisions).
    pub fn body_len(&self, key: &[u8; 16]) -> Option<u64> {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map(|e| e.body_len)
    }
}

/// Whether a purge's selector takes in a committed object.
fn selects(selector: &Selector, commit: &Commit) -> bool {
    match selector {
        Selector::Key(k) => *k == commit.key,
        Selector::Prefix(p) => without_scheme(&commit.url).starts_with(without_scheme(p)),
        Selector::Url(u) => without_scheme(&commit.url) == without_scheme(u),
        Selector::Tag(t) => commit.tags.iter().any(|x| x == t),
        Selector::All => true,
    }
}

fn without_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// A stored object found by [`DiskStore::lookup`]: its metadata, and where its body is.
#[derive(Debug, Clone)]
pub struct DiskObject {
    pub body_len: u64,
    fill: u64,
    fragments: Vec<FragmentRef>,
    pub url: String,
    pub tags: Vec<String>,
    /// A view of the commit record read.
    pub meta: bytes::Bytes,
    /// A soft purge made after it was stored: serve it as stale.
    pub soft_purged: bool,
}

impl DiskObject {
    /// The fragments holding bytes `start..end` of the body, each with the range of its own
    /// bytes to send: reading a range seeks to its first fragment.
    pub fn fragments_for(&self, start: u64, end: u64) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for (i, f) in self.fragments.iter().enumerate() {
            let len = u64::from(f.len);
            let (from, to) = (offset, offset + len);
            offset = to;
            if to <= start || from >= end {
                continue;
            }
            let a = start.max(from) - from;
            let b = end.min(to) - from;
            out.push((i, a as usize..b as usize));
        }
        out
    }
}

/// An object being written. Dropped without [`commit`](Self::commit), it never becomes
/// visible (its fragments are garbage the log reclaims with their segment).
#[derive(Debug)]
pub struct DiskWriter {
    store: Arc<DiskStore>,
    fill: u64,
    seq: u32,
    buf: Vec<u8>,
    fragments: Vec<FragmentRef>,
    crc: crc32fast::Hasher,
    len: u64,
    commit: Commit,
}

impl DiskWriter {
    /// Adds body bytes; whole fragments are appended as they fill.
    pub fn write(&mut self, data: &[u8]) -> Result<(), DiskError> {
        self.len += data.len() as u64;
        if self.len > self.store.config.max_object {
            return Err(DiskError::TooLarge);
        }
        self.crc.update(data);
        self.buf.extend_from_slice(data);
        while self.buf.len() >= FRAGMENT_BYTES {
            let rest = self.buf.split_off(FRAGMENT_BYTES);
            let full = std::mem::replace(&mut self.buf, rest);
            self.append_fragment(&full)?;
        }
        Ok(())
    }

    fn append_fragment(&mut self, data: &[u8]) -> Result<(), DiskError> {
        let payload = record::fragment_payload(self.fill, self.seq, data);
        let at = self.store.append(Kind::Fragment, &payload)?;
        self.fragments.push(FragmentRef {
            at,
            len: data.len() as u32,
        });
        self.seq += 1;
        Ok(())
    }

    /// Appends the last fragment and the commit record: from here on the object is served.
    /// False when a segment it wrote to was evicted meanwhile (the object is incomplete).
    pub fn commit(mut self) -> Result<bool, DiskError> {
        if !self.buf.is_empty() || self.fragments.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.append_fragment(&last)?;
        }
        let mut commit = std::mem::replace(
            &mut self.commit,
            Commit {
                key: [0; 16],
                fill: 0,
                body_len: 0,
                body_crc: 0,
                fragments: Vec::new(),
                url: String::new(),
                tags: Vec::new(),
                meta: bytes::Bytes::new(),
            },
        );
        commit.fill = self.fill;
        commit.body_len = self.len;
        commit.body_crc = self.crc.clone().finalize();
        commit.fragments = std::mem::take(&mut self.fragments);
        let payload = commit.encode();
        let at = self.store.append(Kind::Commit, &payload)?;
        let oldest = self.store.log().oldest().unwrap_or(0);
        if commit.fragments.iter().any(|f| f.at.segment < oldest) {
            return Ok(false);
        }
        self.store.file_commit(at, &commit, payload.len(), true);
        self.store.counters.writes.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }
}
