//! The shared logic's connection on SQLite (see `crate::tx::Tx`): the writer's, inside its
//! batch transaction, or a reader's.
//!
//! Every call runs at once on the calling thread (the writer's or a reader's) and answers a
//! future that is already complete, which is what lets `run_now` drive the shared code.

use crate::sql::Value;
use crate::tx::{BoxFuture, Row, Tx};
use crate::Result;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection, ToSql};

/// `&mut` because a `Connection` may move between threads but not be shared by them: a
/// mutable borrow keeps `SqliteTx` `Send`, as `Tx` requires.
pub(super) struct SqliteTx<'a>(pub &'a mut Connection);

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Real(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Value::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Value::Int(None) | Value::Real(None) | Value::Text(None) => {
                ToSqlOutput::Borrowed(ValueRef::Null)
            }
        })
    }
}

/// SQLite numbers `$N` parameters by first appearance, not by `N`, and values bind by that
/// number: SQL whose `$N` first appear out of order would silently swap values (PostgreSQL
/// reads `N`). Tests run on SQLite in debug builds, so this catches such SQL there.
fn debug_check_order(stmt: &rusqlite::CachedStatement<'_>, sql: &str) {
    if cfg!(debug_assertions) {
        for i in 1..=stmt.parameter_count() {
            let expected = format!("${i}");
            assert_eq!(
                stmt.parameter_name(i),
                Some(expected.as_str()),
                "parameters must first appear as $1, $2, … in order: {sql}"
            );
        }
    }
}

impl SqliteTx<'_> {
    fn rows(&self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        debug_check_order(&stmt, sql);
        let columns = stmt.column_count();
        let mut found = stmt.query(params_from_iter(values))?;
        let mut out = Vec::new();
        while let Some(row) = found.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Int(None),
                    ValueRef::Integer(v) => Value::Int(Some(v)),
                    ValueRef::Real(v) => Value::Real(Some(v)),
                    ValueRef::Text(t) => Value::Text(Some(String::from_utf8_lossy(t).into_owned())),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    fn changed(&self, sql: &str, values: &[Value]) -> Result<u64> {
        let mut stmt = self.0.prepare_cached(sql)?;
        debug_check_order(&stmt, sql);
        Ok(stmt.execute(params_from_iter(values))? as u64)
    }
}

impl Tx for SqliteTx<'_> {
    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        values: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        let rows = self.rows(sql, values);
        Box::pin(std::future::ready(rows))
    }

    fn execute<'a>(&'a mut self, sql: &'a str, values: &'a [Value]) -> BoxFuture<'a, Result<u64>> {
        let changed = self.changed(sql, values);
        Box::pin(std::future::ready(changed))
    }

    fn lock_rows(&self) -> &'static str {
        ""
    }

    fn search_index(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::run_now;
    use crate::StoreError;

    /// A failed statement keeps the driver's error as its source; a unique index's refusal is
    /// told apart, so the feature that knows what is unique can name it.
    #[test]
    fn errors_keep_their_cause_and_unique_refusals_are_typed() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (name TEXT UNIQUE)")
            .unwrap();
        let mut tx = SqliteTx(&mut conn);
        let err = run_now(tx.query("SELECT nope FROM t", &[])).unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
        let cause = std::error::Error::source(&err).expect("the driver's error is kept");
        assert!(cause.to_string().contains("no such column"), "{cause}");

        let insert = "INSERT INTO t (name) VALUES ($1)";
        run_now(tx.execute(insert, &["a".into()])).unwrap();
        let dup = run_now(tx.execute(insert, &["a".into()])).unwrap_err();
        assert!(matches!(dup, StoreError::Duplicate(_)), "{dup:?}");
        let named = dup.or_conflict(|| "a thing named \"a\" exists already".into());
        assert_eq!(named.to_string(), "a thing named \"a\" exists already");
    }
}
