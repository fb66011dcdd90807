//! `muster import` and `muster export`: CSV and JSON in and out of the
//! store. (Being written: the import/export part of issue 6.)

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use muster_core::Store;

/// What `muster import` reads.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// Contacts from a CSV file.
    Contacts {
        /// The CSV file.
        file: PathBuf,
    },
}

/// What `muster export` writes.
#[derive(Args)]
pub struct ExportArgs {
    /// contacts, signups, donations, hours or feedback.
    pub what: String,
    /// csv or json.
    #[arg(long, default_value = "csv")]
    pub format: String,
}

/// `muster import …`.
pub fn import(_store: &mut Store, _command: ImportCommand) -> Result<()> {
    bail!("import is not available yet")
}

/// `muster export …`.
pub fn export(_store: &mut Store, _args: ExportArgs) -> Result<()> {
    bail!("export is not available yet")
}
