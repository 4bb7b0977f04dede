// Meridian: this file is new in the vendored copy (vendor/README.md says why).

//! A small write buffer that sends what it holds *together with* a write too large to buffer.
//!
//! tokio's `BufWriter` sends its buffer and such a write in two syscalls (flush, then write
//! through). An HTTP/1 response header is buffered and its body, when larger than the buffer,
//! arrives in the next write: with `BufWriter` every response over ~1.4 KB went out as two
//! `sendto`s and one TCP segment more than needed. Here the two leave in one `writev`.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[derive(Debug)]
pub(crate) struct CoalescingWriter<W> {
    inner: W,
    /// Bytes written to this writer and not yet to `inner`, from `sent` on.
    buf: Vec<u8>,
    sent: usize,
    capacity: usize,
}

impl<W: AsyncWrite + Unpin> CoalescingWriter<W> {
    pub(crate) fn with_capacity(capacity: usize, inner: W) -> Self {
        CoalescingWriter {
            inner,
            buf: Vec::with_capacity(capacity),
            sent: 0,
            capacity,
        }
    }

    pub(crate) fn get_ref(&self) -> &W {
        &self.inner
    }

    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer; anything still buffered is lost (as `BufWriter::into_inner`).
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    /// What is buffered and not sent, beside the inner writer: for a caller that sends the
    /// buffer itself (a file-region body), then says how much went with [`Self::mark_sent`].
    pub(crate) fn pending_and_inner(&mut self) -> (&[u8], &mut W) {
        (&self.buf[self.sent..], &mut self.inner)
    }

    pub(crate) fn mark_sent(&mut self, n: usize) {
        self.sent += n;
        if self.sent >= self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        }
    }

    fn flush_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending().is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write the buffered data",
                )));
            }
            self.mark_sent(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CoalescingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.len() + buf.len() <= this.capacity {
            this.buf.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        // What is buffered and the new write leave in one call; the new write counts as
        // written only for the bytes past all that was buffered before it.
        while !this.pending().is_empty() {
            let pending_len = this.pending().len();
            let slices = [IoSlice::new(&this.buf[this.sent..]), IoSlice::new(buf)];
            let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write the buffered data",
                )));
            }
            this.mark_sent(n.min(pending_len));
            if n > pending_len {
                return Poll::Ready(Ok(n - pending_len));
            }
        }
        // The buffer is out and none of `buf` is: as after a flush.
        if buf.len() >= this.capacity {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.buf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let total = bufs.iter().fold(0usize, |acc, b| acc.saturating_add(b.len()));
        if this.buf.len().saturating_add(total) <= this.capacity {
            bufs.iter().for_each(|b| this.buf.extend_from_slice(b));
            return Poll::Ready(Ok(total));
        }
        // Vectored callers already gather their pieces: flush, then write them through.
        ready!(this.flush_buf(cx))?;
        if total >= this.capacity {
            Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
        } else {
            bufs.iter().for_each(|b| this.buf.extend_from_slice(b));
            Poll::Ready(Ok(total))
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.flush_buf(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.flush_buf(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<W: AsyncRead + Unpin> AsyncRead for CoalescingWriter<W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}
