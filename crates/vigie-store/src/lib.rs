//! Vigie's persistence: one [`Store`], made of a small trait per feature, on two engines
//! chosen at runtime from a URL.
//!
//! ```text
//!   sqlite:///path/vigie.db  -> Db<SqliteEngine> (embedded default, one file per data dir)
//!   postgres://user@host/db  -> Db<PgEngine>     (shared by several Vigie instances)
//!
//!   Store = AccountStore + JobStore + LogStore + ErrorStore + AlertStore + CeleryStore
//!           + MonitorStore + FeedStore + InstanceStore + SharedStore + SpanStore + MetricStore
//!           + ArtifactStore + ReleaseStore
//!           + (backend, ping, size, close)
//! ```
//!
//! The store is the only door to the database: the server holds an `Arc<dyn Store>` and never
//! sees SQL. Each feature module (`accounts`, `jobs`, `logs`, `errors`, `alerts`, `celery`,
//! `monitors`, `traces`, `metrics`, `artifacts`, `releases`) declares its trait and implements it **once**, against a connection [`tx::Tx`]
//! handed out by the [`engine::Engine`]; the engines (`sqlite/`, `postgres/`) hold only what
//! truly differs: connections, pragmas, the writer thread, the pool, migrations' runner. Both
//! pass the same storage story (`tests/story.rs`).
//!
//! The path of one write, e.g. a job's progress:
//!
//! ```text
//!   JobStore::update_job (jobs.rs) ─ Db::write("update_job", |tx| …) ─ span `store`
//!     SQLite:     queued to the writer thread ─ batched with others in one transaction,
//!                 each after the first under its own savepoint ─ COMMIT (one fsync) ─
//!                 every caller answered
//!     PostgreSQL: a pooled connection ─ BEGIN ─ the same code ─ COMMIT ─ answered
//! ```
//!
//! **Writes are acknowledged after their commit.** A method that changes data returns only once
//! the transaction holding the change has committed. On SQLite every write goes through one
//! writer thread that batches whatever is queued into a single transaction (group commit), so
//! many concurrent small writes cost one fsync; the queue is bounded, so overload pushes back on
//! callers instead of growing. On PostgreSQL each write is its own transaction on a pooled
//! connection and the server does the batching of commits itself.
//!
//! Errors keep their cause: a driver's error stays behind [`StoreError::Database`]'s source,
//! and a unique-index refusal is [`StoreError::Duplicate`] until the feature that knows what is
//! unique names it as a [`StoreError::Conflict`].
//!
//! Migrations are written once (`migrations/NNNN_name.sql`, SQLite's dialect, translated for
//! PostgreSQL by `migrations.rs`), versioned in a `schema_migrations` table and applied at open.

pub mod accounts;
pub mod alerts;
pub mod artifacts;
pub mod celery;
mod engine;
pub mod errors;
pub mod feed;
pub mod jobs;
pub mod lead;
pub mod logs;
pub mod metrics;
mod migrations;
pub mod monitors;
pub mod postgres;
pub mod releases;
pub mod shared;
mod sql;
mod sqlite;
pub mod traces;
pub mod transfer;
mod tx;

use async_trait::async_trait;
use engine::{Db, Engine};
use std::path::Path;
use std::sync::Arc;

pub use accounts::{
    AccountStore, Credentials, Installation, Installed, NewApiToken, NewSession, NewUser, Session,
};
pub use alerts::{
    AlertStore, Alerting, Channel, Delivery, FeedMove, Firing, NewDelivery, NewRule, Rule,
};
pub use artifacts::ArtifactStore;
pub use celery::{
    CeleryAction, CeleryActionStore, CeleryApplied, CeleryNews, CeleryStore, TaskEvent, TaskFilter,
    WorkerPeriod,
};
pub use errors::{
    ErrorBatch, ErrorSettings, ErrorStore, ErrorsWritten, EventFilter, EventMeta, IssueFilter,
    IssuePage, IssueSort,
};
pub use feed::{FeedChange, FeedEntry, FeedStore};
pub use jobs::{ItemFilter, ItemPage, ItemsAdded, JobChange, JobFilter, JobPage, JobStore};
pub use lead::{Instance, InstanceStore, Lead, Listener};
pub use logs::{BlockFilter, BlockMeta, BlockPart, LogSource, LogStore, NewLogBlock};
pub use metrics::MetricStore;
pub use monitors::{CheckInReport, Monitor, MonitorRun, MonitorStore, RunChange};
pub use releases::ReleaseStore;
pub use shared::{MinuteCount, SharedStore};
/// Backing up and restoring the embedded (SQLite) database; the data directory's lock.
pub use sqlite::backup;
pub use traces::SpanStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The cause kept behind a [`StoreError`]: the driver's own error, shared because one failed
/// group commit is every waiting caller's answer.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

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
    /// A statement failed, or what it answered cannot be read; `source` is the driver's
    /// error when there is one.
    #[error("database error: {message}")]
    Database {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// A unique index refused the write. The feature that knows what is unique turns this
    /// into a [`StoreError::Conflict`] saying what is taken (see [`StoreError::or_conflict`]).
    #[error("a unique index refused the write: {0}")]
    Duplicate(#[source] Cause),
    #[error("the storage writer has stopped")]
    WriterStopped,
    /// The disk (or the database's quota) is full: the write was not made.
    #[error("disk full: {0}")]
    DiskFull(String),
}

impl StoreError {
    /// A failure found by Vigie itself (an unreadable stored value, a missing row).
    pub fn database(message: impl Into<String>) -> StoreError {
        StoreError::Database {
            message: message.into(),
            source: None,
        }
    }

    fn driver(message: String, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Database {
            message,
            source: Some(Arc::new(source)),
        }
    }

    /// Turns a unique-index refusal into a `Conflict` saying `what` is taken; other errors
    /// pass unchanged.
    pub(crate) fn or_conflict(self, what: impl FnOnce() -> String) -> StoreError {
        match self {
            StoreError::Duplicate(_) => StoreError::Conflict(what()),
            other => other,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull(err.to_string()),
            Some(rusqlite::ErrorCode::ConstraintViolation)
                if err.to_string().contains("UNIQUE constraint failed") =>
            {
                StoreError::Duplicate(Arc::new(err))
            }
            _ => StoreError::driver(err.to_string(), err),
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
            Some(db) if *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
                StoreError::Duplicate(Arc::new(err))
            }
            Some(db) => StoreError::driver(db.message().to_string(), err),
            None => StoreError::driver(err.to_string(), err),
        }
    }
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

/// The only door to persistence: every feature's store, and the database itself. See the
/// crate docs for the guarantees every method keeps.
///
/// A `dyn Store` answers every feature trait's methods directly (supertrait methods need no
/// import on a trait object).
#[async_trait]
pub trait Store:
    AccountStore
    + JobStore
    + LogStore
    + ErrorStore
    + AlertStore
    + CeleryStore
    + CeleryActionStore
    + MonitorStore
    + FeedStore
    + InstanceStore
    + SharedStore
    + SpanStore
    + MetricStore
    + ArtifactStore
    + ReleaseStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;
    /// A cheap round trip proving the database answers.
    async fn ping(&self) -> Result<()>;
    /// Bytes the database occupies on disk.
    async fn database_size(&self) -> Result<u64>;
    /// Writes waiting for the writer (always 0 where there is no writer queue).
    fn write_queue_depth(&self) -> usize;
    /// Finishes queued writes and releases connections. Later calls fail with `WriterStopped`.
    async fn close(&self);
}

#[async_trait]
impl<E: Engine> Store for Db<E> {
    fn backend(&self) -> Backend {
        self.engine().backend()
    }

    async fn ping(&self) -> Result<()> {
        self.read("ping", |tx| {
            Box::pin(async move {
                tx.one("SELECT 1", &[]).await?;
                Ok(())
            })
        })
        .await
    }

    async fn database_size(&self) -> Result<u64> {
        self.engine().database_size().await
    }

    fn write_queue_depth(&self) -> usize {
        self.engine().write_queue_depth()
    }

    async fn close(&self) {
        self.engine().close().await
    }
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
        Location::Sqlite(path) => Arc::new(Db::new(sqlite::SqliteEngine::open(path).await?)),
        Location::Postgres(url) => Arc::new(Db::new(postgres::PgEngine::open(url).await?)),
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
