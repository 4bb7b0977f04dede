//! The span export of `[tracing]`: what reached the collector and what did not.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Handles resolved once.
pub struct TracingMetrics {
    /// Spans the collector accepted.
    pub exported: IntCounter,
    /// Spans dropped because the export queue was full (`tracing.queue`).
    pub dropped: IntCounter,
    /// Spans in batches the collector refused or did not answer.
    pub failed: IntCounter,
}

impl TracingMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let spans = IntCounterVec::new(
            Opts::new(
                "meridian_tracing_spans_total",
                "Spans of sampled requests, by result: exported (the collector took them), \
                 dropped (the export queue was full: a slow or unreachable collector), failed \
                 (the collector refused the batch or did not answer)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(spans.clone()))?;
        Ok(TracingMetrics {
            exported: spans.with_label_values(&["exported"]),
            dropped: spans.with_label_values(&["dropped"]),
            failed: spans.with_label_values(&["failed"]),
        })
    }
}
