//! Span export off the request path: a bounded queue (a full one drops the span and counts
//! it: a request never waits for the collector) drained by a thread of its own, which sends
//! batches as OTLP over HTTP (protobuf) with a timeout.

use crate::metrics::tracing::TracingMetrics;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spans sent in one request to the collector at most.
const MAX_BATCH: usize = 512;
/// How long a span waits for others to fill a batch.
const LINGER: Duration = Duration::from_millis(500);
/// One export's bound: a dead collector costs the export thread this, never a request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// The SDK's span processor: queues ended spans for the export thread.
pub struct QueueProcessor {
    queue: SyncSender<SpanData>,
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
        let (queue, spans) = sync_channel(capacity);
        let thread_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || export_loop(&url, resource, &spans, &thread_metrics))?;
        Ok(QueueProcessor { queue, metrics })
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        match self.queue.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.dropped.inc();
            }
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
/// here, on the export thread) and sends batches until the queue closes.
fn export_loop(
    url: &str,
    resource: Resource,
    spans: &Receiver<SpanData>,
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
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for the first span of a batch, then give others a moment to join it.
        match spans.recv() {
            Ok(span) => batch.push(span),
            Err(_) => return,
        }
        let deadline = Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match spans.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(span) => batch.push(span),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let n = batch.len() as u64;
        match futures_executor::block_on(exporter.export(std::mem::take(&mut batch))) {
            Ok(()) => metrics.exported.inc_by(n),
            Err(e) => {
                metrics.failed.inc_by(n);
                log::debug!("tracing: {n} span(s) not exported to {url}: {e}");
            }
        }
    }
}
