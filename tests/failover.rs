//! Health checks, passive ejection and failover: clients must not notice a dying origin.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{config, eventually, plain_client, Node, Origin, Reply, HOST};

/// Health checks every 200 ms, 100 ms timeout, 2 to rise, 2 to fall; uncached `/api/`.
const CHECKS: &str = "[regions.health_check]\nkind = \"http\"\npath = \"/healthz\"\n\
    interval = \"200ms\"\ntimeout = \"100ms\"\njitter = \"1ms\"\nhealthy_after = 2\nunhealthy_after = 2\n";
const API: &str = "[[sites.routes]]\npath = \"/api/\"\ncache = false\n";
const INTERVAL_MS: u64 = 200;

fn origin_routes() -> support::origin::OriginBuilder {
    Origin::builder()
        .route("/healthz", Reply::ok("ok"))
        .route("/api/x", Reply::ok("x"))
        .route("/api/post", Reply::ok("posted"))
}

/// One region per entry, each followed by the health-check table.
fn with_checks(regions: &[(&str, f64, f64, &[SocketAddr])], extra: &str) -> String {
    let text = config(regions, &format!("{API}{extra}"));
    let (head, sites) = text.split_once("[[sites]]").unwrap();
    let mut parts = head.split("[[regions]]");
    let mut out = parts.next().unwrap().to_owned();
    for region in parts {
        out.push_str("[[regions]]");
        out.push_str(region.trim_end());
        out.push('\n');
        out.push_str(CHECKS);
        out.push('\n');
    }
    out.push_str("[[sites]]");
    out.push_str(sites);
    out
}

/// Two origins in one region, with fast checks, and a node in front of them.
async fn one_region_two_origins() -> (Origin, Origin, Node) {
    let a = origin_routes().start().await;
    let b = origin_routes().start().await;
    let node = Node::start(&with_checks(
        &[("eu", 53.35, -6.26, &[a.addr(), b.addr()])],
        "",
    ))
    .await;
    (a, b, node)
}

async fn check_state(node: &Node, region: usize, origin: usize) -> String {
    node.status().await["regions"][region]["origins"][origin]["check"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends GETs one after another until stopped; counts them (also in `progress`, as they go)
/// and the failures.
fn steady_load(
    node: &Node,
    stop: Arc<AtomicBool>,
    progress: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let client = node.client(&[HOST]);
    let url = node.url(HOST, "/api/x");
    tokio::spawn(async move {
        let (mut sent, mut failed) = (0, 0);
        let deadline = Instant::now() + support::within(Duration::from_secs(20));
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            sent += 1;
            progress.fetch_add(1, Ordering::SeqCst);
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => {}
                _ => failed += 1,
            }
        }
        (sent, failed)
    })
}

#[tokio::test]
async fn a_killed_origin_costs_no_failed_get_is_marked_down_and_comes_back() {
    let (a, _b, node) = one_region_two_origins().await;
    eventually("both origins verified up", || async {
        check_state(&node, 0, 0).await == "up" && check_state(&node, 0, 1).await == "up"
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = steady_load(&node, stop.clone(), progress.clone());
    eventually("the load is running", || async {
        progress.load(Ordering::SeqCst) >= 10
    })
    .await;
    let killed = Instant::now();
    a.stop();
    eventually("the killed origin is marked down", || async {
        check_state(&node, 0, 0).await == "down"
    })
    .await;
    let to_down = killed.elapsed();
    let restored = Instant::now();
    a.resume().await;
    eventually("the restored origin is marked up", || async {
        check_state(&node, 0, 0).await == "up"
    })
    .await;
    let to_up = restored.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (sent, failed) = load.await.unwrap();
    eprintln!("kill -> down {to_down:?}, restore -> up {to_up:?}, {sent} GETs, {failed} failed");
    assert_eq!(failed, 0, "{failed} of {sent} GETs failed");
    assert!(sent > 20, "the load ran: {sent}");
    // Bounds from the config: fall x interval + timeout, rise x interval, plus scheduling
    // slack; all scaled by the patience factor on a loaded machine.
    let slack = Duration::from_millis(INTERVAL_MS * 2);
    let down_bound = support::within(Duration::from_millis(2 * INTERVAL_MS + 100) + slack);
    let up_bound = support::within(Duration::from_millis(2 * INTERVAL_MS) + slack);
    assert!(to_down <= down_bound, "{to_down:?} > {down_bound:?}");
    assert!(to_up <= up_bound, "{to_up:?} > {up_bound:?}");
    let metrics = node.metrics().await;
    assert!(metrics.contains(&format!(
        "meridian_health_transitions_total{{origin=\"{}\",region=\"eu\",to=\"down\"}} 1",
        a.addr()
    )));
}

#[tokio::test]
async fn a_killed_region_moves_traffic_to_the_next_nearest_without_failed_gets() {
    let near = origin_routes().start().await;
    let far = origin_routes().start().await;
    let cfg = with_checks(
        &[
            ("near", 53.35, -6.26, &[near.addr()]),
            ("far", 39.04, -77.49, &[far.addr()]),
        ],
        "",
    )
    .replace("[upstream]\n", "[upstream]\nserved_by_header = true\n");
    let node = Node::start(&cfg).await;
    let client = node.client(&[HOST]);
    let served_by = |r: &reqwest::Response| r.headers()["x-served-by"].to_str().unwrap().to_owned();
    let first = client.get(node.url(HOST, "/api/x")).send().await.unwrap();
    assert_eq!(served_by(&first), format!("near/{}", near.addr()));

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = steady_load(&node, stop.clone(), progress);
    near.stop();
    eventually("the near region is skipped", || async {
        check_state(&node, 0, 0).await == "down"
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let (sent, failed) = load.await.unwrap();
    assert_eq!(failed, 0, "{failed} of {sent} GETs failed");
    let after = client.get(node.url(HOST, "/api/x")).send().await.unwrap();
    assert_eq!(served_by(&after), format!("far/{}", far.addr()));
    assert_eq!(node.status().await["regions"][0]["usable"], false);
    assert_eq!(
        node.metric("meridian_region_up{region=\"near\"}").await,
        0.0
    );
    assert_eq!(node.metric("meridian_region_up{region=\"far\"}").await, 1.0);
}

#[tokio::test]
async fn a_post_that_reached_a_failing_origin_is_502_and_never_sent_twice() {
    let failing = origin_routes()
        .route("/api/post", Reply::close())
        .start()
        .await;
    let good = origin_routes().start().await;
    let node = Node::start(&with_checks(
        &[("eu", 53.35, -6.26, &[failing.addr(), good.addr()])],
        "",
    ))
    .await;
    let client = node.client(&[HOST]);
    let (mut ok, mut bad) = (0, 0);
    for _ in 0..10 {
        let r = client
            .post(node.url(HOST, "/api/post"))
            .body("order=1")
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            502 => bad += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        bad > 0 && ok > 0,
        "both origins were used: {ok} ok, {bad} 502"
    );
    assert_eq!(
        failing.hits("/api/post"),
        bad,
        "each 502 reached the failing origin once"
    );
    assert_eq!(
        good.hits("/api/post"),
        ok,
        "no failed POST was replayed on the good origin"
    );
}

#[tokio::test]
async fn a_hung_origin_costs_one_timeout_per_request_at_most_and_gets_ejected() {
    let hung = origin_routes()
        .route("/api/x", Reply::ok("late").delay(Duration::from_secs(3600)))
        .start()
        .await;
    let good = origin_routes().start().await;
    let cfg = with_checks(&[("eu", 53.35, -6.26, &[hung.addr(), good.addr()])], "").replace(
        "read_timeout = \"5s\"",
        "read_timeout = \"300ms\"\neject_after = 2\neject_for = \"30s\"",
    );
    let node = Node::start(&cfg).await;
    let client = node.client(&[HOST]);
    let mut slow = 0;
    for _ in 0..10 {
        let started = Instant::now();
        let r = client.get(node.url(HOST, "/api/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "x");
        let took = started.elapsed();
        let bound = support::within(Duration::from_millis(300 * 2));
        assert!(took < bound, "one timeout at most: {took:?} >= {bound:?}");
        if took >= Duration::from_millis(300) {
            slow += 1;
        }
    }
    assert!(
        slow <= 2,
        "ejected after 2 failures, yet {slow} requests waited"
    );
    let ejected = &node.status().await["regions"][0]["origins"][0];
    assert_eq!(ejected["ejected"], true, "{ejected}");
}

#[tokio::test]
async fn an_http_check_can_require_a_body_string_and_an_origin_can_override_it() {
    let degraded = origin_routes()
        .route("/healthz", Reply::ok("degraded"))
        .start()
        .await;
    let healthy = origin_routes()
        .route("/healthz", Reply::ok("all ok"))
        .start()
        .await;
    let tcp_only = origin_routes()
        .route("/healthz", Reply::new(500, "broken"))
        .start()
        .await;
    let region_check = "[regions.health_check]\npath = \"/healthz\"\nbody_contains = \"ok\"\n\
        interval = \"200ms\"\ntimeout = \"100ms\"\njitter = \"1ms\"\nhealthy_after = 1\nunhealthy_after = 1\n";
    let cfg = config(
        &[(
            "eu",
            53.35,
            -6.26,
            &[degraded.addr(), healthy.addr(), tcp_only.addr()],
        )],
        API,
    )
    .replace(
        &format!("\"{}\"]", tcp_only.addr()),
        &format!(
            "{{ addr = \"{}\", health_check = {{ kind = \"tcp\", interval = \"200ms\" }} }}]",
            tcp_only.addr()
        ),
    )
    .replace("\n[[sites]]", &format!("\n{region_check}\n[[sites]]"));
    let node = Node::start(&cfg).await;
    eventually("the degraded origin fails its body check", || async {
        check_state(&node, 0, 0).await == "down"
    })
    .await;
    eventually("the others pass theirs", || async {
        check_state(&node, 0, 1).await == "up" && check_state(&node, 0, 2).await == "up"
    })
    .await;
    let err = node.status().await["regions"][0]["origins"][0]["last_check_error"].clone();
    assert!(
        err.as_str().unwrap().contains("does not contain \"ok\""),
        "{err}"
    );
}

#[tokio::test]
async fn attempts_stop_once_the_total_timeout_is_spent() {
    let slow = || {
        origin_routes()
            .route("/api/x", Reply::ok("late").delay(Duration::from_secs(3600)))
            .start()
    };
    let (a, b, c) = (slow().await, slow().await, slow().await);
    let cfg = with_checks(&[("eu", 53.35, -6.26, &[a.addr(), b.addr(), c.addr()])], "").replace(
        "read_timeout = \"5s\"",
        "read_timeout = \"300ms\"\ntotal_timeout = \"450ms\"\neject_after = 0",
    );
    let node = Node::start(&cfg).await;
    let r = node
        .client(&[HOST])
        .get(node.url(HOST, "/api/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let attempts = a.hits("/api/x") + b.hits("/api/x") + c.hits("/api/x");
    assert_eq!(
        attempts, 2,
        "the third attempt would start after the 450 ms budget"
    );
}

#[tokio::test]
async fn draining_an_origin_moves_traffic_away_without_errors() {
    let (a, b, node) = one_region_two_origins().await;
    let admin = |verb: &str, q: String| {
        plain_client()
            .post(format!("http://{}/{verb}?{q}", node.admin))
            .header("authorization", "Bearer test-token")
            .send()
    };
    let r = admin("drain", format!("region=eu&origin={}", a.addr()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let client = node.client(&[HOST]);
    let before = a.hits("/api/x");
    for _ in 0..10 {
        assert_eq!(
            client
                .get(node.url(HOST, "/api/x"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        a.hits("/api/x"),
        before,
        "a drained origin gets no new requests"
    );
    assert_eq!(b.hits("/api/x"), 10);
    admin("undrain", format!("region=eu&origin={}", a.addr()))
        .await
        .unwrap();
    for _ in 0..10 {
        client.get(node.url(HOST, "/api/x")).send().await.unwrap();
    }
    assert!(a.hits("/api/x") > before, "undrained, it serves again");
    let unauthorized = plain_client()
        .post(format!("http://{}/drain?region=eu", node.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
}
