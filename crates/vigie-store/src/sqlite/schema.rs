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
//! file, and `a_fresh_database_made_from_the_snapshot_holds_the_same_schema` checks the file
//! makes exactly that. After adding a migration, rewrite the file with
//! `VIGIE_BLESS=1 cargo test -p vigie-store snapshot`.

use rusqlite::Connection;

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

    #[test]
    fn a_fresh_database_made_from_the_snapshot_holds_the_same_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigie.db");
        let expected = migrated();
        let conn = super::super::open_writer(&path).unwrap();
        assert_eq!(dump(&conn).unwrap(), expected);
        let versions: Vec<u32> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let all: Vec<u32> = ALL.iter().map(|m| m.version).collect();
        assert_eq!(versions, all, "every migration is recorded as applied");
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
