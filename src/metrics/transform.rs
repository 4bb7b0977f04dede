//! How whole-body jobs on the transform pool ended: did the stored copy get smaller, and does
//! the pool keep up with the fills.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// How one deferred job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    /// The stored copy was replaced by the smaller one.
    Refined,
    /// The result was not smaller than what the fill stored: kept the fill's.
    NotSmaller,
    /// The object was purged or rewritten while the job ran: the result was dropped.
    Stale,
    /// The queue was full: the fill's fast version stays (transforms.queue).
    QueueFull,
    /// The job failed (an encoder error, a panic): the fill's version stays.
    Failed,
}

impl JobResult {
    const ALL: [JobResult; 5] = [
        JobResult::Refined,
        JobResult::NotSmaller,
        JobResult::Stale,
        JobResult::QueueFull,
        JobResult::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            JobResult::Refined => "refined",
            JobResult::NotSmaller => "not_smaller",
            JobResult::Stale => "stale",
            JobResult::QueueFull => "queue_full",
            JobResult::Failed => "failed",
        }
    }
}

/// Handles resolved once.
pub struct TransformMetrics {
    jobs: [IntCounter; 5],
    /// Bytes of bodies waiting for a pool worker, set at each scrape.
    pub queued_bytes: IntGauge,
}

impl TransformMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let jobs = IntCounterVec::new(
            Opts::new(
                "meridian_transform_jobs_total",
                "Whole-body jobs (minify, fill-level compression) run off the proxy threads \
                 after a large fill, by result: refined, not_smaller, stale, queue_full, \
                 failed; queue_full growing means transforms.workers cannot keep up",
            ),
            &["result"],
        )?;
        let queued_bytes = IntGauge::new(
            "meridian_transform_queue_bytes",
            "Bytes of bodies waiting for a transform pool worker (bounded by transforms.queue)",
        )?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(queued_bytes.clone()))?;
        Ok(TransformMetrics {
            jobs: JobResult::ALL.map(|r| jobs.with_label_values(&[r.label()])),
            queued_bytes,
        })
    }

    pub fn observe(&self, result: JobResult) {
        if let Some(c) = self.jobs.get(result as usize) {
            c.inc();
        }
    }
}
