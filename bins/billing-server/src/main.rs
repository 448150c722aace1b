//! The billing server: `billing-server` (serve), `billing-server migrate`, `billing-server demo`.
//! It only reads the configuration and wires the crates together.

mod config;
mod demo;
mod server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Stripe billing server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default): runs pending migrations first.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Send a signed event sequence to a running server and print the user's entitlements.
    Demo(demo::Args),
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Demo(args)) = cli.command {
        return report(demo::run(args).await);
    }
    let config = match config::Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    server::init_tracing(config.log_format);
    match cli.command {
        Some(Command::Migrate) => report(server::migrate(&config).await),
        _ => report(server::serve(config).await),
    }
}

fn report(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = error.to_string(), "fatal");
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
