//! Builds the runtime model from the file types, collecting every error before returning.

use super::error::{ConfigError, ConfigErrors, Source};
use super::file::{
    CacheKeyFile, FileConfig, HealthCheckFile, LocationFile, OriginFile, RegionsFile, RouteFile,
    SiteFile,
};
use super::runtime::{
    AccessLogTarget, AdminSettings, CacheKeyRule, CacheSettings, DemoSettings, EjectionPolicy,
    HealthCheck, HealthCheckKind, HttpCheck, ListenSettings, LogSettings, NodeSettings, Origin,
    QueryRule, Region, RegionChoice, RegionId, RegionKind, Route, Runtime, Site, SiteId,
    TransformSettings, UpstreamSettings,
};
use crate::geo::distance::GeoPoint;
use http::HeaderValue;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

mod cache_disk;
mod compression;
mod dns;
mod edges;
mod images;
mod limits;
mod origin_tls;
mod regions;
mod shield;
mod sites;
mod tls;
mod tracing;

const DEFAULT_CACHE_MEMORY: u64 = 256 * 1024 * 1024;
const DEFAULT_MAX_OBJECT: u64 = 8 * 1024 * 1024;
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodies waiting for the transform pool: eight 8 MiB objects.
const DEFAULT_TRANSFORM_QUEUE: u64 = 64 << 20;
/// Variants per URL: Accept-Encoding sets (16 at most) fit; `Vary: User-Agent` is held to it.
const DEFAULT_MAX_VARIANTS: i64 = 16;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_ATTEMPTS: i64 = 3;
const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_CHECK_RISE_FALL: i64 = 2;
/// Above this, a weight is surely a typo, and smooth weighted round robin would get coarse.
const MAX_WEIGHT: i64 = 1000;

/// Lower-case host name to its site and its index in that site's `hosts`.
type HostIndex = HashMap<Box<str>, (SiteId, usize)>;

/// Validates `file` (parsed from `src`) into the runtime model, or returns every error in it.
pub fn build(file: &FileConfig, src: &Source) -> Result<Runtime, ConfigErrors> {
    let mut b = Builder {
        src,
        errors: Vec::new(),
        node_compression: std::sync::Arc::new(compression::defaults()),
        default_body_limit: 0,
        has_shield: file.shield.is_some(),
    };
    let runtime = b.runtime(file);
    if b.errors.is_empty() {
        Ok(runtime)
    } else {
        b.errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(b.errors))
    }
}

struct Builder<'a> {
    src: &'a Source,
    errors: Vec<ConfigError>,
    /// `[compression]`, once read: routes start from it.
    node_compression: std::sync::Arc<crate::config::runtime::CompressionSettings>,
    /// `[limits] max_request_body`, the default of each route's own.
    default_body_limit: u64,
    /// `[shield]` is set: routes send cacheable misses through it unless they say not to.
    has_shield: bool,
}

impl Builder<'_> {
    pub(super) fn push(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.errors.push(self.src.error(span, key, reason));
    }

    pub(super) fn push_hint(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        reason: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors
            .push(self.src.error(span, key, reason).hint(hint));
    }

    pub(super) fn runtime(&mut self, f: &FileConfig) -> Runtime {
        let node = self.node(f);
        let listen = self.listen(f);
        let admin = self.admin(f);
        if !listen.admin.ip().is_loopback() && admin.token.is_none() {
            // /status and /metrics describe the node to whoever can reach them.
            self.push_hint(
                f.listen.admin.as_ref().map_or(0..0, |a| a.span()),
                "listen.admin",
                format!(
                    "{} is reachable beyond this host and admin.token is not set",
                    listen.admin
                ),
                "bind the admin API to 127.0.0.1, or set admin.token (or token_file)",
            );
        }
        let cache = self.cache(f);
        let upstream = self.upstream(f);
        let log = self.log(f);
        let demo = f.demo.as_ref().map(|d| DemoSettings {
            origins: self.addr_list(&d.origins, "demo.origins"),
        });
        let geoip = self.geoip(f);
        let mut regions = self.regions(f);
        let compression = self.compression(f);
        self.node_compression = std::sync::Arc::new(compression.clone());
        let limits = self.limits(f);
        let transforms = self.transforms(f);
        let tls_expiry_warning = self.expiry_warning(f);
        self.default_body_limit = limits.max_request_body;
        let (sites, hosts) = self.sites(&f.sites, &regions, &node.location);
        self.https_has_certificates(f);
        let refuse_unknown_sni = self.refuse_unknown_sni(f);
        // Edges join the regions after the sites took theirs, so no route ever uses one.
        let edges = self.dns_edges(f, &regions);
        regions.extend(edges);
        // Last, so no route or DNS record takes it for a region.
        let shield = self.shield(f, &regions).map(|s| {
            regions.push(s);
            regions.len() - 1
        });
        let cluster = self.cluster(f);
        let tracing = self.tracing(f);
        let images = self.images(f);
        let dns = self.dns(f, &regions);
        self.distinct_listeners(f, &listen, demo.as_ref(), dns.as_ref());
        Runtime {
            source: self.src.path.clone(),
            node,
            listen,
            admin,
            cache,
            upstream,
            log,
            demo,
            geoip,
            regions,
            sites,
            hosts,
            dns,
            cluster,
            tracing,
            images,
            shield,
            compression,
            refuse_unknown_sni,
            tls_expiry_warning,
            limits,
            transforms,
        }
    }

    pub(super) fn transforms(&mut self, f: &FileConfig) -> TransformSettings {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let (workers, queue) = match &f.transforms {
            Some(t) => (&t.workers, &t.queue),
            None => (&None, &None),
        };
        let workers = self.count(
            workers,
            "transforms.workers",
            i64::try_from(cpus).unwrap_or(1),
            1,
            256,
        );
        let queue = self.size(queue, "transforms.queue", DEFAULT_TRANSFORM_QUEUE);
        TransformSettings {
            workers: usize::try_from(workers).unwrap_or(1),
            max_queued_bytes: queue,
        }
    }

    pub(super) fn geoip(&mut self, f: &FileConfig) -> Option<std::sync::Arc<crate::geo::GeoIp>> {
        let g = f.geoip.as_ref()?;
        let database = self.relative_to_config(g.database.get_ref());
        let countries = match &g.countries {
            Some(c) => Some(self.relative_to_config(c.get_ref())),
            None => database
                .parent()
                .map(|dir| dir.join("country-coordinates.csv"))
                .filter(|p| p.exists()),
        };
        match crate::geo::GeoIp::open(&database, countries.as_deref()) {
            Ok(db) => Some(std::sync::Arc::new(db)),
            Err(e) => {
                let (span, key) = match &e {
                    crate::geo::GeoError::Database { .. } => (g.database.span(), "geoip.database"),
                    _ => (
                        g.countries.as_ref().map_or(g.database.span(), |c| c.span()),
                        "geoip.countries",
                    ),
                };
                let cause = std::error::Error::source(&e)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                self.push_hint(
                    span,
                    key,
                    format!("{e}{cause}"),
                    "give a MaxMind-layout .mmdb (paths are relative to this file)",
                );
                None
            }
        }
    }

    pub(super) fn node(&mut self, f: &FileConfig) -> NodeSettings {
        let name = f.node.name.get_ref().trim().to_owned();
        // The name goes into `Via`, so it must be a valid token-ish header value.
        let usable = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let via = match HeaderValue::try_from(format!("1.1 {name}")) {
            Ok(v) if usable => v,
            _ => {
                self.push_hint(
                    f.node.name.span(),
                    "node.name",
                    format!("{:?} is not a usable node name", f.node.name.get_ref()),
                    "use letters, digits, '-', '_' or '.', e.g. \"edge-1\"",
                );
                HeaderValue::from_static("1.1 meridian")
            }
        };
        let location = self.location(&f.node.location, "node.location");
        let default_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = self.count(
            &f.node.threads,
            "node.threads",
            default_threads as i64,
            1,
            256,
        );
        NodeSettings {
            name,
            location,
            threads: threads as usize,
            via,
        }
    }

    pub(super) fn location(&mut self, loc: &LocationFile, key: &str) -> GeoPoint {
        let (lat, lon) = (*loc.lat.get_ref(), *loc.lon.get_ref());
        if !(-90.0..=90.0).contains(&lat) {
            self.push(
                loc.lat.span(),
                format!("{key}.lat"),
                format!("latitude {lat} is outside -90..=90"),
            );
        }
        if !(-180.0..=180.0).contains(&lon) {
            self.push(
                loc.lon.span(),
                format!("{key}.lon"),
                format!("longitude {lon} is outside -180..=180"),
            );
        }
        GeoPoint::new(lat, lon).unwrap_or(GeoPoint { lat: 0.0, lon: 0.0 })
    }

    pub(super) fn listen(&mut self, f: &FileConfig) -> ListenSettings {
        let http = self.addr_list(&f.listen.http, "listen.http");
        if f.listen.http.get_ref().is_empty() {
            self.push_hint(
                f.listen.http.span(),
                "listen.http",
                "no HTTP listen address",
                "give at least one, e.g. [\"127.0.0.1:8080\"]",
            );
        }
        let admin = match &f.listen.admin {
            Some(a) => self
                .socket_addr(a, "listen.admin")
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            None => SocketAddr::from(([127, 0, 0, 1], 9901)),
        };
        let mut trusted_proxies = Vec::new();
        for (i, t) in f.listen.trusted_proxies.iter().flatten().enumerate() {
            let text = t.get_ref().trim();
            let parsed = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => trusted_proxies.push(net),
                Err(_) => self.push_hint(
                    t.span(),
                    format!("listen.trusted_proxies[{i}]"),
                    format!("{text:?} is not an address or CIDR block"),
                    "write e.g. \"10.0.0.0/8\" or \"192.0.2.7\"",
                ),
            }
        }
        let https = f
            .listen
            .https
            .as_ref()
            .map(|l| self.addr_list(l, "listen.https"))
            .unwrap_or_default();
        ListenSettings {
            http,
            https,
            h2c: f.listen.h2c.unwrap_or(false),
            admin,
            trusted_proxies,
        }
    }

    pub(super) fn addr_list(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        key: &str,
    ) -> Vec<SocketAddr> {
        list.get_ref()
            .iter()
            .enumerate()
            .filter_map(|(i, a)| self.socket_addr(a, &format!("{key}[{i}]")))
            .collect()
    }

    /// A listen address must be a literal `ip:port`: binding never resolves names.
    pub(super) fn socket_addr(&mut self, v: &Spanned<String>, key: &str) -> Option<SocketAddr> {
        match v.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.push_hint(
                    v.span(),
                    key,
                    format!("{:?} is not an address", v.get_ref()),
                    "write ip:port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
                );
                None
            }
        }
    }

    /// Listeners of one node must not collide, or the second bind fails at startup.
    pub(super) fn distinct_listeners(
        &mut self,
        f: &FileConfig,
        listen: &ListenSettings,
        demo: Option<&DemoSettings>,
        dns: Option<&crate::config::dns::DnsSettings>,
    ) {
        let mut seen: HashMap<SocketAddr, String> = HashMap::new();
        let mut check = |b: &mut Self, addr: SocketAddr, span: Range<usize>, key: String| {
            if let Some(first) = seen.get(&addr) {
                b.push(span, key, format!("{addr} is already used by {first}"));
            } else {
                seen.insert(addr, key);
            }
        };
        for (i, addr) in listen.http.iter().enumerate() {
            let span = f.listen.http.get_ref().get(i).map_or(0..0, |s| s.span());
            check(self, *addr, span, format!("listen.http[{i}]"));
        }
        for (i, addr) in listen.https.iter().enumerate() {
            let span = f
                .listen
                .https
                .as_ref()
                .and_then(|l| l.get_ref().get(i))
                .map_or(0..0, |s| s.span());
            check(self, *addr, span, format!("listen.https[{i}]"));
        }
        check(
            self,
            listen.admin,
            f.listen.admin.as_ref().map_or(0..0, |a| a.span()),
            "listen.admin".into(),
        );
        if let (Some(demo), Some(file)) = (demo, f.demo.as_ref()) {
            for (i, addr) in demo.origins.iter().enumerate() {
                let span = file.origins.get_ref().get(i).map_or(0..0, |s| s.span());
                check(self, *addr, span, format!("demo.origins[{i}]"));
            }
        }
        // DNS also listens on TCP at each address, so it collides with the HTTP listeners.
        if let (Some(dns), Some(file)) = (dns, f.dns.as_ref()) {
            for (i, addr) in dns.listen.iter().enumerate() {
                let span = file.listen.get_ref().get(i).map_or(0..0, |s| s.span());
                check(self, *addr, span, format!("dns.listen[{i}]"));
            }
        }
    }

    pub(super) fn admin(&mut self, f: &FileConfig) -> AdminSettings {
        let token = match (&f.admin.token, &f.admin.token_file) {
            (Some(t), Some(_)) => {
                self.push_hint(
                    t.span(),
                    "admin.token",
                    "both token and token_file are set",
                    "keep one of them",
                );
                None
            }
            (Some(t), None) => self.token(t.get_ref().trim(), t.span(), "admin.token"),
            (None, Some(path)) => {
                let full = self.relative_to_config(path.get_ref());
                match std::fs::read_to_string(&full) {
                    Ok(text) => self.token(text.trim(), path.span(), "admin.token_file"),
                    Err(e) => {
                        self.push(
                            path.span(),
                            "admin.token_file",
                            format!("cannot read {}: {e}", full.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
        AdminSettings { token }
    }

    pub(super) fn token(&mut self, token: &str, span: Range<usize>, key: &str) -> Option<String> {
        if token.is_empty() {
            self.push_hint(
                span,
                key,
                "the admin token is empty",
                "set a long random string, or remove the key to disable mutating admin calls",
            );
            return None;
        }
        if HeaderValue::from_str(token).is_err() {
            self.push(
                span,
                key,
                "the admin token has characters that cannot appear in a header",
            );
            return None;
        }
        Some(token.to_owned())
    }

    /// Paths in the config are relative to the config file's directory, like nginx's includes.
    pub(super) fn relative_to_config(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        match self.src.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    pub(super) fn cache(&mut self, f: &FileConfig) -> CacheSettings {
        let memory = self.size(&f.cache.memory, "cache.memory", DEFAULT_CACHE_MEMORY);
        let max_object = self.size(&f.cache.max_object, "cache.max_object", DEFAULT_MAX_OBJECT);
        if max_object > memory {
            if let Some(v) = &f.cache.max_object {
                self.push_hint(
                    v.span(),
                    "cache.max_object",
                    format!("{max_object} bytes is more than cache.memory ({memory} bytes)"),
                    "lower max_object or raise memory",
                );
            }
        }
        let lock_timeout = self.duration(
            &f.cache.lock_timeout,
            "cache.lock_timeout",
            DEFAULT_LOCK_TIMEOUT,
        );
        let max_variants = self.count(
            &f.cache.max_variants,
            "cache.max_variants",
            DEFAULT_MAX_VARIANTS,
            1,
            1024,
        );
        let disk = f
            .cache
            .disk
            .as_ref()
            .and_then(|d| self.cache_disk(d, max_object));
        CacheSettings {
            memory_bytes: memory,
            max_object_bytes: usize::try_from(max_object).unwrap_or(usize::MAX),
            lock_timeout,
            max_variants: usize::try_from(max_variants).unwrap_or(1),
            disk,
        }
    }

    pub(super) fn upstream(&mut self, f: &FileConfig) -> UpstreamSettings {
        let u = &f.upstream;
        UpstreamSettings {
            connect_timeout: self.duration(
                &u.connect_timeout,
                "upstream.connect_timeout",
                DEFAULT_CONNECT_TIMEOUT,
            ),
            read_timeout: self.duration(
                &u.read_timeout,
                "upstream.read_timeout",
                DEFAULT_READ_TIMEOUT,
            ),
            write_timeout: self.duration(
                &u.write_timeout,
                "upstream.write_timeout",
                DEFAULT_WRITE_TIMEOUT,
            ),
            idle_timeout: self.duration(
                &u.idle_timeout,
                "upstream.idle_timeout",
                DEFAULT_IDLE_TIMEOUT,
            ),
            max_attempts: self.count(
                &u.max_attempts,
                "upstream.max_attempts",
                DEFAULT_MAX_ATTEMPTS,
                1,
                16,
            ) as usize,
            ejection: EjectionPolicy {
                after_failures: self.count(&u.eject_after, "upstream.eject_after", 5, 0, 1000)
                    as u32,
                base: self.duration(&u.eject_for, "upstream.eject_for", Duration::from_secs(10)),
                max: self.duration(&u.eject_max, "upstream.eject_max", Duration::from_secs(300)),
                max_ejected_percent: self.count(
                    &u.max_ejected_percent,
                    "upstream.max_ejected_percent",
                    50,
                    0,
                    100,
                ) as u32,
            },
            served_by_header: u.served_by_header.unwrap_or(false),
            total_timeout: self.duration(
                &u.total_timeout,
                "upstream.total_timeout",
                Duration::from_secs(60),
            ),
        }
    }

    pub(super) fn log(&mut self, f: &FileConfig) -> LogSettings {
        let access = match f.log.access.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("stdout") => AccessLogTarget::Stdout,
            Some("off") => AccessLogTarget::Off,
            Some("") => {
                let span = f.log.access.as_ref().map_or(0..0, |s| s.span());
                self.push_hint(
                    span,
                    "log.access",
                    "the access log target is empty",
                    "write \"stdout\", \"off\" or a file path",
                );
                AccessLogTarget::Off
            }
            Some(path) => AccessLogTarget::File(self.relative_to_config(path)),
        };
        LogSettings { access }
    }

    pub(super) fn duration(
        &mut self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(v) = v else { return default };
        match humantime::parse_duration(v.get_ref().trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.push(v.span(), key, "a zero duration is not allowed");
                default
            }
            Err(_) => {
                self.push_hint(
                    v.span(),
                    key,
                    format!("{:?} is not a duration", v.get_ref()),
                    "write e.g. \"500ms\", \"90s\" or \"5m\"",
                );
                default
            }
        }
    }

    pub(super) fn size(&mut self, v: &Option<Spanned<String>>, key: &str, default: u64) -> u64 {
        let Some(v) = v else { return default };
        match v.get_ref().trim().parse::<bytesize::ByteSize>() {
            Ok(s) if s.as_u64() > 0 => s.as_u64(),
            Ok(_) => {
                self.push(v.span(), key, "a size of zero is not allowed");
                default
            }
            Err(_) => {
                self.push_hint(
                    v.span(),
                    key,
                    format!("{:?} is not a size", v.get_ref()),
                    "write e.g. \"512KiB\", \"8MiB\" or \"1GiB\"",
                );
                default
            }
        }
    }

    pub(super) fn count(
        &mut self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> i64 {
        let Some(v) = v else { return default };
        if (min..=max).contains(v.get_ref()) {
            *v.get_ref()
        } else {
            self.push(
                v.span(),
                key,
                format!("{} is outside {min}..={max}", v.get_ref()),
            );
            default
        }
    }
}
