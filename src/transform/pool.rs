//! The one home of blocking whole-body work (minification, compression at fill levels): a
//! bounded number of jobs at a time on tokio's blocking threads, never on a proxy worker, and
//! a bounded queue in front of them, counted in the bytes the waiting jobs hold.
//!
//! A job that does not fit in the queue is refused at once; the caller keeps what it has
//! (the body already streamed at fast levels) and counts the refusal.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The transform pool of one node.
pub struct TransformPool {
    /// One permit per job allowed to run at once.
    running: Arc<Semaphore>,
    /// Bytes held by submitted jobs that have not started yet.
    queued_bytes: AtomicU64,
    max_queued_bytes: u64,
}

/// A job's place in the queue: given back when it starts, or when its future is dropped
/// unstarted (so an abandoned job cannot leak queue space).
struct QueueSlot {
    pool: Arc<TransformPool>,
    cost: u64,
}

impl QueueSlot {
    fn leave(&mut self) {
        self.pool
            .queued_bytes
            .fetch_sub(std::mem::take(&mut self.cost), Ordering::AcqRel);
    }
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.leave();
    }
}

/// A job refused because the queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl TransformPool {
    /// A pool running at most `workers` jobs at once (at least one), with at most
    /// `max_queued_bytes` of jobs waiting.
    pub fn new(workers: usize, max_queued_bytes: u64) -> Arc<TransformPool> {
        Arc::new(TransformPool {
            running: Arc::new(Semaphore::new(workers.max(1))),
            queued_bytes: AtomicU64::new(0),
            max_queued_bytes,
        })
    }

    /// Queues `job`, which holds `cost` bytes while it waits. The returned future runs it on
    /// a blocking thread once a worker is free and yields its result (`None` if the job
    /// panicked or the runtime is shutting down). A job larger than the whole queue is still
    /// taken when the queue is empty, so no body is too large to ever be optimised.
    pub fn submit<T, F>(
        self: &Arc<Self>,
        cost: u64,
        job: F,
    ) -> Result<impl Future<Output = Option<T>> + Send + 'static, QueueFull>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let admitted =
            self.queued_bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                    let fits = queued == 0 || queued.saturating_add(cost) <= self.max_queued_bytes;
                    fits.then(|| queued.saturating_add(cost))
                });
        if admitted.is_err() {
            return Err(QueueFull);
        }
        let mut slot = QueueSlot {
            pool: Arc::clone(self),
            cost,
        };
        Ok(async move {
            let permit = Arc::clone(&slot.pool.running).acquire_owned().await.ok();
            // Started (or the pool closed): the job no longer waits in the queue.
            slot.leave();
            permit.as_ref()?;
            let result = tokio::task::spawn_blocking(job).await.ok();
            drop(permit);
            result
        })
    }

    /// Bytes held by jobs waiting for a worker.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn jobs_run_off_the_calling_thread_and_return_their_result() {
        let pool = TransformPool::new(1, 1 << 20);
        let caller = std::thread::current().id();
        let ran_on = pool
            .submit(10, || std::thread::current().id())
            .unwrap()
            .await
            .unwrap();
        assert_ne!(ran_on, caller);
        assert_eq!(pool.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_frees_as_jobs_start() {
        let pool = TransformPool::new(1, 100);
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        // Occupies the only worker until released.
        let first = pool
            .submit(60, move || {
                let _ = started_tx.send(());
                wait.recv().ok();
            })
            .unwrap();
        let first = tokio::spawn(first);
        started.await.unwrap();
        assert_eq!(pool.queued_bytes(), 0, "a running job is not queued");
        let second = tokio::spawn(pool.submit(60, || 2).unwrap());
        assert_eq!(pool.queued_bytes(), 60);
        assert_eq!(
            pool.submit(60, || 3).err(),
            Some(QueueFull),
            "60 + 60 > 100"
        );
        let dropped = pool.submit(40, || 4);
        assert!(dropped.is_ok(), "60 + 40 fits");
        drop(dropped);
        assert_eq!(
            pool.queued_bytes(),
            60,
            "a dropped job gives its place back"
        );
        release.send(()).unwrap();
        first.await.unwrap();
        assert_eq!(second.await.unwrap(), Some(2));
        assert_eq!(pool.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn one_job_larger_than_the_queue_is_taken_when_the_queue_is_empty() {
        let pool = TransformPool::new(1, 10);
        assert_eq!(pool.submit(1000, || 7).unwrap().await, Some(7));
    }
}
