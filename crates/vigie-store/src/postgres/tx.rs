//! The shared logic's connection on PostgreSQL (see `crate::tx::Tx`): a pooled connection,
//! inside a transaction for writes.

use crate::sql::Value;
use crate::tx::{BoxFuture, Row, Tx};
use crate::{Result, StoreError};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};

pub(super) struct PgTx<'a, C>(pub &'a C);

/// The parameters as `tokio-postgres` takes them.
fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| -> &(dyn ToSql + Sync) {
            match v {
                Value::Int(v) => v,
                Value::Real(v) => v,
                Value::Text(v) => v,
                Value::Blob(v) => v,
            }
        })
        .collect()
}

fn value_of(row: &tokio_postgres::Row, idx: usize) -> Result<Value> {
    let ty = row.columns()[idx].type_();
    Ok(if *ty == Type::INT8 {
        Value::Int(row.try_get(idx)?)
    } else if *ty == Type::INT4 {
        Value::Int(row.try_get::<_, Option<i32>>(idx)?.map(i64::from))
    } else if *ty == Type::FLOAT8 {
        Value::Real(row.try_get(idx)?)
    } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
        Value::Text(row.try_get(idx)?)
    } else if *ty == Type::BYTEA {
        match row.try_get::<_, Option<Vec<u8>>>(idx)? {
            Some(bytes) => Value::Blob(bytes),
            None => Value::Int(None),
        }
    } else {
        return Err(StoreError::database(format!(
            "column {idx} has the unexpected type {ty}"
        )));
    })
}

impl<C: GenericClient + Sync> Tx for PgTx<'_, C> {
    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        values: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move {
            let stmt = self.0.prepare_cached(sql).await?;
            let rows = self.0.query(&stmt, &params(values)).await?;
            rows.iter()
                .map(|row| (0..row.len()).map(|i| value_of(row, i)).collect())
                .collect()
        })
    }

    fn execute<'a>(&'a mut self, sql: &'a str, values: &'a [Value]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let stmt = self.0.prepare_cached(sql).await?;
            Ok(self.0.execute(&stmt, &params(values)).await?)
        })
    }

    fn lock_rows(&self) -> &'static str {
        " FOR UPDATE"
    }

    fn lock_table(&self, table: &str) -> Option<String> {
        Some(format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    }

    fn lock_feed(&self) -> Option<String> {
        Some(format!(
            "SELECT pg_advisory_xact_lock({}, hashtext(current_schema()))",
            crate::feed::FEED_LOCK
        ))
    }

    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
}
