//! TLS and HTTP/2 to origins: a region whose origin is a second Meridian node on HTTPS
//! (verified against a configured CA, with SNI), HTTP/2 negotiated by ALPN, and h2c.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use support::tls::certificate;
use support::{eventually, node::free_addr, Node, Origin, Reply, HOST};

/// The inner node: HTTPS (certificate for origin.test, any SNI) and h2c on HTTP, in front
/// of the real origin. Returns it and its HTTPS address.
async fn inner_node(dir: &Path, origin: SocketAddr) -> (Node, SocketAddr) {
    let https = free_addr();
    let text = format!(
        "[node]\nname = \"inner\"\nlocation = {{ lat = 0.0, lon = 0.0 }}\nthreads = 1\n\n\
         [listen]\nhttp = [\"@HTTP@\"]\nhttps = [\"{https}\"]\nh2c = true\nadmin = \"@ADMIN@\"\n\n\
         [[regions]]\nname = \"app\"\nlocation = {{ lat = 0.0, lon = 0.0 }}\norigins = [\"{origin}\"]\n\n\
         [[sites]]\nname = \"inner\"\nhosts = [\"{HOST}\"]\n\
         tls = {{ cert = \"{d}/origin.test.pem\", key = \"{d}/origin.test.key\" }}\n\n\
         [[sites.routes]]\npath = \"/\"\ncache = false\n",
        d = dir.display()
    );
    let node = Node::start(&text).await;
    eventually("the inner HTTPS listener accepts", || async {
        tokio::net::TcpStream::connect(https).await.is_ok()
    })
    .await;
    (node, https)
}

/// The edge node, whose one region is `upstream` reached as `region_extra` says.
async fn edge_node(upstream: SocketAddr, region_extra: &str) -> Node {
    let text = format!(
        "[node]\nname = \"edge\"\nlocation = {{ lat = 0.0, lon = 0.0 }}\nthreads = 1\n\n\
         [listen]\nhttp = [\"@HTTP@\"]\nadmin = \"@ADMIN@\"\n\n\
         [[regions]]\nname = \"inner\"\nlocation = {{ lat = 0.0, lon = 0.0 }}\norigins = [\"{upstream}\"]\n\
         {region_extra}\n[regions.health_check]\nkind = \"tcp\"\n\n\
         [[sites]]\nname = \"edge\"\nhosts = [\"{HOST}\"]\n\n[[sites.routes]]\npath = \"/\"\ncache = false\n"
    );
    Node::start(&text).await
}

/// The protocols of the inner node's access-log entries for `/page`.
fn inner_protocols(inner: &Node) -> Vec<String> {
    inner
        .access_log()
        .iter()
        .filter(|e| e["path"] == "/page")
        .map(|e| e["proto"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn tls_with_a_configured_ca_and_sni_and_h2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path(), "origin.test");
    certificate(dir.path(), "stranger.test");
    let origin = Origin::builder()
        .route("/page", Reply::ok("from the origin"))
        .start()
        .await;
    let (inner, https) = inner_node(dir.path(), origin.addr()).await;

    let tls = |ca: &str| {
        format!(
            "http2 = true\ntls = {{ sni = \"origin.test\", ca = \"{}/{ca}.pem\" }}\n",
            dir.path().display()
        )
    };
    let edge = edge_node(https, &tls("origin.test")).await;
    let resp = edge.get("/page", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "from the origin");
    let seen = origin.requests();
    let last = seen.iter().rfind(|r| r.target == "/page").unwrap();
    assert_eq!(
        last.headers["x-forwarded-proto"], "https",
        "the inner node was reached over TLS"
    );
    eventually("the inner node logged an HTTP/2 request", || async {
        inner_protocols(&inner).iter().any(|p| p == "HTTP/2.0")
    })
    .await;

    // A CA that did not sign the origin's certificate: no connection, 502.
    let untrusting = edge_node(https, &tls("stranger.test")).await;
    assert_eq!(untrusting.get("/page", &[]).await.status(), 502);
    assert_eq!(origin.hits("/page"), 1, "nothing got through unverified");
}

#[tokio::test]
async fn h2c_to_an_origin_by_prior_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path(), "origin.test");
    let origin = Origin::builder()
        .route("/page", Reply::ok("over h2c"))
        .start()
        .await;
    let (inner, _) = inner_node(dir.path(), origin.addr()).await;
    let edge = edge_node(inner.http, "http2 = true\n").await;
    let resp = edge.get("/page", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "over h2c");
    eventually("the inner node logged an h2c request", || async {
        inner_protocols(&inner) == ["HTTP/2.0"]
    })
    .await;
    let seen = origin.requests();
    let last = seen.iter().rfind(|r| r.target == "/page").unwrap();
    assert_eq!(last.headers["x-forwarded-proto"], "http");
}
