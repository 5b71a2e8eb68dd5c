//! Vigie's own periodic tasks (the stall sweep, the monitor check, log upkeep, retention,
//! forgetting sessions) and what the System page says of them: every how often, the last run,
//! how long it took, how it ended, and how many runs failed since the start.
//!
//! [`TaskBoard::run`] wraps one run of a task: it times the future and keeps its outcome, a
//! line for people (`"3 jobs stalled"`) or the error. Failures are logged by the task itself
//! and never stop the schedule.

use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tracing::Instrument;
use vigie_core::Timestamp;

/// Starts a background service (a sink, a consumer, a schedule) inside a `task` span named
/// `name`, so everything it logs, and every store call it makes, says which service it was.
pub fn spawn<F>(name: &'static str, work: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(work.instrument(tracing::info_span!("task", name)))
}

/// Why one run of a periodic task failed, with its cause.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Store(#[from] vigie_store::StoreError),
    /// A setting the task reads is malformed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A date could not be worked out in a time zone (yesterday's, for the daily report).
    #[error("cannot work out the day in {zone}")]
    Calendar {
        zone: String,
        #[source]
        source: jiff::Error,
    },
    /// A report could not be made for one project; the others' were not tried after it.
    #[error("cannot make the report of project {project}")]
    Report {
        project: String,
        #[source]
        source: crate::http::AppError,
    },
}

/// An error and each of its causes, outermost first, joined by `: ` (a cause whose words the
/// line already holds is left out: a driver's message is often repeated by its wrapper).
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let words = error.to_string();
        if !line.contains(&words) {
            line = format!("{line}: {words}");
        }
        cause = error.source();
    }
    line
}

/// What one task did last, and how often it failed.
#[derive(Clone, Debug, Serialize)]
pub struct TaskRecord {
    pub name: &'static str,
    /// Seconds between runs.
    pub every_seconds: u64,
    pub last_run: Option<Timestamp>,
    pub last_duration_ms: Option<f64>,
    /// `true` when the last run succeeded.
    pub last_ok: Option<bool>,
    /// What the last run did, or why it failed.
    pub last_outcome: String,
    pub runs: u64,
    pub failures: u64,
}

/// The shared record of every periodic task, in the order they were declared.
#[derive(Clone, Default)]
pub struct TaskBoard {
    tasks: Arc<Mutex<Vec<TaskRecord>>>,
}

impl TaskBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TaskRecord>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Declares a task, so the System page lists it before its first run.
    pub fn declare(&self, name: &'static str, every: Duration) {
        let mut tasks = self.lock();
        if !tasks.iter().any(|t| t.name == name) {
            tasks.push(TaskRecord {
                name,
                every_seconds: every.as_secs(),
                last_run: None,
                last_duration_ms: None,
                last_ok: None,
                last_outcome: "not run yet".into(),
                runs: 0,
                failures: 0,
            });
        }
    }

    /// Runs one pass of task `name` and records how it went: what it did, or why it failed
    /// with every cause (a task may still answer a plain `String` as its error).
    pub async fn run<F, E>(&self, name: &'static str, work: F)
    where
        F: Future<Output = Result<String, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started_at = Timestamp::now();
        let started = Instant::now();
        let outcome = work
            .instrument(tracing::info_span!("run", task = name))
            .await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let mut tasks = self.lock();
        let Some(task) = tasks.iter_mut().find(|t| t.name == name) else {
            return;
        };
        task.runs += 1;
        task.last_run = Some(started_at);
        task.last_duration_ms = Some(elapsed);
        task.last_ok = Some(outcome.is_ok());
        match outcome {
            Ok(what) => task.last_outcome = what,
            Err(why) => {
                task.failures += 1;
                task.last_outcome = with_causes(why.into().as_ref());
            }
        }
    }

    pub fn records(&self) -> Vec<TaskRecord> {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_are_timed_and_failures_counted() {
        let board = TaskBoard::default();
        board.declare("sweep", Duration::from_secs(5));
        board.declare("sweep", Duration::from_secs(5));
        assert_eq!(board.records().len(), 1);
        assert_eq!(board.records()[0].last_outcome, "not run yet");
        board
            .run("sweep", async { Ok::<_, String>("2 jobs stalled".into()) })
            .await;
        board
            .run("sweep", async { Err::<String, _>("database is locked") })
            .await;
        let r = &board.records()[0];
        assert_eq!((r.runs, r.failures, r.last_ok), (2, 1, Some(false)));
        assert_eq!(r.last_outcome, "database is locked");
        assert!(r.last_run.is_some() && r.last_duration_ms.is_some());
        board
            .run("unknown", async { Ok::<_, String>(String::new()) })
            .await;
        assert_eq!(
            board.records().len(),
            1,
            "undeclared tasks are not recorded"
        );
    }

    #[tokio::test]
    async fn a_failure_is_recorded_with_its_causes() {
        let board = TaskBoard::default();
        board.declare("daily report", Duration::from_secs(60));
        let broken = std::io::Error::other("disk I/O error");
        board
            .run("daily report", async {
                Err::<String, _>(TaskError::Store(vigie_store::StoreError::Database {
                    message: "cannot read the projects".into(),
                    source: Some(std::sync::Arc::new(broken)),
                }))
            })
            .await;
        assert_eq!(
            board.records()[0].last_outcome,
            "database error: cannot read the projects: disk I/O error"
        );
    }

    #[test]
    fn a_cause_already_said_is_not_said_twice() {
        let inner = std::io::Error::other("database is locked");
        let outer = vigie_store::StoreError::Database {
            message: "database is locked".into(),
            source: Some(std::sync::Arc::new(inner)),
        };
        assert_eq!(with_causes(&outer), "database error: database is locked");
    }
}
