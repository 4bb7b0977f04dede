//! Issue 13: what a client chooses can neither multiply cached objects nor move a request
//! onto another route's settings, and request lines no real client sends are refused.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::{one_region, raw_status, Node, Origin, Reply, HOST};

/// `/static/` caches, `/api/` does not and takes at most 10 bytes of body, `/trace/` lets
/// TRACE through; `extra` is appended.
fn routes(origin: &Origin, extra: &str) -> String {
    one_region(
        &[origin.addr()],
        &format!(
            "[[sites.routes]]\npath = \"/static/\"\n\n\
             [[sites.routes]]\npath = \"/api/\"\ncache = false\nmax_request_body = \"10B\"\n\n\
             [[sites.routes]]\npath = \"/trace/\"\ncache = false\nallow_trace = true\n\n{extra}"
        ),
    )
}

/// What reached the origin (health checks are not recorded).
fn forwarded(origin: &Origin) -> Vec<String> {
    origin
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn issue_13_accept_encoding_weights_cannot_multiply_variants() {
    let origin = Origin::builder()
        .route(
            "/v",
            Reply::ok("varied")
                .header("cache-control", "max-age=60")
                .header("vary", "Accept-Encoding"),
        )
        .start()
        .await;
    // The "/" route does not compress: the origin's Vary is all the cache has to go on.
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    for i in 1..=300 {
        let ae = format!("gzip;q=0.{i:03}, x-coding-{i}");
        let resp = node.get("/v", &[("accept-encoding", &ae)]).await;
        assert_eq!(resp.status(), 200);
    }
    let br = node.get("/v", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(br.status(), 200);
    assert_eq!(
        origin.hits("/v"),
        2,
        "300 spellings of 'gzip' share one variant; 'br, gzip' is the second"
    );
    assert_eq!(node.metric("meridian_cache_objects").await, 2.0);
}

#[tokio::test]
async fn issue_13_vary_user_agent_is_held_to_max_variants() {
    let origin = Origin::builder()
        .route(
            "/ua",
            Reply::ok("per agent")
                .header("cache-control", "max-age=60")
                .header("vary", "User-Agent"),
        )
        .start()
        .await;
    let config = one_region(&[origin.addr()], "")
        .replace("[upstream]", "[cache]\nmax_variants = 4\n\n[upstream]");
    let node = Node::start(&config).await;
    for i in 0..40 {
        let ua = format!("agent/{i}");
        assert_eq!(node.get("/ua", &[("user-agent", &ua)]).await.status(), 200);
    }
    assert_eq!(origin.hits("/ua"), 40);
    assert_eq!(node.metric("meridian_cache_objects").await, 4.0);
    assert_eq!(
        node.metric("meridian_cache_variants_replaced_total").await,
        36.0
    );
    // The newest variants are the ones kept.
    let last = node.get("/ua", &[("user-agent", "agent/39")]).await;
    assert!(support::header(&last, "cache-status").contains("hit"));
}

#[tokio::test]
async fn issue_13_dot_segments_reach_the_route_they_name() {
    let origin = Origin::builder()
        .route(
            "/api/x",
            Reply::ok("api").header("cache-control", "max-age=60"),
        )
        .route(
            "/static/a.css",
            Reply::ok("css").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&routes(&origin, "")).await;
    // No HTTP client library sends dot-segments, so the request is written by hand.
    for _ in 0..2 {
        let status = raw_status(node.http, &get("/static/../api/x")).await;
        assert!(status.contains("200"), "{status}");
    }
    // Reached /api/ (cache = false): both went to the origin, as /api/x.
    assert_eq!(origin.hits("/api/x"), 2, "the /api route does not cache");
    assert!(origin.requests().iter().all(|r| !r.target.contains("..")));
    // /api/'s body limit applies too.
    let post = format!(
        "POST /static/../api/x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 11\r\n\r\nhello world"
    );
    assert!(raw_status(node.http, &post).await.contains("413"));
    // Escaped unreserved characters are the same resource: one stored object.
    assert!(raw_status(node.http, &get("/static/a.css"))
        .await
        .contains("200"));
    assert!(raw_status(node.http, &get("/static/%61.css"))
        .await
        .contains("200"));
    assert!(raw_status(node.http, &get("/static/./a.css"))
        .await
        .contains("200"));
    assert_eq!(origin.hits("/static/a.css"), 1);
}

#[tokio::test]
async fn issue_13_paths_that_hide_or_climb_are_400_and_never_forwarded() {
    let origin = Origin::builder().start().await;
    let node = Node::start(&routes(&origin, "")).await;
    for target in [
        "/../etc/passwd",
        "/static/../../x",
        "/static/%2e%2e/api/x",
        "/static/.%2E/api/x",
        "/static%2F..%2Fapi/x",
        "/a%00b",
        "/a%zz",
    ] {
        let status = raw_status(node.http, &get(target)).await;
        assert!(status.contains(" 400 "), "{target}: {status}");
    }
    assert_eq!(forwarded(&origin), Vec::<String>::new());
}

#[tokio::test]
async fn issue_13_trace_is_405_unless_the_route_allows_it() {
    let origin = Origin::builder()
        .route("/x", Reply::ok("x"))
        .route("/trace/x", Reply::ok("traced"))
        .start()
        .await;
    let node = Node::start(&routes(&origin, "")).await;
    let client = node.client(&[HOST]);
    let trace = reqwest::Method::from_bytes(b"TRACE").unwrap();
    let refused = client
        .request(trace.clone(), node.url(HOST, "/x"))
        .header("cookie", "session=secret")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 405);
    assert!(!support::header(&refused, "allow").contains("TRACE"));
    assert!(support::header(&refused, "allow").contains("GET"));
    assert_eq!(origin.hits("/x"), 0, "the cookie never left the node");
    let allowed = client
        .request(trace, node.url(HOST, "/trace/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(origin.hits("/trace/x"), 1);
}

#[tokio::test]
async fn issue_13_request_lines_in_no_allowed_form_are_refused() {
    let origin = Origin::builder()
        .route("/api/echo", Reply::ok("echo"))
        .route("/x", Reply::ok("x"))
        .start()
        .await;
    let node = Node::start(&routes(&origin, "")).await;
    let cases = [
        ("target not in origin-form", get("api/echo"), " 400 "),
        (
            "chunked named twice (RFC 9112 §6.1)",
            format!(
                "POST /x HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"
            ),
            " 400 ",
        ),
        (
            "chunked on two field lines",
            format!(
                "POST /x HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            " 400 ",
        ),
        (
            "a method longer than 20 bytes",
            format!("{} /x HTTP/1.1\r\nHost: {HOST}\r\n\r\n", "A".repeat(21)),
            " 501 ",
        ),
        ("asterisk-form without OPTIONS", get("*"), " 400 "),
    ];
    for (what, raw, want) in &cases {
        let status = raw_status(node.http, raw).await;
        assert!(status.contains(want), "{what}: {status}");
    }
    assert_eq!(
        forwarded(&origin),
        Vec::<String>::new(),
        "nothing refused reached the origin"
    );
    let options = format!("OPTIONS * HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    let status = raw_status(node.http, &options).await;
    assert!(!status.contains(" 400 "), "OPTIONS * is allowed: {status}");
    let ok = raw_status(node.http, &get("/x")).await;
    assert!(ok.contains(" 200 "), "{ok}");
}

#[tokio::test]
async fn issue_13_an_https_location_of_the_same_host_is_invalidated() {
    let origin = Origin::builder()
        .route(
            "/static/item",
            Reply::ok("v1").header("cache-control", "max-age=600"),
        )
        .route(
            "/static/form",
            Reply::new(303, "")
                .header("location", &format!("https://{HOST}/static/item"))
                .header("cache-control", "no-store"),
        )
        .start()
        .await;
    let node = Node::start(&routes(&origin, "")).await;
    assert_eq!(node.get("/static/item", &[]).await.status(), 200);
    let hit = node.get("/static/item", &[]).await;
    assert!(support::header(&hit, "cache-status").contains("hit"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(HOST, node.http)
        .build()
        .unwrap();
    let post = client
        .post(node.url(HOST, "/static/form"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 303);
    let after = node.get("/static/item", &[]).await;
    assert!(
        !support::header(&after, "cache-status").contains("hit"),
        "the https Location was invalidated in the shared key"
    );
    assert_eq!(origin.hits("/static/item"), 2);
}
