//! A failed Celery task counts into an issue, grouped like errors: its traceback becomes a
//! Sentry-shaped Python event and goes through the error pipeline (scrubbing, grouping,
//! alerts) as if the app's SDK had sent it. `[celery] failures_as_issues = false` turns it off
//! (for apps whose Sentry SDK already reports task failures, which would count them twice).
//!
//! ```text
//! task-failed (its task: name, exception, traceback, args…)
//!   ─► vigie_protocol::celery::parse_traceback ─► frames, exception type and message
//!   ─► an event {exception, transaction: task name, tags celery.*, extra args/kwargs}
//!   ─► sentry::process::shaped_events ─► the error sink (issue, events, alerts)
//! ```

use crate::sentry::process::{self, Context};
use crate::sentry::ErrorIngest;
use serde_json::{json, Value};
use vigie_core::celery::Task;
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::celery::parse_traceback;
use vigie_store::Store;

/// Records each failed task as an error event of `project`; a problem is logged, never
/// stops the consumer.
pub async fn record(
    store: &dyn Store,
    errors: &ErrorIngest,
    project: ProjectId,
    failed: Vec<Task>,
) {
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
    // The task id is a UUID: without its dashes, the event id (a retried task fails once).
    let hex: String = task.uuid.chars().filter(|c| *c != '-').collect();
    let event_id = if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        hex.to_lowercase()
    } else {
        vigie_core::secret::random_hex(16)
    };
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
