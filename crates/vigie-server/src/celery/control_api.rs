//! Inspecting and controlling Celery workers through the API: Vigie's own routes and
//! Flower's, both over [`super::control`], every action recorded in the audit list.
//!
//! ```text
//! GET  /api/v1/celery/inspect/{command}?worker=&timeout=   read: {command, replies, silent}
//! POST /api/v1/celery/control/{action}  JSON {workers, task_id, terminate, signal, task_name,
//!                                        rate, soft, hard, n, min, max, queue, timeout}
//!                                        admin: {action, description, ok, outcome, replies,
//!                                        silent} — and one row in the audit list
//! GET  /api/v1/celery/actions?target=&limit=               the audit list, newest first
//!
//! Flower-compatible (paths, parameters, answers and statuses of Flower 2.x's API; parameters
//! in the query or a form body, as Flower reads them):
//! POST /api/worker/shutdown/{worker}                       {"message": "Shutting down!"}
//! POST /api/worker/pool/{restart|grow|shrink|autoscale}/{worker}?n=&min=&max=
//! POST /api/worker/queue/{add-consumer|cancel-consumer}/{worker}?queue=
//! POST /api/task/revoke/{task id}?terminate=&signal=
//! POST /api/task/rate-limit/{task name}?workername=&ratelimit=
//! POST /api/task/timeout/{task name}?workername=&soft=&hard=
//! ```
//!
//! A worker named in a Flower path must be one Vigie knows (404 otherwise, as Flower); a
//! worker that answers with an error makes the call 403 with its reason, as Flower does.

use super::control::{self, ControlError, Gathered};
use crate::auth::job_access::ProjectReader;
use crate::auth::{ApiCaller, Caller};
use crate::http::{paging, ApiError, AppError, Table};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use vigie_core::celery::control::{self as rules, Action, Inspect};
use vigie_core::{ProjectId, Timestamp};
use vigie_store::CeleryAction;

pub fn routes() -> Table<AppState> {
    Table::new()
        .route("/api/v1/celery/inspect/{command}", get(inspect))
        .route("/api/v1/celery/control/{action}", post(control))
        .route("/api/v1/celery/actions", get(actions))
        .route("/api/worker/shutdown/{worker}", post(flower_shutdown))
        .route("/api/worker/pool/{verb}/{worker}", post(flower_pool))
        .route("/api/worker/queue/{verb}/{worker}", post(flower_queue))
        .route("/api/task/revoke/{task}", post(flower_revoke))
        .route("/api/task/abort/{task}", post(flower_abort))
        .route("/api/task/rate-limit/{task}", post(flower_rate_limit))
        .route("/api/task/timeout/{task}", post(flower_timeout))
}

/// The configured brokers (checked at start, so an error here is unexpected).
fn configured_brokers(state: &AppState) -> Result<Vec<super::Broker>, AppError> {
    state
        .config
        .celery
        .brokers()
        .map_err(|e| AppError::Internal(e.to_string()))
}

fn unavailable(err: ControlError) -> AppError {
    match err {
        ControlError::NoQueue(_) => AppError::NotFound(err.to_string()),
        ControlError::NoBackend => AppError::Conflict(err.to_string()),
        _ => AppError::Unavailable(err.to_string()),
    }
}

/// The wait asked for (`timeout` in seconds), else Celery's default.
fn timeout_of(asked: Option<f64>) -> Result<Duration, AppError> {
    match asked {
        None => Ok(control::DEFAULT_TIMEOUT),
        Some(s) if s.is_finite() && s > 0.0 && s <= control::MAX_TIMEOUT.as_secs_f64() => {
            Ok(Duration::from_secs_f64(s))
        }
        Some(_) => Err(AppError::Invalid {
            field: "timeout".into(),
            message: format!(
                "seconds above 0, at most {}",
                control::MAX_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// The workers expected to answer: those named, else those online by their heartbeats.
async fn expected(
    state: &AppState,
    project: ProjectId,
    named: &[String],
) -> Result<Vec<String>, AppError> {
    if !named.is_empty() {
        return Ok(named.to_vec());
    }
    let now = Timestamp::now();
    Ok(state
        .store
        .celery_workers(project)
        .await?
        .into_iter()
        .filter(|w| w.online(now))
        .map(|w| w.hostname)
        .collect())
}

/// Asks the workers one question.
pub async fn ask(
    state: &AppState,
    project: ProjectId,
    question: Inspect,
    workers: &[String],
    timeout: Duration,
) -> Result<Gathered, AppError> {
    let brokers = configured_brokers(state)?;
    let (method, arguments) = question.command();
    let command = vigie_protocol::celery::control::Command::new(method, arguments).to(workers);
    let expected = expected(state, project, workers).await?;
    control::call(&brokers, &command, &expected, timeout)
        .await
        .map_err(unavailable)
}

/// What an action did.
#[derive(Debug, serde::Serialize)]
pub struct Performed {
    pub action: &'static str,
    pub description: String,
    pub ok: bool,
    pub outcome: String,
    /// The new task's id, when the action sent one (a retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(flatten)]
    pub gathered: Gathered,
}

/// Who is acting, as the audit list names them.
pub fn actor_of(caller: &Caller) -> String {
    match caller {
        Caller::User(user) => user.username.clone(),
        Caller::Token(token) => format!("token {}", token.name),
    }
}

/// Checks, sends and records an action (the one way the API, the pages and the CLI act).
pub async fn perform(
    state: &AppState,
    project: ProjectId,
    actor: String,
    action: Action,
    workers: &[String],
    timeout: Duration,
) -> Result<Performed, AppError> {
    action.validate().map_err(|message| AppError::Invalid {
        field: action.name().into(),
        message,
    })?;
    if action.needs_a_worker() && workers.is_empty() {
        return Err(AppError::Invalid {
            field: "workers".into(),
            message: format!("{} needs the worker named", action.name()),
        });
    }
    let brokers = configured_brokers(state)?;
    let mut sent_as = None;
    let (ok, outcome, gathered) = match &action {
        Action::Purge { queue } => {
            let dropped = control::purge(&brokers, queue).await.map_err(unavailable)?;
            let outcome = format!("purged {dropped} message(s) from {queue}");
            (true, outcome, Gathered::default())
        }
        Action::Abort { task_id } => {
            control::abort(&brokers, task_id)
                .await
                .map_err(unavailable)?;
            let outcome = "marked ABORTED in the result backend".to_string();
            (true, outcome, Gathered::default())
        }
        Action::Retry { task_id } => {
            let new = super::send::retry(state, project, task_id).await?;
            let outcome = format!("sent again as {new}");
            sent_as = Some(new);
            (true, outcome, Gathered::default())
        }
        // Workers answer nothing to a shutdown (they are stopping).
        Action::Shutdown => {
            let command = control::command_of(&action, workers).expect("a worker command");
            control::cast(&brokers, &command)
                .await
                .map_err(unavailable)?;
            (true, "sent".to_string(), Gathered::default())
        }
        _ => {
            let command = control::command_of(&action, workers).expect("a worker command");
            let expected = expected(state, project, workers).await?;
            let gathered = control::call(&brokers, &command, &expected, timeout)
                .await
                .map_err(unavailable)?;
            let (ok, outcome) = summary(&gathered);
            (ok, outcome, gathered)
        }
    };
    let performed = Performed {
        action: action.name(),
        description: action.describe(),
        ok,
        outcome,
        task_id: sent_as,
        gathered,
    };
    state
        .store
        .record_celery_action(
            project,
            CeleryAction {
                at: Timestamp::now(),
                actor: actor.clone(),
                action: action.name().to_string(),
                target: action.target().map(str::to_string),
                workers: workers.to_vec(),
                arguments: Value::Object(rules::arguments_of(&action)),
                outcome: performed.outcome.clone(),
                ok: performed.ok,
            },
        )
        .await?;
    tracing::info!(%actor, action = %performed.description, outcome = %performed.outcome, "celery action");
    Ok(performed)
}

/// `2 workers: ok`, `celery@a: Unknown task`, `no worker answered`.
fn summary(gathered: &Gathered) -> (bool, String) {
    let mut errors = Vec::new();
    for (worker, reply) in &gathered.replies {
        if let Err(reason) = rules::reply_outcome(reply) {
            errors.push(format!("{worker}: {reason}"));
        }
    }
    let answered = gathered.replies.len();
    let mut outcome = if answered == 0 {
        "no worker answered".to_string()
    } else if errors.is_empty() {
        let first = gathered
            .replies
            .values()
            .next()
            .and_then(|r| rules::reply_outcome(r).ok())
            .unwrap_or_default();
        format!("{answered} worker(s): {first}")
    } else {
        errors.join("; ")
    };
    if !gathered.silent.is_empty() {
        outcome.push_str(&format!("; silent: {}", gathered.silent.join(", ")));
    }
    (answered > 0 && errors.is_empty(), outcome)
}

#[derive(Deserialize, Default)]
pub struct InspectParams {
    /// Workers to ask, separated by commas; every worker when absent.
    worker: Option<String>,
    timeout: Option<f64>,
}

fn names(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn inspect(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(command): Path<String>,
    Query(p): Query<InspectParams>,
) -> Result<Json<Value>, ApiError> {
    let question = Inspect::parse(&command).map_err(AppError::NotFound)?;
    let workers = names(p.worker.as_deref());
    let gathered = ask(
        &state,
        reader.project.id,
        question,
        &workers,
        timeout_of(p.timeout)?,
    )
    .await?;
    Ok(Json(
        json!({"command": question.name(), "replies": gathered.replies, "silent": gathered.silent}),
    ))
}

/// An action as the API takes it: the fields its kind needs.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    #[serde(default)]
    pub workers: Vec<String>,
    pub task_id: Option<String>,
    #[serde(default)]
    pub terminate: bool,
    pub signal: Option<String>,
    pub task_name: Option<String>,
    pub rate: Option<String>,
    pub soft: Option<f64>,
    pub hard: Option<f64>,
    pub n: Option<u32>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub queue: Option<String>,
    pub timeout: Option<f64>,
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, AppError> {
    value.ok_or_else(|| AppError::Invalid {
        field: field.into(),
        message: "required for this action".into(),
    })
}

impl ActionRequest {
    /// The action named `name`, from the fields it needs.
    pub fn action(self, name: &str) -> Result<Action, AppError> {
        Ok(match name {
            "revoke" | "terminate" => Action::Revoke {
                task_id: required("task_id", self.task_id)?,
                terminate: self.terminate || name == "terminate",
                signal: self.signal.unwrap_or_else(|| "SIGTERM".into()),
            },
            "rate_limit" => Action::RateLimit {
                task_name: required("task_name", self.task_name)?,
                rate: required("rate", self.rate)?,
            },
            "time_limit" => Action::TimeLimit {
                task_name: required("task_name", self.task_name)?,
                soft: self.soft,
                hard: self.hard,
            },
            "pool_grow" => Action::PoolGrow {
                n: self.n.unwrap_or(1),
            },
            "pool_shrink" => Action::PoolShrink {
                n: self.n.unwrap_or(1),
            },
            "pool_restart" => Action::PoolRestart,
            "autoscale" => Action::Autoscale {
                max: required("max", self.max)?,
                min: self.min.unwrap_or(0),
            },
            "add_consumer" => Action::AddConsumer {
                queue: required("queue", self.queue)?,
            },
            "cancel_consumer" => Action::CancelConsumer {
                queue: required("queue", self.queue)?,
            },
            "shutdown" => Action::Shutdown,
            "retry" => Action::Retry {
                task_id: required("task_id", self.task_id)?,
            },
            "abort" => Action::Abort {
                task_id: required("task_id", self.task_id)?,
            },
            "purge" => Action::Purge {
                queue: required("queue", self.queue)?,
            },
            other => {
                return Err(AppError::NotFound(format!(
                    "no celery action {other:?}: revoke, terminate, rate_limit, time_limit, \
                     pool_grow, pool_shrink, pool_restart, autoscale, add_consumer, \
                     cancel_consumer, shutdown, purge, retry, abort"
                )))
            }
        })
    }
}

pub async fn control(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    reader: ProjectReader,
    Path(name): Path<String>,
    body: Option<Json<ActionRequest>>,
) -> Result<Json<Performed>, ApiError> {
    let request = body.map(|Json(b)| b).unwrap_or_default();
    let workers = request.workers.clone();
    let timeout = timeout_of(request.timeout)?;
    let action = request.action(&name)?;
    let performed = perform(
        &state,
        reader.project.id,
        actor_of(&caller),
        action,
        &workers,
        timeout,
    )
    .await?;
    Ok(Json(performed))
}

#[derive(Deserialize, Default)]
pub struct ActionsParams {
    target: Option<String>,
    limit: Option<u32>,
}

pub async fn actions(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(p): Query<ActionsParams>,
) -> Result<Json<Vec<CeleryAction>>, ApiError> {
    Ok(Json(
        state
            .store
            .celery_actions(
                reader.project.id,
                p.target.filter(|t| !t.is_empty()),
                paging::limit(p.limit, 100, paging::MOST),
            )
            .await?,
    ))
}

// --- Flower's control API ---

/// Flower's parameters: from the query string and, for a form post, the body (Tornado's
/// `get_argument` reads both; scripts use either).
struct FlowerArgs(HashMap<String, String>);

impl FlowerArgs {
    fn read(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> FlowerArgs {
        let mut args: HashMap<String, String> =
            url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            args.extend(url::form_urlencoded::parse(body).into_owned());
        }
        FlowerArgs(args)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// A number, or 400 naming it, as Flower answers a value it cannot read.
    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, AppError> {
        self.text(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| AppError::BadRequest(format!("{name}: {v:?} is not a number")))
            })
            .transpose()
    }

    /// Tornado's `type=bool`: anything but empty, `false`, `0` is true.
    fn flag(&self, name: &str) -> bool {
        self.text(name)
            .is_some_and(|v| !matches!(v.to_lowercase().as_str(), "false" | "0" | "no"))
    }
}

/// Performs an action for Flower's API, where a value Celery would not take is a 400 (Tornado
/// answers every bad argument so), not Vigie's 422.
async fn flower_perform(
    call: &FlowerCall,
    action: Action,
    workers: &[String],
) -> Result<Performed, AppError> {
    perform(
        &call.state,
        call.project,
        call.actor.clone(),
        action,
        workers,
        control::DEFAULT_TIMEOUT,
    )
    .await
    .map_err(|err| match err {
        AppError::Invalid { field, message } => AppError::BadRequest(format!("{field}: {message}")),
        other => other,
    })
}

/// A parameter Flower requires: 400 `Missing argument` without it, as Tornado answers.
fn flower_required<T>(name: &str, value: Option<T>) -> Result<T, AppError> {
    value.ok_or_else(|| AppError::BadRequest(format!("Missing argument {name}")))
}

/// The Flower caller: who, in which project (`?project=`, else the Celery project), and
/// the parameters.
pub struct FlowerCall {
    state: AppState,
    project: ProjectId,
    actor: String,
    args: FlowerArgs,
}

/// Read from the request as every Flower control route needs it: the caller's credentials
/// (an admin, as for any POST), the project and the parameters from the query or form body.
impl<S: Send + Sync> axum::extract::FromRequest<S> for FlowerCall
where
    AppState: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::{FromRef, FromRequestParts};
        let (mut parts, body) = request.into_parts();
        let ApiCaller(caller) = ApiCaller::from_request_parts(&mut parts, state).await?;
        let (query, headers) = (parts.uri.query().map(str::to_owned), parts.headers.clone());
        // Read as axum's `Bytes` reads it, so the router's body limit applies unchanged.
        let request = axum::extract::Request::from_parts(parts, body);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                AppError::from_status(rejection.status(), rejection.body_text())
            })?;
        let state = AppState::from_ref(state);
        let project = super::api::flower_project(&state, query.as_deref()).await?;
        Ok(FlowerCall {
            actor: actor_of(&caller),
            args: FlowerArgs::read(query.as_deref(), &headers, &body),
            project: project.id,
            state,
        })
    }
}

impl FlowerCall {
    /// 404 `Unknown worker` unless Vigie has seen the worker, as Flower answers.
    async fn known_worker(&self, worker: &str) -> Result<(), AppError> {
        let known = self.state.store.celery_workers(self.project).await?;
        if known.iter().any(|w| w.hostname == worker) {
            Ok(())
        } else {
            Err(AppError::NotFound(format!("Unknown worker '{worker}'")))
        }
    }

    /// Performs the action; on a worker's error, Flower's 403 with `failed` and the reason.
    async fn act(
        &self,
        action: Action,
        workers: &[String],
        done: String,
        failed: impl FnOnce(String) -> String,
    ) -> Result<Response, AppError> {
        let performed = flower_perform(self, action, workers).await?;
        if performed.ok {
            return Ok(Json(json!({ "message": done })).into_response());
        }
        let reason = performed
            .gathered
            .replies
            .values()
            .find_map(|r| rules::reply_outcome(r).err())
            .unwrap_or_else(|| "Unknown reason".into());
        Ok((StatusCode::FORBIDDEN, failed(reason)).into_response())
    }

    /// The `ok` text of the worker's reply (Flower answers it as the message).
    async fn act_with_reply(
        &self,
        action: Action,
        worker: &str,
        failed: impl FnOnce(String) -> String,
    ) -> Result<Response, AppError> {
        let performed = flower_perform(self, action, &[worker.to_string()]).await?;
        match performed
            .gathered
            .replies
            .get(worker)
            .map(rules::reply_outcome)
        {
            Some(Ok(message)) => Ok(Json(json!({ "message": message })).into_response()),
            Some(Err(reason)) => Ok((StatusCode::FORBIDDEN, failed(reason)).into_response()),
            None => Ok((StatusCode::FORBIDDEN, failed("Unknown reason".into())).into_response()),
        }
    }
}

pub async fn flower_shutdown(
    Path(worker): Path<String>,
    call: FlowerCall,
) -> Result<Response, ApiError> {
    call.known_worker(&worker).await?;
    flower_perform(&call, Action::Shutdown, &[worker]).await?;
    Ok(Json(json!({"message": "Shutting down!"})).into_response())
}

pub async fn flower_pool(
    Path((verb, worker)): Path<(String, String)>,
    call: FlowerCall,
) -> Result<Response, ApiError> {
    call.known_worker(&worker).await?;
    let w = &worker;
    let n = || -> Result<u32, AppError> { Ok(call.args.number("n")?.unwrap_or(1)) };
    // The action, and Flower's words for it done and failed.
    let (action, done, failed) = match verb.as_str() {
        "restart" => (
            Action::PoolRestart,
            format!("Restarting '{w}' worker's pool"),
            format!("Failed to restart the '{w}' pool"),
        ),
        "grow" => {
            let n = n()?;
            (
                Action::PoolGrow { n },
                format!("Growing '{w}' worker's pool by {n}"),
                format!("Failed to grow '{w}' worker's pool"),
            )
        }
        "shrink" => {
            let n = n()?;
            (
                Action::PoolShrink { n },
                format!("Shrinking '{w}' worker's pool by {n}"),
                format!("Failed to shrink '{w}' worker's pool"),
            )
        }
        "autoscale" => {
            let min = call.args.number("min")?.unwrap_or(0);
            let max = flower_required("max", call.args.number("max")?)?;
            (
                Action::Autoscale { max, min },
                format!("Autoscaling '{w}' worker (min={min}, max={max})"),
                format!("Failed to autoscale '{w}' worker"),
            )
        }
        other => return Err(AppError::NotFound(format!("no pool action {other:?}")).into()),
    };
    Ok(call
        .act(action, std::slice::from_ref(&worker), done, |r| {
            format!("{failed}: {r}")
        })
        .await?)
}

pub async fn flower_queue(
    Path((verb, worker)): Path<(String, String)>,
    call: FlowerCall,
) -> Result<Response, ApiError> {
    call.known_worker(&worker).await?;
    let queue = flower_required("queue", call.args.text("queue"))?;
    let w = &worker;
    Ok(match verb.as_str() {
        "add-consumer" => {
            call.act_with_reply(
                Action::AddConsumer {
                    queue: queue.clone(),
                },
                w,
                |r| format!("Failed to add '{queue}' consumer to '{w}' worker: {r}"),
            )
            .await?
        }
        "cancel-consumer" => {
            call.act_with_reply(
                Action::CancelConsumer {
                    queue: queue.clone(),
                },
                w,
                |r| format!("Failed to cancel '{queue}' consumer from '{w}' worker: {r}"),
            )
            .await?
        }
        other => return Err(AppError::NotFound(format!("no queue action {other:?}")).into()),
    })
}

pub async fn flower_revoke(
    Path(task_id): Path<String>,
    call: FlowerCall,
) -> Result<Response, ApiError> {
    let action = Action::Revoke {
        terminate: call.args.flag("terminate"),
        signal: call.args.text("signal").unwrap_or_else(|| "SIGTERM".into()),
        task_id: task_id.clone(),
    };
    flower_perform(&call, action, &[]).await?;
    Ok(Json(json!({ "message": format!("Revoked '{task_id}'") })).into_response())
}

/// Flower's `/api/task/abort/{id}`: `{"message": "Aborted '<id>'"}`.
pub async fn flower_abort(
    Path(task_id): Path<String>,
    call: FlowerCall,
) -> Result<Response, ApiError> {
    let action = Action::Abort {
        task_id: task_id.clone(),
    };
    flower_perform(&call, action, &[]).await?;
    Ok(Json(json!({ "message": format!("Aborted '{task_id}'") })).into_response())
}

/// 404 `Unknown task` unless Vigie has seen a task of that name, as Flower answers.
async fn known_task(call: &FlowerCall, name: &str) -> Result<(), AppError> {
    let names = call.state.store.celery_task_names(call.project).await?;
    if names.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("Unknown task '{name}'")))
    }
}

pub async fn flower_rate_limit(
    Path(task_name): Path<String>,
    call: FlowerCall,
) -> Result<Response, ApiError> {
    let worker = flower_required("workername", call.args.text("workername"))?;
    let rate = flower_required("ratelimit", call.args.text("ratelimit"))?;
    known_task(&call, &task_name).await?;
    call.known_worker(&worker).await?;
    Ok(call
        .act_with_reply(Action::RateLimit { task_name, rate }, &worker, |r| {
            format!("Failed to set rate limit: '{r}'")
        })
        .await?)
}

pub async fn flower_timeout(
    Path(task_name): Path<String>,
    call: FlowerCall,
) -> Result<Response, ApiError> {
    let worker = flower_required("workername", call.args.text("workername"))?;
    let action = Action::TimeLimit {
        task_name: task_name.clone(),
        soft: call.args.number("soft")?,
        hard: call.args.number("hard")?,
    };
    known_task(&call, &task_name).await?;
    call.known_worker(&worker).await?;
    Ok(call
        .act_with_reply(action, &worker, |r| {
            format!("Failed to set timeouts: '{r}'")
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_says_who_answered_what() {
        let gathered = |replies: Value, silent: &[&str]| Gathered {
            replies: serde_json::from_value(replies).unwrap(),
            silent: silent.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            summary(&gathered(
                json!({"a": {"ok": "pool will grow"}, "b": {"ok": "pool will grow"}}),
                &[]
            )),
            (true, "2 worker(s): pool will grow".into())
        );
        assert_eq!(
            summary(&gathered(
                json!({"a": {"error": "Unknown task 'x'"}}),
                &["b"]
            )),
            (false, "a: Unknown task 'x'; silent: b".into())
        );
        assert_eq!(
            summary(&gathered(json!({}), &["a"])),
            (false, "no worker answered; silent: a".into())
        );
    }

    #[test]
    fn flower_arguments_come_from_the_query_or_a_form() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let args = FlowerArgs::read(
            Some("terminate=true&n=2"),
            &headers,
            b"workername=celery%40a&ratelimit=10%2Fm",
        );
        assert!(args.flag("terminate") && !args.flag("absent"));
        assert_eq!(args.number::<u32>("n").unwrap(), Some(2));
        assert_eq!(args.text("workername").as_deref(), Some("celery@a"));
        assert_eq!(args.text("ratelimit").as_deref(), Some("10/m"));
        assert!(args.number::<u32>("workername").is_err());
        let json_body = FlowerArgs::read(None, &HeaderMap::new(), b"n=5");
        assert_eq!(
            json_body.text("n"),
            None,
            "only forms are read from the body"
        );
    }

    #[test]
    fn an_action_needs_its_fields() {
        let request = |body: Value| serde_json::from_value::<ActionRequest>(body).unwrap();
        assert_eq!(
            request(json!({"task_id": "t1"}))
                .action("terminate")
                .unwrap(),
            Action::Revoke {
                task_id: "t1".into(),
                terminate: true,
                signal: "SIGTERM".into()
            }
        );
        assert!(matches!(
            request(json!({})).action("rate_limit"),
            Err(AppError::Invalid { field, .. }) if field == "task_name"
        ));
        assert!(matches!(
            request(json!({})).action("explode"),
            Err(AppError::NotFound(_))
        ));
        assert!(serde_json::from_value::<ActionRequest>(json!({"tsk_id": "x"})).is_err());
    }
}
