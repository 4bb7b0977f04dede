//! The end of a request: its metrics, and its access-log line.

use super::{route, EdgeProxy, RequestCtx};
use crate::access_log::AccessEntry;
use crate::metrics::UNKNOWN_SITE;
use pingora_error::Error;
use pingora_proxy::Session;
use std::time::SystemTime;

impl EdgeProxy {
    /// Counts the request and writes its access-log line (when the log is on).
    pub(super) fn log_request(&self, session: &Session, e: Option<&Error>, ctx: &RequestCtx) {
        if let Some(e) = e {
            log::debug!("request failed: {e}");
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        self.site_metrics(ctx).observe(
            status,
            ctx.cache_result,
            elapsed.as_secs_f64(),
            ctx.resolved.map(|r| r.route),
            session.body_bytes_sent(),
        );
        if !self.access_log.is_enabled() {
            return;
        }
        let site = ctx.resolved.and_then(|r| ctx.gen.rt.sites.get(r.site));
        let req = session.req_header();
        let trace_id = ctx.trace.as_ref().map(super::TraceParent::trace_id);
        let span_id = ctx.spans.as_ref().map(|s| format!("{:016x}", s.span_id()));
        let raw_host = route::raw_host(req)
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or("");
        self.access_log.log(&AccessEntry {
            time: SystemTime::now(),
            client: ctx.client,
            peer: ctx.peer,
            site: site.map_or(UNKNOWN_SITE, |s| s.name.as_str()),
            host: ctx.resolved.map_or(raw_host, |r| r.host(&ctx.gen.rt)),
            method: req.method.as_str(),
            proto: match req.version {
                http::Version::HTTP_2 => "HTTP/2.0",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            path: req.uri.path(),
            status,
            bytes: session.body_bytes_sent(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            cache: if ctx.from_disk {
                "hit-disk"
            } else {
                ctx.cache_result.as_str()
            },
            image: ctx.image_served,
            region: ctx.pick_region(),
            origin: ctx.pick.map(|p| p.addr),
            trace_id: trace_id.as_ref().map_or("", |t| t.as_str()),
            span_id: span_id.as_deref().unwrap_or(""),
        });
    }
}
