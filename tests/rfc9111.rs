//! HTTP caching semantics end to end, one test per rule, named after its RFC section.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::{eventually, header, one_region, Node, Origin, Reply, HOST};

/// GETs `path` every 15 ms until its Cache-Status contains `wanted`, within the harness's
/// patience; returns (status, cache-status, body) of that response.
async fn get_until(node: &Node, path: &str, wanted: &str) -> (u16, String, String) {
    let deadline = std::time::Instant::now() + support::patience();
    loop {
        let r = node.get(path, &[]).await;
        let status = r.status().as_u16();
        let cs = header(&r, "cache-status");
        let body = r.text().await.unwrap();
        if cs.contains(wanted) {
            return (status, cs, body);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: Cache-Status never contained {wanted:?}; last {status} {cs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
}

#[tokio::test]
async fn rfc9111_4_3_1_a_stale_entry_is_revalidated_and_a_304_refreshes_it() {
    let origin = Origin::builder()
        .route(
            "/e",
            Reply::ok("etagged")
                .header("cache-control", "max-age=1")
                .header("etag", "\"v1\""),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/e", &[]).await;
    let (status, cs, body) = get_until(&node, "/e", "fwd-status=304").await;
    assert_eq!((status, body.as_str()), (200, "etagged"));
    assert_eq!(cs, "edge-test; fwd=stale; fwd-status=304");
    let revalidation = origin.requests().pop().unwrap();
    assert_eq!(revalidation.headers["if-none-match"], "\"v1\"");
    assert_eq!(
        header(&node.get("/e", &[]).await, "cache-status"),
        "edge-test; hit"
    );
}

#[tokio::test]
async fn rfc9110_13_1_2_a_client_if_none_match_is_answered_304_from_cache() {
    let origin = Origin::builder()
        .route(
            "/c",
            Reply::ok("body")
                .header("cache-control", "max-age=60")
                .header("etag", "\"v1\""),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/c", &[]).await;
    let r = node.get("/c", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(r.status(), 304);
    let r = node.get("/c", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(origin.hits("/c"), 1);
}

#[tokio::test]
async fn rfc5861_3_stale_while_revalidate_serves_stale_and_revalidates_once_in_the_background() {
    let origin = Origin::builder()
        .route(
            "/swr",
            Reply::ok("v1").header("cache-control", "max-age=1, stale-while-revalidate=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/swr", &[]).await;
    origin.set_route(
        "/swr",
        Reply::ok("v2").header("cache-control", "max-age=60, stale-while-revalidate=60"),
    );
    let (status, cs, body) = get_until(&node, "/swr", "stale-while-revalidate").await;
    assert_eq!((status, body.as_str()), (200, "v1"), "{cs}");
    eventually("the background revalidation stores v2", || async {
        node.get("/swr", &[]).await.text().await.unwrap() == "v2"
    })
    .await;
    assert_eq!(
        origin.hits("/swr"),
        2,
        "one fill, one background revalidation"
    );
}

#[tokio::test]
async fn rfc5861_4_stale_if_error_serves_stale_while_the_origin_is_down() {
    let origin = Origin::builder()
        .route(
            "/sie",
            Reply::ok("kept").header("cache-control", "max-age=1, stale-if-error=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/sie", &[]).await;
    origin.stop();
    let (status, cs, body) = get_until(&node, "/sie", "stale-if-error").await;
    assert_eq!((status, body.as_str()), (200, "kept"));
    assert_eq!(cs, "edge-test; hit; detail=stale-if-error");
}

#[tokio::test]
async fn rfc5861_4_stale_if_error_serves_stale_instead_of_a_5xx() {
    let origin = Origin::builder()
        .route(
            "/sie5",
            Reply::ok("good").header("cache-control", "max-age=1, stale-if-error=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/sie5", &[]).await;
    origin.set_route("/sie5", Reply::new(503, "down"));
    let (status, _, body) = get_until(&node, "/sie5", "stale-if-error").await;
    assert_eq!((status, body.as_str()), (200, "good"));
}

#[tokio::test]
async fn a_route_stale_if_error_keeps_serving_while_every_origin_is_down() {
    let origin = Origin::builder()
        .route(
            "/keep/x",
            Reply::ok("still here").header("cache-control", "max-age=1"),
        )
        .start()
        .await;
    let extra = "[[sites.routes]]\npath = \"/keep/\"\nstale_if_error = \"10m\"\n";
    let node = Node::start(&one_region(&[origin.addr()], extra)).await;
    node.get("/keep/x", &[]).await;
    origin.stop();
    let (status, _, body) = get_until(&node, "/keep/x", "stale-if-error").await;
    assert_eq!((status, body.as_str()), (200, "still here"));
}

#[tokio::test]
async fn rfc9111_5_2_2_2_must_revalidate_forbids_serving_stale_on_error() {
    let origin = Origin::builder()
        .route(
            "/mr",
            Reply::ok("strict").header(
                "cache-control",
                "max-age=1, must-revalidate, stale-if-error=60",
            ),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/mr", &[]).await;
    origin.stop();
    eventually("the stale copy is refused once expired", || async {
        let r = node.get("/mr", &[]).await;
        r.status().is_server_error()
    })
    .await;
}

#[tokio::test]
async fn rfc9111_5_2_1_7_only_if_cached_is_504_when_absent_and_a_hit_when_stored() {
    let origin = Origin::builder()
        .route("/o", Reply::ok("o").header("cache-control", "max-age=60"))
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let absent = node.get("/o", &[("cache-control", "only-if-cached")]).await;
    assert_eq!(absent.status(), 504);
    assert_eq!(origin.hits("/o"), 0);
    node.get("/o", &[]).await;
    let present = node.get("/o", &[("cache-control", "only-if-cached")]).await;
    assert_eq!(present.status(), 200);
    assert_eq!(header(&present, "cache-status"), "edge-test; hit");
}

#[tokio::test]
async fn rfc9111_5_2_1_4_request_no_cache_and_pragma_force_revalidation() {
    let origin = Origin::builder()
        .route(
            "/nc",
            Reply::ok("nc")
                .header("cache-control", "max-age=60")
                .header("etag", "\"n\""),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/nc", &[]).await;
    let r = node.get("/nc", &[("cache-control", "no-cache")]).await;
    assert_eq!(
        header(&r, "cache-status"),
        "edge-test; fwd=stale; fwd-status=304"
    );
    assert_eq!(
        origin.requests().pop().unwrap().headers["if-none-match"],
        "\"n\""
    );
    let r = node.get("/nc", &[("pragma", "no-cache")]).await;
    assert!(
        header(&r, "cache-status").contains("fwd=stale"),
        "Pragma: no-cache (§5.4)"
    );
    let r = node
        .get(
            "/nc",
            &[("pragma", "no-cache"), ("cache-control", "max-age=600")],
        )
        .await;
    assert_eq!(
        header(&r, "cache-status"),
        "edge-test; hit",
        "Pragma is ignored beside Cache-Control"
    );
    assert_eq!(origin.hits("/nc"), 3);
}

#[tokio::test]
async fn rfc9111_4_2_3_an_age_from_the_origin_counts_in_the_age_of_hits() {
    let origin = Origin::builder()
        .route(
            "/aged",
            Reply::ok("a")
                .header("cache-control", "max-age=600")
                .header("age", "100"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/aged", &[]).await;
    let hit = node.get("/aged", &[]).await;
    let age: u64 = header(&hit, "age").parse().unwrap();
    assert!((100..110).contains(&age), "Age {age}");
}

#[tokio::test]
async fn rfc9111_4_2_2_heuristic_freshness_from_last_modified() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let lm = httpdate::fmt_http_date(
        std::time::SystemTime::now() - std::time::Duration::from_secs(86_400),
    );
    let origin = Origin::builder()
        .route(
            "/h",
            Reply::ok("h")
                .header("date", &date)
                .header("last-modified", &lm),
        )
        .route(
            "/h302",
            Reply::new(302, "")
                .header("date", &date)
                .header("last-modified", &lm),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/h", &[]).await;
    assert_eq!(
        header(&node.get("/h", &[]).await, "cache-status"),
        "edge-test; hit"
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(HOST, node.http)
        .build()
        .unwrap();
    for _ in 0..2 {
        client.get(node.url(HOST, "/h302")).send().await.unwrap();
    }
    assert_eq!(
        origin.hits("/h302"),
        2,
        "302 is not heuristically cacheable"
    );
}

#[tokio::test]
async fn rfc9213_cdn_cache_control_governs_this_cache_and_is_not_forwarded() {
    let origin = Origin::builder()
        .route(
            "/cdn",
            Reply::ok("cdn")
                .header("cache-control", "no-store")
                .header("cdn-cache-control", "max-age=60")
                .header("surrogate-key", "a b"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let first = node.get("/cdn", &[]).await;
    assert!(header(&first, "cache-status").contains("stored"));
    let hit = node.get("/cdn", &[]).await;
    assert_eq!(header(&hit, "cache-status"), "edge-test; hit");
    assert_eq!(
        header(&hit, "cache-control"),
        "no-store",
        "browsers still get the origin's rule"
    );
    assert!(!hit.headers().contains_key("cdn-cache-control"));
    assert!(!hit.headers().contains_key("surrogate-key"));
    assert_eq!(origin.hits("/cdn"), 1);
}

#[tokio::test]
async fn rfc9111_4_4_a_successful_post_invalidates_its_target_and_same_host_location() {
    let origin = Origin::builder()
        .route(
            "/item",
            Reply::ok("item").header("cache-control", "max-age=60"),
        )
        .route(
            "/list",
            Reply::ok("list").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/item", &[]).await;
    node.get("/list", &[]).await;
    origin.set_route("/item", Reply::ok("created").header("location", "/list"));
    let post = node
        .client(&[HOST])
        .post(node.url(HOST, "/item"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    origin.set_route(
        "/item",
        Reply::ok("item v2").header("cache-control", "max-age=60"),
    );
    let item = node.get("/item", &[]).await;
    assert!(
        header(&item, "cache-status").contains("fwd=uri-miss"),
        "target invalidated"
    );
    assert_eq!(item.text().await.unwrap(), "item v2");
    let list = node.get("/list", &[]).await;
    assert!(
        header(&list, "cache-status").contains("fwd=uri-miss"),
        "Location invalidated"
    );
}

#[tokio::test]
async fn a_failed_post_invalidates_nothing() {
    let origin = Origin::builder()
        .route(
            "/keep",
            Reply::ok("keep").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/keep", &[]).await;
    origin.set_route("/keep", Reply::new(500, "no"));
    node.client(&[HOST])
        .post(node.url(HOST, "/keep"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&node.get("/keep", &[]).await, "cache-status"),
        "edge-test; hit"
    );
}

#[tokio::test]
async fn rfc9110_7_6_1_connection_listed_headers_are_neither_stored_nor_forwarded() {
    let origin = Origin::builder()
        .route(
            "/hop",
            Reply::ok("hop")
                .header("cache-control", "max-age=60")
                .header("connection", "x-hop")
                .header("x-hop", "secret")
                .header("x-end", "kept"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    for _ in 0..2 {
        let r = node.get("/hop", &[]).await;
        assert!(!r.headers().contains_key("x-hop"));
        assert_eq!(header(&r, "x-end"), "kept");
    }
}

#[tokio::test]
async fn rfc9111_4_4_an_unknown_method_invalidates_like_post() {
    let origin = Origin::builder()
        .route(
            "/thing",
            Reply::ok("v1").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/thing", &[]).await;
    assert!(header(&node.get("/thing", &[]).await, "cache-status").contains("hit"));
    for method in ["M-SEARCH", "FOO"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = node
            .client(&[HOST])
            .request(m, node.url(HOST, "/thing"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{method}");
        let after = node.get("/thing", &[]).await;
        assert!(
            header(&after, "cache-status").contains("fwd=uri-miss"),
            "{method} invalidated /thing"
        );
    }
}

#[tokio::test]
async fn rfc9111_5_1_list_and_invalid_age_values() {
    let origin = Origin::builder()
        .route(
            "/listed",
            Reply::ok("listed")
                .header("cache-control", "max-age=10000")
                .header("age", "7200, 0"),
        )
        .route(
            "/invalid",
            Reply::ok("invalid")
                .header("cache-control", "max-age=10000")
                .header("age", "abc"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/listed", &[]).await;
    let hit = node.get("/listed", &[]).await;
    assert!(header(&hit, "cache-status").contains("hit"));
    let age: u64 = header(&hit, "age").parse().unwrap();
    assert!(
        (7200..7300).contains(&age),
        "first member counts: Age {age}"
    );
    node.get("/invalid", &[]).await;
    let second = node.get("/invalid", &[]).await;
    assert!(
        !header(&second, "cache-status").contains("hit"),
        "an unreadable Age is stale, not fresh"
    );
    assert_eq!(origin.hits("/invalid"), 2);
}

#[tokio::test]
async fn rfc9213_2_1_an_invalid_cdn_cache_control_leaves_cache_control_in_charge() {
    let origin = Origin::builder()
        .route(
            "/garbled",
            Reply::ok("g")
                .header("cache-control", "no-store")
                .header("cdn-cache-control", "max-age=10000, &&&"),
        )
        .route(
            "/quoted",
            Reply::ok("q")
                .header("cache-control", "no-store")
                .header("cdn-cache-control", "max-age=\"10000\""),
        )
        .route(
            "/valid",
            Reply::ok("v")
                .header("cache-control", "no-store")
                .header("cdn-cache-control", "max-age=10000"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    for path in ["/garbled", "/quoted", "/valid"] {
        node.get(path, &[]).await;
        node.get(path, &[]).await;
    }
    assert_eq!(
        origin.hits("/garbled"),
        2,
        "Cache-Control: no-store governs"
    );
    assert_eq!(origin.hits("/quoted"), 2, "Cache-Control: no-store governs");
    assert_eq!(
        origin.hits("/valid"),
        1,
        "a valid CDN-Cache-Control governs"
    );
}

/// An origin on a raw socket that answers every request with `103 Early Hints`, then, after
/// `think` (the work early hints exist to overlap; zero: in the same write), 200.
async fn early_hints_origin(
    think: std::time::Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_string();
                        seen.drain(..end + 4);
                        if !head.contains("meridian-health-check") {
                            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        let hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n";
                        let reply = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\n\r\nhello";
                        let sent = if think.is_zero() {
                            s.write_all(format!("{hints}{reply}").as_bytes()).await
                        } else {
                            let _ = s.write_all(hints.as_bytes()).await;
                            tokio::time::sleep(think).await;
                            s.write_all(reply.as_bytes()).await
                        };
                        if sent.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, served)
}

#[tokio::test]
async fn rfc8297_early_hints_reach_the_client_and_are_never_stored() {
    // In one write with the final header (pingora alone drops them then), and ahead of it.
    for think in [
        std::time::Duration::ZERO,
        std::time::Duration::from_millis(100),
    ] {
        early_hints_case(think).await;
    }
}

async fn early_hints_case(think: std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (origin, served) = early_hints_origin(think).await;
    let node = Node::start(&one_region(&[origin], "")).await;
    let exchange = |_: ()| async {
        let mut s = tokio::net::TcpStream::connect(node.http).await.unwrap();
        let req = format!("GET /hinted HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(support::patience(), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    let first = exchange(()).await;
    assert_eq!(
        first.matches("HTTP/1.1 103").count(),
        1,
        "written once: {first}"
    );
    let hints = first
        .find("HTTP/1.1 103")
        .unwrap_or_else(|| panic!("{first}"));
    let final_at = first
        .find("HTTP/1.1 200")
        .unwrap_or_else(|| panic!("{first}"));
    assert!(hints < final_at, "{first}");
    assert!(
        first[hints..final_at]
            .to_ascii_lowercase()
            .contains("link: </style.css>"),
        "{first}"
    );
    assert!(first.ends_with("hello"), "{first}");
    let second = exchange(()).await;
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "a hit carries no stored 103: {second}"
    );
    assert!(
        second
            .to_ascii_lowercase()
            .contains("cache-status: edge-test; hit"),
        "{second}"
    );
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rfc9110_6_6_1_a_cached_response_keeps_its_origins_date() {
    let dated =
        httpdate::fmt_http_date(std::time::SystemTime::now() - std::time::Duration::from_secs(30));
    let origin = Origin::builder()
        .route(
            "/dated",
            Reply::ok("dated")
                .header("cache-control", "max-age=3600")
                .header("date", &dated),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let miss = node.get("/dated", &[]).await;
    assert_eq!(
        header(&miss, "date"),
        dated,
        "passed on as the origin sent it"
    );
    let hit = node.get("/dated", &[]).await;
    assert!(header(&hit, "cache-status").contains("hit"));
    assert_eq!(header(&hit, "date"), dated, "a hit carries the stored Date");
    let age: u64 = header(&hit, "age").parse().unwrap();
    assert!(age >= 30, "Age counts from that Date: {age}");
    // What the node writes itself still gets a Date.
    let local = node
        .client(&["nowhere.test"])
        .get(node.url("nowhere.test", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 421);
    assert!(!header(&local, "date").is_empty());
}
