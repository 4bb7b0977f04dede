//! Which regions a geo record answers for a client: the nearest healthy ones.

use super::zone::Candidates;
use crate::config::runtime::Region;
use crate::geo::distance::GeoPoint;
use crate::regions::state::HealthView;

/// The regions picked for one answer, as indexes into [`Candidates::regions`].
#[derive(Debug, PartialEq, Eq)]
pub struct Choice {
    pub picked: Vec<usize>,
    /// No candidate was healthy: `picked` is every candidate, nearest first, unless the
    /// record has a configured fallback, which is answered instead.
    pub none_healthy: bool,
}

/// Up to `answers` healthy candidates nearest to `from` (each region's `bias_km` applied),
/// or every candidate in distance order when none is healthy: an answer that may work beats
/// an empty one, as gdnsd and Route 53 also do.
pub fn choose(
    candidates: &Candidates,
    answers: usize,
    regions: &[Region],
    view: &HealthView,
    from: GeoPoint,
) -> Choice {
    let mut order: Vec<(f64, usize)> = candidates
        .regions
        .iter()
        .enumerate()
        .filter_map(|(i, &id)| Some((regions.get(id)?.biased_distance_km(&from), i)))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let picked: Vec<usize> = order
        .iter()
        .map(|&(_, i)| i)
        .filter(|&i| view.region_usable(candidates.regions[i]))
        .take(answers)
        .collect();
    if picked.is_empty() {
        Choice {
            picked: order.into_iter().map(|(_, i)| i).collect(),
            none_healthy: true,
        }
    } else {
        Choice {
            picked,
            none_healthy: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::runtime::EjectionPolicy;
    use crate::regions::state::CheckState;
    use std::time::Duration;

    fn setup() -> (Vec<Region>, HealthView, Candidates) {
        let regions = vec![
            Region::for_tests("eu", 53.35, -6.26, &[(1, 1)]),
            Region::for_tests("us", 39.04, -77.49, &[(2, 1)]),
            Region::for_tests("ap", 35.68, 139.69, &[(3, 1)]),
        ];
        let view = HealthView::new(
            &regions,
            EjectionPolicy {
                after_failures: 0,
                base: Duration::from_secs(1),
                max: Duration::from_secs(1),
                max_ejected_percent: 100,
            },
        );
        let candidates = Candidates {
            regions: vec![0, 1, 2],
            records: vec![Vec::new(), Vec::new(), Vec::new()],
            fallback: Vec::new(),
        };
        (regions, view, candidates)
    }

    const PARIS: GeoPoint = GeoPoint {
        lat: 48.85,
        lon: 2.35,
    };

    #[test]
    fn the_nearest_healthy_regions_are_picked_in_order() {
        let (regions, view, c) = setup();
        assert_eq!(choose(&c, 1, &regions, &view, PARIS).picked, [0]);
        assert_eq!(choose(&c, 2, &regions, &view, PARIS).picked, [0, 1]);
        let tokyo = GeoPoint {
            lat: 35.0,
            lon: 139.0,
        };
        assert_eq!(choose(&c, 1, &regions, &view, tokyo).picked, [2]);
    }

    #[test]
    fn a_down_region_is_skipped_and_all_down_answers_everyone_nearest_first() {
        let (regions, view, c) = setup();
        view.set_check_state(0, 0, CheckState::Down);
        let choice = choose(&c, 1, &regions, &view, PARIS);
        assert_eq!(choice.picked, [1]);
        assert!(!choice.none_healthy);
        view.set_check_state(1, 0, CheckState::Down);
        view.set_check_state(2, 0, CheckState::Down);
        let choice = choose(&c, 1, &regions, &view, PARIS);
        assert_eq!(choice.picked, [0, 1, 2]);
        assert!(choice.none_healthy);
    }
}
