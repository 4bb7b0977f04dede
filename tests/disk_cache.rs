//! The disk tier end to end (issue 15): objects on disk are hits after a restart with no
//! origin request (ranges too), purges made before a restart still hold after it, a node
//! killed at any moment never serves a truncated or corrupted body afterwards, a directory
//! removed under the node costs no request, a full disk (a real tmpfs) degrades to memory
//! caching until space returns, bytes that cannot be read back are fetched again, and a
//! graceful upgrade hands the tier over.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use support::disk::{
    alphabet, cacheable_origin, config, kill, restarted_with, start_ready, stop, store_on_disk,
    Restarted,
};
use support::{eventually, header, one_region, Node, Origin, Reply};

#[tokio::test]
async fn issue_15_an_object_on_disk_is_a_hit_after_a_restart_with_no_origin_request() {
    let body = "on disk ".repeat(20_000); // 160 KB: several fragments' worth of chunks
    let reply = Reply::ok(body.clone()).header("cache-control", "max-age=3600");
    let Restarted { origin, node, .. } = restarted_with("/page", reply).await;
    let resp = node.get("/page", &[]).await;
    assert_eq!(resp.status(), 200);
    let status = header(&resp, "cache-status");
    assert_eq!(resp.text().await.unwrap(), body);
    assert!(status.ends_with("hit; detail=disk"), "{status}");
    assert_eq!(
        origin.hits("/page"),
        1,
        "no origin request after the restart"
    );
    assert_eq!(
        node.metric("meridian_disk_cache_events_total{event=\"hit\"}")
            .await,
        1.0
    );
    let disk = &node.status().await["cache"]["disk"];
    assert_eq!(disk["objects"], 1, "{disk}");
}

#[tokio::test]
async fn issue_15_purges_made_before_a_restart_still_hold_after_it() {
    let origin = Origin::builder()
        .route("/a", Reply::ok("a").header("cache-control", "max-age=3600"))
        .route(
            "/b",
            Reply::ok("b")
                .header("cache-control", "max-age=3600")
                .header("surrogate-key", "group-b"),
        )
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_ready(&config(&origin, dir.path())).await;
    store_on_disk(&node, "/a", 1.0).await;
    store_on_disk(&node, "/b", 2.0).await;
    let purge = |query: &str| {
        support::plain_client()
            .post(format!("http://{}/purge?{query}", node.admin))
            .header("authorization", "Bearer test-token")
            .send()
    };
    let url = format!("url=http://{}/a", support::HOST);
    assert_eq!(purge(&url).await.unwrap().status(), 200);
    assert_eq!(purge("tag=group-b").await.unwrap().status(), 200);
    stop(node).await;

    let node = start_ready(&config(&origin, dir.path())).await;
    for path in ["/a", "/b"] {
        let resp = node.get(path, &[]).await;
        let status = header(&resp, "cache-status");
        assert!(status.contains("fwd=uri-miss"), "{path} purged: {status}");
    }
    assert_eq!((origin.hits("/a"), origin.hits("/b")), (2, 2));
}

#[tokio::test]
async fn issue_15_a_node_killed_mid_write_never_serves_a_damaged_body_after_a_restart() {
    // Bodies a byte-exact check can tell apart; large enough that writes take a while.
    let bodies: Vec<String> = (0..6)
        .map(|i| format!("{i:03}-").repeat(50_000 + i * 7_001))
        .collect();
    let mut builder = Origin::builder();
    for (i, b) in bodies.iter().enumerate() {
        builder = builder.route(
            &format!("/obj/{i}"),
            Reply::ok(b.clone()).header("cache-control", "max-age=3600"),
        );
    }
    let origin = builder.start().await;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let node = start_ready(&config(&origin, dir.path())).await;
        // Every object twice, concurrently, so copies are being written when the kill comes.
        let client = node.client(&[support::HOST]);
        let asks: Vec<_> = (0..bodies.len() * 2)
            .map(|n| {
                let url = node.url(support::HOST, &format!("/obj/{}", n % bodies.len()));
                let client = client.clone();
                tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
            })
            .collect();
        // A different moment in each round: after 0, 1, 2, ... of the answers.
        for ask in asks.into_iter().take(round * 2) {
            let _ = ask.await;
        }
        kill(node).await;

        let node = start_ready(&config(&origin, dir.path())).await;
        for (i, body) in bodies.iter().enumerate() {
            let resp = node.get(&format!("/obj/{i}"), &[]).await;
            assert_eq!(resp.status(), 200);
            let got = resp.text().await.unwrap();
            assert!(
                got == *body,
                "round {round}: /obj/{i} came back with {} bytes, not the {} written",
                got.len(),
                body.len()
            );
        }
        stop(node).await;
    }
}

#[tokio::test]
async fn issue_15_a_disk_directory_removed_under_the_node_costs_no_request() {
    let bodies: Vec<String> = (0..8).map(|i| format!("{i}").repeat(800_000)).collect();
    let mut builder = Origin::builder();
    for (i, b) in bodies.iter().enumerate() {
        builder = builder.route(
            &format!("/big/{i}"),
            Reply::ok(b.clone()).header("cache-control", "max-age=3600"),
        );
    }
    let origin = builder.start().await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_ready(&config(&origin, dir.path())).await;
    std::fs::remove_dir_all(dir.path()).unwrap();
    // Enough bytes that the tier must start new segment files it can no longer create.
    for round in 0..3 {
        for (i, body) in bodies.iter().enumerate() {
            let resp = node.get(&format!("/big/{i}"), &[]).await;
            assert_eq!(resp.status(), 200, "round {round}, /big/{i}");
            assert_eq!(resp.text().await.unwrap(), *body);
        }
    }
    eventually("the write errors are counted", || async {
        node.metric("meridian_disk_cache_events_total{event=\"write_error\"}")
            .await
            >= 1.0
    })
    .await;
    assert!(
        node.stderr().contains("serving from memory meanwhile"),
        "the error is logged:\n{}",
        node.stderr()
    );
}

#[tokio::test]
async fn issue_15_a_range_of_a_disk_object_is_read_from_the_fragments_it_covers() {
    // 700 KB: three fragments on disk; the range spans the first two's boundary.
    let body = alphabet(700_000);
    let reply = Reply::ok(body.clone()).header("cache-control", "max-age=3600");
    let Restarted { origin, node, .. } = restarted_with("/file", reply).await;
    let (start, end) = (262_000usize, 262_299usize);
    let resp = node
        .get("/file", &[("range", &format!("bytes={start}-{end}"))])
        .await;
    assert_eq!(resp.status(), 206);
    assert!(header(&resp, "cache-status").ends_with("hit; detail=disk"));
    assert_eq!(
        header(&resp, "content-range"),
        format!("bytes {start}-{end}/{}", body.len())
    );
    assert_eq!(resp.text().await.unwrap(), body[start..=end]);
    assert_eq!(origin.hits("/file"), 1);
}

#[tokio::test]
async fn issue_15_a_successor_takes_the_disk_tier_over_when_the_old_process_lets_go() {
    let origin = Origin::builder()
        .route(
            "/kept",
            Reply::ok("kept across the upgrade").header("cache-control", "max-age=3600"),
        )
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_ready(&config(&origin, dir.path())).await;
    store_on_disk(&node, "/kept", 1.0).await;

    let _successor = support::KillOnDrop(node.spawn_successor());
    node.signal("QUIT");
    // pingora's hand-over: the old process waits 5 s for the successor, then drains for its
    // grace period before it exits (and lets go of the lock).
    let deadline = std::time::Instant::now() + support::patience() * 3;
    while !node.exited() {
        assert!(
            std::time::Instant::now() < deadline,
            "the old process never exited:\n{}",
            node.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The successor waited for the directory's lock, then opened the same log.
    eventually("the successor's disk tier is ready", || async {
        node.status().await["cache"]["disk"]["ready"] == true
    })
    .await;
    let resp = node.get("/kept", &[]).await;
    assert!(
        header(&resp, "cache-status").ends_with("hit; detail=disk"),
        "{}\nsuccessor:\n{}",
        header(&resp, "cache-status"),
        node.successor_log()
    );
    assert_eq!(resp.text().await.unwrap(), "kept across the upgrade");
    assert_eq!(origin.hits("/kept"), 1);
}

/// Runs the node in a mount namespace of its own where `dir` is a tmpfs of `bytes` bytes:
/// a disk that really fills up. The mount goes away with the process.
fn on_a_small_tmpfs(dir: &Path, bytes: u64) -> Vec<String> {
    let script = format!(
        "mount -t tmpfs -o size={bytes} meridian-test '{}' && exec \"$@\"",
        dir.display()
    );
    ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
        .into_iter()
        .map(String::from)
        .chain([script, "sh".to_string()])
        .collect()
}

/// Writes into `path` until the filesystem has no byte left.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let mut chunk = 1 << 20;
    while chunk > 0 {
        match file.write(&vec![0u8; chunk]) {
            Ok(n) if n == chunk => {}
            Ok(_) => chunk /= 2,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                chunk /= 2;
            }
        }
    }
}

#[tokio::test]
async fn issue_15_a_full_disk_degrades_to_memory_caching_and_writes_resume_when_space_returns() {
    let bodies: Vec<String> = (0..12).map(|i| format!("{i:x}").repeat(200_000)).collect();
    let mut builder = Origin::builder();
    for (i, b) in bodies.iter().enumerate() {
        builder = builder.route(
            &format!("/obj/{i}"),
            Reply::ok(b.clone()).header("cache-control", "max-age=3600"),
        );
    }
    let origin = builder.start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = one_region(
        &[origin.addr()],
        &format!(
            "[cache]\nmax_object = \"1MiB\"\n\n[cache.disk]\npath = {:?}\nsize = \"6MiB\"\n\
             max_object = \"1MiB\"\n",
            dir.path()
        ),
    );
    let node = Node::start_wrapped(&config, &on_a_small_tmpfs(dir.path(), 8 << 20)).await;
    support::disk::wait_ready(&node).await;
    store_on_disk(&node, "/obj/0", 1.0).await;

    // The node's tmpfs, seen through its own mount namespace, filled by someone else.
    let filler = Path::new(&format!("/proc/{}/root", node.pid()))
        .join(dir.path().strip_prefix("/").unwrap())
        .join("filler");
    fill_up(&filler);
    for round in 0..3 {
        for (i, body) in bodies.iter().enumerate().take(6).skip(1) {
            let resp = node.get(&format!("/obj/{i}"), &[]).await;
            assert_eq!(resp.status(), 200, "round {round}, /obj/{i}");
            let status = header(&resp, "cache-status");
            assert_eq!(resp.text().await.unwrap(), *body, "round {round}");
            if round > 0 {
                assert!(status.ends_with("hit"), "memory still caches: {status}");
            }
        }
    }
    assert!(
        node.metric("meridian_disk_cache_events_total{event=\"write_error\"}")
            .await
            >= 1.0,
        "the failed writes are counted"
    );
    assert!(
        node.stderr().contains("No space left on device")
            && node.stderr().contains("serving from memory meanwhile"),
        "the fault is logged:\n{}",
        node.stderr()
    );
    // What was on disk before is still served from it.
    assert_eq!(node.metric("meridian_disk_cache_objects").await, 1.0);

    // Space comes back: after the pause, keys are written to disk again.
    std::fs::remove_file(&filler).unwrap();
    let deadline =
        std::time::Instant::now() + support::within(std::time::Duration::from_secs(5)) * 3;
    let mut i = 6;
    while node.metric("meridian_disk_cache_objects").await < 2.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "writes never resumed:\n{}",
            node.stderr()
        );
        let path = format!("/obj/{}", 6 + i % 6);
        assert_eq!(node.get(&path, &[]).await.status(), 200);
        i += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(node.metric("meridian_disk_cache_writable").await, 1.0);
}

#[tokio::test]
async fn issue_15_a_disk_object_whose_bytes_cannot_be_read_is_fetched_again() {
    let body = "readable ".repeat(40_000); // 360 KB: two fragments
    let reply = Reply::ok(body.clone()).header("cache-control", "max-age=3600");
    // The restarted node has filed the object (its commit record was read); then its
    // fragments' bytes go away under it.
    let Restarted { origin, dir, node } = restarted_with("/page", reply).await;
    assert_eq!(node.metric("meridian_disk_cache_objects").await, 1.0);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(100)
                .unwrap();
        }
    }
    let resp = node.get("/page", &[]).await;
    assert_eq!(resp.status(), 200);
    let status = header(&resp, "cache-status");
    assert_eq!(resp.text().await.unwrap(), body);
    assert!(status.contains("fwd=uri-miss"), "{status}");
    assert_eq!(origin.hits("/page"), 2, "fetched again");
    assert_eq!(
        node.metric("meridian_disk_cache_events_total{event=\"damaged\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn issue_15_an_object_larger_than_memory_takes_is_kept_on_disk_alone() {
    // Memory takes up to 1 MiB; the disk (64 MiB) up to its default size / 16 = 4 MiB.
    let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let too_large = vec![b'x'; 5 << 20];
    let origin =
        cacheable_origin(&[("/large", large.clone()), ("/too-large", too_large.clone())]).await;
    let dir = tempfile::tempdir().unwrap();
    let node = start_ready(&config(&origin, dir.path())).await;
    // The first request is not admitted to disk, the second streams its fill there.
    for _ in 0..2 {
        let resp = node.get("/large", &[]).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.bytes().await.unwrap() == large);
    }
    eventually("the large object is on disk", || async {
        node.metric("meridian_disk_cache_objects").await >= 1.0
    })
    .await;
    let resp = node.get("/large", &[]).await;
    assert_eq!(header(&resp, "cache-status"), "edge-test; hit; detail=disk");
    assert!(resp.bytes().await.unwrap() == large);
    let resp = node
        .get("/large", &[("range", "bytes=2000000-2000099")])
        .await;
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.unwrap(), large[2_000_000..2_000_100]);
    assert_eq!(origin.hits("/large"), 2);
    assert_eq!(
        node.metric("meridian_cache_objects").await,
        0.0,
        "never held in memory"
    );

    // Past the disk's max_object: passed through, stored nowhere.
    for _ in 0..3 {
        let resp = node.get("/too-large", &[]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().len(), too_large.len());
    }
    assert_eq!(origin.hits("/too-large"), 3);
    assert_eq!(node.metric("meridian_disk_cache_objects").await, 1.0);
}

#[tokio::test]
async fn issue_15_a_key_hit_twice_on_disk_is_promoted_to_memory_and_a_range_is_not() {
    let body = alphabet(400_000);
    let reply = Reply::ok(body.clone()).header("cache-control", "max-age=3600");
    let Restarted { origin, node, .. } = restarted_with("/p", reply).await;
    let status = |resp: &reqwest::Response| header(resp, "cache-status");
    let first = node.get("/p", &[]).await;
    assert_eq!(status(&first), "edge-test; hit; detail=disk");
    // A range is not the whole body: no promotion from it.
    let range = node.get("/p", &[("range", "bytes=10-20")]).await;
    assert_eq!(status(&range), "edge-test; hit; detail=disk");
    assert_eq!(range.text().await.unwrap(), body[10..=20]);
    assert_eq!(
        node.metric("meridian_disk_cache_events_total{event=\"promotion\"}")
            .await,
        0.0
    );
    // The second whole read is promoted from the bytes it streams.
    let second = node.get("/p", &[]).await;
    assert_eq!(status(&second), "edge-test; hit; detail=disk");
    assert_eq!(second.text().await.unwrap(), body);
    eventually("the object is promoted", || async {
        node.metric("meridian_disk_cache_events_total{event=\"promotion\"}")
            .await
            == 1.0
    })
    .await;
    let third = node.get("/p", &[]).await;
    assert_eq!(status(&third), "edge-test; hit", "served from memory");
    assert_eq!(third.text().await.unwrap(), body);
    assert_eq!(origin.hits("/p"), 1);
    drop(first);
}

#[tokio::test]
async fn issue_15_a_stopping_node_leaves_a_checkpoint_that_the_next_start_reads() {
    let (origin, dir, checkpoint) = one_object_and_a_disk("/c", "c".repeat(5000)).await;
    let node = start_ready(&config(&origin, dir.path())).await;
    assert_eq!(
        recovered_from(&node).await,
        "log",
        "nothing to read on a first start"
    );
    store_on_disk(&node, "/c", 1.0).await;
    let before = std::fs::metadata(&checkpoint).ok().map(|m| m.len());
    stop(node).await;
    let after = std::fs::metadata(&checkpoint).map(|m| m.len()).ok();
    assert!(
        after.is_some() && after != before,
        "a checkpoint holding /c written as the node stopped ({before:?} -> {after:?} bytes)"
    );

    let node = start_ready(&config(&origin, dir.path())).await;
    assert_eq!(recovered_from(&node).await, "checkpoint");
    let resp = node.get("/c", &[]).await;
    assert_eq!(header(&resp, "cache-status"), "edge-test; hit; detail=disk");
    assert_eq!(resp.text().await.unwrap(), "c".repeat(5000));
    assert_eq!(origin.hits("/c"), 1);
}

#[tokio::test]
async fn issue_15_a_node_killed_soon_after_its_start_recovers_from_the_checkpoint_of_its_start() {
    let (origin, dir, checkpoint) = one_object_and_a_disk("/k", "k".repeat(3000)).await;
    let node = start_ready(&config(&origin, dir.path())).await;
    // Written as the tier opened (the periodic one would come ten minutes later).
    eventually("a checkpoint is written as the tier opens", || {
        let exists = checkpoint.exists();
        async move { exists }
    })
    .await;
    store_on_disk(&node, "/k", 1.0).await;
    kill(node).await;

    // The checkpoint of the start, then the log after it (where /k is): no full scan.
    let node = start_ready(&config(&origin, dir.path())).await;
    assert_eq!(recovered_from(&node).await, "checkpoint");
    let resp = node.get("/k", &[]).await;
    assert_eq!(header(&resp, "cache-status"), "edge-test; hit; detail=disk");
    assert_eq!(resp.text().await.unwrap(), "k".repeat(3000));
    assert_eq!(origin.hits("/k"), 1);
}

/// An origin with one cacheable object at `path`, a disk tier's directory, and where its
/// checkpoint goes.
async fn one_object_and_a_disk(
    path: &str,
    body: String,
) -> (Origin, tempfile::TempDir, std::path::PathBuf) {
    let origin = Origin::builder()
        .route(
            path,
            Reply::ok(body).header("cache-control", "max-age=3600"),
        )
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("index.ckpt");
    (origin, dir, checkpoint)
}

/// How the node's disk tier rebuilt its index when it opened (`/status`).
async fn recovered_from(node: &Node) -> String {
    let status = node.status().await;
    status["cache"]["disk"]["recovered_from"]
        .as_str()
        .unwrap_or_else(|| panic!("no cache.disk.recovered_from in {status}"))
        .to_owned()
}
