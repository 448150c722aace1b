//! Metering periods (billing period or UTC calendar month) and the usage limit decision.

use billing_domain::{
    Limit, MeteringPeriod, SubscriptionState, SubscriptionStatus, UsageDecision, decide,
    metering_period,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

fn month(y: i32, m: u32, next_y: i32, next_m: u32) -> MeteringPeriod {
    MeteringPeriod {
        start: at(y, m, 1, 0, 0, 0),
        end: at(next_y, next_m, 1, 0, 0, 0),
    }
}

fn subscription(start: DateTime<Utc>, end: DateTime<Utc>) -> SubscriptionState {
    SubscriptionState {
        current_period_start: Some(start),
        current_period_end: Some(end),
        ..SubscriptionState::new(SubscriptionStatus::Active, Some("price_pro_monthly".into()))
    }
}

#[test]
fn without_subscription_the_period_is_the_utc_calendar_month() {
    for (now, expected) in [
        (at(2024, 3, 15, 12, 0, 0), month(2024, 3, 2024, 4)),
        (at(2024, 3, 1, 0, 0, 0), month(2024, 3, 2024, 4)),
        (at(2024, 3, 31, 23, 59, 59), month(2024, 3, 2024, 4)),
        (at(2024, 4, 1, 0, 0, 0), month(2024, 4, 2024, 5)),
        // December rolls over into January of the next year.
        (at(2024, 12, 31, 23, 59, 59), month(2024, 12, 2025, 1)),
        (at(2024, 12, 1, 0, 0, 0), month(2024, 12, 2025, 1)),
        (at(2025, 1, 1, 0, 0, 0), month(2025, 1, 2025, 2)),
        // February in a leap year has 29 days, in other years 28.
        (at(2024, 2, 29, 23, 59, 59), month(2024, 2, 2024, 3)),
        (at(2024, 2, 29, 0, 0, 0), month(2024, 2, 2024, 3)),
        (at(2024, 3, 1, 0, 0, 0), month(2024, 3, 2024, 4)),
        (at(2023, 2, 28, 23, 59, 59), month(2023, 2, 2023, 3)),
        (at(2000, 2, 29, 12, 0, 0), month(2000, 2, 2000, 3)),
    ] {
        let period = metering_period(None, now);
        assert_eq!(period, expected, "{now}");
        assert!(period.contains(now));
    }
    assert_eq!(
        month(2024, 2, 2024, 3).end - month(2024, 2, 2024, 3).start,
        TimeDelta::days(29)
    );
    assert_eq!(
        month(2023, 2, 2023, 3).end - month(2023, 2, 2023, 3).start,
        TimeDelta::days(28)
    );
}

#[test]
fn the_calendar_month_is_in_utc_whatever_the_offset_of_now() {
    let now = chrono::FixedOffset::east_opt(5 * 3600)
        .unwrap()
        .with_ymd_and_hms(2024, 2, 1, 2, 0, 0)
        .unwrap()
        .with_timezone(&Utc); // 2024-01-31T21:00Z
    assert_eq!(metering_period(None, now), month(2024, 1, 2024, 2));
}

#[test]
fn the_billing_period_is_used_when_it_contains_now() {
    let start = at(2024, 1, 15, 10, 30, 0);
    let end = at(2024, 2, 15, 10, 30, 0);
    let sub = subscription(start, end);
    let billing = MeteringPeriod { start, end };

    assert_eq!(metering_period(Some(&sub), start), billing);
    assert_eq!(
        metering_period(Some(&sub), at(2024, 2, 1, 0, 0, 0)),
        billing
    );
    assert_eq!(
        metering_period(Some(&sub), end - TimeDelta::seconds(1)),
        billing
    );
    // The end is exclusive: at it (a late renewal event), fall back to the calendar month.
    assert_eq!(metering_period(Some(&sub), end), month(2024, 2, 2024, 3));
    assert_eq!(
        metering_period(Some(&sub), start - TimeDelta::seconds(1)),
        month(2024, 1, 2024, 2)
    );
}

#[test]
fn a_yearly_period_spanning_new_year_is_kept() {
    let start = at(2024, 6, 1, 0, 0, 0);
    let end = at(2025, 6, 1, 0, 0, 0);
    let sub = subscription(start, end);
    assert_eq!(
        metering_period(Some(&sub), at(2025, 1, 1, 0, 0, 0)),
        MeteringPeriod { start, end }
    );
}

#[test]
fn incomplete_period_information_falls_back_to_the_calendar_month() {
    let now = at(2024, 5, 20, 0, 0, 0);
    let mut sub = subscription(at(2024, 5, 1, 0, 0, 0), at(2024, 6, 1, 0, 0, 0));
    sub.current_period_end = None;
    assert_eq!(metering_period(Some(&sub), now), month(2024, 5, 2024, 6));
    sub.current_period_end = Some(at(2024, 6, 1, 0, 0, 0));
    sub.current_period_start = None;
    assert_eq!(metering_period(Some(&sub), now), month(2024, 5, 2024, 6));
    // An inverted period contains nothing.
    let sub = subscription(at(2024, 6, 1, 0, 0, 0), at(2024, 5, 1, 0, 0, 0));
    assert_eq!(metering_period(Some(&sub), now), month(2024, 5, 2024, 6));
}

#[test]
fn calendar_month_saturates_at_the_ends_of_time() {
    let period = metering_period(None, DateTime::<Utc>::MAX_UTC);
    assert!(period.start <= DateTime::<Utc>::MAX_UTC);
    assert_eq!(period.end, DateTime::<Utc>::MAX_UTC);
    let period = metering_period(None, DateTime::<Utc>::MIN_UTC);
    assert_eq!(period.start, DateTime::<Utc>::MIN_UTC);
    assert!(period.contains(DateTime::<Utc>::MIN_UTC));
}

#[test]
fn decide_examples() {
    let ten = Limit::Limited(10);
    assert_eq!(
        decide(ten, 0, 1),
        UsageDecision::Allowed {
            used: 1,
            remaining: Some(9)
        }
    );
    assert_eq!(
        decide(ten, 9, 1),
        UsageDecision::Allowed {
            used: 10,
            remaining: Some(0)
        }
    );
    assert_eq!(
        decide(ten, 10, 1),
        UsageDecision::Denied {
            used: 10,
            limit: 10
        }
    );
    // A request that would exceed is denied whole.
    assert_eq!(
        decide(ten, 8, 3),
        UsageDecision::Denied { used: 8, limit: 10 }
    );
    // Quantity 0 is a query.
    assert_eq!(
        decide(ten, 4, 0),
        UsageDecision::Allowed {
            used: 4,
            remaining: Some(6)
        }
    );
    assert_eq!(
        decide(ten, 10, 0),
        UsageDecision::Allowed {
            used: 10,
            remaining: Some(0)
        }
    );
    // Already over the limit (e.g. after a downgrade): even a query is denied.
    assert_eq!(
        decide(ten, 50, 0),
        UsageDecision::Denied {
            used: 50,
            limit: 10
        }
    );
    // A zero limit denies everything but the query.
    assert_eq!(
        decide(Limit::Limited(0), 0, 0),
        UsageDecision::Allowed {
            used: 0,
            remaining: Some(0)
        }
    );
    assert_eq!(
        decide(Limit::Limited(0), 0, 1),
        UsageDecision::Denied { used: 0, limit: 0 }
    );
    assert_eq!(
        decide(Limit::Unlimited, 1_000_000, 5),
        UsageDecision::Allowed {
            used: 1_000_005,
            remaining: None
        }
    );
    assert!(decide(ten, 0, 1).is_allowed());
    assert!(!decide(ten, 10, 1).is_allowed());
}

#[test]
fn decide_never_overflows() {
    assert_eq!(
        decide(Limit::Limited(u64::MAX), u64::MAX, 1),
        UsageDecision::Denied {
            used: u64::MAX,
            limit: u64::MAX
        }
    );
    assert_eq!(
        decide(Limit::Limited(u64::MAX), u64::MAX, 0),
        UsageDecision::Allowed {
            used: u64::MAX,
            remaining: Some(0)
        }
    );
    assert_eq!(
        decide(Limit::Unlimited, u64::MAX, u64::MAX),
        UsageDecision::Allowed {
            used: u64::MAX,
            remaining: None
        }
    );
    assert_eq!(
        decide(Limit::Limited(5), 1, u64::MAX),
        UsageDecision::Denied { used: 1, limit: 5 }
    );
}

fn any_limit() -> impl Strategy<Value = Limit> {
    prop_oneof![
        Just(Limit::Unlimited),
        any::<u64>().prop_map(Limit::Limited),
        (0u64..1000).prop_map(Limit::Limited),
    ]
}

fn any_count() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..2000, any::<u64>(), (u64::MAX - 10)..=u64::MAX]
}

proptest! {
    #[test]
    fn allowed_never_exceeds_the_limit_and_remaining_never_underflows(
        limit in any_limit(),
        used_before in any_count(),
        quantity in any_count(),
    ) {
        match decide(limit, used_before, quantity) {
            UsageDecision::Allowed { used, remaining } => {
                prop_assert!(used >= used_before);
                prop_assert!(limit.allows(used));
                match limit {
                    Limit::Limited(max) => {
                        prop_assert_eq!(u128::from(used), u128::from(used_before) + u128::from(quantity));
                        prop_assert!(used <= max);
                        prop_assert_eq!(remaining, Some(max - used));
                        prop_assert!(remaining.is_some_and(|r| r <= max));
                    }
                    Limit::Unlimited => {
                        prop_assert_eq!(remaining, None);
                        prop_assert_eq!(used, used_before.saturating_add(quantity));
                    }
                }
            }
            UsageDecision::Denied { used, limit: max } => {
                prop_assert_eq!(used, used_before);
                prop_assert_eq!(limit, Limit::Limited(max));
                prop_assert!(u128::from(used_before) + u128::from(quantity) > u128::from(max));
            }
        }
    }

    #[test]
    fn the_calendar_month_contains_now_and_starts_on_the_first(secs in -62_000_000_000i64..250_000_000_000i64) {
        let now = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
        let period = metering_period(None, now);
        prop_assert!(period.contains(now));
        prop_assert_eq!(period.start.format("%d %H:%M:%S").to_string(), "01 00:00:00");
        prop_assert_eq!(period.end.format("%d %H:%M:%S").to_string(), "01 00:00:00");
        let days = (period.end - period.start).num_days();
        prop_assert!((28..=31).contains(&days), "{} days", days);
    }
}
