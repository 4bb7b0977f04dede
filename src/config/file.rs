//! Serde types that mirror `conf/*.toml` one to one; never used at runtime.
//!
//! Every table denies unknown keys, and every value that validation may reject is wrapped in
//! `Spanned` so its error can point at a line and column. Defaults are applied in
//! `validate.rs`, not here, so a missing key and a bad key are told apart.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use toml::Spanned;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node: NodeFile,
    pub listen: ListenFile,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub cache: CacheFile,
    #[serde(default)]
    pub upstream: UpstreamFile,
    #[serde(default)]
    pub log: LogFile,
    pub demo: Option<DemoFile>,
    pub geoip: Option<GeoIpFile>,
    #[serde(default)]
    pub regions: Vec<RegionFile>,
    #[serde(default)]
    pub sites: Vec<SiteFile>,
    pub dns: Option<DnsFile>,
    pub compression: Option<CompressionFile>,
    pub tls: Option<TlsPolicyFile>,
    pub limits: Option<LimitsFile>,
    pub transforms: Option<TransformsFile>,
    pub cluster: Option<ClusterFile>,
    pub shield: Option<ShieldFile>,
    pub tracing: Option<TracingFile>,
    pub images: Option<ImagesFile>,
}

/// `[images]`: how `images` routes re-encode JPEG, PNG and GIF responses (node-wide).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesFile {
    /// Modern formats offered, in this order, to clients whose `Accept` lists them.
    pub formats: Option<Spanned<Vec<Spanned<String>>>>,
    /// Lossy quality, 0-100 (default 80).
    pub quality: Option<Spanned<i64>>,
    /// Larger images pass through untouched (default 40 million pixels).
    pub max_pixels: Option<Spanned<i64>>,
}

/// `[tracing]`: OpenTelemetry spans exported to a collector (OTLP over HTTP, protobuf).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFile {
    /// The collector's base URL (`http://host:4318`); spans go to `/v1/traces` under it.
    pub otlp_endpoint: Spanned<String>,
    /// `service.name` of the spans (default "meridian").
    pub service_name: Option<Spanned<String>>,
    /// Share of requests without a sampled parent that are traced (default 0.01).
    pub sample_ratio: Option<Spanned<f64>>,
    /// Spans waiting for export; past it new spans are dropped and counted (default 4096).
    pub queue: Option<Spanned<i64>>,
}

/// `[cluster]`: the fleet this node belongs to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Nodes of one cluster share purges and config; also this cluster's `CDN-Loop` entry.
    pub name: Spanned<String>,
    /// NATS servers with JetStream (`nats://host:port`); purges fan out through them.
    pub nats: Option<Spanned<Vec<Spanned<String>>>>,
    /// A NATS credentials file (`.creds`), when the servers want one.
    pub credentials: Option<Spanned<String>>,
    /// How long `POST /purge` waits for JetStream's acknowledgement before answering 503.
    pub purge_timeout: Option<Spanned<String>>,
    /// Serve the sites, regions, DNS and limits published with `meridian config publish`.
    pub shared_config: Option<Spanned<bool>>,
}

/// `[shield]`: parent Meridian nodes that cacheable misses go through (a shield tier).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShieldFile {
    /// `host:port` of each shield node's http listener.
    pub nodes: Spanned<Vec<Spanned<String>>>,
    /// As a region's; the default kind here is `tcp`.
    pub health_check: Option<HealthCheckFile>,
}

/// `[transforms]`: the pool that does whole-body work (minify, fill-level compression) off
/// the proxy threads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformsFile {
    /// Jobs running at once (default: one per CPU).
    pub workers: Option<Spanned<i64>>,
    /// Bytes of bodies waiting for a worker; past it a fill keeps its fast version.
    pub queue: Option<Spanned<String>>,
}

/// `[limits]`: what one client may ask of the node (sizes, times, connections, rate).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Request line plus header fields, in bytes (431 beyond).
    pub max_header_bytes: Option<Spanned<String>>,
    /// Header fields in one request (431 beyond).
    pub max_headers: Option<Spanned<i64>>,
    /// Request target length (414 beyond).
    pub max_uri_bytes: Option<Spanned<String>>,
    /// Request body, unless a route says otherwise (413 beyond).
    pub max_request_body: Option<Spanned<String>>,
    /// Time from a connection's first byte (or the previous response) to a whole header.
    pub header_timeout: Option<Spanned<String>>,
    /// Longest wait between two reads of a request body (408 beyond).
    pub body_timeout: Option<Spanned<String>>,
    /// How long an idle keep-alive connection is kept open.
    pub keepalive_timeout: Option<Spanned<String>>,
    /// Open client connections, all together and per client address (503 beyond).
    pub max_connections: Option<Spanned<i64>>,
    pub max_connections_per_ip: Option<Spanned<i64>>,
    /// Requests per second per client address (token bucket; 429 beyond); 0 is off.
    pub rate_per_ip: Option<Spanned<f64>>,
    /// Requests a client may send at once before the rate applies.
    pub rate_burst: Option<Spanned<i64>>,
    /// IPv6 clients are counted by this prefix (one host holds a whole /64).
    pub ipv6_prefix: Option<Spanned<i64>>,
}

/// `[compression]`: how `compress` routes compress (node-wide).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionFile {
    /// Preference among the codings a client accepts, e.g. `["br", "zstd", "gzip"]`.
    pub codings: Option<Spanned<Vec<Spanned<String>>>>,
    /// Levels at cache fill (paid once per variant).
    pub levels: Option<LevelsFile>,
    /// Levels for responses compressed on the fly (not stored).
    pub fast_levels: Option<LevelsFile>,
    /// Media types compressed.
    pub types: Option<Spanned<Vec<Spanned<String>>>>,
    /// Responses declaring a smaller `Content-Length` are not compressed.
    pub min_size: Option<Spanned<String>>,
}

/// `{ br = 9, zstd = 15, gzip = 9 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelsFile {
    pub br: Option<Spanned<i64>>,
    pub zstd: Option<Spanned<i64>>,
    pub gzip: Option<Spanned<i64>>,
}

/// `[node]`: who this node is and where it stands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub name: Spanned<String>,
    pub location: LocationFile,
    /// Worker threads of the proxy service; defaults to the number of CPUs.
    pub threads: Option<Spanned<i64>>,
}

/// `{ lat = .., lon = .. }` in degrees.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationFile {
    pub lat: Spanned<f64>,
    pub lon: Spanned<f64>,
}

/// `[listen]`: the sockets this node binds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenFile {
    pub http: Spanned<Vec<Spanned<String>>>,
    /// HTTPS listeners: TLS with each site's certificate chosen by SNI, h2 and http/1.1.
    pub https: Option<Spanned<Vec<Spanned<String>>>>,
    /// Accept HTTP/2 without TLS (prior knowledge) on the `http` listeners.
    pub h2c: Option<bool>,
    /// The admin API; loopback (127.0.0.1:9901, Envoy's port) unless set.
    pub admin: Option<Spanned<String>>,
    /// Peers whose X-Forwarded-For is believed (addresses or CIDR blocks).
    pub trusted_proxies: Option<Vec<Spanned<String>>>,
}

/// `[geoip]`: where clients are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpFile {
    /// A MaxMind-layout `.mmdb` (GeoIP2/GeoLite2 City or Country, or ip-location-db).
    pub database: Spanned<String>,
    /// `CC,lat,lon` per line, placing country-only records; default: `country-coordinates.csv`
    /// beside the database, when present.
    pub countries: Option<Spanned<String>>,
}

/// `[admin]`: the token that mutating admin calls need.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub token: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
}

/// `[cache]`: the in-memory HTTP cache.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFile {
    pub memory: Option<Spanned<String>>,
    pub max_object: Option<Spanned<String>>,
    /// How long coalesced requests wait for the one fetching a miss before going themselves.
    pub lock_timeout: Option<Spanned<String>>,
    /// Most variants (Vary) kept per URL; past it the oldest is replaced.
    pub max_variants: Option<Spanned<i64>>,
    /// The disk tier beneath the memory cache.
    pub disk: Option<CacheDiskFile>,
}

/// `[cache.disk]`: where the disk tier lives and how much it may hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDiskFile {
    /// A directory Meridian owns.
    pub path: Spanned<String>,
    /// Bound on bytes on disk (bodies and metadata).
    pub size: Spanned<String>,
    /// Largest object kept on disk (default: size / 16).
    pub max_object: Option<Spanned<String>>,
}

/// `[upstream]`: timeouts and attempts for requests to origins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub connect_timeout: Option<Spanned<String>>,
    pub read_timeout: Option<Spanned<String>>,
    pub write_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
    pub max_attempts: Option<Spanned<i64>>,
    /// Consecutive connect failures or 5xx that eject an origin (0 disables ejection).
    pub eject_after: Option<Spanned<i64>>,
    /// First ejection length; each later one doubles, up to `eject_max`.
    pub eject_for: Option<Spanned<String>>,
    pub eject_max: Option<Spanned<String>>,
    /// Share of a region's origins that may be ejected at once (at least one always may).
    pub max_ejected_percent: Option<Spanned<i64>>,
    /// Add `X-Served-By: <region>/<origin>` to proxied responses.
    pub served_by_header: Option<bool>,
    /// No new attempt starts once a request has spent this long on origins.
    pub total_timeout: Option<Spanned<String>>,
}

/// `[log]`: where access-log lines go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    /// `"stdout"`, `"off"` or a file path.
    pub access: Option<Spanned<String>>,
}

/// `[demo]`: the built-in demo origin, so the shipped config serves traffic on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoFile {
    pub origins: Spanned<Vec<Spanned<String>>>,
}

/// `[[regions]]`: a group of origins at one place.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionFile {
    pub name: Spanned<String>,
    pub location: LocationFile,
    pub origins: Spanned<Vec<Spanned<OriginFile>>>,
    pub health_check: Option<HealthCheckFile>,
    /// Kilometres added to this region's distance when ordering (negative: prefer it).
    pub bias_km: Option<Spanned<f64>>,
    /// What geo-DNS records answer for this region (IPv4 for A, IPv6 for AAAA).
    pub dns_addresses: Option<Spanned<Vec<Spanned<String>>>>,
    /// `[regions.tls]`: speak TLS to this region's origins.
    pub tls: Option<OriginTlsFile>,
    /// Speak HTTP/2 to the origins: negotiated by ALPN over TLS, prior knowledge (h2c)
    /// without.
    pub http2: Option<bool>,
}

/// `[regions.tls]`: how the node connects to a region's origins over TLS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginTlsFile {
    /// The name sent as SNI and verified in the origin's certificate.
    pub sni: Option<Spanned<String>>,
    /// PEM CA certificates to trust instead of the system roots.
    pub ca: Option<Spanned<String>>,
    /// Verify the origin's certificate and name (default true).
    pub verify: Option<bool>,
    /// A client certificate and key (PEM) for origins that ask for one.
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// One origin: `"host:port"` or `{ addr = "host:port", weight = 2 }`.
#[derive(Debug)]
pub struct OriginFile {
    pub addr: Spanned<String>,
    pub weight: Option<Spanned<i64>>,
    /// Overrides the region's health check for this origin.
    pub health_check: Option<HealthCheckFile>,
}

/// `[regions.health_check]`: parsed and validated now, run by the health-check service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    pub kind: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub healthy_after: Option<Spanned<i64>>,
    pub unhealthy_after: Option<Spanned<i64>>,
    /// Random delay added to each interval, so checks of many origins spread out.
    pub jitter: Option<Spanned<String>>,
    /// HTTP method of the check (GET or HEAD).
    pub method: Option<Spanned<String>>,
    /// Host header of the check; default: the origin's address.
    pub host: Option<Spanned<String>>,
    /// Statuses that pass; default: any 2xx or 3xx.
    pub expect_status: Option<Vec<Spanned<i64>>>,
    /// A string the response body must contain.
    pub body_contains: Option<Spanned<String>>,
}

/// `[[sites]]`: a set of host names and the routes that serve them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFile {
    pub name: Spanned<String>,
    pub hosts: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    /// `{ cert = "x.pem", key = "x.key" }`: this site's certificate on the HTTPS listeners.
    pub tls: Option<TlsFile>,
    /// Answer plain-HTTP requests with a 308 to the same URL over HTTPS.
    pub https_redirect: Option<bool>,
    /// `{ max_age = "365d", include_subdomains = true, preload = false }`:
    /// Strict-Transport-Security on this site's HTTPS responses.
    pub hsts: Option<HstsFile>,
}

/// `[sites.hsts]`: the Strict-Transport-Security policy sent over HTTPS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HstsFile {
    pub max_age: Spanned<String>,
    pub include_subdomains: Option<bool>,
    pub preload: Option<bool>,
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    /// A DER OCSP response for the certificate, stapled to handshakes (refreshed by reload).
    pub ocsp: Option<Spanned<String>>,
}

/// `[tls]`: node-wide HTTPS behaviour.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPolicyFile {
    /// A client naming no site (or none) gets the first site's certificate (`"default"`),
    /// or the handshake fails (`"refuse"`).
    pub unknown_sni: Option<Spanned<String>>,
    /// Warn (log and metric) when a certificate expires within this long.
    pub expiry_warning: Option<Spanned<String>>,
}

/// `[[sites.routes]]`: a path prefix and how it is served.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub path: Spanned<String>,
    pub cache: Option<bool>,
    pub regions: Option<Spanned<RegionsFile>>,
    /// Default stale-if-error window for responses that grant none: how long a stored copy
    /// keeps being served while the origins fail.
    pub stale_if_error: Option<Spanned<String>>,
    pub cache_key: Option<CacheKeyFile>,
    /// Compress responses (br / zstd / gzip), once per cached variant.
    pub compress: Option<bool>,
    /// Minify stored HTML, CSS and JavaScript, once, at cache fill.
    pub minify: Option<bool>,
    /// `[sites.routes.compression]`: this route's own values for `[compression]` keys.
    pub compression: Option<CompressionFile>,
    /// This route's request body limit, over `[limits] max_request_body`.
    pub max_request_body: Option<Spanned<String>>,
    /// Forward TRACE requests to the origin (default false: answered 405 by the node).
    pub allow_trace: Option<bool>,
    /// Send cacheable misses through the `[shield]` tier (default: true when it is set).
    pub shield: Option<Spanned<bool>>,
    /// Re-encode stored JPEG, PNG and GIF: `"off"` (default), `"lossless"` or `"lossy"`.
    pub images: Option<Spanned<String>>,
}

/// `[sites.routes.cache_key]`: what of the request goes into the cache key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheKeyFile {
    /// `"keep"` (default), `"sort"` or `"ignore"`.
    pub query: Option<Spanned<String>>,
    /// Query parameters left out of the key (tracking parameters and the like).
    pub ignore_params: Option<Vec<Spanned<String>>>,
    /// Request headers whose values are added to the key.
    pub headers: Option<Vec<Spanned<String>>>,
    /// Key http and https apart (Cloudflare's default); `false` (default) shares one object
    /// between them, as Fastly does.
    pub scheme: Option<bool>,
}

/// `regions = "nearest"` or `regions = ["eu-west", "us-east"]`.
#[derive(Debug)]
pub enum RegionsFile {
    Keyword(String),
    List(Vec<Spanned<String>>),
}

/// Field table of the long form of an origin.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OriginTable {
    addr: Spanned<String>,
    weight: Option<Spanned<i64>>,
    health_check: Option<HealthCheckFile>,
}

impl<'de> Deserialize<'de> for OriginFile {
    // Hand-written rather than `untagged`, whose only error is "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OriginVisitor;
        impl<'de> Visitor<'de> for OriginVisitor {
            type Value = OriginFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    r#"an address "host:port" or a table { addr = "host:port", weight = 1 }"#,
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OriginFile, E> {
                // A bare string carries no span of its own here; the enclosing `Spanned` has it.
                Ok(OriginFile {
                    addr: Spanned::new(0..0, v.to_owned()),
                    weight: None,
                    health_check: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OriginFile, A::Error> {
                let table = OriginTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(OriginFile {
                    addr: table.addr,
                    weight: table.weight,
                    health_check: table.health_check,
                })
            }
        }
        deserializer.deserialize_any(OriginVisitor)
    }
}

impl<'de> Deserialize<'de> for RegionsFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RegionsVisitor;
        impl<'de> Visitor<'de> for RegionsVisitor {
            type Value = RegionsFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""nearest" or a list of region names"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RegionsFile, E> {
                Ok(RegionsFile::Keyword(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RegionsFile, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    names.push(name);
                }
                Ok(RegionsFile::List(names))
            }
        }
        deserializer.deserialize_any(RegionsVisitor)
    }
}

/// `[dns]`: the authoritative geo-DNS server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFile {
    /// UDP and TCP on each address.
    pub listen: Spanned<Vec<Spanned<String>>>,
    /// Largest UDP response this server sends, whatever the client's EDNS size (default 1232).
    pub max_udp_payload: Option<Spanned<i64>>,
    /// Worker threads of the DNS service (default 1).
    pub threads: Option<Spanned<i64>>,
    /// How long an idle TCP connection is kept (default 10s).
    pub tcp_idle_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub zones: Vec<ZoneFile>,
    /// Other edge nodes geo records may send clients to, beside the regions.
    #[serde(default)]
    pub edges: Vec<EdgeFile>,
}

/// `[[dns.edges]]`: an edge node (another Meridian, a CDN PoP) that geo records can answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeFile {
    pub name: Spanned<String>,
    pub location: LocationFile,
    /// What geo records answer for this edge.
    pub addresses: Spanned<Vec<Spanned<String>>>,
    /// `host:port` the health checks probe; default: the first address, port 80.
    pub check: Option<Spanned<String>>,
    /// As a region's; the default kind here is `tcp`.
    pub health_check: Option<HealthCheckFile>,
}

/// `[[dns.zones]]`: one zone this server is authoritative for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    pub name: Spanned<String>,
    pub ns: Spanned<Vec<Spanned<String>>>,
    /// The SOA's responsible mailbox, as a name (`hostmaster.example.test`) or an address.
    pub hostmaster: Spanned<String>,
    /// SOA serial; default: the time the configuration was loaded, in Unix seconds.
    pub serial: Option<Spanned<i64>>,
    /// TTL of static records, SOA and NS, in seconds (default 3600).
    pub ttl: Option<Spanned<i64>>,
    pub refresh: Option<Spanned<i64>>,
    pub retry: Option<Spanned<i64>>,
    pub expire: Option<Spanned<i64>>,
    /// How long resolvers cache NXDOMAIN / NODATA (the SOA minimum, RFC 2308; default 300).
    pub negative_ttl: Option<Spanned<i64>>,
    #[serde(default)]
    pub records: Vec<DnsRecordFile>,
}

/// `[[dns.zones.records]]`: a static record set, or a geo record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecordFile {
    /// Relative to the zone; `"@"` is the apex; a name ending in `.` is absolute.
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub ttl: Option<Spanned<i64>>,
    /// Static records: one value per record, in zone-file syntax for MX and CAA.
    pub values: Option<Spanned<Vec<Spanned<String>>>>,
    /// Geo records: how many of the nearest healthy targets to answer (default 1).
    pub answers: Option<Spanned<i64>>,
    /// Geo records: the candidate regions (default: every region with `dns_addresses`,
    /// unless `edges` is given).
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
    /// Geo records: candidate `[[dns.edges]]` (default: every edge, unless `regions` is
    /// given).
    pub edges: Option<Spanned<Vec<Spanned<String>>>>,
    /// Geo records: addresses answered when no candidate is healthy (default: every
    /// candidate, nearest first).
    pub fallback: Option<Spanned<Vec<Spanned<String>>>>,
}
