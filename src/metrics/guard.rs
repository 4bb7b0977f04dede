//! What the limits refused, how reloads went, and when certificates expire.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// A request limit a client can cross; its `[limits]` key is the `limit` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLimit {
    MaxHeaderBytes,
    MaxHeaders,
    MaxUriBytes,
    MaxRequestBody,
    RatePerIp,
    BodyTimeout,
}

impl RequestLimit {
    /// Every limit, in the order of the counters.
    pub const ALL: [RequestLimit; 6] = [
        RequestLimit::MaxHeaderBytes,
        RequestLimit::MaxHeaders,
        RequestLimit::MaxUriBytes,
        RequestLimit::MaxRequestBody,
        RequestLimit::RatePerIp,
        RequestLimit::BodyTimeout,
    ];

    /// The `[limits]` key, also the metric label.
    pub fn key(self) -> &'static str {
        match self {
            RequestLimit::MaxHeaderBytes => "max_header_bytes",
            RequestLimit::MaxHeaders => "max_headers",
            RequestLimit::MaxUriBytes => "max_uri_bytes",
            RequestLimit::MaxRequestBody => "max_request_body",
            RequestLimit::RatePerIp => "rate_per_ip",
            RequestLimit::BodyTimeout => "body_timeout",
        }
    }
}

/// A connection limit a client can cross; its `[limits]` key is the `limit` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionLimit {
    /// `max_connections`: the node is at its cap.
    Total,
    /// `max_connections_per_ip`: this client is.
    PerIp,
}

impl ConnectionLimit {
    pub fn key(self) -> &'static str {
        match self {
            ConnectionLimit::Total => "max_connections",
            ConnectionLimit::PerIp => "max_connections_per_ip",
        }
    }
}

pub struct GuardMetrics {
    /// Connections refused, per [`ConnectionLimit`] (resolved once: no label lookup per refusal).
    connections_refused: [IntCounter; 2],
    /// Open client connections on the proxy listeners.
    pub connections_open: IntGauge,
    /// Requests refused, per [`RequestLimit`] in `ALL` order.
    requests_refused: [IntCounter; 6],
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
        Ok(GuardMetrics {
            connections_refused: [ConnectionLimit::Total, ConnectionLimit::PerIp]
                .map(|l| connections_refused.with_label_values(&[l.key()])),
            connections_open,
            requests_refused: RequestLimit::ALL
                .map(|l| requests_refused.with_label_values(&[l.key()])),
            reload_ok: reloads.with_label_values(&["ok"]),
            reload_failed: reloads.with_label_values(&["failed"]),
            cert_expiry,
        })
    }

    /// Counts a request refused by `limit`.
    pub fn refused(&self, limit: RequestLimit) {
        if let Some(c) = self.requests_refused.get(limit as usize) {
            c.inc();
        }
    }

    /// Counts a connection refused by `limit`.
    pub fn connection_refused(&self, limit: ConnectionLimit) {
        if let Some(c) = self.connections_refused.get(limit as usize) {
            c.inc();
        }
    }
}
