//! The request's OpenTelemetry spans (`[tracing]`), phase by phase: decided and started
//! with the request, one per upstream attempt (whose id the origin gets as its parent),
//! ended with the response. Without `[tracing]`, or for a request not sampled, each of
//! these is one `Option` check.

use super::traceparent::TraceParent;
use super::{EdgeProxy, RequestCtx};
use crate::telemetry::spans::RequestSpans;
use opentelemetry::KeyValue;
use pingora_error::Error;
use pingora_proxy::Session;
use std::time::SystemTime;

impl EdgeProxy {
    /// Decides whether this request is traced and, if so, starts its server span; the trace
    /// context forwarded upstream then names Meridian's spans.
    pub(super) fn start_spans(&self, session: &Session, ctx: &mut RequestCtx) {
        let (Some(telemetry), Some(trace)) = (&self.telemetry, &ctx.trace) else {
            return;
        };
        let ids = trace.ids();
        let traced = ids.sampled && trace.is_from_client() || telemetry.samples(ids.trace_id);
        if !traced {
            ctx.trace = Some(TraceParent::Unsampled {
                trace_id: ids.trace_id,
                parent_id: ids.parent_id,
            });
            return;
        }
        let req = session.req_header();
        let route = ctx.route().map_or("", |r| r.path.as_str());
        let host = ctx.resolved.map_or("", |r| r.host(&ctx.gen.rt));
        let mut attributes = vec![
            KeyValue::new("http.request.method", req.method.as_str().to_owned()),
            KeyValue::new("http.route", route.to_owned()),
            KeyValue::new("server.address", host.to_owned()),
            KeyValue::new("url.path", req.uri.path().to_owned()),
            KeyValue::new("url.scheme", if ctx.tls { "https" } else { "http" }),
            KeyValue::new(
                "network.protocol.version",
                match req.version {
                    http::Version::HTTP_2 => "2",
                    http::Version::HTTP_10 => "1.0",
                    _ => "1.1",
                },
            ),
        ];
        if let Some(client) = ctx.client {
            attributes.push(KeyValue::new("client.address", client.to_string()));
        }
        let start = SystemTime::now()
            .checked_sub(ctx.started.elapsed())
            .unwrap_or_else(SystemTime::now);
        let parent = trace
            .is_from_client()
            .then_some((ids.trace_id, ids.parent_id));
        let name = format!("{} {route}", req.method);
        let spans = RequestSpans::start(telemetry, name, parent, attributes, start);
        ctx.trace = Some(TraceParent::Started {
            trace_id: spans.trace_id(),
            parent_id: spans.span_id(),
        });
        ctx.spans = Some(spans);
    }

    /// Starts the span of the attempt just chosen (`ctx.pick`).
    pub(super) fn span_attempt(&self, session: &Session, ctx: &mut RequestCtx) {
        if ctx.spans.is_none() {
            return;
        }
        let region = ctx.pick_region().unwrap_or("").to_owned();
        let (Some(telemetry), Some(spans), Some(pick)) =
            (&self.telemetry, &mut ctx.spans, ctx.pick)
        else {
            return;
        };
        spans.start_attempt(
            telemetry,
            session.req_header().method.as_str(),
            &region,
            pick.addr,
        );
        // The origin sees this attempt as its parent.
        if let Some(id) = spans.attempt_id() {
            ctx.trace = Some(TraceParent::Started {
                trace_id: spans.trace_id(),
                parent_id: id,
            });
        }
    }

    pub(super) fn span_attempt_failed(ctx: &mut RequestCtx, e: &Error) {
        if let Some(spans) = &mut ctx.spans {
            spans.attempt_failed(&e.to_string());
        }
    }

    pub(super) fn span_attempt_answered(ctx: &mut RequestCtx, status: u16) {
        if let Some(spans) = &mut ctx.spans {
            spans.attempt_answered(status);
        }
    }

    /// A whole-body transform (minify, compress) that ran from `start` to now.
    pub(super) fn span_transform(
        &self,
        ctx: &RequestCtx,
        start: SystemTime,
        attributes: Vec<KeyValue>,
    ) {
        if let (Some(telemetry), Some(spans)) = (&self.telemetry, &ctx.spans) {
            spans.transform(telemetry, start, attributes);
        }
    }

    /// Ends the request's spans with what it became.
    pub(super) fn finish_spans(&self, session: &Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let Some(spans) = ctx.spans.take() else {
            return;
        };
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let mut attributes = vec![
            KeyValue::new("http.response.status_code", i64::from(status)),
            KeyValue::new("meridian.cache", ctx.cache_result.as_str()),
            KeyValue::new(
                "http.response.body.size",
                i64::try_from(session.body_bytes_sent()).unwrap_or(i64::MAX),
            ),
        ];
        if let Some(p) = ctx.pick {
            if let Some(region) = ctx.pick_region() {
                attributes.push(KeyValue::new("meridian.region", region.to_owned()));
            }
            attributes.push(KeyValue::new("meridian.origin", p.addr.to_string()));
        }
        spans.finish(status, attributes, e.map(|e| e.to_string()));
    }
}
