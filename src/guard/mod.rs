//! Connection-level protection in front of the HTTP proxy: the connection limits and the
//! request-header deadline, applied to each accepted (and TLS-terminated) connection before
//! pingora's HTTP code reads a byte of it.

pub mod client_key;
pub mod connections;
pub mod rate;
pub mod stream;

use crate::config::live::Live;
use crate::metrics::Metrics;
use async_trait::async_trait;
use connections::{ConnectionGate, Refusal};
use pingora_core::apps::ServerApp;
use pingora_core::protocols::tls::ALPN;
use pingora_core::protocols::{Stream, IO};
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use std::time::Duration;
use stream::GuardedStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What an HTTP/1 client over a connection limit reads before the connection closes.
const OVER_LIMIT_BODY: &str = "too many connections; retry soon\n";

/// Wraps a pingora app (the proxy) with Meridian's connection guard.
pub struct Guarded<A> {
    inner: Arc<A>,
    live: Arc<Live>,
    gate: Arc<ConnectionGate>,
    metrics: Arc<Metrics>,
}

impl<A> Guarded<A> {
    pub fn new(
        inner: A,
        live: Arc<Live>,
        gate: Arc<ConnectionGate>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Guarded {
            inner: Arc::new(inner),
            live,
            gate,
            metrics,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Read once per connection: a reload applies to connections accepted after it.
        let limits = self.live.peek().limits.clone();
        let header_timeout = limits.header_timeout;
        // A connection pingora hands back for its next request is already admitted.
        let stream: Stream = if IO::as_any(&*stream).is::<GuardedStream>() {
            let mut guarded = stream.into_any().downcast::<GuardedStream>().ok()?;
            guarded.rearm(header_timeout);
            guarded
        } else {
            let ip = stream
                .get_socket_digest()
                .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()))
                .map(|ip| client_key::client_key(ip, limits.ipv6_prefix));
            match self
                .gate
                .enter(ip, limits.max_connections, limits.max_connections_per_ip)
            {
                Ok(permit) => {
                    let mut guarded = GuardedStream::new(stream, header_timeout, permit);
                    // Wait for the first request's bytes here, not in pingora: pingora aborts
                    // every connection still waiting for a request when shutdown begins, so
                    // a connection accepted just before a graceful upgrade hands the sockets
                    // over would be closed unanswered. Bytes that arrive are read ahead and
                    // served, as the client expects of a connection that was accepted.
                    match guarded.read_ahead(1).await {
                        Ok(true) => Box::new(guarded),
                        Ok(false) => return None,
                        Err(e) => {
                            log::debug!("connection closed before its first request: {e}");
                            return None;
                        }
                    }
                }
                Err(refusal) => {
                    self.refuse(stream, refusal).await;
                    return None;
                }
            }
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

impl<A> Guarded<A> {
    /// Answers 503 to an HTTP/1 client over a limit (nginx's limit_conn answer), after
    /// reading what it sent so the close is not a reset that loses the answer; an h2 client
    /// is closed (it retries on another connection).
    async fn refuse(&self, mut stream: Stream, refusal: Refusal) {
        self.metrics.guard.connection_refused(refusal);
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return;
        }
        let mut request = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut request)).await;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{OVER_LIMIT_BODY}",
            OVER_LIMIT_BODY.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.flush().await;
        let _ = AsyncWriteExt::shutdown(&mut stream).await;
    }
}
