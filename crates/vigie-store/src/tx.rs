//! Logic written once for both backends: a connection inside a transaction that runs
//! `$N`-numbered SQL and answers rows of [`Value`]s.
//!
//! ```text
//!   feature code (accounts, jobs, logs, errors, alerts, monitors, celery)
//!        │  async fn …(tx: &mut dyn Tx, …)
//!        ▼
//!   Tx ── SqliteTx: the writer's batch transaction or a reader's connection; every call
//!    │              completes at once, so `run_now` drives the shared futures on that thread
//!    └─── PgTx:     a pooled connection, inside a transaction for writes
//! ```
//!
//! `Tx` is object-safe (its calls answer boxed futures) so one closure over `&mut dyn Tx` runs
//! on either engine (see `crate::engine`): each feature's storage is written exactly once.

use crate::sql::{Columns, Value};
use crate::{Result, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A future that may move between threads, borrowed for `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A row as the shared code reads it (through [`Columns`]).
pub(crate) type Row = Vec<Value>;

/// A connection inside a transaction, as the shared code needs it.
pub(crate) trait Tx: Send {
    /// Runs `sql` and answers its rows (for `RETURNING` too).
    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        values: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>>;
    /// Runs `sql`; answers the number of rows changed.
    fn execute<'a>(&'a mut self, sql: &'a str, values: &'a [Value]) -> BoxFuture<'a, Result<u64>>;
    /// What follows a `SELECT` of rows about to be rewritten: `FOR UPDATE` on PostgreSQL,
    /// nothing on SQLite (whose single writer already excludes other writers).
    fn lock_rows(&self) -> &'static str;
    /// A statement that locks `table` against other writers until the transaction ends,
    /// where the engine has concurrent writers (PostgreSQL); SQLite's single writer needs none.
    fn lock_table(&self, _table: &str) -> Option<String> {
        None
    }
    /// A statement that orders change-feed entries by commit (see `crate::feed`), where
    /// transactions commit concurrently (PostgreSQL); SQLite's single writer needs none.
    fn lock_feed(&self) -> Option<String> {
        None
    }
    /// What follows a `SELECT` of rows to claim where others may claim too: rows another
    /// transaction holds are passed over, not waited for (PostgreSQL); nothing on SQLite.
    fn skip_locked(&self) -> &'static str {
        ""
    }
    /// Runs `insert` (`INSERT INTO t (columns)`) over `rows`, each the same width, then `tail`
    /// (`ON CONFLICT …`, `RETURNING …`), where `$+1`, `$+2`, … name the `extra` values; answers
    /// the rows `RETURNING` gives. By default the rows go as `VALUES (…), (…)` in a few
    /// statement shapes ([`statement_rows`]); PostgreSQL sends them all in one statement over
    /// column arrays.
    fn write_rows<'a>(
        &'a mut self,
        insert: &'a str,
        tail: &'a str,
        rows: Vec<Row>,
        extra: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move {
            let mut answered = Vec::new();
            for (sql, values) in multi_row(insert, tail, rows, extra) {
                answered.extend(self.query(&sql, &values).await?);
            }
            Ok(answered)
        })
    }
    /// Runs `statements` (none reading what another writes) and answers each one's rows
    /// (`RETURNING` rows of a write), in order. By default one after the other; PostgreSQL
    /// sends them all before it reads the first answer: one round trip.
    fn together<'a>(
        &'a mut self,
        statements: Vec<Statement<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Vec<Row>>>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(statements.len());
            for statement in statements {
                answers.push(match statement {
                    Statement::Rows(w) if w.rows.is_empty() => Vec::new(),
                    Statement::Rows(w) => self.write_rows(w.insert, w.tail, w.rows, &[]).await?,
                    Statement::Query(sql, values) => self.query(&sql, &values).await?,
                });
            }
            Ok(answers)
        })
    }
    /// Whether the tasks search has its trigram index (`celery_search`, SQLite); PostgreSQL
    /// scans.
    fn search_index(&self) -> bool {
        false
    }
}

/// One statement of [`Tx::together`].
pub(crate) enum Statement<'a> {
    /// A multi-row write, as [`Tx::write_rows`] runs it (none when it has no rows).
    Rows(RowsWrite<'a>),
    /// A statement and its values, as [`Tx::query`] runs it.
    Query(String, Vec<Value>),
}

/// A multi-row write: `insert` over `rows`, then `tail`.
pub(crate) struct RowsWrite<'a> {
    pub insert: &'a str,
    pub tail: &'a str,
    pub rows: Vec<Row>,
}

impl<'a> From<RowsWrite<'a>> for Statement<'a> {
    fn from(write: RowsWrite<'a>) -> Statement<'a> {
        Statement::Rows(write)
    }
}

/// Most parameters one multi-row statement binds: under SQLite's limit (32,766) and
/// PostgreSQL's (65,535), and small enough that a statement stays quick to plan.
const ROWS_PARAMETERS: usize = 6_000;

/// How many rows each statement of a multi-row write of `rows` rows, `width` values each,
/// takes: full statements of the largest power of two that fits [`ROWS_PARAMETERS`], then
/// the rest in falling powers of two. So a connection prepares a handful of statement shapes
/// (PostgreSQL caches each one it prepared), not one per batch size.
fn statement_rows(rows: usize, width: usize) -> Vec<usize> {
    let most = (ROWS_PARAMETERS / width.max(1)).max(1);
    let full = 1 << most.ilog2();
    let mut sizes = vec![full; rows / full];
    let mut left = rows % full;
    while left > 0 {
        let part = 1 << left.ilog2();
        sizes.push(part);
        left -= part;
    }
    sizes
}

/// The statements (SQL and values) of a multi-row write: see [`statement_rows`]. `$+N` in
/// `tail` is the `N`th of `extra`, numbered after the statement's rows.
fn multi_row(
    head: &str,
    tail: &str,
    rows: Vec<Vec<Value>>,
    extra: &[Value],
) -> Vec<(String, Vec<Value>)> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Vec::new();
    };
    let sizes = statement_rows(rows.len(), width);
    let mut rows = rows.into_iter();
    sizes
        .into_iter()
        .map(|size| {
            let mut values: Vec<Value> = rows.by_ref().take(size).flatten().collect();
            values.extend_from_slice(extra);
            let tail = number_extra(tail, extra.len(), size * width);
            (
                format!(
                    "{head} VALUES {}{tail}",
                    crate::sql::value_rows(size, width)
                ),
                values,
            )
        })
        .collect()
}

/// `tail` with `$+1` … `$+extra` numbered after the statement's first `before` parameters.
pub(crate) fn number_extra(tail: &str, extra: usize, before: usize) -> String {
    let mut tail = tail.to_string();
    // From the highest, so that `$+1` is not replaced inside `$+12`.
    for n in (1..=extra).rev() {
        tail = tail.replace(&format!("$+{n}"), &format!("${}", before + n));
    }
    tail
}

impl dyn Tx + '_ {
    /// Runs `insert` over `rows` then `tail` (see [`Tx::write_rows`]): one round trip for
    /// many rows where a statement a row would cost one each.
    pub(crate) async fn insert_rows(
        &mut self,
        insert: &str,
        tail: &str,
        rows: Vec<Vec<Value>>,
    ) -> Result<()> {
        if !rows.is_empty() {
            self.write_rows(insert, tail, rows, &[]).await?;
        }
        Ok(())
    }

    /// [`insert_rows`](Self::insert_rows) for a statement whose `RETURNING` answers rows; the
    /// `extra` values follow each statement's rows, and `tail` names them `$+1`, `$+2`, …
    pub(crate) async fn insert_rows_returning(
        &mut self,
        insert: &str,
        tail: &str,
        rows: Vec<Vec<Value>>,
        extra: &[Value],
    ) -> Result<Vec<Row>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.write_rows(insert, tail, rows, extra).await
    }

    /// The first row of `sql`, if any.
    pub(crate) async fn first(&mut self, sql: &str, values: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, values).await?.into_iter().next())
    }

    /// Every row of `sql`, each made into a `T` by `from` (a `…_from` row reader).
    pub(crate) async fn all<T>(
        &mut self,
        sql: &str,
        values: &[Value],
        from: impl Fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, values).await?.iter().map(from).collect()
    }

    /// The first row of `sql` made into a `T` by `from`, if there is one.
    pub(crate) async fn first_as<T>(
        &mut self,
        sql: &str,
        values: &[Value],
        from: impl Fn(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.first(sql, values)
            .await?
            .as_ref()
            .map(from)
            .transpose()
    }

    /// The first row of `sql`, which must exist (an `INSERT … RETURNING`, a `count(*)`).
    pub(crate) async fn one(&mut self, sql: &str, values: &[Value]) -> Result<Row> {
        self.first(sql, values)
            .await?
            .ok_or_else(|| StoreError::database(format!("no row answered: {sql}")))
    }
}

/// Runs a future whose every await completes at once, as SQLite's [`Tx`] calls do.
///
/// The SQLite implementation is synchronous code behind futures that are ready when made, so
/// polling once is enough; anything else is a bug in this crate, hence the panic.
pub(crate) fn run_now<T>(work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a SQLite statement did not complete synchronously"),
    }
}

impl Columns for Vec<Value> {
    fn int(&self, idx: usize) -> Result<Option<i64>> {
        match self.get(idx) {
            Some(Value::Int(v)) => Ok(*v),
            Some(Value::Real(v)) => Ok(v.map(|f| f as i64)),
            Some(Value::Text(None)) => Ok(None),
            other => Err(column_type(idx, "an integer", other)),
        }
    }
    fn real(&self, idx: usize) -> Result<Option<f64>> {
        match self.get(idx) {
            Some(Value::Real(v)) => Ok(*v),
            Some(Value::Int(v)) => Ok(v.map(|i| i as f64)),
            Some(Value::Text(None)) => Ok(None),
            other => Err(column_type(idx, "a number", other)),
        }
    }
    fn text(&self, idx: usize) -> Result<Option<String>> {
        match self.get(idx) {
            Some(Value::Text(v)) => Ok(v.clone()),
            Some(Value::Int(None)) | Some(Value::Real(None)) => Ok(None),
            other => Err(column_type(idx, "text", other)),
        }
    }
    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>> {
        match self.get(idx) {
            Some(Value::Blob(v)) => Ok(Some(v.clone())),
            Some(Value::Int(None)) | Some(Value::Text(None)) => Ok(None),
            other => Err(column_type(idx, "bytes", other)),
        }
    }
}

/// Moves a blob out of `row` (a log block's data or bloom can be megabytes: not copied).
pub(crate) fn take_blob(row: &mut Row, idx: usize) -> Result<Option<Vec<u8>>> {
    match row.get_mut(idx) {
        Some(Value::Blob(v)) => Ok(Some(std::mem::take(v))),
        Some(Value::Int(None)) | Some(Value::Text(None)) => Ok(None),
        other => Err(column_type(idx, "bytes", other.map(|v| &*v))),
    }
}

fn column_type(idx: usize, wanted: &str, found: Option<&Value>) -> StoreError {
    StoreError::database(format!("column {idx}: expected {wanted}, found {found:?}"))
}

#[cfg(test)]
mod statement_shapes {
    use super::{multi_row, statement_rows};
    use crate::sql::Value;

    #[test]
    fn extra_values_are_numbered_after_the_rows() {
        let rows = vec![vec![Value::from(1), Value::from(2)]; 3];
        let statements = multi_row("INSERT INTO t (a, b)", " SET c = $+1", rows, &[9.into()]);
        assert_eq!(statements.len(), 2);
        assert_eq!(
            statements[0].0,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) SET c = $5"
        );
        assert_eq!(statements[0].1.len(), 5);
        assert_eq!(
            statements[1].0,
            "INSERT INTO t (a, b) VALUES ($1, $2) SET c = $3"
        );
    }

    #[test]
    fn rows_go_in_a_few_shapes_that_cover_them_all() {
        assert_eq!(statement_rows(0, 13), Vec::<usize>::new());
        assert_eq!(statement_rows(1, 13), [1]);
        assert_eq!(statement_rows(37, 13), [32, 4, 1]);
        // 6,000 / 13 = 461 rows at most: statements of 256.
        assert_eq!(statement_rows(600, 13), [256, 256, 64, 16, 8]);
        for rows in 0..2_000 {
            let sizes = statement_rows(rows, 5);
            assert_eq!(sizes.iter().sum::<usize>(), rows);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && s * 5 <= 6_000));
        }
    }
}
