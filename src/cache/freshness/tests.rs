//! One test per rule, named after its RFC section.

use super::*;
use http::HeaderValue;
use proptest::prelude::*;

const NOW_SECS: u64 = 1_800_000_000;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn date(offset_secs: i64) -> String {
    let t = if offset_secs >= 0 {
        now() + Duration::from_secs(offset_secs as u64)
    } else {
        now() - Duration::from_secs(offset_secs.unsigned_abs())
    };
    httpdate::fmt_http_date(t)
}

fn headers(list: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in list {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn eval(status: u16, resp: &[(&str, &str)]) -> Storable {
    evaluate(
        &HeaderMap::new(),
        status,
        &headers(resp),
        now(),
        FreshnessDefaults::default(),
    )
}

fn fresh_for(s: Storable) -> Duration {
    match s {
        Storable::Yes(f) => f
            .fresh_until
            .duration_since(now())
            .unwrap_or(Duration::ZERO),
        Storable::No(r) => panic!("not stored: {r}"),
    }
}

fn is_stale_on_arrival(s: Storable) -> bool {
    matches!(s, Storable::Yes(f) if f.fresh_until < now())
}

#[test]
fn rfc9111_4_2_1_s_maxage_wins_over_max_age_which_wins_over_expires() {
    let exp = date(1000);
    let d = date(0);
    let all = [
        ("date", d.as_str()),
        ("cache-control", "max-age=100, s-maxage=50"),
        ("expires", exp.as_str()),
    ];
    assert_eq!(fresh_for(eval(200, &all)), Duration::from_secs(50));
    let no_s = [
        ("date", d.as_str()),
        ("cache-control", "max-age=100"),
        ("expires", exp.as_str()),
    ];
    assert_eq!(fresh_for(eval(200, &no_s)), Duration::from_secs(100));
    let only_expires = [("date", d.as_str()), ("expires", exp.as_str())];
    assert_eq!(
        fresh_for(eval(200, &only_expires)),
        Duration::from_secs(1000)
    );
}

#[test]
fn rfc9111_4_2_1_expires_counts_from_the_date_header_not_the_local_clock() {
    // The origin's clock is 100 s behind: Expires − Date is still 300 s of lifetime, and the
    // apparent age is the clock difference.
    let d = date(-100);
    let exp = date(200);
    let s = eval(200, &[("date", d.as_str()), ("expires", exp.as_str())]);
    assert_eq!(fresh_for(s), Duration::from_secs(200));
}

#[test]
fn rfc9111_5_3_an_invalid_or_repeated_expires_means_stale() {
    assert!(is_stale_on_arrival(eval(200, &[("expires", "0")])));
    assert!(is_stale_on_arrival(eval(
        200,
        &[("expires", "next tuesday")]
    )));
    let e = date(100);
    assert!(is_stale_on_arrival(eval(
        200,
        &[("expires", e.as_str()), ("expires", e.as_str())]
    )));
}

#[test]
fn rfc9111_4_2_1_an_invalid_max_age_means_stale() {
    for cc in [
        "max-age=-1",
        "max-age=1.5",
        "max-age=abc",
        "s-maxage=-5, max-age=100",
    ] {
        assert!(
            is_stale_on_arrival(eval(200, &[("cache-control", cc)])),
            "{cc}"
        );
    }
}

#[test]
fn rfc9111_5_2_quoted_arguments_are_accepted() {
    assert_eq!(
        fresh_for(eval(200, &[("cache-control", "max-age=\"60\"")])),
        Duration::from_secs(60)
    );
}

#[test]
fn rfc9111_1_2_2_huge_delta_seconds_are_clamped() {
    let s = eval(200, &[("cache-control", "max-age=99999999999999999999")]);
    // pingora's parser clamps to 2^31 - 1 where the RFC says 2^31: one second apart.
    let got = fresh_for(s).as_secs();
    assert!((DELTA_MAX - 1..=DELTA_MAX).contains(&got), "{got}");
}

#[test]
fn rfc9111_4_2_3_age_from_the_origin_reduces_freshness() {
    let d = date(0);
    let s = eval(
        200,
        &[
            ("date", d.as_str()),
            ("cache-control", "max-age=100"),
            ("age", "30"),
        ],
    );
    assert_eq!(fresh_for(s), Duration::from_secs(70));
    match s {
        Storable::Yes(f) => assert_eq!(f.initial_age, Duration::from_secs(30)),
        Storable::No(r) => panic!("{r}"),
    }
    let old = eval(200, &[("cache-control", "max-age=100"), ("age", "500")]);
    assert!(is_stale_on_arrival(old));
}

#[test]
fn rfc9111_5_1_a_list_valued_age_uses_its_first_member() {
    let d = date(0);
    let listed = eval(
        200,
        &[
            ("date", d.as_str()),
            ("cache-control", "max-age=10000"),
            ("age", "7200, 0"),
        ],
    );
    assert_eq!(fresh_for(listed), Duration::from_secs(2800));
    let two_lines = eval(
        200,
        &[
            ("date", d.as_str()),
            ("cache-control", "max-age=10000"),
            ("age", "7200"),
            ("age", "0"),
        ],
    );
    assert_eq!(fresh_for(two_lines), Duration::from_secs(2800));
}

#[test]
fn rfc9111_5_1_an_invalid_age_makes_the_response_stale() {
    let d = date(0);
    for age in ["-3", "1.5", "abc", "", "+5", "0x10", "7200a"] {
        let s = eval(
            200,
            &[
                ("date", d.as_str()),
                ("cache-control", "max-age=10000"),
                ("age", age),
            ],
        );
        assert!(is_stale_on_arrival(s), "Age: {age:?} -> {s:?}");
    }
    let huge = eval(
        200,
        &[
            ("cache-control", "max-age=10000"),
            ("age", "99999999999999999999999"),
        ],
    );
    assert!(is_stale_on_arrival(huge));
}

#[test]
fn rfc9111_4_2_2_heuristic_freshness_is_a_tenth_of_last_modified_age_capped() {
    let d = date(0);
    let lm = date(-10_000);
    let s = eval(200, &[("date", d.as_str()), ("last-modified", lm.as_str())]);
    assert_eq!(fresh_for(s), Duration::from_secs(1000));
    let ancient = date(-100_000_000);
    let capped = eval(
        404,
        &[("date", d.as_str()), ("last-modified", ancient.as_str())],
    );
    assert_eq!(fresh_for(capped), HEURISTIC_CAP);
}

#[test]
fn rfc9111_4_2_2_heuristics_apply_only_to_heuristically_cacheable_statuses() {
    let d = date(0);
    let lm = date(-10_000);
    let resp = [("date", d.as_str()), ("last-modified", lm.as_str())];
    for status in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
        assert!(matches!(eval(status, &resp), Storable::Yes(_)), "{status}");
    }
    for status in [201, 302, 303, 307, 400, 403, 500, 502, 503] {
        assert_eq!(
            eval(status, &resp),
            Storable::No("no-freshness"),
            "{status}"
        );
    }
    // `public` makes any status heuristically cacheable (§3).
    let public = [
        ("date", d.as_str()),
        ("last-modified", lm.as_str()),
        ("cache-control", "public"),
    ];
    assert!(matches!(eval(302, &public), Storable::Yes(_)));
    // Explicit freshness makes any status storable.
    assert!(matches!(
        eval(503, &[("cache-control", "max-age=5")]),
        Storable::Yes(_)
    ));
}

#[test]
fn rfc9111_4_2_2_no_heuristic_without_last_modified() {
    assert_eq!(eval(200, &[]), Storable::No("no-freshness"));
}

#[test]
fn rfc9111_5_2_2_no_store_private_and_no_cache() {
    assert_eq!(
        eval(200, &[("cache-control", "no-store, max-age=60")]),
        Storable::No("no-store")
    );
    assert_eq!(
        eval(200, &[("cache-control", "private, max-age=60")]),
        Storable::No("private")
    );
    assert!(is_stale_on_arrival(eval(
        200,
        &[("cache-control", "no-cache, max-age=60")]
    )));
}

#[test]
fn rfc9111_5_2_unknown_directives_are_ignored() {
    let s = eval(200, &[("cache-control", "foo=bar, max-age=60, baz")]);
    assert_eq!(fresh_for(s), Duration::from_secs(60));
}

#[test]
fn rfc9111_5_2_2_immutable_and_public_leave_freshness_alone() {
    let s = eval(200, &[("cache-control", "public, max-age=60, immutable")]);
    assert_eq!(fresh_for(s), Duration::from_secs(60));
}

#[test]
fn rfc9213_cdn_cache_control_takes_precedence_over_cache_control() {
    let s = eval(
        200,
        &[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=600"),
        ],
    );
    assert_eq!(fresh_for(s), Duration::from_secs(600));
    let s = eval(
        200,
        &[
            ("cache-control", "max-age=600"),
            ("cdn-cache-control", "no-store"),
        ],
    );
    assert_eq!(s, Storable::No("no-store"));
    let s = eval(
        200,
        &[
            ("cache-control", "max-age=5"),
            ("surrogate-control", "max-age=300"),
        ],
    );
    assert_eq!(fresh_for(s), Duration::from_secs(300));
}

#[test]
fn rfc9213_2_1_an_invalid_cdn_cache_control_is_ignored_whole() {
    for invalid in [
        "max-age=10000, &&&",
        "max-age=\"10000\"",
        "max-age=1.5",
        "max-age=-1",
    ] {
        let s = eval(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("cdn-cache-control", invalid),
            ],
        );
        assert_eq!(fresh_for(s), Duration::from_secs(60), "{invalid}");
    }
    let no_store = eval(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("cdn-cache-control", "no-store, &&&"),
        ],
    );
    assert_eq!(
        fresh_for(no_store),
        Duration::from_secs(60),
        "no-store inside an invalid field is not read"
    );
    let valid = eval(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("cdn-cache-control", "max-age=600, stale-if-error=30"),
        ],
    );
    assert_eq!(fresh_for(valid), Duration::from_secs(600));
}

#[test]
fn rfc9111_3_5_authorized_requests_are_stored_only_when_allowed() {
    let req = headers(&[("authorization", "Bearer x")]);
    let ev = |cc: &str| {
        evaluate(
            &req,
            200,
            &headers(&[("cache-control", cc)]),
            now(),
            FreshnessDefaults::default(),
        )
    };
    assert_eq!(ev("max-age=60"), Storable::No("authorization"));
    assert!(matches!(ev("public, max-age=60"), Storable::Yes(_)));
    assert!(matches!(ev("s-maxage=60"), Storable::Yes(_)));
    assert!(matches!(
        ev("must-revalidate, max-age=60"),
        Storable::Yes(_)
    ));
}

#[test]
fn rfc9111_5_2_1_5_request_no_store_is_not_stored() {
    let req = headers(&[("cache-control", "no-store")]);
    let s = evaluate(
        &req,
        200,
        &headers(&[("cache-control", "max-age=60")]),
        now(),
        FreshnessDefaults::default(),
    );
    assert_eq!(s, Storable::No("request-no-store"));
}

#[test]
fn rfc9111_4_1_vary_star_and_partial_content_are_not_stored() {
    assert_eq!(
        eval(
            200,
            &[("cache-control", "max-age=60"), ("vary", "accept, *")]
        ),
        Storable::No("vary-star")
    );
    assert_eq!(
        eval(206, &[("cache-control", "max-age=60")]),
        Storable::No("status")
    );
}

#[test]
fn rfc5861_stale_windows_come_from_the_response_or_the_route_default() {
    let defaults = FreshnessDefaults {
        stale_if_error: Duration::from_secs(600),
    };
    let ev = |cc: &str| match evaluate(
        &HeaderMap::new(),
        200,
        &headers(&[("cache-control", cc)]),
        now(),
        defaults,
    ) {
        Storable::Yes(f) => (
            f.stale_while_revalidate.as_secs(),
            f.stale_if_error.as_secs(),
        ),
        Storable::No(r) => panic!("{r}"),
    };
    assert_eq!(
        ev("max-age=1, stale-while-revalidate=30, stale-if-error=60"),
        (30, 60)
    );
    assert_eq!(ev("max-age=1"), (0, 600));
    assert_eq!(ev("max-age=1, must-revalidate, stale-if-error=60"), (0, 0));
    assert_eq!(
        ev("max-age=1, proxy-revalidate, stale-while-revalidate=30"),
        (0, 0)
    );
    assert_eq!(ev("s-maxage=1, stale-while-revalidate=30"), (0, 0));
}

proptest! {
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
