//! The keep-alive pool of origin connections (vendor/README.md, change 4): requests reuse one
//! idle connection, a connection the origin closed while idle is never reused, and idle
//! connections are closed after `upstream.idle_timeout`, all seen from a real origin socket.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use support::{eventually, one_region, patience, Node, HOST};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 origin on raw sockets that counts, per connection, what a pool does to it.
/// Only connections that carried a request under `/pool/` are counted (health checks are not).
#[derive(Clone, Default)]
struct CountingOrigin {
    /// Connections that carried a `/pool/` request.
    opened: Arc<AtomicUsize>,
    /// Of those, connections the proxy closed (the origin read end-of-stream).
    closed_by_proxy: Arc<AtomicUsize>,
    /// Of those, connections the origin closed itself after answering.
    closed_by_origin: Arc<AtomicUsize>,
    /// Close each connection right after its answer (with no `Connection: close`, as an
    /// origin whose own keep-alive timer fires between two requests).
    close_after_reply: Arc<AtomicBool>,
}

impl CountingOrigin {
    async fn start() -> (CountingOrigin, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let origin = CountingOrigin::default();
        let counts = origin.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(counts.clone().serve(conn));
            }
        });
        (origin, addr)
    }

    async fn serve(self, mut conn: TcpStream) {
        let mut pooled = false;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                match conn.read(&mut chunk).await {
                    Ok(n) if n > 0 => {
                        buf.extend_from_slice(&chunk[..n]);
                        continue;
                    }
                    _ => {
                        if pooled {
                            self.closed_by_proxy.fetch_add(1, Ordering::SeqCst);
                        }
                        return;
                    }
                }
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let target = head.split(' ').nth(1).unwrap_or("").to_owned();
            if target.starts_with("/pool/") && !pooled {
                pooled = true;
                self.opened.fetch_add(1, Ordering::SeqCst);
            }
            let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nok";
            if conn.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            if pooled && self.close_after_reply.load(Ordering::SeqCst) {
                // Closed before it is counted: once the test sees the count, the FIN is in the
                // node's socket, and the node's next request comes after it.
                drop(conn);
                self.closed_by_origin.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }

    fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }
}

/// One keep-alive client connection to the node. Requests on it are handled one after the
/// other by one task of the node, which gives its origin connection back to the pool before it
/// reads the next request: what the tests count does not depend on scheduling (separate client
/// connections would race the release).
struct Client {
    conn: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(node: &Node) -> Client {
        Client {
            conn: TcpStream::connect(node.http).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// GETs `path` and checks the origin's answer came back whole.
    async fn get_ok(&mut self, path: &str) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        self.conn.write_all(request.as_bytes()).await.unwrap();
        let deadline = tokio::time::Instant::now() + patience();
        let (head, body_len) = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                self.buf.drain(..end + 4);
                break (head, len);
            }
            self.read_more(deadline, || {
                format!("the node closed the connection before answering GET {path}")
            })
            .await;
        };
        while self.buf.len() < body_len {
            self.read_more(deadline, || {
                format!("the node closed the connection inside the body of GET {path}")
            })
            .await;
        }
        let body: Vec<u8> = self.buf.drain(..body_len).collect();
        assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
        assert_eq!(body, b"ok", "GET {path}");
    }

    /// Reads what the node sent next into the buffer, by `deadline`; `closed` says what a
    /// close at this point means.
    async fn read_more(&mut self, deadline: tokio::time::Instant, closed: impl Fn() -> String) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, self.conn.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{}", closed());
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// A node in front of `origin` with `upstream` (TOML lines) added to its `[upstream]` table,
/// and one keep-alive client connection to it.
async fn node_and_client(origin: SocketAddr, upstream: &str) -> (Node, Client) {
    let config = one_region(&[origin], "").replace(
        "read_timeout = \"5s\"\n",
        &format!("read_timeout = \"5s\"\n{upstream}"),
    );
    let node = Node::start(&config).await;
    let client = Client::connect(&node).await;
    (node, client)
}

#[tokio::test]
async fn sequential_requests_reuse_one_origin_connection() {
    let (origin, addr) = CountingOrigin::start().await;
    let (_node, mut client) = node_and_client(addr, "").await;
    for i in 0..5 {
        client.get_ok(&format!("/pool/{i}")).await;
    }
    assert_eq!(
        origin.opened(),
        1,
        "five requests in a row should share one origin connection"
    );
    assert_eq!(origin.closed_by_proxy.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_connection_the_origin_closed_while_idle_is_not_reused() {
    let (origin, addr) = CountingOrigin::start().await;
    // One attempt: a reused dead connection would fail the request instead of being retried.
    let (_node, mut client) = node_and_client(addr, "max_attempts = 1\n").await;
    origin.close_after_reply.store(true, Ordering::SeqCst);
    for i in 0..3 {
        client.get_ok(&format!("/pool/close-{i}")).await;
        eventually(
            "the origin closed the connection it answered on",
            || async { origin.closed_by_origin.load(Ordering::SeqCst) == i + 1 },
        )
        .await;
    }
    origin.close_after_reply.store(false, Ordering::SeqCst);
    client.get_ok("/pool/after").await;
    client.get_ok("/pool/after-again").await;
    assert_eq!(
        origin.opened(),
        4,
        "each closed connection is replaced by a new one, and the last is kept for reuse"
    );
}

#[tokio::test]
async fn idle_origin_connections_are_closed_after_the_idle_timeout() {
    let (origin, addr) = CountingOrigin::start().await;
    let (_node, mut client) = node_and_client(addr, "idle_timeout = \"1s\"\n").await;
    client.get_ok("/pool/idle").await;
    assert_eq!(origin.closed_by_proxy.load(Ordering::SeqCst), 0);
    // The pool's sweep runs every second: the connection goes within about two seconds.
    eventually(
        "the idle origin connection was closed by the node",
        || async { origin.closed_by_proxy.load(Ordering::SeqCst) == 1 },
    )
    .await;
    client.get_ok("/pool/after-idle").await;
    assert_eq!(
        origin.opened(),
        2,
        "a request after the timeout opens a new connection"
    );
}
