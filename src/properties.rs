//! Property tests for the rules that form tables: each property holds for every input.

use crate::cache::freshness::{evaluate, FreshnessDefaults};
use crate::cache::policy::cache_url;
use crate::config::runtime::{CacheKeyRule, EjectionPolicy, QueryRule, Region};
use crate::edge::route::normalize_host;
use crate::edge::upstream::{Cursor, RegionBalancer};
use crate::geo::distance::{GeoPoint, EARTH_RADIUS_KM};
use crate::regions::select::nearest_first;
use crate::regions::state::{CheckState, HealthView};
use proptest::prelude::*;
use std::time::{Duration, SystemTime};

fn point() -> impl Strategy<Value = GeoPoint> {
    (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| GeoPoint { lat, lon })
}

fn query_rule() -> impl Strategy<Value = CacheKeyRule> {
    (
        prop_oneof![
            Just(QueryRule::Keep),
            Just(QueryRule::Sort),
            Just(QueryRule::Ignore)
        ],
        proptest::collection::vec("[a-c]{1,2}", 0..3),
    )
        .prop_map(|(query, ignore_params)| CacheKeyRule {
            query,
            ignore_params,
            headers: Vec::new(),
            scheme: false,
        })
}

proptest! {
    #[test]
    fn distance_is_symmetric_zero_to_itself_and_at_most_half_the_circumference(a in point(), b in point()) {
        let d = a.distance_km(&b);
        prop_assert!((d - b.distance_km(&a)).abs() < 1e-6);
        prop_assert_eq!(a.distance_km(&a), 0.0);
        prop_assert!((0.0..=std::f64::consts::PI * EARTH_RADIUS_KM + 1e-6).contains(&d));
    }

    #[test]
    fn query_normalisation_is_idempotent(
        path in "/[a-z]{0,4}",
        query in "([a-c]{1,2}(=[0-9]{0,2})?&?){0,5}",
        rule in query_rule(),
    ) {
        let target = format!("{path}?{query}");
        let once = cache_url("http", "h", &target, &rule);
        let again = cache_url("http", "h", once.strip_prefix("http://h").unwrap_or("/"), &rule);
        prop_assert_eq!(once, again);
    }

    #[test]
    fn nearest_first_is_a_permutation_in_non_decreasing_biased_distance(
        from in point(),
        locations in proptest::collection::vec((point(), -1000.0f64..1000.0), 1..6),
    ) {
        let regions: Vec<Region> = locations
            .iter()
            .map(|(p, bias)| Region { bias_km: *bias, ..Region::for_tests("r", p.lat, p.lon, &[]) })
            .collect();
        let ids: Vec<usize> = (0..regions.len()).collect();
        let order = nearest_first(&regions, &ids, from);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, ids);
        let d: Vec<f64> = order.iter().map(|&i| regions[i].biased_distance_km(&from)).collect();
        prop_assert!(d.windows(2).all(|w| w[0] <= w[1]));
    }

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

    #[test]
    fn host_normalisation_never_panics_and_yields_lower_case_without_a_port(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = [0u8; 255];
        if let Some(host) = normalize_host(&raw, &mut buf) {
            prop_assert!(!host.is_empty());
            prop_assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
            if !host.starts_with('[') {
                prop_assert!(!host.contains(':'));
            }
        }
    }

    #[test]
    fn freshness_never_panics_on_arbitrary_header_values(
        status in 100u16..600,
        cc in "[ -~]{0,40}",
        expires in "[ -~]{0,30}",
        age in "[ -~]{0,8}",
    ) {
        let mut h = http::HeaderMap::new();
        for (name, value) in [("cache-control", &cc), ("expires", &expires), ("age", &age)] {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        let _ = evaluate(&http::HeaderMap::new(), status, &h, SystemTime::now(), FreshnessDefaults::default());
    }
}
