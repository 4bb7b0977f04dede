//! The log's files: numbered segments of at most `segment_size` bytes, appended to one at a
//! time and deleted whole, oldest first. A few large files, never one file per object.

use super::record::{self, Damage, Header, Kind, Position, HEADER_LEN};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".seg";

/// The segment files of one directory.
#[derive(Debug)]
pub struct Segments {
    dir: PathBuf,
    segment_size: u32,
    /// Open segments by number, with their length in bytes.
    files: BTreeMap<u32, (File, u32)>,
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
            files.insert(number, (file, len));
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
        self.files.insert(number, (file, 0));
        self.last_number = self.last_number.max(number);
        Ok(number)
    }

    /// The verified payload of the record at `at`, if it is of `kind`.
    pub fn read(&self, at: Position, kind: Kind) -> Result<Vec<u8>, ReadError> {
        let header = self.read_header(at)?;
        if header.kind != kind {
            return Err(ReadError::Damaged(Damage::NotARecord));
        }
        let (file, _) = self.files.get(&at.segment).ok_or(ReadError::Gone)?;
        let mut payload = vec![0u8; header.payload_len];
        file.read_exact_at(&mut payload, u64::from(at.offset) + HEADER_LEN as u64)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => ReadError::Damaged(Damage::Truncated),
                _ => ReadError::Io(e),
            })?;
        header.verify(&payload).map_err(ReadError::Damaged)?;
        Ok(payload)
    }

    /// The header of the record at `at`, if the whole record lies within its segment.
    pub fn read_header(&self, at: Position) -> Result<Header, ReadError> {
        let (file, len) = self.files.get(&at.segment).ok_or(ReadError::Gone)?;
        if u64::from(at.offset) + HEADER_LEN as u64 > u64::from(*len) {
            return Err(ReadError::Damaged(Damage::Truncated));
        }
        let mut h = [0u8; HEADER_LEN];
        // Fewer bytes than the log wrote (the file was cut under it) is damage, not a fault.
        file.read_exact_at(&mut h, u64::from(at.offset))
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => ReadError::Damaged(Damage::Truncated),
                _ => ReadError::Io(e),
            })?;
        let header = Header::parse(&h).map_err(ReadError::Damaged)?;
        if u64::from(at.offset) + (HEADER_LEN + header.payload_len) as u64 > u64::from(*len) {
            return Err(ReadError::Damaged(Damage::Truncated));
        }
        Ok(header)
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

/// Why a record could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Its segment was evicted.
    Gone,
    /// The bytes are not a whole, intact record of the expected kind.
    Damaged(Damage),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Gone => f.write_str("segment evicted"),
            ReadError::Damaged(d) => d.fmt(f),
            ReadError::Io(e) => e.fmt(f),
        }
    }
}
