//! Structured access log: one JSON line per request, written off the request path.
//!
//! A request formats its line and appends it to a shared buffer under a short, uncontended
//! lock: no syscall and no thread wake-up per request. One writer thread swaps the buffer out
//! every `FLUSH_EVERY` (or as soon as it passes `WAKE_AT_BYTES`) and writes it in one call, as
//! nginx does with `access_log ... buffer=`. If the sink falls so far behind that the buffer
//! reaches `MAX_PENDING_BYTES`, new lines are dropped and counted rather than slowing the
//! proxy or growing without bound.

use crate::config::runtime::AccessLogTarget;
use prometheus::IntCounter;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// How long a line may wait in the buffer before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A buffer this full wakes the writer early.
const WAKE_AT_BYTES: usize = 256 * 1024;
/// Beyond this, lines are dropped: the sink is not keeping up.
const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct AccessEntry<'a> {
    #[serde(serialize_with = "rfc3339_millis")]
    pub time: SystemTime,
    /// The client as trusted: behind `listen.trusted_proxies`, the forwarded client.
    pub client: Option<std::net::IpAddr>,
    /// The address the request came from (the proxy, behind one).
    pub peer: Option<std::net::IpAddr>,
    pub site: &'a str,
    pub host: &'a str,
    pub method: &'a str,
    /// The request's protocol as nginx's `$server_protocol` prints it.
    pub proto: &'static str,
    pub path: &'a str,
    pub status: u16,
    /// Response body bytes sent to the client.
    pub bytes: usize,
    pub duration_ms: f64,
    pub cache: &'static str,
    /// The image variant served on an `images` route ("webp", "original", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'static str>,
    pub region: Option<&'a str>,
    pub origin: Option<SocketAddr>,
    pub trace_id: &'a str,
    /// Meridian's server span (`[tracing]`, sampled requests), empty otherwise.
    pub span_id: &'a str,
}

fn rfc3339_millis<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// Lines waiting for the writer, and whether the log is closing.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    closing: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// The logging side; shared by every worker thread.
pub struct AccessLog {
    shared: Option<Arc<Shared>>,
    dropped: IntCounter,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl AccessLog {
    /// Opens the sink and starts the writer thread (none for `Off`).
    pub fn start(target: &AccessLogTarget, dropped: IntCounter) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => {
                return Ok(AccessLog {
                    shared: None,
                    dropped,
                    writer: None,
                })
            }
            AccessLogTarget::Stdout => Box::new(io::stdout()),
            AccessLogTarget::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
            ),
        };
        Self::with_sink(sink, dropped)
    }

    fn with_sink(sink: Box<dyn Write + Send>, dropped: IntCounter) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(&for_writer, sink))?;
        Ok(AccessLog {
            shared: Some(shared),
            dropped,
            writer: Some(writer),
        })
    }

    /// Whether lines are written at all; callers skip building entries when not.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Queues one line; never blocks on I/O.
    pub fn log(&self, entry: &AccessEntry<'_>) {
        let Some(shared) = &self.shared else { return };
        let mut line = [0u8; 512];
        let mut cursor = io::Cursor::new(&mut line[..]);
        // Most lines fit on the stack; a long path or host takes the heap instead.
        let heap;
        let bytes: &[u8] = if serde_json::to_writer(&mut cursor, entry).is_ok() {
            let n = usize::try_from(cursor.position()).unwrap_or(0);
            line.get(..n).unwrap_or(&[])
        } else {
            match serde_json::to_vec(entry) {
                Ok(v) => {
                    heap = v;
                    &heap
                }
                Err(_) => return,
            }
        };
        let Ok(mut pending) = shared.pending.lock() else {
            self.dropped.inc();
            return;
        };
        if pending.buf.len() + bytes.len() >= MAX_PENDING_BYTES {
            drop(pending);
            self.dropped.inc();
            return;
        }
        pending.buf.extend_from_slice(bytes);
        pending.buf.push(b'\n');
        let wake = pending.buf.len() >= WAKE_AT_BYTES;
        drop(pending);
        if wake {
            shared.wake.notify_one();
        }
    }

    /// Stops accepting lines and waits until every queued line is written.
    pub fn close(mut self) {
        self.stop_writer();
    }

    fn stop_writer(&mut self) {
        if let Some(shared) = self.shared.take() {
            if let Ok(mut pending) = shared.pending.lock() {
                pending.closing = true;
            }
            shared.wake.notify_one();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.stop_writer();
    }
}

fn write_lines(shared: &Shared, mut sink: Box<dyn Write + Send>) {
    let mut spare = Vec::new();
    loop {
        let closing = {
            let Ok(mut pending) = shared.pending.lock() else {
                return;
            };
            if pending.buf.len() < WAKE_AT_BYTES && !pending.closing {
                pending = match shared.wake.wait_timeout(pending, FLUSH_EVERY) {
                    Ok((guard, _)) => guard,
                    Err(_) => return,
                };
            }
            // Swap buffers so requests keep appending while this thread writes.
            std::mem::swap(&mut pending.buf, &mut spare);
            pending.closing
        };
        if !spare.is_empty() {
            if let Err(e) = sink.write_all(&spare).and_then(|()| sink.flush()) {
                // The sink is gone (closed stdout, full disk): lines are lost, requests go on.
                log::debug!("access log write failed: {e}");
            }
            spare.clear();
        }
        if closing {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> AccessEntry<'_> {
        AccessEntry {
            time: SystemTime::UNIX_EPOCH,
            client: None,
            peer: None,
            site: "demo",
            host: "localhost",
            method: "GET",
            path,
            status: 200,
            bytes: 0,
            duration_ms: 0.0,
            cache: "hit",
            image: None,
            region: None,
            origin: None,
            trace_id: "",
            span_id: "",
            proto: "HTTP/1.1",
        }
    }

    /// A sink whose writes never return until the test lets them.
    struct StuckSink(std::sync::mpsc::Receiver<()>);

    impl Write for StuckSink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_drops_and_counts_lines_instead_of_growing_or_blocking() {
        let (release, stuck) = std::sync::mpsc::channel();
        let dropped = IntCounter::new("d", "d").unwrap();
        let log = AccessLog::with_sink(Box::new(StuckSink(stuck)), dropped.clone()).unwrap();
        let long_path = "/".repeat(1000);
        // Far more than MAX_PENDING_BYTES of lines, while the writer is stuck on its first write.
        for _ in 0..20_000 {
            log.log(&entry(&long_path));
        }
        assert!(dropped.get() > 0, "nothing was dropped");
        let pending = log
            .shared
            .as_ref()
            .unwrap()
            .pending
            .lock()
            .unwrap()
            .buf
            .len();
        assert!(pending < MAX_PENDING_BYTES, "{pending}");
        drop(release);
        log.close();
    }

    #[test]
    fn long_lines_that_do_not_fit_the_stack_buffer_are_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let log = AccessLog::start(
            &AccessLogTarget::File(path.clone()),
            IntCounter::new("d", "d").unwrap(),
        )
        .unwrap();
        let long_path = format!("/{}", "x".repeat(2000));
        log.log(&entry(&long_path));
        log.log(&entry("/short"));
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["path"], long_path.as_str());
        assert_eq!(lines[1]["path"], "/short");
    }

    #[test]
    fn a_line_is_one_json_object_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::start(
            &AccessLogTarget::File(path.clone()),
            IntCounter::new("d", "d").unwrap(),
        )
        .unwrap();
        log.log(&AccessEntry {
            time: SystemTime::UNIX_EPOCH,
            client: Some("203.0.113.9".parse().unwrap()),
            peer: Some("127.0.0.1".parse().unwrap()),
            site: "demo",
            host: "localhost",
            method: "GET",
            path: "/a\"b",
            status: 200,
            bytes: 5,
            duration_ms: 1.5,
            cache: "hit",
            image: None,
            region: Some("eu-west"),
            origin: Some("127.0.0.1:9001".parse().unwrap()),
            trace_id: "0af7651916cd43dd8448eb211c80319c",
            span_id: "b7ad6b7169203331",
            proto: "HTTP/1.1",
        });
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["status"], 200);
        assert_eq!(v["cache"], "hit");
        assert_eq!(v["origin"], "127.0.0.1:9001");
        assert_eq!(v["client"], "203.0.113.9", "the client as trusted");
        assert_eq!(v["peer"], "127.0.0.1", "beside the address it came from");
        assert_eq!(v["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    }
}
