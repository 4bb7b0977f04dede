//! Request-line hygiene, before routing: a method too long to be real, a target in no form
//! RFC 9112 allows, and a Transfer-Encoding that names `chunked` more than once.
//!
//! TRACE is refused per route (it needs the route), in [`trace_refused`].

use super::route::Reject;
use pingora_http::authority::{raw_target_authority, RawTargetAuthority};
use pingora_http::RequestHeader;

/// Longest method accepted, in bytes. The longest registered method (IANA HTTP Method
/// Registry, `UPDATEREDIRECTREF`) has 17; nginx reads at most a few more before it
/// answers 400. A longer one is answered 501 Not Implemented (RFC 9110 §9.1).
pub const MAX_METHOD_BYTES: usize = 20;

/// Checks what pingora parsed of the request line, and the framing fields it leaves alone.
pub fn check(req: &RequestHeader) -> Result<(), Reject> {
    if req.method.as_str().len() > MAX_METHOD_BYTES {
        return Err(Reject::MethodTooLong);
    }
    if !target_form_allowed(req) {
        return Err(Reject::BadTarget);
    }
    if chunked_count(req) > 1 {
        // RFC 9112 §6.1: a sender must not apply chunked more than once; peers that read the
        // body differently are the start of request smuggling.
        return Err(Reject::AmbiguousFraming);
    }
    Ok(())
}

/// RFC 9112 §3.2: origin-form (`/path`), absolute-form (`http://host/path`), or `*` for
/// OPTIONS. Authority-form is for CONNECT, which a reverse proxy does not serve.
fn target_form_allowed(req: &RequestHeader) -> bool {
    let target = req.raw_path();
    match target.first() {
        Some(b'/') => true,
        Some(b'*') if target.len() == 1 => req.method == http::Method::OPTIONS,
        // HTTP/2 carries no raw target: pingora builds the URI from :scheme/:authority/:path.
        _ if req.version == http::Version::HTTP_2 => req.uri.path().starts_with('/'),
        _ => match raw_target_authority(target) {
            RawTargetAuthority::Absolute { scheme, .. } => {
                scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")
            }
            _ => false,
        },
    }
}

/// How many times the Transfer-Encoding fields name `chunked`.
fn chunked_count(req: &RequestHeader) -> usize {
    req.headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        .count()
}

/// TRACE echoes the request, cookies and credentials included, back to whoever can make a
/// client send it: answered 405 unless the route allows it (`allow_trace`).
pub fn trace_refused(req: &RequestHeader, route_allows_trace: bool) -> bool {
    req.method == http::Method::TRACE && !route_allows_trace
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &[u8], te: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build(method, target, None).unwrap();
        for v in te {
            r.append_header("transfer-encoding", *v).unwrap();
        }
        r
    }

    #[test]
    fn rfc9112_3_2_only_origin_absolute_and_asterisk_forms_pass() {
        assert_eq!(check(&req("GET", b"/api/echo", &[])), Ok(()));
        assert_eq!(check(&req("GET", b"http://h.test/x", &[])), Ok(()));
        assert_eq!(check(&req("OPTIONS", b"*", &[])), Ok(()));
        assert_eq!(check(&req("GET", b"*", &[])), Err(Reject::BadTarget));
        assert_eq!(check(&req("GET", b"api/echo", &[])), Err(Reject::BadTarget));
        assert_eq!(check(&req("GET", b"?q=1", &[])), Err(Reject::BadTarget));
        assert_eq!(
            check(&req("GET", b"ftp://h/x", &[])),
            Err(Reject::BadTarget)
        );
        assert_eq!(
            check(&req("GET", b"h.test:443", &[])),
            Err(Reject::BadTarget)
        );
    }

    #[test]
    fn rfc9112_6_1_chunked_named_twice_is_refused() {
        assert_eq!(check(&req("POST", b"/", &["chunked"])), Ok(()));
        assert_eq!(
            check(&req("POST", b"/", &["chunked, chunked"])),
            Err(Reject::AmbiguousFraming)
        );
        assert_eq!(
            check(&req("POST", b"/", &["chunked", "Chunked"])),
            Err(Reject::AmbiguousFraming)
        );
    }

    #[test]
    fn a_method_past_the_bound_is_not_implemented() {
        assert_eq!(check(&req("UPDATEREDIRECTREF", b"/", &[])), Ok(()));
        let long = "X".repeat(MAX_METHOD_BYTES + 1);
        assert_eq!(check(&req(&long, b"/", &[])), Err(Reject::MethodTooLong));
        assert_eq!(Reject::MethodTooLong.status(), 501);
    }

    #[test]
    fn trace_needs_the_route_to_allow_it() {
        assert!(trace_refused(&req("TRACE", b"/", &[]), false));
        assert!(!trace_refused(&req("TRACE", b"/", &[]), true));
        assert!(!trace_refused(&req("GET", b"/", &[]), false));
    }
}
