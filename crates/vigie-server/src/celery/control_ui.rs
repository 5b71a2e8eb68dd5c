//! Acting on Celery from the pages: the buttons on the task, worker and Celery pages post to
//! [`act`]; a worker's shutdown and a queue's purge first show a page that asks (the purge
//! with the count it would drop). Every action goes through `control_api::perform`, the same
//! as the API and the CLI, and lands in the audit list.
//!
//! ```text
//! button (form, CSRF-checked) ─► POST /celery/act ─► perform ─► back to the page, with a
//!                                                                flash saying what came back
//! GET /celery/workers/{worker}/shutdown ─► "Stop worker X?" ─► POST /celery/act
//! GET /celery/queues/{queue}/purge      ─► "Drop the N messages of Q?" ─► POST /celery/act
//! ```

use super::control_api::{perform, ActionRequest};
use crate::auth::AdminUser;
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::web::{form_outcome, render, safe_next, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

/// A button's form: the action, its fields, and the page to go back to.
#[derive(Deserialize)]
pub struct ActForm {
    action: String,
    #[serde(default)]
    back: String,
    #[serde(default)]
    worker: String,
    #[serde(default)]
    task_id: String,
    #[serde(default)]
    signal: String,
    #[serde(default)]
    task_name: String,
    #[serde(default)]
    rate: String,
    #[serde(default)]
    queue: String,
    n: Option<u32>,
    /// The CSRF field, checked before the handler runs (`auth::csrf::guard`).
    #[serde(default, rename = "csrf")]
    _csrf: String,
}

fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// `POST /celery/act` (admins).
pub async fn act(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Form(form): Form<ActForm>,
) -> Result<Response, PageError> {
    let actor = request.who.0.user.username.clone();
    let chrome = request.chrome(&state, "celery").await?;
    let project = chrome.project_or_404()?;
    let back = safe_next(Some(&form.back));
    let workers: Vec<String> = given(&form.worker).into_iter().collect();
    let asked = ActionRequest {
        workers: workers.clone(),
        task_id: given(&form.task_id),
        signal: given(&form.signal),
        task_name: given(&form.task_name),
        rate: given(&form.rate),
        queue: given(&form.queue),
        n: form.n,
        ..ActionRequest::default()
    };
    let result = match asked.action(&form.action) {
        Ok(action) => {
            perform(
                &state,
                project.id,
                actor,
                action,
                &workers,
                super::control::DEFAULT_TIMEOUT,
            )
            .await
        }
        Err(err) => Err(err),
    };
    // A worker that refused is the user's to read, not an error page.
    let result = result.and_then(|done| {
        if done.ok {
            Ok(done)
        } else {
            Err(AppError::Conflict(format!(
                "{}: {}",
                done.description, done.outcome
            )))
        }
    });
    // A retry goes on to the task it sent.
    let to = match &result {
        Ok(done) => done.task_id.as_ref().map_or(back, |id| {
            format!("/celery/tasks/{}", crate::web::format::encode(id))
        }),
        Err(_) => back,
    };
    form_outcome(result, &to, request.secure_cookies(&state), |done| {
        format!("{}: {}", done.description, done.outcome)
    })
}

#[derive(Template)]
#[template(path = "celery/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    title: String,
    question: String,
    detail: String,
    action: &'static str,
    worker: String,
    queue: String,
    back: &'static str,
    button: String,
}

/// `GET /celery/workers/{worker}/shutdown`: asks before stopping a worker.
pub async fn confirm_shutdown(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(worker): Path<String>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "celery").await?;
    let page = ConfirmPage {
        title: format!("Stop {worker}"),
        question: format!("Stop the worker {worker}?"),
        detail: "It finishes the tasks it is running, then exits; nothing restarts it unless \
                 your process manager does. Tasks waiting in its queues stay there for other \
                 workers."
            .into(),
        action: "shutdown",
        button: format!("Stop {worker}"),
        worker,
        queue: String::new(),
        back: "/celery/workers",
        chrome,
    };
    render(&page, &page.chrome)
}

/// `GET /celery/queues/{queue}/purge`: says how many messages a purge would drop, and asks.
pub async fn confirm_purge(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(queue): Path<String>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "celery").await?;
    let brokers = state
        .config
        .celery
        .brokers()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let waiting = super::control::waiting(&brokers, &queue)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let page = ConfirmPage {
        title: format!("Purge {queue}"),
        question: format!(
            "Drop the {} waiting in {queue}?",
            crate::web::format::count(waiting, "message", "messages")
        ),
        detail: "They are deleted from the broker and will never run. Tasks already taken by a \
                 worker are not affected. This cannot be undone."
            .into(),
        action: "purge",
        button: format!("Purge {queue}"),
        worker: String::new(),
        queue,
        back: "/celery",
        chrome,
    };
    render(&page, &page.chrome)
}
