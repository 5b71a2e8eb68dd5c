//! Flower's task-sending API over [`super::send`]: scripts that start tasks through Flower
//! start them through Vigie unchanged.
//!
//! ```text
//! POST /api/task/async-apply/{name}  {"args": [], "kwargs": {}, "queue", "countdown", "eta"}
//!                                    ─► {"task-id", "state": "PENDING"}    (404 unknown task)
//! POST /api/task/send-task/{name}    the same, for a name Vigie has not seen yet
//! POST /api/task/apply/{name}        the same, then waits (`timeout` s, at most 30) for its
//!                                    end: {"task-id", "state", "result"[, "traceback"]}
//! ```
//!
//! A task is "known" when Vigie has stored one of that name (Flower checks its own app's
//! registry; Vigie has none). Options other than these are refused with 400, not ignored.

use super::api::{flower_project, result_value};
use super::send::{new_task, send};
use crate::auth::ApiCaller;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};
use std::time::Duration;
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::celery::task::TaskMessage;

/// Flower's body: `args`, `kwargs` and the options it passes on to `apply_async`.
fn task_of(name: &str, body: &[u8]) -> Result<(TaskMessage, Option<f64>), AppError> {
    let mut options: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(AppError::BadRequest("invalid options".into())),
            Err(e) => return Err(AppError::BadRequest(e.to_string())),
        }
    };
    let args = match options.remove("args") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(AppError::BadRequest("args must be an array".into())),
    };
    let kwargs = match options.remove("kwargs") {
        None => Map::new(),
        Some(Value::Object(k)) => k,
        Some(_) => return Err(AppError::BadRequest("kwargs must be an object".into())),
    };
    let timeout = match options.remove("timeout") {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| AppError::BadRequest("Invalid timeout".into()))?,
        ),
    };
    let queue = match options.remove("queue") {
        None => "celery".to_string(),
        Some(Value::String(q)) if !q.is_empty() => q,
        Some(_) => return Err(AppError::BadRequest("Invalid option: queue".into())),
    };
    let countdown = options.remove("countdown");
    let eta = options.remove("eta");
    let eta = match (countdown, eta) {
        (Some(c), None) => {
            let seconds = c
                .as_f64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| AppError::BadRequest("Invalid option: countdown".into()))?;
            let at = Timestamp(Timestamp::now().millis() + (seconds * 1000.0) as i64);
            Some(at.to_rfc3339())
        }
        (None, Some(Value::String(text))) => {
            // Flower's format (`2026-11-25 22:15:00.000000`, UTC) or RFC 3339.
            let at = Timestamp::parse_rfc3339(&text)
                .or_else(|| Timestamp::parse_rfc3339(&format!("{}Z", text.replace(' ', "T"))))
                .ok_or_else(|| AppError::BadRequest("Invalid option: eta".into()))?;
            Some(at.to_rfc3339())
        }
        (None, None) => None,
        _ => {
            return Err(AppError::BadRequest(
                "Invalid option: give countdown or eta, not both".into(),
            ))
        }
    };
    if let Some(other) = options.keys().next() {
        return Err(AppError::BadRequest(format!(
            "Invalid option: {other} (Vigie sends args, kwargs, queue, countdown, eta)"
        )));
    }
    let task = TaskMessage {
        eta,
        ..new_task(name.to_string(), args, kwargs, queue)
    };
    Ok((task, timeout))
}

async fn known(state: &AppState, project: ProjectId, name: &str) -> Result<(), AppError> {
    let names = state.store.celery_task_names(project).await?;
    if names.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("Unknown task '{name}'")))
    }
}

async fn start(
    state: &AppState,
    query: Option<&str>,
    name: &str,
    body: &[u8],
    check_known: bool,
) -> Result<(ProjectId, String, Option<f64>), AppError> {
    let project = flower_project(state, query).await?.id;
    let (task, timeout) = task_of(name, body)?;
    if check_known {
        known(state, project, name).await?;
    }
    let id = send(state, project, task).await?;
    Ok((project, id, timeout))
}

/// `async-apply` (a task Vigie knows) and `send-task` (any name): sent, not waited for.
pub async fn async_apply(
    State(state): State<AppState>,
    _caller: ApiCaller,
    Path(name): Path<String>,
    uri: axum::http::Uri,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let any_name = uri.path().starts_with("/api/task/send-task/");
    let (_, id, _) = start(&state, uri.query(), &name, &body, !any_name).await?;
    Ok(Json(json!({"task-id": id, "state": "PENDING"})))
}

pub async fn apply(
    State(state): State<AppState>,
    _caller: ApiCaller,
    Path(name): Path<String>,
    uri: axum::http::Uri,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (project, id, timeout) = start(&state, uri.query(), &name, &body, true).await?;
    let wait = Duration::from_secs_f64(timeout.unwrap_or(30.0).clamp(0.0, 30.0));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let task = state.store.celery_task(project, &id).await?;
        let done = task.as_ref().filter(|t| t.state.is_ready());
        if let Some(task) = done {
            let mut answer = json!({
                "task-id": id,
                "state": task.state.as_str(),
                "result": result_value(task.result.clone().or(task.exception.clone())),
            });
            if task.state.as_str() == "FAILURE" {
                answer["traceback"] = json!(task.traceback);
            }
            return Ok(Json(answer));
        }
        if tokio::time::Instant::now() >= deadline {
            let state_now =
                task.map_or_else(|| "PENDING".to_string(), |t| t.state.as_str().to_string());
            return Ok(Json(json!({"task-id": id, "state": state_now})));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flower_s_body_becomes_a_task() {
        let (task, timeout) = task_of(
            "shop.add",
            br#"{"args": [1, 2], "kwargs": {"x": null}, "queue": "mail", "countdown": 5, "timeout": "2.5"}"#,
        )
        .unwrap();
        assert_eq!(
            (task.args.len(), task.queue.as_str(), timeout),
            (2, "mail", Some(2.5))
        );
        assert!(task.eta.is_some() && task.kwargs.contains_key("x"));
        let (plain, _) = task_of("shop.add", b"").unwrap();
        assert_eq!((plain.queue.as_str(), plain.eta), ("celery", None));
        let (at, _) = task_of("shop.add", br#"{"eta": "2026-11-25 22:15:00.000000"}"#).unwrap();
        assert_eq!(
            at.eta.as_deref().map(|e| &e[..16]),
            Some("2026-11-25T22:15")
        );
        for bad in [
            r#"{"args": "1, 2"}"#,
            r#"[1, 2]"#,
            r#"{"expires": 60}"#,
            r#"{"countdown": -1}"#,
            r#"{"countdown": 1, "eta": "2026-11-25 22:15:00"}"#,
            r#"{"timeout": "soon"}"#,
            "{not json",
        ] {
            assert!(
                matches!(
                    task_of("shop.add", bad.as_bytes()),
                    Err(AppError::BadRequest(_))
                ),
                "{bad}"
            );
        }
    }
}
