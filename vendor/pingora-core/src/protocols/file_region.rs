// Meridian: this file is new in the vendored copy (vendor/README.md says why).

//! A response body part that lives in a file, sent with `sendfile(2)` instead of being read
//! into memory and written from there.
//!
//! The proxy's body loop moves `Bytes`, so a region travels through it as a *placeholder*:
//! a slice, as long as the region, of a static zeroed array that is never read. The HTTP/1
//! session is handed the region itself (`HttpSession::send_next_body_from_file`) and, when
//! the body write that follows carries exactly that placeholder, sends the file's bytes in
//! its place. A placeholder that arrives without its region is refused with an error: its
//! zeros never reach a client.
//!
//! A region is only made of pages the page cache holds when it is made (`cachestat(2)`), so
//! the `sendfile` on a proxy thread copies no device data and does not wait for a disk.

use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::protocols::l4::stream::Stream as L4Stream;
use crate::protocols::Stream;

/// The largest region one placeholder stands for.
pub const MAX_REGION: usize = 1 << 20;

/// What placeholders are cut from: zeroed, so it lives in `.bss` and costs no memory until
/// read, which nothing does.
static PLACEHOLDER: [u8; MAX_REGION] = [0; MAX_REGION];

/// `len` bytes of a file from `offset`, all in the page cache when the region was made.
#[derive(Debug, Clone)]
pub struct FileRegion {
    file: Arc<File>,
    offset: u64,
    len: usize,
    tally: Option<Arc<RegionTally>>,
}

/// Bytes of regions sent, by how they left: what the caller's metrics read.
#[derive(Debug, Default)]
pub struct RegionTally {
    /// With `sendfile`, never read into memory.
    pub sendfile: AtomicU64,
    /// Read into memory and written (a connection `sendfile` cannot write to).
    pub read: AtomicU64,
}

/// How an HTTP/1 session reaches the TCP stream under its connection, for `sendfile`: the
/// stream itself, or one beneath a wrapper the application put around it. `None`: the
/// region is read and written as bytes.
pub type StreamReach = fn(&mut Stream) -> Option<&mut L4Stream>;

/// The [`StreamReach`] of a connection with no wrapper.
pub fn unwrapped(stream: &mut Stream) -> Option<&mut L4Stream> {
    stream.as_any_mut().downcast_mut::<L4Stream>()
}

impl FileRegion {
    /// The region when every page of it is in the page cache now and it is no longer than
    /// [`MAX_REGION`]; `None` otherwise (read it the usual way), and always where the kernel
    /// has no `cachestat(2)` (before Linux 6.5).
    pub fn cached(file: Arc<File>, offset: u64, len: usize) -> Option<FileRegion> {
        if len == 0 || len > MAX_REGION || !all_cached(&file, offset, len) {
            return None;
        }
        FileRegion::trusted(file, offset, len)
    }

    /// The region, no longer than [`MAX_REGION`], without asking the kernel whether the page
    /// cache holds it: for a caller that found it there a moment ago (Meridian: `cached`
    /// answered yes for this region within the last second), which accepts that a `sendfile`
    /// of pages reclaimed since then waits for the device.
    pub fn trusted(file: Arc<File>, offset: u64, len: usize) -> Option<FileRegion> {
        if len == 0 || len > MAX_REGION {
            return None;
        }
        Some(FileRegion {
            file,
            offset,
            len,
            tally: None,
        })
    }

    /// Counts the region's bytes in `tally` once they are sent.
    pub fn tallied(mut self, tally: Arc<RegionTally>) -> FileRegion {
        self.tally = Some(tally);
        self
    }

    pub(crate) fn count(&self, by_sendfile: bool) {
        if let Some(t) = &self.tally {
            let counter = if by_sendfile { &t.sendfile } else { &t.read };
            counter.fetch_add(self.len as u64, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes that stand for this region in a body write.
    pub fn placeholder(&self) -> Bytes {
        Bytes::from_static(&PLACEHOLDER[..self.len])
    }

    /// Whether `buf` is this region's placeholder.
    pub(crate) fn stands_for(&self, buf: &[u8]) -> bool {
        buf.as_ptr() == PLACEHOLDER.as_ptr() && buf.len() == self.len
    }

    /// The region's bytes in memory: for a connection `sendfile` cannot write to.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; self.len];
        self.file.read_exact_at(&mut buf, self.offset)?;
        Ok(buf)
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

/// Whether `buf` is (part of) a placeholder rather than body bytes.
pub fn is_placeholder(buf: &[u8]) -> bool {
    !buf.is_empty() && PLACEHOLDER.as_ptr_range().contains(&buf.as_ptr())
}

#[cfg(target_os = "linux")]
fn all_cached(file: &File, offset: u64, len: usize) -> bool {
    // Linux's syscall number for cachestat (the same on every architecture).
    const SYS_CACHESTAT: libc::c_long = 451;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let page = page_size();
    let first = offset / page;
    let end = offset.saturating_add(len as u64).div_ceil(page);
    let range = Range {
        off: first * page,
        len: (end - first) * page,
    };
    let mut stat = Stat::default();
    // SAFETY: `range` and `stat` are live, properly laid out for the call, and only read /
    // written by the kernel for its duration; the fd is open for as long as `file` is.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd() as libc::c_uint,
            &range as *const Range,
            &mut stat as *mut Stat,
            0 as libc::c_uint,
        )
    };
    rc == 0 && stat.nr_cache >= end - first
}

#[cfg(not(target_os = "linux"))]
fn all_cached(_file: &File, _offset: u64, _len: usize) -> bool {
    false
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    use std::sync::OnceLock;
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf only reads a constant of the running system.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
    })
}
