//! The command line: one module per command, each a thin layer over `vigie-server`.
//!
//! Admin commands (`user`, `token`, `project`) work offline on the data directory or database
//! URL, with the same configuration layers as `serve`, so a script can bootstrap an installation
//! before or while the server runs.

mod celery;
mod config;
mod issues;
mod job;
mod logs;
mod progress;
mod project;
mod report;
mod serve;
mod storage;
mod token;
mod user;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use vigie_server::{Config, Overrides};
use vigie_store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "vigie",
    version,
    about = "Vigie: errors, logs, jobs and alerts for the background work of small web apps, in one binary.",
    after_help = "Start with `vigie serve`, then open the address it prints.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: UI, API and ingest on one port.
    Serve(serve::ServeArgs),
    /// Show Vigie's configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Manage user accounts (works offline, on the data directory).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage API tokens (works offline, on the data directory).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Manage projects (works offline, on the data directory).
    #[command(subcommand)]
    Project(project::ProjectCommand),
    /// Run a command as a job, list jobs, follow one (talks to a running Vigie).
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Search stored logs (talks to a running Vigie); exits 1 when nothing matches.
    Search(logs::SearchArgs),
    /// Show the latest log records; -f keeps printing new ones (talks to a running Vigie).
    Tail(logs::TailArgs),
    /// List and show error issues (talks to a running Vigie).
    #[command(subcommand)]
    Issues(issues::IssuesCommand),
    /// Inspect and control Celery workers: inspect, revoke, rate-limit, pool, purge… (talks
    /// to a running Vigie, which reaches the broker).
    #[command(subcommand)]
    Celery(celery::CeleryCommand),
    /// Reports: `vigie report incident --from "2025-01-10 22:15" --to 22:30` (talks to a
    /// running Vigie).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Import log files (nginx, PostgreSQL, syslog, journald, Python, Celery, …), offline or
    /// into a running Vigie (--url/--dsn); --follow keeps reading them as they grow.
    Import(logs::ImportArgs),
    /// Write a consistent copy of the embedded database to FILE (the server may keep running).
    Backup(storage::BackupArgs),
    /// Put a backup made by `vigie backup` in place of the database (stop the server first).
    Restore(storage::RestoreArgs),
    /// Move the data elsewhere: `vigie storage migrate --to postgres://…` copies the embedded
    /// database into PostgreSQL.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
}

/// Where the data is: the options every command that opens the store takes.
#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// Configuration file [default: ./vigie.toml if present]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory holding the SQLite database [default: ./vigie-data]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Database URL instead of the data directory, e.g. postgres://user@host/vigie
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

impl StorageArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            data: self.data.clone(),
            database_url: self.database.clone(),
            ..Overrides::default()
        }
    }

    /// The layered configuration (file, environment, these flags).
    fn load(&self, extra: impl FnOnce(&mut Overrides)) -> anyhow::Result<Config> {
        let mut overrides = self.overrides();
        extra(&mut overrides);
        Ok(Config::load(&overrides, std::env::vars())?)
    }

    /// Whether a flag names the store (then commands that could also reach a server use it).
    fn names_a_store(&self) -> bool {
        self.config.is_some() || self.data.is_some() || self.database.is_some()
    }

    /// Opens the store offline, migrating it and creating the default project if needed.
    async fn open(&self) -> anyhow::Result<(Config, Arc<dyn Store>)> {
        let config = self.load(|_| {})?;
        let store = vigie_server::open_store(&config).await?;
        let start = vigie_server::accounts::manage::Start::default();
        vigie_server::accounts::manage::bootstrap(store.as_ref(), start).await?;
        Ok((config, store))
    }
}

/// Runs the command; the exit code is success unless the command passes one through
/// (`vigie job run` exits as the command it wraps).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let done = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Config(cmd) => config::run(cmd),
        Command::User(cmd) => user::run(cmd).await,
        Command::Token(cmd) => token::run(cmd).await,
        Command::Project(cmd) => project::run(cmd).await,
        Command::Job(cmd) => return job::run(cmd).await,
        // Like grep: 1 means "no match", so a failure must say 2.
        Command::Search(args) => {
            return logs::search(args).await.or_else(|err| {
                eprintln!("error: {err:#}");
                Ok(ExitCode::from(2))
            })
        }
        Command::Tail(args) => return logs::tail(args).await,
        Command::Import(args) => return logs::import(args).await,
        Command::Issues(cmd) => issues::run(cmd).await,
        Command::Celery(cmd) => celery::run(cmd).await,
        Command::Report(cmd) => report::run(cmd).await,
        Command::Backup(args) => storage::backup(args),
        Command::Restore(args) => storage::restore(args),
        Command::Storage(cmd) => storage::run(cmd).await,
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// Help and version go to stdout with exit 0; a wrong command line gets one line on stderr and
/// exit 2.
/// Colours only on a terminal, and never with `NO_COLOR` set (<https://no-color.org>): output
/// sent to a file or a pipe stays plain text.
pub fn colour_on(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none()
}

pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            // clap explains over several lines; keep the explanation, drop the usage block.
            let rendered = err.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} ({})", message.join(" "), next_step(&err));
            ExitCode::from(2)
        }
    }
}

/// What to do about a wrong command line: where a missing API token or DSN comes from, or
/// where the usage is. Read from the error's context (the arguments clap found missing), not
/// from its English text.
fn next_step(err: &clap::Error) -> &'static str {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let missing = |flag: &str| {
        err.kind() == ErrorKind::MissingRequiredArgument
            && matches!(
                err.get(ContextKind::InvalidArg),
                Some(ContextValue::Strings(args)) if args.iter().any(|a| a.split(' ').next() == Some(flag))
            )
    };
    if missing("--token") {
        "make one with `vigie token create --name cli` on the server's machine or in Settings → \
         API tokens, then pass --token or set VIGIE_TOKEN"
    } else if missing("--dsn") {
        "the project's DSN is the one `vigie serve` printed, also in Settings → Projects; pass \
         --dsn or set VIGIE_DSN"
    } else {
        "see `vigie --help` or `vigie <command> --help`"
    }
}

/// Prints rows as aligned columns under a header.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
