//! Active health checks: one probe loop per origin, HTTP or TCP, HAProxy rise/fall.
//!
//! The probes are pingora's (`HttpHealthCheck`, `TcpHealthCheck`); the schedule, the
//! rise/fall hysteresis and the shared view are Meridian's. Each origin's loop awaits its
//! probe (bounded by the timeout) before sleeping, so checks of one origin never overlap and a
//! hung origin costs one timeout per interval.

use super::probe::HttpProbe;
use super::state::{CheckState, HealthView, LastCheck};
use crate::config::runtime::{HealthCheck, HealthCheckKind, RegionId, Runtime};
use crate::metrics::Metrics;
use async_trait::async_trait;
use pingora::lb::health_check::{HealthCheck as Probe, TcpHealthCheck};
use pingora::lb::Backend;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Rise/fall hysteresis of one origin (HAProxy semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiseFall {
    state: CheckState,
    /// Consecutive results that disagree with `state`.
    streak: u32,
}

impl Default for RiseFall {
    fn default() -> Self {
        RiseFall {
            state: CheckState::Unverified,
            streak: 0,
        }
    }
}

impl RiseFall {
    pub fn state(&self) -> CheckState {
        self.state
    }

    /// Feeds one result; returns the new state when it changed. An unverified origin is
    /// confirmed up by its first success, and goes down after `fall` failures like an up one.
    pub fn observe(&mut self, ok: bool, rise: u32, fall: u32) -> Option<CheckState> {
        let next = match (self.state, ok) {
            (CheckState::Unverified, true) => Some(CheckState::Up),
            (CheckState::Up, true) | (CheckState::Down, false) => {
                self.streak = 0;
                None
            }
            (CheckState::Unverified | CheckState::Up, false) => {
                self.streak += 1;
                (self.streak >= fall).then_some(CheckState::Down)
            }
            (CheckState::Down, true) => {
                self.streak += 1;
                (self.streak >= rise).then_some(CheckState::Up)
            }
        };
        if let Some(s) = next {
            self.state = s;
            self.streak = 0;
        }
        next
    }
}

/// The background service running every origin's checks.
pub struct HealthChecker {
    rt: Arc<Runtime>,
    view: Arc<HealthView>,
    metrics: Arc<Metrics>,
}

impl HealthChecker {
    pub fn new(rt: Arc<Runtime>, view: Arc<HealthView>, metrics: Arc<Metrics>) -> Self {
        HealthChecker { rt, view, metrics }
    }
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Checks start at boot, not on first use.
        let mut tasks = tokio::task::JoinSet::new();
        for (r, region) in self.rt.regions.iter().enumerate() {
            for (o, origin) in region.origins.iter().enumerate() {
                let target = Target {
                    region: r,
                    origin: o,
                    addr: origin.addr,
                    region_name: region.name.clone(),
                };
                // An origin's own check overrides its region's.
                let hc = origin.health_check.as_ref().unwrap_or(&region.health_check);
                match probe_for(hc, origin.addr) {
                    Ok(probe) => {
                        tasks.spawn(check_loop(
                            target,
                            probe,
                            hc.clone(),
                            self.view.clone(),
                            self.metrics.clone(),
                        ));
                    }
                    Err(e) => {
                        log::error!("origin {}: cannot build its health check: {e}", origin.addr)
                    }
                }
            }
        }
        let _ = shutdown.changed().await;
        tasks.abort_all();
    }
}

struct Target {
    region: RegionId,
    origin: usize,
    addr: SocketAddr,
    region_name: String,
}

/// pingora's probe for one origin, with the configured timeout.
fn probe_for(
    hc: &HealthCheck,
    addr: SocketAddr,
) -> pingora_error::Result<Box<dyn Probe + Send + Sync>> {
    match &hc.kind {
        HealthCheckKind::Tcp => {
            let mut tcp = TcpHealthCheck::new();
            tcp.peer_template.options.connection_timeout = Some(hc.timeout);
            Ok(tcp)
        }
        HealthCheckKind::Http(check) => {
            let host = check.host.clone().unwrap_or_else(|| addr.to_string());
            let mut req = RequestHeader::build(check.method.clone(), check.path.as_bytes(), None)?;
            req.insert_header("host", host)?;
            req.insert_header("user-agent", "meridian-health-check")?;
            let mut peer = HttpPeer::new(addr, false, String::new());
            peer.options.connection_timeout = Some(hc.timeout);
            peer.options.read_timeout = Some(hc.timeout);
            peer.options.write_timeout = Some(hc.timeout);
            Ok(Box::new(HttpProbe::new(
                peer,
                req,
                check.expect_status.clone(),
                check.body_contains.clone().map(String::into_bytes),
            )))
        }
    }
}

async fn check_loop(
    t: Target,
    probe: Box<dyn Probe + Send + Sync>,
    hc: HealthCheck,
    view: Arc<HealthView>,
    metrics: Arc<Metrics>,
) {
    let backend = match Backend::new(&t.addr.to_string()) {
        Ok(b) => b,
        Err(e) => {
            log::error!("origin {}: {e}", t.addr);
            return;
        }
    };
    let origin_metrics = metrics.origin(&t.region_name, &t.addr.to_string());
    let mut rise_fall = RiseFall::default();
    loop {
        let started = Instant::now();
        let result = tokio::time::timeout(hc.timeout, probe.check(&backend)).await;
        let latency = started.elapsed();
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "no answer within {}",
                humantime::format_duration(hc.timeout)
            )),
        };
        origin_metrics.check_duration.observe(latency.as_secs_f64());
        let ok = error.is_none();
        if let Some(new) = rise_fall.observe(ok, hc.healthy_after, hc.unhealthy_after) {
            let old = view.set_check_state(t.region, t.origin, new);
            origin_metrics.up.set(i64::from(new != CheckState::Down));
            origin_metrics.transition(new == CheckState::Down);
            // Every transition is logged; going down or coming back is worth a warning, a
            // first confirmation at boot is not. A single failed check is never logged.
            let level = if new == CheckState::Down || old == CheckState::Down {
                log::Level::Warn
            } else {
                log::Level::Info
            };
            log::log!(
                level,
                "origin {} (region {}): {} -> {}: {}",
                t.addr,
                t.region_name,
                old.as_str(),
                new.as_str(),
                error.as_deref().unwrap_or("checks pass")
            );
        }
        view.record_check(
            t.region,
            t.origin,
            LastCheck {
                at: Some(SystemTime::now()),
                latency: Some(latency),
                error,
            },
        );
        tokio::time::sleep(next_delay(hc.interval, hc.jitter, latency)).await;
    }
}

/// Time to the next check: the interval from this check's start, plus a random jitter so the
/// checks of many origins do not fire together.
fn next_delay(interval: Duration, jitter: Duration, spent: Duration) -> Duration {
    let jitter_ms = u64::try_from(jitter.as_millis()).unwrap_or(0);
    let extra = if jitter_ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(fastrand::u64(0..=jitter_ms))
    };
    interval.saturating_sub(spent) + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(rf: &mut RiseFall, results: &[bool]) -> Vec<Option<CheckState>> {
        results.iter().map(|&ok| rf.observe(ok, 2, 3)).collect()
    }

    #[test]
    fn an_unverified_origin_is_confirmed_by_its_first_success() {
        let mut rf = RiseFall::default();
        assert_eq!(feed(&mut rf, &[true]), [Some(CheckState::Up)]);
    }

    #[test]
    fn an_origin_goes_down_after_fall_consecutive_failures_only() {
        let mut rf = RiseFall::default();
        feed(&mut rf, &[true]);
        assert_eq!(
            feed(&mut rf, &[false, false, true, false, false]),
            [None; 5]
        );
        assert_eq!(rf.state(), CheckState::Up);
        assert_eq!(feed(&mut rf, &[false]), [Some(CheckState::Down)]);
    }

    #[test]
    fn a_down_origin_comes_back_after_rise_consecutive_successes() {
        let mut rf = RiseFall::default();
        feed(&mut rf, &[false, false, false]);
        assert_eq!(rf.state(), CheckState::Down);
        assert_eq!(feed(&mut rf, &[true, false, true]), [None; 3]);
        assert_eq!(feed(&mut rf, &[true]), [Some(CheckState::Up)]);
    }

    #[test]
    fn an_unverified_origin_that_never_answers_goes_down_after_fall() {
        let mut rf = RiseFall::default();
        assert_eq!(
            feed(&mut rf, &[false, false, false]),
            [None, None, Some(CheckState::Down)]
        );
    }

    #[test]
    fn the_next_check_waits_out_the_interval_from_the_start_plus_jitter() {
        let d = next_delay(
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::from_millis(300),
        );
        assert_eq!(d, Duration::from_millis(700));
        let slow = next_delay(
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::from_secs(2),
        );
        assert_eq!(slow, Duration::ZERO);
        for _ in 0..100 {
            let j = next_delay(
                Duration::from_secs(1),
                Duration::from_millis(100),
                Duration::ZERO,
            );
            assert!((Duration::from_secs(1)..=Duration::from_millis(1100)).contains(&j));
        }
    }
}
