//! The plan catalog: tiers, their prices, usage limits, features, credits and grace periods.
//!
//! The catalog is written in TOML (see `plans.toml` at the workspace root) and validated as a
//! whole when loaded: [`Catalog::from_toml_str`] reports *every* problem it finds, each with the
//! place it was found at, rather than stopping at the first. Only a TOML syntax error is reported
//! alone, because nothing after it can be read.
//!
//! # Format
//!
//! ```toml
//! # Optional, 3 when absent: days of paid access kept after a failed payment.
//! default_grace_period_days = 3
//!
//! # Tiers in order from lowest to highest. The first one is the free tier.
//! [[tiers]]
//! id = "FREE"                 # letters, digits, `_` and `-`; matched exactly
//! name = "Free"
//! price_ids = []              # optional; must be empty for the free tier
//! credits_per_period = 0      # optional, 0 when absent; must be 0 for the free tier
//! grace_period_days = 3       # optional, default_grace_period_days when absent
//!
//! [tiers.limits]              # per metered action: a non-negative integer or "unlimited"
//! api_calls = 100
//!
//! [tiers.features]            # per feature: true or false
//! custom_domain = false
//!
//! [[tiers]]
//! id = "PRO"
//! name = "Pro"
//! price_ids = ["price_pro_monthly", "price_pro_yearly"]
//! credits_per_period = 1000
//!
//! [tiers.limits]
//! api_calls = "unlimited"
//!
//! [tiers.features]
//! custom_domain = true
//! ```
//!
//! # Rules
//!
//! * There is at least one tier; the first is the free tier and has no price. Every other tier
//!   has at least one price (a paid tier nobody can buy is unreachable, so it is a mistake).
//! * Tier ids are unique; price ids are unique across the whole catalog.
//! * Every tier lists every metric and every feature. A metric or feature named on one tier and
//!   missing on another is an error, not an implicit "unlimited" or `false`: this turns a typo
//!   in a name into a load error instead of a silently granted or withheld feature. A feature a
//!   tier lacks is written `name = false`.
//! * Limits are non-negative integers or the string `"unlimited"`; floats (including `inf` and
//!   `nan`) are rejected everywhere. Credits and grace days are non-negative integers; grace is at
//!   most [`MAX_GRACE_PERIOD_DAYS`].
//! * Unknown keys are errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use toml::{Table, Value};

/// Grace period, in days, of a tier when the catalog does not say otherwise.
pub const DEFAULT_GRACE_PERIOD_DAYS: i64 = 3;

/// The longest grace period, in days, a catalog may configure (a larger value is taken as a typo).
pub const MAX_GRACE_PERIOD_DAYS: i64 = 365;

/// A tier's identifier as written in the catalog, e.g. `"PRO"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TierId(String);

impl TierId {
    /// Wraps an identifier without validating it (the catalog validates the ids it loads).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TierId {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for TierId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl PartialEq<str> for TierId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TierId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// How much of a metered action a tier allows per metering period.
///
/// Ordered so that a smaller limit sorts first and [`Limit::Unlimited`] sorts after every
/// [`Limit::Limited`]. Serializes as the number, or as the string `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// At most this many per period.
    Limited(u64),
    /// No limit.
    Unlimited,
}

impl Limit {
    /// True when a total of `used_after` (usage including the request) stays within the limit.
    pub fn allows(&self, used_after: u64) -> bool {
        match self {
            Limit::Limited(max) => used_after <= *max,
            Limit::Unlimited => true,
        }
    }

    /// The limit as a number, `None` when unlimited.
    pub fn as_option(&self) -> Option<u64> {
        match self {
            Limit::Limited(max) => Some(*max),
            Limit::Unlimited => None,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Limited(max) => write!(f, "{max}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Limited(max) => serializer.serialize_u64(*max),
            Limit::Unlimited => serializer.serialize_str("unlimited"),
        }
    }
}

/// One plan tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The tier's identifier, e.g. `"PRO"`.
    pub id: TierId,
    /// A display name, e.g. `"Pro"`.
    pub name: String,
    /// Position in the catalog, lowest first; 0 is the free tier.
    pub rank: usize,
    /// The Stripe prices (`price_…`) that buy this tier, e.g. a monthly and a yearly one.
    pub price_ids: Vec<String>,
    /// The limit of each metered action (e.g. `"api_calls"`) per metering period.
    pub limits: BTreeMap<String, Limit>,
    /// Whether each feature (e.g. `"custom_domain"`) is included.
    pub features: BTreeMap<String, bool>,
    /// Credits granted per paid billing period (0 for the free tier).
    pub credits_per_period: i64,
    /// How long paid access survives a failed payment.
    pub grace_period: TimeDelta,
}

impl Tier {
    /// True for the free tier (rank 0).
    pub fn is_free(&self) -> bool {
        self.rank == 0
    }

    /// The limit of a metered action, `None` when the catalog has no such metric.
    pub fn limit(&self, metric: &str) -> Option<Limit> {
        self.limits.get(metric).copied()
    }

    /// Whether a feature is included; `false` when the catalog has no such feature.
    pub fn feature(&self, name: &str) -> bool {
        self.features.get(name).copied().unwrap_or(false)
    }
}

/// A validated plan catalog: at least one tier, the first one free, prices unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// Never empty (checked when built).
    tiers: Vec<Tier>,
    by_id: HashMap<String, usize>,
    by_price: HashMap<String, usize>,
    metrics: BTreeSet<String>,
    features: BTreeSet<String>,
}

impl Catalog {
    /// Parses and validates a catalog written in TOML (see the [module docs](self) for the
    /// format and rules), reporting every problem found.
    pub fn from_toml_str(src: &str) -> Result<Catalog, CatalogError> {
        let document: Table = src
            .parse()
            .map_err(|error: toml::de::Error| CatalogError::syntax(src, &error))?;
        let mut problems = Vec::new();
        let parsed = read_document(&document, &mut problems);
        if let Some(parsed) = parsed {
            let (tiers, reported): (Vec<Tier>, Vec<Reported>) =
                parsed.into_iter().map(|p| (p.tier, p.reported)).unzip();
            validate_tiers(&tiers, &reported, &mut problems);
            if problems.is_empty() {
                return Ok(Self::index(tiers));
            }
        }
        Err(CatalogError { problems })
    }

    /// Builds a catalog from tiers given in order from lowest (free) to highest, applying the
    /// same rules as [`Catalog::from_toml_str`]. Each tier's `rank` is set to its position.
    pub fn from_tiers(tiers: Vec<Tier>) -> Result<Catalog, CatalogError> {
        let mut tiers = tiers;
        for (rank, tier) in tiers.iter_mut().enumerate() {
            tier.rank = rank;
        }
        let mut problems = Vec::new();
        validate_tiers(
            &tiers,
            &vec![Reported::default(); tiers.len()],
            &mut problems,
        );
        if problems.is_empty() {
            Ok(Self::index(tiers))
        } else {
            Err(CatalogError { problems })
        }
    }

    /// Builds the lookup tables of tiers that passed validation.
    fn index(tiers: Vec<Tier>) -> Catalog {
        let mut by_id = HashMap::new();
        let mut by_price = HashMap::new();
        let mut metrics = BTreeSet::new();
        let mut features = BTreeSet::new();
        for (position, tier) in tiers.iter().enumerate() {
            by_id.insert(tier.id.as_str().to_owned(), position);
            for price in &tier.price_ids {
                by_price.insert(price.clone(), position);
            }
            metrics.extend(tier.limits.keys().cloned());
            features.extend(tier.features.keys().cloned());
        }
        Catalog {
            tiers,
            by_id,
            by_price,
            metrics,
            features,
        }
    }

    /// The free tier: the first (lowest) one, which has no price.
    pub fn free_tier(&self) -> &Tier {
        // Validation guarantees at least one tier.
        &self.tiers[0]
    }

    /// The tier with this id (matched exactly, case-sensitive).
    pub fn tier(&self, id: &str) -> Option<&Tier> {
        self.by_id.get(id).and_then(|&i| self.tiers.get(i))
    }

    /// The tier a Stripe price buys, if the price is in the catalog.
    pub fn tier_for_price(&self, price_id: &str) -> Option<&Tier> {
        self.by_price.get(price_id).and_then(|&i| self.tiers.get(i))
    }

    /// The highest tier bought by any of `price_ids`, with the price that buys it; `None` when
    /// the catalog knows none of them. A subscription with several items (a plan plus add-ons)
    /// is on the best plan among its items, whatever their order.
    pub fn highest_tier_for_prices<'p, I>(&self, price_ids: I) -> Option<(&Tier, &'p str)>
    where
        I: IntoIterator<Item = &'p str>,
    {
        price_ids
            .into_iter()
            .filter_map(|price| self.tier_for_price(price).map(|tier| (tier, price)))
            .fold(
                None,
                |best: Option<(&Tier, &str)>, (tier, price)| match best {
                    Some((held, _)) if held.rank >= tier.rank => best,
                    _ => Some((tier, price)),
                },
            )
    }

    /// All tiers, ordered from lowest (the free tier) to highest.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The names of all metered actions, sorted; every tier has a limit for each.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.metrics.iter().map(String::as_str)
    }

    /// The names of all features, sorted; every tier says whether it includes each.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(String::as_str)
    }
}

impl FromStr for Catalog {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_toml_str(s)
    }
}

/// Why a catalog was rejected: every problem found, in the order found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", render_problems(.problems))]
pub struct CatalogError {
    /// The problems; never empty.
    pub problems: Vec<CatalogProblem>,
}

/// One problem in a catalog and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{place}: {message}")]
pub struct CatalogProblem {
    /// Where: a path such as `tiers[1].limits.api_calls`, or `line 3, column 7` for TOML syntax.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl CatalogProblem {
    /// Builds a problem from its place and message.
    pub fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: place.into(),
            message: message.into(),
        }
    }
}

impl CatalogError {
    /// A TOML syntax error, located by line and column when the parser says where.
    fn syntax(src: &str, error: &toml::de::Error) -> Self {
        let place = match error.span() {
            Some(span) => {
                let before = src.get(..span.start).unwrap_or(src);
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {column}")
            }
            None => "TOML".to_owned(),
        };
        Self {
            problems: vec![CatalogProblem::new(
                place,
                format!("TOML syntax error: {}", error.message().trim_end()),
            )],
        }
    }
}

fn render_problems(problems: &[CatalogProblem]) -> String {
    let mut out = match problems.len() {
        1 => "invalid plan catalog (1 problem):".to_owned(),
        n => format!("invalid plan catalog ({n} problems):"),
    };
    for problem in problems {
        out.push_str("\n  - ");
        out.push_str(&problem.to_string());
    }
    out
}

/// Which problems the TOML reader already reported for a tier, so validation does not repeat
/// them about the placeholder it put in their stead.
#[derive(Debug, Clone, Copy, Default)]
struct Reported {
    id: bool,
}

/// A tier as read from TOML; fields that could not be read hold harmless placeholders and a
/// problem has been recorded for each.
struct Parsed {
    tier: Tier,
    reported: Reported,
}

const TOP_KEYS: &[&str] = &["default_grace_period_days", "tiers"];
const TIER_KEYS: &[&str] = &[
    "id",
    "name",
    "price_ids",
    "credits_per_period",
    "grace_period_days",
    "limits",
    "features",
];

fn problem(
    problems: &mut Vec<CatalogProblem>,
    place: impl Into<String>,
    message: impl Into<String>,
) {
    problems.push(CatalogProblem::new(place, message));
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

fn report_unknown_keys(
    table: &Table,
    known: &[&str],
    prefix: &str,
    problems: &mut Vec<CatalogProblem>,
) {
    for key in table.keys() {
        if !known.contains(&key.as_str()) {
            problem(
                problems,
                format!("{prefix}{key}"),
                format!("unknown key (expected one of: {})", known.join(", ")),
            );
        }
    }
}

/// Reads a non-negative number of grace days, `None` (after recording a problem) if invalid.
fn read_grace_days(
    value: &Value,
    place: &str,
    problems: &mut Vec<CatalogProblem>,
) -> Option<TimeDelta> {
    match value {
        Value::Integer(days) if (0..=MAX_GRACE_PERIOD_DAYS).contains(days) => {
            TimeDelta::try_days(*days)
        }
        Value::Integer(days) if *days < 0 => {
            problem(
                problems,
                place,
                format!("must not be negative, found {days}"),
            );
            None
        }
        Value::Integer(days) => {
            problem(
                problems,
                place,
                format!("must be at most {MAX_GRACE_PERIOD_DAYS} days, found {days}"),
            );
            None
        }
        other => {
            problem(
                problems,
                place,
                format!("must be a whole number of days, found {}", describe(other)),
            );
            None
        }
    }
}

/// Reads the whole document. `None` when the tier list itself is unreadable (already reported),
/// in which case the cross-tier rules are not checked.
fn read_document(document: &Table, problems: &mut Vec<CatalogProblem>) -> Option<Vec<Parsed>> {
    report_unknown_keys(document, TOP_KEYS, "", problems);

    let default_grace = document
        .get("default_grace_period_days")
        .and_then(|v| read_grace_days(v, "default_grace_period_days", problems))
        .unwrap_or(TimeDelta::days(DEFAULT_GRACE_PERIOD_DAYS));

    match document.get("tiers") {
        // Reported as an empty catalog by the validation.
        None => Some(Vec::new()),
        Some(Value::Array(entries)) => {
            let mut parsed = Vec::with_capacity(entries.len());
            let mut all_tables = true;
            for (index, entry) in entries.iter().enumerate() {
                let place = format!("tiers[{index}]");
                match entry {
                    Value::Table(table) => {
                        parsed.push(read_tier(table, index, &place, default_grace, problems));
                    }
                    other => {
                        all_tables = false;
                        problem(
                            problems,
                            place,
                            format!("must be a table, found {}", describe(other)),
                        );
                    }
                }
            }
            all_tables.then_some(parsed)
        }
        Some(other) => {
            problem(
                problems,
                "tiers",
                format!(
                    "must be an array of tables ([[tiers]]), found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

fn read_tier(
    table: &Table,
    rank: usize,
    place: &str,
    default_grace: TimeDelta,
    problems: &mut Vec<CatalogProblem>,
) -> Parsed {
    let prefix = format!("{place}.");
    report_unknown_keys(table, TIER_KEYS, &prefix, problems);
    let mut reported = Reported::default();

    let id = match table.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) => {
            problem(
                problems,
                format!("{prefix}id"),
                format!("must be a string, found {}", describe(other)),
            );
            reported.id = true;
            String::new()
        }
        None => {
            problem(
                problems,
                format!("{prefix}id"),
                "missing: every tier needs an id",
            );
            reported.id = true;
            String::new()
        }
    };

    let name = match table.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(other) => {
            problem(
                problems,
                format!("{prefix}name"),
                format!("must be a string, found {}", describe(other)),
            );
            "?".to_owned()
        }
        None => {
            problem(
                problems,
                format!("{prefix}name"),
                "missing: every tier needs a display name",
            );
            "?".to_owned()
        }
    };

    let mut price_ids = Vec::new();
    match table.get("price_ids") {
        None => {}
        Some(Value::Array(prices)) => {
            for (i, price) in prices.iter().enumerate() {
                match price {
                    Value::String(price) => price_ids.push(price.clone()),
                    other => problem(
                        problems,
                        format!("{prefix}price_ids[{i}]"),
                        format!("must be a string, found {}", describe(other)),
                    ),
                }
            }
        }
        Some(other) => problem(
            problems,
            format!("{prefix}price_ids"),
            format!("must be an array of strings, found {}", describe(other)),
        ),
    }

    let credits_per_period = match table.get("credits_per_period") {
        None => 0,
        Some(Value::Integer(credits)) if *credits >= 0 => *credits,
        Some(Value::Integer(credits)) => {
            problem(
                problems,
                format!("{prefix}credits_per_period"),
                format!("must not be negative, found {credits}"),
            );
            0
        }
        Some(other) => {
            problem(
                problems,
                format!("{prefix}credits_per_period"),
                format!("must be a whole number, found {}", describe(other)),
            );
            0
        }
    };

    let grace_period = table
        .get("grace_period_days")
        .and_then(|v| read_grace_days(v, &format!("{prefix}grace_period_days"), problems))
        .unwrap_or(default_grace);

    let mut limits = BTreeMap::new();
    match table.get("limits") {
        None => {}
        Some(Value::Table(entries)) => {
            for (metric, value) in entries {
                let at = format!("{prefix}limits.{metric}");
                // An unreadable limit still counts as present, so that the cross-tier check
                // does not also call it missing; the placeholder never leaves this module.
                let limit = match value {
                    Value::Integer(n) => match u64::try_from(*n) {
                        Ok(n) => Limit::Limited(n),
                        Err(_) => {
                            problem(problems, at, format!("must not be negative, found {n}"));
                            Limit::Unlimited
                        }
                    },
                    Value::String(s) if s == "unlimited" => Limit::Unlimited,
                    other => {
                        problem(
                            problems,
                            at,
                            format!(
                                "must be a non-negative whole number or \"unlimited\", found {}",
                                describe(other)
                            ),
                        );
                        Limit::Unlimited
                    }
                };
                limits.insert(metric.clone(), limit);
            }
        }
        Some(other) => problem(
            problems,
            format!("{prefix}limits"),
            format!(
                "must be a table ([tiers.limits]), found {}",
                describe(other)
            ),
        ),
    }

    let mut features = BTreeMap::new();
    match table.get("features") {
        None => {}
        Some(Value::Table(entries)) => {
            for (feature, value) in entries {
                let included = match value {
                    Value::Boolean(b) => *b,
                    other => {
                        problem(
                            problems,
                            format!("{prefix}features.{feature}"),
                            format!("must be true or false, found {}", describe(other)),
                        );
                        false
                    }
                };
                features.insert(feature.clone(), included);
            }
        }
        Some(other) => problem(
            problems,
            format!("{prefix}features"),
            format!(
                "must be a table ([tiers.features]), found {}",
                describe(other)
            ),
        ),
    }

    Parsed {
        tier: Tier {
            id: TierId(id),
            name,
            rank,
            price_ids,
            limits,
            features,
            credits_per_period,
            grace_period,
        },
        reported,
    }
}

fn valid_tier_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_price_id(price: &str) -> bool {
    !price.is_empty() && !price.chars().any(char::is_whitespace)
}

/// `tiers[1] (PRO)`, or `tiers[1]` when the id is unusable.
fn tier_label(index: usize, tier: &Tier) -> String {
    if tier.id.as_str().is_empty() {
        format!("tiers[{index}]")
    } else {
        format!("tiers[{index}] ({})", tier.id)
    }
}

/// The rules that hold however the tiers were written: shape, uniqueness and consistency.
fn validate_tiers(tiers: &[Tier], reported: &[Reported], problems: &mut Vec<CatalogProblem>) {
    if tiers.is_empty() {
        problem(
            problems,
            "tiers",
            "the catalog is empty: it needs at least one tier (the free tier first)",
        );
        return;
    }

    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut prices: HashMap<&str, usize> = HashMap::new();
    for (index, tier) in tiers.iter().enumerate() {
        let place = format!("tiers[{index}]");
        let already = reported.get(index).copied().unwrap_or_default();

        if !already.id {
            let id = tier.id.as_str();
            if !valid_tier_id(id) {
                problem(
                    problems,
                    format!("{place}.id"),
                    format!(
                        "invalid tier id {id:?}: use letters, digits, '_' and '-' (e.g. \"PRO\")"
                    ),
                );
            } else if let Some(&first) = ids.get(id) {
                problem(
                    problems,
                    format!("{place}.id"),
                    format!("duplicate tier id {id:?}: also used by tiers[{first}]"),
                );
            } else {
                ids.insert(id, index);
            }
        }

        if tier.name.trim().is_empty() {
            problem(problems, format!("{place}.name"), "must not be empty");
        }

        if index == 0 && !tier.price_ids.is_empty() {
            problem(
                problems,
                format!("{place}.price_ids"),
                format!(
                    "the first tier is the free tier and must have no price, found {}",
                    tier.price_ids.join(", ")
                ),
            );
        }
        if index > 0 && tier.price_ids.is_empty() {
            problem(
                problems,
                format!("{place}.price_ids"),
                "a paid tier needs at least one price id, otherwise no subscription can reach it",
            );
        }
        for (i, price) in tier.price_ids.iter().enumerate() {
            let at = format!("{place}.price_ids[{i}]");
            if !valid_price_id(price) {
                problem(
                    problems,
                    at,
                    format!("invalid price id {price:?}: must be non-empty without spaces"),
                );
            } else if let Some(&first) = prices.get(price.as_str()) {
                problem(
                    problems,
                    at,
                    format!(
                        "duplicate price id {price:?}: already used by {}",
                        tier_label(first, &tiers[first])
                    ),
                );
            } else {
                prices.insert(price, index);
            }
        }

        if tier.credits_per_period < 0 {
            problem(
                problems,
                format!("{place}.credits_per_period"),
                format!("must not be negative, found {}", tier.credits_per_period),
            );
        } else if index == 0 && tier.credits_per_period != 0 {
            problem(
                problems,
                format!("{place}.credits_per_period"),
                format!(
                    "must be 0 for the free tier (credits are granted per paid period), found {}",
                    tier.credits_per_period
                ),
            );
        }

        if tier.grace_period < TimeDelta::zero() {
            problem(
                problems,
                format!("{place}.grace_period"),
                "must not be negative",
            );
        } else if tier.grace_period > TimeDelta::days(MAX_GRACE_PERIOD_DAYS) {
            problem(
                problems,
                format!("{place}.grace_period"),
                format!("must be at most {MAX_GRACE_PERIOD_DAYS} days"),
            );
        }

        for metric in tier.limits.keys() {
            if metric.trim().is_empty() {
                problem(
                    problems,
                    format!("{place}.limits.{metric:?}"),
                    "metric names must not be empty",
                );
            }
        }
        for feature in tier.features.keys() {
            if feature.trim().is_empty() {
                problem(
                    problems,
                    format!("{place}.features.{feature:?}"),
                    "feature names must not be empty",
                );
            }
        }
    }

    // Every metric and every feature must be set on every tier.
    let mut metric_owner: BTreeMap<&str, usize> = BTreeMap::new();
    let mut feature_owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, tier) in tiers.iter().enumerate() {
        for metric in tier.limits.keys() {
            metric_owner.entry(metric).or_insert(index);
        }
        for feature in tier.features.keys() {
            feature_owner.entry(feature).or_insert(index);
        }
    }
    for (index, tier) in tiers.iter().enumerate() {
        for (&metric, &owner) in &metric_owner {
            if !tier.limits.contains_key(metric) {
                problem(
                    problems,
                    format!("tiers[{index}].limits.{metric}"),
                    format!(
                        "missing: {} sets a limit for {metric:?}, so every tier must \
                         (a number or \"unlimited\")",
                        tier_label(owner, &tiers[owner])
                    ),
                );
            }
        }
        for (&feature, &owner) in &feature_owner {
            if !tier.features.contains_key(feature) {
                problem(
                    problems,
                    format!("tiers[{index}].features.{feature}"),
                    format!(
                        "missing: {} names the feature {feature:?}, so every tier must say \
                         true or false",
                        tier_label(owner, &tiers[owner])
                    ),
                );
            }
        }
    }
}

impl Catalog {
    /// The same catalog with every tier's grace period for failed payments set to `grace`
    /// (an operator's override of the file's values), checked by the same rules.
    pub fn with_grace_period(&self, grace: TimeDelta) -> Result<Catalog, CatalogError> {
        let tiers = self
            .tiers
            .iter()
            .cloned()
            .map(|tier| Tier {
                grace_period: grace,
                ..tier
            })
            .collect();
        Catalog::from_tiers(tiers)
    }
}
