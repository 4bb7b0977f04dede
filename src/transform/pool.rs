//! The one home of blocking whole-body work (minification, compression at fill levels): a
//! fixed set of threads of its own, never a proxy worker, scheduled at the lowest CPU
//! priority (Linux `SCHED_IDLE`) so that serving requests always comes first, and a queue in
//! front of them bounded in the bytes the waiting jobs hold.
//!
//! A job that does not fit in the queue is refused at once; the caller keeps what it has
//! (the body already streamed at fast levels) and counts the refusal. Under a load that
//! keeps every CPU busy, jobs wait; the queue bound then refuses new ones.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The transform pool of one node.
pub struct TransformPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Bytes held by submitted jobs that have not started yet.
    queued_bytes: AtomicU64,
    max_queued_bytes: u64,
}

/// A job refused because the queue was full (or the pool has stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl TransformPool {
    /// A pool of `workers` threads (at least one), with at most `max_queued_bytes` of jobs
    /// waiting. The threads live as long as the pool.
    pub fn new(workers: usize, max_queued_bytes: u64) -> Arc<TransformPool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("meridian-transform-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                log::warn!("could not start transform worker {i}: {e}");
            }
        }
        Arc::new(TransformPool {
            jobs: Mutex::new(tx),
            queued_bytes: AtomicU64::new(0),
            max_queued_bytes,
        })
    }

    /// Queues `job`, which holds `cost` bytes while it waits, and returns a future of its
    /// result (`None` if the job panicked or the pool stopped). A job larger than the whole
    /// queue is still taken when the queue is empty, so no body is too large to optimise.
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
        let (done, result) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            // Started: the job no longer waits in the queue.
            slot.leave();
            let _ = done.send(job());
        });
        let sent = self
            .jobs
            .lock()
            .map_err(|_| QueueFull)?
            .send(wrapped)
            .map_err(|_| QueueFull);
        // A job the pool could not take was dropped with its slot, which gave its place back.
        sent?;
        Ok(async move { result.await.ok() })
    }

    /// Bytes held by jobs waiting for a worker.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes.load(Ordering::Acquire)
    }
}

/// A worker: lowest priority, then jobs one at a time until the pool is gone.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let next = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        // A panicking job must not take the worker with it; its caller sees `None`.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            log::warn!("a transform job panicked");
        }
    }
}

/// `SCHED_IDLE`: the thread runs only on CPU time nothing else wants, so a proxy thread
/// sharing its CPU is never kept waiting by whole-body work. Where the policy cannot be set,
/// the worker runs at normal priority (still off the proxy threads).
fn lower_priority() {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        idle,
    ) {
        log::debug!("transform worker keeps normal priority: {e:?}");
    }
}

/// A job's place in the queue: given back when it starts, or when it is dropped unstarted
/// (so an abandoned job cannot leak queue space).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pools_own_threads_and_return_their_result() {
        let pool = TransformPool::new(1, 1 << 20);
        let name = pool
            .submit(10, || std::thread::current().name().map(str::to_owned))
            .unwrap()
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("meridian-transform-0"));
        assert_eq!(pool.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_frees_as_jobs_start() {
        let pool = TransformPool::new(1, 100);
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel();
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
        assert!(pool.submit(40, || 4).is_ok(), "60 + 40 fits");
        release.send(()).unwrap();
        first.await.unwrap();
        assert_eq!(second.await.unwrap(), Some(2));
        until(|| pool.queued_bytes() == 0).await;
    }

    #[tokio::test]
    async fn a_panicking_job_yields_none_and_the_worker_goes_on() {
        let pool = TransformPool::new(1, 1 << 20);
        let boom = pool.submit(1, || -> u8 { panic!("boom") }).unwrap();
        assert_eq!(boom.await, None);
        assert_eq!(pool.submit(1, || 5).unwrap().await, Some(5));
    }

    #[tokio::test]
    async fn one_job_larger_than_the_queue_is_taken_when_the_queue_is_empty() {
        let pool = TransformPool::new(1, 10);
        assert_eq!(pool.submit(1000, || 7).unwrap().await, Some(7));
    }

    /// Polls until `check` holds, for at most 10 s: the pool's workers are OS threads, which
    /// a loaded machine (the whole suite runs at once) may not schedule for a while, so a
    /// count of yields is no bound.
    async fn until(check: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "condition never held");
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}
