//! A batch of broker news written in one transaction.
//!
//! ```text
//! news ─► load the batch's tasks and workers (one SELECT per 500 ids)
//!      ─► apply each item in order (vigie_core::celery: Celery's precedence decides the state)
//!      ─► events inserted, tasks, workers and their online periods upserted, many rows per
//!         statement
//!      ─► each named task's Job created or moved (vigie_core::celery::Task::job_updates)
//! ```
//!
//! Statements carry many rows because a busy Celery cluster sends tens of thousands of events
//! a second, and on PostgreSQL every statement is a round trip.

use super::{period_values, search_body, PERIOD_COLS, PERIOD_KEY, TASK_COLS, WORKER_COLS};
use super::{task_from, task_values, worker_from, worker_values, CeleryApplied, CeleryNews};
use crate::jobs::{self as sql_jobs, JobChange};
use crate::sql::{Columns, Value, Where};
use crate::tx::Tx;
use crate::Result;
use std::collections::HashMap;
use vigie_core::celery::{Task, Worker};
use vigie_core::job::{self, Job, JobMessage};
use vigie_core::{ProjectId, Timestamp};

/// Ids per `IN (…)` lookup.
const LOOKUP_CHUNK: usize = 500;

/// Applies a batch of broker news to `project`'s tasks, workers and the tasks' Jobs, in order.
pub(crate) async fn apply(
    tx: &mut dyn Tx,
    project: ProjectId,
    news: &[CeleryNews],
) -> Result<CeleryApplied> {
    let uuids: Vec<&str> = news
        .iter()
        .filter_map(|n| match n {
            CeleryNews::Task { uuid, .. } | CeleryNews::Backend { uuid, .. } => Some(uuid.as_str()),
            CeleryNews::Worker { .. } => None,
        })
        .collect();
    let hosts: Vec<&str> = news
        .iter()
        .filter_map(|n| match n {
            CeleryNews::Worker { hostname, .. } => Some(hostname.as_str()),
            _ => None,
        })
        .collect();
    let mut tasks: HashMap<String, Task> =
        load(tx, project, "celery_tasks", TASK_COLS, "uuid", &uuids)
            .await?
            .iter()
            .map(|row| task_from(row).map(|t| (t.uuid.clone(), t)))
            .collect::<Result<_>>()?;
    let mut workers: HashMap<String, Worker> = load(
        tx,
        project,
        "celery_workers",
        WORKER_COLS,
        "hostname",
        &hosts,
    )
    .await?
    .iter()
    .map(|row| worker_from(row).map(|w| (w.hostname.clone(), w)))
    .collect::<Result<_>>()?;

    // What the search index holds for each task, to reindex only those whose text changed.
    let indexed: HashMap<String, String> = if tx.search_index() {
        tasks
            .values()
            .map(|t| (t.uuid.clone(), search_body(t)))
            .collect()
    } else {
        HashMap::new()
    };
    let (mut events, mut periods) = (Vec::new(), Vec::new());
    for item in news {
        match item {
            CeleryNews::Task {
                uuid,
                kind,
                hostname,
                at,
                fields,
            } => {
                tasks
                    .entry(uuid.clone())
                    .or_insert_with(|| Task::new(project, uuid, *at))
                    .apply(kind, hostname, *at, fields);
                events.push(vec![
                    project.0.into(),
                    uuid.as_str().into(),
                    at.millis().into(),
                    kind.as_str().into(),
                    hostname.as_str().into(),
                    Value::Text(serde_json::to_string(fields).ok()),
                ]);
            }
            CeleryNews::Backend {
                uuid,
                status,
                progress,
                description,
                at,
            } => tasks
                .entry(uuid.clone())
                .or_insert_with(|| Task::new(project, uuid, *at))
                .apply_backend_state(status, *progress, description.as_deref(), *at),
            CeleryNews::Worker {
                hostname,
                kind,
                at,
                fields,
            } => {
                let worker = workers
                    .entry(hostname.clone())
                    .or_insert_with(|| Worker::new(project, hostname, *at));
                let period = period_values(worker);
                let since = worker.online_since;
                worker.apply(kind, *at, fields);
                if worker.online_since != since {
                    // A new online period began: the last one is stored as it ended.
                    periods.push(period);
                }
            }
        }
    }
    let tasks: Vec<Task> = tasks.into_values().collect();
    let workers: Vec<Worker> = workers.into_values().collect();

    tx.insert_rows(
        "INSERT INTO celery_task_events (project_id, uuid, at, kind, hostname, fields)",
        "",
        events,
    )
    .await?;
    let save_tasks = upsert_head("celery_tasks", TASK_COLS, "project_id, uuid");
    tx.insert_rows(
        &save_tasks.0,
        &save_tasks.1,
        tasks.iter().map(task_values).collect(),
    )
    .await?;
    let save_workers = upsert_head("celery_workers", WORKER_COLS, "project_id, hostname");
    let rows = workers.iter().map(worker_values).collect();
    tx.insert_rows(&save_workers.0, &save_workers.1, rows)
        .await?;
    let save_periods = upsert_head("celery_worker_periods", PERIOD_COLS, PERIOD_KEY);
    periods.extend(workers.iter().map(period_values));
    tx.insert_rows(&save_periods.0, &save_periods.1, periods)
        .await?;

    if tx.search_index() {
        for task in &tasks {
            let body = search_body(task);
            if indexed.get(&task.uuid) != Some(&body) {
                tx.execute(
                    "INSERT OR REPLACE INTO celery_search (rowid, body) VALUES ((SELECT rowid \
                     FROM celery_tasks WHERE project_id = $1 AND uuid = $2), $3)",
                    &[
                        project.0.into(),
                        task.uuid.as_str().into(),
                        body.as_str().into(),
                    ],
                )
                .await?;
            }
        }
    }

    let mut names: Vec<(&str, &str)> = tasks
        .iter()
        .flat_map(|t| [("task", &t.name), ("queue", &t.queue)])
        .filter_map(|(kind, name)| Some((kind, name.as_deref()?)))
        .collect();
    names.sort_unstable();
    names.dedup();
    let rows = names
        .iter()
        .map(|(kind, name)| vec![project.0.into(), (*kind).into(), (*name).into()])
        .collect();
    tx.insert_rows(
        "INSERT INTO celery_names (project_id, kind, name)",
        " ON CONFLICT DO NOTHING",
        rows,
    )
    .await?;

    let jobs = mirror_jobs(tx, project, &tasks, Timestamp::now()).await?;
    Ok(CeleryApplied {
        tasks,
        workers,
        jobs,
    })
}

/// The rows of `table` in `project` whose `key` is one of `keys`.
async fn load(
    tx: &mut dyn Tx,
    project: ProjectId,
    table: &str,
    cols: &str,
    key: &str,
    keys: &[&str],
) -> Result<Vec<Vec<Value>>> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let mut rows = Vec::new();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let mut w = Where::new();
        w.push("project_id = ?", project.0);
        w.in_list(key, chunk.iter().copied());
        let sql = format!("SELECT {cols} FROM {table}{}{}", w.sql(), tx.lock_rows());
        rows.extend(tx.query(&sql, &w.values).await?);
    }
    Ok(rows)
}

/// `INSERT INTO table (cols)` and ` ON CONFLICT (keys) DO UPDATE SET` every other
/// column, around a multi-row `VALUES` (see `Tx::insert_rows`).
fn upsert_head(table: &str, cols: &str, keys: &str) -> (String, String) {
    let updates: Vec<String> = cols
        .split(',')
        .map(str::trim)
        .filter(|c| !keys.split(',').any(|k| k.trim() == *c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    (
        format!("INSERT INTO {table} ({cols})"),
        format!(" ON CONFLICT ({keys}) DO UPDATE SET {}", updates.join(", ")),
    )
}

/// Brings each named task's Job up to date, creating it the first time; answers the Jobs that
/// changed. An update a Job refuses (a negative count from a custom event) is left out: the
/// task keeps what it said.
async fn mirror_jobs(
    tx: &mut dyn Tx,
    project: ProjectId,
    tasks: &[Task],
    now: Timestamp,
) -> Result<Vec<JobChange>> {
    let ids: Vec<&str> = tasks.iter().map(|t| t.uuid.as_str()).collect();
    let mut jobs: HashMap<String, Job> = load(tx, project, "jobs", sql_jobs::JOB_COLS, "id", &ids)
        .await?
        .iter()
        .map(|row| sql_jobs::job_from(row).map(|j| (j.id.clone(), j)))
        .collect::<Result<_>>()?;
    let mut changes = Vec::new();
    for task in tasks {
        let (mut job, created) = match jobs.remove(&task.uuid) {
            Some(job) => (job, false),
            None => match task.new_job() {
                Some(Ok(job)) => (create_job(tx, &job).await?, true),
                Some(Err(_)) | None => continue,
            },
        };
        let mut lines = Vec::new();
        let was = job.status;
        let updates = task.job_updates(&job);
        for update in &updates {
            if let Ok(applied) = job.apply(update, now) {
                lines.extend(job::feed(update, &applied, &job));
            }
        }
        if !updates.is_empty() {
            sql_jobs::save(tx, &job, was, now).await?;
        }
        let mut messages = Vec::with_capacity(lines.len());
        for text in lines {
            let row = tx
                .query(
                    sql_jobs::INSERT_MESSAGE,
                    &sql_jobs::message_values(&job, now, &text),
                )
                .await?;
            let id = row.first().map(|r| r.req_int(0)).transpose()?.unwrap_or(0);
            messages.push(JobMessage { id, at: now, text });
        }
        if created || !updates.is_empty() {
            changes.push(JobChange { job, messages });
        }
    }
    Ok(changes)
}

/// Stores a task's new Job. Nobody reads a task through a job read token: its "hash" is a
/// marker no token hashes to (a hash is 64 hex digits), unique like the task id, and cheaper
/// than hashing a random token for every task.
async fn create_job(tx: &mut dyn Tx, job: &Job) -> Result<Job> {
    let values = sql_jobs::new_job_values(job, &format!("celery:{}", job.id));
    sql_jobs::job_from(&tx.one(&sql_jobs::insert_job_sql(), &values).await?)
}
