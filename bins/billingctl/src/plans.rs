//! `billingctl plans check FILE`: the catalog validation the server runs at start-up.

use std::path::Path;

use billing_domain::Catalog;
use serde::Serialize;

use crate::cli::PlansCommand;
use crate::error::CtlError;
use crate::output::Output;

#[derive(Serialize)]
struct Valid {
    file: String,
    tiers: Vec<String>,
    prices: usize,
}

/// Checks the file: a summary when valid, else every problem with its place (exit code 1).
pub(crate) fn run(command: PlansCommand, out: &Output) -> Result<(), CtlError> {
    let PlansCommand::Check { file } = command;
    let path = file.display().to_string();
    let text = read_text(&file)?;
    match Catalog::from_toml_str(&text) {
        Ok(catalog) => {
            let valid = Valid {
                file: path,
                tiers: catalog
                    .tiers()
                    .iter()
                    .map(|t| t.id.as_str().to_owned())
                    .collect(),
                prices: catalog.tiers().iter().map(|t| t.price_ids.len()).sum(),
            };
            out.print(&valid, |v| {
                format!(
                    "{}: valid ({} tiers: {}; {} prices)",
                    v.file,
                    v.tiers.len(),
                    v.tiers.join(", "),
                    v.prices
                )
            })
        }
        Err(error) => {
            for problem in &error.problems {
                out.line(format_args!(
                    "{path}: {}: {}",
                    problem.place, problem.message
                ));
            }
            Err(CtlError::Catalog {
                file: path,
                problems: error.problems,
            })
        }
    }
}

fn read_text(file: &Path) -> Result<String, CtlError> {
    std::fs::read_to_string(file).map_err(|source| CtlError::Read {
        path: file.display().to_string(),
        source,
    })
}

/// The catalog in `file`, or why it cannot be used.
pub(crate) fn read(file: &Path) -> Result<Catalog, CtlError> {
    Catalog::from_toml_str(&read_text(file)?).map_err(|error| CtlError::Catalog {
        file: file.display().to_string(),
        problems: error.problems,
    })
}
