//! Invoices (`invoice.paid`, `invoice.payment_succeeded`, `invoice.payment_failed`).
//!
//! Version differences handled here:
//!
//! - The billed subscription is `invoice.subscription` before `2025-03-31.basil` and
//!   `invoice.parent.subscription_details.subscription` since (either an id or an expanded
//!   object). The basil location is read first, the old one second.
//! - The service period and the prices come from the invoice's subscription lines, because
//!   the invoice-level `period_start`/`period_end` describe something else (the preceding
//!   period for renewals, a single instant for first and update invoices). A line is a
//!   subscription line when it has `type: "subscription"` or a `subscription` (before basil;
//!   renderings before 2018 send `subscription: null` on `type: "subscription"` lines), or a
//!   `parent.subscription_item_details` / `parent.type: "subscription_item_details"` (basil and
//!   later). When the invoice names its subscription, lines naming another subscription are
//!   skipped.
//! - Prices ([`InvoiceFacts::price_ids`]): when the invoice has subscription lines that are not
//!   prorations, the price of each of them, in line order, each price once. When it has only
//!   proration lines, the price of one of them: the first proration line with a positive
//!   amount (the charge for the remaining time on the new price, not the credit for the old
//!   one), failing that the first proration line. A line's price is `lines.data[].price` (or
//!   legacy `plan`, the only one before prices existed) before basil and
//!   `lines.data[].pricing.price_details.price` since, an id or an expanded object; a line with
//!   none gives nothing.
//! - Period: the line's `lines.data[].period` (every version) of the first non-proration
//!   subscription line, else of the proration line chosen above. When no line qualifies
//!   (one-off invoices, or subscription lines beyond the first page of lines Stripe sends), the
//!   period is the invoice-level `period_start`/`period_end` and there are no prices.
//! - `amount_paid` exists since 2018; older renderings (e.g. `2017-08-15`, `2018-02-28`) have
//!   only `paid` and `total`. When `amount_paid` is absent or `null`, the amount paid is
//!   `total` if `paid` is `true` and zero if it is `false`; for `invoice.payment_failed` it is
//!   zero without reading `paid` or `total`. Basil removed `paid` and always sends
//!   `amount_paid`, so an invoice of another event with neither fits no version and is
//!   reported as missing `amount_paid`. `amount_due` and `currency` are read in every version
//!   (`amount_due` exists since 2014) and are required.

use billing_domain::Money;
use billing_domain::facts::{InvoiceChange, InvoiceFacts};
use chrono::{DateTime, Utc};

use super::field::{Expandable, Field, List, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// An invoice as sent, in any supported API version.
    #[derive(Debug)]
    pub(super) struct RawInvoice {
        object: Field<String>,
        id: Field<String>,
        customer: Field<Expandable>,
        /// Before basil only.
        subscription: Field<Expandable>,
        /// Basil and later.
        parent: Field<RawInvoiceParent>,
        status: Field<String>,
        billing_reason: Field<String>,
        /// Since 2018.
        amount_paid: Field<i64>,
        amount_due: Field<i64>,
        /// Read only when `amount_paid` is absent.
        paid: Field<bool>,
        /// Read only when `amount_paid` is absent and `paid` is true.
        total: Field<i64>,
        currency: Field<String>,
        attempt_count: Field<u32>,
        lines: Field<List<RawLine>>,
        period_start: Field<i64>,
        period_end: Field<i64>,
        next_payment_attempt: Field<i64>,
    }
}

wire_struct! {
    /// `invoice.parent` (basil and later).
    #[derive(Debug)]
    struct RawInvoiceParent {
        subscription_details: Field<RawSubscriptionDetails>,
    }
}

wire_struct! {
    /// `invoice.parent.subscription_details`.
    #[derive(Debug)]
    struct RawSubscriptionDetails {
        subscription: Field<Expandable>,
    }
}

wire_struct! {
    /// An invoice line item as sent.
    #[derive(Debug)]
    struct RawLine {
        /// Before basil only: `"subscription"` or `"invoiceitem"`.
        #[key = "type"]
        line_type: Field<String>,
        /// Before basil only.
        subscription: Field<Expandable>,
        /// Before basil only.
        proration: Field<bool>,
        /// Basil and later.
        parent: Field<RawLineParent>,
        period: Field<RawPeriod>,
        amount: Field<i64>,
        /// Before basil only.
        price: Field<Expandable>,
        /// Before basil only (legacy; the only price before 2020).
        plan: Field<Expandable>,
        /// Basil and later.
        pricing: Field<RawPricing>,
    }
}

wire_struct! {
    /// `line.pricing` (basil and later).
    #[derive(Debug)]
    struct RawPricing {
        price_details: Field<RawPriceDetails>,
    }
}

wire_struct! {
    /// `line.pricing.price_details`.
    #[derive(Debug)]
    struct RawPriceDetails {
        price: Field<Expandable>,
    }
}

wire_struct! {
    /// `line.parent` (basil and later).
    #[derive(Debug)]
    struct RawLineParent {
        #[key = "type"]
        parent_type: Field<String>,
        subscription_item_details: Field<RawSubscriptionItemDetails>,
    }
}

wire_struct! {
    /// `line.parent.subscription_item_details`.
    #[derive(Debug)]
    struct RawSubscriptionItemDetails {
        subscription: Field<Expandable>,
        proration: Field<bool>,
    }
}

wire_struct! {
    /// `line.period`.
    #[derive(Debug)]
    struct RawPeriod {
        start: Field<i64>,
        end: Field<i64>,
    }
}

type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// What a line says about its subscription.
struct LineKind {
    subscription_line: bool,
    subscription_id: Option<String>,
    proration: bool,
}

/// The subscription lines that decide an invoice's period and prices.
struct Billed<'s> {
    /// The line whose period is the billed period.
    period_line: Option<(&'s RawLine, Scope<'s>)>,
    /// The lines whose prices are the billed prices, in line order.
    price_lines: Vec<(&'s RawLine, Scope<'s>)>,
}

impl RawInvoice {
    /// Converts the decoded invoice of an event of kind `change`, reading fields relative to
    /// `scope` (`data.object`).
    pub(super) fn into_facts(
        self,
        scope: &Scope<'_>,
        change: InvoiceChange,
    ) -> Result<InvoiceFacts, WireError> {
        scope.expect_object(&self.object, "invoice")?;
        let id = scope.object_id(&self.id, "id", &["in_"])?;
        let amount_paid = self.amount_paid(scope, change)?;
        let amount_due = scope.money(&self.amount_due, "amount_due", &self.currency, "currency")?;
        let subscription_id = self.subscription_id(scope)?;
        let billed = self.billed_lines(scope, subscription_id.as_deref())?;
        let line_period = match &billed.period_line {
            Some((line, line_scope)) => line.period(line_scope)?,
            None => None,
        };
        let mut price_ids: Vec<String> = Vec::with_capacity(billed.price_lines.len());
        for (line, line_scope) in &billed.price_lines {
            if let Some(price) = line.price(line_scope)?
                && !price_ids.contains(&price)
            {
                price_ids.push(price);
            }
        }
        let (period_start, period_end) = match line_period {
            Some(period) => period,
            None => (
                scope.time(&self.period_start, "period_start")?,
                scope.time(&self.period_end, "period_end")?,
            ),
        };
        Ok(InvoiceFacts {
            id,
            customer_id: scope.id(&self.customer, "customer")?,
            subscription_id,
            status: scope.string(&self.status, "status")?,
            billing_reason: scope.string(&self.billing_reason, "billing_reason")?,
            amount_paid,
            amount_due,
            attempt_count: scope
                .optional(&self.attempt_count, "attempt_count")?
                .copied()
                .unwrap_or(0),
            period_start,
            period_end,
            next_payment_attempt: scope.time(&self.next_payment_attempt, "next_payment_attempt")?,
            price_ids,
        })
    }

    /// `amount_paid`; in renderings without it (before 2018), `total` when `paid`, else zero.
    /// A failed payment paid nothing, so `invoice.payment_failed` never reads `paid` or
    /// `total`. An invoice with neither `amount_paid` nor `paid` fits no version and is
    /// reported as missing `amount_paid`.
    fn amount_paid(&self, scope: &Scope<'_>, change: InvoiceChange) -> Result<Money, WireError> {
        let sent = scope.optional(&self.amount_paid, "amount_paid")?.copied();
        let currency = scope.currency(&self.currency, "currency")?;
        let amount = match sent {
            Some(_) => scope.amount(&self.amount_paid, "amount_paid")?,
            None if change == InvoiceChange::PaymentFailed => 0,
            None => match scope.optional(&self.paid, "paid")? {
                None => return Err(scope.missing("amount_paid")),
                Some(false) => 0,
                // A total below zero (credits exceeding the charges) paid nothing.
                Some(true) => (*scope.required(&self.total, "total")?).max(0),
            },
        };
        Ok(Money::new(amount, currency))
    }

    /// `parent.subscription_details.subscription` (basil+), else `subscription` (older).
    fn subscription_id(&self, scope: &Scope<'_>) -> Result<Option<String>, WireError> {
        if let Some(parent) = scope.optional(&self.parent, "parent")? {
            let parent_scope = scope.child("parent");
            if let Some(details) =
                parent_scope.optional(&parent.subscription_details, "subscription_details")?
            {
                let details_scope = parent_scope.child("subscription_details");
                if let Some(id) = details_scope.id(&details.subscription, "subscription")? {
                    return Ok(Some(id));
                }
            }
        }
        scope.id(&self.subscription, "subscription")
    }

    /// The invoice's subscription lines of its own subscription that decide the period and
    /// the prices: every non-proration line, or else the one chosen proration line.
    fn billed_lines<'s>(
        &'s self,
        scope: &Scope<'s>,
        subscription_id: Option<&str>,
    ) -> Result<Billed<'s>, WireError> {
        let none = || Billed {
            period_line: None,
            price_lines: Vec::new(),
        };
        let Some(lines) = scope.optional(&self.lines, "lines")? else {
            return Ok(none());
        };
        let lines_scope = scope.child("lines");
        let Some(data) = lines_scope.optional(&lines.data, "data")? else {
            return Ok(none());
        };
        let mut regular: Vec<(&RawLine, Scope<'s>)> = Vec::new();
        let mut charged_proration = None;
        let mut any_proration = None;
        for (index, entry) in data.iter().enumerate() {
            let name = format!("data[{index}]");
            let line = lines_scope.entry(entry, &name)?;
            let line_scope = lines_scope.child(&name);
            let kind = line.kind(&line_scope)?;
            if !kind.subscription_line {
                continue;
            }
            if let (Some(wanted), Some(found)) = (subscription_id, kind.subscription_id.as_deref())
                && wanted != found
            {
                continue;
            }
            if !kind.proration {
                regular.push((line, line_scope));
                continue;
            }
            let charged = line_scope
                .optional(&line.amount, "amount")?
                .is_some_and(|&amount| amount > 0);
            if charged && charged_proration.is_none() {
                charged_proration = Some((line, line_scope.clone()));
            }
            if any_proration.is_none() {
                any_proration = Some((line, line_scope));
            }
        }
        if let Some(first) = regular.first() {
            return Ok(Billed {
                period_line: Some(first.clone()),
                price_lines: regular,
            });
        }
        let chosen = charged_proration.or(any_proration);
        Ok(Billed {
            period_line: chosen.clone(),
            price_lines: chosen.into_iter().collect(),
        })
    }
}

impl RawLine {
    /// The line's service period, if it has one.
    fn period(&self, scope: &Scope<'_>) -> Result<Option<Period>, WireError> {
        let Some(period) = scope.optional(&self.period, "period")? else {
            return Ok(None);
        };
        let period_scope = scope.child("period");
        let start = period_scope.time(&period.start, "start")?;
        let end = period_scope.time(&period.end, "end")?;
        if start.is_none() && end.is_none() {
            return Ok(None);
        }
        Ok(Some((start, end)))
    }

    /// The line's price: `pricing.price_details.price` (basil+), else `price`, else `plan`.
    fn price(&self, scope: &Scope<'_>) -> Result<Option<String>, WireError> {
        if let Some(pricing) = scope.optional(&self.pricing, "pricing")? {
            let pricing_scope = scope.child("pricing");
            if let Some(details) =
                pricing_scope.optional(&pricing.price_details, "price_details")?
            {
                let details_scope = pricing_scope.child("price_details");
                if let Some(price) = details_scope.id(&details.price, "price")? {
                    return Ok(Some(price));
                }
            }
        }
        match scope.id(&self.price, "price")? {
            Some(price) => Ok(Some(price)),
            None => scope.id(&self.plan, "plan"),
        }
    }

    /// Whether the line bills a subscription, which one, and whether it is a proration.
    fn kind(&self, scope: &Scope<'_>) -> Result<LineKind, WireError> {
        // Basil and later: `parent.subscription_item_details`.
        if let Some(parent) = scope.optional(&self.parent, "parent")? {
            let parent_scope = scope.child("parent");
            let details = parent_scope.optional(
                &parent.subscription_item_details,
                "subscription_item_details",
            )?;
            let typed = parent_scope.optional(&parent.parent_type, "type")?;
            if details.is_some() || typed.is_some_and(|t| t == "subscription_item_details") {
                let (subscription_id, proration) = match details {
                    Some(details) => {
                        let details_scope = parent_scope.child("subscription_item_details");
                        (
                            details_scope.id(&details.subscription, "subscription")?,
                            details_scope.flag(&details.proration, "proration")?,
                        )
                    }
                    None => (None, false),
                };
                return Ok(LineKind {
                    subscription_line: true,
                    subscription_id,
                    proration,
                });
            }
        }
        // Before basil: `type: "subscription"`, or an invoice item generated by a subscription
        // (prorations), which names it in `subscription`.
        let subscription_id = scope.id(&self.subscription, "subscription")?;
        let typed = scope.optional(&self.line_type, "type")?;
        Ok(LineKind {
            subscription_line: subscription_id.is_some()
                || typed.is_some_and(|t| t == "subscription"),
            subscription_id,
            proration: scope.flag(&self.proration, "proration")?,
        })
    }
}
