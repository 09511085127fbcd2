//! `prodtrace latency` (not yet implemented).

use anyhow::{bail, Result};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    bail!("prodtrace latency is not implemented yet")
}
