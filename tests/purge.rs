//! The admin purge API: by URL (every variant), prefix, surrogate key, everything; soft purge;
//! the token guards all of it.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::{one_region, plain_client, Node, Origin, Reply, HOST};

async fn get(node: &Node, path: &str, headers: &[(&str, &str)]) -> String {
    support::header(&node.get(path, headers).await, "cache-status")
}

/// POSTs a purge with the test token; returns (status, body).
async fn purge(node: &Node, query: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    node.admin_post(&format!("/purge?{query}"), token).await
}

fn cached(path: &str) -> Reply {
    Reply::ok(format!("body of {path}")).header("cache-control", "max-age=600")
}

async fn setup(routes: &[(&str, Reply)]) -> (Origin, Node) {
    let mut b = Origin::builder();
    for (p, r) in routes {
        b = b.route(p, r.clone());
    }
    let origin = b.start().await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    (origin, node)
}

#[tokio::test]
async fn purging_a_url_removes_every_variant_of_it_and_nothing_else() {
    let (_origin, node) = setup(&[
        ("/v", cached("/v").header("vary", "accept-language")),
        ("/other", cached("/other")),
    ])
    .await;
    for lang in ["en", "fr"] {
        get(&node, "/v", &[("accept-language", lang)]).await;
    }
    get(&node, "/other", &[]).await;
    let (status, body) = purge(&node, "url=http://TEST.local:1234/v", Some("test-token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purged"], 2);
    for lang in ["en", "fr"] {
        assert!(get(&node, "/v", &[("accept-language", lang)])
            .await
            .contains("fwd=uri-miss"));
    }
    assert_eq!(get(&node, "/other", &[]).await, "edge-test; hit");
}

#[tokio::test]
async fn purging_a_prefix_removes_the_urls_under_it() {
    let (_origin, node) = setup(&[
        ("/img/a.png", cached("a")),
        ("/img/b.png", cached("b")),
        ("/css/c.css", cached("c")),
    ])
    .await;
    for p in ["/img/a.png", "/img/b.png", "/css/c.css"] {
        get(&node, p, &[]).await;
    }
    let (status, body) = purge(
        &node,
        &format!("prefix=http://{HOST}/img/"),
        Some("test-token"),
    )
    .await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(2)));
    assert!(get(&node, "/img/a.png", &[]).await.contains("fwd=uri-miss"));
    assert_eq!(get(&node, "/css/c.css", &[]).await, "edge-test; hit");
}

#[tokio::test]
async fn purging_a_surrogate_key_removes_the_tagged_objects() {
    let (_origin, node) = setup(&[
        (
            "/p1",
            cached("p1").header("surrogate-key", "product-1 catalog"),
        ),
        ("/p2", cached("p2").header("cache-tag", "product-2,catalog")),
        ("/home", cached("home")),
    ])
    .await;
    for p in ["/p1", "/p2", "/home"] {
        get(&node, p, &[]).await;
    }
    let (_, body) = purge(&node, "tag=product-1", Some("test-token")).await;
    assert_eq!(body["purged"], 1);
    assert!(get(&node, "/p1", &[]).await.contains("fwd=uri-miss"));
    assert_eq!(get(&node, "/p2", &[]).await, "edge-test; hit");
    let (_, body) = purge(&node, "tag=catalog", Some("test-token")).await;
    assert_eq!(body["purged"], 2, "p1 was refetched and tagged again");
    assert_eq!(get(&node, "/home", &[]).await, "edge-test; hit");
}

#[tokio::test]
async fn purging_everything_empties_the_cache() {
    let (_origin, node) = setup(&[("/a", cached("a")), ("/b", cached("b"))]).await;
    get(&node, "/a", &[]).await;
    get(&node, "/b", &[]).await;
    let (status, body) = purge(&node, "all=1", Some("test-token")).await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(2)));
    assert_eq!(node.metric("meridian_cache_objects").await, 0.0);
    assert!(get(&node, "/a", &[]).await.contains("fwd=uri-miss"));
}

#[tokio::test]
async fn a_soft_purge_keeps_the_object_but_makes_the_next_request_revalidate() {
    let (origin, node) = setup(&[("/s", cached("/s").header("etag", "\"s1\""))]).await;
    get(&node, "/s", &[]).await;
    let (_, body) = purge(
        &node,
        &format!("url=http://{HOST}/s&soft=1"),
        Some("test-token"),
    )
    .await;
    assert_eq!(
        (body["purged"].as_u64(), body["mode"].as_str()),
        (Some(1), Some("soft"))
    );
    assert_eq!(
        get(&node, "/s", &[]).await,
        "edge-test; fwd=stale; fwd-status=304"
    );
    assert_eq!(
        origin.requests().pop().unwrap().headers["if-none-match"],
        "\"s1\""
    );
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_and_purges_nothing() {
    let (origin, node) = setup(&[("/t", cached("/t"))]).await;
    get(&node, "/t", &[]).await;
    for token in [None, Some("wrong"), Some("test-token-and-more")] {
        let (status, body) = purge(&node, "all=1", token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
    }
    assert_eq!(get(&node, "/t", &[]).await, "edge-test; hit");
    assert_eq!(origin.hits("/t"), 1);
}

#[tokio::test]
async fn bad_purge_requests_are_400_with_the_reason() {
    let (_origin, node) = setup(&[]).await;
    let (status, body) = purge(&node, "url=http://unknown.test/x", Some("test-token")).await;
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("no site serves host"));
    let get = plain_client()
        .get(format!("http://{}/purge?all=1", node.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}
