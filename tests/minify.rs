//! Minification at cache fill: the stored body is what the minifier gives for the origin's,
//! in every coding, minified once per variant (large bodies on the transform pool, after the
//! fill); uncacheable and unparseable bodies pass as they are.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::coding::decode;

use meridian::transform::minify::{minify, Kind};
use support::{header, one_region, Node, Origin, Reply};

const PAGE: &str = include_str!("../benches/minify/corpus/catalogue.html");
const JQUERY: &str = include_str!("../benches/minify/corpus/jquery-3.7.1.js");
const BOOTSTRAP: &str = include_str!("../benches/minify/corpus/bootstrap-5.3.3.css");

const ROUTES: &str = "compress = true\nminify = true\n\n\
    [[sites.routes]]\npath = \"/live/\"\ncache = false\ncompress = true\nminify = true\n";

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
        // These files are larger than a fill transforms inline: the client of the fill gets
        // the origin's body as it was sent, and the minified (and compressed) one replaces it
        // in the cache when the transform pool is done with it.
        for coding in ["", "br"] {
            let accept = [(
                "accept-encoding",
                if coding.is_empty() {
                    "identity"
                } else {
                    coding
                },
            )];
            let fill = node.get(path, &accept).await;
            assert_eq!(
                header(&fill, "content-encoding"),
                "",
                "{path}: passed through"
            );
            let body = fill.bytes().await.unwrap();
            assert!(
                body == source.as_bytes(),
                "{path} {coding:?}: the fill sends the original"
            );
            let stored = std::sync::Mutex::new(Vec::new());
            support::eventually(&format!("{path} {coding:?} stored minified"), || async {
                let hit = node.get(path, &accept).await;
                let is_hit = header(&hit, "cache-status").contains("hit");
                let refined = header(&hit, "content-encoding") == coding;
                let bytes = hit.bytes().await.unwrap().to_vec();
                let done = is_hit && refined && decode(coding, &bytes) == expected;
                *stored.lock().unwrap() = bytes;
                done
            })
            .await;
            let again = node.get(path, &accept).await.bytes().await.unwrap();
            assert!(
                again == *stored.lock().unwrap(),
                "{path}: hits send the stored bytes"
            );
        }
        assert_eq!(origin.hits(path), 2, "{path}: one fill per variant");
    }
    for kind in ["html", "css", "js"] {
        let series = format!("meridian_minify_total{{kind=\"{kind}\",result=\"minified\"}}");
        assert_eq!(node.metric(&series).await, 2.0, "{series}");
    }
    let refined = node
        .metric("meridian_transform_jobs_total{result=\"refined\"}")
        .await;
    assert_eq!(
        refined, 6.0,
        "three files, two variants each, refined off the proxy threads"
    );
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
