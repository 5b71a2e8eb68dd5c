//! Logic written once for both backends: a connection inside a transaction that runs
//! `$N`-numbered SQL and answers rows of [`Value`]s.
//!
//! SQLite implements [`Tx`] in its writer or reader thread, where every call completes at once
//! (so [`run_now`] drives the shared `async fn`s without a runtime); PostgreSQL implements it
//! on a pooled transaction. `errors` and `monitors` are written against it.

use crate::sql::{Columns, Value};
use crate::{Result, StoreError};
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// A connection inside a transaction, as the shared code needs it.
pub(crate) trait Tx {
    /// Runs `sql` and answers its rows (for `RETURNING` too).
    async fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Vec<Value>>>;
    /// Runs `sql`; answers the number of rows changed.
    async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64>;
    /// What follows a `SELECT` of rows about to be rewritten: `FOR UPDATE` on PostgreSQL,
    /// nothing on SQLite (whose single writer already excludes other writers).
    fn lock_rows(&self) -> &'static str;
    /// Whether the tasks search has its trigram index (`celery_search`, SQLite); PostgreSQL
    /// scans.
    fn search_index(&self) -> bool {
        false
    }
}

/// Runs a future whose every await completes at once, as SQLite's [`Tx`] calls do.
///
/// The SQLite implementation is synchronous code behind `async fn`s, so polling once is
/// enough; anything else is a bug in this crate, hence the panic.
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

fn column_type(idx: usize, wanted: &str, found: Option<&Value>) -> StoreError {
    StoreError::Database(format!("column {idx}: expected {wanted}, found {found:?}"))
}
