//! Celery tasks and workers as JSON: Vigie's API, and the read API of Flower for the scripts
//! that already call it.
//!
//! ```text
//! GET /api/v1/celery/tasks?q=&name=&state=&worker=&since=&until=&limit=&offset=   newest first
//!                                        q: the search box (`name: state: worker: args: kwargs:
//!                                        result:` and words; vigie_core::celery::TaskSearch)
//! GET /api/v1/celery/tasks/{uuid}        the task, its events (timeline) and its children
//! GET /api/v1/celery/workers             workers with online / offline
//! GET /api/v1/celery/brokers             each broker read, connected or with its last error
//! GET /api/v1/celery/queues              messages waiting per queue (Redis LLEN)
//!
//! Flower-compatible (same paths, parameters and shapes as Flower's /api):
//! GET /api/workers[?status=true]         {hostname: info} or {hostname: online}
//! GET /api/tasks?limit=&offset=&workername=&taskname=&state=&received_start=&received_end=
//!                                        {uuid: task}, newest first
//! GET /api/task/info/{uuid}              one task
//! GET /api/task/types                    {"task-types": [names]}
//! GET /api/queues/length                 {"active_queues": [{"name", "messages"}]}
//! ```
//!
//! Flower reads times as seconds since the epoch (floats); so does this API where it answers
//! as Flower. `received_start` / `received_end` filter on the task's last event (the time
//! Vigie indexes), where Flower reads the received time; for a finished task they differ by
//! its run time.

use crate::auth::job_access::ProjectReader;
use crate::http::Table;
use crate::http::{paging, ApiError, AppError};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use vigie_core::celery::control::Inspect;
use vigie_core::celery::periodic::{self as schedule, Periodic};
use vigie_core::celery::{Task, TaskSearch, TaskSort, Worker};
use vigie_core::Timestamp;
use vigie_store::TaskFilter;

pub fn routes() -> Table<AppState> {
    Table::new()
        .route("/api/v1/celery/tasks", get(tasks))
        .route("/api/v1/celery/tasks/{uuid}", get(task))
        .route("/api/v1/celery/workers", get(workers))
        .route("/api/v1/celery/brokers", get(brokers))
        .route("/api/v1/celery/queues", get(queues))
        .route("/api/v1/celery/periodic", get(periodic))
        .route("/api/queues/length", get(flower_queues))
        .route("/api/workers", get(flower_workers))
        .route("/api/tasks", get(flower_tasks))
        .route("/api/task/info/{uuid}", get(flower_task))
        .route("/api/task/types", get(flower_types))
        .route("/api/task/result/{uuid}", get(flower_result))
        .route(
            "/api/task/async-apply/{name}",
            axum::routing::post(super::flower_send::async_apply),
        )
        .route(
            "/api/task/send-task/{name}",
            axum::routing::post(super::flower_send::async_apply),
        )
        .route(
            "/api/task/apply/{name}",
            axum::routing::post(super::flower_send::apply),
        )
}

#[derive(Deserialize, Default)]
pub struct TaskParams {
    q: Option<String>,
    /// `runtime`, `-runtime`, … (`vigie_core::celery::TaskSort`).
    sort: Option<String>,
    name: Option<String>,
    state: Option<String>,
    worker: Option<String>,
    /// RFC 3339.
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

fn instant(field: &str, text: &Option<String>) -> Result<Option<Timestamp>, AppError> {
    text.as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| {
            Timestamp::parse_rfc3339(t).ok_or_else(|| AppError::Invalid {
                field: field.into(),
                message: format!("\"{t}\" is not an RFC 3339 time"),
            })
        })
        .transpose()
}

fn nonempty(text: &Option<String>) -> Option<String> {
    text.clone().filter(|t| !t.is_empty())
}

/// The store filter of a search box, a sort and of the fields given apart (which win).
pub fn filter_of(
    project: vigie_core::ProjectId,
    q: &str,
    sort: &str,
    name: Option<String>,
    task_state: Option<String>,
    worker: Option<String>,
) -> Result<TaskFilter, AppError> {
    let search = TaskSearch::parse(q).map_err(|message| AppError::Invalid {
        field: "q".into(),
        message,
    })?;
    let sort = sort_of("sort", sort)?;
    Ok(TaskFilter {
        project,
        name: name.or(search.name),
        state: task_state.map(|s| s.to_uppercase()).or(search.state),
        worker: worker.or(search.worker),
        args: search.args,
        kwargs: search.kwargs,
        result: search.result,
        words: search.words,
        sort,
        limit: 100,
        ..Default::default()
    })
}

pub async fn tasks(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(p): Query<TaskParams>,
) -> Result<Json<Vec<Task>>, ApiError> {
    let filter = TaskFilter {
        since: instant("since", &p.since)?,
        until: instant("until", &p.until)?,
        limit: paging::limit(p.limit, 100, paging::MOST),
        offset: p.offset.unwrap_or(0),
        ..filter_of(
            reader.project.id,
            p.q.as_deref().unwrap_or(""),
            p.sort.as_deref().unwrap_or(""),
            nonempty(&p.name),
            nonempty(&p.state),
            nonempty(&p.worker),
        )?
    };
    Ok(Json(state.store.celery_tasks(&filter).await?))
}

async fn find(
    state: &AppState,
    project: vigie_core::ProjectId,
    uuid: &str,
) -> Result<Task, AppError> {
    state
        .store
        .celery_task(project, uuid)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no celery task {uuid}")))
}

pub async fn task(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = find(&state, reader.project.id, &uuid).await?;
    let events = state
        .store
        .celery_task_events(reader.project.id, &uuid)
        .await?;
    Ok(Json(json!({"task": task, "events": events})))
}

/// A worker as the API shows it: what its heartbeats said, and whether it is online now.
fn worker_view(worker: &Worker, now: Timestamp) -> Value {
    let mut view = serde_json::to_value(worker).unwrap_or_default();
    view["online"] = worker.online(now).into();
    view
}

pub async fn workers(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<Value>>, ApiError> {
    let now = Timestamp::now();
    let list = state.store.celery_workers(reader.project.id).await?;
    Ok(Json(list.iter().map(|w| worker_view(w, now)).collect()))
}

/// Tasks per name looked at to tell a schedule.
const PERIODIC_RUNS: u32 = 20;

/// The project's task names that run at a steady interval, most overdue first.
pub async fn periodic_of(
    state: &AppState,
    project: vigie_core::ProjectId,
) -> Result<Vec<Periodic>, AppError> {
    let mut found = Vec::new();
    for name in state.store.celery_task_names(project).await? {
        let recent = state
            .store
            .celery_tasks(&TaskFilter {
                project,
                name: Some(name.clone()),
                limit: PERIODIC_RUNS,
                ..Default::default()
            })
            .await?;
        found.extend(schedule::infer(&name, &recent));
    }
    found.sort_by_key(|p| (p.expected_next, p.name.clone()));
    Ok(found)
}

pub async fn periodic(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<Value>>, ApiError> {
    let now = Timestamp::now();
    let list = periodic_of(&state, reader.project.id).await?;
    Ok(Json(
        list.iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "interval_s": p.interval_ms as f64 / 1000.0,
                    "runs": p.runs,
                    "last_run": p.last.uuid,
                    "last_state": p.last.state.as_str(),
                    "last_sent_at": p.last.sent_at.or(p.last.received_at),
                    "expected_next": p.expected_next,
                    "late": p.late(now),
                })
            })
            .collect(),
    ))
}

pub async fn brokers(
    State(state): State<AppState>,
    _reader: ProjectReader,
) -> Json<Vec<super::BrokerStatus>> {
    Json(state.brokers.list())
}

pub async fn queues(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<super::queues::QueueLength>>, ApiError> {
    Ok(Json(
        super::queues::lengths(&state, reader.project.id).await?,
    ))
}

// --- Flower's read API ---

/// The project Flower's API answers for: `?project=` (a name or id), else
/// `[celery] flower_api_project`, else the Celery project — Flower scripts name none.
pub async fn flower_project(
    state: &AppState,
    query: Option<&str>,
) -> Result<vigie_core::Project, AppError> {
    let config = &state.config.celery;
    let asked = query.and_then(|q| vigie_protocol::query_value(q, "project"));
    let name = asked.unwrap_or_else(|| {
        let set = config.flower_api_project.trim();
        if set.is_empty() { &config.project } else { set }.to_string()
    });
    state
        .store
        .list_projects()
        .await?
        .into_iter()
        .find(|p| p.id.0.to_string() == name || p.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no project {name:?}")))
}

/// A caller of Flower's read API, and the project it reads ([`flower_project`]).
pub struct FlowerReader {
    pub project: vigie_core::Project,
}

impl axum::extract::FromRequestParts<AppState> for FlowerReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        crate::auth::ApiCaller::from_request_parts(parts, state).await?;
        Ok(FlowerReader {
            project: flower_project(state, parts.uri.query()).await?,
        })
    }
}

pub async fn flower_queues(
    State(state): State<AppState>,
    reader: FlowerReader,
) -> Result<Json<Value>, ApiError> {
    let lengths = super::queues::lengths(&state, reader.project.id).await?;
    Ok(Json(json!({ "active_queues": lengths })))
}

fn seconds(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(t.millis() as f64 / 1000.0))
}

/// A task in Flower's shape.
fn flower_task_view(t: &Task) -> Value {
    let (succeeded, failed, revoked) = match t.state.as_str() {
        "SUCCESS" => (t.finished_at, None, None),
        "FAILURE" => (None, t.finished_at, None),
        "REVOKED" => (None, None, t.finished_at),
        _ => (None, None, None),
    };
    json!({
        "uuid": t.uuid,
        "name": t.name,
        "state": t.state.as_str(),
        "received": seconds(t.received_at),
        "sent": seconds(t.sent_at),
        "started": seconds(t.started_at),
        "succeeded": seconds(succeeded),
        "failed": seconds(failed),
        "revoked": seconds(revoked),
        "args": t.args,
        "kwargs": t.kwargs,
        "result": t.result,
        "exception": t.exception,
        "traceback": t.traceback,
        "timestamp": seconds(Some(t.updated_at)),
        "runtime": t.runtime,
        "worker": t.worker,
        "retries": t.retries,
        "eta": t.eta,
        "expires": t.expires,
        "parent_id": t.parent_id,
        "root_id": t.root_id,
        "routing_key": t.routing_key,
        "queue": t.queue,
    })
}

#[derive(Deserialize, Default)]
pub struct FlowerTaskParams {
    limit: Option<u32>,
    offset: Option<u32>,
    workername: Option<String>,
    taskname: Option<String>,
    state: Option<String>,
    /// `YYYY-MM-DD HH:MM` (UTC), as Flower reads it.
    received_start: Option<String>,
    received_end: Option<String>,
    /// `name`, `-received`, … as Flower reads it.
    sort_by: Option<String>,
    /// Flower's task filter: `args:… kwargs:… result:… state:…` and words, the same syntax as
    /// Vigie's search box.
    search: Option<String>,
}

fn sort_of(field: &str, text: &str) -> Result<TaskSort, AppError> {
    TaskSort::parse(text).map_err(|message| AppError::Invalid {
        field: field.into(),
        message,
    })
}

/// Flower's `received_start` / `received_end`: `2025-01-10 22:15` in UTC.
fn flower_time(field: &str, text: &Option<String>) -> Result<Option<Timestamp>, AppError> {
    let Some(text) = nonempty(text) else {
        return Ok(None);
    };
    let parsed = text
        .replace(' ', "T")
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| Timestamp(z.timestamp().as_millisecond()));
    parsed.map(Some).ok_or_else(|| AppError::Invalid {
        field: field.into(),
        message: format!("\"{text}\" is not a time such as 2025-01-10 22:15"),
    })
}

pub async fn flower_tasks(
    State(state): State<AppState>,
    reader: FlowerReader,
    Query(p): Query<FlowerTaskParams>,
) -> Result<Json<InOrder>, ApiError> {
    let filter = TaskFilter {
        since: flower_time("received_start", &p.received_start)?,
        until: flower_time("received_end", &p.received_end)?,
        limit: paging::limit(p.limit, paging::MOST, paging::MOST),
        offset: p.offset.unwrap_or(0),
        ..filter_of(
            reader.project.id,
            p.search.as_deref().unwrap_or(""),
            "",
            nonempty(&p.taskname),
            nonempty(&p.state),
            nonempty(&p.workername),
        )
        .map_err(|e| match e {
            AppError::Invalid { message, .. } => AppError::Invalid {
                field: "search".into(),
                message,
            },
            other => other,
        })?
    };
    let filter = TaskFilter {
        sort: sort_of("sort_by", p.sort_by.as_deref().unwrap_or(""))?,
        ..filter
    };
    let list = state.store.celery_tasks(&filter).await?;
    Ok(Json(InOrder(
        list.iter()
            .map(|t| (t.uuid.clone(), flower_task_view(t)))
            .collect(),
    )))
}

/// A JSON object whose keys keep the order given (Flower's task map is in `sort_by` order;
/// `serde_json::Map` would sort it by id).
pub struct InOrder(Vec<(String, Value)>);

impl serde::Serialize for InOrder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

pub async fn flower_task(
    State(state): State<AppState>,
    reader: FlowerReader,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(flower_task_view(
        &find(&state, reader.project.id, &uuid).await?,
    )))
}

pub async fn flower_types(
    State(state): State<AppState>,
    reader: FlowerReader,
) -> Result<Json<Value>, ApiError> {
    let names = state.store.celery_task_names(reader.project.id).await?;
    Ok(Json(json!({ "task-types": names })))
}

#[derive(Deserialize, Default)]
pub struct FlowerWorkerParams {
    /// `true`, `1`, `yes`: only each worker's online state (Flower reads it so).
    status: Option<String>,
    /// One worker only (404 when Vigie does not know it, as Flower answers).
    workername: Option<String>,
    /// Flower re-inspects when asked; Vigie always asks the workers, so it is accepted and
    /// changes nothing.
    #[allow(dead_code)] // read for Flower's parameter list; the answer is always fresh
    refresh: Option<String>,
}

/// What Flower's `/api/workers` adds from `celery inspect`, per worker.
const FLOWER_INSPECTED: [Inspect; 8] = [
    Inspect::Stats,
    Inspect::ActiveQueues,
    Inspect::Registered,
    Inspect::Scheduled,
    Inspect::Active,
    Inspect::Reserved,
    Inspect::Revoked,
    Inspect::Conf,
];

pub async fn flower_workers(
    State(state): State<AppState>,
    reader: FlowerReader,
    Query(p): Query<FlowerWorkerParams>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let now = Timestamp::now();
    let mut list = state.store.celery_workers(reader.project.id).await?;
    if let Some(name) = nonempty(&p.workername) {
        list.retain(|w| w.hostname == name);
        if list.is_empty() {
            return Err(AppError::NotFound(format!("Unknown worker '{name}'")).into());
        }
    }
    let status_only = p
        .status
        .as_deref()
        .is_some_and(|v| matches!(v.to_lowercase().as_str(), "true" | "1" | "yes" | "on"));
    if status_only {
        return Ok(Json(
            list.iter()
                .map(|w| (w.hostname.clone(), json!(w.online(now))))
                .collect(),
        ));
    }
    let online: Vec<String> = list
        .iter()
        .filter(|w| w.online(now))
        .map(|w| w.hostname.clone())
        .collect();
    // Asked of the online workers at once; a worker that does not answer in time gets no
    // such field, as in Flower when its inspection timed out.
    let inspected = if online.is_empty() || state.config.celery.brokers.trim().is_empty() {
        Vec::new()
    } else {
        let asks = FLOWER_INSPECTED.map(|question| {
            super::control_api::ask(
                &state,
                reader.project.id,
                question,
                &online,
                super::control::DEFAULT_TIMEOUT,
            )
        });
        futures_util::future::join_all(asks).await
    };
    Ok(Json(
        list.iter()
            .map(|w| {
                let mut info = json!({
                    "hostname": w.hostname,
                    "status": w.online(now),
                    "timestamp": seconds(Some(w.last_heartbeat)),
                    "freq": w.freq,
                    "active_tasks": w.active,
                    "processed": w.processed,
                    "loadavg": w.loadavg,
                    "sw_ident": w.sw_ident,
                    "sw_ver": w.sw_ver,
                    "sw_sys": w.sw_sys,
                });
                for (question, answer) in FLOWER_INSPECTED.iter().zip(&inspected) {
                    if let Some(reply) = answer
                        .as_ref()
                        .ok()
                        .and_then(|g| g.replies.get(&w.hostname))
                    {
                        info[question.name()] = reply.clone();
                    }
                }
                (w.hostname.clone(), info)
            })
            .collect(),
    ))
}

/// A result as Flower gives it: the value itself when its text is JSON (`42`, `[1, 2]`),
/// else the text Celery sent (a Python repr such as `'sent'`).
pub fn result_value(text: Option<String>) -> Value {
    text.map_or(Value::Null, |t| {
        serde_json::from_str(&t).unwrap_or(Value::String(t))
    })
}

#[derive(Deserialize, Default)]
pub struct FlowerResultParams {
    /// Seconds to wait for the task to finish (Flower's `timeout`), at most 30.
    timeout: Option<f64>,
}

/// Flower's `/api/task/result/{id}`: `{"task-id", "state", "result"}`, the traceback of a
/// failure too. A task Vigie has not seen is `PENDING`, as Celery's `AsyncResult` says of an
/// unknown id.
pub async fn flower_result(
    State(state): State<AppState>,
    reader: FlowerReader,
    Path(uuid): Path<String>,
    Query(p): Query<FlowerResultParams>,
) -> Result<Json<Value>, ApiError> {
    let wait = Duration::from_secs_f64(p.timeout.unwrap_or(0.0).clamp(0.0, 30.0));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let task = state.store.celery_task(reader.project.id, &uuid).await?;
        let ready = task.as_ref().is_some_and(|t| t.state.is_ready());
        if ready || tokio::time::Instant::now() >= deadline {
            let Some(task) = task else {
                return Ok(Json(
                    json!({"task-id": uuid, "state": "PENDING", "result": null}),
                ));
            };
            let mut answer = json!({
                "task-id": uuid,
                "state": task.state.as_str(),
                "result": if ready { result_value(task.result.or(task.exception.clone())) } else { Value::Null },
            });
            if task.state.as_str() == "FAILURE" {
                answer["traceback"] = json!(task.traceback);
            }
            return Ok(Json(answer));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
