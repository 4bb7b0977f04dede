use super::*;

fn regions(sizes: &[usize]) -> Vec<Region> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let ports: Vec<(u16, u32)> = (0..n).map(|o| (1000 + o as u16, 1)).collect();
            Region::for_tests(&format!("r{i}"), 0.0, 0.0, &ports)
        })
        .collect()
}

fn policy(after: u32, pct: u32) -> EjectionPolicy {
    EjectionPolicy {
        after_failures: after,
        base: Duration::from_secs(10),
        max: Duration::from_secs(35),
        max_ejected_percent: pct,
    }
}

#[test]
fn unverified_origins_are_usable_and_down_ones_are_not() {
    let v = HealthView::new(&regions(&[2]), policy(3, 50));
    assert!(v.is_usable(0, 0));
    assert_eq!(
        v.set_check_state(0, 0, CheckState::Down),
        CheckState::Unverified
    );
    assert!(!v.is_usable(0, 0));
    assert!(v.region_usable(0), "the other origin still serves");
    v.set_check_state(0, 1, CheckState::Down);
    assert!(!v.region_usable(0));
    assert!(!v.is_usable(5, 0), "unknown region");
}

#[test]
fn draining_an_origin_or_a_region_takes_it_out() {
    let v = HealthView::new(&regions(&[2]), policy(3, 50));
    assert!(v.set_origin_drained(0, 1, true));
    assert!(!v.is_usable(0, 1) && v.is_usable(0, 0));
    assert!(v.set_region_drained(0, true));
    assert!(!v.region_usable(0));
    v.set_region_drained(0, false);
    v.set_origin_drained(0, 1, false);
    assert!(v.is_usable(0, 1));
    assert!(!v.set_region_drained(9, true));
}

#[test]
fn consecutive_failures_eject_with_a_doubling_capped_backoff() {
    let v = HealthView::new(&regions(&[4]), policy(3, 50));
    assert_eq!(v.record_failure(0, 0), None);
    assert_eq!(v.record_failure(0, 0), None);
    assert_eq!(v.record_failure(0, 0), Some(Duration::from_secs(10)));
    assert!(!v.is_usable(0, 0));
    // A success in between resets the streak.
    v.record_failure(0, 1);
    v.record_success(0, 1);
    v.record_failure(0, 1);
    v.record_failure(0, 1);
    assert!(v.is_usable(0, 1));
    // Second ejection of the same origin doubles, the third hits the cap.
    let o = v.origin(0, 0).unwrap();
    o.ejected_until_ms.store(0, Ordering::Release);
    for _ in 0..2 {
        v.record_failure(0, 0);
    }
    assert_eq!(v.record_failure(0, 0), Some(Duration::from_secs(20)));
    o.ejected_until_ms.store(0, Ordering::Release);
    for _ in 0..2 {
        v.record_failure(0, 0);
    }
    assert_eq!(v.record_failure(0, 0), Some(Duration::from_secs(35)));
}

#[test]
fn no_more_than_the_allowed_share_of_a_region_is_ejected_but_always_one() {
    let v = HealthView::new(&regions(&[4, 1]), policy(1, 50));
    assert!(v.record_failure(0, 0).is_some());
    assert!(v.record_failure(0, 1).is_some());
    assert_eq!(v.record_failure(0, 2), None, "50 % of 4 is 2");
    assert!(v.is_usable(0, 2));
    assert!(
        v.record_failure(1, 0).is_some(),
        "a lone origin can be ejected"
    );
}

#[test]
fn zero_after_failures_disables_ejection() {
    let v = HealthView::new(&regions(&[1]), policy(0, 100));
    for _ in 0..10 {
        assert_eq!(v.record_failure(0, 0), None);
    }
    assert!(v.is_usable(0, 0));
}
