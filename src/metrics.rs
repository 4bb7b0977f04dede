//! The Prometheus registry and every metric's definition.
//!
//! Label values come from config (site names) or closed enums, never from a request, and
//! handles are resolved once: `with_label_values` hashes and locks on every call.

pub mod cluster;
pub mod disk;
pub mod dns;
pub mod guard;
pub mod images;
pub mod minify;
pub mod tracing;
pub mod traffic;
pub mod transform;

use crate::cache::CacheResult;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Label for requests whose host matches no site.
pub const UNKNOWN_SITE: &str = "_unknown";

/// Request duration buckets in seconds: 100 µs (a hit) up to 30 s (a slow origin).
pub(crate) const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Status classes as labels: 1xx..5xx, and "other" for anything outside 100..=599.
pub(crate) const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

pub(crate) fn status_class_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => 5,
    }
}

/// Why a request to an origin failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// Could not connect (refused, unreachable, timed out).
    Connect,
    /// Connected, then the exchange failed (reset, read timeout, bad response).
    Proxy,
}

/// Health-check latency buckets in seconds: loopback (100 µs) to a timed-out check (5 s).
const CHECK_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0,
];

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    upstream_retries: IntCounterVec,
    upstream_panic: IntCounterVec,
    origin_up: IntGaugeVec,
    pub region_up: IntGaugeVec,
    check_duration: HistogramVec,
    health_transitions: IntCounterVec,
    ejections: IntCounterVec,
    pub cache_bytes: IntGauge,
    pub cache_objects: IntGauge,
    /// Set from the storage's own count at each scrape.
    pub cache_variants_replaced: IntCounter,
    pub access_log_dropped: IntCounter,
    pub dns: dns::DnsMetrics,
    pub minify: std::sync::Arc<minify::MinifyMetrics>,
    pub transform: std::sync::Arc<transform::TransformMetrics>,
    pub images: std::sync::Arc<images::ImageMetrics>,
    pub guard: guard::GuardMetrics,
    pub disk: disk::DiskMetrics,
    pub cluster: std::sync::Arc<cluster::ClusterMetrics>,
    pub traffic: traffic::TrafficMetrics,
    pub tracing: std::sync::Arc<tracing::TracingMetrics>,
}

/// One site's handles, resolved at startup.
pub struct SiteMetrics {
    /// `[status class][cache result]`.
    requests: [[IntCounter; CacheResult::COUNT]; STATUS_CLASSES.len()],
    /// Body bytes sent, by cache result.
    bytes: [IntCounter; CacheResult::COUNT],
    /// `[route][status class]`, routes in the site's order.
    routes: Vec<[IntCounter; STATUS_CLASSES.len()]>,
    duration: Histogram,
    upstream_connect_errors: IntCounter,
    upstream_proxy_errors: IntCounter,
    /// Attempts after the first, on another origin or region.
    pub retries: IntCounter,
    /// Requests sent to unhealthy origins because no region had a healthy one.
    pub panic: IntCounter,
}

/// One origin's health handles, resolved when its checks start.
pub struct OriginMetrics {
    /// 1 while up (or unverified), 0 while down.
    pub up: IntGauge,
    pub check_duration: Histogram,
    to_up: IntCounter,
    to_down: IntCounter,
    pub ejections: IntCounter,
}

impl OriginMetrics {
    /// Counts a health transition.
    pub fn transition(&self, now_down: bool) {
        if now_down {
            self.to_down.inc();
        } else {
            self.to_up.inc();
        }
    }
}

impl SiteMetrics {
    /// Counts one finished request.
    /// Counts one answered request: `route` is its index in the site's routes, `bytes` the
    /// body bytes sent.
    pub fn observe(
        &self,
        status: u16,
        cache: CacheResult,
        seconds: f64,
        route: Option<usize>,
        bytes: usize,
    ) {
        let class = status_class_index(status);
        if let Some(c) = self
            .requests
            .get(class)
            .and_then(|row| row.get(cache.index()))
        {
            c.inc();
        }
        if let Some(c) = self.bytes.get(cache.index()) {
            c.inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
        }
        if let Some(c) = route
            .and_then(|r| self.routes.get(r))
            .and_then(|row| row.get(class))
        {
            c.inc();
        }
        self.duration.observe(seconds);
    }

    /// Counts one failed attempt to an origin.
    pub fn upstream_error(&self, kind: UpstreamErrorKind) {
        match kind {
            UpstreamErrorKind::Connect => self.upstream_connect_errors.inc(),
            UpstreamErrorKind::Proxy => self.upstream_proxy_errors.inc(),
        }
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "meridian_http_requests_total",
                "Requests answered, by site, status class and what the cache did: how much \
                 traffic each site gets and how much of it the cache absorbs",
            ),
            &["site", "status_class", "cache"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "meridian_http_request_duration_seconds",
                "Time from request header to the last response byte, by site: how fast clients \
                 are served",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["site"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "meridian_upstream_errors_total",
                "Failed attempts to reach an origin, by site and kind (connect, proxy): are the \
                 origins healthy",
            ),
            &["site", "kind"],
        )?;
        let upstream_retries = IntCounterVec::new(
            Opts::new(
                "meridian_upstream_retries_total",
                "Attempts after the first, on another origin or region, by site: how often \
                 failover hides a failure from clients",
            ),
            &["site"],
        )?;
        let upstream_panic = IntCounterVec::new(
            Opts::new(
                "meridian_upstream_panic_total",
                "Requests sent to unhealthy origins because no region had a healthy one, by \
                 site: is a whole route down",
            ),
            &["site"],
        )?;
        let origin_up = IntGaugeVec::new(
            Opts::new(
                "meridian_origin_up",
                "1 while active checks pass (or have not run yet), 0 while the origin is down",
            ),
            &["region", "origin"],
        )?;
        let region_up = IntGaugeVec::new(
            Opts::new(
                "meridian_region_up",
                "1 while at least one origin of the region is usable (up, not ejected, not \
                 drained): can the region take traffic",
            ),
            &["region"],
        )?;
        let check_duration = HistogramVec::new(
            HistogramOpts::new(
                "meridian_health_check_duration_seconds",
                "Time a health check took, by region: are origins slowing down",
            )
            .buckets(CHECK_BUCKETS.to_vec()),
            &["region"],
        )?;
        let health_transitions = IntCounterVec::new(
            Opts::new(
                "meridian_health_transitions_total",
                "Origins changing state by active checks, by region, origin and new state: \
                 how often origins flap",
            ),
            &["region", "origin", "to"],
        )?;
        let ejections = IntCounterVec::new(
            Opts::new(
                "meridian_origin_ejections_total",
                "Origins ejected by passive outlier detection, by region and origin",
            ),
            &["region", "origin"],
        )?;
        let cache_bytes = IntGauge::new(
            "meridian_cache_bytes",
            "Bytes held by the cache, counted against cache.memory: how full it is",
        )?;
        let cache_objects = IntGauge::new(
            "meridian_cache_objects",
            "Complete responses held by the cache",
        )?;
        let cache_variants_replaced = IntCounter::new(
            "meridian_cache_variants_replaced_total",
            "Stored variants removed because their URL already had cache.max_variants: \
             is an origin varying on a header clients choose freely (User-Agent)",
        )?;
        let access_log_dropped = IntCounter::new(
            "meridian_access_log_dropped_total",
            "Access-log lines dropped because the writer fell behind: is the log sink too slow",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(upstream_retries.clone()))?;
        registry.register(Box::new(upstream_panic.clone()))?;
        registry.register(Box::new(origin_up.clone()))?;
        registry.register(Box::new(region_up.clone()))?;
        registry.register(Box::new(check_duration.clone()))?;
        registry.register(Box::new(health_transitions.clone()))?;
        registry.register(Box::new(ejections.clone()))?;
        registry.register(Box::new(cache_bytes.clone()))?;
        registry.register(Box::new(cache_objects.clone()))?;
        registry.register(Box::new(cache_variants_replaced.clone()))?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        let dns = dns::DnsMetrics::new(&registry)?;
        let minify = std::sync::Arc::new(minify::MinifyMetrics::register(&registry)?);
        let transform = std::sync::Arc::new(transform::TransformMetrics::register(&registry)?);
        let images = std::sync::Arc::new(images::ImageMetrics::register(&registry)?);
        let guard = guard::GuardMetrics::register(&registry)?;
        let disk = disk::DiskMetrics::register(&registry)?;
        let cluster = std::sync::Arc::new(cluster::ClusterMetrics::register(&registry)?);
        let traffic = traffic::TrafficMetrics::register(&registry)?;
        let tracing = std::sync::Arc::new(tracing::TracingMetrics::register(&registry)?);
        Ok(Metrics {
            tracing,
            traffic,
            cluster,
            registry,
            requests,
            duration,
            upstream_errors,
            upstream_retries,
            upstream_panic,
            origin_up,
            region_up,
            check_duration,
            health_transitions,
            ejections,
            cache_bytes,
            cache_objects,
            cache_variants_replaced,
            access_log_dropped,
            dns,
            minify,
            transform,
            images,
            disk,
            guard,
        })
    }

    /// Resolves every handle of one site (its series appear at zero from the start).
    /// Resolves every handle of one site and its routes (given by path, in the site's order).
    pub fn site(&self, site: &str, routes: &[&str]) -> SiteMetrics {
        let requests = STATUS_CLASSES.map(|class| {
            CacheResult::ALL.map(|cache| {
                self.requests
                    .with_label_values(&[site, class, cache.as_str()])
            })
        });
        SiteMetrics {
            requests,
            bytes: self.traffic.site_bytes(site),
            routes: routes
                .iter()
                .map(|route| self.traffic.route(site, route))
                .collect(),
            duration: self.duration.with_label_values(&[site]),
            upstream_connect_errors: self.upstream_errors.with_label_values(&[site, "connect"]),
            upstream_proxy_errors: self.upstream_errors.with_label_values(&[site, "proxy"]),
            retries: self.upstream_retries.with_label_values(&[site]),
            panic: self.upstream_panic.with_label_values(&[site]),
        }
    }

    /// The passive-ejection counter of one origin.
    pub fn ejections(&self, region: &str, origin: &str) -> IntCounter {
        self.ejections.with_label_values(&[region, origin])
    }

    /// Resolves one origin's health handles; its up gauge starts at 1 (unverified).
    pub fn origin(&self, region: &str, origin: &str) -> OriginMetrics {
        let up = self.origin_up.with_label_values(&[region, origin]);
        up.set(1);
        OriginMetrics {
            up,
            check_duration: self.check_duration.with_label_values(&[region]),
            to_up: self
                .health_transitions
                .with_label_values(&[region, origin, "up"]),
            to_down: self
                .health_transitions
                .with_label_values(&[region, origin, "down"]),
            ejections: self.ejections.with_label_values(&[region, origin]),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a metric family error would be our bug.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::error!("encoding metrics failed: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_cover_every_code() {
        assert_eq!(status_class_index(100), 0);
        assert_eq!(status_class_index(204), 1);
        assert_eq!(status_class_index(421), 3);
        assert_eq!(status_class_index(599), 4);
        assert_eq!(status_class_index(600), 5);
        assert_eq!(status_class_index(0), 5);
    }

    #[test]
    fn observed_requests_appear_in_the_exposition() {
        let m = Metrics::new().unwrap();
        let site = m.site("demo", &["/"]);
        site.observe(200, CacheResult::Hit, 0.001, Some(0), 10);
        site.observe(200, CacheResult::Hit, 0.001, Some(0), 10);
        site.upstream_error(UpstreamErrorKind::Connect);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(
            "meridian_http_requests_total{cache=\"hit\",site=\"demo\",status_class=\"2xx\"} 2"
        ));
        assert!(text.contains("meridian_upstream_errors_total{kind=\"connect\",site=\"demo\"} 1"));
        assert!(text.contains("meridian_http_request_duration_seconds_count{site=\"demo\"} 2"));
    }
}
