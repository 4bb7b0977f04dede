//! Minification at cache fill: the stored body is what the minifier gives for the origin's,
//! in every coding, minified once per variant; uncacheable and unparseable bodies pass as
//! they are.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use meridian::transform::minify::{minify, Kind};
use std::io::Read;
use support::{header, one_region, Node, Origin, Reply};

const PAGE: &str = include_str!("../benches/minify/corpus/catalogue.html");
const JQUERY: &str = include_str!("../benches/minify/corpus/jquery-3.7.1.js");
const BOOTSTRAP: &str = include_str!("../benches/minify/corpus/bootstrap-5.3.3.css");

const ROUTES: &str = "compress = true\nminify = true\n\n\
    [[sites.routes]]\npath = \"/live/\"\ncache = false\ncompress = true\nminify = true\n";

fn brotli_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(body, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn origin_route(path: &str, body: &str, content_type: &str) -> (String, Reply) {
    (
        path.to_owned(),
        Reply::ok(body.to_owned())
            .header("content-type", content_type)
            .header("cache-control", "max-age=300"),
    )
}

#[tokio::test]
async fn stored_html_css_and_js_are_what_the_minifiers_give_in_every_coding() {
    let mut builder = Origin::builder();
    for (path, reply) in [
        origin_route("/index.html", PAGE, "text/html; charset=utf-8"),
        origin_route("/app.js", JQUERY, "application/javascript"),
        origin_route("/site.css", BOOTSTRAP, "text/css"),
    ] {
        builder = builder.route(&path, reply);
    }
    let origin = builder.start().await;
    let node = Node::start(&one_region(&[origin.addr()], ROUTES)).await;

    for (path, source, kind) in [
        ("/index.html", PAGE, Kind::Html),
        ("/app.js", JQUERY, Kind::Js),
        ("/site.css", BOOTSTRAP, Kind::Css),
    ] {
        let expected = minify(kind, source.as_bytes()).unwrap();
        let plain = node.get(path, &[]).await;
        assert_eq!(header(&plain, "content-encoding"), "");
        assert_eq!(
            plain.bytes().await.unwrap(),
            expected.as_slice(),
            "{path}: identity"
        );
        let br = node.get(path, &[("accept-encoding", "br")]).await;
        assert_eq!(header(&br, "content-encoding"), "br");
        let stored = br.bytes().await.unwrap();
        assert_eq!(
            brotli_decode(&stored),
            expected,
            "{path}: br decodes to the minified body"
        );
        let hit = node.get(path, &[("accept-encoding", "br")]).await;
        assert!(header(&hit, "cache-status").contains("hit"));
        assert_eq!(
            hit.bytes().await.unwrap(),
            stored,
            "{path}: hits send the stored bytes"
        );
        assert_eq!(origin.hits(path), 2, "{path}: one fill per variant");
    }
    for kind in ["html", "css", "js"] {
        let series = format!("meridian_minify_total{{kind=\"{kind}\",result=\"minified\"}}");
        assert_eq!(node.metric(&series).await, 2.0, "{series}");
    }
}

#[tokio::test]
async fn unparseable_and_uncacheable_bodies_pass_as_they_are() {
    let broken = "function (( { this is not javascript ".repeat(30);
    let origin = Origin::builder()
        .route(
            "/broken.js",
            Reply::ok(broken.clone())
                .header("content-type", "text/javascript")
                .header("cache-control", "max-age=300"),
        )
        .route(
            "/live/page.html",
            Reply::ok(PAGE).header("content-type", "text/html"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], ROUTES)).await;

    let r = node.get("/broken.js", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), broken.as_bytes(), "unchanged");
    let failed = node
        .metric("meridian_minify_total{kind=\"js\",result=\"failed\"}")
        .await;
    assert_eq!(failed, 1.0, "and counted");

    // Not stored: minifying would cost the whole body's latency on every request.
    let r = node.get("/live/page.html", &[]).await;
    assert_eq!(r.bytes().await.unwrap(), PAGE.as_bytes());
}
