//! `[limits]`: each limit crossed by a real client over loopback, answered with its
//! documented status (or a closed connection), while well-behaved clients are served.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{eventually, one_region, patience, Node, Origin, Reply, HOST};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Reads until the end of a response head (or the connection closes); returns it.
async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + patience();
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && Instant::now() < deadline {
        match tokio::time::timeout(patience(), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Sends `raw` on a new connection from `from` and returns the response head.
async fn exchange_from(node: &Node, from: [u8; 4], raw: &str) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = socket.connect(node.http).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    read_head(&mut s).await
}

async fn exchange(node: &Node, raw: &str) -> String {
    exchange_from(node, [127, 0, 0, 1], raw).await
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{extra}Connection: close\r\n\r\n")
}

/// Waits for the server to close `s` (read gives 0 or an error); returns when it did.
async fn closed_at(s: &mut TcpStream, limit: Duration) -> Option<Instant> {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

async fn ok_origin() -> Origin {
    let reply = Reply::ok("ok")
        .header("cache-control", "no-store")
        .read_body();
    Origin::builder()
        .route("/", reply.clone())
        .route("/upload", reply)
        .start()
        .await
}

#[tokio::test]
async fn uri_header_count_and_header_size_limits() {
    let origin = ok_origin().await;
    let limits =
        "[limits]\nmax_uri_bytes = \"64B\"\nmax_headers = 8\nmax_header_bytes = \"1KiB\"\n";
    let node = Node::start(&one_region(&[origin.addr()], limits)).await;

    assert!(exchange(&node, &get("/", ""))
        .await
        .starts_with("HTTP/1.1 200"));
    let long = format!("/{}", "a".repeat(64));
    let head = exchange(&node, &get(&long, "")).await;
    assert!(head.starts_with("HTTP/1.1 414"), "long target: {head}");
    let fields: String = (0..8).map(|i| format!("X-F{i}: v\r\n")).collect();
    let head = exchange(&node, &get("/", &fields)).await;
    assert!(
        head.starts_with("HTTP/1.1 431"),
        "nine fields and Host: {head}"
    );
    let cookie = format!("Cookie: {}\r\n", "c".repeat(1024));
    let head = exchange(&node, &get("/", &cookie)).await;
    assert!(head.starts_with("HTTP/1.1 431"), "a 1 KiB cookie: {head}");
    assert_eq!(
        origin.total_hits(),
        1,
        "only the well-formed request reached the origin"
    );
    for limit in ["max_uri_bytes", "max_headers", "max_header_bytes"] {
        let series = format!("meridian_requests_refused_total{{limit=\"{limit}\"}}");
        assert_eq!(node.metric(&series).await, 1.0, "{series}");
    }
}

#[tokio::test]
async fn request_bodies_over_the_route_or_node_limit_get_413() {
    let origin = ok_origin().await;
    let extra = "[[sites.routes]]\npath = \"/upload\"\nmax_request_body = \"1KiB\"\n\n\
                 [limits]\nmax_request_body = \"4KiB\"\n";
    let node = Node::start(&one_region(&[origin.addr()], extra)).await;
    let post = |path: &str, len: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{}",
            "b".repeat(len)
        )
    };
    assert!(exchange(&node, &post("/upload", 1024))
        .await
        .starts_with("HTTP/1.1 200"));
    let head = exchange(&node, &post("/upload", 1025)).await;
    assert!(
        head.starts_with("HTTP/1.1 413"),
        "over the route's 1 KiB: {head}"
    );
    assert!(exchange(&node, &post("/", 4096))
        .await
        .starts_with("HTTP/1.1 200"));
    let head = exchange(&node, &post("/", 4097)).await;
    assert!(
        head.starts_with("HTTP/1.1 413"),
        "over the node's 4 KiB: {head}"
    );
    assert_eq!(
        origin.total_hits(),
        2,
        "a declared oversize body never reaches an origin"
    );

    // A chunked body declares no length: it is counted as it arrives.
    let chunk = "c".repeat(600);
    let chunked = format!(
        "POST /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let head = exchange(&node, &chunked).await;
    assert!(
        head.starts_with("HTTP/1.1 413"),
        "1200 chunked bytes over 1 KiB: {head}"
    );
    assert_eq!(
        node.metric("meridian_requests_refused_total{limit=\"max_request_body\"}")
            .await,
        3.0
    );
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let origin = ok_origin().await;
    // One request per 10 s after a burst of 3: the 4th at once is over, whatever the machine.
    let limits = "[limits]\nrate_per_ip = 0.1\nrate_burst = 3\n";
    let node = Node::start(&one_region(&[origin.addr()], limits)).await;
    for i in 0..3 {
        let head = exchange(&node, &get("/", "")).await;
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "request {i} within the burst: {head}"
        );
    }
    let head = exchange(&node, &get("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 429"), "4th request: {head}");
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("retry-after: ")
                .or_else(|| l.strip_prefix("Retry-After: "))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        (1..=10).contains(&retry),
        "Retry-After {retry} within one token's 10 s: {head}"
    );
    // The bucket is per address: another client is served.
    let other = exchange_from(&node, [127, 0, 0, 2], &get("/", "")).await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another address: {other}"
    );
    assert_eq!(origin.total_hits(), 4);
}

#[tokio::test]
async fn connections_over_the_per_ip_or_total_limit_get_503() {
    let origin = ok_origin().await;
    let limits = "[limits]\nmax_connections = 3\nmax_connections_per_ip = 2\n";
    let node = Node::start(&one_region(&[origin.addr()], limits)).await;
    let keep = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    // Kept-alive connections, each proven admitted by an answer.
    let hold = |from: [u8; 4]| {
        let keep = keep.clone();
        async move {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::from((from, 0))).unwrap();
            let mut s = socket.connect(node.http).await.unwrap();
            s.write_all(keep.as_bytes()).await.unwrap();
            assert!(read_head(&mut s).await.starts_with("HTTP/1.1 200"));
            s
        }
    };
    let mut held = vec![hold([127, 0, 0, 1]).await, hold([127, 0, 0, 1]).await];
    let head = exchange(&node, &get("/", "")).await;
    assert!(
        head.starts_with("HTTP/1.1 503"),
        "third from one address: {head}"
    );
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    held.push(hold([127, 0, 0, 2]).await);
    let head = exchange_from(&node, [127, 0, 0, 3], &get("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 503"), "fourth in all: {head}");
    assert_eq!(
        node.metric("meridian_connections_refused_total{limit=\"max_connections_per_ip\"}")
            .await,
        1.0
    );
    assert_eq!(
        node.metric("meridian_connections_refused_total{limit=\"max_connections\"}")
            .await,
        1.0
    );
    // A closed connection gives its place back.
    drop(held.remove(0));
    eventually("a place freed by a closed connection", || async {
        exchange(&node, &get("/", ""))
            .await
            .starts_with("HTTP/1.1 200")
    })
    .await;
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_after_the_header_timeout_while_others_are_served() {
    let origin = ok_origin().await;
    let limits = "[limits]\nheader_timeout = \"1s\"\nkeepalive_timeout = \"30s\"\n";
    let node = Node::start(&one_region(&[origin.addr()], limits)).await;

    // Timed from before the connection: the node's clock starts at accept, after this.
    let started = Instant::now();
    let mut slow = TcpStream::connect(node.http).await.unwrap();
    let trickle = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ");
    let mut cut = None;
    let mut served_meanwhile = 0;
    for byte in trickle.bytes().chain(std::iter::repeat(b'a')) {
        if slow.write_all(&[byte]).await.is_err() {
            cut = Some(Instant::now());
            break;
        }
        // Another client is served between two bytes of the slow one.
        if exchange(&node, &get("/", ""))
            .await
            .starts_with("HTTP/1.1 200")
        {
            served_meanwhile += 1;
        }
        if let Some(at) = closed_at(&mut slow, Duration::from_millis(300)).await {
            cut = Some(at);
            break;
        }
        assert!(
            started.elapsed() < patience() + Duration::from_secs(1),
            "never cut off"
        );
    }
    let after = cut.unwrap().duration_since(started);
    eprintln!("slowloris cut after {after:?}; {served_meanwhile} other requests served meanwhile");
    assert!(
        after >= Duration::from_secs(1),
        "cut before the 1 s header timeout: {after:?}"
    );
    assert!(served_meanwhile >= 2, "other clients were not served");

    // An idle new connection is also cut at the header timeout.
    let opened = Instant::now();
    let mut idle = TcpStream::connect(node.http).await.unwrap();
    let at = closed_at(&mut idle, patience())
        .await
        .expect("idle connection kept open");
    assert!(at.duration_since(opened) >= Duration::from_secs(1));

    // A kept-alive connection idle longer than the header timeout (but within
    // keepalive_timeout) is not: the header clock starts at the next request's first byte.
    let mut kept = TcpStream::connect(node.http).await.unwrap();
    let keep = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    kept.write_all(keep.as_bytes()).await.unwrap();
    assert!(read_head(&mut kept).await.starts_with("HTTP/1.1 200"));
    assert!(closed_at(&mut kept, Duration::from_millis(1500))
        .await
        .is_none());
    kept.write_all(keep.as_bytes()).await.unwrap();
    assert!(read_head(&mut kept).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn idle_keepalive_connections_close_and_a_stalled_body_gets_408() {
    let origin = ok_origin().await;
    let limits = "[limits]\nkeepalive_timeout = \"1s\"\nbody_timeout = \"1s\"\n";
    let node = Node::start(&one_region(&[origin.addr()], limits)).await;

    let mut kept = TcpStream::connect(node.http).await.unwrap();
    let keep = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    kept.write_all(keep.as_bytes()).await.unwrap();
    assert!(read_head(&mut kept).await.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let at = closed_at(&mut kept, patience())
        .await
        .expect("idle keep-alive kept open");
    let idle = at.duration_since(answered);
    assert!(
        idle >= Duration::from_millis(900),
        "closed after {idle:?}, before 1 s"
    );

    let mut s = TcpStream::connect(node.http).await.unwrap();
    let head = format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10\r\n\r\nhalf!");
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_head(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "stalled body: {answer}");
    assert_eq!(
        node.metric("meridian_requests_refused_total{limit=\"body_timeout\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rate_is_per_forwarded_client() {
    let origin = ok_origin().await;
    let limits = "[limits]\nrate_per_ip = 0.1\nrate_burst = 2\n";
    let config = support::behind_trusted_proxy(&one_region(&[origin.addr()], limits));
    let node = Node::start(&config).await;
    let from = |client: &str| get("/", &format!("X-Forwarded-For: {client}\r\n"));
    for _ in 0..2 {
        assert!(exchange(&node, &from("203.0.113.7"))
            .await
            .starts_with("HTTP/1.1 200"));
    }
    let head = exchange(&node, &from("203.0.113.7")).await;
    assert!(
        head.starts_with("HTTP/1.1 429"),
        "third from one client: {head}"
    );
    let head = exchange(&node, &from("203.0.113.8")).await;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "another client behind the same proxy has its own bucket: {head}"
    );
}

#[tokio::test]
async fn issue_13_ipv6_clients_share_a_rate_bucket_per_64() {
    let origin = ok_origin().await;
    let limits = "[limits]\nrate_per_ip = 0.1\nrate_burst = 2\n";
    let config = support::behind_trusted_proxy(&one_region(&[origin.addr()], limits));
    let node = Node::start(&config).await;
    let from = |client: &str| get("/", &format!("X-Forwarded-For: {client}\r\n"));
    // Three addresses of one /64: one bucket of two.
    for client in ["2001:db8:7:1::1", "2001:db8:7:1::2"] {
        let head = exchange(&node, &from(client)).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{client}: {head}");
    }
    let head = exchange(&node, &from("2001:db8:7:1:ffff::9")).await;
    assert!(
        head.starts_with("HTTP/1.1 429"),
        "a third address of the same /64 shares the bucket: {head}"
    );
    let head = exchange(&node, &from("2001:db8:7:2::1")).await;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "another /64 has its own bucket: {head}"
    );
}
