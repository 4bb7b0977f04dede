//! Certificate expiry: an expired certificate is a configuration error, one expiring within
//! `[tls] expiry_warning` is logged at startup and reload, and every site's remaining time
//! is the `meridian_tls_certificate_expiry_seconds` gauge (alert on it well before zero).

use crate::config::Runtime;
use crate::metrics::Metrics;
use std::time::{Duration, SystemTime};

/// Seconds from `now` to `at`, negative when `at` has passed.
pub fn seconds_left(at: SystemTime, now: SystemTime) -> f64 {
    match at.duration_since(now) {
        Ok(left) => left.as_secs_f64(),
        Err(passed) => -passed.duration().as_secs_f64(),
    }
}

/// Sets the gauge for each site with a certificate and warns of those expiring soon.
pub fn observe(rt: &Runtime, metrics: &Metrics) {
    let now = SystemTime::now();
    for site in &rt.sites {
        let Some(at) = site.tls_not_after else {
            continue;
        };
        let left = seconds_left(at, now);
        metrics
            .guard
            .cert_expiry
            .with_label_values(&[site.name.as_str()])
            .set(left);
        if left < rt.tls_expiry_warning.as_secs_f64() {
            log::warn!(
                "site {:?}: its certificate expires in {} (at {}); renew it and reload",
                site.name,
                humantime::format_duration(Duration::from_secs(left.max(0.0) as u64)),
                humantime::format_rfc3339_seconds(at)
            );
        }
    }
}
