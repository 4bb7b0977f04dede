//! The log's files: numbered segments of at most `segment_size` bytes, appended to one at a
//! time and deleted whole, oldest first. A few large files, never one file per object.

use super::record::{self, Damage, Header, Kind, Position, HEADER_LEN};
use super::resident::{RegionId, ResidentMemo};
use bytes::Bytes;
use pingora_core::protocols::file_region::FileRegion;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SUFFIX: &str = ".seg";
/// Payload bytes read with a header whose length is not known beforehand: enough for a
/// commit record with a URL, a few tags and a typical response header.
const PAYLOAD_GUESS: usize = 2048;

/// The segment files of one directory.
#[derive(Debug)]
pub struct Segments {
    dir: PathBuf,
    segment_size: u32,
    /// Open segments by number, with their length in bytes. Shared, so that a read holds
    /// the log's lock only to find its file, not while it reads.
    files: BTreeMap<u32, (Arc<File>, u32)>,
    /// The highest number a segment ever had here: numbers only grow, even after every
    /// segment is deleted, so a position in a deleted segment never names a new one.
    last_number: u32,
}

impl Segments {
    /// Opens every segment in `dir`, creating the directory if needed.
    pub fn open(dir: &Path, segment_size: u32) -> io::Result<Segments> {
        std::fs::create_dir_all(dir)?;
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(number) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(entry.path())?;
            let len = u32::try_from(file.metadata()?.len()).unwrap_or(u32::MAX);
            files.insert(number, (Arc::new(file), len));
        }
        let last_number = files.keys().next_back().copied().unwrap_or(0);
        Ok(Segments {
            dir: dir.to_path_buf(),
            segment_size,
            files,
            last_number,
        })
    }

    fn path(&self, number: u32) -> PathBuf {
        self.dir.join(format!("{number:010}{SUFFIX}"))
    }

    /// Segment numbers, oldest first.
    pub fn numbers(&self) -> Vec<u32> {
        self.files.keys().copied().collect()
    }

    pub fn oldest(&self) -> Option<u32> {
        self.files.keys().next().copied()
    }

    /// Bytes held by all segments.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|(_, len)| u64::from(*len)).sum()
    }

    /// Where the next record would go in the current segment (its end; the start of the log
    /// when there is no segment yet).
    pub fn end(&self) -> Position {
        self.files.iter().next_back().map_or(
            Position {
                segment: 0,
                offset: 0,
            },
            |(n, (_, len))| Position {
                segment: *n,
                offset: *len,
            },
        )
    }

    pub fn len_of(&self, number: u32) -> Option<u32> {
        self.files.get(&number).map(|(_, len)| *len)
    }

    /// Appends one record; a new segment is started when the current one would pass
    /// `segment_size`. Returns where the record starts.
    pub fn append(&mut self, kind: Kind, payload: &[u8]) -> io::Result<Position> {
        let bytes = record::encode(kind, payload);
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
        let current = self.files.iter().next_back().map(|(n, (_, l))| (*n, *l));
        let number = match current {
            Some((n, used)) if used.saturating_add(len) <= self.segment_size || used == 0 => n,
            Some(_) | None => self.create(self.last_number + 1)?,
        };
        let (file, used) = self
            .files
            .get_mut(&number)
            .ok_or_else(|| io::Error::other("segment vanished"))?;
        file.write_all_at(&bytes, u64::from(*used))?;
        let at = Position {
            segment: number,
            offset: *used,
        };
        *used += len;
        Ok(at)
    }

    fn create(&mut self, number: u32) -> io::Result<u32> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path(number))?;
        self.files.insert(number, (Arc::new(file), 0));
        self.last_number = self.last_number.max(number);
        Ok(number)
    }

    /// A handle on segment `number` as it is now, for reading without the log's lock.
    pub fn reader(&self, number: u32) -> Option<SegmentReader> {
        let (file, len) = self.files.get(&number)?;
        Some(SegmentReader {
            file: file.clone(),
            len: *len,
        })
    }

    /// The verified payload of the record at `at`, if it is of `kind`.
    pub fn read(&self, at: Position, kind: Kind) -> Result<Bytes, ReadError> {
        self.reader(at.segment).ok_or(ReadError::Gone)?.read(
            at.offset,
            kind,
            ReadMode::Wait,
            true,
            None,
        )
    }

    /// The header of the record at `at`, if the whole record lies within its segment.
    pub fn read_header(&self, at: Position) -> Result<Header, ReadError> {
        self.reader(at.segment)
            .ok_or(ReadError::Gone)?
            .read_header(at.offset, ReadMode::Wait)
    }

    /// Cuts segment `number` at `len` bytes (a torn tail found at recovery).
    pub fn truncate(&mut self, number: u32, len: u32) -> io::Result<()> {
        if let Some((file, used)) = self.files.get_mut(&number) {
            file.set_len(u64::from(len))?;
            *used = len;
        }
        Ok(())
    }

    /// Deletes every segment (no space is needed for that, even on a full disk).
    pub fn delete_all(&mut self) -> io::Result<()> {
        let mut first_error = None;
        for number in self.numbers() {
            self.files.remove(&number);
            match std::fs::remove_file(self.path(number)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    first_error.get_or_insert(e);
                }
                _ => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes the oldest segment unless it is the one being appended to; returns its number.
    pub fn delete_oldest(&mut self) -> io::Result<Option<u32>> {
        if self.files.len() < 2 {
            return Ok(None);
        }
        let Some(number) = self.oldest() else {
            return Ok(None);
        };
        self.files.remove(&number);
        match std::fs::remove_file(self.path(number)) {
            Ok(()) => Ok(Some(number)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some(number)),
            Err(e) => Err(e),
        }
    }
}

/// Whether a read may wait for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// An ordinary read (on the blocking pool).
    Wait,
    /// Only what the page cache holds, at once (on a proxy thread); anything else is
    /// [`ReadError::WouldBlock`], to be read again on the blocking pool.
    NoWait,
}

/// One segment file and its length when the handle was taken. Readable after the segment
/// is deleted (the open file keeps its bytes), so a read never races an eviction.
#[derive(Debug, Clone)]
pub struct SegmentReader {
    file: Arc<File>,
    len: u32,
}

impl SegmentReader {
    /// The payload of the record at `offset`, if it is of `kind`; checked against the
    /// record's CRC with `check_crc` (a fragment of an object whose whole body was checked
    /// since the store opened need not be again).
    ///
    /// Header and payload come in one read: all of it when the caller knows the payload's
    /// length (`expected`: a fragment's, from its commit; a record of another length there is
    /// damage), else header and a guess that holds most commit records, and the rest after.
    pub fn read(
        &self,
        offset: u32,
        kind: Kind,
        mode: ReadMode,
        check_crc: bool,
        expected: Option<usize>,
    ) -> Result<Bytes, ReadError> {
        let start = u64::from(offset);
        let room = usize::try_from(u64::from(self.len).saturating_sub(start)).unwrap_or(0);
        if room < HEADER_LEN {
            return Err(ReadError::Damaged(Damage::Truncated));
        }
        let mut buf = vec![0u8; (HEADER_LEN + expected.unwrap_or(PAYLOAD_GUESS)).min(room)];
        self.read_exact(&mut buf, start, mode)?;
        let header = Header::parse(&buf).map_err(ReadError::Damaged)?;
        if header.kind != kind {
            return Err(ReadError::Damaged(Damage::NotARecord));
        }
        if expected.is_some_and(|len| len != header.payload_len) {
            return Err(ReadError::Damaged(Damage::Malformed));
        }
        let total = HEADER_LEN + header.payload_len;
        if total > room {
            return Err(ReadError::Damaged(Damage::Truncated));
        }
        let have = buf.len();
        if total > have {
            buf.resize(total, 0);
            self.read_exact(&mut buf[have..], start + have as u64, mode)?;
        } else {
            buf.truncate(total);
        }
        if check_crc {
            header
                .verify(&buf[HEADER_LEN..])
                .map_err(ReadError::Damaged)?;
        }
        // The payload is a view of the one buffer read, not a copy.
        Ok(Bytes::from(buf).slice(HEADER_LEN..))
    }

    /// Payload bytes `data` of the record at `offset` (its payload `expected` bytes long) as a
    /// region of the segment file, to send as they are, when the page cache holds all of them
    /// (`None`: read them instead). Nothing is read: the caller knows the record is there
    /// and intact (see [`DiskStore::fragment_region`](super::DiskStore::fragment_region)).
    /// A region `memo` saw in the page cache a moment ago is not asked about again (this
    /// reader's file is segment `segment`).
    pub fn payload_region(
        &self,
        (segment, offset): (u32, u32),
        expected: usize,
        data: std::ops::Range<usize>,
        memo: &ResidentMemo,
    ) -> Result<Option<FileRegion>, ReadError> {
        let start = u64::from(offset);
        if start + (HEADER_LEN + expected) as u64 > u64::from(self.len) {
            return Err(ReadError::Damaged(Damage::Truncated));
        }
        if data.start > data.end || data.end > expected {
            return Err(ReadError::Damaged(Damage::Malformed));
        }
        let at = start + (HEADER_LEN + data.start) as u64;
        let id = RegionId {
            segment,
            offset: at,
            len: data.len(),
        };
        if memo.recently_cached(id) {
            return Ok(FileRegion::trusted(self.file.clone(), at, data.len()));
        }
        let region = FileRegion::cached(self.file.clone(), at, data.len());
        if region.is_some() {
            memo.found_cached(id);
        }
        Ok(region)
    }

    /// The header of the record at `offset`, if the whole record lies within the segment.
    pub fn read_header(&self, offset: u32, mode: ReadMode) -> Result<Header, ReadError> {
        if u64::from(offset) + HEADER_LEN as u64 > u64::from(self.len) {
            return Err(ReadError::Damaged(Damage::Truncated));
        }
        let mut h = [0u8; HEADER_LEN];
        self.read_exact(&mut h, u64::from(offset), mode)?;
        let header = Header::parse(&h).map_err(ReadError::Damaged)?;
        if u64::from(offset) + (HEADER_LEN + header.payload_len) as u64 > u64::from(self.len) {
            return Err(ReadError::Damaged(Damage::Truncated));
        }
        Ok(header)
    }

    fn read_exact(&self, buf: &mut [u8], offset: u64, mode: ReadMode) -> Result<(), ReadError> {
        match mode {
            // Fewer bytes than the log wrote (the file was cut under it) is damage.
            ReadMode::Wait => self
                .file
                .read_exact_at(buf, offset)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => ReadError::Damaged(Damage::Truncated),
                    _ => ReadError::Io(e),
                }),
            // One call: a short read (part of the range not cached, or the end of a cut
            // file) is left to the waiting read to sort out.
            ReadMode::NoWait => {
                let mut bufs = [io::IoSliceMut::new(buf)];
                match rustix::io::preadv2(
                    &*self.file,
                    &mut bufs,
                    offset,
                    rustix::io::ReadWriteFlags::NOWAIT,
                ) {
                    Ok(n) if n == bufs[0].len() => Ok(()),
                    _ => Err(ReadError::WouldBlock),
                }
            }
        }
    }
}

/// Why a record could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// A [`ReadMode::NoWait`] read found the bytes not in memory (or the log busy).
    WouldBlock,
    /// Its segment was evicted.
    Gone,
    /// The bytes are not a whole, intact record of the expected kind.
    Damaged(Damage),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::WouldBlock => f.write_str("not in the page cache"),
            ReadError::Gone => f.write_str("segment evicted"),
            ReadError::Damaged(d) => d.fmt(f),
            ReadError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}
