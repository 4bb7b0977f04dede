//! The Prometheus registry and every metric's definition.
//!
//! Label values come from config (site names) or closed enums, never from a request, and
//! handles are resolved once: `with_label_values` hashes and locks on every call.

use crate::cache::CacheResult;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Label for requests whose host matches no site.
pub const UNKNOWN_SITE: &str = "_unknown";

/// Request duration buckets in seconds: 100 µs (a hit) up to 30 s (a slow origin).
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Status classes as labels: 1xx..5xx, and "other" for anything outside 100..=599.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

fn status_class_index(status: u16) -> usize {
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

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    pub cache_bytes: IntGauge,
    pub cache_objects: IntGauge,
    pub access_log_dropped: IntCounter,
}

/// One site's handles, resolved at startup.
pub struct SiteMetrics {
    /// `[status class][cache result]`.
    requests: [[IntCounter; CacheResult::COUNT]; STATUS_CLASSES.len()],
    duration: Histogram,
    upstream_connect_errors: IntCounter,
    upstream_proxy_errors: IntCounter,
}

impl SiteMetrics {
    /// Counts one finished request.
    pub fn observe(&self, status: u16, cache: CacheResult, seconds: f64) {
        if let Some(row) = self.requests.get(status_class_index(status)) {
            if let Some(c) = row.get(cache.index()) {
                c.inc();
            }
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
        let cache_bytes = IntGauge::new(
            "meridian_cache_bytes",
            "Bytes held by the cache, counted against cache.memory: how full it is",
        )?;
        let cache_objects = IntGauge::new(
            "meridian_cache_objects",
            "Complete responses held by the cache",
        )?;
        let access_log_dropped = IntCounter::new(
            "meridian_access_log_dropped_total",
            "Access-log lines dropped because the writer fell behind: is the log sink too slow",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(cache_bytes.clone()))?;
        registry.register(Box::new(cache_objects.clone()))?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            cache_bytes,
            cache_objects,
            access_log_dropped,
        })
    }

    /// Resolves every handle of one site (its series appear at zero from the start).
    pub fn site(&self, site: &str) -> SiteMetrics {
        let requests = STATUS_CLASSES.map(|class| {
            CacheResult::ALL.map(|cache| {
                self.requests
                    .with_label_values(&[site, class, cache.as_str()])
            })
        });
        SiteMetrics {
            requests,
            duration: self.duration.with_label_values(&[site]),
            upstream_connect_errors: self.upstream_errors.with_label_values(&[site, "connect"]),
            upstream_proxy_errors: self.upstream_errors.with_label_values(&[site, "proxy"]),
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
        let site = m.site("demo");
        site.observe(200, CacheResult::Hit, 0.001);
        site.observe(200, CacheResult::Hit, 0.001);
        site.upstream_error(UpstreamErrorKind::Connect);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(
            "meridian_http_requests_total{cache=\"hit\",site=\"demo\",status_class=\"2xx\"} 2"
        ));
        assert!(text.contains("meridian_upstream_errors_total{kind=\"connect\",site=\"demo\"} 1"));
        assert!(text.contains("meridian_http_request_duration_seconds_count{site=\"demo\"} 2"));
    }
}
