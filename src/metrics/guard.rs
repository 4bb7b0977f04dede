//! What the limits refused, how reloads went, and when certificates expire.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Request limits a client can cross, as `limit` label values (the `[limits]` key names).
pub const REQUEST_LIMITS: [&str; 6] = [
    "max_header_bytes",
    "max_headers",
    "max_uri_bytes",
    "max_request_body",
    "rate_per_ip",
    "body_timeout",
];

pub struct GuardMetrics {
    /// Connections refused, by `max_connections` / `max_connections_per_ip`.
    pub connections_refused: IntCounterVec,
    /// Open client connections on the proxy listeners.
    pub connections_open: IntGauge,
    requests_refused: IntCounterVec,
    pub reload_ok: IntCounter,
    pub reload_failed: IntCounter,
    /// Seconds until each site certificate's notAfter (negative once expired).
    pub cert_expiry: GaugeVec,
}

impl GuardMetrics {
    pub(super) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "meridian_connections_refused_total",
                "Client connections refused by a [limits] connection limit, by limit: one \
                 client (max_connections_per_ip) or the node (max_connections) is at its cap",
            ),
            &["limit"],
        )?;
        let connections_open = IntGauge::new(
            "meridian_connections_open",
            "Client connections open on the HTTP and HTTPS listeners",
        )?;
        let requests_refused = IntCounterVec::new(
            Opts::new(
                "meridian_requests_refused_total",
                "Requests refused by a [limits] request limit, by limit (431, 414, 413, 429, \
                 408): a misbehaving client, or a limit set too tight",
            ),
            &["limit"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "meridian_config_reloads_total",
                "Configuration reloads (SIGHUP or POST /reload), by result: a failed one \
                 left the previous configuration in force",
            ),
            &["result"],
        )?;
        let cert_expiry = GaugeVec::new(
            Opts::new(
                "meridian_tls_certificate_expiry_seconds",
                "Seconds until a site's certificate expires (negative: expired): alert well \
                 before zero",
            ),
            &["site"],
        )?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(requests_refused.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(cert_expiry.clone()))?;
        for limit in REQUEST_LIMITS {
            requests_refused.with_label_values(&[limit]);
        }
        Ok(GuardMetrics {
            connections_refused,
            connections_open,
            requests_refused,
            reload_ok: reloads.with_label_values(&["ok"]),
            reload_failed: reloads.with_label_values(&["failed"]),
            cert_expiry,
        })
    }

    /// Counts a request refused by `limit` (one of `REQUEST_LIMITS`).
    pub fn refused(&self, limit: &str) {
        self.requests_refused.with_label_values(&[limit]).inc();
    }
}
