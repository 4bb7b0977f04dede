//! Configuration reload (SIGHUP or `POST /reload`): the file is read and validated first; an
//! invalid one changes nothing. A valid one is put in force whole: new requests, handshakes
//! and DNS queries use it, those in flight finish on the one they started with.
//!
//! What the process was built around (listeners, threads, cache size, regions and their
//! health checks, the DNS listeners) cannot change in place: a reload that changes them is
//! refused and names them, and a restart or a graceful upgrade (README) applies them.

use crate::config::{self, Runtime};
use crate::dns::{DnsHandler, LiveHandler};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::regions::state::HealthView;
use crate::tls::SniResolver;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a reload left the old configuration in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{path}: {count} error(s); the previous configuration stays in force:\n{errors}")]
    Invalid {
        path: String,
        count: usize,
        errors: String,
    },
    #[error(
        "{path}: {} changed, which takes a restart (or a graceful upgrade); nothing was applied",
        keys.join(", ")
    )]
    NeedsRestart {
        path: String,
        keys: Vec<&'static str>,
    },
}

/// Puts a new configuration in force for every service of the node.
pub struct Reloader {
    path: PathBuf,
    live: Arc<Live>,
    sni: Option<Arc<SniResolver>>,
    dns: Option<LiveHandler>,
    view: Arc<HealthView>,
    metrics: Arc<Metrics>,
    /// One reload at a time (a signal and an admin call racing would interleave swaps).
    running: tokio::sync::Mutex<()>,
}

/// What a successful reload put in force.
#[derive(Debug, serde::Serialize)]
pub struct Reloaded {
    pub config: String,
    pub sites: usize,
    pub dns_zones: usize,
}

impl Reloader {
    pub fn new(
        live: Arc<Live>,
        sni: Option<Arc<SniResolver>>,
        dns: Option<LiveHandler>,
        view: Arc<HealthView>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        Reloader {
            path: live.peek().source.clone(),
            live,
            sni,
            dns,
            view,
            metrics,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads, validates and applies the configuration file; logs and counts the outcome.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.running.lock().await;
        let path = self.path.clone();
        // Reading certificates and a GeoIP database is blocking file work.
        let loaded = tokio::task::spawn_blocking(move || config::load(&path)).await;
        let result = match loaded {
            Ok(Ok(rt)) => self.apply(rt),
            Ok(Err(errors)) => Err(ReloadError::Invalid {
                path: self.path.display().to_string(),
                count: errors.0.len(),
                errors: errors.to_string(),
            }),
            Err(join) => Err(ReloadError::Invalid {
                path: self.path.display().to_string(),
                count: 1,
                errors: format!("the validation task failed: {join}"),
            }),
        };
        match &result {
            Ok(done) => {
                self.metrics.guard.reload_ok.inc();
                log::info!(
                    "reloaded {}: {} sites, {} DNS zones",
                    done.config,
                    done.sites,
                    done.dns_zones
                );
            }
            Err(e) => {
                self.metrics.guard.reload_failed.inc();
                log::error!("reload refused: {e}");
            }
        }
        result
    }

    fn apply(&self, rt: Runtime) -> Result<Reloaded, ReloadError> {
        let old = self.live.load();
        let keys = restart_only_changes(&old, &rt);
        if !keys.is_empty() {
            return Err(ReloadError::NeedsRestart {
                path: self.path.display().to_string(),
                keys,
            });
        }
        let rt = Arc::new(rt);
        if let Some(sni) = &self.sni {
            sni.replace(&rt);
        }
        if let Some(dns) = &self.dns {
            dns.store(Arc::new(DnsHandler::new(
                rt.clone(),
                self.view.clone(),
                &self.metrics,
            )));
        }
        crate::tls::expiry::observe(&rt, &self.metrics);
        self.live.store(rt.clone());
        Ok(Reloaded {
            config: self.path.display().to_string(),
            sites: rt.sites.len(),
            dns_zones: rt.dns.as_ref().map_or(0, |d| d.zones.len()),
        })
    }
}

/// The keys whose change a running node cannot apply, by their config names.
pub fn restart_only_changes(old: &Runtime, new: &Runtime) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |changed: bool, key: &'static str| {
        if changed {
            keys.push(key);
        }
    };
    check(old.listen.http != new.listen.http, "listen.http");
    check(old.listen.https != new.listen.https, "listen.https");
    check(old.listen.h2c != new.listen.h2c, "listen.h2c");
    check(old.listen.admin != new.listen.admin, "listen.admin");
    check(old.node.threads != new.node.threads, "node.threads");
    check(
        old.cache.memory_bytes != new.cache.memory_bytes,
        "cache.memory",
    );
    check(
        old.cache.lock_timeout != new.cache.lock_timeout,
        "cache.lock_timeout",
    );
    check(
        old.cache.max_variants != new.cache.max_variants,
        "cache.max_variants",
    );
    check(old.transforms != new.transforms, "transforms");
    check(
        old.upstream.ejection != new.upstream.ejection,
        "upstream.eject_*",
    );
    check(old.log.access != new.log.access, "log.access");
    check(
        old.demo.as_ref().map(|d| &d.origins) != new.demo.as_ref().map(|d| &d.origins),
        "demo.origins",
    );
    // Regions carry the health view's shape and the running checks; compared through their
    // full printed form, since this runs once per reload.
    check(
        format!("{:?}", old.regions) != format!("{:?}", new.regions),
        "regions (or dns.edges)",
    );
    let dns_shape = |rt: &Runtime| {
        rt.dns
            .as_ref()
            .map(|d| (d.listen.clone(), d.threads, d.tcp_idle_timeout))
    };
    check(dns_shape(old) != dns_shape(new), "dns.listen / dns.threads");
    keys
}

/// Reloads on each SIGHUP (nginx's and HAProxy's reload signal); pingora leaves it unhandled.
pub struct ReloadOnHangup(pub Arc<Reloader>);

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for ReloadOnHangup {
    async fn start(&self, mut shutdown: pingora_core::server::ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for SIGHUP ({e}); reload with POST /reload");
                return;
            }
        };
        loop {
            tokio::select! {
                got = hangups.recv() => {
                    if got.is_none() {
                        return;
                    }
                    log::info!("SIGHUP: reloading the configuration");
                    // The outcome is logged and counted by `reload`.
                    let _ = self.0.reload().await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
