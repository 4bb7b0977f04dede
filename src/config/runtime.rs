//! The runtime model of a validated configuration: typed values, no serde, no spans.
//!
//! Built only by `validate::build`; the rest of the node reads it and never parses strings.

use crate::geo::distance::GeoPoint;
use http::HeaderValue;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use super::ids::{RegionId, SiteId};

/// A whole validated configuration.
#[derive(Debug)]
pub struct Runtime {
    /// The file this was loaded from.
    pub source: PathBuf,
    pub node: NodeSettings,
    pub listen: ListenSettings,
    pub admin: AdminSettings,
    pub cache: CacheSettings,
    pub upstream: UpstreamSettings,
    pub log: LogSettings,
    pub demo: Option<DemoSettings>,
    /// Client geolocation; `None` orders regions by distance from the node only.
    pub geoip: Option<std::sync::Arc<crate::geo::GeoIp>>,
    pub regions: Vec<Region>,
    pub sites: Vec<Site>,
    pub compression: CompressionSettings,
    /// A client naming no site over TLS: `true` fails the handshake, `false` gets the first
    /// site's certificate.
    pub refuse_unknown_sni: bool,
    /// A certificate expiring within this is warned about.
    pub tls_expiry_warning: Duration,
    pub limits: LimitsSettings,
    pub transforms: TransformSettings,
    /// The authoritative geo-DNS server, when `[dns]` is configured.
    pub dns: Option<super::dns::DnsSettings>,
    pub cluster: ClusterSettings,
    /// OpenTelemetry export, when `[tracing]` is set.
    pub tracing: Option<TracingSettings>,
    /// `[images]` (defaults when absent).
    pub images: ImageSettings,
    /// The region holding the `[shield]` nodes, when set (it follows every other region).
    pub shield: Option<RegionId>,
    /// Lower-case host name (no port) to its site and its index in that site's `hosts`.
    pub(crate) hosts: HashMap<Box<str>, (SiteId, usize)>,
}

impl Runtime {
    /// The site serving `host`, which must already be lower-case and without a port.
    pub fn site_for_host(&self, host: &str) -> Option<SiteId> {
        self.hosts.get(host).map(|&(site, _)| site)
    }

    /// Like [`Self::site_for_host`], with the index of the host in the site's `hosts`, so
    /// callers can borrow the canonical name instead of copying the request's.
    pub fn host_entry(&self, host: &str) -> Option<(SiteId, usize)> {
        self.hosts.get(host).copied()
    }
}

/// `[node]`.
#[derive(Debug)]
pub struct NodeSettings {
    pub name: String,
    pub location: GeoPoint,
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// The `Via` value this node adds (RFC 9110 §7.6.3), e.g. `1.1 edge-1`.
    pub via: HeaderValue,
}

/// `[images]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    /// Modern formats offered, in the node's order of preference.
    pub formats: Vec<crate::vocab::image::ImageFormat>,
    /// Lossy quality, 0-100.
    pub quality: u8,
    /// Larger images (width x height) pass through undecoded.
    pub max_pixels: u64,
}

/// `[tracing]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// Where spans are POSTed: the endpoint with `/v1/traces`.
    pub traces_url: String,
    pub service_name: String,
    /// Head sampling of requests without a sampled parent, 0..=1.
    pub sample_ratio: f64,
    /// Spans waiting for export at most.
    pub queue: usize,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// `None` without `[cluster]`.
    pub name: Option<String>,
    /// This cluster's `CDN-Loop` entry (RFC 8586): `meridian-<name>`, or `meridian`.
    pub cdn_id: HeaderValue,
    /// NATS servers with JetStream; empty: purges stay on this node.
    pub nats: Vec<String>,
    pub credentials: Option<PathBuf>,
    /// `POST /purge` answers 503 when JetStream has not acknowledged within this.
    pub purge_timeout: Duration,
    /// Sites, regions, DNS and limits come from the cluster's published configuration.
    pub shared_config: bool,
}

impl Default for ClusterSettings {
    /// Without `[cluster]`: no name, no NATS, the plain `meridian` CDN-Loop entry.
    fn default() -> Self {
        ClusterSettings {
            name: None,
            cdn_id: HeaderValue::from_static("meridian"),
            nats: Vec::new(),
            credentials: None,
            purge_timeout: Duration::from_secs(2),
            shared_config: false,
        }
    }
}

/// `[listen]`.
#[derive(Debug)]
pub struct ListenSettings {
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    pub h2c: bool,
    pub admin: SocketAddr,
    /// Peers whose X-Forwarded-For is believed when locating the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `[admin]`.
/// `[limits]`: bounds on what one client may ask; see `LimitsFile` for each one's status.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsSettings {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
    pub max_request_body: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub rate: Option<RateLimit>,
    /// IPv6 clients share a rate bucket and a connection count per prefix of this length.
    pub ipv6_prefix: u8,
}

/// A token bucket per client address: `per_second` refill, `burst` capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug)]
pub struct AdminSettings {
    /// Bearer token for mutating calls; `None` disables them.
    pub token: Option<String>,
}

/// `[transforms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformSettings {
    /// Whole-body jobs running at once.
    pub workers: usize,
    /// Bytes of bodies allowed to wait for a worker.
    pub max_queued_bytes: u64,
}

/// `[cache]`.
#[derive(Debug)]
pub struct CacheSettings {
    /// Bound on the bytes held by the cache (bodies plus stored headers).
    pub memory_bytes: u64,
    /// Larger responses are passed through and not stored.
    pub max_object_bytes: usize,
    /// How long coalesced requests wait behind the request filling a miss.
    pub lock_timeout: Duration,
    /// Most variants stored per URL (`Vary` on open-ended headers cannot multiply objects).
    pub max_variants: usize,
    /// The disk tier, when `[cache.disk]` is set.
    pub disk: Option<DiskSettings>,
}

/// `[cache.disk]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSettings {
    pub path: PathBuf,
    pub size: u64,
    pub max_object: u64,
}

/// `[upstream]`.
#[derive(Debug)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// How long an idle upstream connection is kept for reuse.
    pub idle_timeout: Duration,
    /// Total attempts for one request across origins and regions (first try included).
    pub max_attempts: usize,
    pub ejection: EjectionPolicy,
    /// Add `X-Served-By: <region>/<origin>` to proxied responses.
    pub served_by_header: bool,
    /// No new attempt starts once a request has spent this long.
    pub total_timeout: Duration,
}

/// Passive outlier detection (Envoy style): consecutive failures eject an origin for a
/// backoff that doubles with each ejection, up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionPolicy {
    /// Consecutive connect failures or 5xx that eject an origin; 0 disables ejection.
    pub after_failures: u32,
    /// First ejection length; each later one doubles it.
    pub base: Duration,
    /// Longest ejection.
    pub max: Duration,
    /// At most this percentage of a region's origins is ejected at once (always at least one).
    pub max_ejected_percent: u32,
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Stdout,
    Off,
    File(PathBuf),
}

/// `[log]`.
#[derive(Debug)]
pub struct LogSettings {
    pub access: AccessLogTarget,
}

/// `[demo]`.
#[derive(Debug)]
pub struct DemoSettings {
    /// Addresses the built-in demo origin listens on, one origin per address.
    pub origins: Vec<SocketAddr>,
}

/// A group of origins at one place.
#[derive(Debug)]
pub struct Region {
    pub name: String,
    pub location: GeoPoint,
    pub origins: Vec<Origin>,
    pub health_check: HealthCheck,
    /// Kilometres added to this region's distance when ordering regions.
    pub bias_km: f64,
    /// What geo-DNS records answer for this region.
    pub dns_addresses: Vec<std::net::IpAddr>,
    /// What the region's nodes are to this node.
    pub kind: RegionKind,
    /// TLS to the origins, when set.
    pub tls: Option<OriginTls>,
    /// HTTP/2 to the origins (ALPN over TLS, h2c without).
    pub http2: bool,
}

/// What a region's nodes are: where requests go, where DNS sends clients, or a shield tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// A `[[regions]]` entry: origins that routes proxy to.
    Origins,
    /// A `[[dns.edges]]` entry: health-checked and answered by geo records, never proxied to.
    DnsEdge,
    /// The `[shield]` nodes: parents that cacheable misses go through, chosen by key.
    Shield,
}

impl RegionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionKind::Origins => "origins",
            RegionKind::DnsEdge => "dns-edge",
            RegionKind::Shield => "shield",
        }
    }
}

/// `[regions.tls]`, read and parsed.
#[derive(Debug, Clone)]
pub struct OriginTls {
    pub sni: String,
    pub verify: bool,
    /// Trusted CAs instead of the system roots.
    pub ca: Option<std::sync::Arc<[pingora_core::utils::tls::WrappedX509]>>,
    pub client: Option<std::sync::Arc<pingora_core::utils::tls::CertKey>>,
}

impl Region {
    /// Distance from `from` used to order regions: great-circle kilometres plus `bias_km`.
    pub fn biased_distance_km(&self, from: &GeoPoint) -> f64 {
        self.location.distance_km(from) + self.bias_km
    }

    /// A region for unit tests: origins on 127.0.0.1 at `ports`, weight 1, TCP checks.
    #[cfg(test)]
    pub(crate) fn for_tests(name: &str, lat: f64, lon: f64, ports: &[(u16, u32)]) -> Region {
        Region {
            name: name.into(),
            location: GeoPoint { lat, lon },
            origins: ports
                .iter()
                .map(|&(port, weight)| Origin {
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    weight,
                    health_check: None,
                })
                .collect(),
            health_check: HealthCheck {
                kind: HealthCheckKind::Tcp,
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                healthy_after: 1,
                unhealthy_after: 1,
                jitter: Duration::ZERO,
            },
            bias_km: 0.0,
            dns_addresses: Vec::new(),
            kind: RegionKind::Origins,
            tls: None,
            http2: false,
        }
    }
}

/// One origin server.
#[derive(Debug, Clone)]
pub struct Origin {
    pub addr: SocketAddr,
    /// Relative share of the region's traffic, at least 1.
    pub weight: u32,
    /// This origin's own check, when it overrides the region's.
    pub health_check: Option<HealthCheck>,
}

/// How an origin's health is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckKind {
    Http(HttpCheck),
    Tcp,
}

/// What an HTTP health check sends and expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub method: http::Method,
    pub path: String,
    /// Host header; `None` sends the origin's address.
    pub host: Option<String>,
    /// Statuses that pass; empty means any 2xx or 3xx.
    pub expect_status: Vec<u16>,
    /// A string the body must contain.
    pub body_contains: Option<String>,
}

/// `[regions.health_check]`, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes before a down origin is up again (HAProxy `rise`).
    pub healthy_after: u32,
    /// Consecutive failures before an up origin is down (HAProxy `fall`).
    pub unhealthy_after: u32,
    /// Random extra delay, up to this, added to each interval.
    pub jitter: Duration,
}

/// A set of host names and the routes that serve them.
#[derive(Debug)]
pub struct Site {
    pub name: String,
    pub hosts: Vec<String>,
    /// Sorted longest path first, so the first prefix that matches is the longest.
    pub routes: Vec<Route>,
    /// The certificate served for this site's hosts on HTTPS listeners.
    pub tls: Option<std::sync::Arc<rustls::sign::CertifiedKey>>,
    /// The leaf certificate's notAfter.
    pub tls_not_after: Option<std::time::SystemTime>,
    /// Plain-HTTP requests are redirected (308) to HTTPS.
    pub https_redirect: bool,
    /// The Strict-Transport-Security value sent on HTTPS responses.
    pub hsts: Option<HeaderValue>,
}

impl Site {
    /// The route whose path is the longest prefix of `path`.
    pub fn route_for_path(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| path.starts_with(r.path.as_str()))
    }
}

/// Which regions serve a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionChoice {
    /// Nearest first, by distance.
    Nearest,
    /// Exactly these, in this order.
    Ordered(Vec<RegionId>),
}

/// What the query string contributes to the cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryRule {
    /// As sent.
    #[default]
    Keep,
    /// Parameters sorted, so `?b=1&a=2` and `?a=2&b=1` share an entry.
    Sort,
    /// Dropped: every query string shares the path's entry.
    Ignore,
}

/// How a route builds its cache keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKeyRule {
    pub query: QueryRule,
    /// Parameter names left out of the key.
    pub ignore_params: Vec<String>,
    /// Request headers whose values join the key.
    pub headers: Vec<http::HeaderName>,
    /// https requests are keyed apart from http ones (`https://host/...`); otherwise both
    /// share the `http://host/...` key.
    pub scheme: bool,
}

impl CacheKeyRule {
    /// The rule of a route that sets nothing: shared scheme, query kept, no headers.
    pub const DEFAULT: CacheKeyRule = CacheKeyRule {
        query: QueryRule::Keep,
        ignore_params: Vec::new(),
        headers: Vec::new(),
        scheme: false,
    };
}

/// [`CacheKeyRule::DEFAULT`] as a place to borrow from (a `const` with a `Vec` is not promoted).
pub static DEFAULT_CACHE_KEY: CacheKeyRule = CacheKeyRule::DEFAULT;

/// A path prefix within a site and how it is served.
#[derive(Debug)]
pub struct Route {
    pub path: String,
    /// Honour origin freshness and cache; `false` never caches.
    pub cache: bool,
    /// stale-if-error window for responses that grant none (zero: none).
    pub stale_if_error: Duration,
    pub cache_key: CacheKeyRule,
    pub regions: RegionChoice,
    /// The regions in the order this node tries them when it knows nothing of the client:
    /// for `Nearest`, by distance from the node's own location.
    pub region_order: Vec<RegionId>,
    /// Compress responses, at cache fill for stored ones and on the fly for the rest.
    pub compress: bool,
    /// Minify stored HTML, CSS and JavaScript at cache fill.
    pub minify: bool,
    /// `[compression]` with this route's own values over it (shared when it has none).
    pub compression: std::sync::Arc<CompressionSettings>,
    pub max_request_body: u64,
    /// TRACE is forwarded; otherwise the node answers it 405.
    pub allow_trace: bool,
    /// Cacheable misses go through the shield tier (never set without `[shield]`).
    pub shield: bool,
    /// How stored JPEG, PNG and GIF responses are re-encoded.
    pub images: crate::vocab::image::ImageMode,
}

/// `[compression]`: how `compress` routes compress.
#[derive(Debug, Clone)]
pub struct CompressionSettings {
    /// The server's preference among codings the client accepts.
    pub preference: Vec<crate::vocab::Coding>,
    /// Levels at cache fill.
    pub fill_levels: Levels,
    /// Levels on the fly.
    pub fast_levels: Levels,
    /// Lower-case media types compressed (`type/subtype`, or `type/*`).
    pub types: Vec<String>,
    /// Smaller declared bodies are sent as they are.
    pub min_size: u64,
}

/// A level per coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub br: u32,
    pub zstd: u32,
    pub gzip: u32,
}

impl Levels {
    pub fn of(&self, coding: crate::vocab::Coding) -> u32 {
        match coding {
            crate::vocab::Coding::Br => self.br,
            crate::vocab::Coding::Zstd => self.zstd,
            crate::vocab::Coding::Gzip => self.gzip,
            crate::vocab::Coding::Identity => 0,
        }
    }
}
