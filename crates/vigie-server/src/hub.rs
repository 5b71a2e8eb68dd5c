//! The hub: live fan-out of "something changed" to open pages and streams.
//!
//! Writers publish a [`Change`] after their commit; every SSE stream subscribed to the hub
//! wakes and sends fresh data. The channel is a broadcast with a small buffer: a slow browser
//! that falls behind skips to the latest state instead of holding memory. The hub also carries
//! the shutdown signal, so live streams end and Ctrl-C does not wait on open browser tabs,
//! and two signals for the alerting: [`Doorbell`] (deliveries were queued) and
//! [`RulesChanged`] (re-read the rules).
//!
//! What threshold rules count does not ride the broadcast: a [`Tally`], set by the loop that
//! judges them, is called by every publish, so a flood of job progress that overruns the
//! broadcast cannot make "more than N errors a minute" undercount.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{broadcast, watch, Notify};
use vigie_core::job::JobMessage;
use vigie_core::{Item, Job, LogRecord, ProjectId, Timestamp};
use vigie_store::errors::EventWritten;

/// Changes a slow stream may fall behind by before it skips to a fresh snapshot.
const BUFFER: usize = 1024;
/// Batches of stored log records a slow reader (a live tail, the alert engine) may fall behind
/// by: they are held until every reader has seen them, so this bounds the memory (a batch can
/// hold thousands of records).
const LOG_BUFFER: usize = 64;

/// What changed, so a stream can ignore what it does not show.
#[derive(Clone, Debug)]
pub enum Change {
    Projects,
    /// A user made, changed or deleted, or a session ended (a logout).
    Users,
    Tokens,
    /// A job moved: its new state, and the items and feed lines that came with the change.
    Job(Arc<JobNews>),
    /// Events were stored (issues created, reopened or seen).
    Issues(Arc<IssueNews>),
    /// Transactions were stored (for threshold alerts; pages re-read on their own).
    Transactions(Arc<TransactionNews>),
    /// A project's monitors changed: a run (a check-in, a missed or timed-out run), or a
    /// setting (no run).
    Monitors(ProjectId, Option<Arc<vigie_store::RunChange>>),
    /// Celery tasks or workers of a project changed; with how tasks started and ended in the
    /// batch (for task alerts).
    Celery(ProjectId, Arc<Vec<TaskOutcome>>),
}

/// What the hub carries after a write: the events stored and what they did to their issues.
#[derive(Debug)]
pub struct IssueNews {
    pub project: ProjectId,
    pub events: Vec<EventWritten>,
}

/// Transactions just stored, for threshold alerts (p95, failure rate).
#[derive(Debug)]
pub struct TransactionNews {
    pub project: ProjectId,
    pub samples: Vec<TransactionSample>,
}

/// What a threshold needs of a transaction.
#[derive(Debug)]
pub struct TransactionSample {
    pub name: String,
    pub time: Timestamp,
    pub duration_ms: f64,
    pub failed: bool,
}

/// A task starting or ending, as the Celery writer read it from the batch's events.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskOutcome {
    pub uuid: String,
    pub name: Option<String>,
    pub at: vigie_core::Timestamp,
    pub kind: OutcomeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OutcomeKind {
    Started,
    Succeeded {
        runtime: Option<f64>,
    },
    Failed {
        runtime: Option<f64>,
    },
    /// Revoked or rejected: it ended without a result.
    Ended,
}

impl OutcomeKind {
    /// What a `task-…` event says about the task's run, if anything.
    pub fn of_event(
        kind: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<OutcomeKind> {
        let runtime = fields.get("runtime").and_then(serde_json::Value::as_f64);
        Some(match kind {
            "task-started" => OutcomeKind::Started,
            "task-succeeded" => OutcomeKind::Succeeded { runtime },
            "task-failed" => OutcomeKind::Failed { runtime },
            "task-revoked" | "task-rejected" => OutcomeKind::Ended,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub struct JobNews {
    pub job: Job,
    pub items: Vec<Item>,
    pub messages: Vec<JobMessage>,
    /// The update as sent to watchers, serialized once however many watch.
    wire: OnceLock<String>,
}

impl JobNews {
    pub fn new(job: Job, items: Vec<Item>, messages: Vec<JobMessage>) -> Arc<JobNews> {
        Arc::new(JobNews {
            job,
            items,
            messages,
            wire: OnceLock::new(),
        })
    }

    /// News whose watchers get `wire` as it is: a snapshot read from the store, when the
    /// change was made on another instance and its items and lines are not at hand.
    pub fn encoded(job: Job, wire: String) -> Arc<JobNews> {
        Arc::new(JobNews {
            job,
            items: Vec::new(),
            messages: Vec::new(),
            wire: OnceLock::from(wire),
        })
    }

    /// The news as `encode` writes it, computed by the first watcher and shared by the rest.
    pub fn wire(&self, encode: impl FnOnce(&JobNews) -> String) -> &str {
        self.wire.get_or_init(|| encode(self))
    }
}

/// Log records just stored, for live tails.
#[derive(Debug)]
pub struct LogNews {
    pub project: ProjectId,
    pub records: Arc<Vec<LogRecord>>,
    /// The blocks holding them, with each one's source (how other instances read them).
    pub blocks: Vec<(i64, String)>,
}

/// What this instance's caches hold, each kind with its own count of changes: a token
/// revoked leaves the cached projects fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cached {
    /// Projects, their keys and error settings (`crate::cache`).
    Projects,
    /// API tokens (`crate::auth`).
    Tokens,
    /// Browser sessions and the users they carry (`crate::auth::session`).
    Users,
}

/// The hub's counts of changes, one per [`Cached`] kind.
#[derive(Default)]
struct Generations {
    projects: AtomicU64,
    tokens: AtomicU64,
    users: AtomicU64,
}

impl Generations {
    fn of(&self, kind: Cached) -> &AtomicU64 {
        match kind {
            Cached::Projects => &self.projects,
            Cached::Tokens => &self.tokens,
            Cached::Users => &self.users,
        }
    }
}

/// Counts what is published for the threshold rules, on the publisher's own call (see the
/// module doc). Called with the hub's lock on the tally free: it may take its own locks.
pub trait Tally: Send + Sync {
    /// A change, as the broadcast carries it (this instance's and the others').
    fn change(&self, change: &Change);
    /// Log records this instance stored.
    fn logs(&self, news: &LogNews);
}

/// The tally counting now, with the number it was set under (see [`Hub::count_with`]).
type Counting = Option<(u64, Arc<dyn Tally>)>;

#[derive(Clone)]
pub struct Hub {
    changes: broadcast::Sender<Change>,
    /// The changes this instance made (not those heard from other instances), for the relay
    /// that tells the others (`crate::cluster`); nobody listens on SQLite.
    own: broadcast::Sender<Change>,
    /// Stored log records, on their own channel: a busy log stream must not push job and
    /// settings changes out of slow pages' buffers.
    logs: broadcast::Sender<Arc<LogNews>>,
    /// The log records this instance stored, for the relay (see `own`).
    own_logs: broadcast::Sender<Arc<LogNews>>,
    /// One channel per watched job, so a thousand watchers of one job are not woken by the
    /// other jobs' progress. Created on first watch, dropped when nobody watches.
    jobs: Arc<Mutex<HashMap<i64, broadcast::Sender<Arc<JobNews>>>>>,
    /// Counts the changes of what caches hold, one count per [`Cached`] kind (a key rotated,
    /// a project renamed, settings saved; a token revoked): a cache compares it with the
    /// count it was filled at.
    generations: Arc<Generations>,
    tally: Arc<Mutex<Counting>>,
    shutdown: watch::Receiver<bool>,
}

impl Hub {
    /// A hub, and the sender that tells it the server is shutting down.
    pub fn new() -> (Hub, watch::Sender<bool>) {
        let (changes, _) = broadcast::channel(BUFFER);
        let (stop, shutdown) = watch::channel(false);
        (
            Hub {
                changes,
                own: broadcast::channel(BUFFER).0,
                logs: broadcast::channel(LOG_BUFFER).0,
                own_logs: broadcast::channel(LOG_BUFFER).0,
                jobs: Arc::default(),
                generations: Arc::default(),
                tally: Arc::default(),
                shutdown,
            },
            stop,
        )
    }

    pub fn publish(&self, change: Change) {
        if self.own.receiver_count() > 0 {
            let _ = self.own.send(change.clone());
        }
        self.publish_from_peer(change);
    }

    /// Publishes a change another instance made (see `crate::cluster`): to this instance's
    /// streams, not back to the others.
    pub fn publish_from_peer(&self, change: Change) {
        match change {
            Change::Projects => self.forget(Cached::Projects),
            Change::Tokens => self.forget(Cached::Tokens),
            Change::Users => self.forget(Cached::Users),
            _ => {}
        }
        if let Some(tally) = self.tally() {
            tally.change(&change);
        }
        // No subscriber is not an error: nobody is watching right now.
        let _ = self.changes.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The changes this instance made, for the relay to the other instances.
    pub fn subscribe_own(&self) -> broadcast::Receiver<Change> {
        self.own.subscribe()
    }

    /// Whether anyone watches job `pk` here (its own channel has listeners).
    pub fn watches_job(&self, pk: i64) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(&pk).is_some_and(|s| s.receiver_count() > 0)
    }

    /// Publishes a job's news to its watchers and, as a `Change::Job`, to every stream.
    pub fn publish_job(&self, news: Arc<JobNews>) {
        self.tell_watchers(&news);
        self.publish(Change::Job(news));
    }

    /// [`Hub::publish_job`] for news another instance made.
    pub fn publish_job_from_peer(&self, news: Arc<JobNews>) {
        self.tell_watchers(&news);
        self.publish_from_peer(Change::Job(news));
    }

    fn tell_watchers(&self, news: &Arc<JobNews>) {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = jobs.get(&news.job.pk) {
            let _ = sender.send(news.clone());
        }
    }

    /// News of one job (by its store key), as it happens.
    pub fn watch_job(&self, pk: i64) -> broadcast::Receiver<Arc<JobNews>> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the channels of jobs nobody watches any more.
        jobs.retain(|_, sender| sender.receiver_count() > 0);
        jobs.entry(pk)
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    pub fn publish_logs(&self, news: LogNews) {
        if let Some(tally) = self.tally() {
            tally.logs(&news);
        }
        let news = Arc::new(news);
        if self.own_logs.receiver_count() > 0 {
            let _ = self.own_logs.send(news.clone());
        }
        self.publish_logs_from_peer(news);
    }

    /// Publishes log records another instance stored (see `crate::cluster`): to this
    /// instance's tails, not back to the others.
    pub fn publish_logs_from_peer(&self, news: Arc<LogNews>) {
        if self.logs.receiver_count() > 0 {
            let _ = self.logs.send(news);
        }
    }

    /// Makes `tally` count every change and this instance's log records from now on, in
    /// place of any before it; answers the number that [`Hub::stop_counting`] takes.
    pub fn count_with(&self, tally: Arc<dyn Tally>) -> u64 {
        static SET: AtomicU64 = AtomicU64::new(0);
        let number = SET.fetch_add(1, Ordering::Relaxed);
        *self.tally.lock().unwrap_or_else(|p| p.into_inner()) = Some((number, tally));
        number
    }

    /// Stops the tally set under `number`; a later one (a lead taken as this one ends) stays.
    pub fn stop_counting(&self, number: u64) {
        let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        if tally.as_ref().is_some_and(|(n, _)| *n == number) {
            *tally = None;
        }
    }

    fn tally(&self) -> Option<Arc<dyn Tally>> {
        let tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        tally.as_ref().map(|(_, t)| t.clone())
    }

    /// The log records this instance stored, for the relay to the other instances.
    pub fn watch_own_logs(&self) -> broadcast::Receiver<Arc<LogNews>> {
        self.own_logs.subscribe()
    }

    /// Log records as they are stored (all projects: the tail filters).
    pub fn watch_logs(&self) -> broadcast::Receiver<Arc<LogNews>> {
        self.logs.subscribe()
    }

    /// Says what caches of `kind` hold changed (here, or on another instance as the change
    /// feed tells): they drop it. Pages are not told here; the relay tells them
    /// (`crate::cluster::relay`), once.
    pub fn forget(&self, kind: Cached) {
        self.generations.of(kind).fetch_add(1, Ordering::Release);
    }

    /// How many changes of `kind` there have been; a cache filled at an older count is stale.
    pub fn generation(&self, kind: Cached) -> u64 {
        self.generations.of(kind).load(Ordering::Acquire)
    }

    /// Whether the server has begun shutting down (for a long task to stop between steps).
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves when the server starts shutting down.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Wakes the notifier when deliveries were queued.
#[derive(Clone, Default)]
pub struct Doorbell(Arc<Notify>);

impl Doorbell {
    pub fn ring(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next ring (or at once if a ring came since the last wait).
    pub async fn rung(&self) {
        self.0.notified().await
    }
}

/// Tells the engine the rules changed (saved, deleted, muted), so it re-reads them.
#[derive(Clone)]
pub struct RulesChanged(Arc<AtomicBool>);

impl Default for RulesChanged {
    /// Set: the engine reads the rules when it starts.
    fn default() -> Self {
        RulesChanged(Arc::new(AtomicBool::new(true)))
    }
}

impl RulesChanged {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the rules changed since the last call.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}
