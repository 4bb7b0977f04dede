//! Compression once per cached variant: negotiated coding as the variant, compressed while
//! the fill streams in, hits served from the stored bytes; what must pass untouched does.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::coding::decode;

use std::io::Write;
use support::{header, one_region, Node, Origin, Reply};

/// A page of realistic, repetitive markup, about 40 KiB.
/// A page of about 11 KiB: small enough to be compressed during its fill (INLINE_MAX).
fn page() -> String {
    catalogue(150)
}

/// A catalogue page of `products` lines (about 75 bytes each).
fn catalogue(products: usize) -> String {
    let mut html =
        String::from("<!doctype html><html><head><title>Catalogue</title></head><body>\n");
    for i in 0..products {
        html.push_str(&format!(
            "<div class=\"product\"><h2>Product {i}</h2><p class=\"price\">{}.99</p></div>\n",
            i % 50
        ));
    }
    html.push_str("</body></html>\n");
    html
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

const COMPRESS: &str = "compress = true\n\n\
    [[sites.routes]]\npath = \"/api/\"\ncache = false\ncompress = true\n\n\
    [[sites.routes]]\npath = \"/plain/\"\ncache = true\n";

async fn start(origin: &Origin) -> Node {
    Node::start(&one_region(&[origin.addr()], COMPRESS)).await
}

/// An origin serving [`page`] at `/page.html` with ETag "v1" and `cache_control`, and a
/// node with compressing routes in front of it.
async fn page_origin(cache_control: &str) -> (Origin, Node) {
    let origin = Origin::builder()
        .route(
            "/page.html",
            Reply::ok(page())
                .header("content-type", "text/html; charset=utf-8")
                .header("cache-control", cache_control)
                .header("etag", "\"v1\""),
        )
        .start()
        .await;
    let node = start(&origin).await;
    (origin, node)
}

/// The bytes a br client gets for `/page.html`.
async fn br_page(node: &Node) -> bytes::Bytes {
    node.get("/page.html", &acc("br"))
        .await
        .bytes()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_coding_is_a_variant_compressed_once_and_hits_send_the_stored_bytes() {
    let html = page();
    let (origin, node) = page_origin("max-age=300").await;

    for (ae, coding) in [
        ("gzip, br", "br"),
        ("zstd, gzip", "zstd"),
        ("gzip", "gzip"),
        ("", ""),
    ] {
        let first = node.get("/page.html", &acc(ae)).await;
        assert_eq!(header(&first, "content-encoding"), coding, "{ae:?}");
        assert_eq!(header(&first, "vary"), "Accept-Encoding");
        let etag = header(&first, "etag");
        let miss_body = first.bytes().await.unwrap();
        assert_eq!(
            decode(coding, &miss_body),
            html.as_bytes(),
            "{ae:?} decodes to the page"
        );
        if !coding.is_empty() {
            assert_eq!(etag, "W/\"v1\"", "a transformed body has a weak validator");
            assert!(
                miss_body.len() * 4 < html.len(),
                "{coding}: {} bytes",
                miss_body.len()
            );
        }
        let hit = node.get("/page.html", &acc(ae)).await;
        assert!(
            header(&hit, "cache-status").contains("hit"),
            "{ae:?}: {}",
            header(&hit, "cache-status")
        );
        assert_eq!(header(&hit, "content-encoding"), coding);
        let len = header(&hit, "content-length");
        let hit_body = hit.bytes().await.unwrap();
        assert_eq!(
            hit_body, miss_body,
            "{ae:?}: the hit sends the stored bytes"
        );
        assert_eq!(
            len,
            hit_body.len().to_string(),
            "{ae:?}: Content-Length on hits"
        );
    }
    // Another way of asking for br is the same variant: no new fill.
    let again = node.get("/page.html", &acc("br;q=1, gzip;q=0.5")).await;
    assert!(header(&again, "cache-status").contains("hit"));
    assert_eq!(header(&again, "content-encoding"), "br");
    assert_eq!(origin.hits("/page.html"), 4, "one fill per variant");
    for r in origin
        .requests()
        .iter()
        .filter(|r| r.target == "/page.html")
    {
        assert_eq!(
            r.headers.get("accept-encoding").unwrap(),
            "identity",
            "origins are asked for identity"
        );
    }
}

fn acc(ae: &str) -> Vec<(&str, &str)> {
    if ae.is_empty() {
        Vec::new()
    } else {
        vec![("accept-encoding", ae)]
    }
}

#[tokio::test]
async fn no_transform_precompressed_images_and_tiny_bodies_behave() {
    let html = page();
    let gz = gzip(html.as_bytes());
    let origin = Origin::builder()
        .route(
            "/keep.html",
            Reply::ok(html.clone())
                .header("content-type", "text/html")
                .header("cache-control", "max-age=300, no-transform"),
        )
        .route(
            "/pre.html",
            Reply::ok(gz.clone())
                .header("content-type", "text/html")
                .header("content-encoding", "gzip")
                .header("cache-control", "max-age=300"),
        )
        .route(
            "/logo.png",
            Reply::ok(vec![0x89u8; 4000])
                .header("content-type", "image/png")
                .header("cache-control", "max-age=300"),
        )
        .route(
            "/tiny.txt",
            Reply::ok("tiny")
                .header("content-type", "text/plain")
                .header("cache-control", "max-age=300"),
        )
        .start()
        .await;
    let node = start(&origin).await;

    let r = node.get("/keep.html", &acc("br")).await;
    assert_eq!(
        header(&r, "content-encoding"),
        "",
        "no-transform is honoured"
    );
    assert_eq!(r.bytes().await.unwrap(), html.as_bytes());

    // Precompressed by the origin in a coding the client accepts: untouched.
    let r = node.get("/pre.html", &acc("gzip")).await;
    assert_eq!(header(&r, "content-encoding"), "gzip");
    assert_eq!(r.bytes().await.unwrap(), gz.as_slice());
    // ...and for a client that does not accept it: decoded, then encoded as it asks.
    let r = node.get("/pre.html", &acc("br")).await;
    assert_eq!(header(&r, "content-encoding"), "br");
    assert_eq!(decode("br", &r.bytes().await.unwrap()), html.as_bytes());
    let r = node.get("/pre.html", &[]).await;
    assert_eq!(header(&r, "content-encoding"), "");
    assert_eq!(r.bytes().await.unwrap(), html.as_bytes());

    let r = node.get("/logo.png", &acc("br, gzip")).await;
    assert_eq!(
        header(&r, "content-encoding"),
        "",
        "images are compressed already"
    );
    assert_eq!(header(&r, "vary"), "");
    assert_eq!(r.bytes().await.unwrap().len(), 4000);

    let r = node.get("/tiny.txt", &acc("br")).await;
    assert_eq!(header(&r, "content-encoding"), "", "below min_size");
    assert_eq!(r.bytes().await.unwrap(), "tiny");
}

#[tokio::test]
async fn head_conditional_and_range_requests_apply_to_the_stored_variant() {
    let (origin, node) = page_origin("max-age=300").await;
    let stored = br_page(&node).await;

    let client = node.client(&[support::HOST]);
    let head = client
        .head(node.url(support::HOST, "/page.html"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-encoding"), "br");
    assert_eq!(header(&head, "content-length"), stored.len().to_string());
    assert!(head.bytes().await.unwrap().is_empty());

    let r = node
        .get(
            "/page.html",
            &[("accept-encoding", "br"), ("if-none-match", "W/\"v1\"")],
        )
        .await;
    assert_eq!(r.status(), 304, "the weak validator matches");

    let r = node
        .get(
            "/page.html",
            &[("accept-encoding", "br"), ("range", "bytes=0-9")],
        )
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-encoding"), "br");
    assert_eq!(
        r.bytes().await.unwrap(),
        stored.slice(0..10),
        "ranges cut the stored variant"
    );
    assert_eq!(origin.hits("/page.html"), 1);
}

#[tokio::test]
async fn uncacheable_responses_are_compressed_on_the_fly_and_other_routes_untouched() {
    let body = page();
    let origin = Origin::builder()
        .route(
            "/api/list",
            Reply::ok(body.clone()).header("content-type", "application/json"),
        )
        .route(
            "/plain/page.html",
            Reply::ok(body.clone())
                .header("content-type", "text/html")
                .header("cache-control", "max-age=300"),
        )
        .start()
        .await;
    let node = start(&origin).await;
    for _ in 0..2 {
        let r = node.get("/api/list", &acc("gzip")).await;
        assert_eq!(header(&r, "content-encoding"), "gzip");
        assert_eq!(decode("gzip", &r.bytes().await.unwrap()), body.as_bytes());
    }
    assert_eq!(
        origin.hits("/api/list"),
        2,
        "not stored: compressed each time"
    );
    let r = node.get("/plain/page.html", &acc("br")).await;
    assert_eq!(
        header(&r, "content-encoding"),
        "",
        "compress is off on this route"
    );
    assert_eq!(r.bytes().await.unwrap(), body.as_bytes());
}

#[tokio::test]
async fn a_revalidated_variant_keeps_its_coding_and_weak_validator() {
    let (origin, node) = page_origin("max-age=1").await;
    let stored = br_page(&node).await;
    let seen = std::sync::Mutex::new(None);
    support::eventually("the stale variant is revalidated with a 304", || async {
        let r = node.get("/page.html", &acc("br")).await;
        if !header(&r, "cache-status").contains("fwd-status=304") {
            return false;
        }
        let parts = (header(&r, "content-encoding"), header(&r, "etag"));
        *seen.lock().unwrap() = Some((parts.0, parts.1, r.bytes().await.unwrap()));
        true
    })
    .await;
    let revalidated = seen.lock().unwrap().take();
    let (coding, etag, body) = revalidated.unwrap();
    assert_eq!((coding.as_str(), etag.as_str()), ("br", "W/\"v1\""));
    // The bytes may differ: a large fill is stored fast and refined on the transform pool.
    assert_eq!(
        decode("br", &body),
        decode("br", &stored),
        "the stored compressed body is still served"
    );
    let inm = origin
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("if-none-match")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .next();
    assert_eq!(
        inm.as_deref(),
        Some("W/\"v1\""),
        "revalidation sends the weak validator"
    );
}

#[tokio::test]
async fn a_route_can_prefer_its_own_coding() {
    let origin = Origin::builder()
        .route(
            "/gz/page.html",
            Reply::ok(page())
                .header("content-type", "text/html")
                .header("cache-control", "max-age=300"),
        )
        .start()
        .await;
    let routes = format!(
        "{COMPRESS}\n[[sites.routes]]\npath = \"/gz/\"\ncompress = true\n\n\
         [sites.routes.compression]\ncodings = [\"gzip\", \"br\"]\n"
    );
    let node = Node::start(&one_region(&[origin.addr()], &routes)).await;
    let r = node.get("/gz/page.html", &acc("br, gzip")).await;
    assert_eq!(
        header(&r, "content-encoding"),
        "gzip",
        "the route's preference wins"
    );
    assert_eq!(decode("gzip", &r.bytes().await.unwrap()), page().as_bytes());
}

#[tokio::test]
async fn a_large_fill_passes_through_and_its_variant_is_compressed_off_the_proxy_threads() {
    let html = catalogue(2000);
    assert!(html.len() as u64 > meridian::transform::plan::INLINE_MAX);
    let origin = Origin::builder()
        .route(
            "/big.html",
            Reply::ok(html.clone())
                .header("content-type", "text/html")
                .header("cache-control", "max-age=300")
                .header("etag", "\"big\""),
        )
        .start()
        .await;
    let node = start(&origin).await;
    let fill = node.get("/big.html", &acc("br")).await;
    assert_eq!(
        header(&fill, "content-encoding"),
        "",
        "the fill passes through"
    );
    assert_eq!(
        header(&fill, "etag"),
        "\"big\"",
        "same bytes, same validator"
    );
    assert_eq!(header(&fill, "vary"), "Accept-Encoding");
    assert!(fill.bytes().await.unwrap() == html.as_bytes());
    support::eventually("the br variant is refined", || async {
        let hit = node.get("/big.html", &acc("br")).await;
        header(&hit, "content-encoding") == "br"
    })
    .await;
    let hit = node.get("/big.html", &acc("br")).await;
    assert!(header(&hit, "cache-status").contains("hit"));
    assert_eq!(header(&hit, "etag"), "W/\"big\"");
    let len = header(&hit, "content-length");
    let body = hit.bytes().await.unwrap();
    assert_eq!(len, body.len().to_string());
    assert!(decode("br", &body) == html.as_bytes());
    assert!(
        body.len() * 10 < html.len(),
        "compressed at the fill level: {}",
        body.len()
    );
    // A range of the refined variant is a range of its stored (compressed) bytes.
    let range = node
        .get(
            "/big.html",
            &[("accept-encoding", "br"), ("range", "bytes=0-9")],
        )
        .await;
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap(), body.slice(0..10));
    assert_eq!(origin.hits("/big.html"), 1, "one fill");
    assert_eq!(
        node.metric("meridian_transform_jobs_total{result=\"refined\"}")
            .await,
        1.0
    );
}
