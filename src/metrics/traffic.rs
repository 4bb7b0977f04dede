//! Traffic as a dashboard reads it: bytes sent by what the cache did (hit ratio by bytes),
//! requests per route, and what each region's origins answered and how fast.

use super::{DURATION_BUCKETS, STATUS_CLASSES};
use crate::cache::CacheResult;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// The families; handles are resolved per site, route and region.
pub struct TrafficMetrics {
    response_bytes: IntCounterVec,
    route_requests: IntCounterVec,
    upstream_duration: HistogramVec,
    upstream_responses: IntCounterVec,
    /// Bodies through minify and compression at fill: bytes in and bytes stored.
    pub transform_in: IntCounter,
    pub transform_out: IntCounter,
}

/// One region's upstream handles.
pub struct RegionTraffic {
    /// Attempt start to the origin's response header.
    pub duration: Histogram,
    responses: [IntCounter; STATUS_CLASSES.len()],
}

impl RegionTraffic {
    pub fn observe(&self, status: u16, seconds: f64) {
        self.duration.observe(seconds);
        if let Some(c) = self.responses.get(super::status_class_index(status)) {
            c.inc();
        }
    }
}

impl TrafficMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let response_bytes = IntCounterVec::new(
            Opts::new(
                "meridian_http_response_bytes_total",
                "Response body bytes sent to clients, by site and what the cache did: the cache \
                 hit ratio by bytes",
            ),
            &["site", "cache"],
        )?;
        let route_requests = IntCounterVec::new(
            Opts::new(
                "meridian_http_route_requests_total",
                "Requests answered, by site, route (its path prefix) and status class",
            ),
            &["site", "route", "status_class"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "meridian_upstream_response_duration_seconds",
                "Time from sending a request to an origin (or shield) to its response header, by \
                 region: origin latency",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["region"],
        )?;
        let upstream_responses = IntCounterVec::new(
            Opts::new(
                "meridian_upstream_responses_total",
                "Responses from origins (or shields), by region and status class: origin traffic",
            ),
            &["region", "status_class"],
        )?;
        let transform = IntCounterVec::new(
            Opts::new(
                "meridian_transform_bytes_total",
                "Bytes of bodies minified, compressed or image-optimised at cache fill: \
                 direction=\"in\" as the origin sent them, \"out\" as stored; in - out is what \
                 the transforms saved",
            ),
            &["direction"],
        )?;
        registry.register(Box::new(response_bytes.clone()))?;
        registry.register(Box::new(route_requests.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(upstream_responses.clone()))?;
        registry.register(Box::new(transform.clone()))?;
        Ok(TrafficMetrics {
            transform_in: transform.with_label_values(&["in"]),
            transform_out: transform.with_label_values(&["out"]),
            response_bytes,
            route_requests,
            upstream_duration,
            upstream_responses,
        })
    }

    /// A site's byte counters, by cache result.
    pub(super) fn site_bytes(&self, site: &str) -> [IntCounter; CacheResult::COUNT] {
        CacheResult::ALL.map(|cache| {
            self.response_bytes
                .with_label_values(&[site, cache.as_str()])
        })
    }

    /// A route's request counters, by status class.
    pub(super) fn route(&self, site: &str, route: &str) -> [IntCounter; STATUS_CLASSES.len()] {
        STATUS_CLASSES.map(|class| self.route_requests.with_label_values(&[site, route, class]))
    }

    pub fn region(&self, region: &str) -> RegionTraffic {
        RegionTraffic {
            duration: self.upstream_duration.with_label_values(&[region]),
            responses: STATUS_CLASSES
                .map(|class| self.upstream_responses.with_label_values(&[region, class])),
        }
    }
}
