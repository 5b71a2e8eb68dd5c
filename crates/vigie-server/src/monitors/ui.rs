//! The Monitors pages: every monitor with its state and a strip of recent runs, and one
//! monitor with its runs, its ping URLs and (for admins) its schedule, pause and delete.
//!
//! Both refresh themselves through `/live/monitors` (see `assets/refresh.js`).

use crate::auth::AdminUser;
use crate::http::{AppError, PageError};
use crate::hub::Change;
use crate::monitors::api::{self, MonitorView, RECENT_RUNS};
use crate::state::AppState;
use crate::web::format::{duration, encode};
use crate::web::sse::ProjectPulse;
use crate::web::{form_outcome, render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use vigie_core::monitor::{MonitorConfig, MonitorState, RunStatus};
use vigie_core::schedule::Schedule;
use vigie_core::{Project, ProjectId, Timestamp};
use vigie_store::MonitorRun;

pub const UP: MonitorState = MonitorState::Up;
pub const LATE: MonitorState = MonitorState::Late;
pub const DOWN: MonitorState = MonitorState::Down;

pub fn run_label(status: &RunStatus) -> &'static str {
    match status {
        RunStatus::InProgress => "running",
        RunStatus::Ok => "ok",
        RunStatus::Error => "failed",
        RunStatus::Missed => "missed",
        RunStatus::TimedOut => "timed out",
    }
}

#[derive(Template)]
#[template(path = "monitors/monitors.html")]
struct MonitorsPage {
    chrome: Chrome,
    project: Project,
    monitors: Vec<MonitorView>,
    /// The ping URL of a monitor named `SLUG` (for the empty state).
    ping_base: String,
    dsn: String,
}

impl MonitorsPage {
    fn count(&self, state: MonitorState) -> usize {
        self.monitors.iter().filter(|m| m.state == state).count()
    }
}

pub async fn list(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "monitors").await?;
    let project = chrome.project_or_404()?;
    let monitors = api::views(&state, project.id, RECENT_RUNS).await?;
    let page = MonitorsPage {
        ping_base: ping_base(&state, &project),
        dsn: state.dsn(&project),
        project,
        monitors,
        chrome,
    };
    render(&page, &page.chrome)
}

/// `<base>/ping/<project key>`: a monitor's ping URL is this plus `/<slug>`.
fn ping_base(state: &AppState, project: &Project) -> String {
    format!(
        "{}/ping/{}",
        state.base_url.trim_end_matches('/'),
        project.public_key.as_str()
    )
}

#[derive(Template)]
#[template(path = "monitors/monitor.html")]
struct MonitorPage {
    chrome: Chrome,
    project: Project,
    monitor: MonitorView,
    ping: String,
    /// What the schedule form shows.
    form: ScheduleForm,
}

impl MonitorPage {
    fn slug_path(&self) -> String {
        encode(&self.monitor.slug)
    }

    fn delete_path(&self) -> String {
        format!("/monitors/{}/delete", self.slug_path())
    }

    fn delete_question(&self) -> String {
        format!("Delete the monitor {} and its runs?", self.monitor.slug)
    }
}

pub async fn show(
    State(state): State<AppState>,
    request: PageRequest,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "monitors").await?;
    let project = chrome.project_or_404()?;
    let monitor = api::view(&state, project.id, &slug, 200).await?;
    let stored = state.store.monitor(project.id, &slug).await?;
    let form = stored
        .and_then(|m| m.config)
        .map(|c| ScheduleForm::from_config(&c))
        .unwrap_or_default();
    let page = MonitorPage {
        ping: format!("{}/{}", ping_base(&state, &project), encode(&slug)),
        project,
        monitor,
        form,
        chrome,
    };
    render(&page, &page.chrome)
}

/// The schedule form, as typed.
#[derive(Deserialize, Default)]
pub struct ScheduleForm {
    schedule: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    checkin_margin: String,
    #[serde(default)]
    max_runtime: String,
}

impl ScheduleForm {
    fn from_config(config: &MonitorConfig) -> ScheduleForm {
        let (schedule, timezone) = match &config.schedule {
            Schedule::Crontab { cron, timezone } => (cron.to_string(), timezone.clone()),
            // An interval does not depend on a time zone; showing "UTC" said otherwise.
            other => (other.describe(), String::new()),
        };
        ScheduleForm {
            schedule,
            timezone,
            checkin_margin: config.checkin_margin_min.to_string(),
            max_runtime: config.max_runtime_min.to_string(),
        }
    }

    fn config(&self) -> Result<MonitorConfig, AppError> {
        let invalid = |field: &str, message: String| AppError::Invalid {
            field: field.into(),
            message,
        };
        let schedule = Schedule::parse(&self.schedule, &self.timezone)
            .map_err(|e| invalid("schedule", e.to_string()))?;
        let minutes = |field: &str, text: &str, default: u32| match text.trim() {
            "" => Ok(default),
            text => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10_080).contains(n))
                .ok_or_else(|| invalid(field, format!("\"{text}\" is not 1 to 10080 minutes"))),
        };
        Ok(MonitorConfig {
            schedule,
            checkin_margin_min: minutes(
                "checkin_margin",
                &self.checkin_margin,
                MonitorConfig::DEFAULT_MARGIN_MIN,
            )?,
            max_runtime_min: minutes(
                "max_runtime",
                &self.max_runtime,
                MonitorConfig::DEFAULT_MAX_RUNTIME_MIN,
            )?,
        })
    }
}

fn back_to(slug: &str) -> String {
    format!("/monitors/{}", encode(slug))
}

pub async fn configure(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(slug): Path<String>,
    Form(form): Form<ScheduleForm>,
) -> Result<Response, PageError> {
    let project = current_project(&state, &request).await?;
    let result = match form.config() {
        Ok(config) => api::configure(&state, project.id, &slug, &config).await,
        Err(err) => Err(err),
    };
    form_outcome(
        result,
        &back_to(&slug),
        request.secure_cookies(&state),
        |m| {
            let config = m.config.as_ref().expect("just configured");
            format!(
                "Schedule saved: {}, {} min margin, {} min maximum runtime.",
                config.schedule.describe(),
                config.checkin_margin_min,
                config.max_runtime_min
            )
        },
    )
}

#[derive(Deserialize)]
pub struct PauseForm {
    action: String,
}

pub async fn pause(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(slug): Path<String>,
    Form(form): Form<PauseForm>,
) -> Result<Response, PageError> {
    let project = current_project(&state, &request).await?;
    let paused = form.action == "pause";
    let result = api::set_paused(&state, project.id, &slug, paused).await;
    form_outcome(
        result,
        &back_to(&slug),
        request.secure_cookies(&state),
        |m| {
            if m.paused {
                format!("\"{}\" is paused: missed runs are not reported.", m.slug)
            } else {
                format!("\"{}\" is checked again from now on.", m.slug)
            }
        },
    )
}

pub async fn delete(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let project = current_project(&state, &request).await?;
    let result = state.store.delete_monitor(project.id, &slug).await;
    if result.is_ok() {
        state.hub.publish(Change::Monitors(project.id, None));
    }
    form_outcome(
        result.map_err(AppError::from),
        "/monitors",
        request.secure_cookies(&state),
        |_| format!("Monitor \"{slug}\" deleted with its runs; a new check-in creates it again."),
    )
}

async fn current_project(
    state: &AppState,
    request: &PageRequest<AdminUser>,
) -> Result<Project, PageError> {
    let chrome = request.chrome(state, "monitors").await?;
    Ok(chrome.project_or_404()?)
}

/// What changes when a project's monitors change.
#[derive(Serialize)]
pub struct MonitorsPulse {
    monitors: Vec<(String, &'static str, Option<i64>, Option<i64>)>,
}

impl ProjectPulse for MonitorsPulse {
    fn concerns(change: &Change, project: ProjectId) -> bool {
        matches!(change, Change::Monitors(p, _) if *p == project)
    }

    async fn read(state: &AppState, project: ProjectId) -> Result<Self, AppError> {
        let now = Timestamp::now();
        let monitors = state.store.list_monitors(project).await?;
        Ok(MonitorsPulse {
            monitors: monitors
                .iter()
                .map(|m| {
                    (
                        m.slug.clone(),
                        m.state_at(now).as_str(),
                        m.last_check_in.map(|t| t.millis()),
                        m.next_expected.map(|t| t.millis()),
                    )
                })
                .collect(),
        })
    }
}

/// A run's place in the strip: its colour and what hovering says.
pub fn run_title(run: &MonitorRun) -> String {
    let mut title = format!(
        "{} · {}",
        run_label(&run.status),
        run.started_at.to_rfc3339()
    );
    let d = duration(&run.duration_ms);
    if !d.is_empty() {
        title.push_str(&format!(" · {d}"));
    }
    title
}
