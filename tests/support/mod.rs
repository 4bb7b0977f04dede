//! Harness shared by the end-to-end tests: real origins, the real binary, loopback only.
// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]
// The harness runs only inside tests: a failed setup step should fail the test, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod coding;
pub mod disk;
pub mod dns;
pub mod geoip;
pub mod nats;
pub mod node;
pub mod origin;
pub mod otlp;
pub mod tls;

pub use node::Node;
pub use origin::{Origin, Reply};

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long `eventually` and readiness waits may take: 5 s, or `MERIDIAN_TEST_PATIENCE_MS`.
pub fn patience() -> Duration {
    std::env::var("MERIDIAN_TEST_PATIENCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// How much slower than usual this machine may be: `patience()` over its 5 s default (1.0
/// unless `MERIDIAN_TEST_PATIENCE_MS` says otherwise). Wall-clock upper bounds in tests are
/// multiplied by it, so a loaded CI machine can be given more room without editing tests.
pub fn patience_factor() -> f64 {
    (patience().as_secs_f64() / 5.0).max(1.0)
}

/// An upper bound on wall time, scaled by [`patience_factor`].
pub fn within(bound: Duration) -> Duration {
    bound.mul_f64(patience_factor())
}

/// Polls `check` every 15 ms until it returns true or patience runs out.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + patience();
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// Sends `raw` bytes on a fresh connection to `addr` and returns the status line (or what
/// came, if none): for requests no HTTP client library would send.
pub async fn raw_status(addr: SocketAddr, raw: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(patience(), s.read(&mut buf))
        .await
        .map_or(0, |r| r.unwrap_or(0));
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or("").to_owned()
}

/// Sends `request` on one blocking connection to `addr` and reads until it is closed (run it
/// on a multi-threaded test runtime: the origin keeps serving meanwhile).
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(patience())).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// A client that ignores any proxy set in the environment: tests talk to loopback only.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A response header as a string, empty when absent.
pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned())
}

/// The test site's host name.
pub const HOST: &str = "test.local";

/// A config with one region per entry of `regions` (name, lat, lon, origins) and one site
/// `test` on [`HOST`] whose `/` route caches and goes to the nearest region. `extra` is
/// appended (more routes, tables).
pub fn config(regions: &[(&str, f64, f64, &[SocketAddr])], extra: &str) -> String {
    let mut text = String::from(
        "[node]\nname = \"edge-test\"\nlocation = { lat = 53.35, lon = -6.26 }\nthreads = 2\n\n\
         [listen]\nhttp = [\"@HTTP@\"]\nadmin = \"@ADMIN@\"\n\n\
         [admin]\ntoken = \"test-token\"\n\n\
         [upstream]\nconnect_timeout = \"500ms\"\nread_timeout = \"5s\"\n\n",
    );
    for (name, lat, lon, origins) in regions {
        let list: Vec<String> = origins.iter().map(|a| format!("\"{a}\"")).collect();
        text.push_str(&format!(
            "[[regions]]\nname = \"{name}\"\nlocation = {{ lat = {lat}, lon = {lon} }}\norigins = [{}]\n\n",
            list.join(", ")
        ));
    }
    text.push_str(&format!(
        "[[sites]]\nname = \"test\"\nhosts = [\"{HOST}\"]\n\n[[sites.routes]]\npath = \"/\"\ncache = true\n\n"
    ));
    text.push_str(extra);
    text
}

/// `config` with its node trusting `X-Forwarded-For` from loopback peers (the test client),
/// as a node behind a load balancer does.
pub fn behind_trusted_proxy(config: &str) -> String {
    config.replace(
        "admin = \"@ADMIN@\"",
        "admin = \"@ADMIN@\"\ntrusted_proxies = [\"127.0.0.0/8\"]",
    )
}

/// A config with one region of the given origins.
pub fn one_region(origins: &[SocketAddr], extra: &str) -> String {
    config(&[("eu-west", 53.35, -6.26, origins)], extra)
}

/// A process started by a test, killed and reaped when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
