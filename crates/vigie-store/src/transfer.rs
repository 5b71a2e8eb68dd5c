//! Moving up: everything an embedded (SQLite) installation holds, copied into PostgreSQL —
//! resumable after an interruption, checked table by table at the end.
//!
//! ```text
//!   both opened through `crate::open` (each migrated to this Vigie's schema), then closed
//!   tables: the source's, less SQLite's own (the FTS index of Celery tasks, which PostgreSQL
//!           does without), in the target's foreign-key order
//!   per table: rows by rowid, 1,000 at a time ─▶ one multi-row INSERT per batch, in a
//!              transaction that also records the last rowid copied (`vigie_transfer`)
//!   sequences: moved past the highest id copied, so new rows do not collide
//!   check: count(*) per table on both sides ─▶ equal, or the copy is refused as incomplete
//!   done: `vigie_transfer` dropped
//! ```
//!
//! **Resumable.** A batch and its place in the copy commit together, so a copy killed at any
//! point (even `kill -9`) starts again after the last batch committed: nothing doubled, nothing
//! skipped. A target that already holds a Vigie's data and no unfinished copy is refused. The
//! source's data directory is locked for the whole copy, so no server writes to it meanwhile
//! (start none there between an interruption and the run that finishes the copy either: rows
//! changed after they were copied would not be copied again).

use crate::{redact_url, Location, Result, StoreError};
use rusqlite::types::Value as Lite;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tokio_postgres::types::ToSql;

/// Rows read and written at once.
const BATCH_ROWS: usize = 1_000;
/// PostgreSQL takes at most 65,535 parameters a statement.
const MAX_PARAMETERS: usize = 60_000;

/// How one table went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    /// Rows in the source.
    pub rows: u64,
    /// Rows in the target once done (equal to `rows`, or the copy fails).
    pub copied: u64,
}

/// What a finished copy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub tables: Vec<TableCopy>,
    /// Whether it went on from an interrupted copy.
    pub resumed: bool,
    /// Source tables with no place in PostgreSQL (SQLite's own indexes), not copied.
    pub left_out: Vec<String>,
}

/// Where the copy is: rows copied of all rows, and the table at hand.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    pub table: &'a str,
    pub done: u64,
    pub total: u64,
}

/// A column as PostgreSQL types it (what a source value is turned into).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int8,
    Int4,
    Float8,
    Text,
    Bytes,
}

struct Table {
    name: String,
    columns: Vec<(String, Kind)>,
}

fn failed(step: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::database(format!("copy to PostgreSQL: {step}: {reason}"))
}

/// Copies the SQLite database at `sqlite` into the (empty, or half-copied) PostgreSQL
/// database at `url`, telling `progress` after each batch. The caller holds the data
/// directory's lock (`crate::backup::DataLock`).
pub async fn to_postgres(
    sqlite: &Path,
    url: &str,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Transfer> {
    // Both at this Vigie's schema: the same tables and columns on each side.
    for location in [
        Location::Sqlite(sqlite.to_path_buf()),
        Location::Postgres(url.to_string()),
    ] {
        crate::open(&location).await?.close().await;
    }
    let source =
        rusqlite::Connection::open_with_flags(sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (mut target, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| StoreError::Open {
            target: redact_url(url),
            reason: e.to_string(),
        })?;
    let connection = tokio::spawn(connection);
    let outcome = copy(&source, &mut target, &mut progress).await;
    drop(target);
    let _ = connection.await;
    outcome
}

async fn copy(
    source: &rusqlite::Connection,
    target: &mut tokio_postgres::Client,
    progress: &mut impl FnMut(Progress<'_>),
) -> Result<Transfer> {
    let resumed = begin(target).await?;
    let (tables, left_out) = tables(source, target).await?;
    let mut total = 0;
    let mut sizes = Vec::new();
    for table in &tables {
        let rows = count_source(source, &table.name)?;
        sizes.push(rows);
        total += rows;
    }
    let mut done = 0;
    for table in &tables {
        let after = copied_up_to(target, &table.name).await?;
        done += copied_rows(target, &table.name).await?;
        let mut last = after;
        loop {
            // Reading SQLite blocks this thread for a few milliseconds a batch: a command
            // line copy has nothing else to do meanwhile.
            let rows = read_batch(source, table, last)?;
            let Some(&(rowid, _)) = rows.last() else {
                break;
            };
            write_batch(target, table, &rows, rowid).await?;
            last = rowid;
            done += rows.len() as u64;
            progress(Progress {
                table: &table.name,
                done,
                total,
            });
        }
    }
    move_sequences(target, &tables).await?;
    let mut copies = Vec::new();
    let mut short = Vec::new();
    for (table, rows) in tables.iter().zip(sizes) {
        let copied = copied_rows(target, &table.name).await?;
        if copied != rows {
            short.push(format!("{}: {copied} of {rows}", table.name));
        }
        copies.push(TableCopy {
            table: table.name.clone(),
            rows,
            copied,
        });
    }
    if !short.is_empty() {
        return Err(failed(
            "counts differ (was the source changed since the copy began?)",
            short.join(", "),
        ));
    }
    target
        .batch_execute("DROP TABLE vigie_transfer")
        .await
        .map_err(|e| failed("finishing", e))?;
    Ok(Transfer {
        tables: copies,
        resumed,
        left_out,
    })
}

/// Starts a copy, or finds the one that was interrupted; answers whether it resumes. A target
/// that already holds data, with no copy under way, is refused.
async fn begin(target: &tokio_postgres::Client) -> Result<bool> {
    let under_way: bool = target
        .query_one("SELECT to_regclass('vigie_transfer') IS NOT NULL", &[])
        .await?
        .get(0);
    if under_way {
        return Ok(true);
    }
    let projects: i64 = target
        .query_one("SELECT count(*) FROM projects", &[])
        .await?
        .get(0);
    if projects > 0 {
        return Err(failed(
            "the target is not empty",
            format!(
                "it already holds a Vigie's data ({projects} projects); copy into a new, empty \
                 database"
            ),
        ));
    }
    target
        .batch_execute(
            "CREATE TABLE vigie_transfer (name TEXT PRIMARY KEY, last_rowid BIGINT NOT NULL)",
        )
        .await?;
    Ok(false)
}

/// The tables to copy, parents before children, with the columns both sides have; and the
/// source's tables PostgreSQL has no place for.
async fn tables(
    source: &rusqlite::Connection,
    target: &tokio_postgres::Client,
) -> Result<(Vec<Table>, Vec<String>)> {
    let mut statement = source.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> 'schema_migrations' ORDER BY name",
    )?;
    let names: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut columns: BTreeMap<String, Vec<(String, Kind)>> = BTreeMap::new();
    for row in target
        .query(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .await?
    {
        let (table, column, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let kind = match kind.as_str() {
            "bigint" => Kind::Int8,
            "integer" => Kind::Int4,
            "double precision" => Kind::Float8,
            "text" | "character varying" => Kind::Text,
            "bytea" => Kind::Bytes,
            other => {
                return Err(failed(
                    "reading the target's tables",
                    format!("{table}.{column} is {other}, which the copy does not know"),
                ))
            }
        };
        columns.entry(table).or_default().push((column, kind));
    }
    let mut tables = Vec::new();
    let mut left_out = Vec::new();
    for name in names {
        let Some(target_columns) = columns.get(&name) else {
            left_out.push(name);
            continue;
        };
        let source_columns: BTreeSet<String> = source
            .prepare(&format!("SELECT name FROM pragma_table_info('{name}')"))?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        tables.push(Table {
            columns: target_columns
                .iter()
                .filter(|(c, _)| source_columns.contains(c))
                .cloned()
                .collect(),
            name,
        });
    }
    let parents = foreign_keys(target).await?;
    Ok((in_dependency_order(tables, &parents), left_out))
}

/// table -> the tables its foreign keys point at.
async fn foreign_keys(target: &tokio_postgres::Client) -> Result<BTreeMap<String, Vec<String>>> {
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in target
        .query(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint \
             WHERE contype = 'f' AND connamespace = current_schema()::regnamespace",
            &[],
        )
        .await?
    {
        parents.entry(row.get(0)).or_default().push(row.get(1));
    }
    Ok(parents)
}

/// `tables` with every table after the ones it points at (a table pointing at itself, or a
/// cycle, keeps its place: PostgreSQL would refuse those rows and the copy would say so).
fn in_dependency_order(tables: Vec<Table>, parents: &BTreeMap<String, Vec<String>>) -> Vec<Table> {
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut waiting = tables;
    let mut ordered = Vec::new();
    while !waiting.is_empty() {
        let ready = |t: &Table| {
            parents.get(&t.name).is_none_or(|ps| {
                ps.iter().all(|p| {
                    *p == t.name || placed.contains(p) || !waiting.iter().any(|w| w.name == *p)
                })
            })
        };
        let Some(at) = waiting.iter().position(ready) else {
            ordered.append(&mut waiting);
            break;
        };
        let table = waiting.remove(at);
        placed.insert(table.name.clone());
        ordered.push(table);
    }
    ordered
}

fn count_source(source: &rusqlite::Connection, table: &str) -> Result<u64> {
    let n: i64 = source.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })?;
    Ok(n as u64)
}

async fn copied_rows(target: &tokio_postgres::Client, table: &str) -> Result<u64> {
    let n: i64 = target
        .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
        .await?
        .get(0);
    Ok(n as u64)
}

/// The last source rowid of `table` copied (0 before its first batch).
async fn copied_up_to(target: &tokio_postgres::Client, table: &str) -> Result<i64> {
    Ok(target
        .query_opt(
            "SELECT last_rowid FROM vigie_transfer WHERE name = $1",
            &[&table],
        )
        .await?
        .map_or(0, |row| row.get(0)))
}

/// Up to [`BATCH_ROWS`] rows after `after`, by rowid (fewer when they have many columns).
fn read_batch(
    source: &rusqlite::Connection,
    table: &Table,
    after: i64,
) -> Result<Vec<(i64, Vec<Lite>)>> {
    let names: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect();
    let limit = BATCH_ROWS.min(MAX_PARAMETERS / table.columns.len().max(1));
    let mut statement = source.prepare_cached(&format!(
        "SELECT rowid, {} FROM \"{}\" WHERE rowid > ?1 ORDER BY rowid LIMIT {limit}",
        names.join(", "),
        table.name
    ))?;
    let rows = statement.query_map([after], |row| {
        let values = (1..=names.len())
            .map(|i| row.get::<_, Lite>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((row.get::<_, i64>(0)?, values))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Inserts `rows` and records `last` as copied, in one transaction.
async fn write_batch(
    target: &mut tokio_postgres::Client,
    table: &Table,
    rows: &[(i64, Vec<Lite>)],
    last: i64,
) -> Result<()> {
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> =
        Vec::with_capacity(rows.len() * table.columns.len());
    let mut tuples = Vec::with_capacity(rows.len());
    for (rowid, row) in rows {
        let mut tuple = Vec::with_capacity(row.len());
        for ((column, kind), value) in table.columns.iter().zip(row) {
            values.push(convert(value, *kind).map_err(|why| {
                failed(
                    "reading the source",
                    format!("{}.{column} of row {rowid}: {why}", table.name),
                )
            })?);
            tuple.push(format!("${}", values.len()));
        }
        tuples.push(format!("({})", tuple.join(", ")));
    }
    let names: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect();
    let insert = format!(
        "INSERT INTO \"{}\" ({}) VALUES {}",
        table.name,
        names.join(", "),
        tuples.join(", ")
    );
    let parameters: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let tx = target.transaction().await?;
    tx.execute(&insert, &parameters)
        .await
        .map_err(|e| failed(&format!("writing {}", table.name), db_message(&e)))?;
    tx.execute(
        "INSERT INTO vigie_transfer (name, last_rowid) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET last_rowid = excluded.last_rowid",
        &[&table.name, &last],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn db_message(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map_or_else(|| err.to_string(), |db| db.message().to_string())
}

/// A source value as the target column's type takes it.
fn convert(value: &Lite, kind: Kind) -> std::result::Result<Box<dyn ToSql + Sync + Send>, String> {
    Ok(match (value, kind) {
        (Lite::Null, Kind::Int8) => Box::new(None::<i64>),
        (Lite::Null, Kind::Int4) => Box::new(None::<i32>),
        (Lite::Null, Kind::Float8) => Box::new(None::<f64>),
        (Lite::Null, Kind::Text) => Box::new(None::<String>),
        (Lite::Null, Kind::Bytes) => Box::new(None::<Vec<u8>>),
        (Lite::Integer(n), Kind::Int8) => Box::new(*n),
        (Lite::Integer(n), Kind::Int4) => {
            Box::new(i32::try_from(*n).map_err(|_| format!("{n} is too large"))?)
        }
        (Lite::Integer(n), Kind::Float8) => Box::new(*n as f64),
        (Lite::Real(x), Kind::Float8) => Box::new(*x),
        (Lite::Text(s), Kind::Text) => Box::new(s.clone()),
        (Lite::Text(s), Kind::Bytes) => Box::new(s.as_bytes().to_vec()),
        (Lite::Blob(b), Kind::Bytes) => Box::new(b.clone()),
        (Lite::Blob(b), Kind::Text) => Box::new(
            String::from_utf8(b.clone()).map_err(|_| "bytes that are not text".to_string())?,
        ),
        (other, kind) => return Err(format!("{other:?} does not fit a {kind:?} column")),
    })
}

/// Moves each serial column's sequence past the highest value copied.
async fn move_sequences(target: &tokio_postgres::Client, tables: &[Table]) -> Result<()> {
    let copied: BTreeSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    for row in target
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'",
            &[],
        )
        .await?
    {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        if !copied.contains(table.as_str()) {
            continue;
        }
        target
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence($1, $2), \
                     COALESCE(MAX(\"{column}\"), 1), MAX(\"{column}\") IS NOT NULL) \
                     FROM \"{table}\""
                ),
                &[&table, &column],
            )
            .await
            .map_err(|e| failed(&format!("moving the sequence of {table}"), db_message(&e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Table {
        Table {
            name: name.into(),
            columns: vec![],
        }
    }

    #[test]
    fn parents_come_before_their_children() {
        let parents: BTreeMap<String, Vec<String>> = [
            ("jobs", vec!["projects"]),
            ("job_items", vec!["jobs", "projects"]),
            ("projects", vec![]),
            ("issues", vec!["issues", "projects"]),
        ]
        .into_iter()
        .map(|(t, ps)| (t.to_string(), ps.into_iter().map(String::from).collect()))
        .collect();
        let order: Vec<String> = in_dependency_order(
            ["job_items", "issues", "jobs", "meta", "projects"]
                .into_iter()
                .map(table)
                .collect(),
            &parents,
        )
        .into_iter()
        .map(|t| t.name)
        .collect();
        let at = |name: &str| order.iter().position(|t| t == name).unwrap();
        assert!(at("projects") < at("jobs") && at("jobs") < at("job_items"));
        assert!(at("projects") < at("issues"));
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn values_take_the_target_columns_type() {
        assert!(convert(&Lite::Integer(3), Kind::Float8).is_ok());
        assert!(convert(&Lite::Null, Kind::Bytes).is_ok());
        assert!(convert(&Lite::Integer(1 << 40), Kind::Int4).is_err());
        let err = convert(&Lite::Real(1.5), Kind::Int8).err().unwrap();
        assert!(err.contains("does not fit"), "{err}");
    }
}
