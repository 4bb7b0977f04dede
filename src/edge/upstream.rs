//! Picks the origin for each attempt: regions in the route's order, origins by weight, only
//! those the health view says are usable, or all of them in "panic" when none is.

use crate::config::runtime::{Region, RegionId, UpstreamSettings};
use crate::regions::state::HealthView;
use pingora_core::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Spreads one region's requests over its origins by weight.
#[derive(Debug)]
pub struct RegionBalancer {
    /// Smooth weighted round robin order (nginx's algorithm), precomputed: origin indices.
    schedule: Vec<usize>,
    next: AtomicUsize,
}

impl RegionBalancer {
    pub fn new(region: &Region) -> Self {
        let weights: Vec<u32> = region.origins.iter().map(|o| o.weight.max(1)).collect();
        RegionBalancer {
            schedule: smooth_wrr_schedule(&weights),
            next: AtomicUsize::new(0),
        }
    }

    /// The origin this request starts with.
    fn first_origin(&self) -> usize {
        if self.schedule.is_empty() {
            return 0;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.schedule.len();
        self.schedule.get(i).copied().unwrap_or(0)
    }
}

/// One full cycle of smooth weighted round robin: each origin appears `weight` times, spread
/// out rather than bunched (weights 5,1,1 give a a b a c a a, not a a a a a b c).
fn smooth_wrr_schedule(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(weights) {
            *c += i64::from(w);
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by_key(|&(i, c)| (*c, -(i as i64)))
        else {
            break;
        };
        if let Some(c) = current.get_mut(best) {
            *c -= total;
        }
        out.push(best);
    }
    out
}

/// Where one request is in its walk over regions and origins.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    region_pos: usize,
    tried_in_region: usize,
    start: usize,
    /// Attempts made so far, first one included.
    pub attempts: usize,
    /// No origin was usable when the request started: every origin is tried, in order.
    pub panic: bool,
}

/// The origin chosen for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub region: RegionId,
    pub origin: usize,
    pub addr: SocketAddr,
}

impl Cursor {
    /// The next origin to try: the usable origins of the first region (starting where the
    /// balancer says), then the next region's, until `max_attempts`. When not one origin is
    /// usable for the first attempt, every origin is tried in the same order ("panic").
    pub fn next(
        &mut self,
        order: &[RegionId],
        regions: &[Region],
        balancers: &[RegionBalancer],
        view: &HealthView,
        max_attempts: usize,
    ) -> Option<Pick> {
        if self.attempts >= max_attempts {
            return None;
        }
        if let Some(pick) = self.walk(order, regions, balancers, view) {
            return Some(pick);
        }
        if self.attempts == 0 && !self.panic {
            // Better an unhealthy origin than a certain error.
            self.panic = true;
            self.region_pos = 0;
            self.tried_in_region = 0;
            return self.walk(order, regions, balancers, view);
        }
        None
    }

    fn walk(
        &mut self,
        order: &[RegionId],
        regions: &[Region],
        balancers: &[RegionBalancer],
        view: &HealthView,
    ) -> Option<Pick> {
        loop {
            let region = *order.get(self.region_pos)?;
            let origins = &regions.get(region)?.origins;
            if self.tried_in_region == 0 {
                self.start = balancers
                    .get(region)
                    .map_or(0, RegionBalancer::first_origin);
            }
            while self.tried_in_region < origins.len() {
                let origin = (self.start + self.tried_in_region) % origins.len();
                self.tried_in_region += 1;
                if self.panic || view.is_usable(region, origin) {
                    self.attempts += 1;
                    let addr = origins.get(origin)?.addr;
                    return Some(Pick {
                        region,
                        origin,
                        addr,
                    });
                }
            }
            self.region_pos += 1;
            self.tried_in_region = 0;
        }
    }

    /// Whether [`Cursor::next`] would return another origin.
    pub fn has_next(
        &self,
        order: &[RegionId],
        regions: &[Region],
        view: &HealthView,
        max_attempts: usize,
    ) -> bool {
        if self.attempts >= max_attempts {
            return false;
        }
        let usable = |region: RegionId, origin: usize| self.panic || view.is_usable(region, origin);
        let left_here = order.get(self.region_pos).is_some_and(|&r| {
            let n = regions.get(r).map_or(0, |reg| reg.origins.len());
            let offsets = if self.tried_in_region == 0 {
                0..n
            } else {
                self.tried_in_region..n
            };
            offsets
                .map(|k| (self.start + k) % n.max(1))
                .any(|o| usable(r, o))
        });
        let later = order
            .iter()
            .skip(self.region_pos + 1)
            .any(|&r| (0..regions.get(r).map_or(0, |reg| reg.origins.len())).any(|o| usable(r, o)));
        left_here || later
    }
}

/// The pingora peer for a plain-HTTP origin, with the configured timeouts.
pub fn http_peer(
    addr: SocketAddr,
    settings: &UpstreamSettings,
    region: Option<&Region>,
) -> Box<HttpPeer> {
    let tls = region.and_then(|r| r.tls.as_ref());
    let mut peer = HttpPeer::new(
        addr,
        tls.is_some(),
        tls.map_or_else(String::new, |t| t.sni.clone()),
    );
    if let Some(t) = tls {
        peer.options.verify_cert = t.verify;
        peer.options.verify_hostname = t.verify;
        peer.options.ca = t.ca.clone();
        peer.client_cert_key = t.client.clone();
    }
    if region.is_some_and(|r| r.http2) {
        // Over TLS, ALPN offers h2 and falls back to HTTP/1.1; in the clear, h2c by prior
        // knowledge (there is nothing to negotiate with).
        peer.options
            .set_http_version(2, if tls.is_some() { 1 } else { 2 });
        peer.options.max_h2_streams = 100;
    }
    peer.options.connection_timeout = Some(settings.connect_timeout);
    peer.options.read_timeout = Some(settings.read_timeout);
    peer.options.write_timeout = Some(settings.write_timeout);
    peer.options.idle_timeout = Some(settings.idle_timeout);
    Box::new(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::runtime::EjectionPolicy;
    use crate::regions::state::CheckState;
    use proptest::prelude::*;
    use std::time::Duration;

    fn region(name: &str, ports: &[(u16, u32)]) -> Region {
        Region::for_tests(name, 0.0, 0.0, ports)
    }

    #[test]
    fn smooth_wrr_spreads_by_weight() {
        assert_eq!(smooth_wrr_schedule(&[5, 1, 1]), [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_wrr_schedule(&[1, 2]), [1, 0, 1]);
        assert_eq!(smooth_wrr_schedule(&[1]), [0]);
        assert!(smooth_wrr_schedule(&[]).is_empty());
    }

    #[test]
    fn balancer_gives_each_origin_its_share() {
        let r = region("r", &[(1, 1), (2, 3)]);
        let b = RegionBalancer::new(&r);
        let mut counts = [0; 2];
        for _ in 0..400 {
            counts[b.first_origin()] += 1;
        }
        assert_eq!(counts, [100, 300]);
    }

    fn view(regions: &[Region]) -> HealthView {
        HealthView::new(
            regions,
            crate::config::runtime::EjectionPolicy {
                after_failures: 0,
                base: Duration::from_secs(1),
                max: Duration::from_secs(1),
                max_ejected_percent: 100,
            },
        )
    }

    #[test]
    fn cursor_tries_every_origin_of_a_region_then_the_next_region() {
        let regions = vec![region("a", &[(1, 1), (2, 1)]), region("b", &[(3, 1)])];
        let balancers: Vec<_> = regions.iter().map(RegionBalancer::new).collect();
        let v = view(&regions);
        let mut c = Cursor::default();
        let mut ports = Vec::new();
        while c.has_next(&[0, 1], &regions, &v, 10) {
            let pick = c.next(&[0, 1], &regions, &balancers, &v, 10).unwrap();
            ports.push(pick.addr.port());
        }
        assert_eq!(ports, [1, 2, 3]);
        assert_eq!(c.next(&[0, 1], &regions, &balancers, &v, 10), None);
        assert!(!c.panic);
    }

    #[test]
    fn cursor_stops_at_max_attempts() {
        let regions = vec![region("a", &[(1, 1), (2, 1), (3, 1)])];
        let balancers: Vec<_> = regions.iter().map(RegionBalancer::new).collect();
        let v = view(&regions);
        let mut c = Cursor::default();
        assert!(c.next(&[0], &regions, &balancers, &v, 2).is_some());
        assert!(c.next(&[0], &regions, &balancers, &v, 2).is_some());
        assert!(!c.has_next(&[0], &regions, &v, 2));
        assert_eq!(c.next(&[0], &regions, &balancers, &v, 2), None);
        assert_eq!(c.attempts, 2);
    }

    #[test]
    fn cursor_skips_unusable_origins_and_regions() {
        let regions = vec![region("a", &[(1, 1), (2, 1)]), region("b", &[(3, 1)])];
        let balancers: Vec<_> = regions.iter().map(RegionBalancer::new).collect();
        let v = view(&regions);
        v.set_check_state(0, 0, CheckState::Down);
        v.set_origin_drained(0, 1, true);
        let mut c = Cursor::default();
        let first = c.next(&[0, 1], &regions, &balancers, &v, 10).unwrap();
        assert_eq!(first.addr.port(), 3, "region a has nothing usable");
        assert!(!c.has_next(&[0, 1], &regions, &v, 10));
        assert!(!c.panic);
    }

    #[test]
    fn with_nothing_usable_the_cursor_panics_and_tries_everything_in_order() {
        let regions = vec![region("a", &[(1, 1)]), region("b", &[(2, 1)])];
        let balancers: Vec<_> = regions.iter().map(RegionBalancer::new).collect();
        let v = view(&regions);
        v.set_region_drained(0, true);
        v.set_check_state(1, 0, CheckState::Down);
        let mut c = Cursor::default();
        let ports: Vec<u16> = std::iter::from_fn(|| c.next(&[0, 1], &regions, &balancers, &v, 10))
            .map(|p| p.addr.port())
            .collect();
        assert_eq!(ports, [1, 2]);
        assert!(c.panic);
    }

    #[test]
    fn successive_requests_start_on_different_origins() {
        let regions = vec![region("a", &[(1, 1), (2, 1)])];
        let balancers: Vec<_> = regions.iter().map(RegionBalancer::new).collect();
        let v = view(&regions);
        let first = |b: &[RegionBalancer]| {
            Cursor::default()
                .next(&[0], &regions, b, &v, 3)
                .unwrap()
                .addr
                .port()
        };
        let (a, b) = (first(&balancers), first(&balancers));
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn the_cursor_picks_only_usable_origins_unless_in_panic_and_respects_max_attempts(
            sizes in proptest::collection::vec(1usize..4, 1..4),
            down in proptest::collection::vec(any::<bool>(), 12),
            max_attempts in 1usize..8,
        ) {
            let regions: Vec<Region> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let ports: Vec<(u16, u32)> = (0..n).map(|o| ((i * 10 + o) as u16 + 1, 1)).collect();
                    Region::for_tests("r", 0.0, 0.0, &ports)
                })
                .collect();
            let view = HealthView::new(&regions, EjectionPolicy {
                after_failures: 0,
                base: Duration::from_secs(1),
                max: Duration::from_secs(1),
                max_ejected_percent: 100,
            });
            let mut k = 0;
            for (r, region) in regions.iter().enumerate() {
                for o in 0..region.origins.len() {
                    if down[k % down.len()] {
                        view.set_check_state(r, o, CheckState::Down);
                    }
                    k += 1;
                }
            }
            let balancers: Vec<RegionBalancer> = regions.iter().map(RegionBalancer::new).collect();
            let order: Vec<usize> = (0..regions.len()).collect();
            let mut cursor = Cursor::default();
            let mut picks = 0;
            while let Some(p) = cursor.next(&order, &regions, &balancers, &view, max_attempts) {
                picks += 1;
                prop_assert!(cursor.panic || view.is_usable(p.region, p.origin));
            }
            prop_assert!(picks <= max_attempts);
            let any_usable = (0..regions.len()).any(|r| view.region_usable(r));
            prop_assert_eq!(cursor.panic, !any_usable);
        }
    }
}
