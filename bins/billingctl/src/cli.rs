//! The command line (clap). Each command group is an enum here and a module of the same name
//! that runs it; a new command is a variant here and a function there.

use std::path::PathBuf;

use billing_ports::{DeliveryStatus, EventStatus};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::trigger::Scenario;
use crate::when::{Age, Since};

/// The billing server's operator tool.
#[derive(Parser)]
#[command(
    name = "billingctl",
    version,
    about = "Operate the billing server: events, API keys, migrations, plans, test events"
)]
pub(crate) struct Cli {
    /// A TOML configuration file, as the server's (default: ./billing.toml when present);
    /// environment variables override it.
    #[arg(long, global = true, env = "BILLING_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Print one JSON document on stdout (stable field names) instead of text, and no
    /// progress bar.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The command groups.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Pushes of the change feed to the product's URLs (PUSH_URLS): list, replay.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Stored Stripe events: list, show, replay, purge.
    #[command(subcommand)]
    Events(EventsCommand),
    /// API keys for /v1 stored in the database (besides BILLING_API_KEYS).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply pending database migrations, or only list them with --check.
    Migrate(MigrateArgs),
    /// The plan catalog.
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Reconcile with Stripe: catch up from the Events API (after the stored cursor by
    /// default) through the server's ingest, and with --since/--customer/--all sweep the
    /// subscriptions, repairing and reporting each difference (before, after).
    Reconcile(ReconcileArgs),
    /// Send a realistic, signed sequence of Stripe events to a server (offline, like
    /// `stripe trigger`) and print the user's entitlements after each step.
    Trigger(TriggerArgs),
}

/// `billingctl events …`.
#[derive(Subcommand)]
pub(crate) enum EventsCommand {
    /// The stored events, newest received first.
    List(ListArgs),
    /// One stored event: its times, attempts, last error and payload.
    Show {
        /// The event id (`evt_…`).
        id: String,
    },
    /// Re-apply stored events through the same exactly-once ingest as a delivery and say
    /// what became of each (applied, ignored, stale, duplicate, failed, not found): the given
    /// ids, or every failed event with --failed. Exit code 1 when one is still not applied.
    Replay(ReplayArgs),
    /// Delete done events (processed, ignored, stale) received before a given age, in
    /// batches, as the server's retention job does; failed events are never purged.
    Purge {
        /// How old a done event must be: `30d`, `2w`, … (at least 3 days without --force).
        #[arg(long)]
        older_than: Age,
        /// Purge events younger than 3 days too: Stripe may still redeliver them, and a
        /// redelivery of a purged event is applied again.
        #[arg(long)]
        force: bool,
    },
}

/// What `events replay` re-applies.
#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// The event ids (`evt_…`), replayed in this order.
    #[arg(required_unless_present = "failed", conflicts_with = "failed")]
    pub(crate) ids: Vec<String>,
    /// Every failed event, whatever its failure kind or attempts (oldest id first).
    #[arg(long)]
    pub(crate) failed: bool,
    /// With --failed: only events received since an age (`3d`, `12h`) or an RFC 3339 time.
    #[arg(long, requires = "failed")]
    pub(crate) since: Option<Since>,
}

/// The filters of `events list`.
#[derive(Args)]
pub(crate) struct ListArgs {
    /// Only events in this status.
    #[arg(long)]
    pub(crate) status: Option<StatusArg>,
    /// Only events of this Stripe type (e.g. `invoice.paid`).
    #[arg(long = "type")]
    pub(crate) event_type: Option<String>,
    /// Only events received since: an age (`3d`, `12h`) or an RFC 3339 time.
    #[arg(long)]
    pub(crate) since: Option<Since>,
    /// At most this many.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) limit: u32,
}

/// An event status on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum StatusArg {
    /// Applying it failed; Stripe's next delivery (or a replay) retries it.
    Failed,
    /// Older than what was already applied; changed nothing.
    Stale,
    /// Applied.
    Processed,
    /// A type the server does not act on.
    Ignored,
    /// Claimed by a transaction that has not committed.
    Received,
}

impl From<StatusArg> for EventStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Failed => EventStatus::Failed,
            StatusArg::Stale => EventStatus::Stale,
            StatusArg::Processed => EventStatus::Processed,
            StatusArg::Ignored => EventStatus::Ignored,
            StatusArg::Received => EventStatus::Received,
        }
    }
}

/// `billingctl deliveries …`.
#[derive(Subcommand)]
pub(crate) enum DeliveriesCommand {
    /// The push deliveries, newest first, each with its last attempt's status or error.
    List {
        /// Only deliveries in this status.
        #[arg(long)]
        status: Option<DeliveryStatusArg>,
        /// Only this endpoint's (its `ep_…` id).
        #[arg(long)]
        endpoint: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        limit: u32,
    },
    /// Send deliveries again at the pusher's next round (their failure count reset): the
    /// given ids, or every failed delivery with --failed. The server must be running with
    /// PUSH_URLS to send them.
    Replay {
        /// The delivery ids.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        ids: Vec<i64>,
        /// Every failed (given up) delivery.
        #[arg(long)]
        failed: bool,
        /// With --failed: only this endpoint's (its `ep_…` id).
        #[arg(long, requires = "failed")]
        endpoint: Option<String>,
    },
}

/// A delivery status on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DeliveryStatusArg {
    /// Waiting for its next attempt.
    Pending,
    /// Accepted by the product (2xx).
    Succeeded,
    /// Given up after the last allowed attempt.
    Failed,
}

impl From<DeliveryStatusArg> for DeliveryStatus {
    fn from(status: DeliveryStatusArg) -> Self {
        match status {
            DeliveryStatusArg::Pending => DeliveryStatus::Pending,
            DeliveryStatusArg::Succeeded => DeliveryStatus::Succeeded,
            DeliveryStatusArg::Failed => DeliveryStatus::Failed,
        }
    }
}

/// `billingctl keys …`.
#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key and print it once; only its SHA-256 is stored.
    Create {
        /// A unique name (letters, digits, `.`, `_`, `-`; up to 64), e.g. the client service.
        name: String,
    },
    /// Every stored key: name, prefix, created, revoked.
    List,
    /// Revoke a key: servers refuse it within API_KEYS_REFRESH_MS.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// `billingctl migrate [--check]`.
#[derive(Args)]
pub(crate) struct MigrateArgs {
    /// Apply nothing: list the pending migrations and exit with 1 when there are any.
    #[arg(long)]
    pub(crate) check: bool,
}

/// `billingctl plans …`.
#[derive(Subcommand)]
pub(crate) enum PlansCommand {
    /// Validate a catalog file: every problem with its place; exit code 1 on problems.
    Check {
        /// The catalog file (TOML, like plans.toml).
        file: PathBuf,
    },
}

/// `billingctl reconcile …`: the scope (at most one; without any, the events after the
/// stored cursor, as the scheduled reconciliation does) and `--dry-run`.
#[derive(Args)]
pub(crate) struct ReconcileArgs {
    /// The events created since an age (`3d`, `12h`) or an RFC 3339 time (at most Stripe's
    /// 30 days back), then the subscriptions of the customers they name.
    #[arg(long, conflicts_with_all = ["customer", "all"])]
    pub(crate) since: Option<Since>,
    /// One customer (`cus_…`): the window's events naming it, then its subscriptions.
    #[arg(long, conflicts_with = "all")]
    pub(crate) customer: Option<String>,
    /// The events after the stored cursor, then every subscription of the account.
    #[arg(long)]
    pub(crate) all: bool,
    /// Change nothing: list and compare, and report what a run would ingest and repair.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `billingctl trigger SCENARIO …`.
#[derive(Args)]
pub(crate) struct TriggerArgs {
    /// The story to play.
    pub(crate) scenario: Scenario,
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// The webhook signing secret the server accepts (`whsec_…`; the first of a
    /// comma-separated list).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    /// An API key the server accepts, to read the user's entitlements after each step (the
    /// first of a comma-separated list); without one, entitlements are not shown.
    #[arg(long, env = "BILLING_API_KEYS", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
    /// The plan catalog whose cheapest paid price the subscriptions are on (default: the
    /// configuration's PLANS_FILE, as the server reads it).
    #[arg(long)]
    pub(crate) plans: Option<PathBuf>,
}
