//! Orders regions by distance from a location, nearest first.

use crate::config::runtime::{Region, RegionId};
use crate::geo::distance::GeoPoint;

/// `ids` sorted by great-circle distance from `from`, each region's `bias_km` added (a
/// positive bias makes a region look farther, a negative one nearer).
pub fn nearest_first(regions: &[Region], ids: &[RegionId], from: GeoPoint) -> Vec<RegionId> {
    let mut keyed: Vec<(f64, RegionId)> = ids
        .iter()
        .filter_map(|&id| {
            let r = regions.get(id)?;
            Some((r.biased_distance_km(&from), id))
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn region(lat: f64, lon: f64, bias_km: f64) -> Region {
        Region {
            bias_km,
            ..Region::for_tests("", lat, lon, &[])
        }
    }

    #[test]
    fn regions_come_nearest_first_and_bias_moves_them() {
        let regions = [
            region(53.35, -6.26, 0.0),
            region(39.04, -77.49, 0.0),
            region(35.68, 139.69, 0.0),
        ];
        let ashburn = GeoPoint {
            lat: 38.9,
            lon: -77.0,
        };
        assert_eq!(nearest_first(&regions, &[0, 1, 2], ashburn), [1, 0, 2]);
        let dublin = GeoPoint {
            lat: 53.0,
            lon: -6.0,
        };
        assert_eq!(nearest_first(&regions, &[0, 1, 2], dublin), [0, 1, 2]);
        let biased = [
            region(53.35, -6.26, 10_000.0),
            region(39.04, -77.49, 0.0),
            region(35.68, 139.69, 0.0),
        ];
        assert_eq!(nearest_first(&biased, &[0, 1, 2], dublin), [1, 2, 0]);
        assert_eq!(
            nearest_first(&regions, &[2, 0], dublin),
            [0, 2],
            "only the given ids"
        );
    }

    fn point() -> impl Strategy<Value = GeoPoint> {
        (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| GeoPoint { lat, lon })
    }

    proptest! {
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
    }
}
