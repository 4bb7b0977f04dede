//! The admin listener: `/metrics`, `/healthz` and `/status` to read; `POST /purge`,
//! `/drain` and `/undrain` to act (behind `[admin] token`).

pub mod purge;

use crate::cache::tiered::TieredStorage;
use crate::cache::PurgeMode;
use crate::cluster::config::SharedConfigState;
use crate::cluster::ClusterPurges;
use crate::config::live::Live;
use crate::config::reload::Reload;
use crate::config::runtime::{RegionChoice, RegionKind};
use crate::dns::LiveHandler;
use crate::guard::connections::ConnectionGate;
use crate::metrics::Metrics;
use crate::regions::state::HealthView;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// The admin HTTP application.
pub struct AdminApp {
    live: Arc<Live>,
    metrics: Arc<Metrics>,
    storage: &'static TieredStorage,
    view: Arc<HealthView>,
    dns: Option<LiveHandler>,
    reloader: Arc<dyn Reload>,
    connections: Arc<ConnectionGate>,
    /// With `[cluster] nats`: purges go to every node through JetStream.
    cluster: Option<Arc<ClusterPurges>>,
    /// With `[cluster] shared_config`: which published version is in force.
    shared_config: Option<Arc<SharedConfigState>>,
    started: Instant,
}

impl AdminApp {
    pub fn new(
        live: Arc<Live>,
        metrics: Arc<Metrics>,
        storage: &'static TieredStorage,
        view: Arc<HealthView>,
        dns: Option<LiveHandler>,
        reloader: Arc<dyn Reload>,
        connections: Arc<ConnectionGate>,
    ) -> Self {
        AdminApp {
            live,
            metrics,
            storage,
            view,
            dns,
            reloader,
            connections,
            cluster: None,
            shared_config: None,
            started: Instant::now(),
        }
    }

    /// Purges go to the whole cluster through `cluster`; `shared_config` says which
    /// published configuration is in force.
    pub fn with_cluster(
        mut self,
        cluster: Option<Arc<ClusterPurges>>,
        shared_config: Option<Arc<SharedConfigState>>,
    ) -> Self {
        self.cluster = cluster;
        self.shared_config = shared_config;
        self
    }

    /// `POST /reload`: 200 with what is now in force, or 422 with why nothing changed.
    async fn reload(&self, req: &pingora_http::RequestHeader) -> Response<Vec<u8>> {
        if let Some(refused) = self.refuse_mutation(req) {
            return refused;
        }
        match self.reloader.reload().await {
            Ok(done) => json_response(
                StatusCode::OK,
                json!({"reloaded": true, "config": done.config, "sites": done.sites,
                       "dns_zones": done.dns_zones}),
            ),
            Err(e) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"reloaded": false, "error": e.to_string()}),
            ),
        }
    }

    fn metrics_text(&self) -> Vec<u8> {
        let stats = self.storage.memory().stats();
        if let Some(disk) = self.storage.disk() {
            self.metrics.disk.observe(disk);
        }
        self.metrics
            .cache_bytes
            .set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
        self.metrics
            .cache_objects
            .set(i64::try_from(stats.objects).unwrap_or(i64::MAX));
        // The storage counts; the counter catches up to it (it only ever grows).
        let replaced = &self.metrics.cache_variants_replaced;
        replaced.inc_by(stats.variants_replaced.saturating_sub(replaced.get()));
        self.metrics
            .guard
            .connections_open
            .set(i64::try_from(self.connections.open()).unwrap_or(i64::MAX));
        for (i, region) in self.live.peek().regions.iter().enumerate() {
            self.metrics
                .region_up
                .with_label_values(&[region.name.as_str()])
                .set(i64::from(self.view.region_usable(i)));
        }
        self.metrics.encode()
    }

    fn status_json(&self) -> Vec<u8> {
        let rt = &*self.live.load();
        let stats = self.storage.memory().stats();
        let disk = match (self.storage.disk(), &rt.cache.disk) {
            (Some(d), _) => {
                let s = d.store.stats();
                json!({
                    "ready": true,
                    "writable": d.store.writable(),
                    "recovered_from": d.store.recovery().as_str(),
                    "path": d.store.config().path.display().to_string(),
                    "bytes": s.bytes,
                    "objects": s.objects,
                    "segments": s.segments,
                    "size_bytes": d.store.config().size,
                    "max_object_bytes": d.store.config().max_object,
                })
            }
            // Configured, still opening (or failed to: the log says why).
            (None, Some(d)) => json!({"ready": false, "path": d.path.display().to_string()}),
            (None, None) => serde_json::Value::Null,
        };
        let region_name = |id: &usize| rt.regions.get(*id).map(|r| r.name.as_str());
        let status = json!({
            "node": rt.node.name,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "cluster": self.cluster.as_ref().map(|c| {
                let mut status = c.status();
                if let Some(shared) = &self.shared_config {
                    status["shared_config"] = shared.status();
                }
                status
            }),
            "config": rt.source.display().to_string(),
            "cache": {
                "bytes": stats.bytes,
                "objects": stats.objects,
                "memory_bytes": rt.cache.memory_bytes,
                "max_object_bytes": rt.cache.max_object_bytes,
                "disk": disk,
            },
            "regions": rt.regions.iter().enumerate().map(|(ri, r)| json!({
                "name": r.name,
                "dns_edge": r.kind == RegionKind::DnsEdge,
                "kind": r.kind.as_str(),
                "location": { "lat": r.location.lat, "lon": r.location.lon },
                "drained": self.view.regions().get(ri).is_some_and(|h| h.is_drained()),
                "usable": self.view.region_usable(ri),
                "origins": r.origins.iter().enumerate().map(|(oi, o)| {
                    let health = self.view.origin(ri, oi);
                    let last = health.map(|h| h.last_check()).unwrap_or_default();
                    json!({
                        "addr": o.addr.to_string(),
                        "weight": o.weight,
                        "check": health.map_or("unknown", |h| h.check_state().as_str()),
                        "drained": health.is_some_and(|h| h.is_drained()),
                        "ejected": self.view.is_ejected_origin(ri, oi),
                        "ejections": health.map_or(0, |h| h.ejections()),
                        "usable": self.view.is_usable(ri, oi),
                        "last_check": last.at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
                        "last_check_latency_ms": last.latency.map(|l| l.as_secs_f64() * 1000.0),
                        "last_check_error": last.error,
                    })
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "sites": rt.sites.iter().map(|s| json!({
                "name": s.name,
                "hosts": s.hosts,
                "routes": s.routes.iter().map(|r| json!({
                    "path": r.path,
                    "cache": r.cache,
                    "regions": match &r.regions {
                        RegionChoice::Nearest => json!("nearest"),
                        RegionChoice::Ordered(ids) =>
                            json!(ids.iter().filter_map(region_name).collect::<Vec<_>>()),
                    },
                    "region_order": r.region_order.iter().filter_map(region_name).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "dns": self.dns.as_ref().map(|d| d.load().status()),
            "connections": self.connections.open(),
        });
        let mut body = serde_json::to_vec_pretty(&status).unwrap_or_default();
        body.push(b'\n');
        body
    }
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    let len = resp.body().len();
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, len.into());
    resp
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response<Vec<u8>> {
    let mut body = v.to_string().into_bytes();
    body.push(b'\n');
    response(status, "application/json", body)
}

impl AdminApp {
    /// Checks a mutating call: POST, and the bearer token. `Some(response)` refuses it.
    fn refuse_mutation(&self, req: &pingora_http::RequestHeader) -> Option<Response<Vec<u8>>> {
        if req.method != Method::POST {
            let mut resp =
                json_response(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "use POST"}));
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            return Some(resp);
        }
        let rt = self.live.load();
        let Some(token) = &rt.admin.token else {
            return Some(json_response(
                StatusCode::FORBIDDEN,
                json!({"error": "mutating admin calls are disabled: set admin.token"}),
            ));
        };
        let presented = req.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !purge::token_matches(presented, token) {
            let mut resp = json_response(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing or wrong token: send Authorization: Bearer <admin.token>"}),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return Some(resp);
        }
        None
    }

    /// `POST /drain?region=NAME[&origin=ADDR]` (or `/undrain`): no new requests go there.
    fn drain(&self, req: &pingora_http::RequestHeader, drained: bool) -> Response<Vec<u8>> {
        if let Some(refused) = self.refuse_mutation(req) {
            return refused;
        }
        let mut region = None;
        let mut origin = None;
        for (k, v) in form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes()) {
            match &*k {
                "region" => region = Some(v.into_owned()),
                "origin" => origin = Some(v.into_owned()),
                other => {
                    return json_response(
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("unknown parameter {other:?}; use region and origin")}),
                    )
                }
            }
        }
        let Some(region) = region else {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "give region=NAME"}),
            );
        };
        let rt = self.live.load();
        let Some(ri) = rt.regions.iter().position(|r| r.name == region) else {
            return json_response(
                StatusCode::NOT_FOUND,
                json!({"error": format!("no region {region:?}")}),
            );
        };
        let done = match &origin {
            None => self.view.set_region_drained(ri, drained),
            Some(addr) => {
                let oi = rt
                    .regions
                    .get(ri)
                    .and_then(|r| r.origins.iter().position(|o| o.addr.to_string() == *addr));
                let Some(oi) = oi else {
                    return json_response(
                        StatusCode::NOT_FOUND,
                        json!({"error": format!("region {region:?} has no origin {addr:?}")}),
                    );
                };
                self.view.set_origin_drained(ri, oi, drained)
            }
        };
        log::warn!(
            "{} region {region}{}",
            if drained { "drained" } else { "undrained" },
            origin
                .as_deref()
                .map(|o| format!(" origin {o}"))
                .unwrap_or_default()
        );
        json_response(
            StatusCode::OK,
            json!({"region": region, "origin": origin, "drained": drained && done}),
        )
    }

    /// `POST /purge?...`: token first, then the request, then the purge: here, and with
    /// `[cluster] nats` on every node of the cluster, answered 200 once JetStream has it.
    async fn purge(&self, req: &pingora_http::RequestHeader) -> Response<Vec<u8>> {
        let json = json_response;
        if let Some(refused) = self.refuse_mutation(req) {
            return refused;
        }
        let request = match purge::parse(&self.live.load(), req.uri.query().unwrap_or("")) {
            Ok(r) => r,
            Err(e) => return json(StatusCode::BAD_REQUEST, json!({"error": e})),
        };
        let mode = match request.mode {
            PurgeMode::Hard => "hard",
            PurgeMode::Soft => "soft",
        };
        let selector = format!("{:?}", request.selector);
        let Some(cluster) = &self.cluster else {
            let purged = request.apply(self.storage);
            log::info!("purge {selector} ({mode}): {purged} object(s)");
            return json(StatusCode::OK, json!({"purged": purged, "mode": mode}));
        };
        let (id, purged, published) = cluster.purge(request).await;
        log::info!("purge {id} {selector} ({mode}): {purged} object(s) here");
        match published {
            Ok(()) => json(
                StatusCode::OK,
                json!({"purged": purged, "mode": mode, "id": id, "cluster": cluster.cluster()}),
            ),
            Err(e) => {
                log::warn!("purge {id}: not confirmed by the cluster: {e}");
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({
                        "error": format!("applied on this node only: {e}; other nodes may still serve it, retry"),
                        "purged": purged, "mode": mode, "id": id,
                    }),
                )
            }
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path();
        match path {
            "/purge" => return self.purge(req).await,
            "/drain" => return self.drain(req, true),
            "/undrain" => return self.drain(req, false),
            "/reload" => return self.reload(req).await,
            _ => {}
        }
        let known = matches!(path, "/metrics" | "/healthz" | "/status");
        if known && req.method != Method::GET && req.method != Method::HEAD {
            let mut resp = response(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                b"only GET and HEAD\n".to_vec(),
            );
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        match path {
            "/metrics" => response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics_text(),
            ),
            "/healthz" => response(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                b"ok\n".to_vec(),
            ),
            "/status" => response(StatusCode::OK, "application/json", self.status_json()),
            _ => response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                b"not found; try /metrics, /healthz, /status or POST /purge, /reload\n".to_vec(),
            ),
        }
    }
}
