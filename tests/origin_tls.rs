//! TLS and HTTP/2 to origins: a region whose origin is a second Meridian node on HTTPS
//! (verified against a configured CA, with SNI), HTTP/2 negotiated by ALPN, and h2c.
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use support::tls::certificate;
use support::{eventually, node::free_addr, KillOnDrop, Node, Origin, Reply, HOST};

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

/// A CA, an origin certificate for origin.test and a client certificate, both signed by it.
const MTLS_SETUP: &str = r#"set -e
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
openssl req -x509 $ec -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,digitalSignature
for who in origin client; do
  openssl req $ec -subj /CN=$who.test -keyout $who.key -out $who.csr
  printf 'subjectAltName=DNS:%s.test\n' $who > $who.ext
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -out $who.pem -extfile $who.ext
done
printf 'served by openssl s_server\n' > page
"#;

#[tokio::test]
async fn a_client_certificate_is_presented_to_an_origin_that_requires_one() {
    let dir = tempfile::tempdir().unwrap();
    support::tls::run_script(dir.path(), MTLS_SETUP);
    // openssl's test server, serving files from `dir` and refusing clients without a
    // certificate signed by the CA (-Verify).
    let port = free_addr();
    let _server = KillOnDrop(
        std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept", &port.to_string()])
            .args([
                "-cert",
                "origin.pem",
                "-key",
                "origin.key",
                "-CAfile",
                "ca.pem",
            ])
            .args(["-Verify", "1"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("openssl s_server listens", || async {
        tokio::net::TcpStream::connect(port).await.is_ok()
    })
    .await;

    let d = dir.path().display();
    let with_cert = format!(
        "tls = {{ sni = \"origin.test\", ca = \"{d}/ca.pem\", cert = \"{d}/client.pem\", key = \"{d}/client.key\" }}\n"
    );
    let edge = edge_node(port, &with_cert).await;
    let resp = edge.get("/page", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "served by openssl s_server\n");

    let without = format!("tls = {{ sni = \"origin.test\", ca = \"{d}/ca.pem\" }}\n");
    let refused = edge_node(port, &without).await;
    assert_eq!(
        refused.get("/page", &[]).await.status(),
        502,
        "the origin refuses a client without a certificate"
    );
}
