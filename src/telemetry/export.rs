//! Span export off the request path: a bounded buffer (a full one drops the span and counts
//! it: a request never waits for the collector) that a thread of its own takes whole every
//! `FLUSH_EVERY` and sends in batches as OTLP over HTTP (protobuf) with a timeout. The thread
//! is never woken per span: a channel's wake-up per span (a futex call and a context switch)
//! cost more than the span itself.

use crate::metrics::tracing::TracingMetrics;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Spans sent in one request to the collector at most.
const MAX_BATCH: usize = 512;
/// How often the export thread takes what the request threads left.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// One export's bound: a dead collector costs the export thread this, never a request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// The SDK's span processor: queues ended spans for the export thread.
pub struct QueueProcessor {
    pending: Arc<Mutex<Vec<SpanData>>>,
    capacity: usize,
    metrics: Arc<TracingMetrics>,
}

impl std::fmt::Debug for QueueProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueProcessor")
    }
}

impl QueueProcessor {
    /// Starts the export thread for `url` (`.../v1/traces`); spans carry `resource`.
    pub fn start(
        url: String,
        resource: Resource,
        capacity: usize,
        metrics: Arc<TracingMetrics>,
    ) -> std::io::Result<Self> {
        let pending = Arc::new(Mutex::new(Vec::with_capacity(capacity)));
        let thread_metrics = metrics.clone();
        let taken = pending.clone();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || export_loop(&url, resource, &taken, &thread_metrics))?;
        Ok(QueueProcessor {
            pending,
            capacity,
            metrics,
        })
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() < self.capacity {
            pending.push(span);
        } else {
            drop(pending);
            self.metrics.dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Builds the exporter (its blocking HTTP client must be made outside any async runtime:
/// here, on the export thread), then sends what is pending every `FLUSH_EVERY`.
fn export_loop(
    url: &str,
    resource: Resource,
    pending: &Mutex<Vec<SpanData>>,
    metrics: &TracingMetrics,
) {
    use opentelemetry_otlp::WithExportConfig;
    let built = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build();
    let mut exporter = match built {
        Ok(e) => e,
        Err(e) => {
            log::error!(
                "tracing: cannot build the OTLP exporter for {url}: {e}; no span is exported"
            );
            return;
        }
    };
    exporter.set_resource(&resource);
    loop {
        // A thread of its own, not a runtime worker: sleeping here blocks nobody.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(FLUSH_EVERY);
        let mut spans =
            std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
        while !spans.is_empty() {
            let rest = spans.split_off(spans.len().min(MAX_BATCH));
            let n = spans.len() as u64;
            match futures_executor::block_on(exporter.export(spans)) {
                Ok(()) => metrics.exported.inc_by(n),
                Err(e) => {
                    metrics.failed.inc_by(n);
                    log::debug!("tracing: {n} span(s) not exported to {url}: {e}");
                }
            }
            spans = rest;
        }
    }
}
