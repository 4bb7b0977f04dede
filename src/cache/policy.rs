//! Cache decisions as pure functions: the key, whether a response may be stored, its variant,
//! whether a request accepts a stored response.

use super::freshness::{self, FreshnessDefaults, Storable};
use crate::config::runtime::{CacheKeyRule, QueryRule, Route};
use crate::transform::negotiate::accepted_set;
use crate::vocab::image::IMAGE_VARIANT;
use http::header::{CONNECTION, PRAGMA, VARY};
use http::{HeaderMap, HeaderName, Method};
use pingora_cache::cache_control::CacheControl;
use pingora_cache::key::{hash_key, HashBinary};
use pingora_cache::{CacheKey, CacheMeta, ForcedFreshness, NoCacheReason, RespCacheable};
use pingora_http::{RequestHeader, ResponseHeader};
use std::time::{Duration, SystemTime};

/// Headers that steer this cache and mean nothing to the client: never sent downstream.
const CACHE_ONLY_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("cdn-cache-control"),
    HeaderName::from_static("surrogate-control"),
    HeaderName::from_static("surrogate-key"),
    HeaderName::from_static("cache-tag"),
];

/// Hop-by-hop headers a proxy must not forward or store (RFC 9110 §7.6.1), besides those
/// listed in `Connection`. Transfer-Encoding is framing, which pingora owns.
const HOP_BY_HOP: [HeaderName; 3] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// Why a request was not looked up in the cache at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BypassReason {
    /// The route says `cache = false`.
    Route,
    /// Only GET and HEAD are served from cache.
    Method,
}

/// Whether a request may use the cache on a route that caches.
pub fn request_bypass(route_caches: bool, method: &Method) -> Option<BypassReason> {
    if !route_caches {
        Some(BypassReason::Route)
    } else if method != Method::GET && method != Method::HEAD {
        Some(BypassReason::Method)
    } else {
        None
    }
}

/// The URL part of a cache key: scheme, lower-case host and the request target with the
/// route's query rule applied. Purges and invalidations match on it.
///
/// A host cannot contain '/', and the target starts with '/', so the concatenation is
/// unambiguous without further framing.
pub fn cache_url(scheme: &str, host: &str, target: &str, rule: &CacheKeyRule) -> String {
    let mut url = String::with_capacity(scheme.len() + 3 + host.len() + target.len());
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(host);
    push_target(&mut url, target, rule);
    url
}

/// The scheme a cache key carries: `https` only on routes that key on it (`cache_key.scheme`),
/// `http` for everything else, so http and https share one object by default.
pub fn key_scheme(rule: &CacheKeyRule, https: bool) -> &'static str {
    if rule.scheme && https {
        "https"
    } else {
        "http"
    }
}

/// The cache URL of `target` (a normalised path and query) under the rule of `route`, the
/// route that serves it: the one rule the edge's key, invalidation and purges share.
pub fn route_cache_url(route: Option<&Route>, https: bool, host: &str, target: &str) -> String {
    let rule = route.map_or(&crate::config::runtime::DEFAULT_CACHE_KEY, |r| &r.cache_key);
    cache_url(key_scheme(rule, https), host, target, rule)
}

/// The cache key: [`cache_url`], then the value of each header the route adds, one per line
/// (a target cannot hold a raw newline, so the parts cannot run into each other).
/// HEAD and GET share a key: HEAD is answered from GET.
///
/// The primary hash is computed here once; pingora would otherwise rehash it (blake2) each
/// time the lookup, the lock or the storage asks for it.
pub fn cache_key(
    scheme: &str,
    host: &str,
    target: &str,
    rule: &CacheKeyRule,
    req_headers: &HeaderMap,
) -> CacheKey {
    let mut primary = cache_url(scheme, host, target, rule);
    for name in &rule.headers {
        primary.push('\n');
        primary.push_str(name.as_str());
        primary.push(':');
        for (i, v) in req_headers.get_all(name).iter().enumerate() {
            if i > 0 {
                primary.push_str(", ");
            }
            primary.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
    }
    let hash = hash_key(&primary);
    let mut key = CacheKey::new(primary, "");
    key.set_primary_bin_override(hash);
    key
}

/// Appends `target` with the query rule applied; the plain case copies it unchanged.
fn push_target(out: &mut String, target: &str, rule: &CacheKeyRule) {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let plain = rule.query == QueryRule::Keep && rule.ignore_params.is_empty();
    if plain || query.is_none() {
        out.push_str(target);
        return;
    }
    out.push_str(path);
    if rule.query == QueryRule::Ignore {
        return;
    }
    let mut params: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(n, _)| n);
            !rule.ignore_params.iter().any(|i| i == name)
        })
        .collect();
    if rule.query == QueryRule::Sort {
        params.sort_unstable();
    }
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
}

/// Decides whether `resp` may be stored, and builds its meta (RFC 9111 §3, §4.2).
pub fn response_cacheability(
    req: &RequestHeader,
    resp: &ResponseHeader,
    defaults: FreshnessDefaults,
) -> RespCacheable {
    let now = SystemTime::now();
    let storable = freshness::evaluate(
        &req.headers,
        resp.status.as_u16(),
        &resp.headers,
        now,
        defaults,
    );
    cacheable_meta(storable, resp, now)
}

/// The cache's verdict on `resp` from a decision already taken ([`freshness::evaluate`]):
/// its meta when it may be stored, with `resp` as the stored header.
pub fn cacheable_meta(storable: Storable, resp: &ResponseHeader, now: SystemTime) -> RespCacheable {
    match storable {
        Storable::No(reason) => RespCacheable::Uncacheable(NoCacheReason::Custom(reason)),
        Storable::Yes(f) => {
            let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
            let mut meta = CacheMeta::new(
                f.fresh_until,
                now,
                secs(f.stale_while_revalidate),
                secs(f.stale_if_error),
                resp.clone(),
            );
            // Age on hits must include the age the response already had (RFC 9111 §4.2.3).
            if let Some(epoch) = now.checked_sub(f.initial_age) {
                if epoch != now {
                    meta.set_epoch_override(epoch);
                }
            }
            RespCacheable::Cacheable(meta)
        }
    }
}

/// Whether a request accepts the stored response it hit (RFC 9111 §5.2.1), as pingora's
/// forced-freshness verdict: `None` leaves the stored freshness alone.
pub fn request_freshness(
    req: &RequestHeader,
    meta: &CacheMeta,
    is_fresh: bool,
    now: SystemTime,
) -> Option<ForcedFreshness> {
    let Some(cc) = CacheControl::from_req_headers(req) else {
        // §5.4: Pragma: no-cache counts only when Cache-Control is absent.
        let pragma_no_cache = req.headers.get_all(PRAGMA).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
            })
        });
        return pragma_no_cache.then_some(ForcedFreshness::ForceExpired);
    };
    if cc.no_cache() {
        return Some(ForcedFreshness::ForceExpired);
    }
    let age = meta.age();
    if let Ok(Some(max_age)) = cc.max_age() {
        if age > Duration::from_secs(u64::from(max_age)) {
            return Some(ForcedFreshness::ForceExpired);
        }
    }
    let left = meta
        .fresh_until()
        .duration_since(now)
        .unwrap_or(Duration::ZERO);
    if let Ok(Some(min_fresh)) = directive_seconds(&cc, "min-fresh") {
        if left < Duration::from_secs(min_fresh) {
            return Some(ForcedFreshness::ForceExpired);
        }
    }
    if !is_fresh && cc.has_key("max-stale") && !forbids_stale(meta.headers()) {
        let stale_for = now
            .duration_since(meta.fresh_until())
            .unwrap_or(Duration::ZERO);
        // max-stale without a value accepts any staleness (§5.2.1.2).
        let accepted = match directive_seconds(&cc, "max-stale") {
            Ok(Some(limit)) => stale_for <= Duration::from_secs(limit),
            Ok(None) => true,
            Err(()) => false,
        };
        if accepted {
            return Some(ForcedFreshness::ForceFresh);
        }
    }
    None
}

/// Whether a successful request with this method invalidates stored responses (RFC 9111 §4.4):
/// every method not known to be safe (RFC 9110 §9.2.1), extension methods (`M-SEARCH`,
/// `PURGE`, `FOO`) included.
pub fn invalidates(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// A URI a response names for invalidation: its scheme (`None` when relative) and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameHostTarget {
    /// `Some(true)` for https, `Some(false)` for http, `None` for a relative reference.
    pub https: Option<bool>,
    pub target: String,
}

/// The target of a `Location` or `Content-Location` value when it names `host` over http or
/// https (or is relative): only same-host URIs may be invalidated (RFC 9111 §4.4).
pub fn same_host_target(value: &[u8], host: &str) -> Option<SameHostTarget> {
    let value = std::str::from_utf8(value).ok()?.trim();
    if value.starts_with('/') && !value.starts_with("//") {
        return Some(SameHostTarget {
            https: None,
            target: value.to_owned(),
        });
    }
    let uri: http::Uri = value.parse().ok()?;
    let authority_host = uri.authority()?.host();
    let https = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        _ => return None,
    };
    if !authority_host.eq_ignore_ascii_case(host) {
        return None;
    }
    Some(SameHostTarget {
        https: Some(https),
        target: uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned(),
    })
}

/// Whether the request says to answer only from cache (`only-if-cached`, §5.2.1.7).
pub fn only_if_cached(req: &RequestHeader) -> bool {
    CacheControl::from_req_headers(req).is_some_and(|cc| cc.only_if_cached())
}

/// Whether the stored response forbids serving it stale (must-revalidate, proxy-revalidate,
/// s-maxage), in whichever cache-control header governs this cache.
fn forbids_stale(headers: &HeaderMap) -> bool {
    freshness::governing_directives(headers)
        .is_some_and(|cc| cc.must_revalidate() || cc.proxy_revalidate() || cc.has_key("s-maxage"))
}

/// The delta-seconds value of a request directive: `Ok(None)` when it has no value.
fn directive_seconds(cc: &CacheControl, name: &str) -> Result<Option<u64>, ()> {
    match cc
        .directives
        .get(&pingora_cache::cache_control::DirectiveKey::from_lowercase(
            name,
        )) {
        None | Some(None) => Ok(None),
        Some(Some(v)) => v
            .parse_as_delta_seconds()
            .map(|s| Some(u64::from(s)))
            .map_err(|_| ()),
    }
}

/// Updates a stored response's header fields from a 304 (RFC 9111 §3.2, §4.3.4): every field
/// the 304 carries replaces the stored one, except hop-by-hop fields and those describing the
/// stored body (Content-Length, Content-Encoding, Content-Type, Content-Range).
pub fn update_stored_headers(stored: &mut ResponseHeader, not_modified: &HeaderMap) {
    const KEEP_STORED: [HeaderName; 5] = [
        http::header::CONTENT_LENGTH,
        http::header::CONTENT_ENCODING,
        http::header::CONTENT_TYPE,
        http::header::CONTENT_RANGE,
        http::header::TRANSFER_ENCODING,
    ];
    for name in not_modified.keys() {
        if KEEP_STORED.contains(name) || HOP_BY_HOP.contains(name) {
            continue;
        }
        stored.remove_header(name);
        for value in not_modified.get_all(name) {
            // Values come from a parsed response: always valid to re-add.
            let _ = stored.append_header(name.clone(), value.clone());
        }
    }
}

/// Drops hop-by-hop headers and those `Connection` names from an origin response, before it
/// is stored or forwarded (RFC 9110 §7.6.1).
pub fn strip_hop_by_hop(resp: &mut ResponseHeader) {
    let listed: Vec<HeaderName> = resp
        .headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        if resp.headers.contains_key(name) {
            resp.remove_header(name);
        }
    }
}

/// Drops the headers meant only for this cache from a response going to the client.
pub fn strip_cache_only_headers(resp: &mut ResponseHeader) {
    for name in &CACHE_ONLY_HEADERS {
        if resp.headers.contains_key(name) {
            resp.remove_header(name);
        }
    }
}

/// The variant of `meta` this request selects (RFC 9111 §4.1), or `None` without `Vary`.
///
/// Values are normalised before they are compared (RFC 9111 §4.1 allows it): field lines are
/// joined and list members trimmed; the `Accept*` headers, whose values are case-insensitive,
/// are lower-cased; `Accept-Encoding` becomes the set of known codings the client accepts
/// ([`accepted_set`]), so no choice of weights or unknown codings makes a new variant. On
/// routes where Meridian compresses, `negotiated` is the one coding the client gets, and
/// that is the variant: every client that gets br shares one stored object. Headers with
/// open-ended values (`User-Agent`) are bounded by the storage's `max_variants`. An image
/// variant Meridian made (marked [`IMAGE_VARIANT`]) keys `Accept` on the negotiated `image`
/// target, so every client that gets WebP shares one stored object.
pub fn variance(
    meta: &CacheMeta,
    req: &RequestHeader,
    negotiated: Option<crate::vocab::Coding>,
    image: Option<crate::vocab::image::ImageTarget>,
) -> Option<HashBinary> {
    let mut names: Vec<String> = meta
        .headers()
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    names.dedup();
    let mut builder = pingora_cache::VarianceBuilder::new();
    let image = image.filter(|_| meta.headers().contains_key(IMAGE_VARIANT));
    for name in &names {
        if let Some(target) = image.filter(|_| name == "accept") {
            builder.add_value(name.as_str(), target.token());
            continue;
        }
        match negotiated {
            Some(coding) if name == "accept-encoding" => {
                builder.add_value(name.as_str(), coding.token());
            }
            None if name == "accept-encoding" => {
                let field = joined_field(&req.headers, http::header::ACCEPT_ENCODING);
                builder.add_value(name.as_str(), accepted_set(field.as_deref()));
            }
            _ => builder.add_owned_value(name.as_str(), normalized_vary_value(name, &req.headers)),
        }
    }
    builder.finalize()
}

/// The field lines of `name` as one list value (RFC 9110 §5.3): borrowed when there is one
/// line, joined with ", " when there are several.
fn joined_field(headers: &HeaderMap, name: HeaderName) -> Option<std::borrow::Cow<'_, [u8]>> {
    let mut lines = headers.get_all(name).into_iter();
    let first = lines.next()?;
    let mut rest = lines.peekable();
    if rest.peek().is_none() {
        return Some(std::borrow::Cow::Borrowed(first.as_bytes()));
    }
    let mut out = first.as_bytes().to_vec();
    for line in rest {
        out.extend_from_slice(b", ");
        out.extend_from_slice(line.as_bytes());
    }
    Some(std::borrow::Cow::Owned(out))
}

/// The normalised value of request header `name` for variant selection.
fn normalized_vary_value(name: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut members: Vec<String> = headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|m| String::from_utf8_lossy(m.trim_ascii()).into_owned())
        .filter(|m| !m.is_empty())
        .collect();
    let case_insensitive = matches!(
        name,
        "accept" | "accept-encoding" | "accept-language" | "accept-charset"
    );
    if case_insensitive {
        for m in &mut members {
            m.make_ascii_lowercase();
        }
    }
    members.join(", ").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_cache::key::CacheHashKey;
    use proptest::prelude::*;

    fn resp(headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn stored(r: &ResponseHeader) -> bool {
        response_cacheability(&req(&[]), r, FreshnessDefaults::default()).is_cacheable()
    }

    #[test]
    fn explicit_freshness_is_stored_and_its_absence_is_not() {
        assert!(stored(&resp(&[("cache-control", "max-age=60")])));
        assert!(stored(&resp(&[("cache-control", "s-maxage=60")])));
        assert!(stored(&resp(&[(
            "expires",
            "Thu, 01 Jan 2099 00:00:00 GMT"
        )])));
        assert!(!stored(&resp(&[])));
    }

    #[test]
    fn no_store_private_set_cookie_and_vary_star_are_never_stored() {
        assert!(!stored(&resp(&[("cache-control", "max-age=60, no-store")])));
        assert!(!stored(&resp(&[("cache-control", "private, max-age=60")])));
        assert!(!stored(&resp(&[
            ("cache-control", "max-age=60"),
            ("set-cookie", "s=1")
        ])));
        assert!(!stored(&resp(&[
            ("cache-control", "max-age=60"),
            ("vary", "Accept, *")
        ])));
    }

    #[test]
    fn no_cache_is_stored_but_always_stale() {
        match response_cacheability(
            &req(&[]),
            &resp(&[("cache-control", "no-cache")]),
            FreshnessDefaults::default(),
        ) {
            RespCacheable::Cacheable(m) => assert!(!m.is_fresh(std::time::SystemTime::now())),
            RespCacheable::Uncacheable(r) => panic!("not stored: {r:?}"),
        }
    }

    #[test]
    fn authorized_requests_are_stored_only_when_the_response_allows_it() {
        let auth = req(&[("authorization", "Bearer x")]);
        let plain = resp(&[("cache-control", "max-age=60")]);
        assert!(!response_cacheability(&auth, &plain, FreshnessDefaults::default()).is_cacheable());
        let public = resp(&[("cache-control", "public, max-age=60")]);
        assert!(response_cacheability(&auth, &public, FreshnessDefaults::default()).is_cacheable());
    }

    #[test]
    fn only_get_and_head_use_the_cache_on_caching_routes() {
        assert_eq!(request_bypass(true, &Method::GET), None);
        assert_eq!(request_bypass(true, &Method::HEAD), None);
        assert_eq!(
            request_bypass(true, &Method::POST),
            Some(BypassReason::Method)
        );
        assert_eq!(
            request_bypass(false, &Method::GET),
            Some(BypassReason::Route)
        );
    }

    fn key(host: &str, target: &str) -> CacheKey {
        cache_key(
            "http",
            host,
            target,
            &CacheKeyRule::DEFAULT,
            &HeaderMap::new(),
        )
    }

    #[test]
    fn only_same_host_locations_are_invalidated() {
        let t = |v: &[u8]| same_host_target(v, "h.test").map(|t| (t.https, t.target));
        assert_eq!(t(b"/a?b"), Some((None, "/a?b".to_owned())));
        assert_eq!(t(b"http://H.test/x"), Some((Some(false), "/x".to_owned())));
        assert_eq!(t(b"https://h.test/y"), Some((Some(true), "/y".to_owned())));
        assert_eq!(t(b"ftp://h.test/y"), None);
        assert_eq!(same_host_target(b"http://other.test/x", "h.test"), None);
        assert_eq!(same_host_target(b"//other.test/x", "h.test"), None);
        assert_eq!(same_host_target(b"relative", "h.test"), None);
        assert!(invalidates(&Method::POST) && invalidates(&Method::DELETE));
        assert!(!invalidates(&Method::GET) && !invalidates(&Method::OPTIONS));
        // RFC 9111 §4.4: methods not known to be safe, extension methods included.
        for m in ["M-SEARCH", "FOO", "PROPPATCH"] {
            assert!(
                invalidates(&Method::from_bytes(m.as_bytes()).unwrap()),
                "{m}"
            );
        }
    }

    #[test]
    fn request_directives_decide_whether_a_stored_response_is_acceptable() {
        let fresh = response_cacheability(
            &req(&[]),
            &resp(&[("cache-control", "max-age=100")]),
            FreshnessDefaults::default(),
        )
        .unwrap_meta();
        let now = SystemTime::now();
        let ask = |h: &[(&str, &str)]| request_freshness(&req(h), &fresh, true, now);
        assert_eq!(ask(&[]), None);
        assert_eq!(
            ask(&[("cache-control", "no-cache")]),
            Some(ForcedFreshness::ForceExpired)
        );
        assert_eq!(
            ask(&[("pragma", "no-cache")]),
            Some(ForcedFreshness::ForceExpired)
        );
        // Pragma is ignored when Cache-Control is present (RFC 9111 §5.4).
        assert_eq!(
            ask(&[("pragma", "no-cache"), ("cache-control", "max-age=1000")]),
            None
        );
        assert_eq!(
            ask(&[("cache-control", "min-fresh=500")]),
            Some(ForcedFreshness::ForceExpired)
        );
        assert_eq!(ask(&[("cache-control", "min-fresh=10")]), None);

        let mut old = response_cacheability(
            &req(&[]),
            &resp(&[("cache-control", "max-age=10")]),
            FreshnessDefaults::default(),
        )
        .unwrap_meta();
        old.set_epoch_override(now - Duration::from_secs(50));
        old.expire_at(now - Duration::from_secs(40));
        let ask_old = |h: &[(&str, &str)]| request_freshness(&req(h), &old, false, now);
        assert_eq!(
            ask_old(&[("cache-control", "max-age=30")]),
            Some(ForcedFreshness::ForceExpired)
        );
        assert_eq!(
            ask_old(&[("cache-control", "max-stale=60")]),
            Some(ForcedFreshness::ForceFresh)
        );
        assert_eq!(
            ask_old(&[("cache-control", "max-stale")]),
            Some(ForcedFreshness::ForceFresh)
        );
        assert_eq!(ask_old(&[("cache-control", "max-stale=5")]), None);

        let must = response_cacheability(
            &req(&[]),
            &resp(&[("cache-control", "max-age=0, must-revalidate")]),
            FreshnessDefaults::default(),
        )
        .unwrap_meta();
        let r = request_freshness(&req(&[("cache-control", "max-stale")]), &must, false, now);
        assert_eq!(r, None, "must-revalidate forbids max-stale");
    }

    #[test]
    fn rfc9111_3_2_a_304_updates_stored_fields_but_not_the_body_description() {
        let mut stored = resp(&[
            ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("content-length", "10"),
            ("content-type", "text/plain"),
            ("x-version", "1"),
            ("etag", "\"a\""),
        ]);
        let mut fresh = HeaderMap::new();
        fresh.insert("date", "Tue, 02 Jan 2024 00:00:00 GMT".parse().unwrap());
        fresh.insert("x-version", "2".parse().unwrap());
        fresh.insert("content-length", "0".parse().unwrap());
        fresh.insert("content-type", "text/html".parse().unwrap());
        fresh.insert("keep-alive", "timeout=5".parse().unwrap());
        update_stored_headers(&mut stored, &fresh);
        assert_eq!(stored.headers["date"], "Tue, 02 Jan 2024 00:00:00 GMT");
        assert_eq!(stored.headers["x-version"], "2");
        assert_eq!(stored.headers["content-length"], "10");
        assert_eq!(stored.headers["content-type"], "text/plain");
        assert_eq!(stored.headers["etag"], "\"a\"");
        assert!(!stored.headers.contains_key("keep-alive"));
    }

    #[test]
    fn hop_by_hop_and_cache_only_headers_are_removed() {
        let mut r = resp(&[
            ("connection", "x-private, close"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("cdn-cache-control", "max-age=60"),
            ("surrogate-key", "a b"),
            ("etag", "\"e\""),
        ]);
        strip_hop_by_hop(&mut r);
        assert!(!r.headers.contains_key("x-private") && !r.headers.contains_key("keep-alive"));
        assert!(!r.headers.contains_key("connection"));
        assert!(
            r.headers.contains_key("cdn-cache-control"),
            "kept in the stored copy"
        );
        strip_cache_only_headers(&mut r);
        assert!(!r.headers.contains_key("cdn-cache-control"));
        assert!(!r.headers.contains_key("surrogate-key"));
        assert!(r.headers.contains_key("etag"));
    }

    #[test]
    fn query_rules_sort_drop_or_ignore_parameters() {
        let rule = |query, ignore: &[&str]| CacheKeyRule {
            query,
            ignore_params: ignore.iter().map(|s| s.to_string()).collect(),
            headers: Vec::new(),
            scheme: false,
        };
        let url = |target, r: &CacheKeyRule| cache_url("http", "h", target, r);
        assert_eq!(
            url("/p?b=1&a=2", &rule(QueryRule::Keep, &[])),
            "http://h/p?b=1&a=2"
        );
        assert_eq!(
            url("/p?b=1&a=2", &rule(QueryRule::Sort, &[])),
            "http://h/p?a=2&b=1"
        );
        assert_eq!(
            url("/p?b=1&a=2", &rule(QueryRule::Ignore, &[])),
            "http://h/p"
        );
        let utm = rule(QueryRule::Keep, &["utm_source", "fbclid"]);
        assert_eq!(url("/p?utm_source=x&id=7&fbclid", &utm), "http://h/p?id=7");
        assert_eq!(url("/p?utm_source=x", &utm), "http://h/p");
        assert_eq!(url("/p", &rule(QueryRule::Sort, &[])), "http://h/p");
        // Normalising twice changes nothing.
        let sorted = url("/p?b=1&a=2", &rule(QueryRule::Sort, &["x"]));
        let target = sorted.strip_prefix("http://h").unwrap();
        assert_eq!(url(target, &rule(QueryRule::Sort, &["x"])), sorted);
    }

    #[test]
    fn configured_request_headers_join_the_key() {
        let rule = CacheKeyRule {
            headers: vec![HeaderName::from_static("x-device")],
            ..CacheKeyRule::DEFAULT
        };
        let mut mobile = HeaderMap::new();
        mobile.insert("x-device", "mobile".parse().unwrap());
        let a = cache_key("http", "h", "/p", &rule, &mobile);
        let b = cache_key("http", "h", "/p", &rule, &HeaderMap::new());
        assert_eq!(a.primary_key(), b"http://h/p\nx-device:mobile");
        assert_ne!(a.primary_bin(), b.primary_bin());
    }

    #[test]
    fn key_distinguishes_host_path_and_query_but_not_method() {
        let a = key("a.test", "/x?q=1");
        let b = key("a.test", "/x?q=2");
        let c = key("b.test", "/x?q=1");
        assert_eq!(a.primary_key(), b"http://a.test/x?q=1");
        // The precomputed hash is the one pingora would compute itself.
        let plain = CacheKey::new(b"http://a.test/x?q=1".to_vec(), "");
        assert_eq!(a.primary_bin(), plain.primary_bin());
        assert_ne!(a.primary_key(), b.primary_key());
        assert_ne!(a.primary_key(), c.primary_key());
    }

    #[test]
    fn on_compressing_routes_the_negotiated_coding_is_the_variant() {
        use crate::transform::negotiate::negotiate;
        use crate::vocab::Coding;
        let r = resp(&[("cache-control", "max-age=60"), ("vary", "accept-encoding")]);
        let meta = response_cacheability(&req(&[]), &r, FreshnessDefaults::default()).unwrap_meta();
        let pref = [Coding::Br, Coding::Zstd, Coding::Gzip];
        let v = |ae: &str| {
            let coding = negotiate(Some(ae.as_bytes()), &pref);
            variance(&meta, &req(&[("accept-encoding", ae)]), Some(coding), None)
        };
        assert_eq!(v("gzip, br"), v("br;q=1, gzip;q=0.5"));
        assert_eq!(v("br"), v("*"));
        assert_ne!(v("gzip"), v("br"));
        assert_eq!(v("identity"), v("deflate"));
        assert_ne!(v("identity"), v("gzip"));
    }

    #[test]
    fn image_variants_key_accept_on_the_negotiated_target_only_when_meridian_made_them() {
        use crate::vocab::image::{ImageFormat, ImageTarget};
        let webp = Some(ImageTarget::Modern(ImageFormat::Webp));
        let source = Some(ImageTarget::Source);
        let ours = resp(&[
            ("cache-control", "max-age=60"),
            ("vary", "Accept"),
            (IMAGE_VARIANT, "original"),
        ]);
        let meta =
            response_cacheability(&req(&[]), &ours, FreshnessDefaults::default()).unwrap_meta();
        let v = |accept: &str, image| variance(&meta, &req(&[("accept", accept)]), None, image);
        assert_eq!(
            v("image/webp,*/*", webp),
            v("image/webp;q=0.9, text/x-anything", webp)
        );
        assert_ne!(v("image/webp", webp), v("image/webp", source));
        // An origin's own `Vary: Accept` keeps the client's value (bounded by max_variants).
        let origins = resp(&[("cache-control", "max-age=60"), ("vary", "Accept")]);
        let meta =
            response_cacheability(&req(&[]), &origins, FreshnessDefaults::default()).unwrap_meta();
        let v = |accept: &str| variance(&meta, &req(&[("accept", accept)]), None, webp);
        assert_ne!(v("image/webp,*/*"), v("image/webp"));
    }

    #[test]
    fn accept_encoding_variants_are_sets_of_known_codings() {
        let r = resp(&[("cache-control", "max-age=60"), ("vary", "accept-encoding")]);
        let meta = response_cacheability(&req(&[]), &r, FreshnessDefaults::default()).unwrap_meta();
        let v = |ae: &str| variance(&meta, &req(&[("accept-encoding", ae)]), None, None);
        assert_eq!(v("gzip, br"), v("br,GZIP"));
        assert_eq!(v("gzip;q=1.0, br"), v("br, gzip"));
        assert_eq!(
            v("gzip, br;q=0.5"),
            v("gzip, br"),
            "weights do not make variants"
        );
        assert_eq!(v("gzip;q=0.1"), v("gzip;q=0.11, x-made-up"));
        assert_ne!(v("gzip"), v("br"));
        assert_ne!(v("gzip, deflate"), v("gzip"));
        let two_lines = req(&[("accept-encoding", "gzip"), ("accept-encoding", "br")]);
        assert_eq!(variance(&meta, &two_lines, None, None), v("br, gzip"));
        let lang = response_cacheability(
            &req(&[]),
            &resp(&[("cache-control", "max-age=60"), ("vary", "accept-language")]),
            FreshnessDefaults::default(),
        )
        .unwrap_meta();
        let l = |al: &str| variance(&lang, &req(&[("accept-language", al)]), None, None);
        assert_eq!(l("EN-us"), l("en-US"));
    }

    #[test]
    fn variance_follows_listed_headers_and_ignores_whitespace() {
        let r = resp(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]);
        let meta = response_cacheability(&req(&[]), &r, FreshnessDefaults::default()).unwrap_meta();
        let en = variance(&meta, &req(&[("accept-language", "en")]), None, None);
        let en_spaced = variance(&meta, &req(&[("accept-language", "  en ")]), None, None);
        let fr = variance(&meta, &req(&[("accept-language", "fr")]), None, None);
        let other_header = variance(
            &meta,
            &req(&[("accept-language", "en"), ("x-other", "1")]),
            None,
            None,
        );
        assert!(en.is_some());
        assert_eq!(en, en_spaced);
        assert_eq!(en, other_header);
        assert_ne!(en, fr);
        let no_vary = response_cacheability(
            &req(&[]),
            &resp(&[("cache-control", "max-age=1")]),
            FreshnessDefaults::default(),
        );
        assert_eq!(
            variance(&no_vary.unwrap_meta(), &req(&[]), None, None),
            None
        );
    }

    fn query_rule() -> impl Strategy<Value = CacheKeyRule> {
        (
            prop_oneof![
                Just(QueryRule::Keep),
                Just(QueryRule::Sort),
                Just(QueryRule::Ignore)
            ],
            proptest::collection::vec("[a-c]{1,2}", 0..3),
        )
            .prop_map(|(query, ignore_params)| CacheKeyRule {
                query,
                ignore_params,
                headers: Vec::new(),
                scheme: false,
            })
    }

    proptest! {
        #[test]
        fn query_normalisation_is_idempotent(
            path in "/[a-z]{0,4}",
            query in "([a-c]{1,2}(=[0-9]{0,2})?&?){0,5}",
            rule in query_rule(),
        ) {
            let target = format!("{path}?{query}");
            let once = cache_url("http", "h", &target, &rule);
            let again = cache_url("http", "h", once.strip_prefix("http://h").unwrap_or("/"), &rule);
            prop_assert_eq!(once, again);
        }
    }
}
