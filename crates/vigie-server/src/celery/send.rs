//! Tasks Vigie sends itself: a failed task sent again ([`retry`]) and Flower's `apply`,
//! `async-apply` and `send-task` ([`send`]). Each goes to its queue on the broker as
//! Celery's clients send tasks, and is stored at once as sent, so its page exists before a
//! worker takes it (the worker's events then fill it in).
//!
//! ```text
//! retry(old) ─► the stored task: FAILURE or REVOKED, a name, args/kwargs that read back
//!   (vigie_core::celery::pyrepr) ─► send(name, args, kwargs, queue, parent = old)
//! send ─► TaskMessage (vigie_protocol::celery::task) ─► control::send_task
//!   ─► a `task-sent` event stored for it (Store::apply_celery), its Job with it
//! ```

use super::control;
use crate::http::AppError;
use crate::state::AppState;
use serde_json::{json, Map, Value};
use vigie_core::celery::{control::retryable, pyrepr};
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::celery::task::TaskMessage;
use vigie_store::CeleryNews;

/// Who Vigie is, as the `origin` of the tasks it sends and the host of their `task-sent`.
const ORIGIN: &str = "vigie";

/// A task to send, with a new id, Vigie as its origin, and its arguments shown as Celery's
/// clients show them (Python's `repr()`).
pub fn new_task(
    name: String,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    queue: String,
) -> TaskMessage {
    let argsrepr = pyrepr::repr(&Value::Array(args.clone()));
    let kwargsrepr = pyrepr::repr(&Value::Object(kwargs.clone()));
    TaskMessage {
        id: control::new_task_id(),
        name,
        args,
        kwargs,
        queue,
        parent_id: None,
        root_id: None,
        eta: None,
        origin: ORIGIN.into(),
        argsrepr: Some(argsrepr),
        kwargsrepr: Some(kwargsrepr),
    }
}

/// Sends a task and stores it as sent; its id.
pub async fn send(
    state: &AppState,
    project: ProjectId,
    message: TaskMessage,
) -> Result<String, AppError> {
    let brokers = state
        .config
        .celery
        .brokers()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    control::send_task(&brokers, &message)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let id = message.id.clone();
    let headers = message.headers();
    let mut fields = Map::new();
    fields.insert("name".into(), message.name.clone().into());
    fields.insert("args".into(), headers["argsrepr"].clone());
    fields.insert("kwargs".into(), headers["kwargsrepr"].clone());
    fields.insert("queue".into(), message.queue.clone().into());
    fields.insert("routing_key".into(), message.queue.clone().into());
    fields.insert("exchange".into(), "".into());
    fields.insert("retries".into(), 0.into());
    fields.insert("eta".into(), json!(message.eta));
    fields.insert("parent_id".into(), json!(message.parent_id));
    fields.insert("root_id".into(), headers["root_id"].clone());
    let sent = CeleryNews::Task {
        uuid: id.clone(),
        kind: "task-sent".into(),
        hostname: ORIGIN.into(),
        at: Timestamp::now(),
        fields,
    };
    // Sent already: a failure to note it here only delays its page until the worker's events.
    if let Err(err) = state.store.apply_celery(project, vec![sent]).await {
        tracing::warn!(%err, task = %id, "a task Vigie sent was not stored as sent");
    }
    Ok(id)
}

/// Sends a failed or revoked task again with its arguments; the new task's id.
pub async fn retry(
    state: &AppState,
    project: ProjectId,
    task_id: &str,
) -> Result<String, AppError> {
    let old = state
        .store
        .celery_task(project, task_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no celery task {task_id}")))?;
    if !retryable(&old.state) {
        return Err(AppError::Conflict(format!(
            "only a failed or revoked task is sent again; this one is {}",
            old.state.as_str()
        )));
    }
    let name = old.name.clone().ok_or_else(|| {
        AppError::Conflict("its name is unknown (no worker reported receiving it)".into())
    })?;
    let unreadable = |what: &str, why: String| {
        AppError::Conflict(format!(
            "its {what} cannot be sent again ({why}); send it again from the application"
        ))
    };
    let args_text = old.args.clone().unwrap_or_else(|| "()".into());
    let kwargs_text = old.kwargs.clone().unwrap_or_else(|| "{}".into());
    let Value::Array(args) = pyrepr::parse(&args_text).map_err(|why| unreadable("args", why))?
    else {
        return Err(unreadable("args", "not a tuple or list".into()));
    };
    let Value::Object(kwargs) =
        pyrepr::parse(&kwargs_text).map_err(|why| unreadable("kwargs", why))?
    else {
        return Err(unreadable("kwargs", "not a dict".into()));
    };
    let queue = old
        .queue
        .clone()
        .or(old.routing_key.clone())
        .unwrap_or_else(|| "celery".into());
    let message = TaskMessage {
        parent_id: Some(old.uuid.clone()),
        root_id: Some(old.root_id.clone().unwrap_or(old.uuid.clone())),
        argsrepr: Some(args_text),
        kwargsrepr: Some(kwargs_text),
        ..new_task(name, args, kwargs, queue)
    };
    send(state, project, message).await
}
