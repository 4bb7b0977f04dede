//! The shield tier's ring: which parent node owns a cache key (consistent hashing, nginx's
//! ketama as pingora ships it), so that a miss on any edge reaches the one shield that holds
//! that object, and a dead shield's keys move to the next node on the ring and nowhere else.

use crate::config::runtime::{Region, RegionId};
use crate::regions::state::HealthView;
use pingora_ketama::{Bucket, Continuum};

/// Shield parents tried for one request: the key's owner, then one more on the ring. A third
/// would hold the object no more than the origins do.
const MAX_SHIELD_ATTEMPTS: usize = 2;

/// The ring over the shield region's nodes.
pub struct ShieldRing {
    region: RegionId,
    continuum: Continuum,
    /// Ring address to the node's index in the shield region (same order as the config).
    nodes: Vec<std::net::SocketAddr>,
}

impl ShieldRing {
    pub fn new(region: RegionId, shield: &Region) -> Self {
        let nodes: Vec<_> = shield.origins.iter().map(|o| o.addr).collect();
        let buckets: Vec<Bucket> = nodes.iter().map(|&addr| Bucket::new(addr, 1)).collect();
        ShieldRing {
            region,
            continuum: Continuum::new(&buckets),
            nodes,
        }
    }

    /// The shield region's id in the region list.
    pub fn region(&self) -> RegionId {
        self.region
    }

    /// The shield nodes to try for `key`, best first: the usable ones in ring order from the
    /// key's point, at most [`MAX_SHIELD_ATTEMPTS`]. Empty when none is usable: the request
    /// then goes straight to the regions.
    pub fn parents(&self, key: &[u8], view: &HealthView) -> Vec<usize> {
        let mut out = Vec::with_capacity(MAX_SHIELD_ATTEMPTS);
        let mut seen = Vec::with_capacity(self.nodes.len());
        // Each node has many points: walk until every node was met once.
        for addr in self.continuum.node_iter(key) {
            let Some(node) = self.nodes.iter().position(|a| a == addr) else {
                break;
            };
            if seen.contains(&node) {
                continue;
            }
            seen.push(node);
            if view.is_usable(self.region, node) {
                out.push(node);
                if out.len() == MAX_SHIELD_ATTEMPTS {
                    break;
                }
            }
            if seen.len() == self.nodes.len() {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::runtime::EjectionPolicy;
    use crate::regions::state::CheckState;
    use std::time::Duration;

    fn ring(ports: &[u16]) -> (ShieldRing, HealthView) {
        let ports: Vec<(u16, u32)> = ports.iter().map(|&p| (p, 1)).collect();
        let region = Region::for_tests("shield", 0.0, 0.0, &ports);
        let view = HealthView::new(
            std::slice::from_ref(&region),
            EjectionPolicy {
                after_failures: 0,
                base: Duration::from_secs(1),
                max: Duration::from_secs(1),
                max_ejected_percent: 100,
            },
        );
        (ShieldRing::new(0, &region), view)
    }

    fn keys() -> impl Iterator<Item = Vec<u8>> {
        (0..2000u32).map(|i| format!("key-{i}").into_bytes())
    }

    #[test]
    fn every_key_has_an_owner_and_a_second_choice_and_keys_spread_over_nodes() {
        let (ring, view) = ring(&[1, 2, 3]);
        let mut owned = [0usize; 3];
        for key in keys() {
            let parents = ring.parents(&key, &view);
            assert_eq!(parents.len(), 2);
            assert_ne!(parents[0], parents[1]);
            owned[parents[0]] += 1;
        }
        for n in owned {
            assert!(n > 400, "ketama spreads 2000 keys over 3 nodes: {owned:?}");
        }
    }

    #[test]
    fn a_down_node_loses_only_its_own_keys_to_its_ring_successor() {
        let (ring, view) = ring(&[1, 2, 3]);
        let before: Vec<Vec<usize>> = keys().map(|k| ring.parents(&k, &view)).collect();
        view.set_check_state(0, 1, CheckState::Down);
        for (key, was) in keys().zip(before) {
            let now = ring.parents(&key, &view);
            assert!(!now.contains(&1));
            if was[0] == 1 {
                assert_eq!(now[0], was[1], "moves to the next node on the ring");
            } else {
                assert_eq!(now[0], was[0], "other keys stay where they were");
            }
        }
    }

    #[test]
    fn with_every_node_down_there_is_no_parent() {
        let (ring, view) = ring(&[1, 2]);
        view.set_check_state(0, 0, CheckState::Down);
        view.set_check_state(0, 1, CheckState::Down);
        assert!(ring.parents(b"k", &view).is_empty());
    }

    #[test]
    fn one_node_is_the_only_parent() {
        let (ring, view) = ring(&[1]);
        assert_eq!(ring.parents(b"k", &view), [0]);
    }
}
