//! Monitors as JSON.
//!
//! ```text
//! GET    /api/v1/monitors                 every monitor: state, schedule, recent runs
//! GET    /api/v1/monitors/{slug}?limit=   one monitor and its runs, newest first
//! PUT    /api/v1/monitors/{slug}          its configuration, as Sentry SDKs send it:
//!                                         {"schedule": {"type": "crontab", "value": "0 3 * * *"}
//!                                          | {"type": "interval", "value": 10, "unit": "minute"},
//!                                          "checkin_margin": 5, "max_runtime": 30,
//!                                          "timezone": "Europe/Paris"}
//! POST   /api/v1/monitors/{slug}/pause    POST /api/v1/monitors/{slug}/resume
//! DELETE /api/v1/monitors/{slug}
//! ```
//!
//! Times are milliseconds since the epoch; the project is `?project=` as everywhere.

use crate::auth::job_access::ProjectReader;
use crate::http::paging::LimitParams;
use crate::http::{ApiError, AppError};
use crate::hub::Change;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use vigie_core::monitor::{MonitorConfig, MonitorState};
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::sentry::items::monitor_config;
use vigie_store::{Monitor, MonitorRun};

/// Runs shown per monitor in lists (the strip of recent runs).
pub const RECENT_RUNS: u32 = 30;

#[derive(Serialize)]
pub struct MonitorView {
    pub slug: String,
    /// new, up, late, down or paused, as of now.
    pub state: MonitorState,
    pub paused: bool,
    /// `0 3 * * * (Europe/Paris)`, `every 10 minutes`; `null` until configured.
    pub schedule: Option<String>,
    pub checkin_margin_min: Option<u32>,
    pub max_runtime_min: Option<u32>,
    pub next_expected: Option<Timestamp>,
    pub last_check_in: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Newest first.
    pub recent_runs: Vec<MonitorRun>,
}

impl MonitorView {
    pub fn new(monitor: &Monitor, runs: Vec<MonitorRun>, now: Timestamp) -> MonitorView {
        let config = monitor.config.as_ref();
        MonitorView {
            slug: monitor.slug.clone(),
            state: monitor.state_at(now),
            paused: monitor.paused,
            schedule: config.map(|c| c.schedule.describe()),
            checkin_margin_min: config.map(|c| c.checkin_margin_min),
            max_runtime_min: config.map(|c| c.max_runtime_min),
            next_expected: config.and(monitor.next_expected),
            last_check_in: monitor.last_check_in,
            created_at: monitor.created_at,
            recent_runs: runs,
        }
    }

    /// Recent runs oldest first, as the strip draws them.
    pub fn strip(&self) -> impl Iterator<Item = &MonitorRun> {
        self.recent_runs.iter().rev()
    }

    pub fn failed_recently(&self) -> usize {
        self.recent_runs
            .iter()
            .filter(|r| r.status.failed())
            .count()
    }
}

/// Every monitor of `project` with its recent runs.
pub async fn views(
    state: &AppState,
    project: ProjectId,
    runs: u32,
) -> Result<Vec<MonitorView>, AppError> {
    let monitors = state.store.list_monitors(project).await?;
    let all = state
        .store
        .monitor_runs(monitors.iter().map(|m| m.id).collect(), runs)
        .await?;
    let now = Timestamp::now();
    Ok(monitors
        .iter()
        .map(|m| {
            let mine = all
                .iter()
                .filter(|r| r.monitor_id == m.id)
                .cloned()
                .collect();
            MonitorView::new(m, mine, now)
        })
        .collect())
}

/// One monitor with its latest `runs`; 404 when there is none.
pub async fn view(
    state: &AppState,
    project: ProjectId,
    slug: &str,
    runs: u32,
) -> Result<MonitorView, AppError> {
    let monitor = state
        .store
        .monitor(project, slug)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no monitor \"{slug}\"")))?;
    let runs = state.store.monitor_runs(vec![monitor.id], runs).await?;
    Ok(MonitorView::new(&monitor, runs, Timestamp::now()))
}

pub async fn list(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<Vec<MonitorView>>, ApiError> {
    Ok(Json(views(&state, reader.project.id, RECENT_RUNS).await?))
}

pub async fn show(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(slug): Path<String>,
    Query(params): Query<LimitParams>,
) -> Result<Json<MonitorView>, ApiError> {
    let limit = params.or(100);
    Ok(Json(view(&state, reader.project.id, &slug, limit).await?))
}

/// Sets a monitor's configuration (creating the monitor if new) and tells the live pages.
pub async fn configure(
    state: &AppState,
    project: ProjectId,
    slug: &str,
    config: &MonitorConfig,
) -> Result<Monitor, AppError> {
    let monitor = state
        .store
        .configure_monitor(project, slug, config, Timestamp::now())
        .await?;
    state.hub.publish(Change::Monitors(project, None));
    Ok(monitor)
}

pub async fn update(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Json<MonitorView>, ApiError> {
    let config: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("the body is not JSON: {e}")))?;
    // Sentry's monitor_config shape; a wrong schedule is refused with the reason here, not
    // discovered at 3 a.m.
    let config = monitor_config(&config).map_err(|message| AppError::Invalid {
        field: "monitor_config".into(),
        message,
    })?;
    let project = reader.project.id;
    configure(&state, project, &slug, &config).await?;
    Ok(Json(view(&state, project, &slug, RECENT_RUNS).await?))
}

/// Pauses or resumes; answers the monitor.
pub async fn set_paused(
    state: &AppState,
    project: ProjectId,
    slug: &str,
    paused: bool,
) -> Result<Monitor, AppError> {
    let monitor = state
        .store
        .set_monitor_paused(project, slug, paused, Timestamp::now())
        .await?;
    state.hub.publish(Change::Monitors(project, None));
    Ok(monitor)
}

pub async fn pause(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(slug): Path<String>,
) -> Result<Json<MonitorView>, ApiError> {
    set_paused(&state, reader.project.id, &slug, true).await?;
    Ok(Json(
        view(&state, reader.project.id, &slug, RECENT_RUNS).await?,
    ))
}

pub async fn resume(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(slug): Path<String>,
) -> Result<Json<MonitorView>, ApiError> {
    set_paused(&state, reader.project.id, &slug, false).await?;
    Ok(Json(
        view(&state, reader.project.id, &slug, RECENT_RUNS).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    state.store.delete_monitor(reader.project.id, &slug).await?;
    state.hub.publish(Change::Monitors(reader.project.id, None));
    Ok(StatusCode::NO_CONTENT.into_response())
}
