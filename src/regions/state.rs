//! The one health view of every origin and region, shared by the proxy (and later the DNS).
//!
//! Readers use atomics only: no lock on the request path. Active checks (`health.rs`) write
//! the check state; the proxy writes passive signals (failures, ejections); the admin API
//! writes drain flags. The view is built from the runtime model and indexed like it:
//! `[region][origin]`.

pub use crate::config::runtime::EjectionPolicy;
use crate::config::runtime::{Region, RegionId};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What active checks say of an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// No result yet. Counts as healthy, so a node that just started serves at once rather
    /// than refusing traffic until every origin answered a check (HAProxy's default too).
    Unverified = 0,
    Up = 1,
    Down = 2,
}

impl CheckState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => CheckState::Up,
            2 => CheckState::Down,
            _ => CheckState::Unverified,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Unverified => "unverified",
            CheckState::Up => "up",
            CheckState::Down => "down",
        }
    }
}

/// The last check of an origin, for `/status`.
#[derive(Debug, Clone, Default)]
pub struct LastCheck {
    pub at: Option<std::time::SystemTime>,
    pub latency: Option<Duration>,
    pub error: Option<String>,
}

/// Health of one origin.
#[derive(Debug, Default)]
pub struct OriginHealth {
    check: AtomicU8,
    drained: AtomicBool,
    consecutive_failures: AtomicU32,
    /// Milliseconds since the view's epoch until which the origin is ejected (0: not).
    ejected_until_ms: AtomicU64,
    ejections: AtomicU32,
    /// Written by the checker only, read by `/status`: a mutex off the request path.
    last_check: Mutex<LastCheck>,
}

impl OriginHealth {
    pub fn check_state(&self) -> CheckState {
        CheckState::from_u8(self.check.load(Ordering::Acquire))
    }

    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    pub fn ejections(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }

    pub fn last_check(&self) -> LastCheck {
        self.last_check
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }
}

/// Health of one region.
#[derive(Debug, Default)]
pub struct RegionHealth {
    drained: AtomicBool,
    origins: Vec<OriginHealth>,
}

impl RegionHealth {
    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire)
    }

    pub fn origins(&self) -> &[OriginHealth] {
        &self.origins
    }
}

/// The shared view.
#[derive(Debug)]
pub struct HealthView {
    epoch: Instant,
    regions: Vec<RegionHealth>,
    ejection: EjectionPolicy,
}

impl HealthView {
    /// A view of `regions`, every origin unverified and undrained.
    pub fn new(regions: &[Region], ejection: EjectionPolicy) -> Self {
        HealthView {
            epoch: Instant::now(),
            regions: regions
                .iter()
                .map(|r| RegionHealth {
                    drained: AtomicBool::new(false),
                    origins: r.origins.iter().map(|_| OriginHealth::default()).collect(),
                })
                .collect(),
            ejection,
        }
    }

    pub fn regions(&self) -> &[RegionHealth] {
        &self.regions
    }

    pub fn origin(&self, region: RegionId, origin: usize) -> Option<&OriginHealth> {
        self.regions.get(region)?.origins.get(origin)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether traffic may go to this origin now: not drained (nor its region), not down by
    /// active checks, not ejected by passive ones.
    pub fn is_usable(&self, region: RegionId, origin: usize) -> bool {
        let Some(r) = self.regions.get(region) else {
            return false;
        };
        let Some(o) = r.origins.get(origin) else {
            return false;
        };
        !r.is_drained()
            && !o.is_drained()
            && o.check_state() != CheckState::Down
            && !self.is_ejected(o)
    }

    fn is_ejected(&self, o: &OriginHealth) -> bool {
        o.ejected_until_ms.load(Ordering::Acquire) > self.now_ms()
    }

    pub fn is_ejected_origin(&self, region: RegionId, origin: usize) -> bool {
        self.origin(region, origin)
            .is_some_and(|o| self.is_ejected(o))
    }

    /// Whether any origin of the region is usable.
    pub fn region_usable(&self, region: RegionId) -> bool {
        self.regions
            .get(region)
            .is_some_and(|r| (0..r.origins.len()).any(|o| self.is_usable(region, o)))
    }

    /// Records an active check result's new state; returns the previous one.
    pub fn set_check_state(
        &self,
        region: RegionId,
        origin: usize,
        state: CheckState,
    ) -> CheckState {
        self.origin(region, origin)
            .map_or(CheckState::Unverified, |o| {
                CheckState::from_u8(o.check.swap(state as u8, Ordering::AcqRel))
            })
    }

    pub fn record_check(&self, region: RegionId, origin: usize, check: LastCheck) {
        if let Some(o) = self.origin(region, origin) {
            if let Ok(mut last) = o.last_check.lock() {
                *last = check;
            }
        }
    }

    /// A request to the origin succeeded: its failure streak ends.
    pub fn record_success(&self, region: RegionId, origin: usize) {
        if let Some(o) = self.origin(region, origin) {
            if o.consecutive_failures.load(Ordering::Relaxed) != 0 {
                o.consecutive_failures.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A request to the origin failed (connect failure or 5xx); returns `Some(backoff)` when
    /// this failure ejected it.
    pub fn record_failure(&self, region: RegionId, origin: usize) -> Option<Duration> {
        let p = self.ejection;
        let o = self.origin(region, origin)?;
        let streak = o.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if p.after_failures == 0 || streak < p.after_failures || self.is_ejected(o) {
            return None;
        }
        // Never eject more than the allowed share of the region at once, but always allow
        // one (as Envoy does), so a one-origin region can still fail over.
        let r = self.regions.get(region)?;
        let ejected = r.origins.iter().filter(|x| self.is_ejected(x)).count();
        let allowed = ((r.origins.len() * p.max_ejected_percent as usize) / 100).max(1);
        if ejected + 1 > allowed {
            return None;
        }
        let n = o.ejections.fetch_add(1, Ordering::AcqRel);
        let backoff = p
            .base
            .saturating_mul(2u32.saturating_pow(n.min(16)))
            .min(p.max);
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX));
        o.ejected_until_ms.store(until, Ordering::Release);
        o.consecutive_failures.store(0, Ordering::Relaxed);
        Some(backoff)
    }

    /// Drains (or undrains) a region: no new requests go to it.
    pub fn set_region_drained(&self, region: RegionId, drained: bool) -> bool {
        self.regions.get(region).is_some_and(|r| {
            r.drained.store(drained, Ordering::Release);
            true
        })
    }

    /// Drains (or undrains) one origin.
    pub fn set_origin_drained(&self, region: RegionId, origin: usize, drained: bool) -> bool {
        self.origin(region, origin).is_some_and(|o| {
            o.drained.store(drained, Ordering::Release);
            true
        })
    }
}

#[cfg(test)]
mod tests;
