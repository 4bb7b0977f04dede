//! The dashboard and the alert rules against a real Prometheus (issue 17): a node under
//! traffic (hits, misses, a compressed fill, geo-DNS, TLS, and a failover) is scraped by
//! Debian's `prometheus`, and every query of dashboards/meridian.json must return data and
//! every metric an alert in dashboards/alerts.yml reads must exist. A renamed metric or
//! label breaks this test instead of a dashboard. The rules also pass `promtool check rules`
//! and their unit tests (`promtool test rules`).
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::node::free_addr;
use support::{eventually, KillOnDrop, Node, Origin, Reply, HOST};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(root().join("dashboards"))
            .output()
            .unwrap_or_else(|e| panic!("promtool (Debian package prometheus) is needed: {e}"));
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A node with two regions, a TLS site, a compressing route and a geo-DNS zone.
fn node_config(dir: &Path, eu: SocketAddr, us: SocketAddr) -> String {
    support::tls::certificate(dir, "secure.test");
    let region = |name: &str, lat: f64, lon: f64, origin: SocketAddr, dns: &str| {
        format!(
            "[[regions]]\nname = \"{name}\"\nlocation = {{ lat = {lat}, lon = {lon} }}\n\
             origins = [\"{origin}\"]\ndns_addresses = [\"{dns}\"]\n\
             [regions.health_check]\nkind = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n\
             unhealthy_after = 1\nhealthy_after = 1\njitter = \"1ms\"\n\n"
        )
    };
    format!(
        "[node]\nname = \"edge-dash\"\nlocation = {{ lat = 53.35, lon = -6.26 }}\nthreads = 2\n\n\
         [listen]\nhttp = [\"@HTTP@\"]\nhttps = [\"{https}\"]\nadmin = \"@ADMIN@\"\n\n\
         [upstream]\nconnect_timeout = \"200ms\"\n\n{}{}\
         [[sites]]\nname = \"test\"\nhosts = [\"{HOST}\"]\n\
         [[sites.routes]]\npath = \"/\"\n[[sites.routes]]\npath = \"/css/\"\ncompress = true\nminify = true\n\n\
         [[sites]]\nname = \"secure\"\nhosts = [\"secure.test\"]\n\
         tls = {{ cert = \"{d}/secure.test.pem\", key = \"{d}/secure.test.key\" }}\n\
         [[sites.routes]]\npath = \"/\"\n\n\
         [dns]\nlisten = [\"@DNS@\"]\n\n\
         [[dns.zones]]\nname = \"example.test\"\nns = [\"ns1.example.test\"]\n\
         hostmaster = \"hostmaster.example.test\"\n\n\
         [[dns.zones.records]]\nname = \"www\"\ntype = \"geo\"\n",
        region("eu-west", 53.35, -6.26, eu, "127.0.0.1"),
        region("us-east", 39.04, -77.49, us, "127.0.0.2"),
        https = free_addr(),
        d = dir.display(),
    )
}

fn origin() -> support::origin::OriginBuilder {
    let css = "body { color : red ; }\n".repeat(100);
    Origin::builder()
        .route(
            "/page",
            Reply::ok("page").header("cache-control", "max-age=60"),
        )
        .route("/api", Reply::ok("api").header("cache-control", "no-store"))
        .route(
            "/css/site.css",
            Reply::ok(css)
                .header("content-type", "text/css")
                .header("cache-control", "max-age=60"),
        )
}

/// Traffic that gives every panel something to show.
async fn traffic(node: &Node) {
    for _ in 0..3 {
        assert_eq!(node.get("/page", &[]).await.status(), 200);
        assert_eq!(node.get("/api", &[]).await.status(), 200);
        node.get("/css/site.css", &[("accept-encoding", "br")])
            .await;
        node.get("/missing", &[]).await;
    }
    let query = support::dns::plain_query("www.example.test.", hickory_proto::rr::RecordType::A);
    support::dns::ask(node.dns, &query).await;
}

/// Prometheus scraping `target` every second, its data in `dir`.
fn prometheus(dir: &Path, target: SocketAddr) -> (KillOnDrop, SocketAddr) {
    let listen = free_addr();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: meridian\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("prometheus (Debian package prometheus) is needed: {e}"));
    (KillOnDrop(child), listen)
}

/// The result vector of an instant query, or the error Prometheus gave.
async fn query(prometheus: SocketAddr, expr: &str) -> Result<Vec<serde_json::Value>, String> {
    let resp = support::plain_client()
        .get(format!("http://{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value =
        serde_json::from_str(&resp.text().await.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Every PromQL expression of the dashboard, with Grafana's variables given test values.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("dashboards/meridian.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$site", ".*");
            out.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    out
}

/// Every alert's expression, and the metric selectors in it (`name{matchers}` or `name`).
fn alert_expressions() -> Vec<(String, String, Vec<String>)> {
    let text = std::fs::read_to_string(root().join("dashboards/alerts.yml")).unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap().to_owned();
            out.push((
                rule["alert"].as_str().unwrap().to_owned(),
                expr.clone(),
                selectors(&expr),
            ));
        }
    }
    out
}

fn selectors(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("meridian_") {
        let tail = &rest[start..];
        let name_len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let mut selector = tail[..name_len].to_owned();
        if tail[name_len..].starts_with('{') {
            let end = tail[name_len..].find('}').unwrap();
            selector.push_str(&tail[name_len..=name_len + end]);
        }
        rest = &tail[name_len..];
        out.push(selector);
    }
    out
}

#[tokio::test]
async fn every_dashboard_query_and_every_metric_the_alerts_read_has_data_from_a_real_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let eu = origin().start().await;
    let us = origin().start().await;
    let node = Node::start(&node_config(dir.path(), eu.addr(), us.addr())).await;
    traffic(&node).await;
    // A failover: eu-west's origin dies; requests go to us-east, eu-west goes down.
    eu.stop();
    eventually("eu-west is down", || async {
        node.metric("meridian_region_up{region=\"eu-west\"}").await == 0.0
    })
    .await;
    traffic(&node).await;

    let (_prometheus, addr) = prometheus(dir.path(), node.admin);
    let patience = support::within(Duration::from_secs(20));
    let deadline = std::time::Instant::now() + patience;
    loop {
        let scrapes = query(addr, "count_over_time(up{job=\"meridian\"}[1m])").await;
        if scrapes.as_ref().is_ok_and(|r| {
            r.first()
                .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
                .is_some_and(|n| n >= 4.0)
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never scraped the node: {scrapes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Traffic between scrapes, so that rates are above zero.
    traffic(&node).await;

    let mut failures = Vec::new();
    let queries = dashboard_queries();
    assert!(queries.len() >= 40, "{} queries", queries.len());
    for (panel, expr) in &queries {
        match query(addr, expr).await {
            Ok(result) if result.is_empty() => failures.push(format!("{panel}: no data: {expr}")),
            Ok(_) => {}
            Err(e) => failures.push(format!("{panel}: {e}: {expr}")),
        }
    }
    let alerts = alert_expressions();
    assert!(alerts.len() >= 8);
    for (alert, expr, selectors) in &alerts {
        if let Err(e) = query(addr, expr).await {
            failures.push(format!("alert {alert}: {e}"));
        }
        for selector in selectors {
            match query(addr, selector).await {
                Ok(result) if result.is_empty() => {
                    failures.push(format!("alert {alert}: no series {selector}"))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("alert {alert}: {selector}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn selectors_are_found_with_their_matchers() {
    assert_eq!(
        selectors("sum(rate(meridian_a_total{x=\"1\"}[5m])) / meridian_b > 0"),
        ["meridian_a_total{x=\"1\"}", "meridian_b"]
    );
}
