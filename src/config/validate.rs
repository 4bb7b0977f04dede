//! Builds the runtime model from the file types, collecting every error before returning.

use super::error::{ConfigError, ConfigErrors, Source};
use super::file::{
    CacheKeyFile, FileConfig, HealthCheckFile, LocationFile, OriginFile, RegionsFile, RouteFile,
    SiteFile,
};
use super::runtime::{
    AccessLogTarget, AdminSettings, CacheKeyRule, CacheSettings, DemoSettings, EjectionPolicy,
    HealthCheck, HealthCheckKind, HttpCheck, ListenSettings, LogSettings, NodeSettings, Origin,
    QueryRule, Region, RegionChoice, RegionId, Route, Runtime, Site, SiteId, UpstreamSettings,
};
use crate::geo::distance::GeoPoint;
use http::HeaderValue;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

const DEFAULT_CACHE_MEMORY: u64 = 256 * 1024 * 1024;
const DEFAULT_MAX_OBJECT: u64 = 8 * 1024 * 1024;
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
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
}

impl Builder<'_> {
    fn push(&mut self, span: Range<usize>, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(self.src.error(span, key, reason));
    }

    fn push_hint(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        reason: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.errors
            .push(self.src.error(span, key, reason).hint(hint));
    }

    fn runtime(&mut self, f: &FileConfig) -> Runtime {
        let node = self.node(f);
        let listen = self.listen(f);
        let admin = self.admin(f);
        let cache = self.cache(f);
        let upstream = self.upstream(f);
        let log = self.log(f);
        let demo = f.demo.as_ref().map(|d| DemoSettings {
            origins: self.addr_list(&d.origins, "demo.origins"),
        });
        let geoip = self.geoip(f);
        let regions = self.regions(f);
        let (sites, hosts) = self.sites(&f.sites, &regions, &node.location);
        self.distinct_listeners(f, &listen, demo.as_ref());
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
        }
    }

    fn geoip(&mut self, f: &FileConfig) -> Option<std::sync::Arc<crate::geo::GeoIp>> {
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

    fn node(&mut self, f: &FileConfig) -> NodeSettings {
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

    fn location(&mut self, loc: &LocationFile, key: &str) -> GeoPoint {
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

    fn listen(&mut self, f: &FileConfig) -> ListenSettings {
        let http = self.addr_list(&f.listen.http, "listen.http");
        if f.listen.http.get_ref().is_empty() {
            self.push_hint(
                f.listen.http.span(),
                "listen.http",
                "no HTTP listen address",
                "give at least one, e.g. [\"127.0.0.1:8080\"]",
            );
        }
        let admin = self
            .socket_addr(&f.listen.admin, "listen.admin")
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
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
        ListenSettings {
            http,
            admin,
            trusted_proxies,
        }
    }

    fn addr_list(&mut self, list: &Spanned<Vec<Spanned<String>>>, key: &str) -> Vec<SocketAddr> {
        list.get_ref()
            .iter()
            .enumerate()
            .filter_map(|(i, a)| self.socket_addr(a, &format!("{key}[{i}]")))
            .collect()
    }

    /// A listen address must be a literal `ip:port`: binding never resolves names.
    fn socket_addr(&mut self, v: &Spanned<String>, key: &str) -> Option<SocketAddr> {
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
    fn distinct_listeners(
        &mut self,
        f: &FileConfig,
        listen: &ListenSettings,
        demo: Option<&DemoSettings>,
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
        check(
            self,
            listen.admin,
            f.listen.admin.span(),
            "listen.admin".into(),
        );
        if let (Some(demo), Some(file)) = (demo, f.demo.as_ref()) {
            for (i, addr) in demo.origins.iter().enumerate() {
                let span = file.origins.get_ref().get(i).map_or(0..0, |s| s.span());
                check(self, *addr, span, format!("demo.origins[{i}]"));
            }
        }
    }

    fn admin(&mut self, f: &FileConfig) -> AdminSettings {
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

    fn token(&mut self, token: &str, span: Range<usize>, key: &str) -> Option<String> {
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
    fn relative_to_config(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        match self.src.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn cache(&mut self, f: &FileConfig) -> CacheSettings {
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
        CacheSettings {
            memory_bytes: memory,
            max_object_bytes: usize::try_from(max_object).unwrap_or(usize::MAX),
            lock_timeout,
        }
    }

    fn upstream(&mut self, f: &FileConfig) -> UpstreamSettings {
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

    fn log(&mut self, f: &FileConfig) -> LogSettings {
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

    fn regions(&mut self, f: &FileConfig) -> Vec<Region> {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut regions = Vec::with_capacity(f.regions.len());
        for (i, r) in f.regions.iter().enumerate() {
            let key = format!("regions[{i}]");
            let name = r.name.get_ref().trim();
            if name.is_empty() {
                self.push(r.name.span(), format!("{key}.name"), "region name is empty");
            } else if let Some(first) = names.insert(name, i) {
                self.push(
                    r.name.span(),
                    format!("{key}.name"),
                    format!("region {name:?} is already defined by regions[{first}]"),
                );
            }
            let location = self.location(&r.location, &format!("{key}.location"));
            let origins = self.origins(&r.origins, &format!("{key}.origins"));
            let health_check = self.health_check(r.health_check.as_ref(), &key);
            let bias_km = match &r.bias_km {
                Some(b) if b.get_ref().is_finite() && b.get_ref().abs() <= 40_000.0 => *b.get_ref(),
                Some(b) => {
                    self.push(
                        b.span(),
                        format!("{key}.bias_km"),
                        format!("{} km is not a usable bias (|bias| <= 40000)", b.get_ref()),
                    );
                    0.0
                }
                None => 0.0,
            };
            regions.push(Region {
                name: name.to_owned(),
                location,
                origins,
                health_check,
                bias_km,
            });
        }
        regions
    }

    fn origins(&mut self, list: &Spanned<Vec<Spanned<OriginFile>>>, key: &str) -> Vec<Origin> {
        if list.get_ref().is_empty() {
            self.push_hint(
                list.span(),
                key,
                "a region needs at least one origin",
                "add e.g. origins = [\"10.0.0.5:80\"]",
            );
        }
        let mut out = Vec::new();
        for (i, o) in list.get_ref().iter().enumerate() {
            let okey = format!("{key}[{i}]");
            let origin = o.get_ref();
            // A bare-string origin has no span of its own: point at the list element instead.
            let addr_span = if origin.addr.span() == (0..0) {
                o.span()
            } else {
                origin.addr.span()
            };
            let weight = match &origin.weight {
                None => 1,
                Some(w) if (1..=MAX_WEIGHT).contains(w.get_ref()) => *w.get_ref() as u32,
                Some(w) => {
                    self.push(
                        w.span(),
                        format!("{okey}.weight"),
                        format!("weight {} is outside 1..={MAX_WEIGHT}", w.get_ref()),
                    );
                    1
                }
            };
            let health_check = origin
                .health_check
                .as_ref()
                .map(|hc| self.health_check(Some(hc), &okey));
            if let Some(addr) = self.origin_addr(origin.addr.get_ref(), addr_span, &okey) {
                out.push(Origin {
                    addr,
                    weight,
                    health_check,
                });
            }
        }
        out
    }

    /// Origins may be names; they are resolved once, here, as nginx does at startup.
    fn origin_addr(&mut self, text: &str, span: Range<usize>, key: &str) -> Option<SocketAddr> {
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        let has_port = text
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        if !has_port {
            self.push_hint(
                span,
                key,
                format!("{text:?} has no port"),
                "write host:port, e.g. \"10.0.0.5:80\"",
            );
            return None;
        }
        match text.to_socket_addrs().map(|mut it| it.next()) {
            Ok(Some(a)) => Some(a),
            Ok(None) | Err(_) => {
                self.push_hint(
                    span,
                    key,
                    format!("{text:?} does not resolve to an address"),
                    "check the host name, or give an ip:port",
                );
                None
            }
        }
    }

    fn health_check(&mut self, hc: Option<&HealthCheckFile>, region_key: &str) -> HealthCheck {
        let key = format!("{region_key}.health_check");
        let none = HealthCheckFile {
            kind: None,
            path: None,
            interval: None,
            timeout: None,
            healthy_after: None,
            unhealthy_after: None,
            jitter: None,
            method: None,
            host: None,
            expect_status: None,
            body_contains: None,
        };
        let hc = hc.unwrap_or(&none);
        let path = match &hc.path {
            Some(p) if !p.get_ref().starts_with('/') => {
                self.push_hint(
                    p.span(),
                    format!("{key}.path"),
                    format!("{:?} is not an absolute path", p.get_ref()),
                    "start it with '/', e.g. \"/healthz\"",
                );
                "/".to_owned()
            }
            Some(p) => p.get_ref().clone(),
            None => "/".to_owned(),
        };
        let method = match hc.method.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("GET") => http::Method::GET,
            Some("HEAD") => http::Method::HEAD,
            Some(other) => {
                let span = hc.method.as_ref().map_or(0..0, |m| m.span());
                self.push_hint(
                    span,
                    format!("{key}.method"),
                    format!("{other:?} is not a health check method"),
                    "write \"GET\" or \"HEAD\"",
                );
                http::Method::GET
            }
        };
        let host = hc.host.as_ref().and_then(|h| {
            let v = h.get_ref().trim();
            if v.is_empty() || HeaderValue::from_str(v).is_err() {
                self.push(
                    h.span(),
                    format!("{key}.host"),
                    format!("{v:?} is not a Host value"),
                );
                None
            } else {
                Some(v.to_owned())
            }
        });
        let mut expect_status = Vec::new();
        for (i, st) in hc.expect_status.iter().flatten().enumerate() {
            match u16::try_from(*st.get_ref()) {
                Ok(code) if (100..=599).contains(&code) => expect_status.push(code),
                _ => self.push(
                    st.span(),
                    format!("{key}.expect_status[{i}]"),
                    format!("{} is not an HTTP status", st.get_ref()),
                ),
            }
        }
        let body_contains = hc.body_contains.as_ref().map(|b| b.get_ref().clone());
        let kind = match hc.kind.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("http") => HealthCheckKind::Http(HttpCheck {
                method,
                path,
                host,
                expect_status,
                body_contains,
            }),
            Some("tcp") => HealthCheckKind::Tcp,
            Some(other) => {
                let span = hc.kind.as_ref().map_or(0..0, |k| k.span());
                self.push_hint(
                    span,
                    format!("{key}.kind"),
                    format!("{other:?} is not a health check kind"),
                    "write \"http\" or \"tcp\"",
                );
                HealthCheckKind::Tcp
            }
        };
        let interval = self.duration(
            &hc.interval,
            &format!("{key}.interval"),
            DEFAULT_CHECK_INTERVAL,
        );
        let timeout = self.duration(
            &hc.timeout,
            &format!("{key}.timeout"),
            DEFAULT_CHECK_TIMEOUT.min(interval),
        );
        if timeout > interval {
            if let Some(t) = &hc.timeout {
                self.push_hint(
                    t.span(),
                    format!("{key}.timeout"),
                    format!(
                        "timeout {} is longer than the interval {}",
                        humantime::format_duration(timeout),
                        humantime::format_duration(interval)
                    ),
                    "a check must finish before the next one starts",
                );
            }
        }
        let healthy_after = self.count(
            &hc.healthy_after,
            &format!("{key}.healthy_after"),
            DEFAULT_CHECK_RISE_FALL,
            1,
            100,
        ) as u32;
        let unhealthy_after = self.count(
            &hc.unhealthy_after,
            &format!("{key}.unhealthy_after"),
            DEFAULT_CHECK_RISE_FALL,
            1,
            100,
        ) as u32;
        let jitter = match &hc.jitter {
            Some(j) => self.duration(&Some(j.clone()), &format!("{key}.jitter"), interval / 10),
            None => interval / 10,
        };
        HealthCheck {
            kind,
            interval,
            timeout,
            healthy_after,
            unhealthy_after,
            jitter,
        }
    }

    fn sites(
        &mut self,
        sites: &[SiteFile],
        regions: &[Region],
        node: &GeoPoint,
    ) -> (Vec<Site>, HostIndex) {
        let mut hosts = HostIndex::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::with_capacity(sites.len());
        for (i, s) in sites.iter().enumerate() {
            let key = format!("sites[{i}]");
            let name = s.name.get_ref().trim();
            if name.is_empty() {
                self.push(s.name.span(), format!("{key}.name"), "site name is empty");
            } else if let Some(first) = names.insert(name, i) {
                self.push(
                    s.name.span(),
                    format!("{key}.name"),
                    format!("site {name:?} is already defined by sites[{first}]"),
                );
            }
            let mut site_hosts = Vec::new();
            for (j, h) in s.hosts.get_ref().iter().enumerate() {
                let hkey = format!("{key}.hosts[{j}]");
                let Some(host) = self.host_name(h, &hkey) else {
                    continue;
                };
                if let Some(&(other, _)) = hosts.get(host.as_str()) {
                    let owner = sites.get(other).map_or("?", |o| o.name.get_ref().as_str());
                    self.push_hint(
                        h.span(),
                        hkey,
                        format!("host {host:?} is already served by site {owner:?}"),
                        "a host name belongs to one site",
                    );
                    continue;
                }
                hosts.insert(host.clone().into_boxed_str(), (i, site_hosts.len()));
                site_hosts.push(host);
            }
            if s.hosts.get_ref().is_empty() {
                self.push(
                    s.hosts.span(),
                    format!("{key}.hosts"),
                    "a site needs at least one host",
                );
            }
            let routes = self.routes(s, &key, regions, node);
            out.push(Site {
                name: name.to_owned(),
                hosts: site_hosts,
                routes,
            });
        }
        (out, hosts)
    }

    /// Host names are matched lower-case and without a port (RFC 9110 §4.2.3).
    fn host_name(&mut self, h: &Spanned<String>, key: &str) -> Option<String> {
        let host = h.get_ref().trim().to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            let hint = if host.contains(':') {
                "give the name without a port: the port is ignored when matching"
            } else {
                "use a DNS name such as \"www.example.com\""
            };
            self.push_hint(
                h.span(),
                key,
                format!("{:?} is not a host name", h.get_ref()),
                hint,
            );
            return None;
        }
        Some(host)
    }

    fn routes(
        &mut self,
        s: &SiteFile,
        site_key: &str,
        regions: &[Region],
        node: &GeoPoint,
    ) -> Vec<Route> {
        let mut paths: HashMap<&str, usize> = HashMap::new();
        let mut routes = Vec::with_capacity(s.routes.len());
        for (j, r) in s.routes.iter().enumerate() {
            let key = format!("{site_key}.routes[{j}]");
            let path = r.path.get_ref();
            if !path.starts_with('/') {
                self.push_hint(
                    r.path.span(),
                    format!("{key}.path"),
                    format!("{path:?} does not start with '/'"),
                    "route paths are prefixes of the request path, e.g. \"/static/\"",
                );
            } else if let Some(first) = paths.insert(path.as_str(), j) {
                self.push(
                    r.path.span(),
                    format!("{key}.path"),
                    format!("path {path:?} is already routed by routes[{first}]"),
                );
            }
            let (choice, order) = self.route_regions(r, &key, regions, node);
            let stale_if_error = match &r.stale_if_error {
                Some(v) => self.duration(
                    &Some(v.clone()),
                    &format!("{key}.stale_if_error"),
                    Duration::ZERO,
                ),
                None => Duration::ZERO,
            };
            let cache_key = self.cache_key_rule(r.cache_key.as_ref(), &key);
            routes.push(Route {
                path: path.clone(),
                cache: r.cache.unwrap_or(true),
                stale_if_error,
                cache_key,
                regions: choice,
                region_order: order,
            });
        }
        if s.routes.is_empty() {
            self.push_hint(
                s.name.span(),
                format!("{site_key}.routes"),
                "a site needs at least one route",
                "add [[sites.routes]] with path = \"/\"",
            );
        }
        // Longest first: the first prefix match is then the longest one.
        routes.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        routes
    }

    fn cache_key_rule(&mut self, f: Option<&CacheKeyFile>, route_key: &str) -> CacheKeyRule {
        let Some(f) = f else {
            return CacheKeyRule::default();
        };
        let key = format!("{route_key}.cache_key");
        let query = match f.query.as_ref().map(|q| q.get_ref().as_str()) {
            None | Some("keep") => QueryRule::Keep,
            Some("sort") => QueryRule::Sort,
            Some("ignore") => QueryRule::Ignore,
            Some(other) => {
                let span = f.query.as_ref().map_or(0..0, |q| q.span());
                self.push_hint(
                    span,
                    format!("{key}.query"),
                    format!("{other:?} is not a query rule"),
                    "write \"keep\", \"sort\" or \"ignore\"",
                );
                QueryRule::Keep
            }
        };
        let mut ignore_params = Vec::new();
        for (i, p) in f.ignore_params.iter().flatten().enumerate() {
            if p.get_ref().is_empty() || p.get_ref().contains(['&', '=']) {
                self.push(
                    p.span(),
                    format!("{key}.ignore_params[{i}]"),
                    format!("{:?} is not a query parameter name", p.get_ref()),
                );
            } else {
                ignore_params.push(p.get_ref().clone());
            }
        }
        let mut headers = Vec::new();
        for (i, h) in f.headers.iter().flatten().enumerate() {
            match http::HeaderName::from_bytes(h.get_ref().as_bytes()) {
                Ok(name) => headers.push(name),
                Err(_) => self.push(
                    h.span(),
                    format!("{key}.headers[{i}]"),
                    format!("{:?} is not a header name", h.get_ref()),
                ),
            }
        }
        CacheKeyRule {
            query,
            ignore_params,
            headers,
        }
    }

    fn route_regions(
        &mut self,
        r: &RouteFile,
        key: &str,
        regions: &[Region],
        node: &GeoPoint,
    ) -> (RegionChoice, Vec<RegionId>) {
        let nearest = || {
            let mut order: Vec<RegionId> = (0..regions.len()).collect();
            order.sort_by(|&a, &b| {
                let da = regions[a].biased_distance_km(node);
                let db = regions[b].biased_distance_km(node);
                da.total_cmp(&db).then(a.cmp(&b))
            });
            order
        };
        let rkey = format!("{key}.regions");
        if regions.is_empty() {
            self.push_hint(
                r.path.span(),
                rkey,
                "there are no regions to send this route to",
                "define at least one [[regions]]",
            );
            return (RegionChoice::Nearest, Vec::new());
        }
        let Some(spec) = &r.regions else {
            return (RegionChoice::Nearest, nearest());
        };
        match spec.get_ref() {
            RegionsFile::Keyword(k) if k == "nearest" => (RegionChoice::Nearest, nearest()),
            RegionsFile::Keyword(k) => {
                self.push_hint(
                    spec.span(),
                    rkey,
                    format!("{k:?} is not a region choice"),
                    "write \"nearest\" or a list of region names",
                );
                (RegionChoice::Nearest, nearest())
            }
            RegionsFile::List(names) => {
                if names.is_empty() {
                    self.push_hint(
                        spec.span(),
                        rkey.clone(),
                        "the region list is empty",
                        "name at least one region, or write \"nearest\"",
                    );
                }
                let mut ids = Vec::with_capacity(names.len());
                for (k, n) in names.iter().enumerate() {
                    match regions.iter().position(|reg| reg.name == *n.get_ref()) {
                        Some(id) if ids.contains(&id) => self.push(
                            n.span(),
                            format!("{rkey}[{k}]"),
                            format!("region {:?} is listed twice", n.get_ref()),
                        ),
                        Some(id) => ids.push(id),
                        None => {
                            let known: Vec<&str> =
                                regions.iter().map(|reg| reg.name.as_str()).collect();
                            let hint = match super::closest(n.get_ref(), &known) {
                                Some(c) => format!("did you mean {c:?}?"),
                                None => format!("known regions: {}", known.join(", ")),
                            };
                            self.push_hint(
                                n.span(),
                                format!("{rkey}[{k}]"),
                                format!("unknown region {:?}", n.get_ref()),
                                hint,
                            );
                        }
                    }
                }
                (RegionChoice::Ordered(ids.clone()), ids)
            }
        }
    }

    fn duration(&mut self, v: &Option<Spanned<String>>, key: &str, default: Duration) -> Duration {
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

    fn size(&mut self, v: &Option<Spanned<String>>, key: &str, default: u64) -> u64 {
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

    fn count(
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
