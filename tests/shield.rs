//! The shield tier (issue 16): edges send cacheable misses to the shield node that owns the
//! key on a consistent-hash ring, so a URL costs the origins one request however many edges
//! ask; a dead shield's keys move on and no GET fails; `CDN-Loop` stops cycles; a shield's
//! compressed variant, and its finished image variants, are what the edges keep.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{config, eventually, header, Node, Origin, Reply, HOST};

const CLUSTER: &str = "[cluster]\nname = \"prod\"\n";
/// Uncached, so it never goes through a shield.
const API: &str = "[[sites.routes]]\npath = \"/api/\"\ncache = false\n";

fn origin() -> support::origin::OriginBuilder {
    Origin::builder()
        .route(
            "/obj",
            Reply::ok("object").header("cache-control", "max-age=300"),
        )
        .route("/api/x", Reply::ok("api"))
}

/// A node named `name` in front of `origin`, in cluster "prod"; `extra` after the routes.
fn node_config(name: &str, origin: SocketAddr, extra: &str) -> String {
    config(
        &[("eu-west", 53.35, -6.26, &[origin])],
        &format!("{API}{CLUSTER}{extra}"),
    )
    .replace("name = \"edge-test\"", &format!("name = \"{name}\""))
}

/// `[shield]` over `shields`, checked every 200 ms, down after one failed check.
fn shield_table(shields: &[SocketAddr]) -> String {
    let list: Vec<String> = shields.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[shield]\nnodes = [{}]\n[shield.health_check]\ninterval = \"200ms\"\ntimeout = \"100ms\"\n\
         jitter = \"1ms\"\nhealthy_after = 1\nunhealthy_after = 1\n",
        list.join(", ")
    )
}

async fn edge(name: &str, origin: SocketAddr, shields: &[SocketAddr]) -> Node {
    Node::start(&node_config(name, origin, &shield_table(shields))).await
}

/// The `Cache-Status` entries of a response, first (nearest the origin) to last.
fn cache_status(resp: &reqwest::Response) -> Vec<String> {
    header(resp, "cache-status")
        .split(',')
        .map(|e| e.trim().to_owned())
        .collect()
}

/// `[region][origin]` index of the shield nodes in `/status` (after the one region).
const SHIELD_REGION: usize = 1;

async fn shield_check(edge: &Node, node: usize) -> String {
    let status = edge.status().await;
    let region = &status["regions"][SHIELD_REGION];
    assert_eq!(region["kind"], "shield", "{status:#}");
    region["origins"][node]["check"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn n_distinct_urls_through_two_edges_cost_the_origins_n_requests() {
    let origin = origin().start().await;
    let shield_a = Node::start(&node_config("shield-a", origin.addr(), "")).await;
    let shield_b = Node::start(&node_config("shield-b", origin.addr(), "")).await;
    let shields = [shield_a.http, shield_b.http];
    let edge_1 = edge("edge-1", origin.addr(), &shields).await;
    let edge_2 = edge("edge-2", origin.addr(), &shields).await;
    const N: usize = 30;
    for i in 0..N {
        let resp = edge_1.get(&format!("/obj?i={i}"), &[]).await;
        assert_eq!(resp.status(), 200);
        let entries = cache_status(&resp);
        assert_eq!(
            entries.len(),
            2,
            "shield's entry, then the edge's: {entries:?}"
        );
        assert!(entries[0].starts_with("shield-") && entries[0].contains("fwd=uri-miss"));
        assert!(entries[1].starts_with("edge-1; fwd=uri-miss"));
    }
    let mut owners = std::collections::HashSet::new();
    for i in 0..N {
        // Each edge asks the same shield for the same key: the second edge's miss is its hit.
        let resp = edge_2.get(&format!("/obj?i={i}"), &[]).await;
        assert_eq!(resp.status(), 200);
        let entries = cache_status(&resp);
        let (shield, edge) = (&entries[0], &entries[1]);
        assert!(shield.ends_with("; hit"), "{entries:?}");
        assert!(edge.starts_with("edge-2; fwd=uri-miss"), "{entries:?}");
        owners.insert(shield.split(';').next().unwrap().to_owned());
        assert_eq!(resp.text().await.unwrap(), "object");
    }
    assert_eq!(
        origin.hits("/obj"),
        N,
        "one origin request per URL, however many edges"
    );
    assert_eq!(
        owners.len(),
        2,
        "the keys are spread over both shields: {owners:?}"
    );
    // The origin saw both tiers: each appended itself to Via and its cluster to CDN-Loop.
    let filled = origin.requests();
    let first = filled.iter().find(|r| r.target == "/obj?i=0").unwrap();
    assert_eq!(first.headers["cdn-loop"], "meridian-prod, meridian-prod");
    let via = first.headers["via"].to_str().unwrap();
    assert!(via.starts_with("1.1 edge-1, 1.1 shield-"), "{via}");

    // Uncacheable requests go straight to the regions.
    let resp = edge_1.get("/api/x", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(cache_status(&resp).len(), 1);
    let direct = origin
        .requests()
        .into_iter()
        .find(|r| r.target == "/api/x")
        .unwrap();
    assert_eq!(direct.headers["via"], "1.1 edge-1");
    assert_eq!(direct.headers["cdn-loop"], "meridian-prod");
}

/// Sends GETs of URLs no one asked before (every one a miss on the edge, so every one goes
/// through a shield while one is up) until stopped; counts them and the failures.
fn miss_load(
    edge: &Node,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    statuses: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
) -> tokio::task::JoinHandle<Vec<String>> {
    let client = edge.client(&[HOST]);
    let base = edge.url(HOST, "/obj");
    tokio::spawn(async move {
        let mut failures = Vec::new();
        let deadline = Instant::now() + support::within(Duration::from_secs(30));
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let i = sent.fetch_add(1, Ordering::SeqCst);
            match client.get(format!("{base}?load={i}")).send().await {
                Ok(r) if r.status() == 200 => {
                    statuses.lock().unwrap().push(cache_status(&r));
                }
                Ok(r) => failures.push(format!("request {i}: status {}", r.status())),
                Err(e) => failures.push(format!("request {i}: {e}")),
            }
        }
        failures
    })
}

#[tokio::test]
async fn killing_the_shields_under_load_fails_no_get_and_keys_move_then_go_straight_to_the_regions()
{
    let origin = origin().start().await;
    let shield_a = Node::start(&node_config("shield-a", origin.addr(), "")).await;
    let shield_b = Node::start(&node_config("shield-b", origin.addr(), "")).await;
    let edge = edge("edge-1", origin.addr(), &[shield_a.http, shield_b.http]).await;
    eventually("both shields are checked up", || async {
        shield_check(&edge, 0).await == "up" && shield_check(&edge, 1).await == "up"
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| miss_load(&edge, stop.clone(), sent.clone(), statuses.clone()))
        .collect();
    let served =
        |statuses: &Arc<std::sync::Mutex<Vec<Vec<String>>>>| statuses.lock().unwrap().len();
    eventually("load through both shields", || async {
        served(&statuses) >= 50
    })
    .await;

    shield_a.signal("KILL");
    eventually("the edge sees shield-a down", || async {
        shield_check(&edge, 0).await == "down"
    })
    .await;
    let mark = served(&statuses);
    eventually("load after shield-a died", || async {
        served(&statuses) >= mark + 50
    })
    .await;
    let after_a: Vec<Vec<String>> = statuses.lock().unwrap()[mark + 10..].to_vec();
    assert!(
        after_a
            .iter()
            .all(|e| e.len() == 2 && e[0].starts_with("shield-b;")),
        "every miss goes to the shield left: {:?}",
        after_a.iter().find(|e| !e[0].starts_with("shield-b;"))
    );

    shield_b.signal("KILL");
    eventually("the edge sees shield-b down", || async {
        shield_check(&edge, 1).await == "down"
    })
    .await;
    let mark = served(&statuses);
    eventually("load with no shield", || async {
        served(&statuses) >= mark + 50
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for c in clients {
        failures.extend(c.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed GETs: {failures:?}",
        failures.len()
    );
    let direct: Vec<Vec<String>> = statuses.lock().unwrap()[mark + 10..].to_vec();
    assert!(
        direct
            .iter()
            .all(|e| e.len() == 1 && e[0].starts_with("edge-1;")),
        "with every shield down, misses go straight to the regions: {:?}",
        direct.iter().find(|e| e.len() != 1)
    );
}

#[tokio::test]
async fn a_request_that_passed_this_cluster_twice_is_refused_with_508() {
    let origin = origin().start().await;
    let node = Node::start(&node_config("edge-1", origin.addr(), "")).await;
    let once = node.get("/api/x", &[("cdn-loop", "meridian-prod")]).await;
    assert_eq!(
        once.status(),
        200,
        "one pass is an edge's request to its shield"
    );
    let twice = node
        .get(
            "/api/x",
            &[("cdn-loop", "Meridian-Prod; v=1, other-cdn, meridian-prod")],
        )
        .await;
    assert_eq!(twice.status(), 508);
    assert_eq!(
        header(&twice, "cache-status"),
        "edge-1; fwd=bypass; detail=loop"
    );
    let other = node
        .get(
            "/api/x",
            &[("cdn-loop", "meridian-staging, meridian-staging")],
        )
        .await;
    assert_eq!(
        other.status(),
        200,
        "another cluster's entries are not this one's"
    );
    assert_eq!(origin.hits("/api/x"), 2);
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
    w.write_all(body).unwrap();
    drop(w);
    out
}

/// The edge's side of the contract, against a recording server standing in for a shield: it
/// asks for the client's coding, keeps the compressed variant the shield made as it came, and
/// does not keep (or remake) one the shield sent uncompressed.
#[tokio::test]
async fn the_edge_keeps_the_shields_compressed_variant_and_never_compresses_itself() {
    let css = "body { color: red; }\n".repeat(200);
    let compressed = brotli(css.as_bytes());
    let shield = Origin::builder()
        .route(
            "/app.css",
            Reply::ok(compressed.clone())
                .header("content-type", "text/css")
                .header("content-encoding", "br")
                .header("vary", "Accept-Encoding")
                .header("cache-control", "max-age=300"),
        )
        .route(
            "/big.js",
            Reply::ok("var x = 1;\n".repeat(4000))
                .header("content-type", "application/javascript")
                .header("vary", "Accept-Encoding")
                .header("cache-control", "max-age=300"),
        )
        .start()
        .await;
    let origin = origin().start().await;
    let compress = "[[sites.routes]]\npath = \"/app\"\ncompress = true\nminify = true\n\
        [[sites.routes]]\npath = \"/big\"\ncompress = true\n";
    let edge = Node::start(&node_config(
        "edge-1",
        origin.addr(),
        &format!("{compress}{}", shield_table(&[shield.addr()])),
    ))
    .await;
    let br = [("accept-encoding", "gzip;q=0.5, br")];
    for round in 0..2 {
        let resp = edge.get("/app.css", &br).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-encoding"), "br");
        let entries = cache_status(&resp);
        assert_eq!(
            resp.bytes().await.unwrap(),
            compressed,
            "the shield's bytes, as they came"
        );
        if round == 1 {
            assert_eq!(entries.last().unwrap(), "edge-1; hit");
        }
    }
    assert_eq!(
        shield.hits("/app.css"),
        1,
        "kept at the edge after the first"
    );
    let asked = shield
        .requests()
        .into_iter()
        .find(|r| r.target == "/app.css")
        .unwrap();
    assert_eq!(
        asked.headers["accept-encoding"], "br",
        "the client's negotiated coding"
    );
    assert_eq!(asked.headers["cdn-loop"], "meridian-prod");

    // Uncompressed where the edge would compress: passed on as it came, and not kept.
    for _ in 0..2 {
        let resp = edge.get("/big.js", &br).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "content-encoding"), "");
        let entries = cache_status(&resp);
        assert!(
            entries.last().unwrap().ends_with("detail=shield-unrefined"),
            "{entries:?}"
        );
    }
    assert_eq!(
        shield.hits("/big.js"),
        2,
        "the shield's lesser copy is not kept"
    );
    assert_eq!(
        origin.total_hits(),
        0,
        "a usable shield is the only way to the origins"
    );
}

#[tokio::test]
async fn a_compressed_variant_is_made_once_at_the_shield_and_kept_by_every_edge() {
    let css = "body { color: red; }\n".repeat(200);
    let origin = Origin::builder()
        .route(
            "/app.css",
            Reply::ok(css.clone())
                .header("content-type", "text/css")
                .header("cache-control", "max-age=300"),
        )
        .start()
        .await;
    let compress = "[[sites.routes]]\npath = \"/app\"\ncompress = true\n";
    let shield = Node::start(&node_config("shield-a", origin.addr(), compress)).await;
    let edges = [
        Node::start(&node_config(
            "edge-1",
            origin.addr(),
            &format!("{compress}{}", shield_table(&[shield.http])),
        ))
        .await,
        Node::start(&node_config(
            "edge-2",
            origin.addr(),
            &format!("{compress}{}", shield_table(&[shield.http])),
        ))
        .await,
    ];
    for (i, edge) in edges.iter().enumerate() {
        let resp = edge.get("/app.css", &[("accept-encoding", "br")]).await;
        assert_eq!(header(&resp, "content-encoding"), "br");
        let entries = cache_status(&resp);
        let at_shield = if i == 0 {
            "shield-a; fwd=uri-miss"
        } else {
            "shield-a; hit"
        };
        assert!(entries[0].starts_with(at_shield), "{entries:?}");
        let body = resp.bytes().await.unwrap();
        assert_eq!(support::coding::decode("br", &body), css.as_bytes());
    }
    assert_eq!(origin.hits("/app.css"), 1);
    let asked = &origin.requests()[0];
    assert_eq!(
        asked.headers["accept-encoding"], "identity",
        "the shield compresses"
    );
}

#[tokio::test]
async fn a_cycle_between_tiers_fails_at_once_with_508_and_never_reaches_the_origin() {
    let origin = origin().start().await;
    // edge-1's [shield] names shield-a, and shield-a's (by mistake) names edge-1.
    let edge_addr = support::node::free_addr();
    let shield = edge("shield-a", origin.addr(), &[edge_addr]).await;
    let edge = Node::start_on(
        &node_config("edge-1", origin.addr(), &shield_table(&[shield.http])),
        edge_addr,
    )
    .await;
    eventually("shield-a sees its (mistaken) shield up", || async {
        shield_check(&shield, 0).await == "up"
    })
    .await;
    let resp = edge.get("/obj?cycle=1", &[]).await;
    assert_eq!(resp.status(), 508);
    let entries = cache_status(&resp);
    assert!(
        entries.iter().any(|e| e.contains("detail=loop")),
        "{entries:?}"
    );
    assert_eq!(origin.hits("/obj"), 0, "the loop never reached the origin");
}

#[tokio::test]
async fn image_variants_are_made_at_the_shield_and_edges_keep_only_finished_ones() {
    let photo = include_bytes!("../benches/images/board-exif.jpg").to_vec();
    let origin = Origin::builder()
        .route(
            "/img/photo.jpg",
            Reply::ok(photo.clone())
                .header("content-type", "image/jpeg")
                .header("cache-control", "max-age=300"),
        )
        .start()
        .await;
    let images = "[[sites.routes]]\npath = \"/img/\"\nimages = \"lossy\"\n\n\
                  [images]\nformats = [\"webp\"]\n";
    let shield = Node::start(&node_config("shield-a", origin.addr(), images)).await;
    let edge_config = |name: &str| {
        node_config(
            name,
            origin.addr(),
            &format!("{images}{}", shield_table(&[shield.http])),
        )
    };
    let edges = [
        Node::start(&edge_config("edge-1")).await,
        Node::start(&edge_config("edge-2")).await,
    ];
    let webp = [("accept", "image/webp,*/*")];

    // The shield's fill: the edge passes the original on without keeping it.
    let first = edges[0].get("/img/photo.jpg", &webp).await;
    let entries = cache_status(&first);
    assert!(
        entries[0].starts_with("shield-a; fwd=uri-miss"),
        "{entries:?}"
    );
    assert!(
        entries[1].contains("detail=shield-unrefined") && entries[1].contains("image=original"),
        "{entries:?}"
    );
    assert_eq!(
        header(&first, "x-meridian-image"),
        "",
        "the marker stays inside"
    );
    assert_eq!(first.bytes().await.unwrap(), photo);

    // Once the shield has made the WebP, every edge stores that and serves it.
    for edge in &edges {
        // Its own entry is a hit (the shield's, stored with the copy, comes first).
        eventually(
            "the edge serves the shield's WebP from its own cache",
            || async {
                let r = edge.get("/img/photo.jpg", &webp).await;
                let entries = cache_status(&r);
                let ct = header(&r, "content-type");
                r.bytes().await.unwrap();
                let own = entries.last().map_or("", String::as_str);
                own.ends_with("; hit; image=webp") && ct == "image/webp"
            },
        )
        .await;
    }
    // A client that names no modern format gets the source variant, a second object; a
    // client's own marker reaches neither the shield's choice nor the origin.
    let neither = [("accept", "*/*"), ("x-meridian-image", "webp")];
    eventually("the re-encoded JPEG at the edge", || async {
        let r = edges[1].get("/img/photo.jpg", &neither).await;
        let ct = header(&r, "content-type");
        let entries = cache_status(&r);
        r.bytes().await.unwrap();
        let own = entries.last().map_or("", String::as_str);
        ct == "image/jpeg" && own == "edge-2; hit; image=jpeg"
    })
    .await;
    assert_eq!(origin.hits("/img/photo.jpg"), 2, "one fill per variant");
    assert!(origin
        .requests()
        .iter()
        .all(|r| !r.headers.contains_key("x-meridian-image")));
}
