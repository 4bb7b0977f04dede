// Meridian: this file is new (see vendor/README.md, change 4).
//
//! The keep-alive pool of idle upstream streams, without a task per idle connection.
//!
//! pingora's pool (the `pingora-pool` crate) spawns a watcher task for every stream it is
//! given back, so that an origin closing an idle connection is noticed at once; the stream sits
//! behind an `Arc<Mutex<_>>` the watcher holds, and taking it back wakes the watcher, waits for
//! it to let go, and unwraps the `Arc`. On a keep-alive proxy that is a spawn, a lock hand-over
//! between two tasks, a oneshot channel, a `Notify` and a timer for every proxied request.
//!
//! This pool keeps the streams themselves, most recently released last (reuse takes the
//! warmest, as nginx's upstream keepalive cache does), and finds closed or expired ones in two
//! places instead: on reuse (a non-blocking read: the reactor has already seen the origin's FIN,
//! so a closed stream reads 0 without waiting), and in one sweep a second per pool, which drops
//! streams whose idle timeout has passed or whose origin closed them. An idle connection the
//! origin closes is therefore released within about a second, not at once; the pool's size
//! bounds how many can wait that long.

use crate::protocols::Stream;
use futures::future::FutureExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How often the sweep looks for expired and closed idle streams.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Idle {
    stream: Stream,
    released: Instant,
    expires: Option<Instant>,
    /// Release order across all keys: the smallest is the least recently released.
    seq: u64,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

#[derive(Default)]
struct Groups {
    /// Idle streams by reuse key, least recently released first. Emptied lists stay (so a
    /// lone keep-alive connection does not allocate a list on every release) until a sweep.
    by_key: HashMap<u64, Vec<Idle>>,
    count: usize,
    next_seq: u64,
    sweeping: bool,
}

impl Groups {
    /// Removes the least recently released stream of any key.
    fn pop_oldest(&mut self) -> Option<Idle> {
        let key = self
            .by_key
            .iter()
            .filter_map(|(key, list)| list.first().map(|idle| (idle.seq, *key)))
            .min()?
            .1;
        let idle = self.by_key.get_mut(&key)?.remove(0);
        self.count -= 1;
        Some(idle)
    }
}

pub(crate) struct IdlePool {
    groups: Mutex<Groups>,
    capacity: usize,
    unexpected_data: Arc<AtomicU64>,
    evicted_callback: Option<super::PoolCallback>,
}

impl IdlePool {
    pub(crate) fn new(
        capacity: usize,
        unexpected_data: Arc<AtomicU64>,
        evicted_callback: Option<super::PoolCallback>,
    ) -> Arc<Self> {
        Arc::new(IdlePool {
            groups: Mutex::new(Groups::default()),
            capacity,
            unexpected_data,
            evicted_callback,
        })
    }

    /// The most recently released stream for `key` that is still open and has not expired;
    /// `accept` is asked about each candidate (pingora checks the socket's peer address).
    pub(crate) fn take(&self, key: u64, mut accept: impl FnMut(&Stream) -> bool) -> Option<Stream> {
        loop {
            let idle = {
                let mut groups = self.groups.lock();
                let idle = groups.by_key.get_mut(&key)?.pop()?;
                groups.count -= 1;
                idle
            };
            // Tested outside the lock: the read may be a system call. A stream that fails is
            // dropped (closed) here and the next candidate is tried.
            if idle.expires.is_some() && idle.expired(Instant::now()) {
                continue;
            }
            let mut stream = idle.stream;
            if accept(&stream) && reusable(&mut stream, &self.unexpected_data) {
                return Some(stream);
            }
        }
    }

    /// Keeps `stream` for reuse under `key`, dropping the least recently released stream when
    /// the pool is full.
    pub(crate) fn put(
        self: &Arc<Self>,
        key: u64,
        mut stream: Stream,
        idle_timeout: Option<Duration>,
    ) {
        if !reusable(&mut stream, &self.unexpected_data) {
            return;
        }
        if self.capacity == 0 {
            return;
        }
        let released = Instant::now();
        let expires = idle_timeout.map(|timeout| released + timeout);
        let (evicted, start_sweep) = {
            let mut groups = self.groups.lock();
            let seq = groups.next_seq;
            groups.next_seq += 1;
            let idle = Idle {
                stream,
                released,
                expires,
                seq,
            };
            groups.by_key.entry(key).or_default().push(idle);
            groups.count += 1;
            let evicted = if groups.count > self.capacity {
                groups.pop_oldest()
            } else {
                None
            };
            let start_sweep = !groups.sweeping;
            groups.sweeping = true;
            (evicted, start_sweep)
        };
        if let Some(evicted) = evicted {
            if let Some(callback) = &self.evicted_callback {
                callback(evicted.released.elapsed());
            }
        }
        if start_sweep {
            let pool = Arc::downgrade(self);
            pingora_runtime::current_handle().spawn(sweep(pool));
        }
    }

    /// Drops expired and closed streams; false (and the sweep ends) once the pool is empty.
    fn sweep_once(&self) -> bool {
        let now = Instant::now();
        let mut dropped = Vec::new();
        let mut groups = self.groups.lock();
        for list in groups.by_key.values_mut() {
            let mut i = 0;
            while i < list.len() {
                let idle = &mut list[i];
                if idle.expired(now) || !reusable(&mut idle.stream, &self.unexpected_data) {
                    dropped.push(list.remove(i));
                } else {
                    i += 1;
                }
            }
        }
        groups.by_key.retain(|_, list| !list.is_empty());
        groups.count -= dropped.len();
        let more = groups.count > 0;
        groups.sweeping = more;
        drop(groups);
        drop(dropped); // closed outside the lock
        more
    }
}

async fn sweep(pool: Weak<IdlePool>) {
    let mut running = SweepRunning(pool);
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        match running.0.upgrade() {
            Some(pool) if pool.sweep_once() => continue,
            _ => break,
        }
    }
    // sweep_once has cleared `sweeping` under the lock (or the pool is gone).
    running.0 = Weak::new();
}

/// Clears `sweeping` if the sweep task is dropped before it ends by itself (its runtime shut
/// down), so that the next release starts a sweep on a runtime that is running.
struct SweepRunning(Weak<IdlePool>);

impl Drop for SweepRunning {
    fn drop(&mut self) {
        if let Some(pool) = self.0.upgrade() {
            pool.groups.lock().sweeping = false;
        }
    }
}

/// Whether an idle stream can be used again: not closed by its peer, no error pending, and no
/// data the peer sent unasked (counted, as pingora does). Never waits: a stream with nothing
/// to read is reusable.
pub(crate) fn reusable(stream: &mut Stream, unexpected_data: &AtomicU64) -> bool {
    let mut buf = [0; 1];
    // unconstrained: now_or_never could see Pending from the coop budget on a ready stream.
    match tokio::task::unconstrained(stream.read(&mut buf[..])).now_or_never() {
        None => true,
        Some(Ok(0)) => {
            log::debug!("Idle connection is closed");
            false
        }
        Some(Ok(_)) => {
            log::warn!("Unexpected data read in idle connection");
            unexpected_data.fetch_add(1, Ordering::Relaxed);
            false
        }
        Some(Err(e)) => {
            log::debug!("Idle connection is broken: {e:?}");
            false
        }
    }
}
