//! The spans of one sampled request: the server span (Meridian's hop), one client span per
//! upstream attempt, and a span for a whole-body transform at fill. Built with explicit
//! parents so that an attempt's id is known before its request leaves (it is the parent the
//! origin sees in `traceparent`).

use super::Telemetry;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Span;
use std::net::SocketAddr;
use std::time::SystemTime;

/// The spans of one sampled request.
pub struct RequestSpans {
    server: Span,
    context: SpanContext,
    attempt: Option<Span>,
    attempts: i64,
}

impl RequestSpans {
    /// Starts the server span at `start`: the child of the client's sampled context `parent`
    /// (trace id, span id), or a new trace's root.
    pub fn start(
        telemetry: &Telemetry,
        name: String,
        parent: Option<(u128, u64)>,
        attributes: Vec<KeyValue>,
        start: SystemTime,
    ) -> Self {
        let cx = match parent {
            Some((trace, span)) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let server = telemetry
            .tracer()
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(telemetry.tracer(), &cx);
        let context = server.span_context().clone();
        RequestSpans {
            server,
            context,
            attempt: None,
            attempts: 0,
        }
    }

    pub fn trace_id(&self) -> u128 {
        u128::from_be_bytes(self.context.trace_id().to_bytes())
    }

    pub fn span_id(&self) -> u64 {
        u64::from_be_bytes(self.context.span_id().to_bytes())
    }

    /// The ids a span started later, away from the request, takes as its parent.
    pub fn ids(&self) -> (u128, u64) {
        (self.trace_id(), self.span_id())
    }

    fn child_context(&self) -> Context {
        Context::new().with_remote_span_context(self.context.clone())
    }

    /// Starts the span of an upstream attempt to `addr` in `region` (`shield` for a shield
    /// node); an attempt still open is ended first, as failed.
    pub fn start_attempt(
        &mut self,
        telemetry: &Telemetry,
        method: &str,
        region: &str,
        addr: SocketAddr,
    ) {
        self.attempt_failed("superseded by the next attempt");
        self.attempts += 1;
        let span = telemetry
            .tracer()
            .span_builder(method.to_owned())
            .with_kind(SpanKind::Client)
            .with_attributes(vec![
                KeyValue::new("http.request.method", method.to_owned()),
                KeyValue::new("server.address", addr.ip().to_string()),
                KeyValue::new("server.port", i64::from(addr.port())),
                KeyValue::new("meridian.region", region.to_owned()),
                KeyValue::new("meridian.attempt", self.attempts),
            ])
            .start_with_context(telemetry.tracer(), &self.child_context());
        self.attempt = Some(span);
    }

    /// The open attempt's span id: the parent id the origin gets in `traceparent`.
    pub fn attempt_id(&self) -> Option<u64> {
        self.attempt
            .as_ref()
            .map(|s| u64::from_be_bytes(s.span_context().span_id().to_bytes()))
    }

    /// Ends the open attempt as failed with `error`.
    pub fn attempt_failed(&mut self, error: &str) {
        if let Some(mut span) = self.attempt.take() {
            span.set_status(Status::error(error.to_owned()));
            span.set_attribute(KeyValue::new("error.type", error.to_owned()));
            span.end();
        }
    }

    /// Ends the open attempt with the origin's `status`.
    pub fn attempt_answered(&mut self, status: u16) {
        if let Some(mut span) = self.attempt.take() {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 500 {
                span.set_status(Status::error(format!("origin answered {status}")));
            }
            span.end();
        }
    }

    /// Records a whole-body transform that ran from `start` to now.
    pub fn transform(&self, telemetry: &Telemetry, start: SystemTime, attributes: Vec<KeyValue>) {
        let mut span = telemetry
            .tracer()
            .span_builder("transform")
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(telemetry.tracer(), &self.child_context());
        span.end();
    }

    /// Ends the request: the attempt still open (if any) with the response, the server span
    /// with `attributes` and, for a 5xx or a failure, an error status.
    pub fn finish(mut self, status: u16, attributes: Vec<KeyValue>, error: Option<String>) {
        if self.attempt.is_some() {
            match &error {
                Some(e) => self.attempt_failed(e),
                None => self.attempt_answered(status),
            }
        }
        self.server.set_attributes(attributes);
        if let Some(e) = error {
            self.server.set_status(Status::error(e));
        } else if status >= 500 {
            self.server
                .set_status(Status::error(format!("answered {status}")));
        }
        self.server.end();
    }
}

/// Records a span that ran from `start` to now as a child of `parent` (trace id, span id):
/// work a request left behind, done after its own spans ended (a large fill's transform).
pub fn record_child(
    telemetry: &Telemetry,
    parent: (u128, u64),
    name: &'static str,
    start: SystemTime,
    attributes: Vec<KeyValue>,
) {
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(parent.0),
        SpanId::from(parent.1),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ));
    let mut span = telemetry
        .tracer()
        .span_builder(name)
        .with_kind(SpanKind::Internal)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(telemetry.tracer(), &cx);
    span.end();
}
