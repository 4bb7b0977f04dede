//! A client connection with a deadline on its request header (against slowloris: a client
//! sending a byte every few seconds never trips a per-read timeout, so the whole header gets
//! one), the connection's place in the `ConnectionGate`, and the bytes read ahead of pingora
//! while a new connection's first request is awaited.

use super::connections::Permit;
use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use pingora_core::protocols::file_region;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::{SslDigest, ALPN};
use pingora_core::protocols::{GetProxyDigest, GetSocketDigest, GetTimingDigest};
use pingora_core::protocols::{Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType, IO};
use pingora_core::protocols::{SocketDigest, TimingDigest};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The h2c connection preface: an HTTP/2 client, whose streams have their own timeouts.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0";

/// How much one read ahead of pingora takes from the socket: a whole ordinary request header.
const READ_AHEAD_CHUNK: usize = 4096;

/// A downstream stream under a header deadline.
#[derive(Debug)]
pub struct GuardedStream {
    inner: Stream,
    timeout: Duration,
    /// Armed while a request header is awaited; the proxy disarms it once one is parsed.
    armed: AtomicBool,
    /// When the header must be complete; none until the wait for it starts.
    deadline: Option<Pin<Box<Sleep>>>,
    /// A reused connection starts its clock at the next request's first byte (the idle
    /// wait before it belongs to the keep-alive timeout).
    start_on_first_byte: bool,
    /// Nothing has been read yet on this connection.
    fresh: bool,
    /// Bytes already read from `inner` (under the header deadline) and not yet handed out:
    /// reads and peeks return these first.
    ahead: BytesMut,
    _permit: Permit,
}

impl GuardedStream {
    /// A new connection: its first header is due `timeout` after accept (as nginx's
    /// client_header_timeout), unless ALPN chose h2.
    pub fn new(inner: Stream, timeout: Duration, permit: Permit) -> GuardedStream {
        let h2 = matches!(inner.selected_alpn_proto(), Some(ALPN::H2));
        GuardedStream {
            inner,
            timeout,
            armed: AtomicBool::new(!h2),
            deadline: (!h2).then(|| Box::pin(tokio::time::sleep(timeout))),
            start_on_first_byte: false,
            fresh: true,
            ahead: BytesMut::new(),
            _permit: permit,
        }
    }

    /// The connection is back for its next request.
    pub fn rearm(&mut self, timeout: Duration) {
        self.timeout = timeout;
        self.deadline = None;
        self.start_on_first_byte = true;
        self.armed.store(true, Ordering::Release);
    }

    /// A whole request header arrived: reads are no longer under the header deadline.
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::Release);
    }

    /// Waits until at least `want` bytes have arrived (under the header deadline) and keeps
    /// them for the reads that follow. `Ok(false)`: the client closed before sending them.
    pub async fn read_ahead(&mut self, want: usize) -> io::Result<bool> {
        let mut chunk = [0u8; READ_AHEAD_CHUNK];
        while self.ahead.len() < want {
            let mut read = ReadBuf::new(&mut chunk);
            poll_fn(|cx| self.poll_read_guarded(cx, &mut read)).await?;
            if read.filled().is_empty() {
                return Ok(false);
            }
            self.ahead.extend_from_slice(read.filled());
        }
        Ok(true)
    }

    /// The TCP stream of a connection, beneath its guard if it has one, for `sendfile` (a
    /// [`StreamReach`](pingora_core::protocols::file_region::StreamReach)); `None` for TLS.
    pub fn tcp_beneath(stream: &mut Stream) -> Option<&mut L4Stream> {
        if !IO::as_any(&**stream).is::<GuardedStream>() {
            return file_region::unwrapped(stream);
        }
        let guarded = IO::as_any_mut(&mut **stream).downcast_mut::<GuardedStream>()?;
        file_region::unwrapped(&mut guarded.inner)
    }

    /// Disarms the guard of `stream` if it is one (streams of other services are not).
    pub fn disarm_stream(stream: &Stream) {
        if let Some(guarded) = IO::as_any(&**stream).downcast_ref::<GuardedStream>() {
            guarded.disarm();
        }
    }
}

impl GuardedStream {
    /// One read from the client, under the header deadline.
    fn poll_read_guarded(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self;
        if this.armed.load(Ordering::Acquire) {
            if let Some(deadline) = this.deadline.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request header not complete within limits.header_timeout",
                    )));
                }
            }
        }
        let filled = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            let new = &buf.filled()[filled..];
            if this.fresh && !new.is_empty() {
                this.fresh = false;
                if new.starts_with(H2_PREFACE_START) {
                    this.disarm();
                }
            }
            if this.start_on_first_byte && !new.is_empty() {
                this.start_on_first_byte = false;
                let at = Instant::now() + this.timeout;
                this.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
            }
        }
        read
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.ahead.is_empty() {
            let n = this.ahead.len().min(buf.remaining());
            buf.put_slice(&this.ahead[..n]);
            this.ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        this.poll_read_guarded(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&pingora_core::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for GuardedStream {
    /// pingora peeks for the h2c preface before reading; the peeked bytes are read ahead
    /// here (under the header deadline) rather than by the inner stream, so that bytes this
    /// stream already holds come first, and peeking works over TLS too.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if !self.read_ahead(buf.len()).await? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the bytes to peek at",
            ));
        }
        buf.copy_from_slice(&self.ahead[..buf.len()]);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::connections::ConnectionGate;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A guarded stream over a real loopback connection, and the client's end.
    async fn pair() -> (GuardedStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let permit = Arc::new(ConnectionGate::default())
            .enter(None, 1, 1)
            .unwrap();
        let inner: Stream = Box::new(pingora_core::protocols::l4::stream::Stream::from(accepted));
        (
            GuardedStream::new(inner, Duration::from_secs(30), permit),
            client,
        )
    }

    #[tokio::test]
    async fn bytes_read_ahead_and_peeked_are_read_again_in_order() {
        let (mut guarded, mut client) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(guarded.read_ahead(1).await.unwrap());
        let mut peeked = [0u8; 3];
        assert!(guarded.try_peek(&mut peeked).await.unwrap());
        assert_eq!(&peeked, b"GET");
        client.write_all(b"\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        let mut all = Vec::new();
        guarded.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_client_that_closes_without_a_byte_reads_ahead_nothing() {
        let (mut guarded, client) = pair().await;
        drop(client);
        assert!(!guarded.read_ahead(1).await.unwrap());
    }
}
