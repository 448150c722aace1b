//! Realistic Stripe webhook streams for tests and load: hundreds of customers' journeys through
//! Stripe (subscriptions with trials, renewals, dunning, plan changes, cancelations and pauses;
//! one-time Checkout purchases and refunds), every event rendered as a webhook body with exactly
//! the shape of the Stripe adapter's fixtures in one of two API versions (`2025-03-31.basil`
//! and the pre-basil `2023-10-16`/`2024-06-20`), with fresh Stripe-shaped ids.
//!
//! A seed fixes everything. [`Scenario::generate`] is the usual entry: a [`Stream`] of unique
//! events in time order, and a delivery order over it with bounded local reordering and exact
//! re-deliveries ([`stream::delivery_order`]). [`oracle::expected`] says, from what the
//! generator meant and not from any implementation, what a correct ingester must end with:
//! each subscription equal to its newest `customer.subscription.*` snapshot, one credit grant
//! per paid invoice, payments and refunds at their cumulative totals, every event stored once
//! and done. The comparisons with a stored state ([`oracle::subscription_diff`],
//! [`oracle::event_problem`], [`oracle::payment_problems`]) take plain values, so a test that
//! reads the store through the application and a load tool that reads the tables with SQL
//! judge alike.
//!
//! Every generated body is parsed back with [`billing_stripe::parse_event`] while generating
//! and must say what was meant ([`stream::check_parsed`]); a body that does not is an
//! [`Error`]. The generator's own invariants (a fixture has every field it sets, two snapshots
//! of a subscription never share a second) are asserted and panic on a bug of the generator,
//! never on input.
//!
//! ```
//! use billing_streamgen::{Options, Scenario};
//!
//! let scenario = Scenario::generate(7, &Options {
//!     events: 50,
//!     window: Some(4),
//!     duplicates_percent: 10,
//!     active_customers: None,
//! })?;
//! assert!(scenario.stream.events.len() >= 50);
//! assert!(scenario.order.len() >= scenario.stream.events.len());
//! # Ok::<(), billing_streamgen::Error>(())
//! ```
#![warn(missing_docs)]

pub mod fixtures;
pub mod ids;
pub mod journey;
pub mod model;
pub mod oracle;
pub mod prices;
pub mod render;
pub mod stream;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use oracle::{Expected, expected};
pub use stream::{Event, Stream, WALL_START, delivery_order};

/// What can go wrong while generating or judging a stream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A generated body is not accepted by the Stripe adapter's parser.
    #[error("generated {event_type} {id} does not parse: {reason}\n{body}")]
    Unparsable {
        /// The event's id.
        id: String,
        /// The event's type.
        event_type: &'static str,
        /// The parser's error.
        reason: String,
        /// The body as generated.
        body: String,
    },
    /// A generated body parses, but to something other than what the generator meant.
    #[error("generated {event_type} {id} parses to something else: {problem}\n{body}")]
    Misparsed {
        /// The event's id.
        id: String,
        /// The event's type.
        event_type: &'static str,
        /// The first field that differs.
        problem: String,
        /// The body as generated.
        body: String,
    },
    /// The catalog has no tier for a price the generator bills.
    #[error("price {0} is not in the catalog (the generator bills the prices of plans.toml)")]
    PriceNotInCatalog(&'static str),
}

/// How big a scenario is and how it is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Events to generate at least (whole journeys are added until there are this many).
    pub events: usize,
    /// How far a delivery may move from its place in time order; `None` draws it from the
    /// seed, in `1..=64`.
    pub window: Option<usize>,
    /// Percent of the events delivered a second time.
    pub duplicates_percent: u32,
    /// About how many customers are active at once; `None` draws it from the seed, in
    /// `4..=16`.
    pub active_customers: Option<u32>,
}

/// One seeded run: the stream and the order in which it is delivered.
#[derive(Debug)]
pub struct Scenario {
    /// The seed everything was drawn from.
    pub seed: u64,
    /// The unique events, in time order.
    pub stream: Stream,
    /// The deliveries: indices into `stream.events`, each event at least once.
    pub order: Vec<usize>,
    /// The reordering window used.
    pub window: usize,
    /// About how many customers are active at once, which sets how closely journeys
    /// interleave.
    pub active_customers: u32,
}

impl Scenario {
    /// Generates the scenario of `seed`: the renderer's product ids, the number of customers
    /// active at once and the window (each drawn even when `options` fixes it, so fixing one
    /// changes nothing else), the stream, then the delivery order, all drawn from one
    /// generator seeded with `seed` in that order.
    ///
    /// # Errors
    ///
    /// [`Error::Unparsable`] or [`Error::Misparsed`] when a generated body is not read back as
    /// meant (a defect of the generator or of the parser).
    pub fn generate(seed: u64, options: &Options) -> Result<Self, Error> {
        let mut rng = StdRng::seed_from_u64(seed);
        let renderer = render::Renderer::new(&mut rng);
        let drawn_customers = rng.random_range(4..=16);
        let active_customers = options.active_customers.unwrap_or(drawn_customers);
        let drawn_window = rng.random_range(1..=64);
        let window = options.window.unwrap_or(drawn_window);
        let stream = stream::generate(&mut rng, &renderer, options.events, active_customers)?;
        let order = stream::delivery_order(
            &mut rng,
            stream.events.len(),
            window,
            options.duplicates_percent,
        );
        Ok(Self {
            seed,
            stream,
            order,
            window,
            active_customers,
        })
    }
}

/// The example catalog (`plans.toml` at the workspace root, linked into this crate so it is
/// packaged with it), whose prices the generator bills.
///
/// # Panics
///
/// Never in a build of this workspace: the file is compiled in and read by the catalog's own
/// tests; a panic means it was edited into an invalid catalog.
pub fn example_catalog() -> billing_domain::Catalog {
    billing_domain::Catalog::from_toml_str(include_str!("../plans.toml"))
        .unwrap_or_else(|e| panic!("plans.toml is not a valid catalog: {e}"))
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
