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
//! # Optional, "free" when absent: a paid invoice whose prices the catalog does not know
//! # grants the free tier's credits ("free"), or fails until the price is added ("fail").
//! unknown_prices = "free"
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
//!
//! # Layout
//!
//! [`Catalog::from_toml_str`] reads the text (`toml`: a problem for every value it cannot
//! read), checks the rules (`validate`: each rule one function) and indexes the tiers
//! (`model`: the types and lookups). [`Catalog::from_tiers`] skips the reading.

mod model;
mod toml;
mod validate;

use std::str::FromStr;

pub use self::model::{
    Catalog, CatalogError, CatalogProblem, DEFAULT_GRACE_PERIOD_DAYS, Limit, MAX_GRACE_PERIOD_DAYS,
    Tier, TierId, UnknownPrices,
};
use self::validate::{Reported, validate_tiers};

impl Catalog {
    /// Parses and validates a catalog written in TOML (see the [module docs](self) for the
    /// format and rules), reporting every problem found.
    pub fn from_toml_str(src: &str) -> Result<Catalog, CatalogError> {
        let document = self::toml::parse(src)?;
        let mut problems = Vec::new();
        let unknown_prices = self::toml::read_unknown_prices(&document, &mut problems);
        if let Some(read) = self::toml::read_document(&document, &mut problems) {
            validate_tiers(&read.tiers, &read.reported, &mut problems);
            if problems.is_empty() {
                return Ok(Self::index(read.tiers).with_unknown_prices(unknown_prices));
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
}

impl FromStr for Catalog {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_toml_str(s)
    }
}
