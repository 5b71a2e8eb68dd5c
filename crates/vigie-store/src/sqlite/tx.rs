//! The shared logic's connection on SQLite (see `crate::tx::Tx`): the writer's, inside its
//! batch transaction, or a reader's.

use crate::sql::Value;
use crate::tx::Tx;
use crate::Result;
use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection};

pub(super) struct SqliteTx<'a>(pub &'a Connection);

impl Tx for SqliteTx<'_> {
    async fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Vec<Value>>> {
        let mut stmt = self.0.prepare_cached(sql)?;
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

    async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        Ok(self
            .0
            .prepare_cached(sql)?
            .execute(params_from_iter(values))? as u64)
    }

    fn lock_rows(&self) -> &'static str {
        ""
    }

    fn search_index(&self) -> bool {
        true
    }
}
