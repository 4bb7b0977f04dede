//! The floor under Meridian's uncached proxy path: pingora proxying to one origin and doing
//! nothing else (no routing, no cache phase, no metrics, no log, no headers added).
//!
//! `benches/load/run.py --bare-pingora` runs it beside Meridian and nginx in the proxy-1k
//! scenario: its CPU per request over nginx's is what pingora's HTTP/1 path costs before any
//! of Meridian's work, the part of issue 13's "<= 1.2x nginx" that no change inside Meridian
//! can remove. It runs as Meridian does: one worker thread, the same pingora (the vendored
//! pingora-core), mimalloc, a keep-alive pool to the origin of at least 128.
//!
//!     cargo build --release --example bare_pingora
//!     target/release/examples/bare_pingora 127.0.0.1:LISTEN 127.0.0.1:ORIGIN

use async_trait::async_trait;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::Result;
use pingora_proxy::{ProxyHttp, Session};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    origin: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.origin.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, origin] = args.as_slice() else {
        eprintln!("usage: bare_pingora LISTEN_ADDR ORIGIN_ADDR (both on 127.0.0.0/8)");
        return ExitCode::from(2);
    };
    let mut conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    conf.upstream_keepalive_pool_size = conf.upstream_keepalive_pool_size.max(128);
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora_proxy::http_proxy_service(
        &server.configuration,
        Bare {
            origin: origin.clone(),
        },
    );
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever()
}
