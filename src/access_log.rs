//! Structured access log: one JSON line per request, written off the request path.
//!
//! A request formats its line and hands it to a bounded channel; one writer thread batches
//! lines into the sink and flushes when the channel runs dry. When the sink cannot keep up,
//! lines are dropped and counted rather than slowing the proxy down.

use crate::config::runtime::AccessLogTarget;
use prometheus::IntCounter;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::SystemTime;

/// Lines that may wait for the writer before new ones are dropped.
const QUEUE_LINES: usize = 64 * 1024;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct AccessEntry<'a> {
    #[serde(serialize_with = "rfc3339_millis")]
    pub time: SystemTime,
    pub client: Option<std::net::IpAddr>,
    pub site: &'a str,
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// Response body bytes sent to the client.
    pub bytes: usize,
    pub duration_ms: f64,
    pub cache: &'static str,
    pub region: Option<&'a str>,
    pub origin: Option<SocketAddr>,
    pub trace_id: &'a str,
}

fn rfc3339_millis<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// The sending side; cheap to share across worker threads.
pub struct AccessLog {
    tx: Option<SyncSender<Vec<u8>>>,
    dropped: IntCounter,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl AccessLog {
    /// Opens the sink and starts the writer thread (none for `Off`).
    pub fn start(target: &AccessLogTarget, dropped: IntCounter) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => {
                return Ok(AccessLog {
                    tx: None,
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
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(rx, sink))?;
        Ok(AccessLog {
            tx: Some(tx),
            dropped,
            writer: Some(writer),
        })
    }

    /// Stops accepting lines and waits until every queued line is written.
    pub fn close(mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }

    /// Whether lines are written at all; callers skip building entries when not.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues one line; never blocks.
    pub fn log(&self, entry: &AccessEntry<'_>) {
        let Some(tx) = &self.tx else { return };
        let mut line = Vec::with_capacity(320);
        if serde_json::to_writer(&mut line, entry).is_err() {
            return;
        }
        line.push(b'\n');
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }
}

fn write_lines(rx: Receiver<Vec<u8>>, sink: Box<dyn Write + Send>) {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    // Blocks for the first line, then drains whatever else is queued before one flush.
    while let Ok(line) = rx.recv() {
        let mut ok = out.write_all(&line).is_ok();
        while let Ok(more) = rx.try_recv() {
            ok &= out.write_all(&more).is_ok();
        }
        ok &= out.flush().is_ok();
        if !ok {
            // The sink is gone (closed stdout, full disk): keep draining so senders never block.
            log::debug!("access log sink write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            client: Some("127.0.0.1".parse().unwrap()),
            site: "demo",
            host: "localhost",
            method: "GET",
            path: "/a\"b",
            status: 200,
            bytes: 5,
            duration_ms: 1.5,
            cache: "hit",
            region: Some("eu-west"),
            origin: Some("127.0.0.1:9001".parse().unwrap()),
            trace_id: "0af7651916cd43dd8448eb211c80319c",
        });
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["status"], 200);
        assert_eq!(v["cache"], "hit");
        assert_eq!(v["origin"], "127.0.0.1:9001");
        assert_eq!(v["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    }
}
