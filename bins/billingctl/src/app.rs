//! The server's configuration and the application over its database, as the commands that
//! work on the database open them.

use std::path::PathBuf;

use billing_app::BillingApp;
use billing_http::Parts;
use billing_server::config::Config;
use billing_store_diesel::DieselStore;

use crate::error::CtlError;

/// Reads the configuration as the server does (`--config`, else `./billing.toml` when
/// present, then the environment).
pub(crate) fn config(file: &Option<PathBuf>) -> Result<Config, CtlError> {
    Ok(Config::load(file.as_deref())?)
}

/// The application the server would serve with this configuration (`Parts::app`: the same
/// catalog, retention, retry schedule, webhook decoder and Stripe client), over the
/// configured database: its pool built, no connection opened yet, no migration run.
pub(crate) fn open(config: &Config) -> Result<BillingApp<DieselStore>, CtlError> {
    let parts = Parts::unmigrated(&config.server)?;
    Ok(parts.app(&config.server))
}
