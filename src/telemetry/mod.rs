//! OpenTelemetry traces (`[tracing]`): one server span per sampled request, a client span
//! per upstream attempt (its id is the parent the origin sees in `traceparent`), and a span
//! for whole-body transforms; exported as OTLP over HTTP off the request path.
//!
//! Sampling is decided once, at the request's start: a sampled incoming `traceparent` is
//! followed; otherwise `sample_ratio` decides, on the trace id as OpenTelemetry's
//! `TraceIdRatioBased` does (so every node of a fleet agrees). An unsampled request creates
//! no span at all, and without `[tracing]` nothing here runs.

mod export;
pub mod spans;

use crate::config::runtime::TracingSettings;
use crate::metrics::tracing::TracingMetrics;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::sync::Arc;

/// The tracer of a node with `[tracing]`.
pub struct Telemetry {
    tracer: SdkTracer,
    /// Kept alive for the tracer's processor (its queue and export thread).
    _provider: SdkTracerProvider,
    /// Trace ids whose low 63 bits fall below this are sampled.
    threshold: u64,
}

/// Why tracing could not start (the node then runs without it).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the span export thread: {0}")]
pub struct TelemetryError(#[from] std::io::Error);

impl Telemetry {
    pub fn start(
        settings: &TracingSettings,
        metrics: Arc<TracingMetrics>,
    ) -> Result<Arc<Telemetry>, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(settings.service_name.clone())
            .build();
        let processor = export::QueueProcessor::start(
            settings.traces_url.clone(),
            resource.clone(),
            settings.queue,
            metrics,
        )?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        Ok(Arc::new(Telemetry {
            tracer: provider.tracer("meridian"),
            _provider: provider,
            threshold: ratio_threshold(settings.sample_ratio),
        }))
    }

    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// Whether a request of trace `trace_id` without a sampled parent is traced.
    pub fn samples(&self, trace_id: u128) -> bool {
        // OpenTelemetry's TraceIdRatioBased: the low 64 bits, shifted to 63.
        ((trace_id as u64) >> 1) < self.threshold
    }
}

fn ratio_threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio <= 0.0 {
        0
    } else {
        (ratio * (1u64 << 63) as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_samples_its_share_of_trace_ids() {
        let threshold = ratio_threshold(0.25);
        let sampled = (0..10_000u128)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
            .filter(|id| ((*id as u64) >> 1) < threshold)
            .count();
        assert!((2_000..3_000).contains(&sampled), "{sampled} of 10000");
        assert_eq!(ratio_threshold(1.0), u64::MAX);
        assert_eq!(ratio_threshold(0.0), 0);
    }
}
