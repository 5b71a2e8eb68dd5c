//! The pieces of SQL both backends share: parameter values, column readers, WHERE builders.
//!
//! Both engines read `$1, $2, …` placeholders (SQLite numbers `$N` parameters in order of
//! first appearance, so binding them positionally works), so statements written once here run
//! on either backend; each backend only converts [`Value`]s and reads rows through [`Columns`].

use crate::{Result, StoreError};
use vigie_core::Timestamp;

/// `NotFound(what)` when a statement changed no row: the row named was not there.
pub(crate) fn found(changed: u64, what: &'static str) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

/// A parameter value, converted by each backend to its own type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Self {
        Value::Real(v)
    }
}
impl From<vigie_core::issue::IssueId> for Value {
    fn from(v: vigie_core::issue::IssueId) -> Self {
        Value::Int(Some(v.0))
    }
}
impl From<Option<vigie_core::issue::IssueId>> for Value {
    fn from(v: Option<vigie_core::issue::IssueId>) -> Self {
        Value::Int(v.map(|id| id.0))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_string))
    }
}
impl From<Option<Timestamp>> for Value {
    fn from(v: Option<Timestamp>) -> Self {
        Value::Int(v.map(Timestamp::millis))
    }
}

/// Reads a column by position; implemented for both backends' row types.
pub trait Columns {
    fn int(&self, idx: usize) -> Result<Option<i64>>;
    fn real(&self, idx: usize) -> Result<Option<f64>>;
    fn text(&self, idx: usize) -> Result<Option<String>>;
    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>>;

    fn req_int(&self, idx: usize) -> Result<i64> {
        self.int(idx)?.ok_or_else(|| null_column(idx))
    }
    fn req_text(&self, idx: usize) -> Result<String> {
        self.text(idx)?.ok_or_else(|| null_column(idx))
    }
    fn req_blob(&self, idx: usize) -> Result<Vec<u8>> {
        self.blob(idx)?.ok_or_else(|| null_column(idx))
    }
    /// A text column parsed into `T` (a status, a role, a scope).
    fn parsed<T: std::str::FromStr>(&self, idx: usize) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        parse_stored(&self.req_text(idx)?)
    }
}

/// A stored text parsed into `T`; a value no version of Vigie writes is a database error.
pub(crate) fn parse_stored<T: std::str::FromStr>(raw: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    raw.parse()
        .map_err(|e: T::Err| StoreError::database(format!("unexpected stored value: {e}")))
}

pub(crate) fn null_column(idx: usize) -> StoreError {
    StoreError::database(format!("unexpected NULL in column {idx}"))
}

/// The `VALUES` of a multi-row insert: `rows` groups of `width` numbered parameters,
/// `($1, $2), ($3, $4)`.
pub fn value_rows(rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 1..=width {
            if c > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * width + c).to_string());
        }
        sql.push(')');
    }
    sql
}

/// A `WHERE` clause under construction, numbering its parameters as it goes.
pub(crate) struct Where {
    pub clauses: Vec<String>,
    pub values: Vec<Value>,
}

impl Where {
    pub(crate) fn new() -> Self {
        Where {
            clauses: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Adds `template` with each `?` replaced by the next parameter.
    pub(crate) fn push(&mut self, template: &str, value: impl Into<Value>) {
        self.values.push(value.into());
        let n = self.values.len();
        self.clauses.push(template.replace('?', &format!("${n}")));
    }

    /// `column IN (…)` over `values` (the caller keeps lists to a few hundred). Each length is
    /// its own statement shape on purpose: padding lists to a few lengths was tried, and the
    /// Sentry ingest rate on PostgreSQL halved once the events table grew — most likely
    /// because a shape met often gets a generic plan (BENCHMARKS.md, "PostgreSQL side by
    /// side").
    pub(crate) fn in_list<V: Into<Value>>(
        &mut self,
        column: &str,
        values: impl IntoIterator<Item = V>,
    ) {
        let clause = self.in_list_clause(column, values);
        self.clauses.push(clause);
    }

    /// The clause [`in_list`](Self::in_list) adds, with its values numbered here, for the
    /// caller to put inside a larger clause.
    pub(crate) fn in_list_clause<V: Into<Value>>(
        &mut self,
        column: &str,
        values: impl IntoIterator<Item = V>,
    ) -> String {
        let first = self.values.len() + 1;
        self.values.extend(values.into_iter().map(Into::into));
        let list = (first..=self.values.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("{column} IN ({list})")
    }

    /// `column` contains `text`, ignoring case.
    pub(crate) fn contains(&mut self, column: &str, text: Option<&str>) {
        if let Some(text) = text {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            self.push(
                &format!("lower({column}) LIKE ? ESCAPE '\\'"),
                pattern.as_str(),
            );
        }
    }

    /// `column` is `pattern` exactly, or, when it holds `*` (anything), matches it ignoring
    /// case.
    pub(crate) fn glob(&mut self, column: &str, pattern: Option<&str>) {
        match pattern {
            Some(p) if p.contains('*') => {
                let like = glob_like(&p.to_lowercase());
                self.push(
                    &format!("lower({column}) LIKE ? ESCAPE '\\'"),
                    like.as_str(),
                );
            }
            exact => self.equals(column, exact),
        }
    }

    pub(crate) fn equals(&mut self, column: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.push(&format!("{column} = ?"), v);
        }
    }

    pub(crate) fn time_range(
        &mut self,
        column: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) {
        if let Some(t) = since {
            self.push(&format!("{column} >= ?"), t.millis());
        }
        if let Some(t) = until {
            self.push(&format!("{column} < ?"), t.millis());
        }
    }

    /// Every word of `text` must appear in one of `columns`, ignoring case.
    pub(crate) fn words(&mut self, columns: &[&str], text: Option<&str>) {
        // Callers refuse longer searches (`vigie_core::validate::search_words`); this only
        // keeps a statement small whatever reaches it.
        let most = vigie_core::validate::MAX_SEARCH_WORDS;
        for word in text.unwrap_or("").split_whitespace().take(most) {
            let pattern = format!("%{}%", escape_like(&word.to_lowercase()));
            self.values.push(Value::Text(Some(pattern)));
            let n = self.values.len();
            let any = columns
                .iter()
                .map(|c| format!("lower(coalesce({c}, '')) LIKE ${n} ESCAPE '\\'"))
                .collect::<Vec<_>>()
                .join(" OR ");
            self.clauses.push(format!("({any})"));
        }
    }

    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// A glob (`*`: anything) as a LIKE pattern, every other character literal.
pub(crate) fn glob_like(pattern: &str) -> String {
    pattern
        .split('*')
        .map(escape_like)
        .collect::<Vec<_>>()
        .join("%")
}

pub(crate) fn escape_like(word: &str) -> String {
    word.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
