//! Cache decisions as pure functions: the key, whether a response may be stored, its variant.

use http::header::{AUTHORIZATION, SET_COOKIE, VARY};
use http::Method;
use pingora_cache::cache_control::CacheControl;
use pingora_cache::filters::resp_cacheable;
use pingora_cache::key::{hash_key, HashBinary};
use pingora_cache::{CacheKey, CacheMeta, CacheMetaDefaults, NoCacheReason, RespCacheable};
use pingora_http::{RequestHeader, ResponseHeader};

/// No heuristic freshness yet: only responses with explicit freshness (Cache-Control max-age
/// or s-maxage, or Expires) are stored. No stale windows unless the origin grants them.
const DEFAULTS: CacheMetaDefaults = CacheMetaDefaults::new(|_| None, 0, 0);

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

/// The cache key: scheme, lower-case host and the request target (path and query).
///
/// A host cannot contain '/', and the target starts with '/', so the concatenation is
/// unambiguous without further framing. HEAD and GET share a key: HEAD is answered from GET.
/// The primary hash is computed here once; pingora would otherwise rehash it (blake2) each
/// time the lookup, the lock or the storage asks for it.
pub fn cache_key(scheme: &str, host: &str, target: &[u8]) -> CacheKey {
    let mut primary = Vec::with_capacity(scheme.len() + 3 + host.len() + target.len());
    primary.extend_from_slice(scheme.as_bytes());
    primary.extend_from_slice(b"://");
    primary.extend_from_slice(host.as_bytes());
    primary.extend_from_slice(target);
    let hash = hash_key(&primary);
    let mut key = CacheKey::new(primary, "");
    key.set_primary_bin_override(hash);
    key
}

/// Decides whether `resp` may be stored, and for how long (RFC 9111 §3, §4.2.1).
pub fn response_cacheability(req: &RequestHeader, resp: &ResponseHeader) -> RespCacheable {
    let cc = CacheControl::from_resp_headers(resp);
    // Varnish and nginx do not store responses that set cookies unless told to: one user's
    // session cookie must never be replayed to another.
    if resp.headers.contains_key(SET_COOKIE) {
        return RespCacheable::Uncacheable(NoCacheReason::Custom("set-cookie"));
    }
    // RFC 9111 §4.1: "Vary: *" always fails to match, so storing it is pointless.
    if vary_names(resp).any(|n| n == "*") {
        return RespCacheable::Uncacheable(NoCacheReason::Custom("vary-star"));
    }
    let authorized = req.headers.contains_key(AUTHORIZATION);
    resp_cacheable(cc.as_ref(), resp.clone(), authorized, &DEFAULTS)
}

/// The header names listed in the response's `Vary`, lower-case, in order.
fn vary_names(resp: &ResponseHeader) -> impl Iterator<Item = String> + '_ {
    resp.headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
}

/// The variant of `meta` this request selects (RFC 9111 §4.1), or `None` without `Vary`.
///
/// Several field lines of one header are joined with ", " and each value is trimmed, so
/// requests that differ only in whitespace share a variant.
pub fn variance(meta: &CacheMeta, req: &RequestHeader) -> Option<HashBinary> {
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
    for name in &names {
        let mut value = Vec::new();
        for (i, v) in req.headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(trim_ascii(v.as_bytes()));
        }
        builder.add_owned_value(name.as_str(), value);
    }
    builder.finalize()
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_cache::key::CacheHashKey;

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
        response_cacheability(&req(&[]), r).is_cacheable()
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
        match response_cacheability(&req(&[]), &resp(&[("cache-control", "no-cache")])) {
            RespCacheable::Cacheable(m) => assert!(!m.is_fresh(std::time::SystemTime::now())),
            RespCacheable::Uncacheable(r) => panic!("not stored: {r:?}"),
        }
    }

    #[test]
    fn authorized_requests_are_stored_only_when_the_response_allows_it() {
        let auth = req(&[("authorization", "Bearer x")]);
        let plain = resp(&[("cache-control", "max-age=60")]);
        assert!(!response_cacheability(&auth, &plain).is_cacheable());
        let public = resp(&[("cache-control", "public, max-age=60")]);
        assert!(response_cacheability(&auth, &public).is_cacheable());
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

    #[test]
    fn key_distinguishes_host_path_and_query_but_not_method() {
        let a = cache_key("http", "a.test", b"/x?q=1");
        let b = cache_key("http", "a.test", b"/x?q=2");
        let c = cache_key("http", "b.test", b"/x?q=1");
        assert_eq!(a.primary_key(), b"http://a.test/x?q=1");
        // The precomputed hash is the one pingora would compute itself.
        let plain = CacheKey::new(b"http://a.test/x?q=1".to_vec(), "");
        assert_eq!(a.primary_bin(), plain.primary_bin());
        assert_ne!(a.primary_key(), b.primary_key());
        assert_ne!(a.primary_key(), c.primary_key());
    }

    #[test]
    fn variance_follows_listed_headers_and_ignores_whitespace() {
        let r = resp(&[("cache-control", "max-age=60"), ("vary", "Accept-Language")]);
        let meta = response_cacheability(&req(&[]), &r).unwrap_meta();
        let en = variance(&meta, &req(&[("accept-language", "en")]));
        let en_spaced = variance(&meta, &req(&[("accept-language", "  en ")]));
        let fr = variance(&meta, &req(&[("accept-language", "fr")]));
        let other_header = variance(&meta, &req(&[("accept-language", "en"), ("x-other", "1")]));
        assert!(en.is_some());
        assert_eq!(en, en_spaced);
        assert_eq!(en, other_header);
        assert_ne!(en, fr);
        let no_vary = response_cacheability(&req(&[]), &resp(&[("cache-control", "max-age=1")]));
        assert_eq!(variance(&no_vary.unwrap_meta(), &req(&[])), None);
    }
}
