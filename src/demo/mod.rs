//! The built-in demo origin: a small static site and a dynamic API, so the shipped
//! configuration serves real traffic with no other service running.
//!
//! Not a web server for production: it serves fixed content from memory.

use async_trait::async_trait;
use http::{header, HeaderValue, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

const INDEX_HTML: &str = include_str!("site/index.html");
const STYLE_CSS: &str = include_str!("site/style.css");
const APP_JS: &str = include_str!("site/app.js");
/// A real photograph (720 x 477, 253 KiB; licence in benches/images/README.md): what the demo's
/// `images` route optimises.
const PHOTO_JPG: &[u8] = include_bytes!("../../benches/images/board.jpg");

/// One demo origin, listening on `addr`.
pub struct DemoOrigin {
    addr: SocketAddr,
    origin_header: HeaderValue,
    requests: AtomicU64,
}

impl DemoOrigin {
    pub fn new(addr: SocketAddr) -> Self {
        DemoOrigin {
            addr,
            origin_header: HeaderValue::try_from(addr.to_string())
                .unwrap_or(HeaderValue::from_static("demo")),
            requests: AtomicU64::new(0),
        }
    }

    fn respond(
        &self,
        status: StatusCode,
        content_type: &'static str,
        cache_control: &'static str,
        body: Vec<u8>,
    ) -> Response<Vec<u8>> {
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        let len = resp.body().len();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        h.insert(header::CONTENT_LENGTH, len.into());
        h.insert("x-demo-origin", self.origin_header.clone());
        resp
    }

    fn static_file(&self, content_type: &'static str, body: &[u8]) -> Response<Vec<u8>> {
        // An ETag lets caches revalidate with If-None-Match.
        let mut resp = self.respond(
            StatusCode::OK,
            content_type,
            "public, max-age=60",
            body.to_vec(),
        );
        let etag = format!("\"{:x}\"", fnv1a(body));
        if let Ok(v) = HeaderValue::try_from(etag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        resp
    }
}

/// A small stable hash for ETags; not for security.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[async_trait]
impl ServeHttp for DemoOrigin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let req = session.req_header();
        match req.uri.path() {
            "/" | "/index.html" => {
                self.static_file("text/html; charset=utf-8", INDEX_HTML.as_bytes())
            }
            "/static/style.css" => {
                self.static_file("text/css; charset=utf-8", STYLE_CSS.as_bytes())
            }
            "/static/app.js" => {
                self.static_file("text/javascript; charset=utf-8", APP_JS.as_bytes())
            }
            "/static/photo.jpg" => self.static_file("image/jpeg", PHOTO_JPG),
            "/healthz" => self.respond(StatusCode::OK, "text/plain", "no-store", b"ok\n".to_vec()),
            "/api/time" => {
                let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
                let body = json!({ "origin": self.addr.to_string(), "time": now, "request": n });
                self.respond(
                    StatusCode::OK,
                    "application/json",
                    "no-store",
                    body.to_string().into_bytes(),
                )
            }
            "/api/echo" => {
                // Shows what the edge added: X-Forwarded-For, Via, traceparent.
                let headers: serde_json::Map<String, serde_json::Value> = req
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            json!(String::from_utf8_lossy(v.as_bytes())),
                        )
                    })
                    .collect();
                let body = json!({
                    "origin": self.addr.to_string(),
                    "method": req.method.as_str(),
                    "uri": req.uri.to_string(),
                    "headers": headers,
                });
                self.respond(
                    StatusCode::OK,
                    "application/json",
                    "no-store",
                    body.to_string().into_bytes(),
                )
            }
            _ => self.respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "public, max-age=10",
                b"not found\n".to_vec(),
            ),
        }
    }
}
