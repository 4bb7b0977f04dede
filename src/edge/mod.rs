//! The HTTP proxy: pingora's `ProxyHttp` phases, each delegating to one decision function.

pub mod client;
mod compression;
mod decorate;
mod early_hints;
mod fields;
mod file_body;
pub mod forwarded;
mod generation;
mod images;
mod invalidate;
mod limits;
mod logging;
pub mod request_line;
pub mod respond;
pub mod route;
mod selection;
mod shield;
mod spans;
pub mod traceparent;
pub mod upstream;

use crate::access_log::AccessLog;
use crate::cache::freshness::Storable;
use crate::cache::policy::{self, BypassReason};
use crate::cache::tiered::TieredStorage;
use crate::cache::{CacheResult, LocalAnswer};
use crate::config::live::Live;
use crate::guard::rate::RateLimiter;
use crate::metrics::{Metrics, SiteMetrics, UpstreamErrorKind};
use crate::regions::state::HealthView;
use crate::transform::plan::BodyTransform;
use crate::transform::pool::TransformPool;
use crate::vocab::Coding;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use generation::Generation;
use http::HeaderName;
use pingora_cache::key::HashBinary;
use pingora_cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora_cache::{
    CacheKey, CacheMeta, CacheOptionOverrides, ForcedFreshness, NoCacheReason, RespCacheable,
};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};
use route::{Reject, Resolved};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use traceparent::TraceParent;
use upstream::{Cursor, Pick, RegionBalancer};

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
const SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The edge proxy service: shared, read-only state for every request.
pub struct EdgeProxy {
    live: Arc<Live>,
    /// The generation of the config in force; replaced when `live` changes.
    current: ArcSwap<Generation>,
    metrics: Arc<Metrics>,
    rate: RateLimiter,
    view: Arc<HealthView>,
    /// `[region][origin]` ejection counters.
    ejections: Vec<Vec<prometheus::IntCounter>>,
    balancers: Vec<RegionBalancer>,
    /// `[region]` upstream latency and status handles (regions are fixed for the process).
    region_traffic: Vec<crate::metrics::traffic::RegionTraffic>,
    storage: &'static TieredStorage,
    cache_lock: &'static CacheKeyLockImpl,
    access_log: Arc<AccessLog>,
    minify_metrics: Arc<crate::metrics::minify::MinifyMetrics>,
    /// Whole-body work of large fills, off the proxy threads.
    pool: Arc<TransformPool>,
    /// The `[shield]` tier's ring, when there is one (fixed for the process, as regions are).
    shield: Option<shield::ShieldRing>,
    /// `[tracing]`: spans of sampled requests (fixed for the process).
    telemetry: Option<Arc<crate::telemetry::Telemetry>>,
}

impl EdgeProxy {
    /// Builds the proxy; `storage` is shared with the admin service for its statistics.
    pub fn new(
        live: Arc<Live>,
        view: Arc<HealthView>,
        storage: &'static TieredStorage,
        metrics: Arc<Metrics>,
        access_log: Arc<AccessLog>,
    ) -> Self {
        // Regions, the cache lock and the balancers are fixed for the process: a reload
        // refuses to change them (see `reload`).
        let rt = live.load();
        // The lock's age timeout bounds how long readers wait behind one slow fill.
        let cache_lock: &'static CacheKeyLockImpl =
            Box::leak(CacheLock::new_boxed(rt.cache.lock_timeout));
        let ejections = rt
            .regions
            .iter()
            .map(|r| {
                r.origins
                    .iter()
                    .map(|o| metrics.ejections(&r.name, &o.addr.to_string()))
                    .collect()
            })
            .collect();
        let pool = TransformPool::new(rt.transforms.workers, rt.transforms.max_queued_bytes);
        let shield = rt
            .shield
            .and_then(|id| Some(shield::ShieldRing::new(id, rt.regions.get(id)?)));
        EdgeProxy {
            shield,
            telemetry: None,
            view,
            ejections,
            balancers: rt.regions.iter().map(RegionBalancer::new).collect(),
            region_traffic: rt
                .regions
                .iter()
                .map(|r| metrics.traffic.region(&r.name))
                .collect(),
            current: ArcSwap::from_pointee(Generation::new(rt, &metrics)),
            minify_metrics: metrics.minify.clone(),
            pool,
            metrics,
            rate: RateLimiter::new(),
            storage,
            cache_lock,
            access_log,
            live,
        }
    }

    /// Traces sampled requests through `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Option<Arc<crate::telemetry::Telemetry>>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// The regions this request may use, in the order to try them: nearest the client when
    /// it could be located, else the route's own order.
    fn region_order<'a>(&'a self, ctx: &'a RequestCtx) -> &'a [usize] {
        if let Some(order) = &ctx.client_order {
            return order;
        }
        ctx.resolved
            .and_then(|r| r.route(&ctx.gen.rt))
            .map_or(&[][..], |route| route.region_order.as_slice())
    }

    fn site_metrics<'a>(&self, ctx: &'a RequestCtx) -> &'a SiteMetrics {
        ctx.gen.site_metrics(ctx.resolved.map(|r| r.site))
    }

    /// The generation for the config in force, built on the first request after a reload.
    fn generation(&self) -> Arc<Generation> {
        let current = self.current.load_full();
        let live = self.live.peek();
        if Arc::ptr_eq(&current.rt, &live) {
            return current;
        }
        let fresh = Arc::new(Generation::new(Arc::clone(&live), &self.metrics));
        self.current.store(fresh.clone());
        fresh
    }
}

/// Per-request state carried between phases.
pub struct RequestCtx {
    started: Instant,
    /// The configuration this request runs on, start to end.
    gen: Arc<Generation>,
    /// Request body bytes read so far, and how many the route allows.
    body_read: u64,
    body_limit: u64,
    /// The peer that sent the request (a proxy's address behind one).
    peer: Option<IpAddr>,
    /// The client: behind `listen.trusted_proxies` the `X-Forwarded-For` client, else the
    /// peer. Rate limits, GeoIP and the access log read it; decided once.
    client: Option<IpAddr>,
    /// The request came over TLS.
    tls: bool,
    resolved: Option<Resolved>,
    bypass: Option<BypassReason>,
    trace: Option<TraceParent>,
    cursor: Cursor,
    /// Shield nodes left to try, last one first; `None` until the first attempt decides.
    parents: Option<Vec<usize>>,
    /// The node of the current attempt: an origin, or a shield node (its region is the
    /// shield's).
    pick: Option<Pick>,
    /// When the current attempt was started (its origin latency counts from here).
    attempt_started: Option<Instant>,
    upstream_status: Option<u16>,
    not_stored: Option<NoCacheReason>,
    cache_result: CacheResult,
    /// The hit came from the disk tier (Cache-Status and the access log say so).
    from_disk: bool,
    /// Whether and how long the origin's final response may be stored, decided once when
    /// it arrives (the body plan and the cache admission both read it).
    storable: Option<Storable>,
    /// The header fields of a 304 received while revalidating.
    not_modified: Option<http::HeaderMap>,
    /// The route's regions ordered from the client's location, when it was found.
    client_order: Option<Vec<usize>>,
    /// On a compressing route, the coding this client gets (also its cache variant).
    coding: Option<Coding>,
    /// On an `images` route, the image variant this client gets (also its cache variant).
    image: Option<crate::vocab::image::ImageTarget>,
    /// The image variant the response carried ("webp", "original", ...), for the log.
    image_served: Option<&'static str>,
    /// The request came from a node of this cluster (one `CDN-Loop` entry of ours): a shield
    /// serving an edge, which keys its copy on the variant marker.
    from_peer: bool,
    /// What happens to the origin's body on its way through.
    body: Option<BodyTransform>,
    /// When the body's transform was planned (its span starts there).
    transform_started: Option<Instant>,
    /// `[tracing]`: the spans of a sampled request.
    spans: Option<crate::telemetry::spans::RequestSpans>,
}

impl RequestCtx {
    /// The route this request resolved to, in the generation it runs on.
    fn route(&self) -> Option<&crate::config::runtime::Route> {
        self.resolved.and_then(|r| r.route(&self.gen.rt))
    }

    /// The name of the region the current attempt went to (`shield` for a shield node).
    fn pick_region(&self) -> Option<&str> {
        let pick = self.pick?;
        self.gen
            .rt
            .regions
            .get(pick.region)
            .map(|r| r.name.as_str())
    }
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            gen: self.generation(),
            body_read: 0,
            body_limit: u64::MAX,
            peer: None,
            client: None,
            tls: false,
            resolved: None,
            bypass: None,
            trace: None,
            cursor: Cursor::default(),
            parents: None,
            pick: None,
            attempt_started: None,
            upstream_status: None,
            not_stored: None,
            from_disk: false,
            cache_result: CacheResult::None,
            storable: None,
            not_modified: None,
            client_order: None,
            coding: None,
            image: None,
            image_served: None,
            from_peer: false,
            body: None,
            transform_started: None,
            spans: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if let Some(stream) = session.stream() {
            crate::guard::stream::GuardedStream::disarm_stream(stream);
        }
        let limits = &ctx.gen.rt.limits;
        // pingora keeps an HTTP/1.1 connection open for ever by default.
        if session.as_http1().is_some_and(|h| h.will_keepalive()) {
            session.set_keepalive(Some(limits.keepalive_timeout.as_secs().max(1)));
        }
        session.set_read_timeout(Some(limits.body_timeout));
        // Pipelined HTTP/1.1 requests are answered in order, as nginx does (pingora's default
        // answers the first and closes the connection).
        session.set_pipelining_enabled(true);
        ctx.peer = client_ip(session);
        ctx.client = client::client_ip(
            ctx.peer,
            session.req_header().headers.get_all(X_FORWARDED_FOR).iter(),
            &ctx.gen.rt.listen.trusted_proxies,
        );
        // Behind a trusted proxy (a shield behind its edges) the client's TLS is the proxy's
        // word: HSTS, https_redirect and a scheme-keyed cache follow it.
        ctx.tls = is_tls(session)
            || client::forwarded_https(
                ctx.peer,
                session
                    .req_header()
                    .headers
                    .get_all(X_FORWARDED_PROTO)
                    .iter(),
                &ctx.gen.rt.listen.trusted_proxies,
            );
        if let Some(done) = self.refuse_over_limits(session, ctx).await? {
            return Ok(done);
        }
        let req = session.req_header();
        // Via: this very node forwarded it before. CDN-Loop (RFC 8586): it went through this
        // cluster twice already, as a cycle between tiers makes it; once, it comes from a peer.
        let passes = forwarded::cdn_loop_count(req, &ctx.gen.rt.cluster.cdn_id);
        ctx.from_peer = passes == 1;
        if forwarded::is_loop(req, &ctx.gen.rt.node.via) || passes >= 2 {
            let status = ctx.gen.cache_status.local(LocalAnswer::Loop);
            let body = "this request already passed through this node\n";
            respond::local(session, 508, body, status).await?;
            return Ok(true);
        }
        let ambiguous = req.headers.contains_key(http::header::TRANSFER_ENCODING)
            && (!route::chunked_last(req)
                || session
                    .as_http1()
                    .is_some_and(|h1| route::raw_has_content_length(&h1.get_headers_raw_bytes())));
        let resolved = if ambiguous {
            Err(Reject::AmbiguousFraming)
        } else {
            route::route_request(&ctx.gen.rt, session.req_header_mut())
        };
        match resolved {
            Ok(resolved) => {
                ctx.resolved = Some(resolved);
                let route = resolved.route(&ctx.gen.rt);
                if request_line::trace_refused(
                    session.req_header(),
                    route.is_some_and(|r| r.allow_trace),
                ) {
                    let status = ctx.gen.cache_status.local(LocalAnswer::Method);
                    let allow = Some((http::header::ALLOW, ALLOWED_WITHOUT_TRACE.to_owned()));
                    let body = respond::reject_answer(Reject::TraceNotAllowed).0;
                    respond::local_with(session, 405, body, status, allow).await?;
                    return Ok(true);
                }
                if let Some(done) = self.refuse_for_route(session, ctx, resolved).await? {
                    return Ok(done);
                }
                let req = session.req_header();
                ctx.trace = Some(TraceParent::from_request(req.headers.get("traceparent")));
                ctx.coding = self.negotiate_coding(req, ctx);
                ctx.image = self.negotiate_image(req, ctx);
                self.start_spans(session, ctx);
                Ok(false)
            }
            Err(reject) => {
                let (body, answer) = respond::reject_answer(reject);
                let status = ctx.gen.cache_status.local(answer);
                respond::local(session, reject.status(), body, status).await?;
                Ok(true)
            }
        }
    }

    fn request_cache_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let Some(route) = ctx.route() else {
            return Ok(());
        };
        ctx.bypass = policy::request_bypass(route.cache, &session.req_header().method);
        if ctx.bypass.is_none() {
            let mut overrides = CacheOptionOverrides::default();
            overrides.wait_timeout = Some(ctx.gen.rt.cache.lock_timeout);
            session.cache.enable(
                self.storage.for_pingora(),
                None,
                None,
                Some(self.cache_lock),
                Some(overrides),
            );
            session.cache.set_max_file_size_bytes(
                self.storage.max_object(ctx.gen.rt.cache.max_object_bytes),
            );
        }
        Ok(())
    }

    fn cache_key_callback(&self, session: &Session, ctx: &mut RequestCtx) -> Result<CacheKey> {
        let host = ctx.resolved.map_or("", |r| r.host(&ctx.gen.rt));
        let req = session.req_header();
        let target = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let rule = ctx
            .route()
            .map_or(&crate::config::runtime::DEFAULT_CACHE_KEY, |route| {
                &route.cache_key
            });
        let scheme = policy::key_scheme(rule, ctx.tls);
        Ok(policy::cache_key(scheme, host, target, rule, &req.headers))
    }

    async fn cache_hit_filter(
        &self,
        session: &mut Session,
        meta: &CacheMeta,
        _hit_handler: &mut pingora_cache::HitHandler,
        is_fresh: bool,
        _ctx: &mut RequestCtx,
    ) -> Result<Option<ForcedFreshness>> {
        Ok(policy::request_freshness(
            session.req_header(),
            meta,
            is_fresh,
            SystemTime::now(),
        ))
    }

    async fn proxy_upstream_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        // RFC 9111 §5.2.1.7: only-if-cached and nothing usable stored: 504, origin untouched.
        if policy::only_if_cached(session.req_header()) {
            let status = ctx.gen.cache_status.local(LocalAnswer::OnlyIfCached);
            respond::local(session, 504, "not in cache (only-if-cached)\n", status).await?;
            return Ok(false);
        }
        Ok(true)
    }

    fn should_serve_stale(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
        error: Option<&Error>,
    ) -> bool {
        // Reached only inside the stored response's window (stale-while-revalidate, or
        // stale-if-error / the route's default); must-revalidate already closed both.
        match error {
            None => true,
            Some(e) => e.esource() == &ErrorSource::Upstream,
        }
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        ctx: &mut RequestCtx,
        req: &RequestHeader,
    ) -> Option<HashBinary> {
        policy::variance(meta, req, ctx.coding, ctx.image)
    }

    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<RespCacheable> {
        let decision = match ctx.not_modified.take() {
            Some(fields) => {
                let mut refreshed = resp.clone();
                policy::update_stored_headers(&mut refreshed, &fields);
                let storable = self.storable(session, &refreshed, ctx);
                policy::cacheable_meta(storable, &refreshed, SystemTime::now())
            }
            None => {
                let storable = match ctx.storable {
                    Some(decided) => decided,
                    None => self.storable(session, resp, ctx),
                };
                policy::cacheable_meta(storable, resp, SystemTime::now())
            }
        };
        if let RespCacheable::Uncacheable(reason) = &decision {
            ctx.not_stored = Some(*reason);
        }
        Ok(decision)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        if ctx.parents.is_none() {
            ctx.parents = Some(self.shield_parents(session, ctx));
        }
        ctx.attempt_started = Some(Instant::now());
        let peer = self.next_peer(ctx)?;
        self.span_attempt(session, ctx);
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        self.site_metrics(ctx)
            .upstream_error(UpstreamErrorKind::Connect);
        self.record_origin_failure(ctx);
        Self::span_attempt_failed(ctx, &e);
        // Nothing was sent, so any method may go to the next origin, if one is left.
        let more = self.has_next_peer(ctx);
        e.set_retry(more);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        _client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("origin {}", peer._address));
        self.site_metrics(ctx)
            .upstream_error(UpstreamErrorKind::Proxy);
        self.record_origin_failure(ctx);
        Self::span_attempt_failed(ctx, &e);
        // The request may have reached the origin: only an idempotent one, whose body is
        // still replayable and whose response has not started, may be sent again.
        let method = &session.req_header().method;
        let replayable = method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            && session.response_written().is_none();
        let more = self.has_next_peer(ctx);
        e.set_retry(replayable && more);
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let host = ctx.resolved.map_or("", |r| r.host(&ctx.gen.rt));
        let trace = ctx.trace.get_or_insert_with(TraceParent::new_root);
        // X-Forwarded-For gets the peer appended: the hop this node saw.
        forwarded::prepare_upstream_request(
            upstream_request,
            ctx.peer,
            host,
            &ctx.gen.rt.node.via,
            &ctx.gen.rt.cluster.cdn_id,
            &trace.header(),
            ctx.tls,
        )?;
        self.ask_for_coding(upstream_request, ctx)?;
        self.ask_for_image(upstream_request, ctx)
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if early_hints::is_interim(upstream_response) {
            // RFC 8297: passed on as it comes; the cache skips interim responses.
            return self.forward_interim(session, upstream_response).await;
        }
        ctx.upstream_status = Some(upstream_response.status.as_u16());
        Self::span_attempt_answered(ctx, upstream_response.status.as_u16());
        if let (Some(p), Some(started)) = (ctx.pick, ctx.attempt_started) {
            if let Some(traffic) = self.region_traffic.get(p.region) {
                traffic.observe(
                    upstream_response.status.as_u16(),
                    started.elapsed().as_secs_f64(),
                );
            }
        }
        // A shield's 5xx speaks for the origins behind it, which it has already tried.
        if upstream_response.status.is_server_error() && !self.via_shield(ctx) {
            self.record_origin_failure(ctx);
        } else if let Some(p) = ctx.pick {
            self.view.record_success(p.region, p.origin);
        }
        policy::strip_hop_by_hop(upstream_response);
        // Decided once here, before the body plan changes the header (nothing it changes
        // bears on storage); a 304 is decided on the stored header it refreshes.
        if session.cache.enabled() && upstream_response.status != http::StatusCode::NOT_MODIFIED {
            ctx.storable = Some(self.storable(session, upstream_response, ctx));
        }
        self.plan_body(upstream_response, ctx)?;
        // Only a response whose length is known up front can be larger than the memory tier
        // takes: it is routed to the disk alone before its first byte. One of unknown length
        // is held to the memory tier's bound (pingora stops storing it past that).
        if session.cache.enabled()
            && upstream_response
                .headers
                .get(http::header::CONTENT_LENGTH)
                .is_none()
        {
            session
                .cache
                .set_max_file_size_bytes(ctx.gen.rt.cache.max_object_bytes);
        }
        // pingora merges only a few fields of a 304 into the stored response; keep them all
        // for `response_cache_filter` (RFC 9111 §4.3.4).
        if upstream_response.status == http::StatusCode::NOT_MODIFIED {
            ctx.not_modified = Some(upstream_response.headers.clone());
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(chunk) = body {
            self.count_body(ctx, chunk.len())?;
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        self.transform_chunk(session, body, end_of_stream, ctx)?;
        Ok(None)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.decorate_response(session, resp, ctx)?;
        if ctx.from_disk {
            file_body::offer(session, resp, ctx.tls);
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        _ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        file_body::hand_over(session, body)?;
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        // Every failed attempt was counted once, in fail_to_connect or error_while_proxy;
        // the final failure is the requests counter's 5xx, not another upstream error.
        let code = respond::status_for_error(e);
        if code == 408 {
            self.metrics
                .guard
                .refused(crate::metrics::guard::RequestLimit::BodyTimeout);
        }
        if code > 0 {
            let status = ctx.gen.cache_status.local(LocalAnswer::UpstreamError);
            let body = respond::error_body(code);
            if let Err(write_err) = respond::local(session, code, body, status).await {
                log::debug!("could not send the error response: {write_err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        // Failures caused by origins or clients are counted in metrics and logged at debug
        // level in `logging`: a dead origin must not flood the log with one line a request.
        matches!(
            error.esource(),
            ErrorSource::Upstream | ErrorSource::Downstream
        )
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &RequestCtx,
        _error: &Error,
        _context: ProxyWarnLogContext,
    ) -> bool {
        // Retries are counted in `meridian_upstream_errors_total`.
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.log_request(session, e, ctx);
        self.finish_spans(session, e, ctx);
    }
}

/// The methods named in `Allow` when TRACE is refused (RFC 9110 §15.5.6).
const ALLOWED_WITHOUT_TRACE: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

/// Whether the client reached this node over TLS.
fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}
