//! `vigie backup FILE` and `vigie restore FILE`: a consistent copy of the embedded database
//! while the server runs, and putting one back while it does not (see
//! `vigie_store::backup`). On PostgreSQL, `pg_dump` and `pg_restore` do this job.
//!
//! `vigie storage migrate --to postgres://…`: everything the embedded database holds, copied
//! into PostgreSQL (see `vigie_store::transfer`), for a team that outgrows one machine.

use super::progress::Bar;
use super::StorageArgs;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigie_store::{backup, Location};

#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// Copy everything from the data directory's SQLite database into an empty PostgreSQL
    /// database (stop the server first; run again to resume an interrupted copy).
    Migrate(MigrateArgs),
}

#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into, e.g. postgres://vigie@db/vigie (empty, or
    /// holding an interrupted copy)
    #[arg(long, value_name = "URL")]
    to: String,
    #[command(flatten)]
    storage: StorageArgs,
}

pub async fn run(command: StorageCommand) -> anyhow::Result<()> {
    match command {
        StorageCommand::Migrate(args) => migrate(args).await,
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    if !args.to.starts_with("postgres://") && !args.to.starts_with("postgresql://") {
        anyhow::bail!(
            "--to takes a PostgreSQL URL (postgres://user@host/database), not {:?}",
            args.to
        );
    }
    let config = args.storage.load(|_| {})?;
    let db = match Location::resolve(config.database_url(), &config.data)? {
        Location::Sqlite(db) => db,
        Location::Postgres(from) => anyhow::bail!(
            "the data is already in PostgreSQL ({}); `vigie storage migrate` copies an \
             embedded database: point --data at the data directory `vigie serve` used",
            vigie_store::redact_url(&from)
        ),
    };
    if !db.exists() {
        anyhow::bail!(
            "no database at {}: point --data at the data directory `vigie serve` used",
            db.display()
        );
    }
    // No server may write to the source while it is copied.
    let _lock = backup::DataLock::take(&db)?;
    let target = vigie_store::redact_url(&args.to);
    let bar = Bar::new("copying");
    let copied = vigie_store::transfer::to_postgres(&db, &args.to, |at| {
        bar.draw(
            at.done,
            at.total,
            &format!("{} of {} rows  {}", at.done, at.total, at.table),
        )
    })
    .await;
    bar.finish();
    let copied = copied.map_err(|e| {
        anyhow::anyhow!("{e}\nwhat was copied stays copied: once the cause is fixed, run the same command again to go on")
    })?;
    println!("{:<28} {:>12} {:>12}", "table", "rows", "in postgres");
    for table in copied.tables.iter().filter(|t| t.rows > 0) {
        println!(
            "{:<28} {:>12} {:>12}",
            table.table, table.rows, table.copied
        );
    }
    let rows: u64 = copied.tables.iter().map(|t| t.rows).sum();
    let empty = copied.tables.iter().filter(|t| t.rows == 0).count();
    println!(
        "{} {rows} rows in {} tables ({empty} empty) from {} to {target}; every count matches",
        if copied.resumed {
            "finished copying"
        } else {
            "copied"
        },
        copied.tables.len(),
        db.display(),
    );
    if !copied.left_out.is_empty() {
        println!(
            "not copied (SQLite's own search index; PostgreSQL searches without it): {}",
            copied.left_out.join(", ")
        );
    }
    println!(
        "next: start every instance with --database {target} (or VIGIE_DATABASE_URL); keep \
         {} as a backup until you are happy",
        db.display()
    );
    Ok(())
}

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
    let (stop, shown) = show_progress(partial_of(&args.file), total);
    let made = backup::backup(&db, &args.file);
    let _ = stop.send(());
    let _ = shown.join();
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

/// The copy's size against the database's, redrawn until told to stop.
fn show_progress(
    partial: PathBuf,
    total: u64,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let shown = std::thread::spawn(move || {
        let bar = Bar::new("backing up");
        loop {
            let done = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            let detail = format!("{} of {}", human_bytes(done), human_bytes(total));
            bar.draw(done, total, &detail);
            if stopped.recv_timeout(Duration::from_millis(200)).is_ok() {
                bar.finish();
                return;
            }
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
