//! What works on memory objects works on disk objects (issue 15): after a restart, with
//! memory empty, a soft purge made before it makes the disk object revalidate (and the 304
//! refreshes it on disk), a stale disk object is served when the origin is down
//! (stale-if-error), an object fetched again once its disk copy went stale replaces that
//! copy, and compressed and minified variants are each served from disk with their own
//! coding (framed by length, sent from the file).
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::coding::decode;

use support::disk::{
    config, config_with, restarted_with, start_ready, stop, store_on_disk, store_on_disk_with,
    Restarted,
};
use support::{header, Origin, Reply, HOST};

#[tokio::test]
async fn issue_15_a_soft_purge_holds_across_a_restart_and_the_304_refreshes_the_disk_object() {
    let origin = Origin::builder()
        .route(
            "/s",
            Reply::ok("soft".repeat(1000))
                .header("cache-control", "max-age=3600")
                .header("etag", "\"s1\""),
        )
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_ready(&config(&origin, dir.path())).await;
    store_on_disk(&node, "/s", 1.0).await;
    let purged = support::plain_client()
        .post(format!(
            "http://{}/purge?url=http://{HOST}/s&soft=1",
            node.admin
        ))
        .header("authorization", "Bearer test-token")
        .send()
        .await
        .unwrap();
    assert_eq!(purged.status(), 200);
    stop(node).await;

    let node = start_ready(&config(&origin, dir.path())).await;
    let resp = node.get("/s", &[]).await;
    let status = header(&resp, "cache-status");
    assert_eq!(resp.text().await.unwrap(), "soft".repeat(1000));
    assert_eq!(status, "edge-test; fwd=stale; fwd-status=304");
    assert_eq!(
        origin.requests().pop().unwrap().headers["if-none-match"],
        "\"s1\""
    );
    // The 304 refreshed the disk object: fresh again, with no further origin request.
    let resp = node.get("/s", &[]).await;
    assert_eq!(header(&resp, "cache-status"), "edge-test; hit; detail=disk");
    assert_eq!(origin.hits("/s"), 2, "one fill, one revalidation");
}

#[tokio::test]
async fn issue_15_a_stale_disk_object_is_served_while_the_origin_is_down() {
    let reply =
        Reply::ok("kept".repeat(1000)).header("cache-control", "max-age=1, stale-if-error=3600");
    let Restarted { origin, node, .. } = restarted_with("/sie", reply).await;
    origin.stop();
    let deadline = std::time::Instant::now() + support::patience();
    loop {
        let resp = node.get("/sie", &[]).await;
        let status = header(&resp, "cache-status");
        assert_eq!(resp.status(), 200, "{status}");
        assert_eq!(resp.text().await.unwrap(), "kept".repeat(1000));
        if status == "edge-test; hit; detail=stale-if-error" {
            break;
        }
        // Until its second is up, the object is fresh on disk.
        assert_eq!(status, "edge-test; hit; detail=disk");
        assert!(std::time::Instant::now() < deadline, "never went stale");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn issue_15_an_object_fetched_again_after_its_disk_copy_went_stale_replaces_it() {
    let origin = Origin::builder()
        .route("/r", Reply::ok("old").header("cache-control", "max-age=1"))
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_ready(&config(&origin, dir.path())).await;
    store_on_disk(&node, "/r", 1.0).await;
    let writes = "meridian_disk_cache_events_total{event=\"write\"}";
    let written = node.metric(writes).await;
    // The origin's object changes; once the stored copy is stale, a request fetches the new
    // one, whose fill must replace the copy on disk (it was admitted there once already).
    origin.set_route(
        "/r",
        Reply::ok("new").header("cache-control", "max-age=3600"),
    );
    support::eventually("the stale object is fetched again", || async {
        node.get("/r", &[]).await.text().await.unwrap() == "new"
    })
    .await;
    support::eventually("the new object is written to disk", || async {
        node.metric(writes).await > written
    })
    .await;
    stop(node).await;

    let node = start_ready(&config(&origin, dir.path())).await;
    let fetched = origin.hits("/r");
    let resp = node.get("/r", &[]).await;
    assert_eq!(header(&resp, "cache-status"), "edge-test; hit; detail=disk");
    assert_eq!(resp.text().await.unwrap(), "new");
    assert_eq!(
        origin.hits("/r"),
        fetched,
        "no origin request after the restart"
    );
}

/// A catalogue page, about 15 KiB of repetitive markup with whitespace to minify.
fn page() -> String {
    let mut html = String::from("<!doctype html>\n<html>\n  <body>\n");
    for i in 0..200 {
        html.push_str(&format!(
            "    <div class=\"product\">\n      <h2>Product {i}</h2>\n    </div>\n"
        ));
    }
    html.push_str("  </body>\n</html>\n");
    html
}

#[tokio::test]
async fn issue_15_compressed_and_minified_variants_are_each_served_from_disk() {
    let origin = Origin::builder()
        .route(
            "/page.html",
            Reply::ok(page())
                .header("content-type", "text/html; charset=utf-8")
                .header("cache-control", "max-age=3600"),
        )
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let routes = "compress = true\nminify = true\n";
    let node = start_ready(&config_with(&origin, dir.path(), routes)).await;
    let codings = ["br", "gzip", ""];
    let mut served = Vec::new();
    for (n, coding) in codings.iter().enumerate() {
        let accept = [("accept-encoding", *coding)];
        let headers: &[(&str, &str)] = if coding.is_empty() { &[] } else { &accept };
        store_on_disk_with(&node, "/page.html", headers, (n + 1) as f64).await;
        let resp = node.get("/page.html", headers).await;
        assert_eq!(header(&resp, "content-encoding"), *coding);
        served.push(decode(coding, &resp.bytes().await.unwrap()));
    }
    let before = origin.hits("/page.html");
    stop(node).await;

    let node = start_ready(&config_with(&origin, dir.path(), routes)).await;
    let mut sent = 0;
    for (coding, before_restart) in codings.iter().zip(&served) {
        let accept = [("accept-encoding", *coding)];
        let headers: &[(&str, &str)] = if coding.is_empty() { &[] } else { &accept };
        let resp = node.get("/page.html", headers).await;
        assert_eq!(
            header(&resp, "cache-status"),
            "edge-test; hit; detail=disk",
            "{coding:?}"
        );
        assert_eq!(header(&resp, "content-encoding"), *coding);
        // A transformed fill was stored without a length; the disk hit is framed by the
        // length the tier holds, and so sent from the file.
        let length = header(&resp, "content-length");
        let raw = resp.bytes().await.unwrap();
        assert_eq!(length, raw.len().to_string(), "{coding:?}");
        sent += raw.len();
        let body = decode(coding, &raw);
        assert_eq!(&body, before_restart, "{coding:?}: the same representation");
        assert!(
            body.len() < page().len(),
            "{coding:?}: the minified page is on disk"
        );
    }
    assert_eq!(
        origin.hits("/page.html"),
        before,
        "no origin request after the restart"
    );
    // Counted once `sendfile` returns, which a client may see the bytes of first.
    support::eventually("every disk hit's bytes were sent from the file", || async {
        node.metric("meridian_disk_cache_hit_bytes_total{via=\"sendfile\"}")
            .await
            == sent as f64
    })
    .await;
}
