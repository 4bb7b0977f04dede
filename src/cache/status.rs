//! What the cache did for one response: a closed set, and its RFC 9211 `Cache-Status` value.

use super::policy::BypassReason;
use http::HeaderValue;
use pingora_cache::{CachePhase, NoCacheReason};

/// The cache's part in one response; labels metrics and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Served from a fresh stored response.
    Hit,
    /// Served a stale stored response (stale-while-revalidate or stale-if-error).
    Stale,
    /// Not stored, fetched, and stored.
    Miss,
    /// Stored but stale; fetched a new full response.
    Expired,
    /// Stored but stale; the origin confirmed it with 304.
    Revalidated,
    /// Looked up, fetched, and the response may not be stored.
    Uncacheable,
    /// The cache was not consulted (route, method).
    Bypass,
    /// No cache involvement: the node answered by itself (unknown host, no route, error).
    None,
}

impl CacheResult {
    pub const COUNT: usize = 8;
    pub const ALL: [CacheResult; Self::COUNT] = [
        CacheResult::Hit,
        CacheResult::Stale,
        CacheResult::Miss,
        CacheResult::Expired,
        CacheResult::Revalidated,
        CacheResult::Uncacheable,
        CacheResult::Bypass,
        CacheResult::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Stale => "stale",
            CacheResult::Miss => "miss",
            CacheResult::Expired => "expired",
            CacheResult::Revalidated => "revalidated",
            CacheResult::Uncacheable => "uncacheable",
            CacheResult::Bypass => "bypass",
            CacheResult::None => "none",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Classifies a response from the cache phase pingora ended in.
    pub fn from_phase(phase: CachePhase, bypass: Option<BypassReason>) -> Self {
        if bypass.is_some() {
            return CacheResult::Bypass;
        }
        match phase {
            CachePhase::Hit => CacheResult::Hit,
            CachePhase::Stale | CachePhase::StaleUpdating => CacheResult::Stale,
            CachePhase::Miss => CacheResult::Miss,
            CachePhase::Expired => CacheResult::Expired,
            CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => CacheResult::Revalidated,
            CachePhase::Disabled(_)
            | CachePhase::Uninit
            | CachePhase::Bypass
            | CachePhase::CacheKey => CacheResult::Uncacheable,
        }
    }
}

/// A short token for why a response was not stored, for `Cache-Status: ...; detail=`.
pub fn no_cache_detail(reason: NoCacheReason) -> &'static str {
    match reason {
        NoCacheReason::NeverEnabled => "not-enabled",
        NoCacheReason::OriginNotCache => "origin-not-cacheable",
        NoCacheReason::ResponseTooLarge | NoCacheReason::PredictedResponseTooLarge => "too-large",
        NoCacheReason::StorageError => "storage-error",
        NoCacheReason::InternalError => "internal-error",
        NoCacheReason::Deferred => "deferred",
        NoCacheReason::DeclinedToUpstream => "declined",
        NoCacheReason::UpstreamError => "upstream-error",
        NoCacheReason::CacheLockGiveUp => "lock-give-up",
        NoCacheReason::CacheLockTimeout => "lock-timeout",
        NoCacheReason::CacheLockRetryLimit => "lock-retry-limit",
        NoCacheReason::Custom(s) => s,
    }
}

/// Why the node answered by itself, without the cache or an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalAnswer {
    MissingHost,
    UnknownHost,
    NoRoute,
    Loop,
    /// The origins failed: nothing to serve and nothing stored.
    UpstreamError,
    /// The client asked for a stored response only, and there was none.
    OnlyIfCached,
    /// Content-Length beside Transfer-Encoding: a smuggling attempt (RFC 9112 §6.3).
    AmbiguousFraming,
    /// A `[limits]` bound was crossed (size, rate), or plain HTTP was sent to HTTPS.
    Limit,
    Redirect,
    /// A malformed request line or path (RFC 9112 §3.2, RFC 3986): 400.
    BadRequest,
    /// A method refused (TRACE without `allow_trace`) or not implemented (too long).
    Method,
}

impl LocalAnswer {
    const COUNT: usize = 11;

    fn detail(self) -> &'static str {
        match self {
            LocalAnswer::MissingHost => "missing-host",
            LocalAnswer::UnknownHost => "unknown-host",
            LocalAnswer::NoRoute => "no-route",
            LocalAnswer::Loop => "loop",
            LocalAnswer::UpstreamError => "upstream-error",
            LocalAnswer::OnlyIfCached => "only-if-cached",
            LocalAnswer::AmbiguousFraming => "ambiguous-framing",
            LocalAnswer::Limit => "limit",
            LocalAnswer::Redirect => "https-redirect",
            LocalAnswer::BadRequest => "bad-request",
            LocalAnswer::Method => "method",
        }
    }
}

/// `Cache-Status` values that do not depend on the response, built once per node.
#[derive(Debug, Clone)]
pub struct CacheStatusValues {
    name: String,
    local: [HeaderValue; LocalAnswer::COUNT],
    hit: HeaderValue,
    disk_hit: HeaderValue,
    collapsed: HeaderValue,
    stale_if_error: HeaderValue,
    stale_while_revalidate: HeaderValue,
    bypass_route: HeaderValue,
    bypass_method: HeaderValue,
}

impl CacheStatusValues {
    /// `node_name` identifies this cache in the header (RFC 9211 §2): a token when it can be
    /// one, else a quoted string.
    pub fn new(node_name: &str) -> Self {
        let name = if node_name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            node_name.to_owned()
        } else {
            format!("\"{node_name}\"")
        };
        let v = |suffix: &str| {
            HeaderValue::try_from(format!("{name}; {suffix}"))
                .unwrap_or(HeaderValue::from_static("meridian"))
        };
        let local = [
            LocalAnswer::MissingHost,
            LocalAnswer::UnknownHost,
            LocalAnswer::NoRoute,
            LocalAnswer::Loop,
            LocalAnswer::UpstreamError,
            LocalAnswer::OnlyIfCached,
            LocalAnswer::AmbiguousFraming,
            LocalAnswer::Limit,
            LocalAnswer::Redirect,
            LocalAnswer::BadRequest,
            LocalAnswer::Method,
        ]
        .map(|a| match a {
            LocalAnswer::UpstreamError => v("fwd=uri-miss; detail=upstream-error"),
            LocalAnswer::OnlyIfCached => v("fwd=miss; detail=only-if-cached"),
            _ => v(&format!("fwd=bypass; detail={}", a.detail())),
        });
        CacheStatusValues {
            local,
            hit: v("hit"),
            disk_hit: v("hit; detail=disk"),
            collapsed: v("fwd=uri-miss; collapsed"),
            stale_if_error: v("hit; detail=stale-if-error"),
            stale_while_revalidate: v("hit; detail=stale-while-revalidate"),
            bypass_route: v("fwd=bypass; detail=route"),
            bypass_method: v("fwd=bypass; detail=method"),
            name,
        }
    }

    /// The header for a hit the disk tier served.
    pub fn disk_hit(&self) -> HeaderValue {
        self.disk_hit.clone()
    }

    /// The header for a response the node wrote itself.
    pub fn local(&self, answer: LocalAnswer) -> HeaderValue {
        self.local
            .get(answer as usize)
            .cloned()
            .unwrap_or(HeaderValue::from_static("meridian"))
    }

    /// The header for a response; `status` is what the origin answered when it was asked.
    pub fn value(
        &self,
        result: CacheResult,
        bypass: Option<BypassReason>,
        collapsed: bool,
        while_revalidating: bool,
        status: u16,
        not_stored: Option<NoCacheReason>,
    ) -> Option<HeaderValue> {
        let dynamic = |s: String| HeaderValue::try_from(s).ok();
        match result {
            CacheResult::Hit if collapsed => Some(self.collapsed.clone()),
            CacheResult::Hit => Some(self.hit.clone()),
            CacheResult::Stale if while_revalidating => Some(self.stale_while_revalidate.clone()),
            CacheResult::Stale => Some(self.stale_if_error.clone()),
            CacheResult::Bypass => Some(match bypass {
                Some(BypassReason::Method) => self.bypass_method.clone(),
                _ => self.bypass_route.clone(),
            }),
            CacheResult::Miss => dynamic(format!(
                "{}; fwd=uri-miss; fwd-status={status}; stored",
                self.name
            )),
            CacheResult::Expired => dynamic(format!(
                "{}; fwd=stale; fwd-status={status}; stored",
                self.name
            )),
            CacheResult::Revalidated => {
                dynamic(format!("{}; fwd=stale; fwd-status=304", self.name))
            }
            CacheResult::Uncacheable => {
                let detail = not_stored.map_or("origin-not-cacheable", no_cache_detail);
                dynamic(format!(
                    "{}; fwd=uri-miss; fwd-status={status}; detail={detail}",
                    self.name
                ))
            }
            CacheResult::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_rfc_9211_syntax() {
        let v = CacheStatusValues::new("edge-1");
        let hit = v
            .value(CacheResult::Hit, None, false, false, 200, None)
            .unwrap();
        assert_eq!(hit, "edge-1; hit");
        let miss = v
            .value(CacheResult::Miss, None, false, false, 200, None)
            .unwrap();
        assert_eq!(miss, "edge-1; fwd=uri-miss; fwd-status=200; stored");
        let not_stored = v
            .value(
                CacheResult::Uncacheable,
                None,
                false,
                false,
                200,
                Some(NoCacheReason::Custom("set-cookie")),
            )
            .unwrap();
        assert_eq!(
            not_stored,
            "edge-1; fwd=uri-miss; fwd-status=200; detail=set-cookie"
        );
        let bypass = v
            .value(
                CacheResult::Bypass,
                Some(BypassReason::Method),
                false,
                false,
                200,
                None,
            )
            .unwrap();
        assert_eq!(bypass, "edge-1; fwd=bypass; detail=method");
        assert!(v
            .value(CacheResult::None, None, false, false, 421, None)
            .is_none());
        let swr = v
            .value(CacheResult::Stale, None, false, true, 200, None)
            .unwrap();
        assert_eq!(swr, "edge-1; hit; detail=stale-while-revalidate");
        let sie = v
            .value(CacheResult::Stale, None, false, false, 200, None)
            .unwrap();
        assert_eq!(sie, "edge-1; hit; detail=stale-if-error");
    }

    #[test]
    fn local_answers_say_why_nothing_was_forwarded() {
        let v = CacheStatusValues::new("edge-1");
        assert_eq!(
            v.local(LocalAnswer::UnknownHost),
            "edge-1; fwd=bypass; detail=unknown-host"
        );
        assert_eq!(
            v.local(LocalAnswer::Loop),
            "edge-1; fwd=bypass; detail=loop"
        );
        assert_eq!(
            v.local(LocalAnswer::UpstreamError),
            "edge-1; fwd=uri-miss; detail=upstream-error"
        );
    }

    #[test]
    fn a_name_that_is_not_a_token_is_quoted() {
        let v = CacheStatusValues::new("1edge");
        assert_eq!(
            v.value(CacheResult::Hit, None, false, false, 200, None)
                .unwrap(),
            "\"1edge\"; hit"
        );
    }

    #[test]
    fn index_matches_position_in_all() {
        for (i, r) in CacheResult::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
