//! The disk tier's writer: one thread that appends fills, copies and purges to the disk
//! store in the order they were sent, so that no proxy thread ever waits on a disk write.
//! Fills stream to it as they stream to the client; the bytes waiting for it are bounded,
//! and a fill that would pass the bound is abandoned (counted), never waited for.

use crate::cache::disk::record::{Purge, Selector};
use crate::cache::disk::{DiskStore, DiskWriter};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

/// Bytes of fill bodies waiting for the writer; past it new data abandons its fill.
const QUEUE_BYTES: usize = 64 << 20;

/// What the writer thread is asked to do.
enum Job {
    Begin {
        fill: u64,
        key: [u8; 16],
        url: String,
        tags: Vec<String>,
        meta: Vec<u8>,
    },
    Data {
        fill: u64,
        bytes: Bytes,
    },
    Commit {
        fill: u64,
    },
    Abort {
        fill: u64,
    },
    Purge(Purge),
}

/// The sending side, shared by the proxy threads.
pub struct DiskWriterHandle {
    jobs: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    next_fill: AtomicU64,
    /// Fills abandoned because the writer was behind.
    pub abandoned: AtomicU64,
}

impl DiskWriterHandle {
    /// Starts the writer thread for `store`.
    pub fn start(store: Arc<DiskStore>) -> std::io::Result<DiskWriterHandle> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_queued = queued.clone();
        std::thread::Builder::new()
            .name("disk-writer".into())
            .spawn(move || run(&store, &rx, &thread_queued))?;
        Ok(DiskWriterHandle {
            jobs: tx,
            queued,
            next_fill: AtomicU64::new(1),
            abandoned: AtomicU64::new(0),
        })
    }

    fn send(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }

    /// Starts a fill; its bytes follow with [`data`](Self::data).
    pub fn begin(&self, key: [u8; 16], url: String, tags: Vec<String>, meta: Vec<u8>) -> u64 {
        let fill = self.next_fill.fetch_add(1, Ordering::Relaxed);
        self.send(Job::Begin {
            fill,
            key,
            url,
            tags,
            meta,
        });
        fill
    }

    /// Queues body bytes of `fill`; false (and the fill abandoned) when the writer is too far
    /// behind.
    pub fn data(&self, fill: u64, bytes: Bytes) -> bool {
        let len = bytes.len();
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > QUEUE_BYTES {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.abandoned.fetch_add(1, Ordering::Relaxed);
            self.send(Job::Abort { fill });
            return false;
        }
        if !self.send(Job::Data { fill, bytes }) {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub fn commit(&self, fill: u64) {
        self.send(Job::Commit { fill });
    }

    pub fn abort(&self, fill: u64) {
        self.send(Job::Abort { fill });
    }

    /// Stores a complete object (a copy of a memory one).
    pub fn store(&self, key: [u8; 16], url: String, tags: Vec<String>, meta: Vec<u8>, body: Bytes) {
        let fill = self.begin(key, url, tags, meta);
        if self.data(fill, body) {
            self.commit(fill);
        }
    }

    pub fn purge(&self, purge: Purge) {
        self.send(Job::Purge(purge));
    }
}

/// A fill the writer is appending, with what purges match it by.
struct Open {
    writer: DiskWriter,
    key: [u8; 16],
    url: String,
    tags: Vec<String>,
}

fn run(store: &Arc<DiskStore>, jobs: &mpsc::Receiver<Job>, queued: &AtomicUsize) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    // Errors are not logged here: the store logs a failed write once, when it pauses writes
    // (see `DiskStore::writable`); an oversized body or a write refused meanwhile is no news.
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Begin {
                fill,
                key,
                url,
                tags,
                meta,
            } => {
                let writer = store.writer(key, url.clone(), tags.clone(), meta);
                open.insert(
                    fill,
                    Open {
                        writer,
                        key,
                        url,
                        tags,
                    },
                );
            }
            Job::Data { fill, bytes } => {
                queued.fetch_sub(bytes.len(), Ordering::AcqRel);
                if let Some(o) = open.get_mut(&fill) {
                    if o.writer.write(&bytes).is_err() {
                        open.remove(&fill);
                    }
                }
            }
            Job::Commit { fill } => {
                if let Some(o) = open.remove(&fill) {
                    let _ = o.writer.commit();
                }
            }
            Job::Abort { fill } => {
                open.remove(&fill);
            }
            Job::Purge(purge) => {
                // A fill the purge selects must not commit after it.
                open.retain(|_, o| !selects(&purge.selector, o));
                let _ = store.purge(purge);
            }
        }
    }
}

fn selects(selector: &Selector, o: &Open) -> bool {
    let bare = |u: &str| u.split_once("://").map_or(u, |(_, r)| r).to_owned();
    match selector {
        Selector::Key(k) => *k == o.key,
        Selector::Url(u) => bare(u) == bare(&o.url),
        Selector::Prefix(p) => bare(&o.url).starts_with(&bare(p)),
        Selector::Tag(t) => o.tags.iter().any(|x| x == t),
        Selector::All => true,
    }
}
