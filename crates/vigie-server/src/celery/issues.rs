//! A failed Celery task counts into an issue, grouped like errors: its traceback becomes a
//! Sentry-shaped Python event and goes through the error pipeline (scrubbing, grouping,
//! alerts) as if the app's SDK had sent it. `[celery] failures_as_issues = false` turns it off.
//!
//! One issue per failure: when the app's Sentry SDK reports the failure too (its Celery
//! integration, on by default, tags the event `celery_task_id`), Vigie's own event would be a
//! second one. So a failure waits [`SDK_WINDOW`] for the SDK's event; when one came (an event
//! of that task's job that is not Vigie's), the failure is left to it — the task's page links
//! the SDK's issue through the job — and counted in `/metrics`.
//!
//! ```text
//! task-failed (its task: name, exception, traceback, args…) ─► Holding (SDK_WINDOW)
//!   ─► an SDK event of the task's job?  yes: left to it (counted)
//!   ─► no: vigie_protocol::celery::parse_traceback ─► frames, exception type and message
//!   ─► an event {exception, transaction: task name, tags celery.*, extra args/kwargs}
//!   ─► sentry::process::shaped_events ─► the error sink (issue, events, alerts)
//! ```
//! At shutdown the held failures are recorded at once (their SDK events checked first).

use crate::metrics::Metrics;
use crate::sentry::process::{self, Context};
use crate::sentry::ErrorIngest;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use vigie_core::celery::Task;
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::celery::parse_traceback;
use vigie_store::EventFilter;
use vigie_store::Store;

/// How long a failure waits for the app's SDK to report it.
pub const SDK_WINDOW: Duration = Duration::from_secs(5);

/// The failures waiting for their window to pass, and the task that records them.
pub struct Holding {
    pub failures: mpsc::UnboundedSender<Task>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts holding failures of `project`; drop the sender to record what is held and end.
pub fn hold(
    store: Arc<dyn Store>,
    errors: ErrorIngest,
    metrics: Arc<Metrics>,
    project: ProjectId,
) -> Holding {
    let (failures, mut arriving) = mpsc::unbounded_channel::<Task>();
    let task = crate::tasks::spawn("celery failures", async move {
        let mut held: VecDeque<(tokio::time::Instant, Task)> = VecDeque::new();
        loop {
            let next_due = held.front().map(|(due, _)| *due);
            let sleep = async {
                match next_due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                task = arriving.recv() => match task {
                    Some(task) => held.push_back((tokio::time::Instant::now() + SDK_WINDOW, task)),
                    None => break,
                },
                () = sleep => {
                    let now = tokio::time::Instant::now();
                    let mut due = Vec::new();
                    while held.front().is_some_and(|(at, _)| *at <= now) {
                        due.extend(held.pop_front().map(|(_, t)| t));
                    }
                    record(store.as_ref(), &errors, &metrics, project, due).await;
                }
            }
        }
        let rest = held.into_iter().map(|(_, t)| t).collect();
        record(store.as_ref(), &errors, &metrics, project, rest).await;
    });
    Holding { failures, task }
}

/// Whether the app's SDK reported this task's failure: an event of its job that is not the
/// one Vigie makes of it.
async fn reported_by_sdk(store: &dyn Store, project: ProjectId, task: &Task) -> bool {
    let ours = event_id_of(task);
    match store
        .events(&EventFilter {
            project,
            job_id: Some(task.uuid.clone()),
            limit: 20,
            ..Default::default()
        })
        .await
    {
        Ok(events) => events.iter().any(|e| e.event_id != ours),
        Err(err) => {
            tracing::warn!(%err, "could not look for the SDK's event of a failed task");
            false
        }
    }
}

/// Records each failed task as an error event of `project`, unless the app's SDK already
/// did; a problem is logged, never stops the consumer.
pub async fn record(
    store: &dyn Store,
    errors: &ErrorIngest,
    metrics: &Metrics,
    project: ProjectId,
    failed: Vec<Task>,
) {
    let mut ours = Vec::with_capacity(failed.len());
    for task in failed {
        if reported_by_sdk(store, project, &task).await {
            metrics
                .celery
                .left_to_sdk
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(task = %task.uuid, "celery failure left to the SDK's own event");
        } else {
            ours.push(task);
        }
    }
    let failed = ours;
    if failed.is_empty() {
        return;
    }
    let settings = match errors.settings(store, project).await {
        Ok(settings) => settings,
        Err(err) => {
            tracing::warn!(%err, "could not read the error settings for celery failures");
            return;
        }
    };
    let ctx = Context {
        project,
        settings: &settings,
        received: Timestamp::now(),
        max_attachment_bytes: 0,
        js: Default::default(),
    };
    let prepared = process::shaped_events(failed.iter().map(event_of), &ctx);
    for why in &prepared.problems {
        tracing::warn!(%why, "celery failure not recorded");
    }
    if let Err(err) = errors.sink.write(prepared.batch).await {
        tracing::warn!(%err, "celery failures not recorded");
    }
}

/// The id of the event Vigie makes of a failure: the task id (a UUID) without its dashes, so
/// a failure told twice is one event; another task id is hashed to one.
fn event_id_of(task: &Task) -> String {
    let hex: String = task.uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        hex.to_lowercase()
    } else {
        sha1_smol::Sha1::from(&task.uuid).digest().to_string()[..32].to_string()
    }
}

/// The Sentry event a failed task stands for.
pub fn event_of(task: &Task) -> Value {
    let tb = parse_traceback(
        task.traceback.as_deref().unwrap_or(""),
        task.exception.as_deref().unwrap_or(""),
    );
    let frames: Vec<Value> = tb.frames.iter().map(|f| f.to_sentry()).collect();
    let mut exception = json!({
        "type": tb.exception_type,
        "value": tb.message,
        "mechanism": {"type": "celery", "handled": false},
    });
    if !frames.is_empty() {
        exception["stacktrace"] = json!({ "frames": frames });
    }
    let name = task.name.as_deref().unwrap_or("unknown task");
    let event_id = event_id_of(task);
    let at = task.finished_at.unwrap_or(task.updated_at);
    // `celery_task_id` as the SDK's Celery integration tags it: the event's job is the
    // task's Job, so the task, its job and this issue link to one another.
    let mut tags =
        json!({"celery.task": name, "celery.task_id": task.uuid, "celery_task_id": task.uuid});
    if let Some(queue) = &task.queue {
        tags["celery.queue"] = json!(queue);
    }
    json!({
        "event_id": event_id,
        "timestamp": at.millis() as f64 / 1000.0,
        "platform": "python",
        "level": "error",
        "logger": "celery",
        "server_name": task.worker,
        "transaction": name,
        "tags": tags,
        "extra": {"args": task.args, "kwargs": task.kwargs, "retries": task.retries},
        "exception": {"values": [exception]},
    })
}
