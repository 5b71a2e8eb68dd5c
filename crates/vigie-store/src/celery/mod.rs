//! Celery tasks, their events and the workers, written once for both backends (see
//! [`crate::tx::Tx`]).
//!
//! ```text
//! a batch of events from the broker ─► Store::apply_celery
//!   tasks: load the batch's tasks, apply each event in order (vigie_core::celery::Task::apply:
//!          Celery's precedence decides the state), write them back, keep every event
//!   workers: the same with Worker::apply
//! ─► the tasks and workers as they now are (for the jobs mirror, live pages and alerts)
//! ```

mod actions;
mod apply;

pub use actions::{CeleryAction, CeleryActionStore};

pub(crate) use apply::apply;

use crate::sql::{Columns, Value, Where};
use crate::tx::Tx;
use crate::Result;
use serde_json::{Map, Value as Json};
use vigie_core::celery::{SortKey, Task, TaskSort, TaskState, Worker};
use vigie_core::{ProjectId, Timestamp};

/// What the broker said, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub enum CeleryNews {
    /// A `task-…` event; its fields are kept as given (the consumer has already left out
    /// `vigie_core::celery::REDUNDANT_FIELDS`).
    Task {
        uuid: String,
        kind: String,
        hostname: String,
        at: Timestamp,
        fields: Map<String, Json>,
    },
    /// A `worker-…` event.
    Worker {
        hostname: String,
        kind: String,
        at: Timestamp,
        fields: Map<String, Json>,
    },
    /// A state the result backend published (`PROGRESS` with `current`/`total`, …).
    Backend {
        uuid: String,
        status: String,
        progress: Option<(i64, Option<i64>)>,
        /// What the task says it is doing, with its progress.
        description: Option<String>,
        at: Timestamp,
    },
}

/// What a batch changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CeleryApplied {
    pub tasks: Vec<Task>,
    pub workers: Vec<Worker>,
    /// The tasks' Jobs that were created or moved, with their new feed lines.
    pub jobs: Vec<crate::JobChange>,
}

/// One of a task's events, for its timeline.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TaskEvent {
    pub at: Timestamp,
    pub kind: String,
    pub hostname: String,
    pub fields: Map<String, Json>,
}

/// Filters of the tasks list; `None` means any. In `sort` order, then by id.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub project: ProjectId,
    pub name: Option<String>,
    pub state: Option<String>,
    pub worker: Option<String>,
    /// Children of this task (their `parent_id`).
    pub parent: Option<String>,
    /// Text the arguments, keyword arguments or result contain (any case).
    pub args: Option<String>,
    pub kwargs: Option<String>,
    pub result: Option<String>,
    /// Words each found in the name, arguments, result or exception (any case).
    pub words: Vec<String>,
    /// Last event at or after.
    pub since: Option<Timestamp>,
    /// Last event before.
    pub until: Option<Timestamp>,
    pub sort: TaskSort,
    pub limit: u32,
    pub offset: u32,
}

pub(super) const TASK_COLS: &str =
    "project_id, uuid, name, state, args, kwargs, result, exception, \
     traceback, worker, queue, routing_key, retries, eta, expires, parent_id, root_id, sent_at, \
     received_at, started_at, finished_at, runtime, progress_current, progress_total, updated_at, \
     progress_description";
pub(super) const WORKER_COLS: &str =
    "project_id, hostname, freq, last_heartbeat, active, processed, \
     loadavg, sw_ident, sw_ver, sw_sys, online_since, offline_at";

pub(super) fn task_from(r: &Vec<Value>) -> Result<Task> {
    let at = |i| r.int(i).map(|v| v.map(Timestamp));
    Ok(Task {
        project: ProjectId(r.req_int(0)?),
        uuid: r.req_text(1)?,
        name: r.text(2)?,
        state: TaskState::parse(&r.req_text(3)?),
        args: r.text(4)?,
        kwargs: r.text(5)?,
        result: r.text(6)?,
        exception: r.text(7)?,
        traceback: r.text(8)?,
        worker: r.text(9)?,
        queue: r.text(10)?,
        routing_key: r.text(11)?,
        retries: r.req_int(12)?,
        eta: r.text(13)?,
        expires: r.text(14)?,
        parent_id: r.text(15)?,
        root_id: r.text(16)?,
        sent_at: at(17)?,
        received_at: at(18)?,
        started_at: at(19)?,
        finished_at: at(20)?,
        runtime: r.real(21)?,
        progress: r
            .int(22)?
            .map(|current| (current, r.int(23).ok().flatten())),
        updated_at: Timestamp(r.req_int(24)?),
        progress_description: r.text(25)?,
    })
}

pub(super) fn task_values(t: &Task) -> Vec<Value> {
    let text = |v: &Option<String>| Value::Text(v.clone());
    vec![
        t.project.0.into(),
        t.uuid.as_str().into(),
        text(&t.name),
        t.state.as_str().into(),
        text(&t.args),
        text(&t.kwargs),
        text(&t.result),
        text(&t.exception),
        text(&t.traceback),
        text(&t.worker),
        text(&t.queue),
        text(&t.routing_key),
        t.retries.into(),
        text(&t.eta),
        text(&t.expires),
        text(&t.parent_id),
        text(&t.root_id),
        t.sent_at.into(),
        t.received_at.into(),
        t.started_at.into(),
        t.finished_at.into(),
        t.runtime.into(),
        t.progress.map(|p| p.0).into(),
        t.progress.and_then(|p| p.1).into(),
        t.updated_at.millis().into(),
        text(&t.progress_description),
    ]
}

/// A worker's online period: from `online_since` to its goodbye (`offline_at`) or, when it
/// went silent, its last heartbeat.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WorkerPeriod {
    pub hostname: String,
    pub online_since: Timestamp,
    pub last_heartbeat: Timestamp,
    pub offline_at: Option<Timestamp>,
}

pub(super) const PERIOD_COLS: &str =
    "project_id, hostname, online_since, last_heartbeat, offline_at";
pub(super) const PERIOD_KEY: &str = "project_id, hostname, online_since";

pub(super) fn period_values(w: &Worker) -> Vec<Value> {
    vec![
        w.project.0.into(),
        w.hostname.as_str().into(),
        w.online_since.millis().into(),
        w.last_heartbeat.millis().into(),
        w.offline_at.into(),
    ]
}

/// Online periods that lasted into `since` or later, newest first.
pub(crate) async fn worker_periods(
    tx: &mut dyn Tx,
    project: ProjectId,
    since: Timestamp,
) -> Result<Vec<WorkerPeriod>> {
    tx.query(
        "SELECT hostname, online_since, last_heartbeat, offline_at FROM celery_worker_periods \
         WHERE project_id = $1 AND last_heartbeat >= $2 ORDER BY online_since DESC, hostname",
        &[project.0.into(), since.millis().into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(WorkerPeriod {
            hostname: r.req_text(0)?,
            online_since: Timestamp(r.req_int(1)?),
            last_heartbeat: Timestamp(r.req_int(2)?),
            offline_at: r.int(3)?.map(Timestamp),
        })
    })
    .collect()
}

/// Tasks (with their events and Jobs) not moved since `tasks_before`, online periods that
/// ended before it, and workers silent since `workers_before`; answers the rows dropped.
/// Tasks go 5,000 at a time so a big purge never holds the writer long.
pub(crate) async fn prune(
    tx: &mut dyn Tx,
    tasks_before: Option<Timestamp>,
    workers_before: Option<Timestamp>,
) -> Result<u64> {
    let mut dropped = 0;
    if let Some(before) = tasks_before {
        let old = tx
            .query(
                "SELECT project_id, uuid FROM celery_tasks WHERE updated_at < $1 LIMIT 5000",
                &[before.millis().into()],
            )
            .await?;
        for row in &old {
            let key = [Value::Int(Some(row.req_int(0)?)), Value::Text(row.text(1)?)];
            if tx.search_index() {
                tx.execute(
                    "DELETE FROM celery_search WHERE rowid = (SELECT rowid FROM celery_tasks \
                     WHERE project_id = $1 AND uuid = $2)",
                    &key,
                )
                .await?;
            }
            for sql in [
                "DELETE FROM celery_task_events WHERE project_id = $1 AND uuid = $2",
                "DELETE FROM jobs WHERE project_id = $1 AND id = $2 AND kind = 'celery'",
                "DELETE FROM celery_tasks WHERE project_id = $1 AND uuid = $2",
            ] {
                dropped += tx.execute(sql, &key).await?;
            }
        }
        dropped += tx
            .execute(
                "DELETE FROM celery_worker_periods WHERE last_heartbeat < $1",
                &[before.millis().into()],
            )
            .await?;
        if !old.is_empty() {
            // Names no task carries any more leave the filters.
            tx.execute(
                "DELETE FROM celery_names WHERE kind = 'task' AND NOT EXISTS (SELECT 1 FROM \
                 celery_tasks t WHERE t.project_id = celery_names.project_id \
                 AND t.name = celery_names.name)",
                &[],
            )
            .await?;
            tx.execute(
                "DELETE FROM celery_names WHERE kind = 'queue' AND NOT EXISTS (SELECT 1 FROM \
                 celery_tasks t WHERE t.project_id = celery_names.project_id \
                 AND t.queue = celery_names.name)",
                &[],
            )
            .await?;
        }
    }
    if let Some(before) = workers_before {
        dropped += tx
            .execute(
                "DELETE FROM celery_workers WHERE last_heartbeat < $1",
                &[before.millis().into()],
            )
            .await?;
    }
    Ok(dropped)
}

pub(super) fn worker_from(r: &Vec<Value>) -> Result<Worker> {
    Ok(Worker {
        project: ProjectId(r.req_int(0)?),
        hostname: r.req_text(1)?,
        freq: r.real(2)?.unwrap_or(2.0),
        last_heartbeat: Timestamp(r.req_int(3)?),
        active: r.req_int(4)?,
        processed: r.req_int(5)?,
        loadavg: serde_json::from_str(&r.req_text(6)?).unwrap_or_default(),
        sw_ident: r.text(7)?,
        sw_ver: r.text(8)?,
        sw_sys: r.text(9)?,
        online_since: Timestamp(r.req_int(10)?),
        offline_at: r.int(11)?.map(Timestamp),
    })
}

pub(super) fn worker_values(w: &Worker) -> Vec<Value> {
    vec![
        w.project.0.into(),
        w.hostname.as_str().into(),
        Some(w.freq).into(),
        w.last_heartbeat.millis().into(),
        w.active.into(),
        w.processed.into(),
        serde_json::to_string(&w.loadavg)
            .unwrap_or_default()
            .as_str()
            .into(),
        w.sw_ident.as_deref().into(),
        w.sw_ver.as_deref().into(),
        w.sw_sys.as_deref().into(),
        w.online_since.millis().into(),
        w.offline_at.into(),
    ]
}

pub(crate) async fn tasks(tx: &mut dyn Tx, f: &TaskFilter) -> Result<Vec<Task>> {
    let mut w = Where::new();
    w.push("project_id = ?", f.project.0);
    w.equals("name", f.name.as_deref());
    w.equals("state", f.state.as_deref());
    w.equals("worker", f.worker.as_deref());
    w.equals("parent_id", f.parent.as_deref());
    w.time_range("updated_at", f.since, f.until);
    if tx.search_index() {
        let terms = [&f.args, &f.kwargs, &f.result]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(f.words.iter().map(String::as_str));
        if let Some(matching) = trigram_query(terms) {
            w.push(
                "rowid IN (SELECT rowid FROM celery_search WHERE celery_search MATCH ?)",
                matching.as_str(),
            );
        }
    }
    w.contains("args", f.args.as_deref());
    w.contains("kwargs", f.kwargs.as_deref());
    w.contains("result", f.result.as_deref());
    w.words(
        &["name", "args", "kwargs", "result", "exception"],
        Some(&f.words.join(" ")),
    );
    let sql = format!(
        "SELECT {TASK_COLS} FROM celery_tasks{} ORDER BY {} LIMIT {} OFFSET {}",
        w.sql(),
        order_by(f.sort),
        f.limit.clamp(1, 1000),
        f.offset
    );
    tx.all(&sql, &w.values, task_from).await
}

/// The text of a task the search index holds.
pub(super) fn search_body(t: &Task) -> String {
    [&t.name, &t.args, &t.kwargs, &t.result, &t.exception]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// An FTS5 query for tasks holding every trigram of every term (terms under 3 characters
/// are left to the LIKE that checks the real columns); `None` when no term is long enough.
fn trigram_query<'a>(terms: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut trigrams: Vec<String> = Vec::new();
    for term in terms {
        let chars: Vec<char> = term.to_lowercase().chars().collect();
        for three in chars.windows(3) {
            let gram: String = three.iter().collect();
            trigrams.push(format!("\"{}\"", gram.replace('"', "\"\"")));
        }
    }
    trigrams.sort_unstable();
    trigrams.dedup();
    (!trigrams.is_empty()).then(|| trigrams.join(" AND "))
}

/// The `ORDER BY` of a sort. Tasks without the value (no runtime yet) come last either way;
/// each key has an index (migrations 0009 and 0010).
fn order_by(sort: TaskSort) -> String {
    let (column, nullable) = match sort.key {
        SortKey::Updated => ("updated_at", false),
        SortKey::Received => ("received_at", true),
        SortKey::Started => ("started_at", true),
        SortKey::Runtime => ("runtime", true),
        SortKey::Name => ("name", true),
        SortKey::State => ("state", false),
    };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    let nulls = if nullable { " NULLS LAST" } else { "" };
    format!("{column} {direction}{nulls}, uuid {direction}")
}

pub(crate) async fn task(tx: &mut dyn Tx, project: ProjectId, uuid: &str) -> Result<Option<Task>> {
    tx.first_as(
        &format!("SELECT {TASK_COLS} FROM celery_tasks WHERE project_id = $1 AND uuid = $2"),
        &[project.0.into(), uuid.into()],
        task_from,
    )
    .await
}

pub(crate) async fn task_events(
    tx: &mut dyn Tx,
    project: ProjectId,
    uuid: &str,
) -> Result<Vec<TaskEvent>> {
    tx.query(
        "SELECT at, kind, hostname, fields FROM celery_task_events \
         WHERE project_id = $1 AND uuid = $2 ORDER BY at, kind",
        &[project.0.into(), uuid.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(TaskEvent {
            at: Timestamp(r.req_int(0)?),
            kind: r.req_text(1)?,
            hostname: r.req_text(2)?,
            fields: serde_json::from_str(&r.req_text(3)?).unwrap_or_default(),
        })
    })
    .collect()
}

pub(crate) async fn workers(tx: &mut dyn Tx, project: ProjectId) -> Result<Vec<Worker>> {
    tx.all(
        &format!(
            "SELECT {WORKER_COLS} FROM celery_workers WHERE project_id = $1 ORDER BY hostname"
        ),
        &[project.0.into()],
        worker_from,
    )
    .await
}

/// The queues tasks were sent to, alphabetically.
pub(crate) async fn queues(tx: &mut dyn Tx, project: ProjectId) -> Result<Vec<String>> {
    names(tx, project, "queue").await
}

/// The task names seen, alphabetically (Flower's task types).
pub(crate) async fn task_names(tx: &mut dyn Tx, project: ProjectId) -> Result<Vec<String>> {
    names(tx, project, "task").await
}

/// Names of `kind` (`task`, `queue`) kept in `celery_names` as tasks are stored.
async fn names(tx: &mut dyn Tx, project: ProjectId, kind: &str) -> Result<Vec<String>> {
    tx.query(
        "SELECT name FROM celery_names WHERE project_id = $1 AND kind = $2 ORDER BY name",
        &[project.0.into(), kind.into()],
    )
    .await?
    .iter()
    .map(|r| r.req_text(0))
    .collect()
}

/// Celery tasks, workers and their history.
#[async_trait::async_trait]
pub trait CeleryStore: Send + Sync {
    /// Applies broker news (task and worker events, result-backend states) in order.
    async fn apply_celery(
        &self,
        project: ProjectId,
        news: Vec<CeleryNews>,
    ) -> Result<CeleryApplied>;
    async fn celery_tasks(&self, filter: &TaskFilter) -> Result<Vec<vigie_core::celery::Task>>;
    async fn celery_task(
        &self,
        project: ProjectId,
        uuid: &str,
    ) -> Result<Option<vigie_core::celery::Task>>;
    async fn celery_task_events(&self, project: ProjectId, uuid: &str) -> Result<Vec<TaskEvent>>;
    async fn celery_workers(&self, project: ProjectId) -> Result<Vec<vigie_core::celery::Worker>>;
    async fn celery_task_names(&self, project: ProjectId) -> Result<Vec<String>>;
    /// The tasks that moved in `[since, until)`, latest first, at most `limit` (for figures
    /// per task type).
    async fn celery_runs(
        &self,
        project: ProjectId,
        since: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<vigie_core::celery::Task>>;
    async fn celery_queues(&self, project: ProjectId) -> Result<Vec<String>>;
    /// Workers' online periods that lasted into `since` or later, newest first.
    async fn celery_worker_periods(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<WorkerPeriod>>;
    /// Retention: tasks (with their events and Jobs) not moved since `tasks_before` and
    /// periods ended before it; workers silent since `workers_before`. Call again while it
    /// answers more than 0 rows: each call drops at most 5,000 tasks.
    async fn prune_celery(
        &self,
        tasks_before: Option<Timestamp>,
        workers_before: Option<Timestamp>,
    ) -> Result<u64>;
}

#[async_trait::async_trait]
impl<E: crate::engine::Engine> CeleryStore for crate::engine::Db<E> {
    async fn apply_celery(
        &self,
        project: ProjectId,
        news: Vec<CeleryNews>,
    ) -> Result<CeleryApplied> {
        self.write("apply_celery", move |tx| {
            Box::pin(async move { apply(tx, project, &news).await })
        })
        .await
    }

    async fn celery_tasks(&self, filter: &TaskFilter) -> Result<Vec<vigie_core::celery::Task>> {
        let filter = filter.clone();
        self.read("celery_tasks", move |tx| {
            Box::pin(async move { tasks(tx, &filter).await })
        })
        .await
    }

    async fn celery_task(
        &self,
        project: ProjectId,
        uuid: &str,
    ) -> Result<Option<vigie_core::celery::Task>> {
        let uuid = uuid.to_string();
        self.read("celery_task", move |tx| {
            Box::pin(async move { task(tx, project, &uuid).await })
        })
        .await
    }

    async fn celery_task_events(&self, project: ProjectId, uuid: &str) -> Result<Vec<TaskEvent>> {
        let uuid = uuid.to_string();
        self.read("celery_task_events", move |tx| {
            Box::pin(async move { task_events(tx, project, &uuid).await })
        })
        .await
    }

    async fn celery_workers(&self, project: ProjectId) -> Result<Vec<vigie_core::celery::Worker>> {
        self.read("celery_workers", move |tx| Box::pin(workers(tx, project)))
            .await
    }

    async fn celery_task_names(&self, project: ProjectId) -> Result<Vec<String>> {
        self.read("celery_task_names", move |tx| {
            Box::pin(task_names(tx, project))
        })
        .await
    }

    async fn celery_runs(
        &self,
        project: ProjectId,
        since: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<vigie_core::celery::Task>> {
        self.read("celery_runs", move |tx| {
            Box::pin(async move {
                tx.all(
                    &format!(
                        "SELECT {TASK_COLS} FROM celery_tasks WHERE project_id = $1 \
                         AND updated_at >= $2 AND updated_at < $3 ORDER BY updated_at DESC LIMIT $4"
                    ),
                    &[
                        project.0.into(),
                        since.millis().into(),
                        until.millis().into(),
                        i64::from(limit).into(),
                    ],
                    task_from,
                )
                .await
            })
        })
        .await
    }

    async fn celery_queues(&self, project: ProjectId) -> Result<Vec<String>> {
        self.read("celery_queues", move |tx| Box::pin(queues(tx, project)))
            .await
    }

    async fn celery_worker_periods(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<WorkerPeriod>> {
        self.read("celery_worker_periods", move |tx| {
            Box::pin(worker_periods(tx, project, since))
        })
        .await
    }

    async fn prune_celery(
        &self,
        tasks_before: Option<Timestamp>,
        workers_before: Option<Timestamp>,
    ) -> Result<u64> {
        self.write("prune_celery", move |tx| {
            Box::pin(prune(tx, tasks_before, workers_before))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigram_queries_quote_and_skip_short_terms() {
        assert_eq!(trigram_query(["ab"].into_iter()), None);
        assert_eq!(
            trigram_query(["A\"bc", "x"].into_iter()).as_deref(),
            Some("\"\"\"bc\" AND \"a\"\"b\""),
            "sorted, quotes doubled"
        );
        assert_eq!(
            trigram_query(["abcd", "bcd"].into_iter()).as_deref(),
            Some("\"abc\" AND \"bcd\""),
            "each trigram once"
        );
    }
}
