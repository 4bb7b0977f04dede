//! A snapshot of the index and the purge rules as of a log position, so that opening the
//! store reads the snapshot and scans only what the log holds after it, instead of every
//! record (a million objects: one read of about 40 MB instead of two million record headers).
//! It is read as a stream ([`SnapshotReader`]): entries go into the index as they are read,
//! so neither the file nor a list of its entries is ever held whole beside the index.
//!
//! It is taken under the log's lock, so it is exactly the state the log had at its position;
//! written to a temporary file, synced and renamed, so a crash leaves the old one or the new
//! one. On open it is read and removed; one that does not parse, whose CRC fails, or whose
//! position is not in the log is ignored (the whole log is scanned); entries in segments
//! evicted since are dropped, and the log after the position is replayed as a full scan
//! would (commits, purges). Bodies are still checked against their CRC before their first
//! serve, as after a full scan.

use super::record::{Position, Purge, Reader};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"MRDNCKP1";
const FILE: &str = "index.ckpt";

/// One index entry as the snapshot holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SavedEntry {
    pub key: [u8; 16],
    pub commit: Position,
    pub first_segment: u32,
    pub body_len: u64,
}

/// The index and rules as of the log position `at` (where a later scan resumes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub at: Position,
    pub next_fill: u64,
    pub entries: Vec<SavedEntry>,
    pub rules: Vec<(Position, Purge)>,
}

fn put_position(out: &mut impl Write, at: Position) -> io::Result<()> {
    out.write_all(&at.segment.to_le_bytes())?;
    out.write_all(&at.offset.to_le_bytes())
}

fn position(r: &mut Reader<'_>) -> Option<Position> {
    Some(Position {
        segment: r.u32().ok()?,
        offset: r.u32().ok()?,
    })
}

impl Snapshot {
    /// Writes the snapshot's bytes to `out` as they are made, its CRC last: a million entries
    /// are never encoded into one buffer beside the snapshot (36 MB that an idle allocator
    /// kept in the process's RSS after the checkpoint an open writes).
    fn encode_to(&self, out: impl Write) -> io::Result<()> {
        let mut out = CrcWriter {
            inner: out,
            crc: crc32fast::Hasher::new(),
        };
        out.write_all(MAGIC)?;
        put_position(&mut out, self.at)?;
        out.write_all(&self.next_fill.to_le_bytes())?;
        out.write_all(&(self.entries.len() as u64).to_le_bytes())?;
        for e in &self.entries {
            out.write_all(&e.key)?;
            put_position(&mut out, e.commit)?;
            out.write_all(&e.first_segment.to_le_bytes())?;
            out.write_all(&e.body_len.to_le_bytes())?;
        }
        out.write_all(&(self.rules.len() as u64).to_le_bytes())?;
        for (at, purge) in &self.rules {
            put_position(&mut out, *at)?;
            let encoded = purge.encode();
            out.write_all(&(encoded.len() as u32).to_le_bytes())?;
            out.write_all(&encoded)?;
        }
        let crc = out.crc.finalize();
        out.inner.write_all(&crc.to_le_bytes())
    }

    #[cfg(test)]
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out).unwrap_or_default();
        out
    }
}

/// A writer that keeps the CRC of everything written through it.
struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `snapshot` in `dir` in place of the last one: a crash leaves one or the other.
pub(super) fn write(dir: &Path, snapshot: &Snapshot) -> io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    snapshot.encode_to(&mut out)?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    File::open(dir)?.sync_all()
}

/// Bytes of the file's header: magic, position, next fill id, entry count.
const HEAD_LEN: usize = 8 + 8 + 8 + 8;
/// Bytes of one entry in the file: key, commit position, first segment, body length.
const ENTRY_LEN: usize = 16 + 8 + 4 + 8;

/// The snapshot in `dir` as a stream, if there is one whose header parses. It is consumed:
/// removed once opened, so it can never be applied to a log that changed after this open (a
/// crash later means a full scan, unless a newer checkpoint was written).
pub(super) fn take(dir: &Path) -> Option<SnapshotReader> {
    let file = File::open(dir.join(FILE)).ok();
    remove(dir);
    let file = file?;
    let len = file.metadata().ok()?.len();
    SnapshotReader::new(BufReader::with_capacity(64 << 10, file), len)
}

/// A snapshot being read: its header, then its entries one at a time (an iterator, which
/// ends early on damage), then [`finish`](Self::finish), which reads the rules and checks
/// the CRC of the whole file. Nothing read is to be trusted until `finish` says so: the
/// caller undoes what it did with the entries when it returns `None`.
pub(super) struct SnapshotReader {
    file: BufReader<File>,
    crc: crc32fast::Hasher,
    pub at: Position,
    pub next_fill: u64,
    /// Entries the header announces.
    pub count: u64,
    /// The file's length: what bounds the entries it can really hold.
    len: u64,
    read: u64,
    damaged: bool,
}

impl SnapshotReader {
    fn new(file: BufReader<File>, len: u64) -> Option<SnapshotReader> {
        let mut reader = SnapshotReader {
            file,
            len,
            crc: crc32fast::Hasher::new(),
            at: Position {
                segment: 0,
                offset: 0,
            },
            next_fill: 0,
            count: 0,
            read: 0,
            damaged: false,
        };
        let head: [u8; HEAD_LEN] = reader.bytes()?;
        let mut r = Reader(&head);
        if r.take(MAGIC.len()).ok()? != MAGIC {
            return None;
        }
        reader.at = position(&mut r)?;
        reader.next_fill = r.u64().ok()?;
        reader.count = r.u64().ok()?;
        Some(reader)
    }

    /// The entries the file can hold, at most the count announced: what to reserve room
    /// for before the CRC has said whether the count is true.
    pub fn capacity(&self) -> usize {
        let room = self.len.saturating_sub(HEAD_LEN as u64) / ENTRY_LEN as u64;
        usize::try_from(self.count.min(room)).unwrap_or(0)
    }

    /// The next `N` bytes, counted in the CRC.
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        self.file.read_exact(&mut buf).ok()?;
        self.crc.update(&buf);
        Some(buf)
    }

    /// The rules, once every entry has been read and the file checks (CRC, nothing after
    /// it); `None` when the snapshot is damaged or was not read to its end.
    pub fn finish(mut self) -> Option<Vec<(Position, Purge)>> {
        if self.damaged || self.read != self.count {
            return None;
        }
        let count = u64::from_le_bytes(self.bytes()?);
        let mut rules = Vec::new();
        for _ in 0..count {
            let head: [u8; 12] = self.bytes()?;
            let mut r = Reader(&head);
            let at = position(&mut r)?;
            let len = usize::try_from(r.u32().ok()?).ok()?;
            // A rule is a URL, a prefix or a tag: a length past this is damage, not a buffer.
            if len > 1 << 20 {
                return None;
            }
            let mut encoded = vec![0u8; len];
            self.file.read_exact(&mut encoded).ok()?;
            self.crc.update(&encoded);
            rules.push((at, Purge::decode(&encoded).ok()?));
        }
        let crc = self.crc.clone().finalize();
        let mut stored = [0u8; 4];
        self.file.read_exact(&mut stored).ok()?;
        let at_end = matches!(self.file.read(&mut [0u8; 1]), Ok(0));
        (crc.to_le_bytes() == stored && at_end).then_some(rules)
    }
}

impl Iterator for SnapshotReader {
    type Item = SavedEntry;

    fn next(&mut self) -> Option<SavedEntry> {
        if self.damaged || self.read == self.count {
            return None;
        }
        let Some(bytes) = self.bytes::<ENTRY_LEN>() else {
            self.damaged = true;
            return None;
        };
        self.read += 1;
        let mut r = Reader(&bytes);
        let entry = (|| {
            Some(SavedEntry {
                key: r.array().ok()?,
                commit: position(&mut r)?,
                first_segment: r.u32().ok()?,
                body_len: r.u64().ok()?,
            })
        })();
        self.damaged |= entry.is_none();
        entry
    }
}

/// Removes the snapshot in `dir`, if any.
pub(super) fn remove(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE));
}

#[cfg(test)]
mod tests {
    use super::super::record::Selector;
    use super::*;

    #[test]
    fn a_snapshot_reads_back_as_written_and_a_damaged_one_not_at_all() {
        let snapshot = Snapshot {
            at: Position {
                segment: 7,
                offset: 4096,
            },
            next_fill: 99,
            entries: vec![SavedEntry {
                key: [3; 16],
                commit: Position {
                    segment: 6,
                    offset: 12,
                },
                first_segment: 5,
                body_len: 1 << 20,
            }],
            rules: vec![(
                Position {
                    segment: 7,
                    offset: 100,
                },
                Purge {
                    selector: Selector::Tag("news".into()),
                    soft: true,
                },
            )],
        };
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &snapshot).unwrap();
        assert_eq!(read_back(dir.path()), Some(snapshot.clone()));
        assert!(take(dir.path()).is_none(), "taken once");
        let bytes = snapshot.encode();
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        for (damage, bad) in [
            ("a flipped bit in an entry", flipped),
            ("a cut file", bytes[..bytes.len() - 10].to_vec()),
            ("a cut header", bytes[..10].to_vec()),
            ("bytes after the CRC", [&bytes[..], b"x"].concat()),
            ("an empty file", Vec::new()),
        ] {
            std::fs::write(dir.path().join(FILE), bad).unwrap();
            assert_eq!(read_back(dir.path()), None, "{damage}");
        }
    }

    #[test]
    fn an_entry_count_the_file_cannot_hold_ends_the_stream_without_allocating_it() {
        let mut bytes = Snapshot {
            at: Position {
                segment: 1,
                offset: 0,
            },
            next_fill: 1,
            entries: Vec::new(),
            rules: Vec::new(),
        }
        .encode();
        bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), bytes).unwrap();
        let mut reader = take(dir.path()).unwrap();
        assert_eq!(reader.count, u64::MAX);
        assert_eq!(
            reader.capacity(),
            0,
            "room is reserved for what the file holds"
        );
        assert_eq!(reader.by_ref().count(), 0, "no entry is there to read");
        assert_eq!(reader.finish(), None);
    }

    /// The snapshot in `dir` read whole, as the store reads it: entries, then the check.
    fn read_back(dir: &Path) -> Option<Snapshot> {
        let mut reader = take(dir)?;
        let (at, next_fill) = (reader.at, reader.next_fill);
        let entries: Vec<SavedEntry> = reader.by_ref().collect();
        let rules = reader.finish()?;
        Some(Snapshot {
            at,
            next_fill,
            entries,
            rules,
        })
    }
}
