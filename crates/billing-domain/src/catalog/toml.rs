//! Reading a catalog's TOML text into tiers. Every value that cannot be read is recorded as a
//! problem with its place and replaced by a harmless placeholder, so that reading goes on and
//! the whole document is checked at once; the rules that hold however tiers are written are in
//! `validate`.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use toml::{Table, Value};

use super::model::{
    CatalogError, CatalogProblem, DEFAULT_GRACE_PERIOD_DAYS, Limit, MAX_GRACE_PERIOD_DAYS, Tier,
    TierId, UnknownPrices,
};
use super::validate::Reported;

const TOP_KEYS: &[&str] = &["default_grace_period_days", "unknown_prices", "tiers"];
const TIER_KEYS: &[&str] = &[
    "id",
    "name",
    "price_ids",
    "credits_per_period",
    "grace_period_days",
    "limits",
    "features",
];

/// The tiers read from a document, in order, each with what the reader already reported about
/// it.
pub(super) struct ReadTiers {
    pub(super) tiers: Vec<Tier>,
    pub(super) reported: Vec<Reported>,
}

/// Parses TOML text; a syntax error is reported alone, located by line and column when the
/// parser says where, because nothing after it can be read.
pub(super) fn parse(src: &str) -> Result<Table, CatalogError> {
    src.parse()
        .map_err(|error: toml::de::Error| syntax_error(src, &error))
}

fn syntax_error(src: &str, error: &toml::de::Error) -> CatalogError {
    let place = match error.span() {
        Some(span) => {
            let before = src.get(..span.start).unwrap_or(src);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}")
        }
        None => "TOML".to_owned(),
    };
    CatalogError {
        problems: vec![CatalogProblem::new(
            place,
            format!("TOML syntax error: {}", error.message().trim_end()),
        )],
    }
}

/// Reads `unknown_prices`: `"free"` (also when absent) or `"fail"`.
pub(super) fn read_unknown_prices(
    document: &Table,
    problems: &mut Vec<CatalogProblem>,
) -> UnknownPrices {
    match document.get("unknown_prices") {
        None => UnknownPrices::Free,
        Some(Value::String(s)) if s == "free" => UnknownPrices::Free,
        Some(Value::String(s)) if s == "fail" => UnknownPrices::Fail,
        Some(other) => {
            problems.push(expected("unknown_prices", r#""free" or "fail""#, other));
            UnknownPrices::Free
        }
    }
}

/// Reads the whole document. `None` when the tier list itself is unreadable (already reported),
/// in which case the cross-tier rules are not checked.
pub(super) fn read_document(
    document: &Table,
    problems: &mut Vec<CatalogProblem>,
) -> Option<ReadTiers> {
    report_unknown_keys(document, TOP_KEYS, "", problems);

    let default_grace = document
        .get("default_grace_period_days")
        .and_then(|v| read_grace_days(v, "default_grace_period_days", problems))
        .unwrap_or(TimeDelta::days(DEFAULT_GRACE_PERIOD_DAYS));

    match document.get("tiers") {
        // Reported as an empty catalog by the validation.
        None => Some(ReadTiers {
            tiers: Vec::new(),
            reported: Vec::new(),
        }),
        Some(Value::Array(entries)) => read_tiers(entries, default_grace, problems),
        Some(other) => {
            problems.push(expected("tiers", "an array of tables ([[tiers]])", other));
            None
        }
    }
}

/// Reads each entry of `tiers`; `None` when one of them is not a table.
fn read_tiers(
    entries: &[Value],
    default_grace: TimeDelta,
    problems: &mut Vec<CatalogProblem>,
) -> Option<ReadTiers> {
    let mut read = ReadTiers {
        tiers: Vec::with_capacity(entries.len()),
        reported: Vec::with_capacity(entries.len()),
    };
    let mut all_tables = true;
    for (index, entry) in entries.iter().enumerate() {
        match entry {
            Value::Table(table) => {
                let (tier, reported) = read_tier(table, index, default_grace, problems);
                read.tiers.push(tier);
                read.reported.push(reported);
            }
            other => {
                all_tables = false;
                problems.push(expected(format!("tiers[{index}]"), "a table", other));
            }
        }
    }
    all_tables.then_some(read)
}

/// Reads one tier, the `rank`-th of the list, field by field in the order they are documented.
fn read_tier(
    table: &Table,
    rank: usize,
    default_grace: TimeDelta,
    problems: &mut Vec<CatalogProblem>,
) -> (Tier, Reported) {
    let prefix = format!("tiers[{rank}].");
    report_unknown_keys(table, TIER_KEYS, &prefix, problems);
    let id = read_id(table, &prefix, problems);
    let reported = Reported { id: id.is_none() };
    let name = read_name(table, &prefix, problems);
    let price_ids = read_price_ids(table, &prefix, problems);
    let credits_per_period = read_credits(table, &prefix, problems);
    let grace_period = table
        .get("grace_period_days")
        .and_then(|v| read_grace_days(v, &format!("{prefix}grace_period_days"), problems))
        .unwrap_or(default_grace);
    let limits = read_limits(table, &prefix, problems);
    let features = read_features(table, &prefix, problems);
    let tier = Tier {
        id: TierId::new(id.unwrap_or_default()),
        name,
        rank,
        price_ids,
        limits,
        features,
        credits_per_period,
        grace_period,
    };
    (tier, reported)
}

/// The tier's id; `None` (after recording a problem) when it is missing or not a string.
fn read_id(table: &Table, prefix: &str, problems: &mut Vec<CatalogProblem>) -> Option<String> {
    let place = format!("{prefix}id");
    match table.get("id") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            problems.push(expected(place, "a string", other));
            None
        }
        None => {
            problems.push(CatalogProblem::new(
                place,
                "missing: every tier needs an id",
            ));
            None
        }
    }
}

/// The tier's display name; `"?"` (after recording a problem) when missing or not a string.
fn read_name(table: &Table, prefix: &str, problems: &mut Vec<CatalogProblem>) -> String {
    let place = format!("{prefix}name");
    match table.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(other) => {
            problems.push(expected(place, "a string", other));
            "?".to_owned()
        }
        None => {
            problems.push(CatalogProblem::new(
                place,
                "missing: every tier needs a display name",
            ));
            "?".to_owned()
        }
    }
}

/// The tier's prices, none when absent; entries that are not strings are skipped.
fn read_price_ids(table: &Table, prefix: &str, problems: &mut Vec<CatalogProblem>) -> Vec<String> {
    let mut price_ids = Vec::new();
    match table.get("price_ids") {
        None => {}
        Some(Value::Array(prices)) => {
            for (i, price) in prices.iter().enumerate() {
                match price {
                    Value::String(price) => price_ids.push(price.clone()),
                    other => {
                        problems.push(expected(
                            format!("{prefix}price_ids[{i}]"),
                            "a string",
                            other,
                        ));
                    }
                }
            }
        }
        Some(other) => problems.push(expected(
            format!("{prefix}price_ids"),
            "an array of strings",
            other,
        )),
    }
    price_ids
}

/// Credits per paid period: 0 when absent, and 0 (after recording a problem) when unreadable.
fn read_credits(table: &Table, prefix: &str, problems: &mut Vec<CatalogProblem>) -> i64 {
    let place = format!("{prefix}credits_per_period");
    match table.get("credits_per_period") {
        None => 0,
        Some(Value::Integer(credits)) if *credits >= 0 => *credits,
        Some(Value::Integer(credits)) => {
            problems.push(CatalogProblem::new(
                place,
                format!("must not be negative, found {credits}"),
            ));
            0
        }
        Some(other) => {
            problems.push(expected(place, "a whole number", other));
            0
        }
    }
}

/// Reads a non-negative number of grace days, `None` (after recording a problem) if invalid.
fn read_grace_days(
    value: &Value,
    place: &str,
    problems: &mut Vec<CatalogProblem>,
) -> Option<TimeDelta> {
    let message = match value {
        Value::Integer(days) if (0..=MAX_GRACE_PERIOD_DAYS).contains(days) => {
            return TimeDelta::try_days(*days);
        }
        Value::Integer(days) if *days < 0 => format!("must not be negative, found {days}"),
        Value::Integer(days) => {
            format!("must be at most {MAX_GRACE_PERIOD_DAYS} days, found {days}")
        }
        other => {
            problems.push(expected(place, "a whole number of days", other));
            return None;
        }
    };
    problems.push(CatalogProblem::new(place, message));
    None
}

/// The tier's limit per metric, none when absent.
fn read_limits(
    table: &Table,
    prefix: &str,
    problems: &mut Vec<CatalogProblem>,
) -> BTreeMap<String, Limit> {
    let mut limits = BTreeMap::new();
    match table.get("limits") {
        None => {}
        Some(Value::Table(entries)) => {
            for (metric, value) in entries {
                let limit = read_limit(value, format!("{prefix}limits.{metric}"), problems);
                limits.insert(metric.clone(), limit);
            }
        }
        Some(other) => problems.push(expected(
            format!("{prefix}limits"),
            "a table ([tiers.limits])",
            other,
        )),
    }
    limits
}

/// One limit. An unreadable limit still counts as present, so that the cross-tier check does not
/// also call it missing; the placeholder never leaves this module.
fn read_limit(value: &Value, place: String, problems: &mut Vec<CatalogProblem>) -> Limit {
    match value {
        Value::Integer(n) => match u64::try_from(*n) {
            Ok(n) => Limit::Limited(n),
            Err(_) => {
                problems.push(CatalogProblem::new(
                    place,
                    format!("must not be negative, found {n}"),
                ));
                Limit::Unlimited
            }
        },
        Value::String(s) if s == "unlimited" => Limit::Unlimited,
        other => {
            problems.push(expected(
                place,
                "a non-negative whole number or \"unlimited\"",
                other,
            ));
            Limit::Unlimited
        }
    }
}

/// Whether the tier includes each feature, none when absent. An unreadable value still counts
/// as present (as `false`), like an unreadable limit.
fn read_features(
    table: &Table,
    prefix: &str,
    problems: &mut Vec<CatalogProblem>,
) -> BTreeMap<String, bool> {
    let mut features = BTreeMap::new();
    match table.get("features") {
        None => {}
        Some(Value::Table(entries)) => {
            for (feature, value) in entries {
                let included = match value {
                    Value::Boolean(b) => *b,
                    other => {
                        let place = format!("{prefix}features.{feature}");
                        problems.push(expected(place, "true or false", other));
                        false
                    }
                };
                features.insert(feature.clone(), included);
            }
        }
        Some(other) => problems.push(expected(
            format!("{prefix}features"),
            "a table ([tiers.features])",
            other,
        )),
    }
    features
}

fn report_unknown_keys(
    table: &Table,
    known: &[&str],
    prefix: &str,
    problems: &mut Vec<CatalogProblem>,
) {
    for key in table.keys() {
        if !known.contains(&key.as_str()) {
            problems.push(CatalogProblem::new(
                format!("{prefix}{key}"),
                format!("unknown key (expected one of: {})", known.join(", ")),
            ));
        }
    }
}

/// A value of the wrong type: "must be `what`, found …".
fn expected(place: impl Into<String>, what: &str, found: &Value) -> CatalogProblem {
    CatalogProblem::new(place, format!("must be {what}, found {}", describe(found)))
}

/// Describes a value's TOML type for messages, naming floats' special values.
fn describe(value: &Value) -> String {
    match value {
        Value::Float(f) => format!("a float ({f})"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Array(_) => "an array".to_owned(),
        other => format!("a {}", other.type_str()),
    }
}
