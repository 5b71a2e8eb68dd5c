//! Jobs, items and messages, written once for both backends (see [`crate::tx::Tx`]).
//!
//! ```text
//!   JobStore::update_job ── write tx ── SELECT … FOR UPDATE (PostgreSQL) / the single writer
//!                                  ├─ vigie_core::job rule (Job::apply, record_items, …)
//!                                  ├─ UPDATE jobs … (SAVE_JOB: the whole row)
//!                                  └─ INSERT job_messages … (the feed lines the rule made)
//! ```
//!
//! The rules that move a job are in `vigie_core::job`: a change loads the row (locked where
//! the engine has row locks, so two instances updating one job take turns), calls the rule,
//! and writes the whole row back with [`SAVE_JOB`], in one transaction with its items and feed
//! lines, so the counters always equal what the items say.

use crate::engine::{Db, Engine};
use crate::feed::{self, FeedChange};
use crate::sql::{parse_stored, Columns, Value, Where};
use crate::tx::Tx;
use crate::{Result, StoreError};
use async_trait::async_trait;
use vigie_core::job::{self, ItemCounts, JobError, JobMessage, JobUpdate, RateSample, Summary};
use vigie_core::{Item, ItemStatus, Job, JobStatus, NewItem, ProjectId, Timestamp};

/// Filters for the jobs list; `None` means any. Newest first.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub project: ProjectId,
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
    /// Reported by the application, a Celery task or a monitor's run (`None`: any).
    pub origin: Option<vigie_core::JobOrigin>,
    pub application: Option<String>,
    pub launched_by: Option<String>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// Words found in the name, id, kind, application or last message (case-insensitive).
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Clone, Debug, Default)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Jobs matching the filter, all pages together.
    pub total: u64,
}

/// Filters for the items list (the "trace rows" query); `None` means any. Newest first.
#[derive(Clone, Debug, Default)]
pub struct ItemFilter {
    pub project: ProjectId,
    pub job: Option<String>,
    pub status: Option<ItemStatus>,
    pub application: Option<String>,
    pub flow: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Words found in the name, file, target, comment or error (case-insensitive).
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u32,
    /// Also count every matching item by status (a scan of the matches: skip it when only
    /// the latest rows are wanted, as in a job's snapshot).
    pub with_counts: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// Items matching the filter, all pages together, by status (zero unless `with_counts`).
    pub counts: ItemCounts,
}

/// A job after an accepted update, and the lines it added to its message feed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobChange {
    pub job: Job,
    pub messages: Vec<JobMessage>,
}

/// The outcome of an items upload.
#[derive(Clone, Debug)]
pub struct ItemsAdded {
    pub job: Job,
    /// The items stored by this call, in order.
    pub items: Vec<Item>,
    /// Items left out because their key was already stored (a retried upload).
    pub duplicates: usize,
    pub messages: Vec<JobMessage>,
}

/// A refused update: a finished job is a conflict, a bad value is the caller's to fix.
impl From<JobError> for StoreError {
    fn from(err: JobError) -> Self {
        match err {
            JobError::Finished { .. } => StoreError::Conflict(err.to_string()),
            JobError::Invalid { field, message } => StoreError::Invalid { field, message },
        }
    }
}

pub(crate) const JOB_COLS: &str =
    "pk, project_id, id, name, kind, application, flow, launched_by, \
    status, total, processed, failed, skipped, message, meta, stall_after_ms, created_at, \
    started_at, last_update, finished_at, stalled_since, stalled_ms, rate_old_at, \
    rate_old_processed, rate_new_at, rate_new_processed, summary";

pub(crate) fn job_from(row: &impl Columns) -> Result<Job> {
    let time = |i| row.int(i).map(|v| v.map(Timestamp));
    let rate_old = match (row.int(22)?, row.int(23)?) {
        (Some(at), Some(processed)) => Some(RateSample {
            at: Timestamp(at),
            processed,
        }),
        _ => None,
    };
    let summary = match row.text(26)? {
        Some(raw) => Some(
            serde_json::from_str::<Summary>(&raw)
                .map_err(|e| StoreError::database(format!("unreadable job summary: {e}")))?,
        ),
        None => None,
    };
    Ok(Job {
        pk: row.req_int(0)?,
        project: ProjectId(row.req_int(1)?),
        id: row.req_text(2)?,
        name: row.req_text(3)?,
        kind: row.text(4)?,
        application: row.text(5)?,
        flow: row.text(6)?,
        launched_by: row.text(7)?,
        status: row.parsed(8)?,
        total: row.int(9)?,
        processed: row.req_int(10)?,
        failed: row.req_int(11)?,
        skipped: row.req_int(12)?,
        message: row.text(13)?,
        meta: row.text(14)?,
        stall_after_ms: row.req_int(15)?,
        created_at: Timestamp(row.req_int(16)?),
        started_at: time(17)?,
        last_update: Timestamp(row.req_int(18)?),
        finished_at: time(19)?,
        stalled_since: time(20)?,
        stalled_ms: row.req_int(21)?,
        rate_old,
        rate_new: RateSample {
            at: Timestamp(row.req_int(24)?),
            processed: row.req_int(25)?,
        },
        summary,
    })
}

/// Inserts a job (the values of [`new_job_values`]); answers the [`JOB_COLS`] of the new row.
pub(crate) fn insert_job_sql() -> String {
    format!(
        "INSERT INTO jobs (project_id, id, name, kind, application, flow, launched_by, status, \
         total, meta, stall_after_ms, created_at, started_at, last_update, rate_new_at, \
         rate_new_processed, read_token_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         RETURNING {JOB_COLS}"
    )
}

pub(crate) fn new_job_values(job: &Job, read_token_hash: &str) -> Vec<Value> {
    vec![
        job.project.0.into(),
        job.id.as_str().into(),
        job.name.as_str().into(),
        job.kind.as_deref().into(),
        job.application.as_deref().into(),
        job.flow.as_deref().into(),
        job.launched_by.as_deref().into(),
        job.status.as_str().into(),
        job.total.into(),
        job.meta.as_deref().into(),
        job.stall_after_ms.into(),
        job.created_at.millis().into(),
        job.started_at.into(),
        job.last_update.millis().into(),
        job.rate_new.at.millis().into(),
        job.rate_new.processed.into(),
        read_token_hash.into(),
    ]
}

pub(crate) fn duplicate_job(id: &str) -> String {
    format!("a job with id {id:?} already exists in this project")
}

/// Writes back every field a rule may change (the values of [`save_job_values`]).
pub(crate) const SAVE_JOB: &str = "UPDATE jobs SET status = $1, total = $2, processed = $3, \
    failed = $4, skipped = $5, message = $6, started_at = $7, last_update = $8, \
    finished_at = $9, stalled_since = $10, stalled_ms = $11, rate_old_at = $12, \
    rate_old_processed = $13, rate_new_at = $14, rate_new_processed = $15, summary = $16 \
    WHERE pk = $17";

pub(crate) fn save_job_values(job: &Job) -> Vec<Value> {
    let summary = job
        .summary
        .as_ref()
        .and_then(|s| serde_json::to_string(s).ok());
    vec![
        job.status.as_str().into(),
        job.total.into(),
        job.processed.into(),
        job.failed.into(),
        job.skipped.into(),
        job.message.as_deref().into(),
        job.started_at.into(),
        job.last_update.millis().into(),
        job.finished_at.into(),
        job.stalled_since.into(),
        job.stalled_ms.into(),
        job.rate_old.map(|r| r.at.millis()).into(),
        job.rate_old.map(|r| r.processed).into(),
        job.rate_new.at.millis().into(),
        job.rate_new.processed.into(),
        Value::Text(summary),
        job.pk.into(),
    ]
}

/// One job by project and id; `lock` is the engine's row lock (see [`Tx::lock_rows`]).
pub(crate) fn select_job_sql(lock: &str) -> String {
    format!("SELECT {JOB_COLS} FROM jobs WHERE project_id = $1 AND id = $2{lock}")
}

pub(crate) fn select_job_by_token_sql() -> String {
    format!("SELECT {JOB_COLS} FROM jobs WHERE read_token_hash = $1")
}

/// Running jobs silent past their own `stall_after`, for the sweep.
pub(crate) fn overdue_jobs_sql(lock: &str) -> String {
    format!(
        "SELECT {JOB_COLS} FROM jobs WHERE status = 'running' \
         AND last_update + stall_after_ms <= $1{lock}"
    )
}

/// Item columns as stored, optionally qualified by a table alias.
fn item_cols(prefix: &str) -> String {
    [
        "seq",
        "item_key",
        "status",
        "name",
        "file",
        "target",
        "comment",
        "error",
        "duration_ms",
        "at",
        "fields",
    ]
    .iter()
    .map(|c| format!("{prefix}{c}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// `job_id` is the job's id when the row does not carry it (a RETURNING clause).
pub(crate) fn item_from(row: &impl Columns, job_id: Option<&str>) -> Result<Item> {
    Ok(Item {
        seq: row.req_int(0)?,
        key: row.text(1)?,
        status: row.parsed(2)?,
        name: row.text(3)?,
        file: row.text(4)?,
        target: row.text(5)?,
        comment: row.text(6)?,
        error: row.text(7)?,
        duration_ms: row.real(8)?,
        at: Timestamp(row.req_int(9)?),
        fields: row.text(10)?,
        job_id: match job_id {
            Some(id) => id.to_string(),
            None => row.req_text(11)?,
        },
    })
}

/// The insert of job items; its tail skips keys already stored and answers the stored rows
/// (decode with [`item_from`] and the job's id).
const INSERT_ITEMS: &str = "INSERT INTO job_items (job_pk, project_id, item_key, status, name, \
    file, target, comment, error, duration_ms, at, fields)";

fn insert_items_tail() -> String {
    format!(" ON CONFLICT DO NOTHING RETURNING {}", item_cols(""))
}

fn item_values(job: &Job, item: &NewItem, now: Timestamp) -> Vec<Value> {
    vec![
        job.pk.into(),
        job.project.0.into(),
        item.key.as_deref().into(),
        item.status.as_str().into(),
        item.name.as_deref().into(),
        item.file.as_deref().into(),
        item.target.as_deref().into(),
        item.comment.as_deref().into(),
        item.error.as_deref().into(),
        item.duration_ms.into(),
        item.at.unwrap_or(now).millis().into(),
        item.fields.as_deref().into(),
    ]
}

pub(crate) const INSERT_MESSAGE: &str =
    "INSERT INTO job_messages (job_pk, at, text) VALUES ($1, $2, $3) RETURNING id";

pub(crate) fn message_values(job: &Job, at: Timestamp, text: &str) -> Vec<Value> {
    vec![job.pk.into(), at.millis().into(), text.into()]
}

/// The last `limit` messages of a job (newest first; callers reverse).
pub(crate) const RECENT_MESSAGES: &str =
    "SELECT id, at, text FROM job_messages WHERE job_pk = $1 ORDER BY id DESC LIMIT $2";

pub(crate) fn message_from(row: &impl Columns) -> Result<JobMessage> {
    Ok(JobMessage {
        id: row.req_int(0)?,
        at: Timestamp(row.req_int(1)?),
        text: row.req_text(2)?,
    })
}

/// A page query and the count query of the same filter.
pub struct ListQuery {
    pub page: String,
    pub count: String,
    pub values: Vec<Value>,
}

pub(crate) fn jobs_query(f: &JobFilter) -> ListQuery {
    let mut w = Where::new();
    w.push("project_id = ?", f.project.0);
    w.equals("status", f.status.map(JobStatus::as_str));
    w.equals("kind", f.kind.as_deref());
    match f.origin {
        None => {}
        Some(vigie_core::JobOrigin::Reported) => w.clauses.push(format!(
            "(kind IS NULL OR kind NOT IN ('{}', '{}'))",
            vigie_core::celery::JOB_KIND,
            vigie_core::JobOrigin::MONITOR_KIND
        )),
        Some(origin) => w.equals("kind", Some(origin.as_str())),
    }
    w.equals("application", f.application.as_deref());
    w.equals("launched_by", f.launched_by.as_deref());
    w.time_range("created_at", f.since, f.until);
    w.words(
        &["name", "id", "kind", "application", "message"],
        f.text.as_deref(),
    );
    let filter = w.sql();
    ListQuery {
        page: format!(
            "SELECT {JOB_COLS} FROM jobs{filter} ORDER BY created_at DESC, pk DESC \
             LIMIT {} OFFSET {}",
            f.limit, f.offset
        ),
        count: format!("SELECT count(*) FROM jobs{filter}"),
        values: w.values,
    }
}

/// Items matching `f` (newest first) and, as `count`, their number by status
/// (columns: status, count).
pub(crate) fn items_query(f: &ItemFilter) -> ListQuery {
    let mut w = Where::new();
    w.push("i.project_id = ?", f.project.0);
    if let Some(job) = &f.job {
        // By the job's key, so the per-job indexes serve both the page and the counts.
        w.push(
            "i.job_pk = (SELECT pk FROM jobs WHERE project_id = $1 AND id = ?)",
            job.as_str(),
        );
    }
    w.equals("i.status", f.status.map(ItemStatus::as_str));
    w.equals("j.application", f.application.as_deref());
    w.equals("j.flow", f.flow.as_deref());
    w.time_range("i.at", f.since, f.until);
    w.words(
        &["i.name", "i.file", "i.target", "i.comment", "i.error"],
        f.text.as_deref(),
    );
    let filter = w.sql();
    let join = "JOIN jobs j ON j.pk = i.job_pk";
    // The counts need the jobs table only to filter on its columns.
    let count_join = if f.application.is_some() || f.flow.is_some() {
        join
    } else {
        ""
    };
    ListQuery {
        page: format!(
            "SELECT {}, j.id FROM job_items i {join}{filter} ORDER BY i.seq DESC LIMIT {} OFFSET {}",
            item_cols("i."),
            f.limit,
            f.offset
        ),
        count: format!(
            "SELECT i.status, count(*) FROM job_items i {count_join}{filter} GROUP BY i.status"
        ),
        values: w.values,
    }
}

/// Adds one `(status, count)` row of the count query of [`items_query`].
pub(crate) fn add_count(counts: &mut ItemCounts, status: &str, n: i64) -> Result<()> {
    match parse_stored::<ItemStatus>(status)? {
        ItemStatus::Ok => counts.ok += n,
        ItemStatus::Error => counts.error += n,
        ItemStatus::Skipped => counts.skipped += n,
    }
    Ok(())
}

/// Jobs with their items and feed lines.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores a job made by `Job::create`; `Conflict` if its id is taken in the project.
    /// `read_token_hash` is the hash of the job's read-only token.
    async fn create_job(&self, job: &Job, read_token_hash: &str) -> Result<Job>;
    async fn job(&self, project: ProjectId, id: &str) -> Result<Option<Job>>;
    async fn job_by_read_token(&self, token_hash: &str) -> Result<Option<Job>>;
    /// Applies `update` at `now` (`NotFound`, `Conflict` when finished, `Invalid`).
    async fn update_job(
        &self,
        project: ProjectId,
        id: &str,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<JobChange>;
    /// Stores items and moves the job's counters in one transaction, so the counters always
    /// equal what the items say. Items whose key is already stored are skipped.
    async fn add_items(
        &self,
        project: ProjectId,
        id: &str,
        items: Vec<NewItem>,
        now: Timestamp,
    ) -> Result<ItemsAdded>;
    /// The last `limit` lines of a job's message feed, oldest first.
    async fn job_messages(&self, job: &Job, limit: u32) -> Result<Vec<JobMessage>>;
    async fn list_jobs(&self, filter: &JobFilter) -> Result<JobPage>;
    async fn list_items(&self, filter: &ItemFilter) -> Result<ItemPage>;
    /// The sweep: turns every running job silent past its `stall_after` to stalled, and
    /// returns them (each with the feed line saying so).
    async fn mark_stalled_jobs(&self, now: Timestamp) -> Result<Vec<JobChange>>;
}

async fn one_job(tx: &mut dyn Tx, sql: &str, values: &[Value]) -> Result<Option<Job>> {
    tx.first_as(sql, values, job_from).await
}

/// The job, its row locked for the rest of the transaction where the engine locks rows.
async fn locked(tx: &mut dyn Tx, project: ProjectId, id: &str) -> Result<Job> {
    let sql = select_job_sql(tx.lock_rows());
    one_job(tx, &sql, &[project.0.into(), id.into()])
        .await?
        .ok_or(StoreError::NotFound("job"))
}

/// Saves `job`, which was `was` before this transaction; a move to failed or stalled goes on
/// the change feed with it.
pub(crate) async fn save(tx: &mut dyn Tx, job: &Job, was: JobStatus, now: Timestamp) -> Result<()> {
    tx.execute(SAVE_JOB, &save_job_values(job)).await?;
    if job.status != was && matches!(job.status, JobStatus::Failed | JobStatus::Stalled) {
        let change = FeedChange::Job {
            pk: job.pk,
            id: job.id.clone(),
            status: job.status,
        };
        feed::record(tx, job.project, &change, now).await?;
    }
    Ok(())
}

async fn add_messages(
    tx: &mut dyn Tx,
    job: &Job,
    lines: Vec<String>,
    at: Timestamp,
) -> Result<Vec<JobMessage>> {
    let mut out = Vec::with_capacity(lines.len());
    for text in lines {
        let id = tx
            .one(INSERT_MESSAGE, &message_values(job, at, &text))
            .await?
            .req_int(0)?;
        out.push(JobMessage { id, at, text });
    }
    Ok(out)
}

async fn add_items(
    tx: &mut dyn Tx,
    project: ProjectId,
    id: &str,
    items: Vec<NewItem>,
    now: Timestamp,
) -> Result<ItemsAdded> {
    let mut job = locked(tx, project, id).await?;
    // Refuse before writing anything: a finished job takes no items.
    job.ensure_open()?;
    let mut stored = Vec::with_capacity(items.len());
    let mut counts = ItemCounts::default();
    let rows = items.iter().map(|i| item_values(&job, i, now)).collect();
    // Keys already stored insert nothing and return no row.
    for row in tx
        .insert_rows_returning(INSERT_ITEMS, &insert_items_tail(), rows, &[])
        .await?
    {
        let item = item_from(&row, Some(&job.id))?;
        counts.add(item.status);
        stored.push(item);
    }
    let was = job.status;
    let applied = job.record_items(counts, now)?;
    save(tx, &job, was, now).await?;
    let lines = job::feed(&JobUpdate::Heartbeat { messages: vec![] }, &applied, &job);
    let messages = add_messages(tx, &job, lines, now).await?;
    Ok(ItemsAdded {
        duplicates: items.len() - stored.len(),
        job,
        items: stored,
        messages,
    })
}

#[async_trait]
impl<E: Engine> JobStore for Db<E> {
    async fn create_job(&self, job: &Job, read_token_hash: &str) -> Result<Job> {
        let values = new_job_values(job, read_token_hash);
        let id = job.id.clone();
        self.write("create_job", move |tx| {
            Box::pin(async move {
                match tx.one(&insert_job_sql(), &values).await {
                    Ok(row) => job_from(&row),
                    Err(err) => Err(err.or_conflict(|| duplicate_job(&id))),
                }
            })
        })
        .await
    }

    async fn job(&self, project: ProjectId, id: &str) -> Result<Option<Job>> {
        let values = [project.0.into(), id.into()];
        self.read("job", move |tx| {
            Box::pin(async move { one_job(tx, &select_job_sql(""), &values).await })
        })
        .await
    }

    async fn job_by_read_token(&self, token_hash: &str) -> Result<Option<Job>> {
        let values = [token_hash.into()];
        self.read("job_by_read_token", move |tx| {
            Box::pin(async move { one_job(tx, &select_job_by_token_sql(), &values).await })
        })
        .await
    }

    async fn update_job(
        &self,
        project: ProjectId,
        id: &str,
        update: &JobUpdate,
        now: Timestamp,
    ) -> Result<JobChange> {
        let (id, update) = (id.to_string(), update.clone());
        self.write("update_job", move |tx| {
            Box::pin(async move {
                let mut job = locked(tx, project, &id).await?;
                let was = job.status;
                let applied = job.apply(&update, now)?;
                save(tx, &job, was, now).await?;
                let lines = job::feed(&update, &applied, &job);
                let messages = add_messages(tx, &job, lines, now).await?;
                Ok(JobChange { job, messages })
            })
        })
        .await
    }

    async fn add_items(
        &self,
        project: ProjectId,
        id: &str,
        items: Vec<NewItem>,
        now: Timestamp,
    ) -> Result<ItemsAdded> {
        let id = id.to_string();
        self.write("add_items", move |tx| {
            Box::pin(async move { add_items(tx, project, &id, items, now).await })
        })
        .await
    }

    async fn job_messages(&self, job: &Job, limit: u32) -> Result<Vec<JobMessage>> {
        let values = [job.pk.into(), i64::from(limit).into()];
        self.read("job_messages", move |tx| {
            Box::pin(async move {
                let rows = tx.query(RECENT_MESSAGES, &values).await?;
                let mut found = rows.iter().map(message_from).collect::<Result<Vec<_>>>()?;
                found.reverse();
                Ok(found)
            })
        })
        .await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<JobPage> {
        let q = jobs_query(filter);
        self.read("list_jobs", move |tx| {
            Box::pin(async move {
                let rows = tx.query(&q.page, &q.values).await?;
                let jobs = rows.iter().map(job_from).collect::<Result<Vec<_>>>()?;
                let total = tx.one(&q.count, &q.values).await?.req_int(0)?;
                Ok(JobPage {
                    jobs,
                    total: total as u64,
                })
            })
        })
        .await
    }

    async fn list_items(&self, filter: &ItemFilter) -> Result<ItemPage> {
        let q = items_query(filter);
        let with_counts = filter.with_counts;
        self.read("list_items", move |tx| {
            Box::pin(async move {
                let rows = tx.query(&q.page, &q.values).await?;
                let items = rows
                    .iter()
                    .map(|r| item_from(r, None))
                    .collect::<Result<Vec<_>>>()?;
                let mut counts = ItemCounts::default();
                if with_counts {
                    for row in tx.query(&q.count, &q.values).await? {
                        add_count(&mut counts, &row.req_text(0)?, row.req_int(1)?)?;
                    }
                }
                Ok(ItemPage { items, counts })
            })
        })
        .await
    }

    async fn mark_stalled_jobs(&self, now: Timestamp) -> Result<Vec<JobChange>> {
        self.write("mark_stalled_jobs", move |tx| {
            Box::pin(async move {
                let sql = overdue_jobs_sql(tx.lock_rows());
                let overdue = tx.query(&sql, &[now.millis().into()]).await?;
                let mut changed = Vec::new();
                for row in overdue {
                    let mut job = job_from(&row)?;
                    let was = job.status;
                    if job.mark_stalled(now) {
                        save(tx, &job, was, now).await?;
                        let lines = vec![job::stalled_line(&job)];
                        let messages = add_messages(tx, &job, lines, now).await?;
                        changed.push(JobChange { job, messages });
                    }
                }
                Ok(changed)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_parameters_in_order() {
        let q = jobs_query(&JobFilter {
            project: ProjectId(3),
            status: Some(JobStatus::Running),
            text: Some("Invoice 50%".into()),
            limit: 50,
            ..Default::default()
        });
        assert!(
            q.page.contains("project_id = $1 AND status = $2"),
            "{}",
            q.page
        );
        assert!(
            q.page.contains("lower(coalesce(name, '')) LIKE $3"),
            "{}",
            q.page
        );
        assert!(q.page.contains("LIKE $4"), "{}", q.page);
        assert_eq!(q.values[3], Value::Text(Some("%50\\%%".into())));
        assert_eq!(q.values.len(), 4);
    }
}
