//! `muster report …`: the coordinator's reports, as text or JSON. (Being
//! written: the reports part of issue 6.)

use anyhow::{Result, bail};
use clap::Subcommand;
use muster_core::Store;

/// Which report.
#[derive(Subcommand)]
pub enum ReportCommand {
    /// Per event: registered, checked in, walk-ins, no-shows, waitlisted.
    Events {
        #[arg(long)]
        json: bool,
    },
}

/// `muster report …`.
pub fn report(_store: &mut Store, _command: ReportCommand) -> Result<()> {
    bail!("reports are not available yet")
}
