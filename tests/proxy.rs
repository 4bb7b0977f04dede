//! Proxying end to end: routing by host and path, forwarding headers, origin failover.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use support::{config, one_region, Node, Origin, Reply, HOST};

/// Sends raw bytes to the node and returns the whole response text.
fn raw_exchange(node: &Node, request: &[u8]) -> String {
    String::from_utf8_lossy(&support::raw_exchange(node.http, request)).into_owned()
}

// The origin runs on the test's runtime while the raw exchange blocks a thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    // RFC 9112 §9.3.2, as nginx does it: requests sent before the previous response came are
    // answered one after another, a body between them included.
    let origin = Origin::builder()
        .route(
            "/a",
            Reply::ok("alpha").header("cache-control", "max-age=60"),
        )
        .route("/b", Reply::ok("bravo").header("cache-control", "no-store"))
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let request = format!(
        "GET /a HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         POST /b HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 3\r\n\r\nxyz\
         GET /a HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         GET /b HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    );
    let text = raw_exchange(&node, request.as_bytes());
    let statuses = text.matches("HTTP/1.1 200 OK").count();
    assert_eq!(statuses, 4, "four answers on one connection: {text}");
    let bodies: Vec<usize> = ["alpha", "bravo", "alpha", "bravo"]
        .iter()
        .scan(0, |from, body| {
            let at = text[*from..].find(body).map(|i| i + *from)?;
            *from = at + body.len();
            Some(at)
        })
        .collect();
    assert_eq!(bodies.len(), 4, "answers out of order: {text}");
    assert_eq!(origin.hits("/a"), 1, "the second /a is a hit");
    assert_eq!(origin.hits("/b"), 2);
}

#[tokio::test]
async fn proxies_to_the_origin_and_adds_forwarding_headers_and_a_traceparent() {
    let origin = Origin::builder()
        .route("/hello", Reply::ok("hi there"))
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let resp = node
        .client(&[HOST])
        .get(node.url(HOST, "/hello?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["via"], "1.1 edge-test");
    assert_eq!(resp.text().await.unwrap(), "hi there");

    let req = origin.requests().pop().unwrap();
    assert_eq!(req.target, "/hello?x=1");
    assert_eq!(req.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(req.headers["x-forwarded-proto"], "http");
    assert_eq!(req.headers["via"], "1.1 edge-test");
    assert!(req.headers["host"].to_str().unwrap().starts_with(HOST));
    let tp = req.headers["traceparent"].to_str().unwrap();
    assert_eq!(tp.len(), 55, "{tp}");
    assert!(tp.starts_with("00-") && tp.ends_with("-01"), "{tp}");
}

#[tokio::test]
async fn a_client_traceparent_and_forwarded_for_pass_through() {
    let origin = Origin::builder().route("/t", Reply::ok("t")).start().await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    node.client(&[HOST])
        .get(node.url(HOST, "/t"))
        .header("traceparent", tp)
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let req = origin.requests().pop().unwrap();
    assert_eq!(req.headers["traceparent"], tp);
    assert_eq!(req.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    support::eventually("access log line", || {
        let n = node.access_log().len();
        async move { n >= 1 }
    })
    .await;
    let line = node.access_log().pop().unwrap();
    assert_eq!(line["trace_id"], "0af7651916cd43dd8448eb211c80319c");
}

#[tokio::test]
async fn host_routing_is_case_insensitive_ignores_the_port_and_picks_the_site() {
    let a = Origin::builder()
        .route("/", Reply::ok("site a"))
        .start()
        .await;
    let b = Origin::builder()
        .route("/", Reply::ok("site b"))
        .start()
        .await;
    let extra = format!(
        "[[regions]]\nname = \"b-region\"\nlocation = {{ lat = 0.0, lon = 0.0 }}\norigins = [\"{}\"]\n\n\
         [[sites]]\nname = \"b\"\nhosts = [\"b.local\"]\n[[sites.routes]]\npath = \"/\"\nregions = [\"b-region\"]\n",
        b.addr()
    );
    let node = Node::start(&one_region(&[a.addr()], &extra)).await;
    let client = node.client(&[HOST, "b.local", "B.LOCAL"]);
    let body = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(body(node.url(HOST, "/")).await, "site a");
    assert_eq!(body(node.url("b.local", "/")).await, "site b");
    assert_eq!(body(node.url("B.LOCAL", "/")).await, "site b");
}

#[tokio::test]
async fn an_unknown_host_gets_421_and_reaches_no_origin() {
    let origin = Origin::builder().route("/", Reply::ok("x")).start().await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let resp = node
        .client(&["evil.example"])
        .get(node.url("evil.example", "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 421);
    assert_eq!(
        resp.headers()["cache-status"],
        "edge-test; fwd=bypass; detail=unknown-host"
    );
    assert_eq!(origin.total_hits(), 0);
}

#[tokio::test]
async fn a_request_without_host_gets_400() {
    let origin = Origin::builder().route("/", Reply::ok("x")).start().await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let out = raw_exchange(&node, b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        out.starts_with("HTTP/1.1 400") || out.starts_with("HTTP/1.0 400"),
        "{out}"
    );
    assert_eq!(origin.total_hits(), 0);
}

#[tokio::test]
async fn an_absolute_form_request_for_another_host_is_not_proxied() {
    let origin = Origin::builder().route("/", Reply::ok("x")).start().await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let out = raw_exchange(
        &node,
        b"GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 421"), "{out}");
    assert_eq!(origin.total_hits(), 0);
}

#[tokio::test]
async fn the_longest_path_prefix_picks_the_route_and_its_regions() {
    let web = Origin::builder()
        .route("/api/v1/x", Reply::ok("web"))
        .start()
        .await;
    let api = Origin::builder()
        .route("/api/v1/x", Reply::ok("api"))
        .start()
        .await;
    let cfg = config(
        &[
            ("web", 53.35, -6.26, &[web.addr()]),
            ("api", 39.04, -77.49, &[api.addr()]),
        ],
        "[[sites.routes]]\npath = \"/api/\"\ncache = false\nregions = [\"api\"]\n",
    );
    let node = Node::start(&cfg).await;
    let client = node.client(&[HOST]);
    let text = client
        .get(node.url(HOST, "/api/v1/x"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "api");
    let other = client.get(node.url(HOST, "/apix")).send().await.unwrap();
    assert_eq!(other.status(), 404, "the '/' route goes to the web origin");
    assert_eq!(web.hits("/apix"), 1);
}

#[tokio::test]
async fn a_dead_origin_is_skipped_and_every_request_succeeds() {
    let live = Origin::builder()
        .route("/d", Reply::ok("alive").header("cache-control", "no-store"))
        .start()
        .await;
    let dead = support::node::free_addr();
    let node = Node::start(&one_region(&[dead, live.addr()], "")).await;
    let client = node.client(&[HOST]);
    for _ in 0..10 {
        let resp = client.get(node.url(HOST, "/d")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "alive");
    }
    assert_eq!(live.hits("/d"), 10);
    // About half the requests tried the dead origin first and were retried.
    let connect_errors = node
        .metric("meridian_upstream_errors_total{kind=\"connect\",site=\"test\"}")
        .await;
    assert!(connect_errors >= 1.0, "{connect_errors}");
}

#[tokio::test]
async fn a_dead_region_fails_over_to_the_next() {
    let far = Origin::builder()
        .route("/f", Reply::ok("far"))
        .start()
        .await;
    let dead = support::node::free_addr();
    let cfg = config(
        &[
            ("near", 53.35, -6.26, &[dead]),
            ("far", 39.04, -77.49, &[far.addr()]),
        ],
        "",
    );
    let node = Node::start(&cfg).await;
    let resp = node
        .client(&[HOST])
        .get(node.url(HOST, "/f"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "far");
}

#[tokio::test]
async fn no_reachable_origin_is_a_502() {
    let node = Node::start(&one_region(
        &[support::node::free_addr(), support::node::free_addr()],
        "",
    ))
    .await;
    let resp = node
        .client(&[HOST])
        .get(node.url(HOST, "/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(
        resp.headers()["cache-status"],
        "edge-test; fwd=uri-miss; detail=upstream-error"
    );
}

#[tokio::test]
async fn origin_weights_share_the_traffic() {
    let light = Origin::builder()
        .route("/w", Reply::ok("l").header("cache-control", "no-store"))
        .start()
        .await;
    let heavy = Origin::builder()
        .route("/w", Reply::ok("h").header("cache-control", "no-store"))
        .start()
        .await;
    let extra = "";
    let cfg = support::config(&[("r", 53.35, -6.26, &[light.addr()])], extra).replace(
        &format!("origins = [\"{}\"]", light.addr()),
        &format!(
            "origins = [\"{}\", {{ addr = \"{}\", weight = 3 }}]",
            light.addr(),
            heavy.addr()
        ),
    );
    let node = Node::start(&cfg).await;
    let client = node.client(&[HOST]);
    for _ in 0..40 {
        assert_eq!(
            client
                .get(node.url(HOST, "/w"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!((light.hits("/w"), heavy.hits("/w")), (10, 30));
}

#[tokio::test]
async fn a_request_that_already_passed_this_node_is_a_loop() {
    let origin = Origin::builder().route("/", Reply::ok("x")).start().await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let resp = node
        .client(&[HOST])
        .get(node.url(HOST, "/"))
        .header("via", "1.1 edge-test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 508);
    assert_eq!(origin.total_hits(), 0);
}

/// The body of `len` bytes that `/s/LEN` and `/d/LEN` answer: no two neighbours alike, so a
/// byte lost, doubled or moved shows.
fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Splits a stream of HTTP/1.1 responses into (status line, body), by Content-Length.
fn split_responses(mut stream: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let end = stream.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = std::str::from_utf8(&stream[..end]).unwrap();
        let status = head.lines().next().unwrap().to_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no content-length in {head}"));
        out.push((status, stream[end..end + len].to_vec()));
        stream = &stream[end + len..];
    }
    out
}

/// One request on a fresh connection whose receive buffer is 4 KiB, so the node's writes of
/// any larger response are partial; returns all the bytes received.
fn fetch_through_a_small_window(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut s: std::net::TcpStream = socket.into();
    s.set_read_timeout(Some(support::patience())).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// A response header is buffered and sent with its body in one write (vendor/README.md): on
/// both sides of the 1460-byte write buffer, from the cache and from the origin, and through
/// a 4 KiB receive window that makes the node's writes partial, every body arrives whole.
#[tokio::test]
async fn responses_of_every_size_arrive_whole_when_writes_are_partial() {
    let sizes = [0usize, 1, 1100, 1459, 1460, 1461, 4096, 65_536, 1 << 20];
    let mut builder = Origin::builder();
    for len in sizes {
        let stored = Reply::ok(patterned(len)).header("cache-control", "max-age=600");
        builder = builder.route(&format!("/s/{len}"), stored);
        builder = builder.route(&format!("/d/{len}"), Reply::ok(patterned(len)));
    }
    let origin = builder.start().await;
    let extra = "[[sites.routes]]\npath = \"/d/\"\ncache = false\n";
    let node = Node::start(&one_region(&[origin.addr()], extra)).await;
    for len in sizes {
        let resp = node.get(&format!("/s/{len}"), &[]).await;
        assert_eq!(resp.bytes().await.unwrap().len(), len);
    }

    let addr = node.http;
    for len in sizes {
        for path in [format!("/s/{len}"), format!("/d/{len}")] {
            let fetch = path.clone();
            let received =
                tokio::task::spawn_blocking(move || fetch_through_a_small_window(addr, &fetch))
                    .await
                    .unwrap();
            let responses = split_responses(&received);
            assert_eq!(responses.len(), 1, "{path}");
            let (status, body) = &responses[0];
            assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
            assert!(
                *body == patterned(len),
                "{path}: body of {} bytes differs",
                body.len()
            );
        }
    }
    // The stored ones came from the cache, the others from the origin.
    for len in sizes {
        assert_eq!(origin.hits(&format!("/s/{len}")), 1, "/s/{len}");
        assert_eq!(origin.hits(&format!("/d/{len}")), 1, "/d/{len}");
    }
}
