//! Validation of `[limits]` and the per-site HTTPS policy (redirect, HSTS).

use super::*;
use crate::config::file::{HstsFile, LimitsFile};
use crate::config::runtime::{LimitsSettings, RateLimit};

/// pingora reads at most this much request header, and parses at most 256 fields; limits
/// above them could never be reached.
const PINGORA_MAX_HEADER_BYTES: u64 = 1_048_575;
const PINGORA_MAX_HEADERS: i64 = 256;

impl Builder<'_> {
    /// Defaults follow what nginx, Envoy and HAProxy users expect of a front door: generous
    /// for browsers and APIs, short enough that an idle or trickling client cannot hold a
    /// connection for long. Rate limiting is off unless asked for (NATs share addresses).
    pub(super) fn limits(&mut self, f: &FileConfig) -> LimitsSettings {
        let empty = LimitsFile {
            max_header_bytes: None,
            max_headers: None,
            max_uri_bytes: None,
            max_request_body: None,
            header_timeout: None,
            body_timeout: None,
            keepalive_timeout: None,
            max_connections: None,
            max_connections_per_ip: None,
            rate_per_ip: None,
            rate_burst: None,
            ipv6_prefix: None,
        };
        let l = f.limits.as_ref().unwrap_or(&empty);
        let max_header_bytes = self.size(&l.max_header_bytes, "limits.max_header_bytes", 32 << 10);
        if max_header_bytes > PINGORA_MAX_HEADER_BYTES {
            self.push_size_cap(&l.max_header_bytes, "limits.max_header_bytes");
        }
        let max_uri_bytes = self.size(&l.max_uri_bytes, "limits.max_uri_bytes", 8 << 10);
        if max_uri_bytes > PINGORA_MAX_HEADER_BYTES {
            self.push_size_cap(&l.max_uri_bytes, "limits.max_uri_bytes");
        }
        let max_connections = self.count(
            &l.max_connections,
            "limits.max_connections",
            10_000,
            1,
            1 << 24,
        );
        let max_connections_per_ip = self.count(
            &l.max_connections_per_ip,
            "limits.max_connections_per_ip",
            256,
            1,
            1 << 24,
        );
        LimitsSettings {
            max_header_bytes: usize::try_from(max_header_bytes).unwrap_or(usize::MAX),
            max_headers: usize::try_from(self.count(
                &l.max_headers,
                "limits.max_headers",
                100,
                1,
                PINGORA_MAX_HEADERS,
            ))
            .unwrap_or(100),
            max_uri_bytes: usize::try_from(max_uri_bytes).unwrap_or(usize::MAX),
            max_request_body: self.size(&l.max_request_body, "limits.max_request_body", 16 << 20),
            header_timeout: self.duration(
                &l.header_timeout,
                "limits.header_timeout",
                Duration::from_secs(10),
            ),
            body_timeout: self.duration(
                &l.body_timeout,
                "limits.body_timeout",
                Duration::from_secs(30),
            ),
            keepalive_timeout: self.duration(
                &l.keepalive_timeout,
                "limits.keepalive_timeout",
                Duration::from_secs(60),
            ),
            max_connections: usize::try_from(max_connections).unwrap_or(10_000),
            max_connections_per_ip: usize::try_from(max_connections_per_ip).unwrap_or(256),
            rate: self.rate(l),
            // An ISP hands a host a /64 (RFC 6177): counting single addresses would let one
            // host rotate through 2^64 of them.
            ipv6_prefix: u8::try_from(self.count(&l.ipv6_prefix, "limits.ipv6_prefix", 64, 1, 128))
                .unwrap_or(64),
        }
    }

    fn push_size_cap(&mut self, v: &Option<Spanned<String>>, key: &str) {
        let span = v.as_ref().map_or(0..0, |v| v.span());
        self.push_hint(
            span,
            key,
            "larger than the 1 MiB of header pingora reads",
            "give at most \"1MiB\"",
        );
    }

    fn rate(&mut self, l: &LimitsFile) -> Option<RateLimit> {
        let per_second = match &l.rate_per_ip {
            None => return None,
            Some(v) if *v.get_ref() == 0.0 => return None,
            Some(v) if v.get_ref().is_finite() && *v.get_ref() > 0.0 => *v.get_ref(),
            Some(v) => {
                self.push_hint(
                    v.span(),
                    "limits.rate_per_ip",
                    format!("{} is not a rate", v.get_ref()),
                    "give requests per second, e.g. 50 or 0.5; 0 turns rate limiting off",
                );
                return None;
            }
        };
        // A burst of at least one second's worth, and at least one request.
        let default_burst = per_second.ceil().max(1.0) as i64;
        let burst = self.count(
            &l.rate_burst,
            "limits.rate_burst",
            default_burst,
            1,
            1 << 24,
        );
        Some(RateLimit {
            per_second,
            burst: burst as f64,
        })
    }

    /// `hsts = { max_age = "365d", include_subdomains = true, preload = false }`.
    pub(super) fn hsts(&mut self, h: &HstsFile, key: &str) -> Option<HeaderValue> {
        let max_age = match humantime::parse_duration(h.max_age.get_ref().trim()) {
            Ok(d) => d.as_secs(),
            Err(_) => {
                self.push_hint(
                    h.max_age.span(),
                    format!("{key}.max_age"),
                    format!("{:?} is not a duration", h.max_age.get_ref()),
                    "write e.g. \"365d\"; \"0s\" tells browsers to forget the policy",
                );
                return None;
            }
        };
        let mut value = format!("max-age={max_age}");
        if h.include_subdomains.unwrap_or(false) {
            value.push_str("; includeSubDomains");
        }
        if h.preload.unwrap_or(false) {
            // hstspreload.org refuses a preload request without these two.
            if max_age < 31_536_000 || !h.include_subdomains.unwrap_or(false) {
                self.push_hint(
                    h.max_age.span(),
                    format!("{key}.preload"),
                    "preload needs max_age of at least a year and include_subdomains",
                    "set max_age = \"365d\" and include_subdomains = true, or drop preload",
                );
            }
            value.push_str("; preload");
        }
        HeaderValue::from_str(&value).ok()
    }
}
