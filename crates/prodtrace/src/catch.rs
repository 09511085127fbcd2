//! `prodtrace catch` (not yet implemented).

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    bail!("prodtrace catch is not implemented yet")
}
