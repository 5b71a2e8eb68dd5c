//! The change feed: every change an alert (or another instance) depends on, recorded in the
//! same transaction as the data it describes, and read back in order by cursor.
//!
//! ```text
//!   errors::write   a new or regressed issue ─┐
//!   jobs            a job moved to failed or  │
//!                   stalled (any path)        ├─▶ record(tx, …) ─▶ changes (seq, project,
//!   monitors        a run that went wrong or  │                     kind, body, at)
//!                   came back up              │
//!   accounts        a project's key or        │
//!                   settings changed          │
//!   alerts          a rule changed ───────────┘
//!
//!   reader: after(seq) ─▶ entries in seq order ─▶ acted on ─▶ its cursor moved in the same
//!           transaction as what it did (`feed_cursors`), so a crash repeats, never skips
//! ```
//!
//! Order: a reader that has seen `seq` must never later meet a smaller one. SQLite's single
//! writer commits in sequence order. On PostgreSQL two transactions could take sequence
//! numbers in one order and commit in the other; so [`record`] first takes a transaction-level
//! advisory lock, held to the commit, and numbers are handed out in commit order. Only the
//! rare transactions that write a feed entry take it.

use crate::tx::Tx;
use crate::{Result, StoreError};
use serde::{Deserialize, Serialize};
use vigie_core::issue::IssueId;
use vigie_core::monitor::{MonitorState, RunStatus};
use vigie_core::{JobStatus, ProjectId, Timestamp};

/// First key of the advisory lock that orders feed entries on PostgreSQL ("feed" in ASCII);
/// the second is the schema's hash, so Vigies in two schemas of one database do not wait on
/// each other.
pub(crate) const FEED_LOCK: i32 = 0x6665_6564;

/// One change, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEntry {
    pub seq: i64,
    pub project: ProjectId,
    pub at: Timestamp,
    pub change: FeedChange,
}

/// What changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeedChange {
    /// An event opened an issue (`regression: false`) or reopened a resolved one.
    Issue { issue: IssueId, regression: bool },
    /// A job moved to `failed` or `stalled`.
    Job {
        pk: i64,
        id: String,
        status: JobStatus,
    },
    /// A monitor's run ended badly (error, missed, timed out), or ended well after the
    /// monitor was down.
    MonitorRun {
        slug: String,
        run: i64,
        status: RunStatus,
        previous: MonitorState,
        started_at: Timestamp,
        environment: Option<String>,
        output: Option<String>,
    },
    /// A project's name, key, allowed origins or error settings changed: caches of it are
    /// stale on every instance.
    Project,
    /// An alert rule of the project was added, changed, muted or deleted: every instance
    /// reads the rules again (threshold rules count on every instance).
    Rules,
}

impl FeedChange {
    fn kind(&self) -> &'static str {
        match self {
            FeedChange::Issue { .. } => "issue",
            FeedChange::Job { .. } => "job",
            FeedChange::MonitorRun { .. } => "monitor_run",
            FeedChange::Project => "project",
            FeedChange::Rules => "rules",
        }
    }
}

/// Records `change` in the transaction `tx` belongs to (see the module doc for the order).
pub(crate) async fn record(
    tx: &mut dyn Tx,
    project: ProjectId,
    change: &FeedChange,
    at: Timestamp,
) -> Result<()> {
    if let Some(lock) = tx.lock_feed() {
        tx.execute(&lock, &[]).await?;
    }
    let body = serde_json::to_string(change).expect("a feed change serializes");
    tx.execute(
        "INSERT INTO changes (project_id, kind, body, at) VALUES ($1, $2, $3, $4)",
        &[
            project.0.into(),
            change.kind().into(),
            body.as_str().into(),
            at.millis().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Entries after `seq`, oldest first, at most `limit`.
pub(crate) async fn after(tx: &mut dyn Tx, seq: i64, limit: u32) -> Result<Vec<FeedEntry>> {
    let rows = tx
        .query(
            &format!(
                "SELECT seq, project_id, body, at FROM changes WHERE seq > $1 ORDER BY seq \
                 LIMIT {}",
                limit.clamp(1, 10_000)
            ),
            &[seq.into()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            use crate::sql::Columns;
            let body = row.req_text(2)?;
            let change = serde_json::from_str(&body).map_err(|e| {
                StoreError::database(format!("a feed entry does not read ({e}): {body}"))
            })?;
            Ok(FeedEntry {
                seq: row.req_int(0)?,
                project: ProjectId(row.req_int(1)?),
                at: Timestamp(row.req_int(3)?),
                change,
            })
        })
        .collect()
}

/// The newest entry's number (0 when the feed is empty).
pub(crate) async fn head(tx: &mut dyn Tx) -> Result<i64> {
    use crate::sql::Columns;
    tx.one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
        .await?
        .req_int(0)
}

/// Where the reader `name` is (0 before its first move), its row locked until the
/// transaction ends where the engine locks rows: two readers of one name (two instances in a
/// failover) cannot both move it from the same place.
pub(crate) async fn cursor(tx: &mut dyn Tx, name: &str) -> Result<i64> {
    use crate::sql::Columns;
    let sql = format!(
        "SELECT seq FROM feed_cursors WHERE name = $1{}",
        tx.lock_rows()
    );
    match tx.first(&sql, &[name.into()]).await? {
        Some(row) => row.req_int(0),
        None => Ok(0),
    }
}

/// Moves the reader `name` from `from` to `to`, in the transaction that acted on the entries
/// between. `Conflict` when another reader of that name moved it meanwhile: what this one
/// did is rolled back with the transaction, and it must read again from where the cursor is.
pub(crate) async fn advance(tx: &mut dyn Tx, name: &str, from: i64, to: i64) -> Result<()> {
    let now = cursor(tx, name).await?;
    if now != from {
        return Err(StoreError::Conflict(format!(
            "the feed reader {name:?} is at {now}, not {from}: another instance moved it"
        )));
    }
    tx.execute(
        "INSERT INTO feed_cursors (name, seq) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        &[name.into(), to.into()],
    )
    .await?;
    Ok(())
}

/// Drops entries every reader has passed and older than `before` (the feed is a queue, not
/// a history: issues, jobs and runs keep their own).
pub(crate) async fn prune(tx: &mut dyn Tx, before: Timestamp) -> Result<u64> {
    tx.execute(
        "DELETE FROM changes WHERE at < $1 \
         AND seq <= (SELECT COALESCE(MIN(seq), 0) FROM feed_cursors)",
        &[before.millis().into()],
    )
    .await
}

/// The change feed.
#[async_trait::async_trait]
pub trait FeedStore: Send + Sync {
    /// Entries after `seq`, oldest first, at most `limit`.
    async fn feed_after(&self, seq: i64, limit: u32) -> Result<Vec<FeedEntry>>;
    /// The newest entry's number (0 when the feed is empty).
    async fn feed_head(&self) -> Result<i64>;
    /// Where the reader `name` is (0 before its first move).
    async fn feed_cursor(&self, name: &str) -> Result<i64>;
    /// Drops entries every reader has passed and older than `before`; answers how many.
    async fn prune_feed(&self, before: Timestamp) -> Result<u64>;
}

#[async_trait::async_trait]
impl<E: crate::engine::Engine> FeedStore for crate::engine::Db<E> {
    async fn feed_after(&self, seq: i64, limit: u32) -> Result<Vec<FeedEntry>> {
        self.read("feed_after", move |tx| Box::pin(after(tx, seq, limit)))
            .await
    }

    async fn feed_head(&self) -> Result<i64> {
        self.read("feed_head", |tx| Box::pin(head(tx))).await
    }

    async fn feed_cursor(&self, name: &str) -> Result<i64> {
        let name = name.to_string();
        self.read("feed_cursor", move |tx| {
            Box::pin(async move {
                let sql = "SELECT seq FROM feed_cursors WHERE name = $1";
                match tx.first(sql, &[name.as_str().into()]).await? {
                    Some(row) => crate::sql::Columns::req_int(&row, 0),
                    None => Ok(0),
                }
            })
        })
        .await
    }

    async fn prune_feed(&self, before: Timestamp) -> Result<u64> {
        self.write("prune_feed", move |tx| Box::pin(prune(tx, before)))
            .await
    }
}
