//! Wires the services of one node (proxy, DNS, admin, demo origins) into one pingora `Server`.

pub mod reload;

use crate::access_log::AccessLog;
use crate::admin::AdminApp;
use crate::cache::tiered::{DiskCheckpoints, TieredStorage};
use crate::cache::MemoryStorage;
use crate::cluster::config::{SharedConfigState, SharedConfigWatch};
use crate::cluster::{ClusterPurges, ClusterService};
use crate::config::live::Live;
use crate::config::shared::Published;
use crate::config::Runtime;
use crate::demo::DemoOrigin;
use crate::dns::{DnsHandler, DnsService, LiveHandler, Sockets};
use crate::edge::EdgeProxy;
use crate::guard::connections::ConnectionGate;
use crate::guard::Guarded;
use crate::metrics::Metrics;
use crate::regions::health::HealthChecker;
use crate::regions::state::HealthView;
use arc_swap::ArcSwap;
use pingora_core::apps::HttpServerOptions;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use pingora_proxy::HttpProxy;
use reload::{ReloadOnHangup, Reloader};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Why a node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A listen address cannot be bound (in use, not local, no permission).
    #[error("{key} {addr}: cannot listen: {source}; pick a free address in {key}")]
    Bind {
        key: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The access log sink cannot be opened.
    #[error("log.access: cannot open the access log")]
    AccessLog(#[source] std::io::Error),
    /// The TLS listener settings could not be built.
    #[error("listen.https: {0}")]
    Tls(Box<pingora_error::Error>),
    /// A metric could not be registered (a bug: names are fixed).
    #[error("metrics registry")]
    Metrics(#[from] prometheus::Error),
}

/// pingora's graceful upgrade: a new process takes the listening sockets of a running one
/// over a Unix socket, when the old one gets SIGQUIT (it then drains and exits).
#[derive(Debug, Clone)]
pub struct Handover {
    /// This process takes the sockets over instead of binding them.
    pub upgrade: bool,
    pub socket: std::path::PathBuf,
}

impl Default for Handover {
    fn default() -> Self {
        Handover {
            upgrade: false,
            socket: "/tmp/meridian_upgrade.sock".into(),
        }
    }
}

/// Builds the pingora server for `rt`; `run_forever` on the result runs the node.
///
/// `shared` is the cluster's published configuration `rt` was built with (`[cluster]
/// shared_config`), kept in force across reloads.
pub fn build(
    rt: Runtime,
    handover: &Handover,
    shared: Option<Published>,
) -> Result<Server, NodeError> {
    // Taking sockets over, the old process still holds the addresses.
    if !handover.upgrade {
        check_binds(&rt)?;
    }
    let rt = Arc::new(rt);
    let mut conf = ServerConf {
        upgrade_sock: handover.socket.display().to_string(),
        threads: rt.node.threads,
        // Stop quickly: in-flight requests get a short grace, not pingora's minute.
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    conf.upstream_keepalive_pool_size = conf.upstream_keepalive_pool_size.max(128);
    let opt = Opt {
        upgrade: handover.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();

    let metrics = Arc::new(Metrics::new()?);
    // pingora's cache wants `'static` storage; one per process, made once at startup.
    let memory: &'static MemoryStorage = Box::leak(Box::new(MemoryStorage::new(
        rt.cache.memory_bytes,
        rt.cache.max_variants,
    )));
    let storage: &'static TieredStorage = Box::leak(Box::new(TieredStorage::new(
        memory,
        rt.cache.disk.is_some(),
        u64::try_from(rt.cache.max_object_bytes).unwrap_or(u64::MAX),
    )));
    if let Some(disk) = &rt.cache.disk {
        storage.open_disk(disk.clone());
        server.add_service(background_service(
            "disk cache checkpoints",
            DiskCheckpoints(storage),
        ));
    }
    let access_log = Arc::new(
        AccessLog::start(&rt.log.access, metrics.access_log_dropped.clone())
            .map_err(NodeError::AccessLog)?,
    );

    // One health view, written by the checks and passive signals, read by the proxy.
    let view = Arc::new(HealthView::new(&rt.regions, rt.upstream.ejection));
    let checker = HealthChecker::new(rt.clone(), view.clone(), metrics.clone());
    server.add_service(background_service("health checks", checker));

    let live = Arc::new(Live::new(rt.clone()));
    let telemetry =
        rt.tracing.as_ref().and_then(|settings| {
            match crate::telemetry::Telemetry::start(settings, metrics.tracing.clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    log::error!("tracing: {e}; running without it");
                    None
                }
            }
        });
    let proxy = EdgeProxy::new(
        live.clone(),
        view.clone(),
        storage,
        metrics.clone(),
        access_log,
    )
    .with_telemetry(telemetry);
    let mut http = HttpProxy::new(proxy, server.configuration.clone());
    http.handle_init_modules();
    let mut options = HttpServerOptions::default();
    options.h2c = rt.listen.h2c;
    options.h2_idle_timeout = Some(rt.limits.keepalive_timeout);
    http.server_options = Some(options);
    let gate = Arc::new(ConnectionGate::default());
    let guarded = Guarded::new(http, live.clone(), gate.clone(), metrics.clone());
    let mut proxy_service = Service::new("edge".into(), guarded);
    for addr in &rt.listen.http {
        proxy_service.add_tcp(&addr.to_string());
    }
    let sni = if rt.listen.https.is_empty() {
        None
    } else {
        let resolver = Arc::new(crate::tls::SniResolver::new(&rt));
        for addr in &rt.listen.https {
            let settings =
                crate::tls::listener_settings(resolver.clone()).map_err(NodeError::Tls)?;
            proxy_service.add_tls_with_settings(&addr.to_string(), None, settings);
        }
        Some(resolver)
    };
    crate::tls::expiry::observe(&rt, &metrics);
    server.add_service(proxy_service);

    let dns = match &rt.dns {
        Some(settings) => {
            let handler: LiveHandler = Arc::new(ArcSwap::from_pointee(DnsHandler::new(
                rt.clone(),
                view.clone(),
                &metrics,
            )));
            let mut sockets = Sockets {
                udp: Vec::new(),
                tcp: Vec::new(),
            };
            for (i, addr) in settings.listen.iter().enumerate() {
                let (udp, tcp) = crate::dns::bind(*addr, settings.threads).map_err(|source| {
                    NodeError::Bind {
                        key: format!("dns.listen[{i}]"),
                        addr: *addr,
                        source,
                    }
                })?;
                sockets.udp.extend(udp);
                sockets.tcp.push(tcp);
            }
            let service = DnsService::new(handler.clone(), sockets, settings.tcp_idle_timeout);
            let mut service = background_service("dns", service);
            service.threads = Some(settings.threads);
            server.add_service(service);
            Some(handler)
        }
        None => None,
    };

    let shared_state = SharedConfigState::new(shared.as_ref().map(|s| s.revision));
    let reloader = Arc::new(
        Reloader::new(
            live.clone(),
            sni,
            dns.clone(),
            view.clone(),
            metrics.clone(),
        )
        .with_shared(shared),
    );
    server.add_service(background_service(
        "reload on SIGHUP",
        ReloadOnHangup(reloader.clone()),
    ));
    let cluster = match (&rt.cluster.name, rt.cluster.nats.is_empty()) {
        (Some(name), false) => {
            let purges = ClusterPurges::new(
                name,
                &rt.node.name,
                rt.cluster.purge_timeout,
                storage,
                metrics.cluster.clone(),
            );
            let watch = rt.cluster.shared_config.then(|| {
                SharedConfigWatch::new(
                    reloader.clone(),
                    shared_state.clone(),
                    metrics.cluster.clone(),
                )
            });
            let service = ClusterService::new(
                purges.clone(),
                rt.cluster.nats.clone(),
                rt.cluster.credentials.clone(),
                storage,
            )
            .with_shared_config(watch);
            server.add_service(background_service("cluster", service));
            Some(purges)
        }
        _ => None,
    };
    let mut admin = Service::new(
        "admin".into(),
        AdminApp::new(live, metrics, storage, view, dns, reloader, gate)
            .with_cluster(cluster, rt.cluster.shared_config.then_some(shared_state)),
    );
    admin.add_tcp(&rt.listen.admin.to_string());
    admin.threads = Some(1);
    server.add_service(admin);

    if let Some(demo) = &rt.demo {
        for addr in &demo.origins {
            let mut origin = Service::new(format!("demo-origin {addr}"), DemoOrigin::new(*addr));
            origin.add_tcp(&addr.to_string());
            origin.threads = Some(1);
            server.add_service(origin);
        }
    }
    Ok(server)
}

/// Binds and releases every listen address, so a taken port is a clear error at startup
/// instead of a failure inside pingora's service start.
fn check_binds(rt: &Runtime) -> Result<(), NodeError> {
    let mut all: Vec<(String, SocketAddr)> = rt
        .listen
        .http
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("listen.http[{i}]"), *a))
        .collect();
    all.extend(
        rt.listen
            .https
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("listen.https[{i}]"), *a)),
    );
    all.push(("listen.admin".into(), rt.listen.admin));
    if let Some(demo) = &rt.demo {
        all.extend(
            demo.origins
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("demo.origins[{i}]"), *a)),
        );
    }
    for (key, addr) in all {
        TcpListener::bind(addr).map_err(|source| NodeError::Bind { key, addr, source })?;
    }
    Ok(())
}
