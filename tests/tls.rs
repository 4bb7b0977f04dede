//! HTTPS: certificates per site by SNI, h2 and http/1.1 by ALPN, served and cached, spoken to
//! with curl (a real TLS and HTTP/2 client).
// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use support::tls::certificate;
use support::{Node, Origin, Reply};

fn config(dir: &Path, origin: SocketAddr, tls_table: &str) -> String {
    let site = |name: &str| {
        format!(
            "[[sites]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\n\
             tls = {{ cert = \"{d}/{name}.test.pem\", key = \"{d}/{name}.test.key\" }}\n\n\
             [[sites.routes]]\npath = \"/\"\n\n",
            d = dir.display()
        )
    };
    format!(
        "[node]\nname = \"edge-tls\"\nlocation = {{ lat = 53.35, lon = -6.26 }}\nthreads = 1\n\n\
         [listen]\nhttp = [\"@HTTP@\"]\nhttps = [\"@HTTPS@\"]\nadmin = \"@ADMIN@\"\n\n{tls_table}\n\
         [[regions]]\nname = \"eu\"\nlocation = {{ lat = 53.35, lon = -6.26 }}\norigins = [\"{origin}\"]\n\n\
         [regions.health_check]\nkind = \"tcp\"\n\n{}{}",
        site("a"),
        site("b"),
    )
}

/// curl over HTTPS to `host` at `addr`, trusting `ca`; (exit status, stdout, stderr).
async fn curl(
    addr: SocketAddr,
    host: &str,
    ca: Option<&Path>,
    extra: &[&str],
) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "-D", "-", "--max-time", "5", "--resolve"])
        .arg(format!("{host}:{}:127.0.0.1", addr.port()));
    match ca {
        Some(ca) => cmd.arg("--cacert").arg(ca),
        None => cmd.arg("-k"),
    };
    let out = cmd
        .args(extra)
        .arg(format!("https://{host}:{}/page", addr.port()))
        .output()
        .await
        .unwrap_or_else(|e| panic!("curl is needed by the HTTPS tests: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn start(tls_table: &str) -> (Node, Origin, tempfile::TempDir) {
    start_with(tls_table, |text| text).await
}

/// [`start`], with `edit` applied to the node's config text first.
async fn start_with(
    tls_table: &str,
    edit: impl FnOnce(String) -> String,
) -> (Node, Origin, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path(), "a.test");
    certificate(dir.path(), "b.test");
    let origin = Origin::builder()
        .route(
            "/page",
            Reply::ok("hello over tls").header("cache-control", "max-age=60"),
        )
        .route(
            "/big",
            Reply::ok(vec![b'x'; BIG]).header("cache-control", "no-store"),
        )
        .start()
        .await;
    let https = support::node::free_addr();
    let text = config(dir.path(), origin.addr(), tls_table).replace("@HTTPS@", &https.to_string());
    let node = Node::start(&edit(text)).await;
    // The node is ready on HTTP; wait for the TLS listener too.
    support::eventually("the HTTPS listener accepts", || async {
        tokio::net::TcpStream::connect(https).await.is_ok()
    })
    .await;
    std::fs::write(dir.path().join("https-addr"), https.to_string()).unwrap();
    (node, origin, dir)
}

/// The long download's size: 2 MiB at curl's `--limit-rate 1M` takes about two seconds.
const BIG: usize = 2 << 20;

fn https_addr(dir: &Path) -> SocketAddr {
    std::fs::read_to_string(dir.join("https-addr"))
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn each_sni_name_gets_its_sites_certificate_and_h2_is_served_and_cached() {
    let (_node, origin, dir) = start("").await;
    let addr = https_addr(dir.path());
    for host in ["a.test", "b.test"] {
        // Verification against that one certificate proves which one the server chose.
        let ca = dir.path().join(format!("{host}.pem"));
        let (ok, headers, err) = curl(addr, host, Some(&ca), &["--http2"]).await;
        assert!(ok, "{host}: {err}");
        assert!(headers.starts_with("HTTP/2 200"), "{host}: {headers}");
        let other = dir.path().join(if host == "a.test" {
            "b.test.pem"
        } else {
            "a.test.pem"
        });
        let (ok, _, _) = curl(addr, host, Some(&other), &[]).await;
        assert!(
            !ok,
            "{host} must not be served the other site's certificate"
        );
    }
    let ca = dir.path().join("a.test.pem");
    let (_, headers, _) = curl(addr, "a.test", Some(&ca), &["--http2"]).await;
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("cache-status: edge-tls; hit"),
        "{headers}"
    );
    let (ok, headers, err) = curl(addr, "a.test", Some(&ca), &["--http1.1"]).await;
    assert!(ok && headers.starts_with("HTTP/1.1 200"), "{headers}{err}");
    let forwarded = origin.requests();
    let first = forwarded.iter().find(|r| r.target == "/page").unwrap();
    assert_eq!(first.headers["x-forwarded-proto"], "https");
    let host = first.headers["host"].to_str().unwrap();
    assert!(
        host.starts_with("a.test") || host.starts_with("b.test"),
        "{host}"
    );
}

#[tokio::test]
async fn an_unknown_sni_name_gets_the_default_certificate_or_is_refused() {
    let (_node, _origin, dir) = start("").await;
    let addr = https_addr(dir.path());
    let (ok, _, err) = curl(addr, "c.test", None, &["-v"]).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("subject: CN=a.test"),
        "default: the first site's certificate:\n{err}"
    );

    let (_node, _origin, dir) = start("[tls]\nunknown_sni = \"refuse\"\n").await;
    let addr = https_addr(dir.path());
    let (ok, _, _) = curl(addr, "c.test", None, &[]).await;
    assert!(!ok, "refused");
    let ca = dir.path().join("b.test.pem");
    let (ok, _, err) = curl(addr, "b.test", Some(&ca), &[]).await;
    assert!(ok, "known names still work: {err}");
}

#[tokio::test]
async fn reload_swaps_a_certificate_while_a_long_download_on_the_old_connection_completes() {
    let (node, _origin, dir) = start("[admin]\ntoken = \"test-token\"\n").await;
    let addr = https_addr(dir.path());
    let old_ca = dir.path().join("old-a.pem");
    std::fs::copy(dir.path().join("a.test.pem"), &old_ca).unwrap();
    let out = dir.path().join("big.out");
    let download = tokio::process::Command::new("curl")
        .args(["-sS", "--http1.1", "--limit-rate", "1M", "--max-time", "30"])
        .arg("--resolve")
        .arg(format!("a.test:{}:127.0.0.1", addr.port()))
        .arg("--cacert")
        .arg(&old_ca)
        .arg("-o")
        .arg(&out)
        .args(["-w", "%{http_code} %{size_download}"])
        .arg(format!("https://a.test:{}/big", addr.port()))
        .output();
    let download = tokio::spawn(download);
    support::eventually("the long download has started", || async {
        std::fs::metadata(&out).is_ok_and(|m| m.len() > 0)
    })
    .await;

    certificate(dir.path(), "a.test");
    let resp = support::plain_client()
        .post(format!("http://{}/reload", node.admin))
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "{body}");

    let new_ca = dir.path().join("a.test.pem");
    let (ok, _, err) = curl(addr, "a.test", Some(&new_ca), &[]).await;
    assert!(ok, "a new handshake gets the new certificate: {err}");
    let (ok, _, _) = curl(addr, "a.test", Some(&old_ca), &[]).await;
    assert!(!ok, "a new handshake must not get the old certificate");

    let done = download.await.unwrap().unwrap();
    let summary = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(
        done.status.success(),
        "the download on the old connection failed: {summary} {}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        summary,
        format!("200 {BIG}"),
        "the old connection's download was cut"
    );
}

/// A certificate for `host` valid for `days`, made by the openssl command line (rcgen needs
/// a calendar date; openssl counts days from now).
fn short_lived_certificate(dir: &Path, host: &str, days: u32) {
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            &days.to_string(),
            "-subj",
            &format!("/CN={host}"),
        ])
        .args(["-addext", &format!("subjectAltName=DNS:{host}")])
        .arg("-keyout")
        .arg(dir.join(format!("{host}.key")))
        .arg("-out")
        .arg(dir.join(format!("{host}.pem")))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl is needed by this test: {e}"));
    assert!(status.success());
}

/// An origin answering `/page`, never stored.
async fn page_origin() -> Origin {
    Origin::builder()
        .route(
            "/page",
            Reply::ok("page").header("cache-control", "no-store"),
        )
        .start()
        .await
}

#[tokio::test]
async fn https_redirect_hsts_and_a_certificate_expiring_soon() {
    let dir = tempfile::tempdir().unwrap();
    short_lived_certificate(dir.path(), "a.test", 5);
    certificate(dir.path(), "b.test");
    let origin = page_origin().await;
    let https = support::node::free_addr();
    let a_policy =
        "https_redirect = true\nhsts = { max_age = \"365d\", include_subdomains = true }\n";
    let text = config(dir.path(), origin.addr(), "")
        .replace("@HTTPS@", &https.to_string())
        .replacen(
            "a.test.key\" }\n",
            &format!("a.test.key\" }}\n{a_policy}"),
            1,
        );
    let node = Node::start(&text).await;
    support::eventually("the HTTPS listener accepts", || async {
        tokio::net::TcpStream::connect(https).await.is_ok()
    })
    .await;

    let plain = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("a.test", node.http)
        .resolve("b.test", node.http)
        .build()
        .unwrap();
    let resp = plain
        .post(node.url("a.test", "/page?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308, "308 keeps the method");
    assert_eq!(
        support::header(&resp, "location"),
        format!("https://a.test:{}/page?x=1", https.port())
    );
    let resp = plain.get(node.url("b.test", "/page")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "b has no redirect");
    assert_eq!(support::header(&resp, "strict-transport-security"), "");

    let ca = dir.path().join("a.test.pem");
    let (ok, headers, err) = curl(https, "a.test", Some(&ca), &[]).await;
    assert!(ok, "{err}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000; includesubdomains"),
        "{headers}"
    );
    let b_ca = dir.path().join("b.test.pem");
    let (_, headers, _) = curl(https, "b.test", Some(&b_ca), &[]).await;
    assert!(
        !headers.to_ascii_lowercase().contains("strict-transport"),
        "{headers}"
    );

    let left = node
        .metric("meridian_tls_certificate_expiry_seconds{site=\"a\"}")
        .await;
    assert!(
        (4.0 * 86_400.0..=5.0 * 86_400.0).contains(&left),
        "a's certificate has 4-5 days left, the gauge says {left} s"
    );
    assert!(
        node.stderr().contains("certificate expires in"),
        "{}",
        node.stderr()
    );
}

/// A CA, a certificate it signs for `a.test`, and a "good" OCSP response for it, all made by
/// the openssl command line as an operator would (`openssl ocsp` as the responder).
const OCSP_SETUP: &str = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=test-ca -keyout ca.key -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=a.test \
  -keyout a.test.key -out a.csr
printf 'subjectAltName=DNS:a.test\n' > ext
openssl x509 -req -in a.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -out a.test.pem -extfile ext
serial=$(openssl x509 -in a.test.pem -noout -serial | cut -d= -f2)
end=$(date -u -d "$(openssl x509 -in a.test.pem -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=a.test\n' "$end" "$serial" > index.txt
openssl ocsp -issuer ca.pem -cert a.test.pem -reqout req.der -no_nonce
openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin req.der \
  -respout a.test.ocsp -ndays 1
"#;

/// What `openssl s_client -status` prints about the stapled OCSP response for `host`.
async fn stapled(addr: SocketAddr, host: &str, ca: &Path) -> String {
    let out = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-status",
            "-connect",
            &addr.to_string(),
            "-servername",
            host,
        ])
        .arg("-CAfile")
        .arg(ca)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_configured_ocsp_response_is_stapled() {
    let dir = tempfile::tempdir().unwrap();
    support::tls::run_script(dir.path(), OCSP_SETUP);
    certificate(dir.path(), "b.test");
    let origin = Origin::builder()
        .route("/page", Reply::ok("page"))
        .start()
        .await;
    let https = support::node::free_addr();
    let ocsp = format!(
        "a.test.key\", ocsp = \"{}/a.test.ocsp\" }}\n",
        dir.path().display()
    );
    let text = config(dir.path(), origin.addr(), "")
        .replace("@HTTPS@", &https.to_string())
        .replacen("a.test.key\" }\n", &ocsp, 1);
    let _node = Node::start(&text).await;
    support::eventually("the HTTPS listener accepts", || async {
        tokio::net::TcpStream::connect(https).await.is_ok()
    })
    .await;

    let a = stapled(https, "a.test", &dir.path().join("ca.pem")).await;
    assert!(a.contains("OCSP Response Status: successful"), "{a}");
    assert!(a.contains("Cert Status: good"), "{a}");
    let b = stapled(https, "b.test", &dir.path().join("b.test.pem")).await;
    assert!(
        b.contains("OCSP response: no response sent"),
        "b staples nothing: {b}"
    );
}

#[tokio::test]
async fn issue_13_cache_key_scheme_keys_https_apart_only_where_a_route_asks() {
    // Site b's route (the last one) keys on the scheme; site a's shares http and https.
    let (node, origin, dir) = start_with("", |mut text| {
        let route = "[[sites.routes]]\npath = \"/\"\n";
        let last = text.rfind(route).unwrap();
        text.insert_str(last + route.len(), "cache_key = { scheme = true }\n");
        text
    })
    .await;
    let https = https_addr(dir.path());
    let plain = |host: &'static str| {
        let node = &node;
        async move {
            let r = node
                .client(&[host])
                .get(node.url(host, "/page"))
                .send()
                .await
                .unwrap();
            support::header(&r, "cache-status")
        }
    };
    let (ok, headers, err) = curl(https, "a.test", None, &[]).await;
    assert!(ok && headers.contains("stored"), "{headers} {err}");
    assert!(
        plain("a.test").await.contains("hit"),
        "http shares https's object on a"
    );
    let (ok, headers, err) = curl(https, "b.test", None, &[]).await;
    assert!(ok && headers.contains("stored"), "{headers} {err}");
    assert!(
        plain("b.test").await.contains("stored"),
        "http is its own object on b"
    );
    let (_, again, _) = curl(https, "b.test", None, &[]).await;
    assert!(again.contains("hit"), "{again}");
    assert_eq!(origin.hits("/page"), 3, "a: one object; b: one per scheme");
}

/// A shield behind its edges hears plain HTTP: `X-Forwarded-Proto: https` from a trusted
/// peer counts as TLS (no redirect, HSTS given), and from any other peer is not believed.
#[tokio::test]
async fn x_forwarded_proto_https_from_a_trusted_proxy_counts_as_tls() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path(), "a.test");
    certificate(dir.path(), "b.test");
    let origin = page_origin().await;
    let text = |trusted: &str| {
        config(dir.path(), origin.addr(), "")
            .replace("@HTTPS@", &support::node::free_addr().to_string())
            .replace(
                "admin = \"@ADMIN@\"",
                &format!("admin = \"@ADMIN@\"\n{trusted}"),
            )
            .replacen(
                "a.test.key\" }\n",
                "a.test.key\" }\nhttps_redirect = true\nhsts = { max_age = \"1d\" }\n",
                1,
            )
    };
    let behind = Node::start(&text("trusted_proxies = [\"127.0.0.0/8\"]")).await;
    let exposed = Node::start(&text("")).await;
    let status_of = |node: &Node, proto: &'static str| {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .resolve("a.test", node.http)
            .build()
            .unwrap();
        let url = node.url("a.test", "/page");
        async move {
            let resp = client
                .get(url)
                .header("x-forwarded-proto", proto)
                .send()
                .await
                .unwrap();
            let hsts = support::header(&resp, "strict-transport-security");
            (resp.status().as_u16(), hsts)
        }
    };
    assert_eq!(
        status_of(&behind, "https").await,
        (200, "max-age=86400".into())
    );
    assert_eq!(status_of(&behind, "http").await.0, 308);
    assert_eq!(status_of(&exposed, "https").await, (308, String::new()));
}
