//! The cache end to end: miss then hit, what is never stored, HEAD, Vary, coalescing, bounds.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;
use support::{header, one_region, Node, Origin, Reply, HOST};

#[tokio::test]
async fn a_miss_is_stored_and_the_next_request_is_a_hit_with_age() {
    let origin = Origin::builder()
        .route(
            "/a.css",
            Reply::ok("body{}").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;

    let first = node.get("/a.css", &[]).await;
    assert_eq!(
        header(&first, "cache-status"),
        "edge-test; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(first.text().await.unwrap(), "body{}");

    let second = node.get("/a.css", &[]).await;
    assert_eq!(header(&second, "cache-status"), "edge-test; hit");
    let age: u64 = header(&second, "age").parse().unwrap();
    assert!(age <= 60, "{age}");
    assert_eq!(second.text().await.unwrap(), "body{}");
    assert_eq!(origin.hits("/a.css"), 1);
}

#[tokio::test]
async fn the_query_is_part_of_the_key() {
    let origin = Origin::builder()
        .route("/q", Reply::ok("q").header("cache-control", "max-age=60"))
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/q?a=1", &[]).await;
    node.get("/q?a=2", &[]).await;
    let hit = node.get("/q?a=1", &[]).await;
    assert_eq!(header(&hit, "cache-status"), "edge-test; hit");
    assert_eq!(origin.hits("/q"), 2);
}

#[tokio::test]
async fn no_store_private_and_set_cookie_responses_are_never_served_from_cache() {
    let origin = Origin::builder()
        .route(
            "/ns",
            Reply::ok("ns").header("cache-control", "no-store, max-age=60"),
        )
        .route(
            "/pv",
            Reply::ok("pv").header("cache-control", "private, max-age=60"),
        )
        .route(
            "/ck",
            Reply::ok("ck")
                .header("cache-control", "max-age=60")
                .header("set-cookie", "session=1"),
        )
        .route("/none", Reply::ok("none"))
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    for path in ["/ns", "/pv", "/ck", "/none"] {
        node.get(path, &[]).await;
        let again = node.get(path, &[]).await;
        let status = header(&again, "cache-status");
        assert!(
            status.contains("fwd=uri-miss") && status.contains("detail="),
            "{path}: {status}"
        );
        assert_eq!(origin.hits(path), 2, "{path} was served from cache");
    }
    let ck = node.get("/ck", &[]).await;
    assert_eq!(
        header(&ck, "cache-status"),
        "edge-test; fwd=uri-miss; fwd-status=200; detail=set-cookie"
    );
}

#[tokio::test]
async fn head_is_answered_from_a_cached_get() {
    let origin = Origin::builder()
        .route(
            "/h",
            Reply::ok("0123456789").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    node.get("/h", &[]).await;
    let head = node
        .client(&[HOST])
        .head(node.url(HOST, "/h"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "cache-status"), "edge-test; hit");
    assert_eq!(header(&head, "content-length"), "10");
    assert_eq!(head.text().await.unwrap(), "");
    assert_eq!(origin.hits("/h"), 1);
}

#[tokio::test]
async fn a_head_miss_fetches_the_full_get_and_stores_it() {
    let origin = Origin::builder()
        .route(
            "/hm",
            Reply::ok("full body").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let head = node
        .client(&[HOST])
        .head(node.url(HOST, "/hm"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(origin.requests()[0].method, "GET");
    let body = node.get("/hm", &[]).await;
    assert_eq!(header(&body, "cache-status"), "edge-test; hit");
    assert_eq!(body.text().await.unwrap(), "full body");
}

#[tokio::test]
async fn uncached_routes_and_unsafe_methods_bypass_the_cache() {
    let origin = Origin::builder()
        .route(
            "/api/x",
            Reply::ok("api").header("cache-control", "max-age=60"),
        )
        .route(
            "/form",
            Reply::ok("posted").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let extra = "[[sites.routes]]\npath = \"/api/\"\ncache = false\n";
    let node = Node::start(&one_region(&[origin.addr()], extra)).await;
    for _ in 0..2 {
        let r = node.get("/api/x", &[]).await;
        assert_eq!(
            header(&r, "cache-status"),
            "edge-test; fwd=bypass; detail=route"
        );
    }
    assert_eq!(origin.hits("/api/x"), 2);
    for _ in 0..2 {
        let r = node
            .client(&[HOST])
            .post(node.url(HOST, "/form"))
            .body("a=1")
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&r, "cache-status"),
            "edge-test; fwd=bypass; detail=method"
        );
        assert_eq!(r.text().await.unwrap(), "posted");
    }
    assert_eq!(origin.hits("/form"), 2);
}

#[tokio::test]
async fn vary_keeps_one_variant_per_request_header_value() {
    let origin = Origin::builder()
        .route(
            "/v",
            Reply::ok("v")
                .header("cache-control", "max-age=60")
                .header("vary", "Accept-Language"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let client = node.client(&[HOST]);
    let lang = |l: &'static str| {
        let client = client.clone();
        let url = node.url(HOST, "/v");
        async move {
            let r = client
                .get(url)
                .header("accept-language", l)
                .send()
                .await
                .unwrap();
            header(&r, "cache-status")
        }
    };
    assert!(lang("en").await.contains("stored"));
    assert!(lang("fr").await.contains("stored"));
    assert_eq!(lang("en").await, "edge-test; hit");
    assert_eq!(lang("fr").await, "edge-test; hit");
    assert_eq!(origin.hits("/v"), 2);
}

#[tokio::test]
async fn concurrent_misses_for_one_key_make_one_origin_request() {
    let origin = Origin::builder()
        .route(
            "/slow",
            Reply::ok(vec![b'z'; 100_000])
                .header("cache-control", "max-age=60")
                .delay(Duration::from_millis(300)),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let client = node.client(&[HOST]);
    let requests = (0..20).map(|_| {
        let client = client.clone();
        let url = node.url(HOST, "/slow");
        tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            let status = header(&r, "cache-status");
            (status, r.bytes().await.unwrap().len())
        })
    });
    let results: Vec<(String, usize)> = futures_join(requests).await;
    assert_eq!(origin.hits("/slow"), 1, "{results:?}");
    assert!(results.iter().all(|(_, len)| *len == 100_000));
    let collapsed = results
        .iter()
        .filter(|(s, _)| s.contains("collapsed"))
        .count();
    assert!(collapsed >= 1, "{results:?}");
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn responses_above_max_object_are_passed_through_and_not_stored() {
    let origin = Origin::builder()
        .route(
            "/big",
            Reply::ok(vec![b'b'; 64 * 1024]).header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let extra = "[cache]\nmemory = \"1MiB\"\nmax_object = \"16KiB\"\n";
    let node = Node::start(&one_region(&[origin.addr()], extra)).await;
    for _ in 0..2 {
        let r = node.get("/big", &[]).await;
        assert_eq!(r.bytes().await.unwrap().len(), 64 * 1024);
    }
    assert_eq!(origin.hits("/big"), 2);
}

#[tokio::test]
async fn the_memory_bound_holds_after_filling_past_it() {
    let mut builder = Origin::builder();
    for i in 0..48 {
        builder = builder.route(
            &format!("/o{i}"),
            Reply::ok(vec![b'm'; 16 * 1024]).header("cache-control", "max-age=600"),
        );
    }
    let origin = builder.start().await;
    let extra = "[cache]\nmemory = \"256KiB\"\nmax_object = \"32KiB\"\n";
    let node = Node::start(&one_region(&[origin.addr()], extra)).await;
    for i in 0..48 {
        assert_eq!(node.get(&format!("/o{i}"), &[]).await.status(), 200);
    }
    let bytes = node.metric("meridian_cache_bytes").await;
    let objects = node.metric("meridian_cache_objects").await;
    assert!(bytes <= 256.0 * 1024.0, "cache holds {bytes} bytes");
    assert!(
        (1.0..48.0).contains(&objects),
        "cache holds {objects} objects"
    );
}

#[tokio::test]
async fn route_cache_key_rules_drop_sort_and_add_to_the_key() {
    let origin = Origin::builder()
        .route("/k/p", Reply::ok("p").header("cache-control", "max-age=60"))
        .route("/d/p", Reply::ok("d").header("cache-control", "max-age=60"))
        .start()
        .await;
    let extra = "[[sites.routes]]\npath = \"/k/\"\n\
                 cache_key = { query = \"sort\", ignore_params = [\"utm_source\"] }\n\
                 [[sites.routes]]\npath = \"/d/\"\ncache_key = { query = \"ignore\", headers = [\"x-device\"] }\n";
    let node = Node::start(&one_region(&[origin.addr()], extra)).await;
    node.get("/k/p?b=2&a=1&utm_source=mail", &[]).await;
    let same = node.get("/k/p?a=1&b=2", &[]).await;
    assert_eq!(header(&same, "cache-status"), "edge-test; hit");
    assert_eq!(origin.hits("/k/p"), 1);

    let device = |d: &'static str| {
        let client = node.client(&[HOST]);
        let url = node.url(HOST, "/d/p?anything=1");
        async move {
            let r = client.get(url).header("x-device", d).send().await.unwrap();
            header(&r, "cache-status")
        }
    };
    assert!(device("mobile").await.contains("stored"));
    assert_eq!(device("mobile").await, "edge-test; hit");
    assert!(
        device("desktop").await.contains("stored"),
        "the header is part of the key"
    );
    assert_eq!(origin.hits("/d/p"), 2);
}

/// The node's allocator never advises its memory for transparent huge pages (`MADV_HUGEPAGE`,
/// `hg` among a mapping's VmFlags): memory it gives back and takes again would then return as
/// 2 MiB pages zeroed inside a page fault on a proxy thread, which put disk-hit p99 at
/// 15-24 ms for the first seconds of load after a restart (benches/results/2026-12-03-vm/
/// allocator-thp.md). The system's own THP policy still applies; the node just never asks.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_node_never_advises_its_memory_for_transparent_huge_pages() {
    let body = vec![b'x'; 512 << 10];
    let origin = Origin::builder()
        .route(
            "/big.bin",
            Reply::ok(body.clone()).header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    // A miss and hits: the cache has allocated and served objects.
    for _ in 0..3 {
        let resp = node.get("/big.bin", &[]).await;
        assert_eq!(resp.bytes().await.unwrap().len(), body.len());
    }

    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", node.pid())).unwrap();
    let flags: Vec<&str> = smaps
        .lines()
        .filter_map(|l| l.strip_prefix("VmFlags:"))
        .collect();
    assert!(flags.len() > 10, "the node's mappings were read");
    let advised = flags
        .iter()
        .filter(|f| f.split_whitespace().any(|flag| flag == "hg"))
        .count();
    assert_eq!(
        advised, 0,
        "{advised} of the node's mappings are advised for huge pages"
    );
}
