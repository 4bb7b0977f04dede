//! Host and path to route: which site a request is for and which of its routes serves it.

use crate::config::runtime::{Route, Runtime, SiteId};
use crate::vocab::host::{normalize_host, MAX_HOST};
use crate::vocab::url_path::{self, PathError};
use pingora_http::authority::raw_target_authority;
use pingora_http::RequestHeader;

/// Why a request gets no route; each maps to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// No Host header and no absolute-form target (RFC 9112 §3.2: 400).
    MissingHost,
    /// A Host no site serves: 421 Misdirected Request (RFC 9110 §15.5.20), never an open proxy.
    UnknownHost,
    /// The site has no route for the path: 404.
    NoRoute,
    /// Both Content-Length and Transfer-Encoding: peers could frame the body differently
    /// (request smuggling), so it is refused rather than repaired (RFC 9112 §6.3); also
    /// `chunked` applied twice (§6.1): 400.
    AmbiguousFraming,
    /// A request target in no form RFC 9112 §3.2 allows (`GET api/x`, `*` without OPTIONS): 400.
    BadTarget,
    /// A path that cannot be normalised, or whose escaped `/` would change its route: 400.
    BadPath(PathError),
    /// A method longer than any real one: 501 (RFC 9110 §9.1).
    MethodTooLong,
    /// TRACE on a route that does not allow it: 405.
    TraceNotAllowed,
}

impl Reject {
    pub fn status(self) -> u16 {
        match self {
            Reject::MissingHost => 400,
            Reject::UnknownHost => 421,
            Reject::NoRoute => 404,
            Reject::AmbiguousFraming | Reject::BadTarget | Reject::BadPath(_) => 400,
            Reject::MethodTooLong => 501,
            Reject::TraceNotAllowed => 405,
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub site: SiteId,
    /// Index of the matched host in the site's `hosts` (the canonical, lower-case name).
    pub host: usize,
    /// Index of the route in the site's `routes`.
    pub route: usize,
}

impl Resolved {
    pub fn route<'a>(&self, rt: &'a Runtime) -> Option<&'a Route> {
        rt.sites.get(self.site)?.routes.get(self.route)
    }

    pub fn host<'a>(&self, rt: &'a Runtime) -> &'a str {
        rt.sites
            .get(self.site)
            .and_then(|s| s.hosts.get(self.host))
            .map_or("", String::as_str)
    }
}

/// Whether a request's transfer codings end with `chunked`: otherwise its body has no
/// length a peer could agree on, and it is refused (RFC 9112 §6.3).
pub fn chunked_last(req: &RequestHeader) -> bool {
    req.headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|c| !c.is_empty())
        .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
}

/// Whether raw HTTP/1 header bytes carry a Content-Length field. pingora drops
/// Content-Length when Transfer-Encoding is also present (RFC 9112 §6.3 lets an intermediary
/// repair it so); Meridian refuses such a request instead, so it looks at what was sent.
pub fn raw_has_content_length(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
}

/// The raw host a request names. pingora rejects an absolute-form target whose authority
/// differs from Host (RFC 9112 §3.2.2), so Host is authoritative when present; without it,
/// the authority of an absolute-form target is used.
pub fn raw_host(req: &RequestHeader) -> Option<&[u8]> {
    if let Some(host) = req.headers.get(http::header::HOST) {
        return Some(host.as_bytes());
    }
    // HTTP/2 carries the host in :authority, which pingora keeps in the URI.
    if let Some(authority) = req.uri.authority() {
        return Some(authority.as_str().as_bytes());
    }
    raw_target_authority(req.raw_path()).authority()
}

/// Checks the request line, normalises the path (rewriting the target when it changes, so
/// routing, the cache key, purges and the origin all see one spelling) and routes it.
pub fn route_request(
    rt: &crate::config::Runtime,
    req: &mut RequestHeader,
) -> std::result::Result<Resolved, Reject> {
    super::request_line::check(req)?;
    if req.uri.path() == "*" {
        // `OPTIONS *` (the only method the check lets through with it) asks about the server
        // as a whole: the site's root route answers it, and the origin gets it as sent.
        return resolve(rt, req, "/");
    }
    let normalized = match url_path::normalize(req.uri.path()).map_err(Reject::BadPath)? {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(path) => Some(path),
    };
    let path = normalized.as_deref().unwrap_or(req.uri.path());
    let resolved = resolve(rt, req, path)?;
    if let Some(mut target) = normalized {
        if let Some(query) = req.uri.query() {
            target.push('?');
            target.push_str(query);
        }
        // The target was parsed from the request, and normalising only removes or decodes
        // characters that are valid in a URI path.
        let uri = http::Uri::try_from(target).map_err(|_| Reject::BadTarget)?;
        req.set_uri(uri);
    }
    Ok(resolved)
}

/// Finds the site and route for a request whose path, normalised, is `path`
/// ([`url_path::normalize`]).
pub fn resolve(rt: &Runtime, req: &RequestHeader, path: &str) -> Result<Resolved, Reject> {
    let raw = raw_host(req).ok_or(Reject::MissingHost)?;
    let mut buf = [0u8; MAX_HOST];
    let host = normalize_host(raw, &mut buf).ok_or(Reject::MissingHost)?;
    let (site, host) = rt.host_entry(host).ok_or(Reject::UnknownHost)?;
    let routes = &rt.sites.get(site).ok_or(Reject::UnknownHost)?.routes;
    let route = route_index(routes, path).ok_or(Reject::NoRoute)?;
    // An escaped '/' is kept, but a back end that decodes it must not land on another
    // route's settings (`/static%2F..%2Fapi/x`).
    if let Some(decoded) = url_path::decoded_slashes(path) {
        match decoded {
            Ok(d) if route_index(routes, &d) == Some(route) => {}
            Ok(_) => return Err(Reject::BadPath(PathError::EncodedSlash)),
            Err(e) => return Err(Reject::BadPath(e)),
        }
    }
    Ok(Resolved { site, host, route })
}

/// The route for `path`: routes are sorted longest first, so the first match is the
/// longest prefix.
fn route_index(routes: &[Route], path: &str) -> Option<usize> {
    routes
        .iter()
        .position(|r| path.starts_with(r.path.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> Runtime {
        crate::config::runtime_for_tests(
            r#"
[[sites]]
name = "a"
hosts = ["a.test", "www.a.test"]
[[sites.routes]]
path = "/static/"
[[sites.routes]]
path = "/"
[[sites]]
name = "b"
hosts = ["b.test"]
[[sites.routes]]
path = "/only/"
"#,
        )
    }

    fn req(target: &str, host: Option<&str>) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        if let Some(h) = host {
            r.insert_header("host", h).unwrap();
        }
        r
    }

    fn resolve(rt: &Runtime, req: &RequestHeader) -> Result<Resolved, Reject> {
        super::resolve(rt, req, req.uri.path())
    }

    fn route_path(rt: &Runtime, r: Resolved) -> &str {
        &r.route(rt).unwrap().path
    }

    #[test]
    fn host_is_case_folded_and_its_port_ignored() {
        let rt = runtime();
        let r = resolve(&rt, &req("/x", Some("WWW.A.Test:8080"))).unwrap();
        assert_eq!(rt.sites[r.site].name, "a");
        assert_eq!(r.host(&rt), "www.a.test");
        let dotted = resolve(&rt, &req("/x", Some("a.test."))).unwrap();
        assert_eq!(dotted.host(&rt), "a.test");
    }

    #[test]
    fn the_longest_prefix_wins() {
        let rt = runtime();
        let r = resolve(&rt, &req("/static/app.js", Some("a.test"))).unwrap();
        assert_eq!(route_path(&rt, r), "/static/");
        let r = resolve(&rt, &req("/index.html", Some("a.test"))).unwrap();
        assert_eq!(route_path(&rt, r), "/");
    }

    #[test]
    fn unknown_missing_and_unrouted_hosts_are_rejected_with_their_status() {
        let rt = runtime();
        assert_eq!(
            resolve(&rt, &req("/", Some("evil.test"))),
            Err(Reject::UnknownHost)
        );
        assert!(raw_has_content_length(
            b"POST / HTTP/1.1\r\nHost: a\r\nCONTENT-length: 4\r\n\r\n"
        ));
        assert!(!raw_has_content_length(
            b"POST / HTTP/1.1\r\nX-Content-Length: 4\r\n\r\n"
        ));
        assert!(!raw_has_content_length(
            b"POST /content-length:x HTTP/1.1\r\n\r\n"
        ));
        assert_eq!(resolve(&rt, &req("/", None)), Err(Reject::MissingHost));
        assert_eq!(resolve(&rt, &req("/", Some(""))), Err(Reject::MissingHost));
        assert_eq!(
            resolve(&rt, &req("/other", Some("b.test"))),
            Err(Reject::NoRoute)
        );
        assert_eq!(Reject::UnknownHost.status(), 421);
    }

    #[test]
    fn an_absolute_form_target_without_host_routes_by_its_authority() {
        let rt = runtime();
        let r = resolve(&rt, &req("http://b.test/only/x", None)).unwrap();
        assert_eq!(rt.sites[r.site].name, "b");
        let open_proxy = resolve(&rt, &req("http://evil.test/", None));
        assert_eq!(open_proxy, Err(Reject::UnknownHost));
    }

    #[test]
    fn an_escaped_slash_that_would_change_the_route_is_refused() {
        let rt = runtime();
        let a = Some("a.test");
        let kept = resolve(&rt, &req("/static/a%2Fb.js", a)).unwrap();
        assert_eq!(route_path(&rt, kept), "/static/");
        assert_eq!(
            resolve(&rt, &req("/static%2Fapp.js", a)),
            Err(Reject::BadPath(PathError::EncodedSlash))
        );
        assert_eq!(
            resolve(&rt, &req("/static/x%2F..%2F..%2F..", a)),
            Err(Reject::BadPath(PathError::AboveRoot))
        );
    }
}
