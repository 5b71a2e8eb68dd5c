//! `vigie config default`: print the documented configuration file.

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a fully documented vigie.toml with every default (redirect it to a file to start).
    Default,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Default => print!("{}", vigie_server::DEFAULT_TOML),
    }
    Ok(())
}
