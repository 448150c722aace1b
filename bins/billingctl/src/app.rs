//! The server's configuration and the application over its database, as the commands that
//! work on the database open them.

use std::path::PathBuf;
use std::sync::Arc;

use billing_app::{AppSettings, BillingApp};
use billing_ports::SystemClock;
use billing_server::config::Config;
use billing_store_diesel::DieselStore;

use crate::error::CtlError;

/// Reads the configuration as the server does (`--config`, else `./billing.toml` when
/// present, then the environment).
pub(crate) fn config(file: &Option<PathBuf>) -> Result<Config, CtlError> {
    Ok(Config::load(file.as_deref())?)
}

/// The application over the configured database (its pool built, no connection opened yet,
/// no migration run) with the configured catalog and retention, the system clock and no
/// Stripe gateway.
pub(crate) fn open(config: &Config) -> Result<BillingApp<DieselStore>, CtlError> {
    let settings = &config.server;
    let store = settings.database.open()?;
    Ok(BillingApp::new(
        Arc::new(store),
        Arc::new(settings.catalog.clone()),
        Arc::new(SystemClock),
        None,
        AppSettings {
            retention: settings.event_retention,
            ..AppSettings::default()
        },
    ))
}
