//! Graceful binary upgrade (pingora's socket hand-over): a successor started with
//! `serve --upgrade` takes the listening sockets when the running node gets SIGQUIT, and
//! clients see no refused or failed request across the switch; a graceful stop answers the
//! connections it had accepted.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use support::{eventually, one_region, KillOnDrop, Node, Origin, Reply, HOST};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_successor_takes_the_sockets_over_without_a_failed_request() {
    let origin = Origin::builder()
        .route("/", Reply::ok("ok").header("cache-control", "no-store"))
        .start()
        .await;
    let mut node = Node::start(&one_region(&[origin.addr()], "")).await;
    // A fresh connection per request: each one is accepted by whichever process holds the
    // listening socket at that moment.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .resolve(HOST, node.http)
        .build()
        .unwrap();
    let url = node.url(HOST, "/");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    eventually("load is flowing", || async {
        ok.load(Ordering::Relaxed) > 20
    })
    .await;

    let successor = KillOnDrop(node.spawn_successor());
    node.signal("QUIT");
    // pingora's hand-over retries once a second on both sides, then the old process drains
    // for its grace period (1 s) and shutdown timeout (up to 5 s).
    let deadline = std::time::Instant::now() + support::patience() * 3;
    while !node.exited() {
        assert!(
            std::time::Instant::now() < deadline,
            "the old process never handed over and exited:\n{}\nsuccessor:\n{}",
            node.stderr(),
            node.successor_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = ok.load(Ordering::Relaxed);
    eventually("the successor serves", || async {
        ok.load(Ordering::Relaxed) > before + 20
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    eprintln!(
        "{} requests served across the hand-over, {} failed",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a request failed across the hand-over"
    );
    drop(successor);
}

/// The race behind a rare failed request across a hand-over, made certain: a connection the
/// node accepted before it began to stop, whose request arrives after, is answered. (pingora
/// alone closes it unanswered: shutdown aborts every connection still waiting for a request,
/// fresh ones included.)
#[tokio::test]
async fn a_connection_accepted_before_a_stop_is_answered_after_it() {
    let origin = Origin::builder()
        .route("/", Reply::ok("ok").header("cache-control", "no-store"))
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let mut early = tokio::net::TcpStream::connect(node.http).await.unwrap();
    eventually("the node has accepted the connection", || async {
        node.metric("meridian_connections_open").await >= 1.0
    })
    .await;

    node.signal("TERM");
    // The listener closes when the accept loops end, just before pingora's shutdown clean-up.
    eventually("the node stops accepting", || async {
        tokio::net::TcpStream::connect(node.http).await.is_err()
    })
    .await;
    early
        .write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(support::patience(), early.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_ok() && answer.starts_with("HTTP/1.1 200"),
        "the early connection got {answer:?} ({read:?}):\n{}",
        node.stderr()
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "a stopping node closes the connection after the answer: {answer:?}"
    );
}
