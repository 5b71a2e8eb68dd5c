//! The `vigie` binary: parses the command line and calls the libraries. Nothing else lives here.
//!
//! Exit codes: 0 success, 1 the command failed (a one-line `error:` says why), 2 the command
//! line was wrong. `vigie search` follows grep instead: 0 matches, 1 no match, 2 an error.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    vigie_server::memory::cap_arenas();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(err) => return cli::usage_error(err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
