//! Metrics, access log and admin endpoints reflect exactly what clients sent.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use support::{eventually, one_region, plain_client, Node, Origin, Reply, HOST};

#[tokio::test]
async fn metrics_count_what_the_test_sent() {
    let origin = Origin::builder()
        .route("/c", Reply::ok("c").header("cache-control", "max-age=60"))
        .route("/missing", Reply::new(404, "nope"))
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let client = node.client(&[HOST, "unknown.local"]);
    for _ in 0..5 {
        client.get(node.url(HOST, "/c")).send().await.unwrap();
    }
    for _ in 0..3 {
        client.get(node.url(HOST, "/missing")).send().await.unwrap();
    }
    for _ in 0..2 {
        client
            .get(node.url("unknown.local", "/"))
            .send()
            .await
            .unwrap();
    }
    let series = |cache: &str, class: &str, site: &str| {
        format!("meridian_http_requests_total{{cache=\"{cache}\",site=\"{site}\",status_class=\"{class}\"}}")
    };
    // Requests are counted in the logging phase, just after the response is sent.
    eventually("all 10 requests counted", || async {
        node.metric("meridian_http_request_duration_seconds_count{site=\"test\"}")
            .await
            == 8.0
            && node
                .metric("meridian_http_request_duration_seconds_count{site=\"_unknown\"}")
                .await
                == 2.0
    })
    .await;
    assert_eq!(node.metric(&series("miss", "2xx", "test")).await, 1.0);
    assert_eq!(node.metric(&series("hit", "2xx", "test")).await, 4.0);
    assert_eq!(
        node.metric(&series("uncacheable", "4xx", "test")).await,
        3.0
    );
    assert_eq!(node.metric(&series("none", "4xx", "_unknown")).await, 2.0);
    assert_eq!(node.metric("meridian_cache_objects").await, 1.0);
    assert!(node.metric("meridian_cache_bytes").await > 0.0);
}

#[tokio::test]
async fn every_request_gets_one_json_access_log_line() {
    let origin = Origin::builder()
        .route(
            "/l",
            Reply::ok("logged").header("cache-control", "max-age=60"),
        )
        .start()
        .await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let client = node.client(&[HOST]);
    client
        .get(node.url(HOST, "/l?q=secret"))
        .send()
        .await
        .unwrap();
    client
        .get(node.url(HOST, "/l?q=secret"))
        .send()
        .await
        .unwrap();
    eventually("two access log lines", || {
        let n = node.access_log().len();
        async move { n == 2 }
    })
    .await;
    let lines = node.access_log();
    let miss = &lines[0];
    for field in [
        "time",
        "client",
        "peer",
        "site",
        "host",
        "method",
        "path",
        "status",
        "bytes",
        "duration_ms",
        "cache",
        "region",
        "origin",
        "trace_id",
    ] {
        assert!(miss.get(field).is_some(), "missing {field} in {miss}");
    }
    assert_eq!(miss["client"], "127.0.0.1");
    assert_eq!(miss["peer"], "127.0.0.1");
    assert_eq!(miss["host"], HOST);
    assert_eq!(miss["method"], "GET");
    assert_eq!(miss["path"], "/l", "the query is not logged");
    assert_eq!(miss["status"], 200);
    assert_eq!(miss["bytes"], 6);
    assert_eq!(miss["cache"], "miss");
    assert_eq!(miss["region"], "eu-west");
    assert_eq!(miss["origin"], origin.addr().to_string());
    assert_eq!(miss["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(lines[1]["cache"], "hit");
    assert!(lines[1]["origin"].is_null());
}

#[tokio::test]
async fn admin_serves_healthz_status_and_rejects_other_methods() {
    let origin = Origin::builder().start().await;
    let node = Node::start(&one_region(&[origin.addr()], "")).await;
    let admin = |path: &str| format!("http://{}{path}", node.admin);
    let client = plain_client();
    let health = client.get(admin("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let status = node.status().await;
    assert_eq!(status["node"], "edge-test");
    assert_eq!(status["sites"][0]["hosts"][0], HOST);
    assert_eq!(
        status["regions"][0]["origins"][0]["addr"],
        origin.addr().to_string()
    );
    let post = client.post(admin("/metrics")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(
        client.get(admin("/nope")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn issue_13_a_final_upstream_failure_is_counted_once() {
    let origin = Origin::builder()
        .route("/boom", Reply::close())
        .start()
        .await;
    let dead = support::node::free_addr();
    let config = support::config(
        &[
            ("eu-west", 53.35, -6.26, &[origin.addr()]),
            ("us-east", 39.04, -77.49, &[dead]),
        ],
        "[[sites.routes]]\npath = \"/dead/\"\nregions = [\"us-east\"]\n",
    )
    .replace("[upstream]\n", "[upstream]\nmax_attempts = 1\n");
    let node = Node::start(&config).await;
    // A client each: the node closes a connection after a failed request.
    for path in ["/boom", "/dead/x"] {
        let resp = node
            .client(&[HOST])
            .get(node.url(HOST, path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{path}");
    }
    let errors =
        |kind: &str| format!("meridian_upstream_errors_total{{kind=\"{kind}\",site=\"test\"}}");
    eventually("both requests logged", || async {
        node.metric("meridian_http_request_duration_seconds_count{site=\"test\"}")
            .await
            == 2.0
    })
    .await;
    assert_eq!(
        node.metric(&errors("proxy")).await,
        1.0,
        "one failed exchange"
    );
    assert_eq!(
        node.metric(&errors("connect")).await,
        1.0,
        "one failed connect"
    );
}

#[tokio::test]
async fn issue_13_the_access_log_records_the_trusted_client_beside_the_peer() {
    let origin = Origin::builder()
        .route("/p", Reply::ok("p").header("cache-control", "no-store"))
        .start()
        .await;
    let config = support::behind_trusted_proxy(&one_region(&[origin.addr()], ""));
    let node = Node::start(&config).await;
    node.get("/p", &[("x-forwarded-for", "198.51.100.23")])
        .await;
    eventually("the access log line", || {
        let n = node.access_log().len();
        async move { n == 1 }
    })
    .await;
    let line = &node.access_log()[0];
    assert_eq!(line["client"], "198.51.100.23", "{line}");
    assert_eq!(line["peer"], "127.0.0.1", "{line}");
}

#[tokio::test]
async fn issue_17_bytes_by_cache_result_requests_per_route_and_origin_traffic_per_region() {
    let body = "x".repeat(1000);
    let origin = Origin::builder()
        .route(
            "/c",
            Reply::ok(body.clone()).header("cache-control", "max-age=60"),
        )
        .route("/api/x", Reply::new(503, "down"))
        .start()
        .await;
    let api = "[[sites.routes]]\npath = \"/api/\"\ncache = false\n";
    let node = Node::start(&one_region(&[origin.addr()], api)).await;
    for _ in 0..3 {
        assert_eq!(node.get("/c", &[]).await.text().await.unwrap(), body);
    }
    assert_eq!(node.get("/api/x", &[]).await.status(), 503);
    eventually("the requests are counted", || async {
        node.metric("meridian_http_route_requests_total{route=\"/api/\",site=\"test\",status_class=\"5xx\"}")
            .await
            == 1.0
    })
    .await;
    let metric = |s: &'static str| node.metric(s);
    assert_eq!(
        metric("meridian_http_response_bytes_total{cache=\"miss\",site=\"test\"}").await,
        1000.0
    );
    assert_eq!(
        metric("meridian_http_response_bytes_total{cache=\"hit\",site=\"test\"}").await,
        2000.0
    );
    assert_eq!(
        metric(
            "meridian_http_route_requests_total{route=\"/\",site=\"test\",status_class=\"2xx\"}"
        )
        .await,
        3.0
    );
    assert_eq!(
        metric("meridian_upstream_responses_total{region=\"eu-west\",status_class=\"2xx\"}").await,
        1.0,
        "one fill; the hits never reached the origin"
    );
    assert_eq!(
        metric("meridian_upstream_responses_total{region=\"eu-west\",status_class=\"5xx\"}").await,
        1.0
    );
    assert_eq!(
        metric("meridian_upstream_response_duration_seconds_count{region=\"eu-west\"}").await,
        2.0
    );
}
