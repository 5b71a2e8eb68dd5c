//! Vigie's persistence: one [`Store`] trait, two backends chosen at runtime from a URL.
//!
//! ```text
//!   sqlite:///path/vigie.db  -> sqlite::SqliteStore    (embedded default, one file per data dir)
//!   postgres://user@host/db  -> postgres::PostgresStore (shared by several Vigie instances)
//! ```
//!
//! The trait is the only door to the database: the server holds an `Arc<dyn Store>` and never
//! sees SQL. Both backends pass the same storage story (`tests/story.rs`).
//!
//! **Writes are acknowledged after their commit.** A method that changes data returns only once
//! the transaction holding the change has committed. On SQLite every write goes through one
//! writer thread that batches whatever is queued into a single transaction (group commit), so
//! many concurrent small writes cost one fsync; the queue is bounded, so overload pushes back on
//! callers instead of growing. On PostgreSQL each write is its own transaction on a pooled
//! connection and the server does the batching of commits itself.
//!
//! Migrations are per backend (`migrations/<backend>/NNNN_name.sql`), versioned in a
//! `schema_migrations` table and applied at open.

pub mod alerts;
pub mod celery;
pub mod errors;
pub mod jobs;
pub mod logs;
mod migrations;
pub mod monitors;
pub mod postgres;
mod sql;
pub mod sqlite;
mod tx;

use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use vigie_core::alert::Target;
use vigie_core::issue::{Issue, StatusChange};
use vigie_core::job::{JobMessage, JobUpdate};
use vigie_core::monitor::MonitorConfig;
use vigie_core::{
    ApiToken, Job, NewItem, Project, ProjectId, ProjectKey, Role, Scope, Timestamp, User,
};

pub use alerts::{Channel, Delivery, Firing, NewDelivery, NewRule, Rule};
pub use celery::{CeleryApplied, CeleryNews, TaskEvent, TaskFilter, WorkerPeriod};
pub use errors::{
    ErrorBatch, ErrorSettings, ErrorsWritten, EventFilter, EventMeta, IssueFilter, IssuePage,
    IssueSort,
};
pub use jobs::{ItemFilter, ItemPage, ItemsAdded, JobChange, JobFilter, JobPage};
pub use logs::{BlockFilter, BlockMeta, LogSource, NewLogBlock};
pub use monitors::{CheckInReport, Monitor, MonitorRun, RunChange};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong, named for the step that failed. `Clone`: one failed group commit is
/// every caller's answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {target}: {reason}")]
    Open { target: String, reason: String },
    #[error("database migration {version} failed: {reason}")]
    Migrate { version: u32, reason: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A value the caller sent breaks a rule; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("database error: {0}")]
    Database(String),
    #[error("the storage writer has stopped")]
    WriterStopped,
    /// The disk (or the database's quota) is full: the write was not made.
    #[error("disk full: {0}")]
    DiskFull(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull(err.to_string()),
            _ => StoreError::Database(err.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            // Class 53 "insufficient resources", 53100 disk_full.
            Some(db) if db.code().code().starts_with("531") => {
                StoreError::DiskFull(db.message().to_string())
            }
            Some(db) => StoreError::Database(db.message().to_string()),
            None => StoreError::Database(err.to_string()),
        }
    }
}

/// A user and the stored password hash, for the login check only.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// A logged-in browser session, found by the hash of its cookie value.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: User,
    /// The token every state-changing form of this session must carry.
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub role: Role,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct NewApiToken {
    pub name: String,
    pub scope: Scope,
    pub token_hash: String,
    pub prefix: String,
}

/// Which backend a store runs on, for `/health` and the start-up banner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The only door to persistence. See the crate docs for the guarantees every method keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// A cheap round trip proving the database answers.
    async fn ping(&self) -> Result<()>;
    /// Bytes the database occupies on disk.
    async fn database_size(&self) -> Result<u64>;
    /// Writes waiting for the writer (always 0 where there is no writer queue).
    fn write_queue_depth(&self) -> usize;
    /// Finishes queued writes and releases connections. Later calls fail with `WriterStopped`.
    async fn close(&self);

    // --- settings kept by the server itself ---

    async fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` under `key` unless a value is there already; returns the value in force.
    /// Lets several instances agree on one generated value (e.g. the setup token).
    async fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String>;
    async fn meta_delete(&self, key: &str) -> Result<()>;

    // --- projects ---

    async fn create_project(&self, name: &str, key: &ProjectKey) -> Result<Project>;
    async fn list_projects(&self) -> Result<Vec<Project>>;
    async fn project(&self, id: ProjectId) -> Result<Option<Project>>;
    async fn project_by_key(&self, key: &str) -> Result<Option<Project>>;
    async fn rename_project(&self, id: ProjectId, name: &str) -> Result<Project>;
    async fn set_project_key(&self, id: ProjectId, key: &ProjectKey) -> Result<Project>;
    /// The web origins allowed to read this project's jobs from a browser (CORS).
    async fn set_allowed_origins(&self, id: ProjectId, origins: &[String]) -> Result<Project>;

    // --- users ---

    async fn create_user(&self, user: &NewUser) -> Result<User>;
    /// Creates `user` only if no user exists yet, atomically, and forgets the meta key
    /// `forget_meta` in the same transaction: the first-run setup, which must work exactly once.
    async fn create_first_user(&self, user: &NewUser, forget_meta: &str) -> Result<User>;
    async fn count_users(&self) -> Result<u64>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn user(&self, id: i64) -> Result<Option<User>>;
    async fn credentials(&self, username: &str) -> Result<Option<Credentials>>;
    /// Sets the password and ends the user's sessions, so a changed password locks out whoever
    /// knew the old one.
    async fn set_password(&self, user_id: i64, password_hash: &str) -> Result<()>;
    async fn set_role(&self, user_id: i64, role: Role) -> Result<User>;
    async fn delete_user(&self, user_id: i64) -> Result<()>;

    // --- sessions ---

    async fn create_session(&self, session: &NewSession) -> Result<()>;
    /// The unexpired session with this token hash.
    async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64>;

    // --- API tokens ---

    async fn create_api_token(&self, token: &NewApiToken) -> Result<ApiToken>;
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>>;
    async fn touch_api_token(&self, id: i64, now: Timestamp) -> Result<()>;
    /// Revokes (deletes) a token; `NotFound` if there was none.
    async fn revoke_api_token(&self, id: i64) -> Result<()>;

    // --- jobs (the rules are `vigie_core::job`; see `jobs` for the shared SQL) ---

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

    // --- logs (the engine is `logs`; these are the primitives it keeps blocks with) ---

    /// Stores `blocks` (creating their sources as needed) and deletes the blocks `replacing`,
    /// in one transaction; `Conflict` if one of `replacing` is already gone. Returns the new
    /// blocks' ids.
    async fn write_log_blocks(
        &self,
        project: ProjectId,
        blocks: Vec<NewLogBlock>,
        replacing: Vec<i64>,
    ) -> Result<Vec<i64>>;
    /// Block summaries the filter selects, newest first.
    async fn log_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockMeta>>;
    /// The data of these blocks, in the order asked; ids no longer stored are left out.
    async fn log_block_data(&self, ids: Vec<i64>) -> Result<Vec<(i64, Vec<u8>)>>;
    /// A project's log sources with what each holds, by name.
    async fn log_sources(&self, project: ProjectId) -> Result<Vec<LogSource>>;
    async fn delete_log_blocks(&self, ids: Vec<i64>) -> Result<u64>;
    /// Deletes a source and every record of it; `NotFound` if the project has no such source.
    async fn delete_log_source(&self, project: ProjectId, source: i64) -> Result<()>;
    // --- errors and performance (the shared logic is `errors`) ---

    /// Stores everything a batch of Sentry envelopes brought, in one transaction.
    async fn write_errors(&self, batch: ErrorBatch, now: Timestamp) -> Result<ErrorsWritten>;
    /// Retention: deletes events and performance data older than `before`, and the issues not
    /// seen since; answers the rows deleted.
    async fn prune_errors(&self, before: Timestamp) -> Result<u64>;
    async fn error_settings(&self, project: ProjectId) -> Result<ErrorSettings>;
    async fn set_error_settings(&self, project: ProjectId, settings: &ErrorSettings) -> Result<()>;
    async fn list_issues(&self, filter: &IssueFilter) -> Result<IssuePage>;
    async fn issue(&self, project: ProjectId, id: i64) -> Result<Option<Issue>>;
    /// Applies a person's status change; `NotFound` if the project has no such issue.
    async fn set_issue_status(
        &self,
        project: ProjectId,
        id: i64,
        change: &StatusChange,
    ) -> Result<Issue>;
    async fn issue_tags(&self, issue: i64) -> Result<Vec<errors::TagCount>>;
    /// `(issue id, hour start ms, events)` since `since`.
    async fn issue_hours(&self, issues: Vec<i64>, since: Timestamp)
        -> Result<Vec<(i64, i64, i64)>>;
    async fn events(&self, filter: &EventFilter) -> Result<Vec<EventMeta>>;
    /// An event's summary and JSON body.
    async fn event(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(EventMeta, Vec<u8>)>>;
    /// Every transaction name's figures over `[since, until)`; with `buckets > 0`, also its
    /// counts over that many equal slices of the period (`TransactionStats::counts`).
    async fn transactions(
        &self,
        project: ProjectId,
        since: Timestamp,
        until: Timestamp,
        buckets: usize,
    ) -> Result<Vec<errors::TransactionStats>>;
    async fn transaction_series(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        until: Timestamp,
        step_ms: i64,
    ) -> Result<Vec<(Timestamp, errors::TransactionStats)>>;
    /// Kept transactions (the slowest first) from `since`, before `until` when given.
    async fn transaction_samples(
        &self,
        project: ProjectId,
        name: Option<&str>,
        since: Timestamp,
        until: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<errors::SampleMeta>>;
    async fn transaction_sample(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(errors::SampleMeta, Vec<u8>)>>;
    /// The samples kept of one trace (the requests and tasks it went through), oldest first.
    async fn trace_samples(
        &self,
        project: ProjectId,
        trace_id: &str,
    ) -> Result<Vec<errors::SampleMeta>>;
    async fn span_stats(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<errors::SpanStat>>;
    async fn release_health(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<errors::ReleaseHealth>>;
    async fn dropped_events(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<errors::DroppedCount>>;
    /// A project's user feedback, newest first; only that about `issue`'s events when given.
    async fn feedback(
        &self,
        project: ProjectId,
        issue: Option<i64>,
        limit: u32,
    ) -> Result<Vec<errors::Feedback>>;
    // Alerts (see `alerts`).
    /// Saves a channel; its target is validated (`Invalid` says what is wrong). A channel
    /// `from_config` replaces the one of that name.
    async fn create_channel(
        &self,
        project: ProjectId,
        name: &str,
        target: &Target,
        from_config: bool,
        now: Timestamp,
    ) -> Result<Channel>;
    async fn list_channels(&self, project: ProjectId) -> Result<Vec<Channel>>;
    async fn channel(&self, id: i64) -> Result<Option<Channel>>;
    async fn delete_channel(&self, project: ProjectId, id: i64) -> Result<()>;
    async fn create_rule(&self, project: ProjectId, rule: &NewRule, now: Timestamp)
        -> Result<Rule>;
    async fn list_rules(&self, project: ProjectId) -> Result<Vec<Rule>>;
    async fn delete_rule(&self, project: ProjectId, id: i64) -> Result<()>;
    /// Changes a rule wholly; its mute and what it already sent stay.
    async fn update_rule(&self, project: ProjectId, id: i64, rule: &NewRule) -> Result<Rule>;
    async fn mute_rule(
        &self,
        project: ProjectId,
        id: i64,
        until: Option<Timestamp>,
    ) -> Result<Rule>;
    /// Whether a rule sends about `key` now (cooldown, reminder, resolution), recorded
    /// atomically.
    async fn fire(
        &self,
        rule: i64,
        key: &str,
        at: Timestamp,
        firing: Firing,
    ) -> Result<Option<i64>>;
    /// Queues deliveries; answers their ids.
    async fn enqueue(&self, deliveries: Vec<NewDelivery>) -> Result<Vec<i64>>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<Delivery>>;
    /// Records a delivery attempt: sent, retried at `retry_at`, or given up.
    async fn delivered(
        &self,
        id: i64,
        outcome: std::result::Result<(), String>,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()>;
    async fn list_deliveries(&self, project: ProjectId, limit: u32) -> Result<Vec<Delivery>>;
    // Celery (see `celery`).
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
    // Monitors (see `monitors`).
    /// Sets a monitor's schedule, margin and runtime (creating it if new).
    async fn configure_monitor(
        &self,
        project: ProjectId,
        slug: &str,
        config: &MonitorConfig,
        now: Timestamp,
    ) -> Result<Monitor>;
    /// Records a check-in as a run (see `monitors`).
    async fn record_check_in(
        &self,
        project: ProjectId,
        report: &CheckInReport,
    ) -> Result<RunChange>;
    /// The periodic check: missed and timed-out runs as of `now`.
    async fn check_monitors(&self, now: Timestamp) -> Result<Vec<RunChange>>;
    async fn list_monitors(&self, project: ProjectId) -> Result<Vec<Monitor>>;
    async fn monitor(&self, project: ProjectId, slug: &str) -> Result<Option<Monitor>>;
    /// The latest `limit` runs of each monitor in `ids`, newest first.
    async fn monitor_runs(&self, ids: Vec<i64>, limit: u32) -> Result<Vec<MonitorRun>>;
    /// Remembers the Job a run is shown as.
    async fn set_run_job(&self, run: i64, job_id: &str) -> Result<()>;
    async fn set_monitor_paused(
        &self,
        project: ProjectId,
        slug: &str,
        paused: bool,
        now: Timestamp,
    ) -> Result<Monitor>;
    async fn delete_monitor(&self, project: ProjectId, slug: &str) -> Result<()>;
    async fn attachments(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Vec<errors::AttachmentMeta>>;
    async fn attachment(
        &self,
        project: ProjectId,
        id: i64,
    ) -> Result<Option<(errors::AttachmentMeta, Vec<u8>)>>;
}

/// Where the data lives: a SQLite file in a data directory, or a PostgreSQL URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// `database_url` when given (`postgres://…`, `postgresql://…` or `sqlite://PATH`), else the
    /// SQLite file `vigie.db` in `data_dir`.
    pub fn resolve(database_url: Option<&str>, data_dir: &Path) -> Result<Location> {
        let Some(url) = database_url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Location::Sqlite(data_dir.join("vigie.db")));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Location::Postgres(url.to_string()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Location::Sqlite(path.into()))
        } else {
            Err(StoreError::Open {
                target: redact_url(url),
                reason: "unsupported database URL: use postgres://… or sqlite://PATH".into(),
            })
        }
    }

    /// A description safe to print: the password of a URL is masked.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => format!("SQLite {}", path.display()),
            Location::Postgres(url) => format!("PostgreSQL {}", redact_url(url)),
        }
    }
}

/// Opens (creating and migrating as needed) the store at `location`.
pub async fn open(location: &Location) -> Result<Arc<dyn Store>> {
    Ok(match location {
        Location::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path).await?),
        Location::Postgres(url) => Arc::new(postgres::PostgresStore::open(url).await?),
    })
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and errors.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "(unparseable URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_from_url_or_data_dir() {
        let data = Path::new("/srv/vigie");
        assert_eq!(
            Location::resolve(None, data).unwrap(),
            Location::Sqlite("/srv/vigie/vigie.db".into())
        );
        assert_eq!(
            Location::resolve(Some(""), data).unwrap(),
            Location::Sqlite("/srv/vigie/vigie.db".into())
        );
        assert_eq!(
            Location::resolve(Some("sqlite:///tmp/x.db"), data).unwrap(),
            Location::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            Location::resolve(Some("postgresql://h/db"), data).unwrap(),
            Location::Postgres(_)
        ));
        let err = Location::resolve(Some("mysql://u:pw@h/db"), data).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
        assert!(
            err.to_string().contains("unsupported database URL"),
            "{err}"
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://vigie:hunter2@db:5432/vigie"),
            "postgres://vigie:***@db:5432/vigie"
        );
        assert_eq!(redact_url("postgres://db/vigie"), "postgres://db/vigie");
        assert!(!Location::Postgres("postgres://a:hunter2@h/d".into())
            .describe()
            .contains("hunter2"));
    }
}
