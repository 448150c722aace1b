//! Stripe-shaped random ids: `evt_1…`, `sub_1…`, `in_1…` carry an account fragment in the
//! middle, as Stripe's do; `cus_`/`si_` are 14 random characters; a charge shares its payment
//! intent's stem (`pi_3AbCdE…` / `ch_3AbCdE…`).

use std::collections::HashSet;

use rand::Rng;
use rand::rngs::StdRng;

const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` random characters of `[0-9A-Za-z]`.
pub fn alphanumeric(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())]))
        .collect()
}

/// `n` random characters of `[0-9A-Z]` (invoice prefixes, receipt numbers).
pub fn upper(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(ALPHANUMERIC[rng.random_range(0..36)]))
        .collect()
}

/// Makes the ids of one Stripe account, never the same one twice.
#[derive(Debug)]
pub struct IdMaker {
    fragment: String,
    issued: HashSet<String>,
}

impl IdMaker {
    /// An account with a random 10-character fragment.
    pub fn new(rng: &mut StdRng) -> Self {
        Self {
            fragment: alphanumeric(rng, 10),
            issued: HashSet::new(),
        }
    }

    fn fresh(&mut self, rng: &mut StdRng, make: impl Fn(&mut StdRng) -> String) -> String {
        loop {
            let id = make(rng);
            if self.issued.insert(id.clone()) {
                return id;
            }
        }
    }

    /// `{prefix}_1` + 5 random + the account fragment + 8 random (events, subscriptions,
    /// invoices, lines, payment methods).
    pub fn long(&mut self, rng: &mut StdRng, prefix: &str) -> String {
        let fragment = self.fragment.clone();
        self.fresh(rng, |rng| {
            format!(
                "{prefix}_1{}{fragment}{}",
                alphanumeric(rng, 5),
                alphanumeric(rng, 8)
            )
        })
    }

    /// `{prefix}_` + 14 random (customers, subscription items, requests).
    pub fn short(&mut self, rng: &mut StdRng, prefix: &str) -> String {
        self.fresh(rng, |rng| format!("{prefix}_{}", alphanumeric(rng, 14)))
    }

    /// A payment intent and its first charge, sharing Stripe's `3…` stem.
    pub fn payment(&mut self, rng: &mut StdRng) -> (String, String) {
        let fragment = self.fragment.clone();
        let stem = self.fresh(rng, |rng| format!("3{}{fragment}", alphanumeric(rng, 5)));
        let pi = self.fresh(rng, |rng| format!("pi_{stem}{}", alphanumeric(rng, 8)));
        let ch = self.charge_of(rng, &pi);
        (pi, ch)
    }

    /// Another charge (a later attempt) of payment intent `pi`.
    pub fn charge_of(&mut self, rng: &mut StdRng, pi: &str) -> String {
        let stem = pi
            .strip_prefix("pi_")
            .map_or("", |rest| &rest[..rest.len().saturating_sub(8)])
            .to_owned();
        self.fresh(rng, |rng| format!("ch_{stem}{}", alphanumeric(rng, 8)))
    }

    /// A Checkout Session id (`cs_live_a1…` or `cs_test_a1…` and 56 random characters).
    pub fn checkout_session(&mut self, rng: &mut StdRng, livemode: bool) -> String {
        let mode = if livemode { "live" } else { "test" };
        self.fresh(rng, |rng| format!("cs_{mode}_a1{}", alphanumeric(rng, 56)))
    }
}
