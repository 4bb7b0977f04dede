//! The per-client request rate limit: a token bucket per client address, refilled at
//! `rate_per_ip` tokens a second up to `rate_burst`; a request without a token gets 429 and
//! a `Retry-After` of the seconds until the next token.

use crate::config::runtime::RateLimit;
use moka::sync::Cache;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets kept at most; an idle bucket is full again, so losing one to eviction is harmless.
const MAX_CLIENTS: u64 = 1 << 20;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets for every recently seen client address.
pub struct RateLimiter {
    buckets: Cache<IpAddr, Arc<Mutex<Bucket>>, ahash::RandomState>,
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter {
            // A bucket idle for this long has refilled for any rate of at least one request
            // in 10 minutes' worth of burst; dropping it changes nothing a client can see.
            buckets: Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(Duration::from_secs(600))
                .build_with_hasher(ahash::RandomState::new()),
        }
    }

    /// Takes a token for `ip`, or says how long until one is there.
    pub fn take(&self, ip: IpAddr, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        let bucket = self.buckets.get_with(ip, || {
            Arc::new(Mutex::new(Bucket {
                tokens: limit.burst,
                at: now,
            }))
        });
        let mut b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * limit.per_second;
        b.tokens = (b.tokens + refill).min(limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / limit.per_second))
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_the_rate() {
        let limiter = RateLimiter::new();
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3.0,
        };
        let ip: IpAddr = [127, 0, 0, 9].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(ip, limit, t0).is_ok());
        }
        let wait = limiter.take(ip, limit, t0).err();
        assert_eq!(wait, Some(Duration::from_millis(500)), "one token at 2/s");
        assert!(limiter
            .take(ip, limit, t0 + Duration::from_millis(500))
            .is_ok());
        assert!(limiter
            .take(ip, limit, t0 + Duration::from_millis(500))
            .is_err());
        let other: IpAddr = [127, 0, 0, 10].into();
        assert!(
            limiter.take(other, limit, t0).is_ok(),
            "buckets are per address"
        );
        // Ten idle seconds fill the bucket to its burst, not beyond.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert!(limiter.take(ip, limit, later).is_ok());
        }
        assert!(limiter.take(ip, limit, later).is_err());
    }
}
