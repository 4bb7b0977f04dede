//! A test origin on 127.0.0.1:0: fixed replies per path, hit counts, recorded requests.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the origin answers on one path.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
    /// Record the request, then drop the connection without answering.
    close: bool,
    /// Read the whole request body before answering, as an application handling a POST.
    read_body: bool,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            close: false,
            read_body: false,
        }
    }

    /// Receives the request, then closes the connection without a response.
    pub fn close() -> Self {
        Reply {
            close: true,
            ..Self::new(200, "")
        }
    }

    pub fn ok(body: impl Into<Bytes>) -> Self {
        Self::new(200, body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Reads the request body to its end before answering.
    pub fn read_body(mut self) -> Self {
        self.read_body = true;
        self
    }

    /// Waits this long before answering (for coalescing tests).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// A request as the origin received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: http::HeaderMap,
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Reply>>,
    hits: Mutex<HashMap<String, usize>>,
    /// When set, every request is answered by closing the connection.
    stopped: std::sync::atomic::AtomicBool,
    requests: Mutex<Vec<Recorded>>,
    /// Meridian's health checks, kept out of `hits` and `requests`: they arrive on their own
    /// clock, and a test counting what clients caused must not see them.
    health_checks: std::sync::atomic::AtomicUsize,
}

/// Builds an origin.
#[derive(Default)]
pub struct OriginBuilder {
    routes: HashMap<String, Reply>,
}

impl OriginBuilder {
    pub fn route(mut self, path: &str, reply: Reply) -> Self {
        self.routes.insert(path.to_owned(), reply);
        self
    }

    pub async fn start(self) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            routes: Mutex::new(self.routes),
            ..State::default()
        });
        let task = Mutex::new(accept_loop(listener, state.clone()));
        Origin { addr, state, task }
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(state.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

fn record(state: &State, req: &Request<Incoming>, path: &str) {
    state.requests.lock().unwrap().push(Recorded {
        method: req.method().to_string(),
        target: req
            .uri()
            .path_and_query()
            .map_or("/".into(), |p| p.to_string()),
        headers: req.headers().clone(),
    });
    *state
        .hits
        .lock()
        .unwrap()
        .entry(path.to_owned())
        .or_default() += 1;
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    if state.stopped.load(std::sync::atomic::Ordering::SeqCst) {
        // An error from the service makes hyper drop the connection without answering.
        return Err(std::io::Error::other("origin stopped"));
    }
    let path = req.uri().path().to_owned();
    let is_health_check = req
        .headers()
        .get("user-agent")
        .is_some_and(|ua| ua == "meridian-health-check");
    if is_health_check {
        state
            .health_checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    } else {
        record(&state, &req, &path);
    }
    let reply = state.routes.lock().unwrap().get(&path).cloned();
    let Some(reply) = reply else {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"no such test route\n")));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        return Ok(resp);
    };
    if reply.close {
        return Err(std::io::Error::other("closing without an answer"));
    }
    let inm = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if reply.read_body {
        use http_body_util::BodyExt;
        req.into_body()
            .collect()
            .await
            .map_err(|e| std::io::Error::other(format!("request body: {e}")))?;
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    // Like a real origin: a matching If-None-Match gets 304 with the validators, no body.
    let etag = reply
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("etag"));
    if let (Some((_, etag)), Some(inm)) = (etag, inm.as_deref()) {
        // Weak comparison (RFC 9110 §13.1.2), as If-None-Match asks.
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        if inm.split(',').any(|t| weak(t) == weak(etag)) {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            for (k, v) in reply.headers.iter().filter(|(k, _)| {
                ["etag", "cache-control", "expires", "date", "vary"]
                    .contains(&k.to_ascii_lowercase().as_str())
            }) {
                resp.headers_mut().append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                );
            }
            return Ok(resp);
        }
    }
    let mut resp = Response::new(Full::new(reply.body.clone()));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (k, v) in &reply.headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    Ok(resp)
}

/// A running origin; stops when dropped.
pub struct Origin {
    addr: SocketAddr,
    state: Arc<State>,
    task: Mutex<JoinHandle<()>>,
}

impl Origin {
    pub fn builder() -> OriginBuilder {
        OriginBuilder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what `path` answers from now on.
    pub fn set_route(&self, path: &str, reply: Reply) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), reply);
    }

    /// Fails from now on: new connections are refused and pooled ones are closed unanswered.
    pub fn stop(&self) {
        self.state
            .stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.task.lock().unwrap().abort();
    }

    /// Serves again on the same address after [`Origin::stop`].
    pub async fn resume(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.state
            .stopped
            .store(false, std::sync::atomic::Ordering::SeqCst);
        *self.task.lock().unwrap() = accept_loop(listener, self.state.clone());
    }

    /// Requests received for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received in all, health checks aside.
    pub fn total_hits(&self) -> usize {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// Health checks received (not in `hits`, `total_hits` or `requests`).
    pub fn health_checks(&self) -> usize {
        self.state
            .health_checks
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Ok(task) = self.task.lock() {
            task.abort();
        }
    }
}
