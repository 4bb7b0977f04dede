//! Configuration reload (SIGHUP or `POST /reload`): the file is read and validated first; an
//! invalid one changes nothing. A valid one is put in force whole: new requests, handshakes
//! and DNS queries use it, those in flight finish on the one they started with.
//!
//! The node wires this across its services (TLS certificates, the DNS handler, the live
//! configuration); what a reload may change and what it reports is `config::reload`.

use crate::config::live::Live;
use crate::config::reload::{restart_only_changes, Reload, ReloadError, Reloaded};
use crate::config::shared::Published;
use crate::config::{self, Runtime};
use crate::dns::{DnsHandler, LiveHandler};
use crate::metrics::Metrics;
use crate::regions::state::HealthView;
use crate::tls::SniResolver;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// The cluster's published part in force (`[cluster] shared_config`), merged into every
    /// reload of the file.
    shared: arc_swap::ArcSwapOption<Published>,
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
            shared: arc_swap::ArcSwapOption::empty(),
        }
    }

    /// The published part the node started with, merged into later reloads.
    pub fn with_shared(self, shared: Option<Published>) -> Self {
        self.shared.store(shared.map(Arc::new));
        self
    }

    /// Applies the file with `shared` merged in; on success `shared` stays in force.
    pub async fn reload_shared(&self, shared: Published) -> Result<Reloaded, ReloadError> {
        let result = self.reload_with(Some(Arc::new(shared))).await;
        result.map(|(done, shared)| {
            self.shared.store(shared);
            done
        })
    }

    /// Reads, validates and applies the configuration file (with the published part in
    /// force merged in); logs and counts the outcome.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        self.reload_with(self.shared.load_full())
            .await
            .map(|(done, _)| done)
    }

    async fn reload_with(
        &self,
        shared: Option<Arc<Published>>,
    ) -> Result<(Reloaded, Option<Arc<Published>>), ReloadError> {
        let _one_at_a_time = self.running.lock().await;
        let path = self.path.clone();
        let text = shared.as_ref().map(|s| s.text.clone());
        // Reading certificates and a GeoIP database is blocking file work.
        let loaded = tokio::task::spawn_blocking(move || match text {
            Some(text) => config::shared::load_merged(&path, &text),
            None => config::load(&path),
        })
        .await;
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
                if let Some(s) = &shared {
                    log::info!("shared configuration revision {} in force", s.revision);
                }
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
        result.map(|done| (done, shared))
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

#[async_trait::async_trait]
impl Reload for Reloader {
    async fn reload(&self) -> Result<Reloaded, ReloadError> {
        Reloader::reload(self).await
    }

    async fn reload_shared(&self, shared: Published) -> Result<Reloaded, ReloadError> {
        Reloader::reload_shared(self, shared).await
    }
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
