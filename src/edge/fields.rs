//! Header edits on the request path, made in the `http` header map itself.
//!
//! pingora's `insert_header` / `append_header` title-case a copy of the name (an allocation
//! for any name outside its short list), parse that copy back into a `HeaderName` (another
//! for a non-standard one), and keep a second, case-preserving map in step with the first.
//! Done for the five fields added on the way to the origin and the two or three on the way
//! back, that was about 3 % of an uncached request's CPU and a share of every hit's
//! (benches/results/2026-12-03-vm/pingora-floor.md). These functions take the header's
//! parts out, let the caller edit the map directly, and put them back.
//!
//! The header comes back without pingora's case map: its names then go out as pingora writes
//! any header it did not parse (its dozen common names title-cased, `Content-Type`, the rest
//! in lower case, as HTTP/2 always and HAProxy and Envoy by default send them; RFC 9110 §5.1:
//! names are case-insensitive). Stored responses were already kept that way
//! (`StoredMeta::detached`), so a miss and a hit now name their fields alike.

use http::HeaderMap;
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// Runs `edit` on `req`'s header map; the request target, version, method and extensions
/// stay as they were.
pub fn edit_request<T>(
    req: &mut RequestHeader,
    edit: impl FnOnce(&mut HeaderMap) -> T,
) -> Result<T> {
    // A target the URI reproduces byte for byte (origin-form, as almost every request) needs
    // no copy; any other (absolute-form, not UTF-8) is set again from its raw bytes.
    let from_uri = req.raw_path_is_utf8()
        && req.uri.path_and_query().map(|p| p.as_str().as_bytes()) == Some(req.raw_path());
    let raw = (!from_uri).then(|| req.raw_path().to_vec());
    let send_end_stream = req.send_end_stream();
    let placeholder = RequestHeader::from(http::Request::new(()).into_parts().0);
    let mut parts = http::request::Parts::from(std::mem::replace(req, placeholder));
    let out = edit(&mut parts.headers);
    *req = RequestHeader::from(parts);
    if let Some(raw) = raw {
        req.set_raw_path(&raw)?;
    }
    if let Some(send) = send_end_stream {
        req.set_send_end_stream(send);
    }
    Ok(out)
}

/// Runs `edit` on `resp`'s header map; the status, its reason phrase, version and extensions
/// stay as they were.
pub fn edit_response<T>(
    resp: &mut ResponseHeader,
    edit: impl FnOnce(&mut HeaderMap) -> T,
) -> Result<T> {
    // Only a phrase other than the status's own is kept apart (rare: an allocation then).
    let reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_owned);
    let placeholder = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let mut parts = http::response::Parts::from(std::mem::replace(resp, placeholder));
    let out = edit(&mut parts.headers);
    *resp = ResponseHeader::from(parts);
    if reason.is_some() {
        resp.set_reason_phrase(reason.as_deref())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderValue, VIA};

    fn wire_request(req: &RequestHeader) -> String {
        let mut buf = Vec::new();
        req.header_to_h1_wire(&mut buf);
        format!(
            "{} {}\n{}",
            req.method,
            String::from_utf8_lossy(req.raw_path()),
            String::from_utf8_lossy(&buf)
        )
    }

    #[test]
    fn a_request_edit_keeps_target_method_and_every_field_in_order() {
        let mut req = RequestHeader::build("POST", b"/a/b?q=1&r=%20", None).unwrap();
        req.append_header("X-One", "1").unwrap();
        req.append_header("Host", "example.com").unwrap();
        req.append_header("X-One", "2").unwrap();
        edit_request(&mut req, |h| {
            h.insert(VIA, HeaderValue::from_static("1.1 edge"));
        })
        .unwrap();
        assert_eq!(req.method, http::Method::POST);
        assert_eq!(req.raw_path(), b"/a/b?q=1&r=%20");
        assert!(!req.has_case());
        let values: Vec<_> = req.headers.get_all("x-one").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(
            wire_request(&req),
            "POST /a/b?q=1&r=%20\nx-one: 1\r\nx-one: 2\r\nHost: example.com\r\nvia: 1.1 edge\r\n"
        );
    }

    #[test]
    fn a_target_the_uri_does_not_reproduce_is_kept_verbatim() {
        for target in [&b"http://example.com/x?y"[..], b"/caf\xc3\xa9/\xff"] {
            let mut req = RequestHeader::build("GET", target, None).unwrap();
            let utf8 = req.raw_path_is_utf8();
            edit_request(&mut req, |h| h.clear()).unwrap();
            assert_eq!(req.raw_path(), target);
            assert_eq!(req.raw_path_is_utf8(), utf8);
        }
    }

    #[test]
    fn a_response_edit_keeps_status_and_a_custom_reason_phrase() {
        let mut resp = ResponseHeader::build(299, None).unwrap();
        resp.set_reason_phrase(Some("Fine Anyway")).unwrap();
        resp.append_header("ETag", "\"v1\"").unwrap();
        edit_response(&mut resp, |h| {
            h.append(VIA, HeaderValue::from_static("1.1 edge"));
        })
        .unwrap();
        assert_eq!(resp.status.as_u16(), 299);
        assert_eq!(resp.get_reason_phrase(), Some("Fine Anyway"));
        assert_eq!(resp.headers["etag"], "\"v1\"");
        assert_eq!(resp.headers[VIA], "1.1 edge");

        let mut ok = ResponseHeader::build(200, None).unwrap();
        edit_response(&mut ok, |_| ()).unwrap();
        assert_eq!(ok.get_reason_phrase(), Some("OK"));
    }
}
