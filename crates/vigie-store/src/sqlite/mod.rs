//! The embedded engine: one SQLite file in WAL mode, one writer thread, a pool of readers.
//!
//! ```text
//!   Db::write ─ Work ─▶ writer::Writer (one thread, group commit, a savepoint per work
//!                        after the first)
//!   Db::read  ─ Work ─▶ readers::Readers (read-only connections on blocking threads)
//!                        each runs the work on a SqliteTx with `run_now`
//! ```
//!
//! Checkpoints of the WAL run on their own thread ([`checkpoint`]), never inside a commit.

pub mod backup;
mod checkpoint;
mod lower;
mod readers;
mod schema;
mod tx;
mod writer;

use crate::engine::{Engine, Work};
use crate::migrations;
use crate::tx::run_now;
use crate::{Backend, Result, StoreError};
use rusqlite::{params, Connection, OpenFlags};
use std::future::Future;
use std::path::{Path, PathBuf};
use tx::SqliteTx;
use vigie_core::Timestamp;

/// Read-only connections kept for parallel reads. Two cores here, small servers in production:
/// four covers concurrent page loads without holding much memory.
const READERS: usize = 4;

pub(crate) struct SqliteEngine {
    path: PathBuf,
    writer: writer::Writer,
    readers: readers::Readers,
    checkpointer: checkpoint::Checkpointer,
}

impl SqliteEngine {
    /// Opens the database at `path`, creating its directory, the file and the schema as needed.
    pub(crate) async fn open(path: &Path) -> Result<SqliteEngine> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking({
            let path = path.clone();
            move || open_writer(&path)
        })
        .await
        .map_err(|e| StoreError::Open {
            target: path.display().to_string(),
            reason: format!("the opening thread failed: {e}"),
        })??;
        Ok(SqliteEngine {
            writer: writer::Writer::start(conn)?,
            readers: readers::Readers::new(&path, READERS),
            checkpointer: checkpoint::Checkpointer::start(&path)?,
            path,
        })
    }
}

fn open_error(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Open {
        target: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn open_writer(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| open_error(path, e))?;
    }
    let installed = schema::install_image(path)
        .map_err(|e| open_error(path, format!("cannot write a fresh database: {e}")))?;
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    conn.execute_batch(
        // WAL: readers never block the writer and the writer never blocks readers.
        "PRAGMA journal_mode = WAL;
         -- FULL: a commit is on disk before it is acknowledged, as Vigie promises its clients.
         -- Group commit makes this affordable: one fsync covers a whole batch of writes.
         PRAGMA synchronous = FULL;
         -- Sessions of a deleted user go with it; SQLite enforces references only when asked.
         PRAGMA foreign_keys = ON;
         -- Offline admin commands (`vigie user add`) may hold the lock briefly: wait, don't fail.
         PRAGMA busy_timeout = 5000;
         -- 8 MiB of page cache for the writer: enough for index pages, small for the idle RSS.
         PRAGMA cache_size = -8000;
         -- Checkpoints run on their own thread (see checkpoint.rs), never inside a commit.
         PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(|e| open_error(path, e))?;
    lower::install(&conn).map_err(|e| open_error(path, e))?;
    conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
    if installed {
        // The image recorded its migrations with no time: they were applied now. Nobody
        // waits on this stamp, so it is committed without a sync: the first commit anybody
        // waits on (the installation's accounts, `accounts::manage::bootstrap`) syncs the
        // write-ahead log with it, which saves a fresh start the log's header sync and one
        // commit's. A crash before that loses only the time: `applied_at` stays 0, as in
        // the image (the log's checksums drop a frame that did not reach the disk whole).
        conn.execute_batch("PRAGMA synchronous = OFF")
            .and_then(|()| {
                conn.execute(
                    "UPDATE schema_migrations SET applied_at = ?1",
                    [Timestamp::now().millis()],
                )
            })
            .and_then(|_| conn.execute_batch("PRAGMA synchronous = FULL"))
            .map_err(|e| open_error(path, e))?;
        tracing::info!(
            path = %path.display(),
            migrations = migrations::ALL.len(),
            "created a fresh sqlite database"
        );
    }
    migrate(&conn)?;
    Ok(conn)
}

/// Statements the writer keeps prepared. rusqlite keeps 16 by default, fewer than one Celery
/// batch uses (each multi-row insert is its own text for each row count), so every batch
/// prepared its statements again: SQLite parsing SQL and matching each of several hundred
/// `$N` names against the ones before it was a quarter of the writer's time at 40,000
/// events/s. 64 did as well as 256 (BENCHMARKS.md, Celery).
const WRITER_STATEMENTS: usize = 64;

/// Statements each reader keeps prepared: a page asks a dozen queries, and the pages a user
/// goes through share a reader, so rusqlite's 16 were prepared again page after page.
const READER_STATEMENTS: usize = 64;

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(path, e))?;
    conn.execute_batch(
        // Readers wait out a checkpoint rather than fail.
        "PRAGMA busy_timeout = 5000;
         -- 2 MiB each: reads here are small and indexed; memory stays low with four readers.
         PRAGMA cache_size = -2000;",
    )?;
    lower::install(&conn).map_err(|e| open_error(path, e))?;
    conn.set_prepared_statement_cache_capacity(READER_STATEMENTS);
    Ok(conn)
}

/// Vigie's record of the migrations applied, made before any of them.
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";

fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(MIGRATIONS_TABLE)?;
    let current: u32 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let pending: Vec<_> = migrations::pending(current)?.collect();
    if pending.is_empty() {
        return Ok(());
    }
    // Every pending migration in one transaction: a fresh data directory is ready after one
    // commit (one fsync, not one per migration), and an upgrade lands whole or not at all.
    let failed = |version, e: rusqlite::Error| StoreError::Migrate {
        version,
        reason: e.to_string(),
    };
    let last = pending[pending.len() - 1].version;
    // An empty database takes the schema the migrations end with in one script (see
    // `schema`); any other takes its pending migrations one after the other, so a failure
    // names the migration that failed. Read before the transaction, as `current` is.
    let fresh = current == 0 && schema::is_empty(conn)?;
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| failed(pending[0].version, e))?;
    let record = |m: &migrations::Migration| {
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, Timestamp::now().millis()],
        )
    };
    let applied = if fresh {
        conn.execute_batch(schema::SNAPSHOT)
            .and_then(|()| pending.iter().try_for_each(|m| record(m).map(drop)))
            .map_err(|e| failed(last, e))
    } else {
        pending.iter().try_for_each(|m| {
            conn.execute_batch(&m.sql(Backend::Sqlite))
                .and_then(|()| record(m))
                .map(drop)
                .map_err(|e| failed(m.version, e))
        })
    };
    if let Err(e) = applied {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(failed(last, e));
    }
    for m in &pending {
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied sqlite migration"
        );
    }
    Ok(())
}

impl Engine for SqliteEngine {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    /// One process owns the data directory: it leads.
    async fn try_lead(&self) -> Result<Option<Box<dyn crate::lead::Lead>>> {
        Ok(Some(Box::new(crate::lead::Sole)))
    }

    /// No other instance shares the file: nobody to hear.
    async fn listen(&self) -> Result<Option<crate::lead::Listener>> {
        Ok(None)
    }

    fn read<T: Send + 'static>(&self, work: Work<T>) -> impl Future<Output = Result<T>> + Send {
        self.readers
            .read(move |conn| run_now(work(&mut SqliteTx(conn))))
    }

    fn write<T: Send + 'static>(&self, work: Work<T>) -> impl Future<Output = Result<T>> + Send {
        self.writer
            .write(move |conn| run_now(work(&mut SqliteTx(conn))))
    }

    async fn database_size(&self) -> Result<u64> {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Ok(size(&self.path) + size(&wal))
    }

    fn write_queue_depth(&self) -> usize {
        self.writer.queue_depth()
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close();
        self.checkpointer.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement inside a transaction keeps an undo copy of every stored page it changes
    /// (its statement journal), in memory up to a bound and in a temporary file past it. The
    /// spill must work: a Celery batch upserting tasks over megabytes of their index pages,
    /// or a project deleted with its data, is such a statement. With a bound above 128 KiB
    /// SQLite wrote its in-memory copy to the file in one call larger than its unix layer
    /// writes, and the statement failed with "database or disk is full".
    #[test]
    fn a_statement_that_changes_megabytes_of_stored_pages_commits() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("vigie.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, body BLOB NOT NULL UNIQUE);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
             INSERT INTO big SELECT i, randomblob(200) FROM n;",
        )
        .unwrap();
        // 40,000 rows of 200 bytes and their unique index: ~16 MiB of pages changed by one
        // statement that may abort on a constraint, inside a transaction, as the writer runs it.
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             INSERT INTO big VALUES (0, x'00');
             UPDATE big SET body = randomblob(200) WHERE id > 0;
             COMMIT;",
        )
        .expect("the statement's undo copy spills to a file instead of failing");
        let changed: i64 = conn
            .query_row(
                "SELECT count(*) FROM big WHERE length(body) = 200",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(changed, 40000);
    }
}
