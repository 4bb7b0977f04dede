//! Range requests (RFC 9110 §14) served from the cached full object.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::{header, one_region, Node, Origin, Reply};

const BODY: &str = "0123456789abcdefghij";

async fn setup() -> (Origin, Node) {
    let origin = Origin::builder()
        .route(
            "/r",
            Reply::ok(BODY)
                .header("cache-control", "max-age=600")
                .header("etag", "\"r1\""),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    (origin, node)
}

async fn get(node: &Node, headers: &[(&str, &str)]) -> reqwest::Response {
    node.get("/r", headers).await
}

#[tokio::test]
async fn rfc9110_14_2_a_range_miss_fetches_and_stores_the_whole_object() {
    let (origin, node) = setup().await;
    let r = get(&node, &[("range", "bytes=2-5")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 2-5/20");
    assert_eq!(r.text().await.unwrap(), "2345");
    assert!(
        !origin.requests()[0].headers.contains_key("range"),
        "the origin is asked for the full object"
    );
    let full = get(&node, &[]).await;
    assert_eq!(header(&full, "cache-status"), "edge-test; hit");
    assert_eq!(full.text().await.unwrap(), BODY);
}

#[tokio::test]
async fn rfc9110_14_2_single_and_suffix_ranges_are_served_from_cache() {
    let (origin, node) = setup().await;
    get(&node, &[]).await;
    let r = get(&node, &[("range", "bytes=-3")]).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "content-range")),
        (206, "bytes 17-19/20".into())
    );
    assert_eq!(r.text().await.unwrap(), "hij");
    let r = get(&node, &[("range", "bytes=15-")]).await;
    assert_eq!(r.text().await.unwrap(), "fghij");
    assert_eq!(origin.hits("/r"), 1);
}

#[tokio::test]
async fn rfc9110_14_6_multiple_ranges_come_back_as_multipart_byteranges() {
    let (_origin, node) = setup().await;
    get(&node, &[]).await;
    let r = get(&node, &[("range", "bytes=0-1,10-11")]).await;
    assert_eq!(r.status(), 206);
    assert!(header(&r, "content-type").starts_with("multipart/byteranges; boundary="));
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Content-Range: bytes 0-1/20") && body.contains("01"),
        "{body}"
    );
    assert!(
        body.contains("Content-Range: bytes 10-11/20") && body.contains("ab"),
        "{body}"
    );
}

#[tokio::test]
async fn rfc9110_15_5_17_an_unsatisfiable_range_is_416() {
    let (_origin, node) = setup().await;
    get(&node, &[]).await;
    let r = get(&node, &[("range", "bytes=50-60")]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "content-range"), "bytes */20");
}

#[tokio::test]
async fn rfc9110_13_1_5_if_range_applies_the_range_only_when_the_validator_matches() {
    let (_origin, node) = setup().await;
    get(&node, &[]).await;
    let r = get(&node, &[("range", "bytes=0-1"), ("if-range", "\"r1\"")]).await;
    assert_eq!(r.status(), 206);
    let r = get(&node, &[("range", "bytes=0-1"), ("if-range", "\"old\"")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), BODY);
}
