//! The shared logic's connection on PostgreSQL (see `crate::tx::Tx`): a pooled connection,
//! inside a transaction for writes.

use crate::sql::Value;
use crate::tx::{number_extra, BoxFuture, Row, Statement, Tx};
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

/// Runs `sql` (prepared once per connection) and answers its rows.
async fn rows_of<C: GenericClient + Sync>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    let stmt = client.prepare_cached(sql).await?;
    let rows = client.query(&stmt, params).await?;
    rows.iter()
        .map(|row| (0..row.len()).map(|i| value_of(row, i)).collect())
        .collect()
}

impl<C: GenericClient + Sync> Tx for PgTx<'_, C> {
    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        values: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move { rows_of(self.0, sql, &params(values)).await })
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

    fn write_rows<'a>(
        &'a mut self,
        insert: &'a str,
        tail: &'a str,
        rows: Vec<Row>,
        extra: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move {
            let arrays = RowArrays::of(rows)?;
            let sql = arrays.statement(insert, tail, extra.len());
            let mut bound = arrays.params();
            bound.extend(params(extra));
            rows_of(self.0, &sql, &bound).await
        })
    }

    fn together<'a>(
        &'a mut self,
        statements: Vec<Statement<'a>>,
    ) -> BoxFuture<'a, Result<Vec<Vec<Row>>>> {
        Box::pin(async move {
            let client = self.0;
            let mut prepared = Vec::with_capacity(statements.len());
            for statement in statements {
                prepared.push(match statement {
                    Statement::Rows(w) if w.rows.is_empty() => None,
                    Statement::Rows(w) => {
                        let arrays = RowArrays::of(w.rows)?;
                        Some((arrays.statement(w.insert, w.tail, 0), Bound::Arrays(arrays)))
                    }
                    Statement::Query(sql, values) => Some((sql, Bound::Values(values))),
                });
            }
            // Polled together, tokio-postgres sends every request before it reads an answer;
            // the server runs them in the order sent.
            let answers = prepared.iter().map(|statement| async move {
                let Some((sql, bound)) = statement else {
                    return Ok(Vec::new());
                };
                let values = match bound {
                    Bound::Arrays(arrays) => arrays.params(),
                    Bound::Values(values) => params(values),
                };
                rows_of(client, sql, &values).await
            });
            futures_util::future::try_join_all(answers).await
        })
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

/// The values one statement of [`Tx::together`] binds.
enum Bound {
    Arrays(RowArrays),
    Values(Vec<Value>),
}

/// Rows turned into one array per column, for `INSERT … SELECT … FROM unnest($1, $2, …)`: a
/// single statement of one shape for any number of rows, where `VALUES` lists would take
/// several statements (a parameter limit, a shape per size) and a round trip each.
struct RowArrays {
    /// A column's values, or `None` where every row's is NULL (it is written as `NULL`, which
    /// takes the column's type, where an array would need one named).
    columns: Vec<Option<Array>>,
    rows: usize,
}

/// One column's values, typed by its first value that is not NULL.
enum Array {
    Int(Vec<Option<i64>>),
    Real(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Blob(Vec<Option<Vec<u8>>>),
}

impl Array {
    fn sql_type(&self) -> &'static str {
        match self {
            Array::Int(_) => "int8[]",
            Array::Real(_) => "float8[]",
            Array::Text(_) => "text[]",
            Array::Blob(_) => "bytea[]",
        }
    }

    fn as_param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Array::Int(v) => v,
            Array::Real(v) => v,
            Array::Text(v) => v,
            Array::Blob(v) => v,
        }
    }

    /// An empty array of `sample`'s type, or `None` for a NULL.
    fn typed_like(sample: &Value, rows: usize) -> Option<Array> {
        Some(match sample {
            Value::Int(Some(_)) => Array::Int(Vec::with_capacity(rows)),
            Value::Real(Some(_)) => Array::Real(Vec::with_capacity(rows)),
            Value::Text(Some(_)) => Array::Text(Vec::with_capacity(rows)),
            Value::Blob(_) => Array::Blob(Vec::with_capacity(rows)),
            Value::Int(None) | Value::Real(None) | Value::Text(None) => return None,
        })
    }

    fn push(&mut self, value: Value, column: usize) -> Result<()> {
        match (self, value) {
            (Array::Int(v), Value::Int(x)) => v.push(x),
            (Array::Real(v), Value::Real(x)) => v.push(x),
            (Array::Real(v), Value::Int(x)) => v.push(x.map(|i| i as f64)),
            (Array::Text(v), Value::Text(x)) => v.push(x),
            (Array::Blob(v), Value::Blob(x)) => v.push(Some(x)),
            (array, Value::Int(None) | Value::Real(None) | Value::Text(None)) => array.push_null(),
            (_, other) => {
                return Err(StoreError::database(format!(
                    "column {column} of a multi-row write mixes types: {other:?}"
                )))
            }
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            Array::Int(v) => v.push(None),
            Array::Real(v) => v.push(None),
            Array::Text(v) => v.push(None),
            Array::Blob(v) => v.push(None),
        }
    }
}

impl RowArrays {
    /// `rows` (each the same width) as column arrays.
    fn of(rows: Vec<Row>) -> Result<RowArrays> {
        let (width, count) = (rows.first().map_or(0, Vec::len), rows.len());
        if rows.iter().any(|row| row.len() != width) {
            return Err(StoreError::database(
                "the rows of a multi-row write differ in width",
            ));
        }
        let mut columns: Vec<Option<Array>> = (0..width)
            .map(|c| {
                let typed = rows
                    .iter()
                    .find_map(|row| Array::typed_like(&row[c], count));
                // A column of integers and reals is a column of reals.
                let real = rows
                    .iter()
                    .any(|row| matches!(row[c], Value::Real(Some(_))));
                match typed {
                    Some(Array::Int(_)) if real => Some(Array::Real(Vec::with_capacity(count))),
                    typed => typed,
                }
            })
            .collect();
        for row in rows {
            for (c, value) in row.into_iter().enumerate() {
                if let Some(array) = &mut columns[c] {
                    array.push(value, c)?;
                }
            }
        }
        Ok(RowArrays {
            columns,
            rows: count,
        })
    }

    /// `insert SELECT c0, NULL, c2, … FROM unnest($1::int8[], …) AS r(c0, c2, …) tail`, with
    /// `tail`'s `$+N` numbered after the arrays.
    fn statement(&self, insert: &str, tail: &str, extra: usize) -> String {
        let (mut select, mut arrays, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for (c, column) in self.columns.iter().enumerate() {
            match column {
                Some(array) => {
                    arrays.push(format!("${}::{}", arrays.len() + 1, array.sql_type()));
                    names.push(format!("c{c}"));
                    select.push(format!("c{c}"));
                }
                None => select.push("NULL".to_string()),
            }
        }
        let tail = number_extra(tail, extra, arrays.len());
        let source = if arrays.is_empty() {
            // Every value is NULL: there is no array to count the rows by.
            format!("generate_series(1, {})", self.rows)
        } else {
            format!("unnest({}) AS r({})", arrays.join(", "), names.join(", "))
        };
        format!("{insert} SELECT {} FROM {source}{tail}", select.join(", "))
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.columns.iter().flatten().map(Array::as_param).collect()
    }
}

#[cfg(test)]
mod row_arrays {
    use super::RowArrays;
    use crate::sql::Value;

    #[test]
    fn one_statement_of_one_shape_whatever_the_rows() {
        let row = |n: i64, name: Option<&str>| vec![Value::from(n), name.into(), Value::Int(None)];
        let two = RowArrays::of(vec![row(1, Some("a")), row(2, None)]).unwrap();
        let many = RowArrays::of((0..1_000).map(|n| row(n, Some("b"))).collect()).unwrap();
        let sql = two.statement("INSERT INTO t (a, b, c)", " SET d = $+1", 1);
        assert_eq!(
            sql,
            "INSERT INTO t (a, b, c) SELECT c0, c1, NULL FROM \
             unnest($1::int8[], $2::text[]) AS r(c0, c1) SET d = $3"
        );
        assert_eq!(
            many.statement("INSERT INTO t (a, b, c)", " SET d = $+1", 1),
            sql
        );
        assert_eq!(two.params().len(), 2);
    }

    #[test]
    fn a_column_is_typed_by_its_first_value_that_is_not_null() {
        let rows = vec![
            vec![Value::Text(None), Value::Real(None)],
            vec![Value::from("x"), Value::from(1)],
            vec![Value::from("y"), Value::Real(Some(2.5))],
        ];
        // A column of integers and reals is a column of reals.
        let arrays = RowArrays::of(rows).unwrap();
        assert_eq!(
            arrays.statement("INSERT INTO t (a, b)", "", 0),
            "INSERT INTO t (a, b) SELECT c0, c1 FROM unnest($1::text[], $2::float8[]) AS r(c0, c1)"
        );
        let ragged = RowArrays::of(vec![vec![Value::from(1)], vec![]]);
        assert!(ragged.is_err(), "rows of different widths are refused");
    }

    #[test]
    fn mixed_types_are_refused_and_all_nulls_still_make_rows() {
        let mixed = RowArrays::of(vec![vec![Value::from(1)], vec![Value::from("one")]]);
        let err = mixed
            .err()
            .expect("a text in a column of integers is refused");
        assert!(err.to_string().contains("mixes types"), "{err}");
        let nulls = RowArrays::of(vec![vec![Value::Int(None)]; 3]).unwrap();
        assert_eq!(
            nulls.statement("INSERT INTO t (a)", "", 0),
            "INSERT INTO t (a) SELECT NULL FROM generate_series(1, 3)"
        );
        assert!(nulls.params().is_empty());
    }
}
