//! Jobs on SQLite: the shared statements of `crate::jobs`, run on one connection.
//!
//! Writes are called inside the writer's transaction, so "load the job, apply the rule, store
//! the items, save the job" is atomic, and the single writer makes a row lock unnecessary.

use crate::jobs::{self as sql, ItemsAdded, JobChange};
use crate::sql::{Columns, Value};
use crate::{ItemFilter, ItemPage, JobFilter, JobPage, Result, StoreError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection, Row, ToSql};
use vigie_core::job::{self, ItemCounts, JobMessage, JobUpdate};
use vigie_core::{Job, NewItem, ProjectId, Timestamp};

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

impl Columns for Row<'_> {
    fn int(&self, idx: usize) -> Result<Option<i64>> {
        Ok(self.get(idx)?)
    }
    fn real(&self, idx: usize) -> Result<Option<f64>> {
        Ok(self.get(idx)?)
    }
    fn text(&self, idx: usize) -> Result<Option<String>> {
        Ok(self.get(idx)?)
    }
    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>> {
        Ok(self.get(idx)?)
    }
}

/// Runs a query and decodes every row with `decode`.
pub(super) fn rows<T>(
    conn: &Connection,
    sql: &str,
    values: &[Value],
    decode: impl Fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut found = stmt.query(params_from_iter(values))?;
    let mut out = Vec::new();
    while let Some(row) = found.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn one_job(conn: &Connection, sql: &str, values: &[Value]) -> Result<Option<Job>> {
    Ok(rows(conn, sql, values, |r| sql::job_from(r))?
        .into_iter()
        .next())
}

pub fn create(conn: &Connection, job: &Job, read_token_hash: &str) -> Result<Job> {
    let values = sql::new_job_values(job, read_token_hash);
    one_job(conn, &sql::insert_job_sql(), &values)
        .map_err(|err| match err {
            StoreError::Database(m) if m.contains("UNIQUE constraint failed") => {
                StoreError::Conflict(sql::duplicate_job(&job.id))
            }
            other => other,
        })?
        .ok_or_else(|| StoreError::Database("the new job was not returned".into()))
}

pub fn find(conn: &Connection, project: ProjectId, id: &str) -> Result<Option<Job>> {
    one_job(
        conn,
        &sql::select_job_sql(false),
        &[project.0.into(), id.into()],
    )
}

pub fn by_read_token(conn: &Connection, token_hash: &str) -> Result<Option<Job>> {
    one_job(conn, &sql::select_job_by_token_sql(), &[token_hash.into()])
}

fn existing(conn: &Connection, project: ProjectId, id: &str) -> Result<Job> {
    find(conn, project, id)?.ok_or(StoreError::NotFound("job"))
}

fn save(conn: &Connection, job: &Job) -> Result<()> {
    conn.prepare_cached(sql::SAVE_JOB)?
        .execute(params_from_iter(sql::save_job_values(job)))?;
    Ok(())
}

fn add_messages(
    conn: &Connection,
    job: &Job,
    lines: Vec<String>,
    at: Timestamp,
) -> Result<Vec<JobMessage>> {
    let mut stmt = conn.prepare_cached(sql::INSERT_MESSAGE)?;
    lines
        .into_iter()
        .map(|text| {
            let id = stmt
                .query_row(params_from_iter(sql::message_values(job, at, &text)), |r| {
                    r.get(0)
                })?;
            Ok(JobMessage { id, at, text })
        })
        .collect()
}

pub fn update(
    conn: &Connection,
    project: ProjectId,
    id: &str,
    update: &JobUpdate,
    now: Timestamp,
) -> Result<JobChange> {
    let mut job = existing(conn, project, id)?;
    let applied = job.apply(update, now)?;
    save(conn, &job)?;
    let messages = add_messages(conn, &job, job::feed(update, &applied, &job), now)?;
    Ok(JobChange { job, messages })
}

pub fn add_items(
    conn: &Connection,
    project: ProjectId,
    id: &str,
    items: Vec<NewItem>,
    now: Timestamp,
) -> Result<ItemsAdded> {
    let mut job = existing(conn, project, id)?;
    // Refuse before writing anything: a finished job takes no items.
    job.ensure_open()?;
    let mut stored = Vec::with_capacity(items.len());
    let mut counts = ItemCounts::default();
    for chunk in items.chunks(sql::INSERT_CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * sql::ITEM_INSERT_WIDTH);
        for item in chunk {
            sql::item_values(&job, item, now, &mut values);
        }
        // Keys already stored insert nothing and return no row.
        let insert = sql::insert_items_sql(chunk.len());
        for item in rows(conn, &insert, &values, |r| sql::item_from(r, Some(&job.id)))? {
            counts.add(item.status);
            stored.push(item);
        }
    }
    let applied = job.record_items(counts, now)?;
    save(conn, &job)?;
    let lines = job::feed(&JobUpdate::Heartbeat { messages: vec![] }, &applied, &job);
    let messages = add_messages(conn, &job, lines, now)?;
    Ok(ItemsAdded {
        duplicates: items.len() - stored.len(),
        job,
        items: stored,
        messages,
    })
}

pub fn messages(conn: &Connection, job: &Job, limit: u32) -> Result<Vec<JobMessage>> {
    let mut found = rows(
        conn,
        sql::RECENT_MESSAGES,
        &[job.pk.into(), i64::from(limit).into()],
        |r| sql::message_from(r),
    )?;
    found.reverse();
    Ok(found)
}

pub fn list(conn: &Connection, filter: &JobFilter) -> Result<JobPage> {
    let q = sql::jobs_query(filter);
    let jobs = rows(conn, &q.page, &q.values, |r| sql::job_from(r))?;
    let total: i64 = conn
        .prepare_cached(&q.count)?
        .query_row(params_from_iter(&q.values), |r| r.get(0))?;
    Ok(JobPage {
        jobs,
        total: total as u64,
    })
}

pub fn list_items(conn: &Connection, filter: &ItemFilter) -> Result<ItemPage> {
    let q = sql::items_query(filter);
    let items = rows(conn, &q.page, &q.values, |r| sql::item_from(r, None))?;
    let mut counts = ItemCounts::default();
    if filter.with_counts {
        for (status, n) in rows(conn, &q.count, &q.values, |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            sql::add_count(&mut counts, &status, n)?;
        }
    }
    Ok(ItemPage { items, counts })
}

pub fn mark_stalled(conn: &Connection, now: Timestamp) -> Result<Vec<JobChange>> {
    let overdue = rows(
        conn,
        &sql::overdue_jobs_sql(false),
        &[now.millis().into()],
        |r| sql::job_from(r),
    )?;
    let mut changed = Vec::new();
    for mut job in overdue {
        if job.mark_stalled(now) {
            save(conn, &job)?;
            let messages = add_messages(conn, &job, vec![job::stalled_line(&job)], now)?;
            changed.push(JobChange { job, messages });
        }
    }
    Ok(changed)
}
