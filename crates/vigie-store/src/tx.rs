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
    /// Whether the tasks search has its trigram index (`celery_search`, SQLite); PostgreSQL
    /// scans.
    fn search_index(&self) -> bool {
        false
    }
}

impl dyn Tx + '_ {
    /// The first row of `sql`, if any.
    pub(crate) async fn first(&mut self, sql: &str, values: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, values).await?.into_iter().next())
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
