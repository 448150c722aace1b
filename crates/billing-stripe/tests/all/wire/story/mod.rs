//! The two purchase stories the fixtures tell, and the facts each fixture must yield.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::Value;

mod basil;
mod expected;
mod pre_basil;

pub(crate) use basil::BASIL;
pub(crate) use pre_basil::PRE_BASIL;

/// The ids, amounts and times of one fixture folder.
pub(crate) struct Story {
    pub(crate) folder: &'static str,
    pub(crate) livemode: bool,
    pub(crate) currency: &'static str,
    pub(crate) amount: i64,
    pub(crate) refund_amount: i64,
    pub(crate) dispute_amount: i64,
    pub(crate) email: &'static str,
    pub(crate) cus: &'static str,
    pub(crate) sub: &'static str,
    pub(crate) cs: &'static str,
    pub(crate) in_main: &'static str,
    pub(crate) pi: &'static str,
    pub(crate) ch_ok: &'static str,
    /// The charge of the first, failed, payment attempt.
    pub(crate) ch_failed: &'static str,
    pub(crate) re: &'static str,
    pub(crate) du: &'static str,
    pub(crate) trial_start: &'static str,
    pub(crate) trial_end: &'static str,
    pub(crate) paused_period_end: &'static str,
    pub(crate) resumed_at: &'static str,
    pub(crate) main_period_end: &'static str,
    pub(crate) next_payment_attempt: &'static str,
    pub(crate) canceled_at: &'static str,
    /// `(type, event id, created, api_version)` in story order.
    pub(crate) events: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

pub(crate) const USER_ID: &str = "user_123";
pub(crate) const PRICE_ID: &str = "price_pro_monthly";

/// Both stories.
pub(crate) const STORIES: [&Story; 2] = [&PRE_BASIL, &BASIL];

/// The folder of single real-world bodies (several API versions, no story), named
/// `<scenario>.<event type>.json`; their facts are spelled out in `tests/all/wire/real_world/`.
pub(crate) const REAL_WORLD: &str = "real-world";

/// Every fixture folder.
pub(crate) const FOLDERS: [&str; 3] = [PRE_BASIL.folder, BASIL.folder, REAL_WORLD];

/// The names (without `.json`) of every fixture in `folder`, sorted.
pub(crate) fn fixture_names(folder: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// A UTC time from RFC 3339.
pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// The path of one fixture.
pub(crate) fn fixture_path(folder: &str, event_type: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
        .join(format!("{event_type}.json"))
}

/// The bytes of one fixture.
pub(crate) fn fixture(folder: &str, event_type: &str) -> Vec<u8> {
    let path = fixture_path(folder, event_type);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// One fixture as a JSON value, to mutate.
pub(crate) fn fixture_json(folder: &str, event_type: &str) -> Value {
    serde_json::from_slice(&fixture(folder, event_type)).unwrap()
}

/// Serializes a (mutated) fixture back to bytes.
pub(crate) fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}
