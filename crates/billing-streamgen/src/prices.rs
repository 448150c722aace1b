//! The prices of `plans.toml` as Stripe would render them: interval, amounts, nickname.

use billing_domain::Catalog;

use crate::Error;

/// A recurring price of the catalog.
#[derive(Debug, PartialEq, Eq)]
pub struct Price {
    /// The catalog's price id.
    pub id: &'static str,
    /// Stripe's `lookup_key`.
    pub lookup_key: &'static str,
    /// Stripe's `nickname`.
    pub nickname: &'static str,
    /// The product's name in line descriptions.
    pub product_name: &'static str,
    /// `month` or `year`.
    pub interval: &'static str,
    /// The `metadata.tier` of the price and its product.
    pub tier_tag: &'static str,
    /// Unit amount in cents (USD, the pre-basil account).
    pub usd: i64,
    /// Unit amount in cents (EUR, the basil account).
    pub eur: i64,
}

impl Price {
    /// The unit amount in `currency` (`usd` or `eur`).
    pub fn amount(&self, currency: &str) -> i64 {
        if currency == "eur" {
            self.eur
        } else {
            self.usd
        }
    }

    /// Whether the price bills monthly (else yearly).
    pub fn monthly(&self) -> bool {
        self.interval == "month"
    }
}

/// Pro, billed monthly.
pub static PRO_MONTHLY: Price = Price {
    id: "price_pro_monthly",
    lookup_key: "pro_monthly",
    nickname: "Pro (monthly)",
    product_name: "Pro",
    interval: "month",
    tier_tag: "pro",
    usd: 2000,
    eur: 1900,
};

/// Pro, billed yearly.
pub static PRO_YEARLY: Price = Price {
    id: "price_pro_yearly",
    lookup_key: "pro_yearly",
    nickname: "Pro (yearly)",
    product_name: "Pro",
    interval: "year",
    tier_tag: "pro",
    usd: 20000,
    eur: 19000,
};

/// Enterprise, billed monthly.
pub static ENTERPRISE_MONTHLY: Price = Price {
    id: "price_enterprise_monthly",
    lookup_key: "enterprise_monthly",
    nickname: "Enterprise (monthly)",
    product_name: "Enterprise",
    interval: "month",
    tier_tag: "enterprise",
    usd: 9900,
    eur: 9900,
};

/// Every price a subscription may be on.
pub static PRICES: [&Price; 3] = [&PRO_MONTHLY, &PRO_YEARLY, &ENTERPRISE_MONTHLY];

/// The credits a paid invoice of `price` grants, from `catalog`.
///
/// # Errors
///
/// [`Error::PriceNotInCatalog`] when `catalog` has no tier for `price`.
pub fn credits_of(catalog: &Catalog, price: &Price) -> Result<i64, Error> {
    catalog
        .tier_for_price(price.id)
        .map(|tier| tier.credits_per_period)
        .ok_or(Error::PriceNotInCatalog(price.id))
}
