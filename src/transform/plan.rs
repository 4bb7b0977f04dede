//! What happens to a response body, decided at its header: compressed to the negotiated
//! coding (after decoding an origin's own coding), or left alone; and the header edits that
//! go with it.

use super::codec::{Decoder, Encoder};
use super::Coding;
use crate::config::runtime::CompressionSettings;
use bytes::{Bytes, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, VARY};
use http::HeaderValue;
use pingora_http::ResponseHeader;
use std::io;

/// The body's way through: decode (an origin's coding), then encode (the client's).
pub struct BodyTransform {
    decoder: Option<Decoder>,
    encoder: Option<Encoder>,
}

impl BodyTransform {
    /// Transforms one chunk; returns what is ready to send.
    pub fn feed(&mut self, chunk: &[u8]) -> io::Result<Bytes> {
        match &mut self.decoder {
            Some(d) => {
                let plain = d.write(chunk)?;
                self.encode(&plain)
            }
            None => self.encode(chunk),
        }
    }

    /// Ends the body; returns the last bytes.
    pub fn finish(&mut self) -> io::Result<Bytes> {
        let mut out = BytesMut::new();
        if let Some(d) = self.decoder.take() {
            let plain = d.finish()?;
            out.extend_from_slice(&self.encode(&plain)?);
        }
        if let Some(e) = self.encoder.take() {
            out.extend_from_slice(&e.finish()?);
        }
        Ok(out.freeze())
    }

    fn encode(&mut self, plain: &[u8]) -> io::Result<Bytes> {
        match &mut self.encoder {
            Some(e) => e.write(plain),
            None => Ok(Bytes::copy_from_slice(plain)),
        }
    }
}

/// Plans the body of `resp` for a client that gets `wanted`, editing the header to match;
/// `None` leaves the body (and, but for `Vary`, the header) as the origin sent it. `stored`
/// picks the fill levels (paid once) over the fast ones.
pub fn plan(
    settings: &CompressionSettings,
    wanted: Coding,
    stored: bool,
    resp: &mut ResponseHeader,
) -> io::Result<Option<BodyTransform>> {
    if resp.status != http::StatusCode::OK || !compressible(settings, resp) || no_transform(resp) {
        return Ok(None);
    }
    // From here the body depends on Accept-Encoding, whatever this client gets.
    add_vary_accept_encoding(resp);
    let from = match resp.headers.get(CONTENT_ENCODING).map(|v| v.to_str()) {
        None => Coding::Identity,
        Some(Ok(token)) => match Coding::from_token(token) {
            Some(c) => c,
            // An unknown or stacked coding is passed through untouched.
            None => return Ok(None),
        },
        Some(Err(_)) => return Ok(None),
    };
    if from == wanted {
        return Ok(None);
    }
    let declared = resp
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if from == Coding::Identity && declared.is_some_and(|len| len < settings.min_size) {
        return Ok(None);
    }
    let levels = if stored {
        settings.fill_levels
    } else {
        settings.fast_levels
    };
    let transform = BodyTransform {
        decoder: Decoder::new(from)?,
        encoder: Encoder::new(wanted, levels.of(wanted))?,
    };
    resp.remove_header(&CONTENT_LENGTH);
    if wanted == Coding::Identity {
        resp.remove_header(&CONTENT_ENCODING);
    } else {
        resp.insert_header(CONTENT_ENCODING, wanted.token())
            .map_err(io::Error::other)?;
    }
    weaken_etag(resp);
    Ok(Some(transform))
}

/// A 304 refreshing a transformed copy: its validator describes the origin's bytes, so it is
/// kept weak like the stored one's.
pub fn weaken_etag(resp: &mut ResponseHeader) {
    let Some(strong) = resp
        .headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with('"'))
        .map(|v| format!("W/{v}"))
    else {
        return;
    };
    if let Ok(weak) = HeaderValue::from_str(&strong) {
        // Replacing a header that exists cannot fail.
        let _ = resp.insert_header(ETAG, weak);
    }
}

fn compressible(settings: &CompressionSettings, resp: &ResponseHeader) -> bool {
    let Some(media) = resp
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    else {
        return false;
    };
    let major = media.split('/').next().unwrap_or("");
    settings
        .types
        .iter()
        .any(|t| *t == media || t.strip_suffix("/*") == Some(major))
}

fn no_transform(resp: &ResponseHeader) -> bool {
    resp.headers.get_all(CACHE_CONTROL).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
        })
    })
}

fn add_vary_accept_encoding(resp: &mut ResponseHeader) {
    let listed = resp.headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|f| {
                matches!(f.trim(), "*") || f.trim().eq_ignore_ascii_case("accept-encoding")
            })
        })
    });
    if !listed {
        // Appending a static value to a header map cannot fail.
        let _ = resp.append_header(VARY, "Accept-Encoding");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::runtime::Levels;

    fn settings() -> CompressionSettings {
        CompressionSettings {
            preference: vec![Coding::Br, Coding::Zstd, Coding::Gzip],
            fill_levels: Levels {
                br: 9,
                zstd: 15,
                gzip: 9,
            },
            fast_levels: Levels {
                br: 4,
                zstd: 3,
                gzip: 6,
            },
            types: vec![
                "text/html".into(),
                "text/*".into(),
                "application/json".into(),
            ],
            min_size: 256,
        }
    }

    fn resp(headers: &[(&str, &str)]) -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    fn header(r: &ResponseHeader, name: &str) -> Vec<String> {
        r.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_text_body_is_compressed_with_matching_headers() {
        let mut r = resp(&[
            ("content-type", "text/html; charset=utf-8"),
            ("content-length", "5000"),
            ("etag", "\"v1\""),
        ]);
        let t = plan(&settings(), Coding::Br, true, &mut r).unwrap();
        assert!(t.is_some());
        assert_eq!(header(&r, "content-encoding"), ["br"]);
        assert!(
            header(&r, "content-length").is_empty(),
            "the length changes"
        );
        assert_eq!(header(&r, "vary"), ["Accept-Encoding"]);
        assert_eq!(header(&r, "etag"), ["W/\"v1\""]);
    }

    #[test]
    fn identity_clients_get_the_body_as_is_but_the_response_still_varies() {
        let mut r = resp(&[("content-type", "text/css"), ("vary", "Origin")]);
        assert!(plan(&settings(), Coding::Identity, true, &mut r)
            .unwrap()
            .is_none());
        assert_eq!(header(&r, "vary"), ["Origin", "Accept-Encoding"]);
        assert!(header(&r, "content-encoding").is_empty());
    }

    #[test]
    fn untouched_no_transform_other_types_small_bodies_and_errors() {
        for (headers, why) in [
            (
                vec![
                    ("content-type", "text/html"),
                    ("cache-control", "public, no-transform"),
                ],
                "no-transform",
            ),
            (vec![("content-type", "image/png")], "an image"),
            (vec![], "no type"),
            (
                vec![("content-type", "text/html"), ("content-length", "100")],
                "below min_size",
            ),
            (
                vec![("content-type", "text/html"), ("content-encoding", "br")],
                "already br",
            ),
            (
                vec![
                    ("content-type", "text/html"),
                    ("content-encoding", "deflate"),
                ],
                "unknown coding",
            ),
        ] {
            let mut r = resp(&headers);
            assert!(
                plan(&settings(), Coding::Br, true, &mut r)
                    .unwrap()
                    .is_none(),
                "{why}"
            );
        }
        let mut not_ok = resp(&[("content-type", "text/html")]);
        not_ok.set_status(404).unwrap();
        assert!(plan(&settings(), Coding::Br, true, &mut not_ok)
            .unwrap()
            .is_none());
    }

    #[test]
    fn an_origins_coding_is_decoded_then_reencoded_or_removed() {
        let html = "<p>hello</p>".repeat(500);
        let mut gz = Encoder::new(Coding::Gzip, 6).unwrap().unwrap();
        let mut body = gz.write(html.as_bytes()).unwrap().to_vec();
        body.extend_from_slice(&gz.finish().unwrap());

        let mut r = resp(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        let mut t = plan(&settings(), Coding::Identity, false, &mut r)
            .unwrap()
            .unwrap();
        assert!(
            header(&r, "content-encoding").is_empty(),
            "decoded for an identity client"
        );
        let mut out = t.feed(&body).unwrap().to_vec();
        out.extend_from_slice(&t.finish().unwrap());
        assert_eq!(out, html.as_bytes());

        let mut r = resp(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        let mut t = plan(&settings(), Coding::Zstd, false, &mut r)
            .unwrap()
            .unwrap();
        assert_eq!(header(&r, "content-encoding"), ["zstd"]);
        let mut out = t.feed(&body).unwrap().to_vec();
        out.extend_from_slice(&t.finish().unwrap());
        let mut dec = Decoder::new(Coding::Zstd).unwrap().unwrap();
        let mut plain = dec.write(&out).unwrap();
        plain.extend_from_slice(&dec.finish().unwrap());
        assert_eq!(plain, html.as_bytes());
    }
}
