//! Whether a response may be stored, and for how long: RFC 9111 §3 and §4.2, RFC 9213.
//!
//! A pure function of the request, the response, the time and the route's defaults, so each
//! rule is tested without a server.

use http::header::{AGE, AUTHORIZATION, DATE, EXPIRES, LAST_MODIFIED, SET_COOKIE, VARY};
use http::HeaderMap;
use pingora_cache::cache_control::CacheControl;
use std::time::{Duration, SystemTime};

/// Share of the time since Last-Modified used as heuristic lifetime (RFC 9111 §4.2.2 "10%").
const HEURISTIC_FRACTION: u32 = 10;
/// Cap on a heuristic lifetime: a file untouched for a year is not fresh for a month.
pub const HEURISTIC_CAP: Duration = Duration::from_secs(24 * 3600);
/// Delta-seconds beyond this are clamped (RFC 9111 §1.2.2: 2^31).
const DELTA_MAX: u64 = 2_147_483_648;

/// Statuses a cache may store with heuristic freshness (RFC 9110 §15.1).
const HEURISTICALLY_CACHEABLE: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// Route-level defaults that apply when the origin is silent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreshnessDefaults {
    /// stale-if-error window for responses that grant none (and do not forbid it).
    pub stale_if_error: Duration,
}

/// The verdict on one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storable {
    /// Store it; fresh until `fresh_until`.
    Yes(Freshness),
    /// Do not store it, for this reason (a `Cache-Status` detail token).
    No(&'static str),
}

/// How long a stored response is fresh, and how long it may be served stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub fresh_until: SystemTime,
    /// The response's age when it arrived (RFC 9111 §4.2.3 corrected_initial_age); the
    /// stored object's age counts from `now - initial_age`.
    pub initial_age: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

/// The cache directives that govern this cache: `CDN-Cache-Control` (RFC 9213) when present
/// and valid, else `Surrogate-Control`, else `Cache-Control`.
pub(crate) fn governing_directives(headers: &HeaderMap) -> Option<CacheControl> {
    let cdn = if cdn_cache_control_is_valid(headers) {
        CacheControl::from_headers_named("cdn-cache-control", headers)
    } else {
        None
    };
    cdn.or_else(|| {
        ["surrogate-control", "cache-control"]
            .iter()
            .find_map(|name| CacheControl::from_headers_named(name, headers))
    })
}

/// Directives whose value is delta-seconds: an Integer in a Structured Fields Dictionary.
const DELTA_SECONDS_DIRECTIVES: [&str; 4] = [
    "max-age",
    "s-maxage",
    "stale-while-revalidate",
    "stale-if-error",
];

/// RFC 9213 §2.1: `CDN-Cache-Control` is a Structured Fields Dictionary (RFC 8941 §3.2); a
/// field that fails to parse is ignored as a whole, and so is one whose delta-seconds
/// directives are not non-negative Integers (`max-age="10000"`), so `Cache-Control` governs.
/// Absent counts as valid.
fn cdn_cache_control_is_valid(headers: &HeaderMap) -> bool {
    let mut lines = headers.get_all("cdn-cache-control").iter().peekable();
    if lines.peek().is_none() {
        return true;
    }
    // RFC 8941 §4.2: several field lines are one value, joined with commas.
    let joined: Vec<u8> = lines
        .enumerate()
        .flat_map(|(i, v)| {
            let sep: &[u8] = if i == 0 { b"" } else { b", " };
            sep.iter().chain(v.as_bytes()).copied().collect::<Vec<u8>>()
        })
        .collect();
    let Ok(dict) = sfv::Parser::parse_dictionary(&joined) else {
        return false;
    };
    DELTA_SECONDS_DIRECTIVES
        .iter()
        .all(|name| match dict.get(*name) {
            None => true,
            Some(sfv::ListEntry::Item(item)) => {
                matches!(item.bare_item, sfv::BareItem::Integer(n) if n >= 0)
            }
            Some(sfv::ListEntry::InnerList(_)) => false,
        })
}

/// Decides whether `resp` (the answer to `req_headers`) may be stored, and its freshness.
pub fn evaluate(
    req_headers: &HeaderMap,
    status: u16,
    resp: &HeaderMap,
    now: SystemTime,
    defaults: FreshnessDefaults,
) -> Storable {
    // Partial content is never stored: a range miss fetches the whole object.
    if status == 206 || status == 304 || (100..200).contains(&status) {
        return Storable::No("status");
    }
    let cc = governing_directives(resp);
    if let Some(cc) = &cc {
        if cc.no_store() {
            return Storable::No("no-store");
        }
        if cc.private() {
            return Storable::No("private");
        }
    }
    if CacheControl::from_headers_named("cache-control", req_headers).is_some_and(|c| c.no_store())
    {
        return Storable::No("request-no-store");
    }
    // RFC 9111 §3.5: a shared cache stores answers to authorized requests only when allowed.
    if req_headers.contains_key(AUTHORIZATION)
        && !cc
            .as_ref()
            .is_some_and(|c| c.public() || c.has_key("s-maxage") || c.must_revalidate())
    {
        return Storable::No("authorization");
    }
    // One user's session cookie must never be replayed to another (Varnish, nginx).
    if resp.contains_key(SET_COOKIE) {
        return Storable::No("set-cookie");
    }
    // RFC 9111 §4.1: "Vary: *" never matches a later request.
    if vary_lists_star(resp) {
        return Storable::No("vary-star");
    }

    let Some(lifetime) = lifetime(cc.as_ref(), status, resp) else {
        return Storable::No("no-freshness");
    };
    let age = initial_age(resp, now);
    let initial_age = age.unwrap_or_else(|| apparent_age(resp, now));
    let fresh_until = match (age, lifetime.checked_sub(initial_age)) {
        (Some(_), Some(left)) if !left.is_zero() => now + left,
        // Already stale on arrival, or of unknown age: stored to be revalidated.
        _ => now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
    };
    let (swr, sie) = stale_windows(cc.as_ref(), defaults);
    Storable::Yes(Freshness {
        fresh_until,
        initial_age,
        stale_while_revalidate: swr,
        stale_if_error: sie,
    })
}

/// Freshness lifetime (RFC 9111 §4.2.1): s-maxage, max-age, Expires − Date, then heuristic.
/// `None` when nothing gives the response a lifetime.
fn lifetime(cc: Option<&CacheControl>, status: u16, resp: &HeaderMap) -> Option<Duration> {
    if let Some(cc) = cc {
        // no-cache: store, but every use must be validated (§5.2.2.4).
        if cc.no_cache() {
            return Some(Duration::ZERO);
        }
        // A malformed value (negative, fractional, not a number) makes the response stale
        // rather than falling through to Expires (§4.2.1: the most restrictive reading).
        match cc.s_maxage() {
            Ok(Some(s)) => return Some(delta(s)),
            Err(_) => return Some(Duration::ZERO),
            Ok(None) => {}
        }
        match cc.max_age() {
            Ok(Some(s)) => return Some(delta(s)),
            Err(_) => return Some(Duration::ZERO),
            Ok(None) => {}
        }
    }
    let mut expires = resp.get_all(EXPIRES).iter();
    if let Some(first) = expires.next() {
        // §5.3: several Expires, or an invalid one, mean "already expired".
        let parsed = if expires.next().is_some() {
            None
        } else {
            http_date(first.as_bytes())
        };
        let Some(expires) = parsed else {
            return Some(Duration::ZERO);
        };
        let date = resp
            .get(DATE)
            .and_then(|d| http_date(d.as_bytes()))
            .unwrap_or_else(SystemTime::now);
        return Some(expires.duration_since(date).unwrap_or(Duration::ZERO));
    }
    // §4.2.2: heuristic freshness only for statuses that allow it (or `public`), and only
    // from Last-Modified.
    let public = cc.is_some_and(|c| c.public());
    if !HEURISTICALLY_CACHEABLE.contains(&status) && !public {
        return None;
    }
    let last_modified = resp
        .get(LAST_MODIFIED)
        .and_then(|v| http_date(v.as_bytes()))?;
    let date = resp
        .get(DATE)
        .and_then(|d| http_date(d.as_bytes()))
        .unwrap_or_else(SystemTime::now);
    let since = date.duration_since(last_modified).unwrap_or(Duration::ZERO);
    Some((since / HEURISTIC_FRACTION).min(HEURISTIC_CAP))
}

/// Corrected initial age (RFC 9111 §4.2.3), with request and response time taken as `now`;
/// `None` when the `Age` field is invalid, and the response's age therefore unknown.
///
/// RFC 9111 §5.1: a list-valued Age uses its first member (`7200, 0` is 7200). For an
/// invalid one (`-3`, `1.5`, `abc`) the RFC lets a cache ignore the field; Meridian treats
/// the response as stale instead (issue 13): an Age it cannot read may hide any age, and
/// revalidating is the reading that can never serve something older than allowed.
fn initial_age(resp: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let apparent = apparent_age(resp, now);
    let Some(first_line) = resp.get(AGE) else {
        return Some(apparent);
    };
    let first = first_line
        .as_bytes()
        .split(|&b| b == b',')
        .next()?
        .trim_ascii();
    if first.is_empty() || !first.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // All digits: only an overflow fails, and that is an age past any lifetime.
    let age_value = std::str::from_utf8(first)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    Some(apparent.max(delta(age_value)))
}

/// Apparent age (RFC 9111 §4.2.3): now minus Date. HTTP dates have one-second resolution, so
/// it is counted in whole seconds: a response dated this second has none.
fn apparent_age(resp: &HeaderMap, now: SystemTime) -> Duration {
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    resp.get(DATE)
        .and_then(|d| http_date(d.as_bytes()))
        .and_then(|date| date.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(Duration::ZERO, |date| {
            Duration::from_secs(now_secs.saturating_sub(date.as_secs()))
        })
}

/// How long a stale response may still be served, and when (RFC 5861, RFC 9111 §4.2.4).
fn stale_windows(cc: Option<&CacheControl>, defaults: FreshnessDefaults) -> (Duration, Duration) {
    let Some(cc) = cc else {
        return (Duration::ZERO, defaults.stale_if_error);
    };
    // must-revalidate, proxy-revalidate and (for shared caches) s-maxage forbid serving stale
    // (§5.2.2.2, §5.2.2.8, §5.2.2.10); so does no-cache, which requires validation on each use.
    if cc.must_revalidate() || cc.proxy_revalidate() || cc.has_key("s-maxage") || cc.no_cache() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let swr = cc
        .stale_while_revalidate()
        .ok()
        .flatten()
        .map_or(Duration::ZERO, |s| delta(u64::from(s)));
    let sie = cc
        .stale_if_error()
        .ok()
        .flatten()
        .map_or(defaults.stale_if_error, |s| delta(u64::from(s)));
    (swr, sie)
}

fn vary_lists_star(resp: &HeaderMap) -> bool {
    resp.get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|n| n.trim() == "*")
}

fn delta(seconds: impl Into<u64>) -> Duration {
    Duration::from_secs(seconds.into().min(DELTA_MAX))
}

fn http_date(v: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(v).ok()?;
    httpdate::parse_http_date(s.trim()).ok()
}

#[cfg(test)]
mod tests;
