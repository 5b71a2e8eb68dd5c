//! Jobs on PostgreSQL: the shared statements of `crate::jobs`, run on pooled connections.
//!
//! A change is one transaction that locks the job row (`SELECT … FOR UPDATE`), so two
//! instances (or two requests) updating one job take turns, and the counters stay equal to the
//! items. Items go in as multi-row inserts.

use super::unique;
use crate::jobs::{self as sql, ItemsAdded, JobChange};
use crate::sql::{Columns, Value};
use crate::{ItemFilter, ItemPage, JobFilter, JobPage, Result, StoreError};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use vigie_core::job::{self, ItemCounts, JobMessage, JobUpdate};
use vigie_core::{Job, NewItem, ProjectId, Timestamp};

impl Columns for Row {
    fn int(&self, idx: usize) -> Result<Option<i64>> {
        Ok(self.try_get(idx)?)
    }
    fn real(&self, idx: usize) -> Result<Option<f64>> {
        Ok(self.try_get(idx)?)
    }
    fn text(&self, idx: usize) -> Result<Option<String>> {
        Ok(self.try_get(idx)?)
    }
    fn blob(&self, idx: usize) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get(idx)?)
    }
}

pub(super) fn boxed(values: &[Value]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                Value::Int(v) => Box::new(*v),
                Value::Real(v) => Box::new(*v),
                Value::Text(v) => Box::new(v.clone()),
                Value::Blob(v) => Box::new(v.clone()),
            }
        })
        .collect()
}

/// Runs a statement (prepared once per connection) with `values`.
pub(super) async fn query(
    client: &impl GenericClient,
    sql: &str,
    values: &[Value],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let owned = boxed(values);
    let params: Vec<&(dyn ToSql + Sync)> = owned
        .iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let stmt = client.prepare_cached(sql).await?;
    client.query(&stmt, &params).await
}

pub(super) async fn rows(
    client: &impl GenericClient,
    sql: &str,
    values: &[Value],
) -> Result<Vec<Row>> {
    Ok(query(client, sql, values).await?)
}

async fn one_job(client: &impl GenericClient, sql: &str, values: &[Value]) -> Result<Option<Job>> {
    rows(client, sql, values)
        .await?
        .first()
        .map(sql::job_from)
        .transpose()
}

pub async fn create(client: &impl GenericClient, job: &Job, read_token_hash: &str) -> Result<Job> {
    let values = sql::new_job_values(job, read_token_hash);
    let found = query(client, &sql::insert_job_sql(), &values)
        .await
        .map_err(unique(|| sql::duplicate_job(&job.id)))?;
    found
        .first()
        .map(sql::job_from)
        .transpose()?
        .ok_or_else(|| StoreError::Database("the new job was not returned".into()))
}

pub async fn find(
    client: &impl GenericClient,
    project: ProjectId,
    id: &str,
) -> Result<Option<Job>> {
    one_job(
        client,
        &sql::select_job_sql(false),
        &[project.0.into(), id.into()],
    )
    .await
}

pub async fn by_read_token(client: &impl GenericClient, token_hash: &str) -> Result<Option<Job>> {
    one_job(
        client,
        &sql::select_job_by_token_sql(),
        &[token_hash.into()],
    )
    .await
}

async fn locked(client: &impl GenericClient, project: ProjectId, id: &str) -> Result<Job> {
    one_job(
        client,
        &sql::select_job_sql(true),
        &[project.0.into(), id.into()],
    )
    .await?
    .ok_or(StoreError::NotFound("job"))
}

async fn save(client: &impl GenericClient, job: &Job) -> Result<()> {
    rows(client, sql::SAVE_JOB, &sql::save_job_values(job)).await?;
    Ok(())
}

async fn add_messages(
    client: &impl GenericClient,
    job: &Job,
    lines: Vec<String>,
    at: Timestamp,
) -> Result<Vec<JobMessage>> {
    let mut out = Vec::with_capacity(lines.len());
    for text in lines {
        let found = rows(
            client,
            sql::INSERT_MESSAGE,
            &sql::message_values(job, at, &text),
        )
        .await?;
        let id = found
            .first()
            .ok_or_else(|| StoreError::Database("message id not returned".into()))?
            .try_get(0)?;
        out.push(JobMessage { id, at, text });
    }
    Ok(out)
}

pub async fn update(
    client: &impl GenericClient,
    project: ProjectId,
    id: &str,
    update: &JobUpdate,
    now: Timestamp,
) -> Result<JobChange> {
    let mut job = locked(client, project, id).await?;
    let applied = job.apply(update, now)?;
    save(client, &job).await?;
    let messages = add_messages(client, &job, job::feed(update, &applied, &job), now).await?;
    Ok(JobChange { job, messages })
}

pub async fn add_items(
    client: &impl GenericClient,
    project: ProjectId,
    id: &str,
    items: Vec<NewItem>,
    now: Timestamp,
) -> Result<ItemsAdded> {
    let mut job = locked(client, project, id).await?;
    // Refuse before writing anything: a finished job takes no items.
    job.ensure_open()?;
    let mut stored = Vec::with_capacity(items.len());
    let mut counts = ItemCounts::default();
    for chunk in items.chunks(sql::INSERT_CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * sql::ITEM_INSERT_WIDTH);
        for item in chunk {
            sql::item_values(&job, item, now, &mut values);
        }
        for row in rows(client, &sql::insert_items_sql(chunk.len()), &values).await? {
            let item = sql::item_from(&row, Some(&job.id))?;
            counts.add(item.status);
            stored.push(item);
        }
    }
    let applied = job.record_items(counts, now)?;
    save(client, &job).await?;
    let lines = job::feed(&JobUpdate::Heartbeat { messages: vec![] }, &applied, &job);
    let messages = add_messages(client, &job, lines, now).await?;
    Ok(ItemsAdded {
        duplicates: items.len() - stored.len(),
        job,
        items: stored,
        messages,
    })
}

pub async fn messages(
    client: &impl GenericClient,
    job: &Job,
    limit: u32,
) -> Result<Vec<JobMessage>> {
    let found = rows(
        client,
        sql::RECENT_MESSAGES,
        &[job.pk.into(), i64::from(limit).into()],
    )
    .await?;
    let mut out = found
        .iter()
        .map(sql::message_from)
        .collect::<Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

pub async fn list(client: &impl GenericClient, filter: &JobFilter) -> Result<JobPage> {
    let q = sql::jobs_query(filter);
    let jobs = rows(client, &q.page, &q.values)
        .await?
        .iter()
        .map(sql::job_from)
        .collect::<Result<Vec<_>>>()?;
    let total: i64 = rows(client, &q.count, &q.values)
        .await?
        .first()
        .map_or(Ok(0), |r| r.try_get(0))?;
    Ok(JobPage {
        jobs,
        total: total as u64,
    })
}

pub async fn list_items(client: &impl GenericClient, filter: &ItemFilter) -> Result<ItemPage> {
    let q = sql::items_query(filter);
    let items = rows(client, &q.page, &q.values)
        .await?
        .iter()
        .map(|r| sql::item_from(r, None))
        .collect::<Result<Vec<_>>>()?;
    let mut counts = ItemCounts::default();
    if filter.with_counts {
        for row in rows(client, &q.count, &q.values).await? {
            sql::add_count(&mut counts, row.try_get(0)?, row.try_get(1)?)?;
        }
    }
    Ok(ItemPage { items, counts })
}

pub async fn mark_stalled(client: &impl GenericClient, now: Timestamp) -> Result<Vec<JobChange>> {
    let overdue = rows(client, &sql::overdue_jobs_sql(true), &[now.millis().into()]).await?;
    let mut changed = Vec::new();
    for row in overdue {
        let mut job = sql::job_from(&row)?;
        if job.mark_stalled(now) {
            save(client, &job).await?;
            let messages = add_messages(client, &job, vec![job::stalled_line(&job)], now).await?;
            changed.push(JobChange { job, messages });
        }
    }
    Ok(changed)
}
