//! Points on the Earth and the great-circle distance between them.

/// Mean Earth radius in kilometres (IUGG), the usual choice for haversine distances.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A latitude/longitude in degrees, already checked to be in range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// Returns `None` unless `lat` is in [-90, 90] and `lon` in [-180, 180] (and neither is NaN).
    pub fn new(lat: f64, lon: f64) -> Option<Self> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(GeoPoint { lat, lon })
    }

    /// Great-circle distance in kilometres (haversine formula).
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        // Clamp: rounding can push `a` a hair above 1 for antipodal points, and asin(>1) is NaN.
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DUBLIN: GeoPoint = GeoPoint {
        lat: 53.35,
        lon: -6.26,
    };
    const ASHBURN: GeoPoint = GeoPoint {
        lat: 39.04,
        lon: -77.49,
    };

    #[test]
    fn dublin_to_ashburn_is_about_5500_km() {
        let d = DUBLIN.distance_km(&ASHBURN);
        assert!((5400.0..5600.0).contains(&d), "{d}");
    }

    #[test]
    fn dublin_is_zero_from_itself_and_its_antipode_half_the_circumference_away() {
        assert_eq!(DUBLIN.distance_km(&DUBLIN), 0.0);
        assert_eq!(DUBLIN.distance_km(&ASHBURN), ASHBURN.distance_km(&DUBLIN));
        let antipode = GeoPoint::new(-53.35, 173.74).unwrap();
        let d = DUBLIN.distance_km(&antipode);
        assert!(d <= std::f64::consts::PI * EARTH_RADIUS_KM + 1e-6, "{d}");
        assert!(d > 20_000.0, "{d}");
    }

    #[test]
    fn out_of_range_coordinates_are_rejected() {
        assert!(GeoPoint::new(90.1, 0.0).is_none());
        assert!(GeoPoint::new(0.0, -180.5).is_none());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_none());
        assert!(GeoPoint::new(-90.0, 180.0).is_some());
    }

    fn point() -> impl Strategy<Value = GeoPoint> {
        (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| GeoPoint { lat, lon })
    }

    proptest! {
        #[test]
        fn any_distance_is_symmetric_zero_to_itself_and_at_most_half_the_circumference(a in point(), b in point()) {
            let d = a.distance_km(&b);
            prop_assert!((d - b.distance_km(&a)).abs() < 1e-6);
            prop_assert_eq!(a.distance_km(&a), 0.0);
            prop_assert!((0.0..=std::f64::consts::PI * EARTH_RADIUS_KM + 1e-6).contains(&d));
        }
    }
}
