//! `[limits]` on one request: its size (414, 431, 413), its sender's rate (429), and the
//! redirect of plain HTTP to HTTPS, all answered before any origin or cache is touched.

use super::route::Resolved;
use super::{respond, EdgeProxy, RequestCtx};
use crate::cache::LocalAnswer;
use crate::config::runtime::LimitsSettings;
use crate::guard::client_key::client_key;
use crate::metrics::guard::RequestLimit;
use http::header::{LOCATION, RETRY_AFTER};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::time::Instant;

impl EdgeProxy {
    /// The rate and header limits, before routing: `Some(true)` when a response was sent.
    pub(super) async fn refuse_over_limits(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Option<bool>> {
        let limits = &ctx.gen.rt.limits;
        if let Some(rate) = limits.rate {
            // The client behind a trusted proxy (as for GeoIP), else the peer.
            let key = ctx.client.map(|ip| client_key(ip, limits.ipv6_prefix));
            if let Some(Err(wait)) = key.map(|ip| self.rate.take(ip, rate, Instant::now())) {
                // Whole seconds, rounded up: a client retrying then finds a token.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let retry = Some((RETRY_AFTER, secs.max(1).to_string()));
                self.refuse(session, ctx, Exceeded::Rate, retry).await?;
                return Ok(Some(true));
            }
        }
        if let Some(exceeded) = check_header(session.req_header(), limits) {
            self.refuse(session, ctx, exceeded, None).await?;
            return Ok(Some(true));
        }
        Ok(None)
    }

    /// The site's HTTPS redirect and the route's body limit, once the request is routed.
    pub(super) async fn refuse_for_route(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        resolved: Resolved,
    ) -> Result<Option<bool>> {
        let rt = ctx.gen.rt.clone();
        if !ctx.tls
            && rt
                .sites
                .get(resolved.site)
                .is_some_and(|s| s.https_redirect)
        {
            let port = rt.listen.https.first().map(|a| a.port());
            let location = https_location(resolved.host(&rt), session.req_header(), port);
            let status = ctx.gen.cache_status.local(LocalAnswer::Redirect);
            // 308 keeps the method and body (301 lets clients turn a POST into a GET).
            respond::local_with(
                session,
                308,
                "moved to HTTPS\n",
                status,
                Some((LOCATION, location)),
            )
            .await?;
            return Ok(Some(true));
        }
        ctx.body_limit = resolved
            .route(&rt)
            .map_or(rt.limits.max_request_body, |r| r.max_request_body);
        if declared_body_too_large(session.req_header(), ctx.body_limit) {
            self.refuse(session, ctx, Exceeded::Body, None).await?;
            return Ok(Some(true));
        }
        Ok(None)
    }

    /// Counts a chunk of request body against the route's limit.
    pub(super) fn count_body(&self, ctx: &mut RequestCtx, len: usize) -> Result<()> {
        ctx.body_read = ctx.body_read.saturating_add(len as u64);
        if ctx.body_read > ctx.body_limit {
            self.metrics.guard.refused(Exceeded::Body.limit());
            return Error::e_explain(
                ErrorType::HTTPStatus(413),
                "request body over max_request_body",
            );
        }
        Ok(())
    }

    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        exceeded: Exceeded,
        extra: Option<(http::HeaderName, String)>,
    ) -> Result<()> {
        self.metrics.guard.refused(exceeded.limit());
        let status = ctx.gen.cache_status.local(LocalAnswer::Limit);
        respond::local_with(session, exceeded.status(), exceeded.body(), status, extra).await
    }
}

/// A request limit crossed, with the status nginx and RFC 9110 give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// 414 URI Too Long.
    Uri,
    /// 431 Request Header Fields Too Large: too many fields.
    HeaderCount,
    /// 431: too many bytes of header.
    HeaderBytes,
    /// 413 Content Too Large (a declared Content-Length, or a body that grew past the limit).
    Body,
    /// 429 Too Many Requests.
    Rate,
}

impl Exceeded {
    pub fn status(self) -> u16 {
        match self {
            Exceeded::Uri => 414,
            Exceeded::HeaderCount | Exceeded::HeaderBytes => 431,
            Exceeded::Body => 413,
            Exceeded::Rate => 429,
        }
    }

    /// The `[limits]` key crossed, also the metric's label.
    pub fn limit(self) -> RequestLimit {
        match self {
            Exceeded::Uri => RequestLimit::MaxUriBytes,
            Exceeded::HeaderCount => RequestLimit::MaxHeaders,
            Exceeded::HeaderBytes => RequestLimit::MaxHeaderBytes,
            Exceeded::Body => RequestLimit::MaxRequestBody,
            Exceeded::Rate => RequestLimit::RatePerIp,
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            Exceeded::Uri => "request target too long\n",
            Exceeded::HeaderCount => "too many request header fields\n",
            Exceeded::HeaderBytes => "request header too large\n",
            Exceeded::Body => "request body too large\n",
            Exceeded::Rate => "too many requests; retry later\n",
        }
    }
}

/// Checks the request line and header against the limits. The size counted is what the
/// client sent on HTTP/1.1 (name, ": ", value, CRLF per field, plus the request line), so
/// h2 requests are held to the same bound as their HTTP/1.1 form.
pub fn check_header(req: &RequestHeader, limits: &LimitsSettings) -> Option<Exceeded> {
    let target = req.uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    if target > limits.max_uri_bytes {
        return Some(Exceeded::Uri);
    }
    if req.headers.len() > limits.max_headers {
        return Some(Exceeded::HeaderCount);
    }
    let line = req.method.as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    if line + fields + 2 > limits.max_header_bytes {
        return Some(Exceeded::HeaderBytes);
    }
    None
}

/// A declared Content-Length over the route's limit (a chunked body is counted as it
/// arrives instead).
pub fn declared_body_too_large(req: &RequestHeader, limit: u64) -> bool {
    req.headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > limit)
}

/// Where a plain-HTTP request to an `https_redirect` site is sent: the same host and
/// target over HTTPS, on the first HTTPS listener's port unless it is 443.
pub fn https_location(host: &str, req: &RequestHeader, https_port: Option<u16>) -> String {
    let target = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    match https_port {
        Some(443) | None => format!("https://{host}{target}"),
        Some(port) => format!("https://{host}:{port}{target}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::runtime_for_tests;

    fn request(target: &str, fields: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        for (n, v) in fields {
            req.append_header(n.to_string(), *v).unwrap();
        }
        req
    }

    #[test]
    fn each_limit_is_told_apart() {
        let mut limits = runtime_for_tests("").limits;
        limits.max_uri_bytes = 10;
        limits.max_headers = 2;
        limits.max_header_bytes = 100;
        let ok = request("/short", &[("host", "a.test")]);
        assert_eq!(check_header(&ok, &limits), None);
        let long = request("/a-much-longer-path", &[("host", "a.test")]);
        assert_eq!(check_header(&long, &limits), Some(Exceeded::Uri));
        let many = request("/", &[("host", "a"), ("x-a", "1"), ("x-b", "2")]);
        assert_eq!(check_header(&many, &limits), Some(Exceeded::HeaderCount));
        let big = request("/", &[("host", "a"), ("cookie", &"c".repeat(80))]);
        assert_eq!(check_header(&big, &limits), Some(Exceeded::HeaderBytes));
    }

    #[test]
    fn declared_length_against_the_limit() {
        let req = request("/", &[("content-length", "1025")]);
        assert!(declared_body_too_large(&req, 1024));
        assert!(!declared_body_too_large(&req, 1025));
        assert!(!declared_body_too_large(&request("/", &[]), 0));
    }

    #[test]
    fn redirect_keeps_the_target_and_a_non_default_port() {
        let req = request("/a/b?c=1", &[]);
        assert_eq!(
            https_location("a.test", &req, Some(443)),
            "https://a.test/a/b?c=1"
        );
        assert_eq!(
            https_location("a.test", &req, Some(8443)),
            "https://a.test:8443/a/b?c=1"
        );
    }
}
