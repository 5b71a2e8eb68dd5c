//! Backing up and restoring the embedded database, and the lock that says a server uses it.
//!
//! ```text
//!   vigie backup FILE:   one read transaction on the live database ─ VACUUM INTO FILE.partial
//!                        ─ quick_check ─ renamed FILE (a consistent snapshot, compacted;
//!                        the server keeps writing meanwhile)
//!   vigie restore FILE:  the data directory's lock (no server may be running) ─ FILE checked
//!                        (quick_check, a schema this Vigie knows) ─ copied beside vigie.db ─
//!                        renamed over it; the old -wal and -shm removed first
//! ```
//!
//! `VACUUM INTO` is SQLite's own online snapshot: it reads the database in one transaction, so
//! the copy is consistent whatever the server writes meanwhile, and it never restarts (the
//! page-by-page backup API restarts whenever another process writes, which a busy server
//! always does).

use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Held by a server for as long as it runs on a data directory (and by `restore`): a second
/// server on the same directory, or a restore under a running one, is refused.
pub struct DataLock {
    _file: File,
}

impl DataLock {
    /// Takes the lock of the database at `db` (`vigie.db.lock` beside it).
    pub fn take(db: &Path) -> Result<DataLock> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_error(db, format!("cannot create the data directory: {e}")))?;
        }
        let path = lock_path(db);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| open_error(db, format!("cannot create {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(DataLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(open_error(
                db,
                "a Vigie server is running on this data directory; stop it first".into(),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(open_error(
                db,
                format!("cannot lock {}: {e}", path.display()),
            )),
        }
    }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_error(db: &Path, reason: String) -> StoreError {
    StoreError::Open {
        target: db.display().to_string(),
        reason,
    }
}

/// What a backup file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    pub bytes: u64,
    /// The newest schema migration applied in it.
    pub schema_version: u32,
}

/// The size the database at `db` occupies (pages in use), for a progress bar.
pub fn database_bytes(db: &Path) -> Result<u64> {
    let conn = open_read_only(db)?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Writes a consistent snapshot of the database at `db` to `to` (which must not exist). The
/// server may keep running. Answers what the file holds.
pub fn backup(db: &Path, to: &Path) -> Result<BackupInfo> {
    if to.exists() {
        return Err(open_error(
            to,
            "the backup file exists already; name another or remove it".into(),
        ));
    }
    let partial = partial_path(to);
    let _ = std::fs::remove_file(&partial);
    let conn = open_read_only(db)?;
    let target = partial
        .to_str()
        .ok_or_else(|| open_error(to, "the backup path is not UTF-8".into()))?;
    let made = conn.execute("VACUUM INTO ?1", [target]);
    if let Err(err) = made {
        let _ = std::fs::remove_file(&partial);
        return Err(err.into());
    }
    let info = check(&partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, to)
        .map_err(|e| open_error(to, format!("cannot move the finished backup in place: {e}")))?;
    Ok(info)
}

/// Checks that `file` is a whole Vigie database this version can open.
pub fn check(file: &Path) -> Result<BackupInfo> {
    let conn = open_read_only(file)?;
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| open_error(file, format!("not an SQLite database Vigie can read: {e}")))?;
    if verdict != "ok" {
        return Err(open_error(file, format!("the file is damaged: {verdict}")));
    }
    let version: i64 = conn
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(|_| open_error(file, "not a Vigie database (no schema_migrations)".into()))?;
    // A backup made by a newer Vigie is refused, as its database would be.
    let _ = crate::migrations::pending(version as u32)?;
    Ok(BackupInfo {
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        schema_version: version as u32,
    })
}

/// Puts the backup `from` in place of the database at `db`, under the data directory's lock
/// (so never under a running server). An older schema is migrated when the server next
/// starts.
pub fn restore(from: &Path, db: &Path) -> Result<BackupInfo> {
    let info = check(from)?;
    let _lock = DataLock::take(db)?;
    let partial = partial_path(db);
    std::fs::copy(from, &partial)
        .map_err(|e| open_error(db, format!("cannot copy the backup in: {e}")))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    std::fs::rename(&partial, db).map_err(|e| {
        open_error(
            db,
            format!("cannot move the restored database in place: {e}"),
        )
    })?;
    Ok(info)
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn open_read_only(db: &Path) -> Result<Connection> {
    if !db.exists() {
        return Err(open_error(
            db,
            "no such file (is --data the directory `vigie serve` uses?)".into(),
        ));
    }
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(db, e.to_string()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_directory_is_refused_until_the_first_goes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("vigie.db");
        let first = DataLock::take(&db).unwrap();
        let second = DataLock::take(&db);
        assert!(
            matches!(&second, Err(StoreError::Open { reason, .. }) if reason.contains("running")),
            "{:?}",
            second.err()
        );
        drop(first);
        DataLock::take(&db).unwrap();
    }

    #[test]
    fn what_is_not_a_vigie_database_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all, just text").unwrap();
        let db = dir.path().join("data").join("vigie.db");
        assert!(restore(&junk, &db).is_err());
        assert!(!db.exists(), "nothing was put in place");
    }
}
