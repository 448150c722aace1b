//! One feature check against a running server: `BILLING_URL` (default
//! `http://127.0.0.1:8080`) and `BILLING_API_KEY`, then `check USER FEATURE`. Exits 0 when
//! allowed, 1 when denied, 2 when billing cannot answer or the input is wrong.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use billing_client::{Client, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(user), Some(feature)) = (args.next(), args.next()) else {
        eprintln!("usage: check USER FEATURE (BILLING_URL, BILLING_API_KEY in the environment)");
        return ExitCode::from(2);
    };
    let url = std::env::var("BILLING_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("BILLING_API_KEY").unwrap_or_default();
    let billing = match Client::builder(url).api_key(key).build() {
        Ok(billing) => billing,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match billing.require_feature(&user, &feature).await {
        Ok(answer) => {
            println!("allowed: tier {} ({})", answer.tier, answer.reason);
            ExitCode::SUCCESS
        }
        Err(Error::Denied { reason }) => {
            println!("denied: {reason}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
