//! What happens to a response body, decided at its header: minified (stored HTML, CSS and
//! JavaScript), compressed to the negotiated coding (after decoding an origin's own coding),
//! or left alone; and the header edits that go with it.

use super::codec::{Decoder, Encoder};
use super::minify::{self, Kind, Skipped};
use crate::config::runtime::CompressionSettings;
use crate::vocab::Coding;
use bytes::{Bytes, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, VARY};
use http::{HeaderName, HeaderValue};
use pingora_http::ResponseHeader;
use std::io;

mod image;
use crate::transform::image::ImageWork;
pub use image::{plan_image, ImageOutcome};

/// What the route asks for this response.
#[derive(Debug, Clone, Copy)]
pub struct Wants {
    /// The client's coding, on a compressing route.
    pub coding: Option<Coding>,
    /// Minify (a stored response on a minifying route).
    pub minify: bool,
    /// Whether the response will be stored: fill levels (paid once) or fast ones.
    pub stored: bool,
    /// The cache's object bound: a body declared larger is never transformed, and one that
    /// grows larger unannounced is not held for minification.
    pub max_size: usize,
}

/// How minification of one body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinifyOutcome {
    Minified(Kind),
    Skipped(Kind, Skipped),
    /// Longer than the limit: streamed as it was.
    TooLarge(Kind),
}

/// Stored bodies declared up to this size are minified and compressed at fill levels inline,
/// on the proxy thread, as they stream: brotli 9 or a minifier on 16 KiB costs about a
/// millisecond. Larger (or undeclared) ones pass through as the origin sent them (no work
/// per byte on the proxy thread: measured, brotli 4 on streaming 4 MiB fills kept a proxy
/// thread busy enough to multiply hit latency twentyfold), and the whole-body work is a
/// [`DeferredJob`] for the transform pool, whose result replaces the stored copy.
pub const INLINE_MAX: u64 = 16 * 1024;

/// The body's way through: decode (an origin's coding), minify (whole body), encode.
pub struct BodyTransform {
    decoder: Option<Decoder>,
    minify: Option<Buffered>,
    encoder: Option<Encoder>,
    /// A copy of the decoded body for the transform pool, when the fill is too large to
    /// transform at fill levels inline.
    deferred: Option<Deferred>,
    /// Bytes handed out so far by `feed`.
    bytes_out: u64,
    /// Bytes taken in by `feed` (as the origin sent them).
    bytes_in: u64,
}

/// A [`DeferredJob`] being collected: the decoded chunks themselves (shared, not copied),
/// up to `limit` bytes, joined on the pool.
struct Deferred {
    job: DeferredJob,
    limit: usize,
    gave_up: bool,
}

/// Whole-body work done off the proxy threads: minify (when asked) and compress at the fill
/// level. Its result is an equivalent body that replaces the one stored at the fill.
#[derive(Debug)]
pub struct DeferredJob {
    work: Work,
    fields: Vec<(HeaderName, HeaderValue)>,
    chunks: Vec<Bytes>,
    len: usize,
}

/// The whole-body work of a [`DeferredJob`].
#[derive(Debug)]
enum Work {
    /// Minify (when `kind` is set), then compress to `coding` at `level`.
    Text {
        kind: Option<Kind>,
        coding: Coding,
        level: u32,
    },
    /// Re-encode an image for its variant.
    Image(ImageWork),
}

/// What a finished [`DeferredJob`] gives: the new body and the header fields to set with it.
#[derive(Debug)]
pub struct Refined {
    pub body: Bytes,
    pub fields: Vec<(HeaderName, HeaderValue)>,
    pub minified: Option<MinifyOutcome>,
    /// How an image job ended (the body is the original when it was kept).
    pub image: Option<ImageOutcome>,
}

impl DeferredJob {
    /// Bytes the job holds while it waits: what the pool's queue bound counts.
    pub fn cost(&self) -> u64 {
        self.len as u64
    }

    /// Runs the job (blocking: call it on the transform pool).
    pub fn run(self) -> io::Result<Refined> {
        let mut whole = Vec::with_capacity(self.len);
        for c in &self.chunks {
            whole.extend_from_slice(c);
        }
        drop(self.chunks);
        let (kind, coding, level) = match self.work {
            Work::Text {
                kind,
                coding,
                level,
            } => (kind, coding, level),
            Work::Image(work) => return Ok(image::run(&work, whole, self.fields)),
        };
        let (body, minified) = match kind {
            Some(kind) => match minify::minify(kind, &whole) {
                Ok(small) => (small, Some(MinifyOutcome::Minified(kind))),
                Err(why) => (whole, Some(MinifyOutcome::Skipped(kind, why))),
            },
            None => (whole, None),
        };
        let body = match Encoder::new(coding, level)? {
            Some(mut e) => {
                let mut out = BytesMut::from(&e.write(&body)?[..]);
                out.extend_from_slice(&e.finish()?);
                out.freeze()
            }
            None => Bytes::from(body),
        };
        Ok(Refined {
            body,
            fields: self.fields,
            minified,
            image: None,
        })
    }
}

/// A body collected for minification.
struct Buffered {
    kind: Kind,
    body: Vec<u8>,
    limit: usize,
    gave_up: bool,
}

impl BodyTransform {
    /// Transforms one chunk; returns what is ready to send (nothing while minification
    /// collects the body).
    pub fn feed(&mut self, chunk: Bytes) -> io::Result<Bytes> {
        self.bytes_in += chunk.len() as u64;
        let plain = match &mut self.decoder {
            Some(d) => Bytes::from(d.write(&chunk)?),
            None => chunk,
        };
        let out = self.after_decode(plain)?;
        self.bytes_out += out.len() as u64;
        Ok(out)
    }

    /// Bytes taken in by [`feed`](Self::feed) so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Bytes handed out by [`feed`](Self::feed) so far (not counting `finish`'s).
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// Ends the body: returns the last bytes, and how minification went if it was asked.
    pub fn finish(&mut self) -> io::Result<(Bytes, Option<MinifyOutcome>)> {
        let mut out = BytesMut::new();
        if let Some(d) = self.decoder.take() {
            let plain = Bytes::from(d.finish()?);
            out.extend_from_slice(&self.after_decode(plain)?);
        }
        let mut outcome = None;
        if let Some(m) = self.minify.take() {
            if m.gave_up {
                outcome = Some(MinifyOutcome::TooLarge(m.kind));
            } else {
                let body = match minify::minify(m.kind, &m.body) {
                    Ok(small) => {
                        outcome = Some(MinifyOutcome::Minified(m.kind));
                        small
                    }
                    Err(why) => {
                        outcome = Some(MinifyOutcome::Skipped(m.kind, why));
                        m.body
                    }
                };
                out.extend_from_slice(&self.encode(Bytes::from(body))?);
            }
        }
        if let Some(e) = self.encoder.take() {
            out.extend_from_slice(&e.finish()?);
        }
        Ok((out.freeze(), outcome))
    }

    /// After [`finish`](Self::finish): the whole-body work left for the transform pool, if
    /// the body was collected whole (a body past the object bound has none: it is not stored
    /// either).
    pub fn take_deferred(&mut self) -> Option<DeferredJob> {
        self.deferred.take().filter(|d| !d.gave_up).map(|d| d.job)
    }

    fn after_decode(&mut self, plain: Bytes) -> io::Result<Bytes> {
        if let Some(d) = self.deferred.as_mut().filter(|d| !d.gave_up) {
            if d.job.len + plain.len() <= d.limit {
                d.job.len += plain.len();
                d.job.chunks.push(plain.clone());
            } else {
                d.gave_up = true;
                d.job.chunks = Vec::new();
            }
        }
        let Some(m) = self.minify.as_mut().filter(|m| !m.gave_up) else {
            return self.encode(plain);
        };
        m.body.extend_from_slice(&plain);
        if m.body.len() <= m.limit {
            return Ok(Bytes::new());
        }
        // Too long to hold: what was collected goes on unminified, and so does the rest.
        m.gave_up = true;
        let collected = Bytes::from(std::mem::take(&mut m.body));
        self.encode(collected)
    }

    fn encode(&mut self, plain: Bytes) -> io::Result<Bytes> {
        match &mut self.encoder {
            Some(e) => e.write(&plain),
            // Passed on as it is: the same buffer, no copy.
            None => Ok(plain),
        }
    }
}

/// Plans the body of `resp` for what the route `wants`, editing the header to match; `None`
/// leaves the body (and, but for `Vary`, the header) as the origin sent it.
pub fn plan(
    settings: &CompressionSettings,
    wants: Wants,
    resp: &mut ResponseHeader,
) -> io::Result<Option<BodyTransform>> {
    if resp.status != http::StatusCode::OK || no_transform(resp) {
        return Ok(None);
    }
    let media = media_type(resp);
    let compress = wants.coding.filter(|_| compressible(settings, &media));
    let minify_kind = wants.minify.then(|| Kind::of_media_type(&media)).flatten();
    if compress.is_none() && minify_kind.is_none() {
        return Ok(None);
    }
    if compress.is_some() {
        // From here the body depends on Accept-Encoding, whatever this client gets.
        add_vary_accept_encoding(resp);
    }
    let from = match resp.headers.get(CONTENT_ENCODING).map(|v| v.to_str()) {
        None => Coding::Identity,
        Some(Ok(token)) => match Coding::from_token(token) {
            Some(c) => c,
            // An unknown or stacked coding is passed through untouched.
            None => return Ok(None),
        },
        Some(Err(_)) => return Ok(None),
    };
    // Without compression the body keeps the coding it came in.
    let to = compress.unwrap_or(from);
    if from == to && minify_kind.is_none() {
        return Ok(None);
    }
    let declared = resp
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if from == Coding::Identity && declared.is_some_and(|len| len < settings.min_size) {
        return Ok(None);
    }
    if declared.is_some_and(|len| len > wants.max_size as u64) {
        return Ok(None);
    }
    let decoder = if from == to && minify_kind.is_none() {
        None
    } else {
        Decoder::new(from)?
    };
    let inline = !wants.stored || declared.is_some_and(|len| len <= INLINE_MAX);
    if !inline {
        return deferred_plan(settings, wants, resp, from, to, minify_kind, decoder).map(Some);
    }
    // Not stored: fast levels, every time. Stored and small: fill levels, once.
    let levels = if wants.stored {
        settings.fill_levels
    } else {
        settings.fast_levels
    };
    let transform = BodyTransform {
        decoder,
        minify: minify_kind.map(|kind| Buffered {
            kind,
            body: Vec::new(),
            limit: wants.max_size,
            gave_up: false,
        }),
        encoder: Encoder::new(to, levels.of(to))?,
        deferred: None,
        bytes_out: 0,
        bytes_in: 0,
    };
    resp.remove_header(&CONTENT_LENGTH);
    set_coding(resp, to)?;
    weaken_etag(resp);
    Ok(Some(transform))
}

/// A stored body too large to transform inline. From an origin that sent identity (Meridian
/// asks for it) the body passes through untouched, header and all; otherwise it is decoded and
/// streamed at fast levels. Either way the whole-body work is left for the transform pool,
/// with the header fields its result will need.
fn deferred_plan(
    settings: &CompressionSettings,
    wants: Wants,
    resp: &mut ResponseHeader,
    from: Coding,
    to: Coding,
    minify_kind: Option<Kind>,
    decoder: Option<Decoder>,
) -> io::Result<BodyTransform> {
    let fill_level = settings.fill_levels.of(to);
    let pass_through = from == Coding::Identity;
    let better_later =
        minify_kind.is_some() || to != from || fill_level != settings.fast_levels.of(to);
    let mut fields = Vec::new();
    if to != Coding::Identity {
        fields.push((CONTENT_ENCODING, HeaderValue::from_static(to.token())));
    }
    let transform = BodyTransform {
        decoder: if pass_through { None } else { decoder },
        minify: None,
        encoder: if pass_through {
            None
        } else {
            Encoder::new(to, settings.fast_levels.of(to))?
        },
        deferred: None,
        bytes_out: 0,
        bytes_in: 0,
    };
    if !pass_through {
        resp.remove_header(&CONTENT_LENGTH);
        set_coding(resp, to)?;
    }
    // The refined body is another representation of the same content: a weak validator.
    weaken_etag_in(resp, &mut fields, pass_through);
    Ok(BodyTransform {
        deferred: better_later.then(|| Deferred {
            job: DeferredJob {
                work: Work::Text {
                    kind: minify_kind,
                    coding: to,
                    level: fill_level,
                },
                fields,
                chunks: Vec::new(),
                len: 0,
            },
            limit: wants.max_size,
            gave_up: false,
        }),
        ..transform
    })
}

/// The response's `Content-Encoding` for `to` (none for identity).
fn set_coding(resp: &mut ResponseHeader, to: Coding) -> io::Result<()> {
    if to == Coding::Identity {
        resp.remove_header(&CONTENT_ENCODING);
    } else {
        resp.insert_header(CONTENT_ENCODING, to.token())
            .map_err(io::Error::other)?;
    }
    Ok(())
}

/// Weakens the ETag now (a body transformed as it streams) or records the weak one among the
/// fields the refined body sets (a body passed through keeps its strong one until then).
fn weaken_etag_in(
    resp: &mut ResponseHeader,
    fields: &mut Vec<(HeaderName, HeaderValue)>,
    passed_through: bool,
) {
    if !passed_through {
        weaken_etag(resp);
    }
    let weak = resp
        .headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            if v.starts_with('"') {
                format!("W/{v}")
            } else {
                v.to_owned()
            }
        })
        .and_then(|v| HeaderValue::from_str(&v).ok());
    if let Some(weak) = weak {
        fields.push((ETAG, weak));
    }
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

/// The lower-case media type of the response, empty when it has none.
fn media_type(resp: &ResponseHeader) -> String {
    resp.headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn compressible(settings: &CompressionSettings, media: &str) -> bool {
    if media.is_empty() {
        return false;
    }
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

    fn wants(coding: Coding, stored: bool) -> Wants {
        Wants {
            coding: Some(coding),
            minify: false,
            stored,
            max_size: 1 << 20,
        }
    }

    fn run(t: &mut BodyTransform, body: &[u8]) -> Vec<u8> {
        let mut out = t.feed(Bytes::copy_from_slice(body)).unwrap().to_vec();
        out.extend_from_slice(&t.finish().unwrap().0);
        out
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
        let t = plan(&settings(), wants(Coding::Br, true), &mut r).unwrap();
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
        assert!(plan(&settings(), wants(Coding::Identity, true), &mut r)
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
                vec![("content-type", "text/html"), ("content-length", "2000000")],
                "above the cache's object bound",
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
                plan(&settings(), wants(Coding::Br, true), &mut r)
                    .unwrap()
                    .is_none(),
                "{why}"
            );
        }
        let mut not_ok = resp(&[("content-type", "text/html")]);
        not_ok.set_status(404).unwrap();
        assert!(plan(&settings(), wants(Coding::Br, true), &mut not_ok)
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
        let mut t = plan(&settings(), wants(Coding::Identity, false), &mut r)
            .unwrap()
            .unwrap();
        assert!(
            header(&r, "content-encoding").is_empty(),
            "decoded for an identity client"
        );
        assert_eq!(run(&mut t, &body), html.as_bytes());

        let mut r = resp(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        let mut t = plan(&settings(), wants(Coding::Zstd, false), &mut r)
            .unwrap()
            .unwrap();
        assert_eq!(header(&r, "content-encoding"), ["zstd"]);
        let out = run(&mut t, &body);
        let mut dec = Decoder::new(Coding::Zstd).unwrap().unwrap();
        let mut plain = dec.write(&out).unwrap();
        plain.extend_from_slice(&dec.finish().unwrap());
        assert_eq!(plain, html.as_bytes());
    }

    #[test]
    fn minification_collects_the_body_and_falls_back_to_streaming_when_too_long() {
        let css = ".a {  color : #ff0000 ;  }\n".repeat(40);
        let minify_only = Wants {
            coding: None,
            minify: true,
            stored: true,
            max_size: 1 << 20,
        };
        let declared = css.len().to_string();
        let mut r = resp(&[
            ("content-type", "text/css"),
            ("etag", "\"c\""),
            ("content-length", &declared),
        ]);
        let mut t = plan(&settings(), minify_only, &mut r).unwrap().unwrap();
        assert!(
            header(&r, "vary").is_empty(),
            "minifying alone does not vary by coding"
        );
        assert_eq!(header(&r, "etag"), ["W/\"c\""]);
        assert!(
            t.feed(Bytes::from(css.clone())).unwrap().is_empty(),
            "held until the end"
        );
        let (out, outcome) = t.finish().unwrap();
        assert_eq!(outcome, Some(MinifyOutcome::Minified(Kind::Css)));
        assert!(
            out.len() * 5 < css.len(),
            "{}",
            String::from_utf8_lossy(&out)
        );

        // A body that grows past the bound it was collected under (an origin that sends
        // more than it declared) goes on unminified.
        let mut r = resp(&[("content-type", "text/css"), ("content-length", &declared)]);
        let mut t = plan(&settings(), minify_only, &mut r).unwrap().unwrap();
        if let Some(m) = t.minify.as_mut() {
            m.limit = 100;
        }
        let mut out = t.feed(Bytes::from(css.clone())).unwrap().to_vec();
        let (rest, outcome) = t.finish().unwrap();
        out.extend_from_slice(&rest);
        assert_eq!(out, css.as_bytes(), "streamed unminified");
        assert_eq!(outcome, Some(MinifyOutcome::TooLarge(Kind::Css)));

        let broken = Wants {
            coding: Some(Coding::Gzip),
            ..minify_only
        };
        let js = "function (( { not javascript".repeat(20);
        let js_len = js.len().to_string();
        let mut r = resp(&[
            ("content-type", "text/javascript"),
            ("content-length", &js_len),
        ]);
        let mut t = plan(&settings(), broken, &mut r).unwrap().unwrap();
        let out = run(&mut t, js.as_bytes());
        let mut dec = Decoder::new(Coding::Gzip).unwrap().unwrap();
        let mut plain = dec.write(&out).unwrap();
        plain.extend_from_slice(&dec.finish().unwrap());
        assert_eq!(plain, js.as_bytes(), "an unparseable body passes unchanged");
    }

    fn decode(coding: Coding, body: &[u8]) -> Vec<u8> {
        let mut dec = Decoder::new(coding).unwrap().unwrap();
        let mut plain = dec.write(body).unwrap();
        plain.extend_from_slice(&dec.finish().unwrap());
        plain
    }

    #[test]
    fn a_large_stored_body_passes_through_and_leaves_the_whole_body_work_deferred() {
        let css = ".a {  color : #ff0000 ;  }\n".repeat(2000);
        assert!(css.len() as u64 > INLINE_MAX);
        let w = Wants {
            coding: Some(Coding::Br),
            minify: true,
            stored: true,
            max_size: 1 << 20,
        };
        let mut r = resp(&[("content-type", "text/css"), ("etag", "\"s\"")]);
        let mut t = plan(&settings(), w, &mut r).unwrap().unwrap();
        assert!(
            header(&r, "content-encoding").is_empty(),
            "sent as the origin sent it"
        );
        assert_eq!(
            header(&r, "etag"),
            ["\"s\""],
            "the same bytes keep their validator"
        );
        assert_eq!(header(&r, "vary"), ["Accept-Encoding"]);
        let chunk = Bytes::from(css.clone());
        let streamed = t.feed(chunk.clone()).unwrap();
        assert_eq!(
            streamed.as_ptr(),
            chunk.as_ptr(),
            "passed on without a copy"
        );
        let (rest, outcome) = t.finish().unwrap();
        assert!(rest.is_empty());
        assert_eq!(outcome, None, "nothing minified on the proxy thread");
        let job = t
            .take_deferred()
            .expect("the whole-body work is left for the pool");
        assert_eq!(job.cost(), css.len() as u64);
        let refined = job.run().unwrap();
        assert_eq!(refined.minified, Some(MinifyOutcome::Minified(Kind::Css)));
        let fields: Vec<(String, String)> = refined
            .fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            fields,
            [
                ("content-encoding".to_owned(), "br".to_owned()),
                ("etag".to_owned(), "W/\"s\"".to_owned())
            ]
        );
        let plain = decode(Coding::Br, &refined.body);
        assert!(plain.len() * 5 < css.len(), "minified before compression");
    }

    #[test]
    fn a_deferred_copy_past_the_object_bound_is_dropped() {
        let w = Wants {
            coding: Some(Coding::Gzip),
            minify: false,
            stored: true,
            max_size: 1000,
        };
        let mut r = resp(&[("content-type", "text/plain")]);
        let mut t = plan(&settings(), w, &mut r).unwrap().unwrap();
        t.feed(Bytes::from_static(&[b'a'; 600])).unwrap();
        t.feed(Bytes::from_static(&[b'a'; 600])).unwrap();
        t.finish().unwrap();
        assert!(t.take_deferred().is_none());
    }
}
