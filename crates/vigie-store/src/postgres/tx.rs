//! The shared logic's connection on PostgreSQL (see `crate::tx::Tx`): a pooled connection,
//! inside a transaction for writes.

use super::jobs::query;
use crate::sql::Value;
use crate::tx::Tx;
use crate::{Result, StoreError};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::Type;
use tokio_postgres::Row;

pub(super) struct PgTx<'a, C>(pub &'a C);

fn value_of(row: &Row, idx: usize) -> Result<Value> {
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
        return Err(StoreError::Database(format!(
            "column {idx} has the unexpected type {ty}"
        )));
    })
}

impl<C: GenericClient + Sync> Tx for PgTx<'_, C> {
    async fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Vec<Value>>> {
        query(self.0, sql, values)
            .await?
            .iter()
            .map(|row| (0..row.len()).map(|i| value_of(row, i)).collect())
            .collect()
    }

    async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        let owned = super::jobs::boxed(values);
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = owned
            .iter()
            .map(|b| b.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let stmt = self.0.prepare_cached(sql).await?;
        Ok(self.0.execute(&stmt, &params).await?)
    }

    fn lock_rows(&self) -> &'static str {
        " FOR UPDATE"
    }
}
