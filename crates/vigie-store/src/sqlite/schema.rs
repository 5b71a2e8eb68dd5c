//! A fresh SQLite database gets its whole schema in one step: the tables, indexes and
//! triggers every migration together leaves, kept in `migrations/sqlite_schema.snapshot`.
//!
//! ```text
//!   migrations/00NN_*.sql ── applied in memory by a test, schema read back ──▶ sqlite_schema.snapshot
//!   a fresh database  ◀── sqlite_schema.snapshot, every migration recorded as applied
//!   an older database ◀── its pending migrations, one after the other (as always)
//! ```
//!
//! Why: on a fresh data directory the migrations were most of Vigie's start. Every
//! `ALTER TABLE` and `DROP` in them makes SQLite read its whole schema again, so 29 migrations
//! parsed some thousands of statements where the result holds 121. The snapshot creates each
//! object once, as the migrations left it. It is SQL, but named `.snapshot`: it is generated
//! output checked by a test, like the golden files of the protocol tests, not code to edit.
//!
//! The snapshot cannot drift from the migrations: `the_snapshot_is_what_the_migrations_make`
//! applies every migration to an empty database and compares what SQLite then holds with the
//! file, and `an_empty_database_file_gets_the_schema_from_the_snapshot` checks the file
//! makes exactly that. After adding a migration, rewrite the file with
//! `VIGIE_BLESS=1 cargo test -p vigie-store snapshot`.
//!
//! A data directory with no database at all does not even run the snapshot: it gets a copy of
//! the database the snapshot makes, `migrations/sqlite_fresh.db.zst` (the file as SQLite keeps
//! it, in WAL mode, every migration recorded with `applied_at` 0; 11 KiB compressed), written
//! beside the database's path and linked into place ([`install_image`]). Running the
//! snapshot's 121 statements was most of a first start's CPU (each `CREATE` parses, and writes
//! its root page through the WAL); copying 181 pages is not. The same blessing rewrites the
//! image, and `the_image_is_what_the_snapshot_makes` checks it holds the snapshot's schema
//! and every migration. An empty file, or a file system without hard links, still takes the
//! snapshot.
//!
//! ```text
//!   no database file ──▶ sqlite_fresh.db.zst decompressed to PATH.fresh-PID, synced,
//!                        hard-linked to PATH (never over a file that appeared meanwhile),
//!                        directory synced ──▶ opened as any database; applied_at set to now
//!                        (unsynced: it reaches the disk with the first durable commit)
//! ```

use rusqlite::Connection;
use std::io::Write;
use std::path::Path;

/// The database [`SNAPSHOT`] makes, zstd-compressed (see the module doc).
const IMAGE: &[u8] = include_bytes!("../../migrations/sqlite_fresh.db.zst");

/// Puts the fresh database image at `path` if nothing is there; answers whether it did.
///
/// The image is written to a file of this process's own beside `path` and hard-linked to
/// `path`, which fails rather than replace a database another process created meanwhile; a
/// crash in between leaves at worst that file (`vigie.db.fresh-PID`, safe to delete). Where the
/// link cannot be made (a file system without hard links), nothing is installed and the
/// caller creates the schema from the snapshot as before.
pub(crate) fn install_image(path: &Path) -> std::io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".fresh-{}", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    let written = (|| {
        // Decoded whole (740 KiB, freed at once) and written in one call, not in the
        // decoder's 8 KiB pieces.
        let bytes = zstd::stream::decode_all(IMAGE)?;
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()
    })();
    let linked = written.map(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked? {
        Ok(()) => {
            // The new name is durable only once its directory is.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(true)
        }
        // Another process made the database first (it is opened as it is), or the file system
        // has no hard links (the snapshot makes the schema).
        Err(_) => Ok(false),
    }
}

/// The statements that make the schema of [`crate::migrations::ALL`] on a fresh database.
pub(crate) const SNAPSHOT: &str = include_str!("../../migrations/sqlite_schema.snapshot");

/// Whether `conn` holds nothing but `schema_migrations`: a database just created.
pub(crate) fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM sqlite_schema WHERE name <> 'schema_migrations' \
         AND name NOT LIKE 'sqlite_autoindex_schema_migrations%')",
        [],
        |row| row.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::ALL;
    use crate::Backend;
    use vigie_core::Timestamp;

    /// What opens the snapshot file, before the statements.
    const HEADER: &str =
        "-- The schema every migration together makes on SQLite, applied at once to a fresh\n\
    -- database (see crates/vigie-store/src/sqlite/schema.rs). Generated: do not edit; after a new\n\
    -- migration, run VIGIE_BLESS=1 cargo test -p vigie-store snapshot\n\n";

    /// The schema `conn` holds, as the statements that make it, in the order SQLite keeps them.
    ///
    /// Left out: SQLite's own tables, `schema_migrations` (Vigie's record, made before any
    /// migration) and the shadow tables of full-text indexes, which their `CREATE VIRTUAL TABLE`
    /// makes itself.
    fn dump(conn: &Connection) -> rusqlite::Result<String> {
        let mut statement = conn.prepare(
            "SELECT sql FROM sqlite_schema \
             WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND tbl_name <> 'schema_migrations' \
               AND tbl_name NOT IN (SELECT name FROM pragma_table_list WHERE type = 'shadow') \
             ORDER BY rowid",
        )?;
        let mut out = String::from(HEADER);
        for sql in statement.query_map([], |row| row.get::<_, String>(0))? {
            out.push_str(&sql?);
            out.push_str(";\n\n");
        }
        Ok(out)
    }

    fn migrations_table(conn: &Connection) {
        conn.execute_batch(super::super::MIGRATIONS_TABLE).unwrap();
    }

    /// The schema of an empty database after every migration, one after the other.
    fn migrated() -> String {
        let conn = Connection::open_in_memory().unwrap();
        migrations_table(&conn);
        for m in ALL {
            conn.execute_batch(&m.sql(Backend::Sqlite))
                .unwrap_or_else(|e| panic!("migration {} ({}): {e}", m.version, m.name));
        }
        dump(&conn).unwrap()
    }

    #[test]
    fn the_snapshot_is_what_the_migrations_make() {
        let expected = migrated();
        if std::env::var_os("VIGIE_BLESS").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/sqlite_schema.snapshot"
            );
            std::fs::write(path, &expected).unwrap();
            return;
        }
        assert!(
            SNAPSHOT == expected,
            "migrations/sqlite_schema.snapshot is not what the migrations make: after a new \
             migration, run VIGIE_BLESS=1 cargo test -p vigie-store snapshot"
        );
        // Something to compare: every table the features read is there.
        for table in [
            "CREATE TABLE events",
            "CREATE TABLE log_blocks",
            "CREATE VIRTUAL TABLE",
        ] {
            assert!(
                SNAPSHOT.contains(table),
                "{table} missing from the snapshot"
            );
        }
    }

    /// The migrations `conn` records as applied: (version, name, applied_at).
    fn recorded(conn: &Connection) -> Vec<(u32, String, i64)> {
        conn.prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn all_migrations() -> Vec<(u32, String)> {
        ALL.iter()
            .map(|m| (m.version, m.name.to_string()))
            .collect()
    }

    fn without_times(recorded: Vec<(u32, String, i64)>) -> Vec<(u32, String)> {
        recorded.into_iter().map(|(v, name, _)| (v, name)).collect()
    }

    /// The database `schema` makes, in WAL mode, with every migration recorded at time 0, as
    /// the bytes of its file compressed.
    fn make_image(schema: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
            migrations_table(&conn);
            conn.execute_batch(schema).unwrap();
            for m in ALL {
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, 0)",
                    rusqlite::params![m.version, m.name],
                )
                .unwrap();
            }
            // Closing the last connection checkpoints the WAL into the file and removes it.
        }
        zstd::bulk::compress(&std::fs::read(&path).unwrap(), 19).unwrap()
    }

    #[test]
    fn the_image_is_what_the_snapshot_makes() {
        if std::env::var_os("VIGIE_BLESS").is_some() {
            // From the migrations, not from SNAPSHOT: that constant is the file as it was
            // compiled, which the blessing of the test above may just have rewritten.
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/sqlite_fresh.db.zst"
            );
            std::fs::write(path, make_image(&migrated())).unwrap();
            return;
        }
        let stale = "migrations/sqlite_fresh.db.zst is not what the snapshot makes: after a new \
                     migration, run VIGIE_BLESS=1 cargo test -p vigie-store snapshot";
        let bytes = zstd::stream::decode_all(IMAGE).expect(stale);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.db");
        std::fs::write(&path, bytes).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(dump(&conn).unwrap(), SNAPSHOT, "{stale}");
        let recorded = recorded(&conn);
        assert!(recorded.iter().all(|(_, _, at)| *at == 0), "{recorded:?}");
        assert_eq!(without_times(recorded), all_migrations(), "{stale}");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            mode, "wal",
            "the image is kept in WAL mode, as Vigie opens it"
        );
    }

    #[test]
    fn a_missing_database_is_made_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        let before = Timestamp::now().millis();
        let conn = super::super::open_writer(&path).unwrap();
        assert_eq!(dump(&conn).unwrap(), migrated());
        let recorded = recorded(&conn);
        assert!(
            recorded.iter().all(|(_, _, at)| *at >= before),
            "applied now, not when the image was made: {recorded:?}"
        );
        assert_eq!(without_times(recorded), all_migrations());
        // The stamp went without a sync; every commit after it is durable again.
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "the writer commits with synchronous = FULL");
        // Nothing but the database (and SQLite's WAL files) is left beside it.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["vigie.db", "vigie.db-shm", "vigie.db-wal"]);
        // It is a database like any other: written, closed, opened again.
        conn.execute(
            "INSERT INTO projects (name, public_key, created_at) VALUES ('p', 'k', 0)",
            [],
        )
        .unwrap();
        drop(conn);
        let again = super::super::open_writer(&path).unwrap();
        assert_eq!(dump(&again).unwrap(), migrated());
        let projects: i64 = again
            .query_row("SELECT count(*) FROM projects", [], |r| r.get(0))
            .unwrap();
        assert_eq!(projects, 1);
    }

    #[test]
    fn the_image_never_replaces_a_file_that_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        std::fs::write(&path, b"someone else's").unwrap();
        assert!(!install_image(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
    }

    #[test]
    fn an_empty_database_file_gets_the_schema_from_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        // SQLite takes an empty file for an empty database; the image is not put over it.
        std::fs::write(&path, b"").unwrap();
        let expected = migrated();
        let conn = super::super::open_writer(&path).unwrap();
        assert_eq!(dump(&conn).unwrap(), expected);
        assert_eq!(without_times(recorded(&conn)), all_migrations());
        // Opened again, nothing is pending and nothing changes.
        drop(conn);
        let again = super::super::open_writer(&path).unwrap();
        assert_eq!(dump(&again).unwrap(), expected);
    }

    #[test]
    fn only_a_database_holding_nothing_else_counts_as_empty() {
        let conn = Connection::open_in_memory().unwrap();
        migrations_table(&conn);
        assert!(is_empty(&conn).unwrap());
        conn.execute_batch("CREATE TABLE followed_files (taken INTEGER)")
            .unwrap();
        assert!(!is_empty(&conn).unwrap(), "a table of its own: not empty");
    }

    #[test]
    fn a_database_part_way_gets_the_rest_one_migration_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        {
            let conn = Connection::open(&path).unwrap();
            migrations_table(&conn);
            for m in ALL.iter().take(20) {
                conn.execute_batch(&m.sql(Backend::Sqlite)).unwrap();
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, 0)",
                    rusqlite::params![m.version, m.name],
                )
                .unwrap();
            }
        }
        let expected = migrated();
        let conn = super::super::open_writer(&path).unwrap();
        assert_eq!(dump(&conn).unwrap(), expected);
    }
}
