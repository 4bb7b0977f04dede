//! Headers a proxy adds on the way to the origin: X-Forwarded-*, Via, traceparent.

use bytes::BytesMut;
use http::header::{HeaderName, HOST, VIA};
use http::HeaderValue;
use pingora_error::Result;
use pingora_http::authority::{raw_target_authority, RawTargetAuthority};
use pingora_http::RequestHeader;
use std::io::Write;
use std::net::IpAddr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const CDN_LOOP: HeaderName = HeaderName::from_static("cdn-loop");

/// Rewrites the request that goes to the origin.
///
/// - an absolute-form target becomes origin-form, with Host set to the routed host;
/// - the client address is appended to `X-Forwarded-For`; `X-Forwarded-Proto` is set;
/// - this node is appended to `Via` (RFC 9110 §7.6.3), its cluster to `CDN-Loop` (RFC 8586);
/// - `traceparent` is set to the request's trace context.
pub fn prepare_upstream_request(
    req: &mut RequestHeader,
    client: Option<IpAddr>,
    host: &str,
    via: &HeaderValue,
    cdn_id: &HeaderValue,
    traceparent: &HeaderValue,
    tls: bool,
) -> Result<()> {
    let absolute = absolute_form_path(req);
    if let Some(path_and_query) = &absolute {
        req.set_raw_path(path_and_query)?;
    }
    // One edit of the map itself: pingora's insert_header costs allocations per field
    // (see `fields`).
    super::fields::edit_request(req, |fields| {
        // A request that came over HTTP/2 named its host in :authority; origins speak
        // HTTP/1.1.
        if absolute.is_some() || !fields.contains_key(HOST) {
            let value = HeaderValue::from_str(host).map_err(|e| {
                pingora_error::Error::because(
                    pingora_error::ErrorType::InvalidHTTPHeader,
                    "host",
                    e,
                )
            })?;
            fields.insert(HOST, value);
        }
        if let Some(ip) = client {
            let mut value = joined(fields, &X_FORWARDED_FOR);
            if !value.is_empty() {
                value.extend_from_slice(b", ");
            }
            // Writing into a BytesMut cannot fail.
            let _ = write!(Writer(&mut value), "{ip}");
            fields.insert(X_FORWARDED_FOR, header_value(value)?);
        }
        let proto = if tls { "https" } else { "http" };
        fields.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
        let value = appended(fields, &VIA, via)?;
        fields.insert(VIA, value);
        let value = appended(fields, &CDN_LOOP, cdn_id)?;
        fields.insert(CDN_LOOP, value);
        fields.insert(TRACEPARENT, traceparent.clone());
        Ok(())
    })?
}

/// The origin-form target of an absolute-form request, `None` for any other form.
fn absolute_form_path(req: &RequestHeader) -> Option<Vec<u8>> {
    match raw_target_authority(req.raw_path()) {
        RawTargetAuthority::Absolute { path_and_query, .. } => {
            let mut target = Vec::with_capacity(path_and_query.len() + 1);
            // "http://host?q" has no path; origin-form needs at least "/" (RFC 9112 §3.2.1).
            if path_and_query.first() != Some(&b'/') {
                target.push(b'/');
            }
            target.extend_from_slice(path_and_query);
            Some(target)
        }
        RawTargetAuthority::None | RawTargetAuthority::AmbiguousAuthority => None,
    }
}

/// Whether this node already forwarded the request: its own `Via` entry is in it.
pub fn is_loop(req: &RequestHeader, via: &HeaderValue) -> bool {
    req.headers.get_all(VIA).iter().any(|line| {
        line.as_bytes()
            .split(|&b| b == b',')
            .any(|entry| via_entry_matches(entry, via.as_bytes()))
    })
}

/// How many `CDN-Loop` entries name `cdn_id` (RFC 8586 §2: `cdn-id *( OWS ";" parameter )`,
/// a list over any number of field lines; the id is compared case-insensitively).
pub fn cdn_loop_count(req: &RequestHeader, cdn_id: &HeaderValue) -> usize {
    req.headers
        .get_all(&CDN_LOOP)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b','))
        .filter(|entry| {
            let id = entry.split(|&b| b == b';').next().unwrap_or_default();
            id.trim_ascii().eq_ignore_ascii_case(cdn_id.as_bytes())
        })
        .count()
}

/// Compares the protocol and name of one `Via` entry, ignoring any comment after them.
fn via_entry_matches(entry: &[u8], ours: &[u8]) -> bool {
    let entry = entry.trim_ascii();
    let mut fields = entry
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let mut our_fields = ours.split(|b| b.is_ascii_whitespace());
    match (
        fields.next(),
        fields.next(),
        our_fields.next(),
        our_fields.next(),
    ) {
        (Some(p), Some(n), Some(op), Some(on)) => p == op && n.eq_ignore_ascii_case(on),
        _ => false,
    }
}

/// Every field line of `name`, joined with ", " (RFC 9110 §5.3).
pub(super) fn joined(headers: &http::HeaderMap, name: &HeaderName) -> BytesMut {
    let mut out = BytesMut::new();
    for (i, v) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// The list field `name` with `entry` added at its end: every field line joined with ", "
/// (RFC 9110 §5.3), or `entry` alone when there is none.
pub(super) fn appended(
    headers: &http::HeaderMap,
    name: &HeaderName,
    entry: &HeaderValue,
) -> Result<HeaderValue> {
    let mut line = joined(headers, name);
    if line.is_empty() {
        return Ok(entry.clone());
    }
    line.extend_from_slice(b", ");
    line.extend_from_slice(entry.as_bytes());
    header_value(line)
}

fn header_value(b: BytesMut) -> Result<HeaderValue> {
    HeaderValue::from_maybe_shared(b.freeze()).map_err(|e| {
        pingora_error::Error::because(pingora_error::ErrorType::InvalidHTTPHeader, "header", e)
    })
}

struct Writer<'a>(&'a mut BytesMut);

impl Write for Writer<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIA_US: HeaderValue = HeaderValue::from_static("1.1 edge-1");
    const CDN: HeaderValue = HeaderValue::from_static("meridian-prod");
    const TP: HeaderValue =
        HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

    fn req(target: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn forwarding_headers_are_appended_not_replaced() {
        let mut r = req(
            "/a",
            &[
                ("x-forwarded-for", "10.0.0.1"),
                ("x-forwarded-for", "10.0.0.2"),
                ("via", "1.0 fred"),
                ("cdn-loop", "other-cdn; v=1"),
            ],
        );
        prepare_upstream_request(
            &mut r,
            Some("192.0.2.7".parse().unwrap()),
            "a.test",
            &VIA_US,
            &CDN,
            &TP,
            false,
        )
        .unwrap();
        assert_eq!(
            r.headers["x-forwarded-for"],
            "10.0.0.1, 10.0.0.2, 192.0.2.7"
        );
        assert_eq!(r.headers["x-forwarded-proto"], "http");
        assert_eq!(r.headers["via"], "1.0 fred, 1.1 edge-1");
        assert_eq!(r.headers["cdn-loop"], "other-cdn; v=1, meridian-prod");
        assert_eq!(r.headers["traceparent"], TP);
    }

    #[test]
    fn absolute_form_becomes_origin_form_with_the_routed_host() {
        let mut r = req("http://A.test:8080/p?q=1", &[("host", "A.test:8080")]);
        prepare_upstream_request(&mut r, None, "a.test", &VIA_US, &CDN, &TP, false).unwrap();
        assert_eq!(r.raw_path(), b"/p?q=1");
        assert_eq!(r.headers["host"], "a.test");
    }

    #[test]
    fn a_request_from_h2_or_tls_gets_a_host_and_https_proto() {
        let mut r = req("/p", &[]);
        prepare_upstream_request(&mut r, None, "a.test", &VIA_US, &CDN, &TP, true).unwrap();
        assert_eq!(r.headers["host"], "a.test", "HTTP/2 named it in :authority");
        assert_eq!(r.headers["x-forwarded-proto"], "https");
    }

    #[test]
    fn cdn_loop_entries_of_this_cluster_are_counted_over_every_field_line() {
        let r = req(
            "/",
            &[
                ("cdn-loop", "Meridian-Prod, other; x=1"),
                ("cdn-loop", "meridian-prod ; ver=2,meridian-prodx"),
            ],
        );
        assert_eq!(cdn_loop_count(&r, &CDN), 2);
        assert_eq!(cdn_loop_count(&req("/", &[]), &CDN), 0);
    }

    #[test]
    fn our_own_via_entry_is_a_loop() {
        assert!(is_loop(
            &req("/", &[("via", "1.0 fred, 1.1 EDGE-1 (Meridian)")]),
            &VIA_US
        ));
        assert!(!is_loop(&req("/", &[("via", "1.1 edge-10")]), &VIA_US));
        assert!(!is_loop(&req("/", &[]), &VIA_US));
    }
}
