//! `vigie backup FILE` and `vigie restore FILE`: a consistent copy of the embedded database
//! while the server runs, and putting one back while it does not (see
//! `vigie_store::backup`). On PostgreSQL, `pg_dump` and `pg_restore` do this job.

use super::StorageArgs;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigie_store::{backup, Location};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The file to write (it must not exist yet), e.g. vigie-2026-11-23.db
    file: PathBuf,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A file made by `vigie backup`
    file: PathBuf,
    #[command(flatten)]
    storage: StorageArgs,
}

/// The SQLite database the configuration names; PostgreSQL is refused with what to use.
fn sqlite_database(storage: &StorageArgs, verb: &str) -> anyhow::Result<PathBuf> {
    let config = storage.load(|_| {})?;
    match Location::resolve(config.database_url(), &config.data)? {
        Location::Sqlite(db) => Ok(db),
        Location::Postgres(_) => anyhow::bail!(
            "this Vigie keeps its data in PostgreSQL; {verb} with PostgreSQL's own tools \
             (pg_dump -Fc / pg_restore, see the README's \"Backups\")"
        ),
    }
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let db = sqlite_database(&args.storage, "back it up")?;
    let total = backup::database_bytes(&db)?;
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| show_progress(partial_of(&args.file), total));
    let made = backup::backup(&db, &args.file);
    if let Some((stop, shown)) = progress {
        let _ = stop.send(());
        let _ = shown.join();
    }
    let info = made?;
    eprintln!(
        "backed up {} to {} ({}, schema {}); `vigie restore {}` puts it back",
        db.display(),
        args.file.display(),
        human_bytes(info.bytes),
        info.schema_version,
        args.file.display()
    );
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let db = sqlite_database(&args.storage, "restore it")?;
    let info = backup::restore(&args.file, &db)?;
    eprintln!(
        "restored {} ({}, schema {}) as {}; start `vigie serve` to use it",
        args.file.display(),
        human_bytes(info.bytes),
        info.schema_version,
        db.display()
    );
    Ok(())
}

fn partial_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// A progress bar on stderr (a terminal only): the copy's size against the database's, redrawn
/// until told to stop.
fn show_progress(
    partial: PathBuf,
    total: u64,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let shown = std::thread::spawn(move || loop {
        let done = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        let fraction = if total == 0 {
            1.0
        } else {
            (done as f64 / total as f64).min(1.0)
        };
        let filled = (fraction * 30.0) as usize;
        eprint!(
            "\rbacking up [{}{}] {:>5.1}%  {} of {}",
            "#".repeat(filled),
            "-".repeat(30 - filled),
            fraction * 100.0,
            human_bytes(done),
            human_bytes(total)
        );
        let _ = std::io::stderr().flush();
        if stopped.recv_timeout(Duration::from_millis(200)).is_ok() {
            eprintln!();
            return;
        }
    });
    (stop, shown)
}

fn human_bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= MIB {
        format!("{:.1} MiB", n as f64 / MIB)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}
