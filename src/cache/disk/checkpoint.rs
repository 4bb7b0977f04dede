//! A snapshot of the index and the purge rules as of a log position, so that opening the
//! store reads the snapshot and scans only what the log holds after it, instead of every
//! record (a million objects: one read of about 40 MB instead of two million record headers).
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
use std::io::{self, Write};
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

fn put_position(out: &mut Vec<u8>, at: Position) {
    out.extend_from_slice(&at.segment.to_le_bytes());
    out.extend_from_slice(&at.offset.to_le_bytes());
}

fn position(r: &mut Reader<'_>) -> Option<Position> {
    Some(Position {
        segment: r.u32().ok()?,
        offset: r.u32().ok()?,
    })
}

impl Snapshot {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.entries.len() * 36);
        out.extend_from_slice(MAGIC);
        put_position(&mut out, self.at);
        out.extend_from_slice(&self.next_fill.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.key);
            put_position(&mut out, e.commit);
            out.extend_from_slice(&e.first_segment.to_le_bytes());
            out.extend_from_slice(&e.body_len.to_le_bytes());
        }
        out.extend_from_slice(&(self.rules.len() as u64).to_le_bytes());
        for (at, purge) in &self.rules {
            put_position(&mut out, *at);
            let encoded = purge.encode();
            out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            out.extend_from_slice(&encoded);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Snapshot> {
        let (body, crc) = bytes.split_at(bytes.len().checked_sub(4)?);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return None;
        }
        let mut r = Reader(body);
        if r.take(MAGIC.len()).ok()? != MAGIC {
            return None;
        }
        let at = position(&mut r)?;
        let next_fill = r.u64().ok()?;
        let count = usize::try_from(r.u64().ok()?).ok()?;
        // Each entry is 36 bytes: a count the file cannot hold is damage, not an allocation.
        let mut entries = Vec::with_capacity(count.min(r.0.len() / 36));
        for _ in 0..count {
            entries.push(SavedEntry {
                key: r.array().ok()?,
                commit: position(&mut r)?,
                first_segment: r.u32().ok()?,
                body_len: r.u64().ok()?,
            });
        }
        let count = usize::try_from(r.u64().ok()?).ok()?;
        let mut rules = Vec::with_capacity(count.min(r.0.len() / 12));
        for _ in 0..count {
            let at = position(&mut r)?;
            let len = usize::try_from(r.u32().ok()?).ok()?;
            rules.push((at, Purge::decode(r.take(len).ok()?).ok()?));
        }
        r.0.is_empty().then_some(Snapshot {
            at,
            next_fill,
            entries,
            rules,
        })
    }
}

/// Writes `snapshot` in `dir` in place of the last one: a crash leaves one or the other.
pub(super) fn write(dir: &Path, snapshot: &Snapshot) -> io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(&snapshot.encode())?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    File::open(dir)?.sync_all()
}

/// The snapshot in `dir`, if there is one that parses and checks. It is consumed: removed
/// once read, so it can never be applied to a log that changed after this open (a crash
/// later means a full scan, unless a newer checkpoint was written).
pub(super) fn take(dir: &Path) -> Option<Snapshot> {
    let bytes = std::fs::read(dir.join(FILE)).ok()?;
    remove(dir);
    Snapshot::decode(&bytes)
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
        assert_eq!(take(dir.path()), Some(snapshot.clone()));
        assert_eq!(take(dir.path()), None, "taken once");
        let mut bytes = snapshot.encode();
        bytes[20] ^= 1;
        assert_eq!(
            Snapshot::decode(&bytes),
            None,
            "the CRC catches a flipped bit"
        );
        assert_eq!(Snapshot::decode(&bytes[..10]), None);
        assert_eq!(Snapshot::decode(&[]), None);
    }
}
