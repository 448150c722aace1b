//! The access rule, table-driven over every status, cancellation flag and instant of interest.

use billing_domain::{
    AccessReason, Catalog, Limit, SubscriptionState, SubscriptionStatus, entitlement,
    grace_deadline,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use AccessReason as R;
use SubscriptionStatus as S;
use When as W;

use crate::PLANS;

fn catalog() -> Catalog {
    Catalog::from_toml_str(PLANS).unwrap()
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

/// Start of the current period.
fn start() -> DateTime<Utc> {
    at(2024, 1, 1, 0, 0, 0)
}
/// The recorded grace deadline: three days after the failed renewal.
fn grace() -> DateTime<Utc> {
    at(2024, 1, 4, 0, 0, 0)
}
/// End of the current period.
fn end() -> DateTime<Utc> {
    at(2024, 2, 1, 0, 0, 0)
}

/// The instants every status is checked at, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    BeforeGrace,
    AtGrace,
    AfterGrace,
    BeforeEnd,
    AtEnd,
    AfterEnd,
}

const WHENS: [When; 6] = [
    When::BeforeGrace,
    When::AtGrace,
    When::AfterGrace,
    When::BeforeEnd,
    When::AtEnd,
    When::AfterEnd,
];

impl When {
    fn instant(self) -> DateTime<Utc> {
        match self {
            When::BeforeGrace => grace() - TimeDelta::seconds(1),
            When::AtGrace => grace(),
            When::AfterGrace => at(2024, 1, 10, 0, 0, 0),
            When::BeforeEnd => end() - TimeDelta::seconds(1),
            When::AtEnd => end(),
            When::AfterEnd => at(2024, 2, 5, 0, 0, 0),
        }
    }
}

fn state(status: SubscriptionStatus, cancel_at_period_end: bool) -> SubscriptionState {
    SubscriptionState {
        status,
        price_id: Some("price_pro_monthly".to_owned()),
        current_period_start: Some(start()),
        current_period_end: Some(end()),
        cancel_at_period_end,
        grace_period_end: Some(grace()),
        trial_end: None,
    }
}

#[test]
fn granting_statuses_over_every_instant_and_cancel_flag() {
    let catalog = catalog();
    let canceling = R::CancelingAtPeriodEnd { until: end() };
    let period_over = R::PaidPeriodOver { ended: end() };
    let in_grace = R::InGracePeriod { until: grace() };
    let grace_over = R::GracePeriodOver { ended: grace() };

    #[rustfmt::skip]
    let table: Vec<(S, bool, When, &str, AccessReason)> = vec![
        // active: paid throughout unless it cancels at period end.
        (S::Active, false, W::BeforeGrace, "PRO", R::Active),
        (S::Active, false, W::AtGrace,     "PRO", R::Active),
        (S::Active, false, W::AfterGrace,  "PRO", R::Active),
        (S::Active, false, W::BeforeEnd,   "PRO", R::Active),
        (S::Active, false, W::AtEnd,       "PRO", R::Active),
        (S::Active, false, W::AfterEnd,    "PRO", R::Active),
        (S::Active, true,  W::BeforeGrace, "PRO", canceling.clone()),
        (S::Active, true,  W::AtGrace,     "PRO", canceling.clone()),
        (S::Active, true,  W::AfterGrace,  "PRO", canceling.clone()),
        (S::Active, true,  W::BeforeEnd,   "PRO", canceling.clone()),
        (S::Active, true,  W::AtEnd,       "FREE", period_over.clone()),
        (S::Active, true,  W::AfterEnd,    "FREE", period_over.clone()),
        // trialing: the same, with its own reason.
        (S::Trialing, false, W::BeforeGrace, "PRO", R::Trialing),
        (S::Trialing, false, W::AtGrace,     "PRO", R::Trialing),
        (S::Trialing, false, W::AfterGrace,  "PRO", R::Trialing),
        (S::Trialing, false, W::BeforeEnd,   "PRO", R::Trialing),
        (S::Trialing, false, W::AtEnd,       "PRO", R::Trialing),
        (S::Trialing, false, W::AfterEnd,    "PRO", R::Trialing),
        (S::Trialing, true,  W::BeforeGrace, "PRO", canceling.clone()),
        (S::Trialing, true,  W::AtGrace,     "PRO", canceling.clone()),
        (S::Trialing, true,  W::AfterGrace,  "PRO", canceling.clone()),
        (S::Trialing, true,  W::BeforeEnd,   "PRO", canceling.clone()),
        (S::Trialing, true,  W::AtEnd,       "FREE", period_over.clone()),
        (S::Trialing, true,  W::AfterEnd,    "FREE", period_over.clone()),
        // past_due: paid until the grace deadline (exclusive), never past a scheduled end.
        (S::PastDue, false, W::BeforeGrace, "PRO", in_grace.clone()),
        (S::PastDue, false, W::AtGrace,     "FREE", grace_over.clone()),
        (S::PastDue, false, W::AfterGrace,  "FREE", grace_over.clone()),
        (S::PastDue, false, W::BeforeEnd,   "FREE", grace_over.clone()),
        (S::PastDue, false, W::AtEnd,       "FREE", grace_over.clone()),
        (S::PastDue, false, W::AfterEnd,    "FREE", grace_over.clone()),
        (S::PastDue, true,  W::BeforeGrace, "PRO", in_grace.clone()),
        (S::PastDue, true,  W::AtGrace,     "FREE", grace_over.clone()),
        (S::PastDue, true,  W::AfterGrace,  "FREE", grace_over.clone()),
        (S::PastDue, true,  W::BeforeEnd,   "FREE", grace_over.clone()),
        (S::PastDue, true,  W::AtEnd,       "FREE", period_over.clone()),
        (S::PastDue, true,  W::AfterEnd,    "FREE", period_over.clone()),
    ];
    assert_eq!(table.len(), 3 * 2 * WHENS.len());

    for (status, cancel, when, tier, reason) in table {
        let sub = state(status.clone(), cancel);
        let got = entitlement(Some(&sub), &catalog, when.instant());
        assert_eq!(
            (got.tier.id.as_str(), &got.reason),
            (tier, &reason),
            "{status} cancel_at_period_end={cancel} {when:?}"
        );
        assert_eq!(got.is_paid(), tier != "FREE");
        assert_eq!(got.reason.grants_paid_tier(), got.is_paid());
    }
}

#[test]
fn non_granting_statuses_are_free_at_every_instant() {
    let catalog = catalog();
    let mut statuses: Vec<S> = S::KNOWN
        .into_iter()
        .filter(|s| !matches!(s, S::Active | S::Trialing | S::PastDue))
        .collect();
    assert_eq!(statuses.len(), 5);
    // Unknown statuses, including ones that look like granting statuses, never grant access.
    statuses.extend([
        S::parse("some_future_status"),
        S::parse(""),
        S::parse("ACTIVE"),
        S::parse("Active"),
        S::parse("active "),
        S::Unknown("active".to_owned()),
        S::Unknown("trialing".to_owned()),
        S::Unknown("past_due".to_owned()),
    ]);

    for status in &statuses {
        for cancel in [false, true] {
            for when in WHENS {
                for price in [
                    "price_pro_monthly",
                    "price_enterprise_monthly",
                    "price_nope",
                ] {
                    let mut sub = state(status.clone(), cancel);
                    sub.price_id = Some(price.to_owned());
                    let got = entitlement(Some(&sub), &catalog, when.instant());
                    assert_eq!(got.tier.id.as_str(), "FREE", "{status:?} {cancel} {when:?}");
                    assert_eq!(
                        got.reason,
                        R::NoPaidAccess {
                            status: status.clone()
                        }
                    );
                    assert!(!got.is_paid());
                }
            }
        }
    }
}

#[test]
fn no_subscription_is_the_free_tier() {
    let catalog = catalog();
    let got = entitlement(None, &catalog, start());
    assert_eq!(got.tier.id.as_str(), "FREE");
    assert_eq!(got.reason, R::NoSubscription);
    assert!(!got.is_paid());
    assert!(!got.feature("custom_domain"));
    assert_eq!(got.limit("api_calls"), Some(Limit::Limited(100)));
}

#[test]
fn each_price_maps_to_its_tier() {
    let catalog = catalog();
    for (price, tier) in [
        ("price_pro_monthly", "PRO"),
        ("price_pro_yearly", "PRO"),
        ("price_enterprise_monthly", "ENTERPRISE"),
    ] {
        let mut sub = state(S::Active, false);
        sub.price_id = Some(price.to_owned());
        let got = entitlement(Some(&sub), &catalog, start());
        assert_eq!(got.tier.id.as_str(), tier);
        assert_eq!(got.reason, R::Active);
        assert!(got.is_paid());
    }
}

#[test]
fn unknown_or_missing_price_is_the_free_tier() {
    let catalog = catalog();
    for status in [S::Active, S::Trialing, S::PastDue] {
        for price in [None, Some("price_gone"), Some("")] {
            let mut sub = state(status.clone(), false);
            sub.price_id = price.map(str::to_owned);
            let got = entitlement(Some(&sub), &catalog, WHENS[0].instant());
            assert_eq!(got.tier.id.as_str(), "FREE");
            assert_eq!(
                got.reason,
                R::UnknownPrice {
                    price_id: price.map(str::to_owned)
                }
            );
        }
    }
}

#[test]
fn past_due_without_recorded_deadline_uses_period_start_plus_tier_grace() {
    let src = PLANS.replace(
        "price_ids = [\"price_enterprise_monthly\"]",
        "price_ids = [\"price_enterprise_monthly\"]\ngrace_period_days = 7",
    );
    let catalog = Catalog::from_toml_str(&src).unwrap();
    let enterprise_deadline = start() + TimeDelta::days(7);
    let pro_deadline = start() + TimeDelta::days(3);

    for (price, deadline) in [
        ("price_enterprise_monthly", enterprise_deadline),
        ("price_pro_yearly", pro_deadline),
    ] {
        let mut sub = state(S::PastDue, false);
        sub.price_id = Some(price.to_owned());
        sub.grace_period_end = None;
        let tier = catalog.tier_for_price(price).unwrap();
        assert_eq!(grace_deadline(tier, start()), deadline);

        let before = entitlement(Some(&sub), &catalog, deadline - TimeDelta::seconds(1));
        assert_eq!(before.tier.id, tier.id);
        assert_eq!(before.reason, R::InGracePeriod { until: deadline });

        let at_deadline = entitlement(Some(&sub), &catalog, deadline);
        assert_eq!(at_deadline.tier.id.as_str(), "FREE");
        assert_eq!(at_deadline.reason, R::GracePeriodOver { ended: deadline });
    }
}

#[test]
fn recorded_grace_deadline_wins_over_the_fallback() {
    let catalog = catalog();
    let recorded = at(2024, 1, 20, 0, 0, 0); // later than start + 3 days
    let mut sub = state(S::PastDue, false);
    sub.grace_period_end = Some(recorded);
    let got = entitlement(Some(&sub), &catalog, at(2024, 1, 10, 0, 0, 0));
    assert_eq!(got.tier.id.as_str(), "PRO");
    assert_eq!(got.reason, R::InGracePeriod { until: recorded });
}

#[test]
fn past_due_without_any_deadline_is_the_free_tier() {
    let catalog = catalog();
    let mut sub = state(S::PastDue, false);
    sub.grace_period_end = None;
    sub.current_period_start = None;
    let got = entitlement(Some(&sub), &catalog, start());
    assert_eq!(got.tier.id.as_str(), "FREE");
    assert_eq!(got.reason, R::NoPaidAccess { status: S::PastDue });
}

#[test]
fn past_due_grace_may_outlast_the_period_unless_it_cancels() {
    let catalog = catalog();
    let late_grace = at(2024, 2, 3, 0, 0, 0); // after the period end
    let mut sub = state(S::PastDue, false);
    sub.grace_period_end = Some(late_grace);

    let got = entitlement(Some(&sub), &catalog, at(2024, 2, 2, 0, 0, 0));
    assert_eq!(got.reason, R::InGracePeriod { until: late_grace });
    assert!(got.is_paid());

    sub.cancel_at_period_end = true;
    let got = entitlement(Some(&sub), &catalog, end() - TimeDelta::seconds(1));
    assert_eq!(got.reason, R::InGracePeriod { until: end() });
    let got = entitlement(Some(&sub), &catalog, at(2024, 2, 2, 0, 0, 0));
    assert_eq!(got.tier.id.as_str(), "FREE");
    assert_eq!(got.reason, R::PaidPeriodOver { ended: end() });
}

#[test]
fn cancel_at_period_end_without_known_end_follows_the_status() {
    let catalog = catalog();
    for (status, reason) in [(S::Active, R::Active), (S::Trialing, R::Trialing)] {
        let mut sub = state(status, true);
        sub.current_period_end = None;
        let got = entitlement(Some(&sub), &catalog, WHENS[5].instant());
        assert_eq!(got.tier.id.as_str(), "PRO");
        assert_eq!(got.reason, reason);
    }
}

#[test]
fn trial_end_in_the_past_does_not_end_a_trialing_subscription() {
    let catalog = catalog();
    let mut sub = state(S::Trialing, false);
    sub.trial_end = Some(start());
    let got = entitlement(Some(&sub), &catalog, at(2024, 1, 15, 0, 0, 0));
    assert_eq!(got.reason, R::Trialing);
    assert!(got.is_paid());
}

#[test]
fn entitlement_accessors() {
    let catalog = catalog();
    let mut sub = state(S::Active, false);
    sub.price_id = Some("price_enterprise_monthly".to_owned());
    let got = entitlement(Some(&sub), &catalog, start());
    assert!(got.feature("priority_support"));
    assert!(got.feature("custom_domain"));
    assert!(!got.feature("no_such_feature"));
    assert_eq!(got.limit("api_calls"), Some(Limit::Unlimited));
    assert_eq!(got.limit("no_such_metric"), None);

    sub.price_id = Some("price_pro_monthly".to_owned());
    let got = entitlement(Some(&sub), &catalog, start());
    assert!(got.feature("advanced_analytics"));
    assert!(!got.feature("priority_support"));
    assert_eq!(got.limit("ai_generations"), Some(Limit::Limited(500)));
}

#[test]
fn grace_deadline_adds_the_tier_grace_and_saturates() {
    let catalog = catalog();
    let pro = catalog.tier("PRO").unwrap();
    assert_eq!(grace_deadline(pro, start()), grace());
    assert_eq!(
        grace_deadline(pro, DateTime::<Utc>::MAX_UTC),
        DateTime::<Utc>::MAX_UTC
    );
}

#[test]
fn reason_codes_are_stable_and_unique() {
    let reasons = [
        R::NoSubscription,
        R::Active,
        R::Trialing,
        R::InGracePeriod { until: grace() },
        R::GracePeriodOver { ended: grace() },
        R::CancelingAtPeriodEnd { until: end() },
        R::PaidPeriodOver { ended: end() },
        R::NoPaidAccess {
            status: S::Canceled,
        },
        R::UnknownPrice {
            price_id: Some("price_x".to_owned()),
        },
    ];
    let codes: Vec<&str> = reasons.iter().map(AccessReason::code).collect();
    assert_eq!(codes, AccessReason::CODES);
    assert_eq!(
        AccessReason::CODES,
        [
            "no_subscription",
            "active",
            "trialing",
            "in_grace_period",
            "grace_period_over",
            "canceling_at_period_end",
            "paid_period_over",
            "no_paid_access",
            "unknown_price",
        ]
    );
    for code in codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
    assert_eq!(
        R::InGracePeriod { until: grace() }.to_string(),
        "payment failed; in grace period until 2024-01-04T00:00:00+00:00"
    );
    assert_eq!(
        R::NoPaidAccess {
            status: S::parse("weird")
        }
        .to_string(),
        "subscription status \"weird\" grants no paid access"
    );
    assert_eq!(
        R::UnknownPrice { price_id: None }.to_string(),
        "subscription has no price"
    );
    for reason in &reasons {
        assert!(!reason.to_string().is_empty());
    }
}
