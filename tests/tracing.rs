//! OpenTelemetry traces (issue 17): a sampled request makes a server span (the client's span
//! its parent), one client span per upstream attempt (a failover shows both, the first with
//! its error) and a transform span at fill; the origin's `traceparent` names Meridian's
//! attempt span; the access log carries the ids; a dead collector fails no request.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use support::otlp::{Collector, Received};
use support::{config, eventually, Node, Origin, Reply};

const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";

fn traceparent(flags: &str) -> String {
    format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-{flags}")
}

fn origin() -> support::origin::OriginBuilder {
    Origin::builder()
        .route("/api/x", Reply::ok("api"))
        .route(
            "/app.js",
            Reply::ok("function add(a, b) {\n    return a + b;\n}\n".repeat(2000))
                .header("content-type", "application/javascript")
                .header("cache-control", "max-age=60"),
        )
        .route(
            "/app.css",
            Reply::ok("body { color : red ; }\n".repeat(50))
                .header("content-type", "text/css")
                .header("cache-control", "max-age=60"),
        )
}

/// A node tracing to `endpoint` at `ratio`, in front of `origins` (one region, in order),
/// logging access lines to stdout.
fn traced(endpoint: &str, ratio: f64, origins: &[SocketAddr]) -> String {
    config(
        &[("eu-west", 53.35, -6.26, origins)],
        &format!(
            "[[sites.routes]]\npath = \"/api/\"\ncache = false\n\
             [[sites.routes]]\npath = \"/app\"\ncompress = true\nminify = true\n\
             [tracing]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"edge-test\"\n\
             sample_ratio = {ratio:?}\n[log]\naccess = \"stdout\"\n"
        ),
    )
}

fn of_trace(spans: &[Received], trace: &str) -> Vec<Received> {
    spans
        .iter()
        .filter(|s| s.trace_id() == trace)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_sampled_request_has_a_server_span_an_attempt_span_and_the_origin_sees_the_attempt() {
    let collector = Collector::start().await;
    let origin = origin().start().await;
    let node = Node::start(&traced(&collector.endpoint(), 0.0, &[origin.addr()])).await;
    let tp = traceparent("01");
    let resp = node
        .get(
            "/api/x",
            &[("traceparent", &tp), ("tracestate", "vendor=opaque")],
        )
        .await;
    assert_eq!(resp.status(), 200);

    eventually(
        "the server and attempt spans reach the collector",
        || async { of_trace(&collector.spans(), CLIENT_TRACE).len() >= 2 },
    )
    .await;
    let spans = of_trace(&collector.spans(), CLIENT_TRACE);
    let server = spans.iter().find(|s| s.span.kind == 2).unwrap();
    assert_eq!(server.service, "edge-test");
    assert_eq!(
        server.parent_id(),
        CLIENT_SPAN,
        "the client's span is the parent"
    );
    assert_eq!(server.span.name, "GET /api/");
    assert_eq!(server.attribute("http.route").as_deref(), Some("/api/"));
    assert_eq!(
        server.attribute("http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        server.attribute("server.address").as_deref(),
        Some("test.local")
    );
    assert_eq!(
        server.attribute("meridian.cache").as_deref(),
        Some("bypass")
    );
    assert_eq!(
        server.attribute("meridian.region").as_deref(),
        Some("eu-west")
    );
    assert!(server.attribute("client.address").is_some());
    let attempt = spans.iter().find(|s| s.span.kind == 3).unwrap();
    assert_eq!(attempt.parent_id(), server.span_id());
    assert_eq!(attempt.attribute("meridian.attempt").as_deref(), Some("1"));
    assert_eq!(
        attempt.attribute("http.response.status_code").as_deref(),
        Some("200")
    );

    // The origin's own spans hang under Meridian's attempt; tracestate passes through.
    let seen = origin
        .requests()
        .into_iter()
        .find(|r| r.target == "/api/x")
        .unwrap();
    assert_eq!(
        seen.headers["traceparent"],
        format!("00-{CLIENT_TRACE}-{}-01", attempt.span_id())
    );
    assert_eq!(seen.headers["tracestate"], "vendor=opaque");

    // The access log joins: the trace id and Meridian's server span.
    eventually("the access line is written", || async {
        node.access_log()
            .iter()
            .any(|l| l["trace_id"] == CLIENT_TRACE && l["span_id"] == server.span_id())
    })
    .await;
}

#[tokio::test]
async fn a_failover_shows_two_attempts_the_first_with_its_error_and_a_fill_its_transform() {
    let collector = Collector::start().await;
    let origin = origin().start().await;
    let dead = support::node::free_addr();
    let node = Node::start(&traced(&collector.endpoint(), 1.0, &[dead, origin.addr()])).await;
    // Round robin alternates the first origin: of four requests, two meet the dead one first.
    for _ in 0..4 {
        let resp = node.get("/api/x", &[]).await;
        assert_eq!(resp.status(), 200);
    }
    let failover = || {
        let spans = collector.spans();
        spans
            .iter()
            .filter(|s| s.span.kind == 2)
            .map(|server| {
                spans
                    .iter()
                    .filter(|s| s.span.kind == 3 && s.parent_id() == server.span_id())
                    .cloned()
                    .collect::<Vec<Received>>()
            })
            .find(|a| a.len() == 2)
    };
    eventually("a request with two attempts is traced", || async {
        failover().is_some()
    })
    .await;
    let mut attempts = failover().unwrap();
    attempts.sort_by_key(|a| a.attribute("meridian.attempt"));
    assert!(
        attempts[0].is_error(),
        "the first attempt failed: {:?}",
        attempts[0].span.status
    );
    assert_eq!(
        attempts[0].attribute("server.port"),
        Some(dead.port().to_string())
    );
    assert!(!attempts[1].is_error());
    assert_eq!(
        attempts[1]
            .attribute("http.response.status_code")
            .as_deref(),
        Some("200")
    );

    // A compressing, minifying route's fill: a transform span under the request's.
    let resp = node.get("/app.css", &[("accept-encoding", "br")]).await;
    assert_eq!(resp.status(), 200);
    eventually("the transform span arrives", || async {
        collector.spans().iter().any(|s| {
            s.span.name == "transform"
                && s.attribute("meridian.transform.coding").as_deref() == Some("br")
        })
    })
    .await;
    let spans = collector.spans();
    let transform = spans.iter().find(|s| s.span.name == "transform").unwrap();
    let parent = spans
        .iter()
        .find(|s| s.span_id() == transform.parent_id())
        .unwrap();
    assert_eq!(parent.span.name, "GET /app");
    let bytes_in: i64 = transform
        .attribute("meridian.transform.bytes_in")
        .unwrap()
        .parse()
        .unwrap();
    let bytes_out: i64 = transform
        .attribute("meridian.transform.bytes_out")
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes_out < bytes_in, "{bytes_out} < {bytes_in}");

    // A fill too large to transform inline: the pool's job has its own span, under the request's.
    let resp = node.get("/app.js", &[("accept-encoding", "br")]).await;
    assert_eq!(resp.status(), 200);
    eventually("the deferred transform's span arrives", || async {
        collector
            .spans()
            .iter()
            .any(|s| s.span.name == "transform.deferred")
    })
    .await;
    let spans = collector.spans();
    let job = spans
        .iter()
        .find(|s| s.span.name == "transform.deferred")
        .unwrap();
    let parent = spans
        .iter()
        .find(|s| s.span_id() == job.parent_id())
        .unwrap();
    assert_eq!(parent.span.name, "GET /app");
    assert_eq!(job.trace_id(), parent.trace_id());
    assert_eq!(
        job.attribute("meridian.transform.result").as_deref(),
        Some("refined")
    );
}

#[tokio::test]
async fn unsampled_requests_make_no_span_and_tell_the_origin_so() {
    let collector = Collector::start().await;
    let origin = origin().start().await;
    let node = Node::start(&traced(&collector.endpoint(), 0.0, &[origin.addr()])).await;
    let tp = traceparent("00");
    for _ in 0..5 {
        assert_eq!(
            node.get("/api/x", &[("traceparent", &tp)]).await.status(),
            200
        );
    }
    assert_eq!(node.get("/api/x", &[]).await.status(), 200);
    let seen = origin.requests();
    assert_eq!(
        seen[0].headers["traceparent"], tp,
        "the client's context, unchanged"
    );
    let root = seen[5].headers["traceparent"].to_str().unwrap().to_owned();
    assert!(root.ends_with("-00"), "a new trace, not sampled: {root}");
    // One sampled request after them: only its spans arrive.
    let sampled = traceparent("01");
    assert_eq!(
        node.get("/api/x", &[("traceparent", &sampled)])
            .await
            .status(),
        200
    );
    eventually("the sampled request's spans arrive", || async {
        collector.spans().len() >= 2
    })
    .await;
    assert!(collector
        .spans()
        .iter()
        .all(|s| s.trace_id() == CLIENT_TRACE));
    assert_eq!(
        node.metric("meridian_tracing_spans_total{result=\"dropped\"}")
            .await,
        0.0
    );
}

#[tokio::test]
async fn a_dead_collector_fails_no_request_and_its_spans_are_counted() {
    let origin = origin().start().await;
    let dead = format!("http://{}", support::node::free_addr());
    let node = Node::start(&traced(&dead, 1.0, &[origin.addr()])).await;
    for _ in 0..50 {
        assert_eq!(node.get("/api/x", &[]).await.status(), 200);
    }
    eventually("the lost spans are counted", || async {
        node.metric("meridian_tracing_spans_total{result=\"failed\"}")
            .await
            + node
                .metric("meridian_tracing_spans_total{result=\"dropped\"}")
                .await
            > 0.0
    })
    .await;
}
