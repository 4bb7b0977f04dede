//! Disk hits sent with `sendfile` (issue 15's 64 KiB disk hits): over plain HTTP/1 a disk
//! object's fragment of up to 64 KiB goes from its segment file to the socket without being
//! read into memory, byte for byte, beside larger fragments that are read, with responses
//! framed exactly so the connection carries the next one; a range, and a hit that promotes
//! its object to memory, read the bytes as before.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::disk::{cacheable_origin, config, start_ready, stop, store_on_disk};
use support::{raw_exchange, Node, HOST};

/// Bytes that differ at every offset within a fragment's length (a misplaced region shows).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 24) as u8)
        .collect()
}

/// The responses in `raw`, each as (head, body), framed by their `Content-Length`.
fn responses(mut raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("a response head: {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("a Content-Length in {head}"))
            .trim()
            .parse()
            .unwrap();
        let body = &raw[end + 4..];
        assert!(
            body.len() >= len,
            "a body of {len} bytes, got {}",
            body.len()
        );
        out.push((head, body[..len].to_vec()));
        raw = &body[len..];
    }
    out
}

async fn sent(node: &Node, via: &str) -> f64 {
    node.metric(&format!(
        "meridian_disk_cache_hit_bytes_total{{via=\"{via}\"}}"
    ))
    .await
}

// The origin runs on the test's runtime while the raw exchange blocks a thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_disk_hits_leave_by_sendfile_byte_for_byte_on_a_keep_alive_connection() {
    // /a is two 256 KiB fragments (read: longer than what is sent from the file) and one of
    // 30,000 bytes (sent from the file); /b is one fragment of 60,000 bytes.
    const FRAGMENT: usize = 256 << 10;
    let (a, b) = (pattern(2 * FRAGMENT + 30_000, 1), pattern(60_000, 2));
    let origin = cacheable_origin(&[("/a", a.clone()), ("/b", b.clone())]).await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_ready(&config(&origin, dir.path())).await;
    store_on_disk(&node, "/a", 1.0).await;
    store_on_disk(&node, "/b", 2.0).await;
    stop(node).await;
    // Memory is empty after the restart: every hit below is the disk tier's.
    let node = start_ready(&config(&origin, dir.path())).await;

    // Pipelined, so that each response must end exactly where its Content-Length says for
    // the next to parse: /a and /b each hit once, then a range of /a, then /a again (its
    // second hit promotes it: read, since memory needs the bytes).
    let request = format!(
        "GET /a HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         GET /b HTTP/1.1\r\nHost: {HOST}\r\n\r\n\
         GET /a HTTP/1.1\r\nHost: {HOST}\r\nRange: bytes=300000-300099\r\n\r\n\
         GET /a HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    );
    let raw = tokio::task::block_in_place(|| raw_exchange(node.http, request.as_bytes()));
    let got = responses(&raw);
    assert_eq!(got.len(), 4, "four responses on one connection");
    for (head, _) in &got {
        assert!(head.contains("hit; detail=disk"), "a disk hit: {head}");
    }
    assert!(got[0].0.starts_with("HTTP/1.1 200"), "{}", got[0].0);
    assert!(got[0].1 == a, "/a byte for byte");
    assert!(got[1].1 == b, "/b byte for byte");
    assert!(got[2].0.starts_with("HTTP/1.1 206"), "{}", got[2].0);
    assert_eq!(got[2].1, a[300_000..300_100]);
    assert!(got[3].1 == a, "/a again, byte for byte");
    assert_eq!(origin.hits("/a"), 1, "no origin request after the restart");

    assert_eq!(
        sent(&node, "sendfile").await,
        (30_000 + b.len()) as f64,
        "/a's last fragment and /b were sent from the segment file"
    );
    assert_eq!(
        sent(&node, "read").await,
        (2 * FRAGMENT + 100 + a.len()) as f64,
        "/a's large fragments, the range and the promoting hit were read"
    );
    assert_eq!(
        node.metric("meridian_disk_cache_events_total{event=\"promotion\"}")
            .await,
        1.0
    );
}
