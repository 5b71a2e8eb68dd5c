//! The Celery pages: tasks (filtered by name, state and worker, newest first, paged), one task
//! (its facts, arguments, result or traceback, the events of its life, its children, and links
//! to its logs, issues and traces), and the workers. They refresh themselves through
//! `/live/celery` when the project's tasks change.

use crate::http::{AppError, PageError};
use crate::hub::Change;
use crate::state::AppState;
use crate::web::format::runtime;
use crate::web::sse::ProjectPulse;
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use vigie_core::celery::periodic::Periodic;
use vigie_core::celery::{Task, TaskSort, Worker, REDUNDANT_FIELDS};
use vigie_core::{Project, ProjectId, Timestamp};
use vigie_store::{TaskEvent, TaskFilter, WorkerPeriod};

/// Tasks per page.
const PAGE: u32 = 50;

/// The status colour of a task state.
#[derive(Deserialize, Default)]
pub struct TasksParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    worker: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: u32,
}

#[derive(Template)]
#[template(path = "celery/tasks.html")]
struct TasksPage {
    chrome: Chrome,
    project: Project,
    tasks: Vec<Task>,
    names: Vec<String>,
    workers: Vec<Worker>,
    params: TasksParams,
    more: bool,
    /// Why the search box could not be read.
    problem: Option<String>,
    brokers: Vec<crate::celery::BrokerStatus>,
    queues: Vec<crate::celery::queues::QueueLength>,
    now: Timestamp,
}

impl TasksPage {
    fn states(&self) -> [&'static str; 8] {
        [
            "PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED",
        ]
    }

    fn online(&self) -> usize {
        self.workers.iter().filter(|w| w.online(self.now)).count()
    }

    fn filtered(&self) -> bool {
        let p = &self.params;
        !(p.q.is_empty() && p.name.is_empty() && p.state.is_empty() && p.worker.is_empty())
    }

    /// A column header's link: sorts by `key`, descending first, the other way when it is
    /// already the order.
    fn sort_link(&self, key: &str) -> String {
        let descending = format!("-{key}");
        let next = if self.params.sort == descending {
            key.to_string()
        } else {
            descending
        };
        self.link(&next, 0)
    }

    /// The arrow beside the header of the current order.
    fn sort_mark(&self, key: &str) -> &'static str {
        let current = TaskSort::parse(&self.params.sort)
            .unwrap_or_default()
            .as_text();
        if current == format!("-{key}") {
            " ↓"
        } else if current == key {
            " ↑"
        } else {
            ""
        }
    }

    /// Whether a filter field holds `value` (the option to show selected).
    fn is(&self, field: &str, value: &str) -> bool {
        field == value
    }

    fn newer(&self) -> String {
        self.page_link(self.params.page.saturating_sub(1))
    }

    fn older(&self) -> String {
        self.page_link(self.params.page + 1)
    }

    /// The link to another page of the same filters and order.
    fn page_link(&self, page: u32) -> String {
        self.link(&self.params.sort, page)
    }

    fn link(&self, sort: &str, page: u32) -> String {
        let q = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "/celery?q={}&name={}&state={}&worker={}&sort={}&page={page}",
            q(&self.params.q),
            q(&self.params.name),
            q(&self.params.state),
            q(&self.params.worker),
            q(sort)
        )
    }
}

fn nonempty(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

pub async fn tasks(
    State(state): State<AppState>,
    request: PageRequest,
    Query(params): Query<TasksParams>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "celery").await?;
    let project = chrome.project_or_404()?;
    if let Some(to_trace) = crate::web::related::open_trace(&state, project.id, &params.q).await? {
        return Ok(to_trace);
    }
    let searched = crate::celery::api::filter_of(
        project.id,
        &params.q,
        &params.sort,
        nonempty(&params.name),
        nonempty(&params.state),
        nonempty(&params.worker),
    );
    let (mut tasks, problem) = match crate::web::searchable(searched)? {
        Ok(filter) => {
            let filter = TaskFilter {
                // One more than shown says whether a next page exists.
                limit: PAGE + 1,
                offset: params.page * PAGE,
                ..filter
            };
            (state.store.celery_tasks(&filter).await?, None)
        }
        Err(why) => (Vec::new(), Some(why)),
    };
    let more = tasks.len() > PAGE as usize;
    tasks.truncate(PAGE as usize);
    let page = TasksPage {
        names: state.store.celery_task_names(project.id).await?,
        workers: state.store.celery_workers(project.id).await?,
        brokers: state.brokers.list(),
        queues: crate::celery::queues::lengths(&state, project.id).await?,
        now: Timestamp::now(),
        tasks,
        params,
        more,
        problem,
        project,
        chrome,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "celery/task.html")]
struct TaskPage {
    chrome: Chrome,
    task: Task,
    events: Vec<TaskEvent>,
    children: Vec<Task>,
    /// The issue its failure made (and any other its events belong to).
    issues: Vec<crate::web::related::RelatedIssue>,
    /// The traces whose spans ran it (OpenTelemetry's Celery instrumentation names the task id).
    traces: crate::web::related::JobTraces,
    /// What people did to it from Vigie (revoke, terminate, retry), newest first.
    actions: Vec<vigie_store::CeleryAction>,
    /// Its address, for the buttons to come back to.
    back: String,
}

impl TaskPage {
    /// What an event adds, in one line: its fields other than the ones every event has (kept
    /// out when stored, but older rows still hold them) and the traceback (shown apart).
    fn event_detail(&self, event: &TaskEvent) -> String {
        detail_line(&event.fields)
    }

    /// A time Celery sent as text (`eta`, `expires`), when it reads as one.
    fn instant(&self, text: &str) -> Option<Timestamp> {
        Timestamp::parse_rfc3339(text)
    }

    /// The root of the task tree, when it is another task.
    fn root(&self) -> Option<&String> {
        self.task.root_id.as_ref().filter(|r| **r != self.task.uuid)
    }

    /// The progress bar's fill, in percent, when the task reported a total.
    fn percent(&self) -> Option<f64> {
        let (current, total) = self.task.progress?;
        let total = total.filter(|t| *t > 0)?;
        Some((current as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
    }

    fn bar_status(&self) -> &'static str {
        self.task.state.job_status().as_str()
    }

    fn progress_words(&self) -> String {
        match self.task.progress {
            Some((current, Some(total))) => format!("{current} of {total}"),
            Some((current, None)) => current.to_string(),
            None => String::new(),
        }
    }
}

pub async fn task(
    State(state): State<AppState>,
    request: PageRequest,
    Path(uuid): Path<String>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "celery").await?;
    let project = chrome.project_or_404()?;
    let task = state
        .store
        .celery_task(project.id, &uuid)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no celery task {uuid}")))?;
    let children = state
        .store
        .celery_tasks(&TaskFilter {
            project: project.id,
            parent: Some(uuid.clone()),
            limit: 100,
            ..Default::default()
        })
        .await?;
    let page = TaskPage {
        actions: state
            .store
            .celery_actions(project.id, Some(uuid.clone()), 50)
            .await?,
        back: request.uri.path().to_string(),
        issues: crate::web::related::issues_of_job(&state, project.id, &uuid).await?,
        traces: crate::web::related::traces_of_job(&state, project.id, &uuid).await?,
        events: state.store.celery_task_events(project.id, &uuid).await?,
        children,
        task,
        chrome,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "celery/workers.html")]
struct WorkersPage {
    chrome: Chrome,
    project: Project,
    workers: Vec<Worker>,
    history: Vec<HistoryRow>,
    now: Timestamp,
    /// What the online workers answered just now.
    inspected: Vec<(String, super::inspected::WorkerNow)>,
    /// The latest actions on workers, tasks and queues.
    actions: Vec<vigie_store::CeleryAction>,
}

/// One worker's online periods over the last day, as bars on a 1,440-minute axis.
struct HistoryRow {
    hostname: String,
    segments: Vec<Segment>,
}

struct Segment {
    x: i64,
    width: i64,
    title: String,
}

const DAY_MS: i64 = 86_400_000;

/// Rows of the history, one per worker, in the order of `periods` (newest first).
fn history(periods: &[WorkerPeriod], workers: &[Worker], now: Timestamp) -> Vec<HistoryRow> {
    let since = now.millis() - DAY_MS;
    let mut rows: Vec<HistoryRow> = Vec::new();
    for p in periods {
        // The worker's current period lasts until now while it is online.
        let current = workers
            .iter()
            .any(|w| w.hostname == p.hostname && w.online_since == p.online_since && w.online(now));
        let end = match (current, p.offline_at) {
            (true, _) => now.millis(),
            (false, Some(off)) => off.millis(),
            (false, None) => p.last_heartbeat.millis(),
        };
        let start = p.online_since.millis().max(since);
        if end < since {
            continue;
        }
        let minute = |ms: i64| (ms - since) / 60_000;
        let segment = Segment {
            x: minute(start),
            width: (minute(end) - minute(start)).max(2),
            title: format!(
                "online {} → {}",
                p.online_since.to_rfc3339(),
                if current {
                    "now".to_string()
                } else {
                    Timestamp(end).to_rfc3339()
                }
            ),
        };
        match rows.iter_mut().find(|r| r.hostname == p.hostname) {
            Some(row) => row.segments.push(segment),
            None => rows.push(HistoryRow {
                hostname: p.hostname.clone(),
                segments: vec![segment],
            }),
        }
    }
    rows
}

impl WorkersPage {
    fn online(&self, worker: &Worker) -> bool {
        worker.online(self.now)
    }

    fn load(&self, worker: &Worker) -> String {
        worker
            .loadavg
            .iter()
            .map(|l| format!("{l:.2}"))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

pub async fn workers(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "celery").await?;
    let project = chrome.project_or_404()?;
    let now = Timestamp::now();
    let workers = state.store.celery_workers(project.id).await?;
    let periods = state
        .store
        .celery_worker_periods(project.id, Timestamp(now.millis() - DAY_MS))
        .await?;
    let online: Vec<String> = workers
        .iter()
        .filter(|w| w.online(now))
        .map(|w| w.hostname.clone())
        .collect();
    let page = WorkersPage {
        inspected: super::inspected::now(&state, project.id, &online).await,
        actions: state.store.celery_actions(project.id, None, 20).await?,
        history: history(&periods, &workers, now),
        workers,
        now,
        project,
        chrome,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "celery/periodic.html")]
struct PeriodicPage {
    chrome: Chrome,
    project: Project,
    periodic: Vec<Periodic>,
    now: Timestamp,
}

impl PeriodicPage {
    fn min_runs(&self) -> usize {
        vigie_core::celery::periodic::MIN_RUNS
    }

    fn every(&self, p: &Periodic) -> String {
        runtime(&Some(p.interval_ms as f64 / 1000.0))
    }

    fn last_sent(&self, p: &Periodic) -> Timestamp {
        p.last
            .sent_at
            .or(p.last.received_at)
            .unwrap_or(p.last.updated_at)
    }

    fn last_ago(&self, p: &Periodic) -> String {
        self.chrome.ago(&self.last_sent(p))
    }

    fn last_runtime(&self, p: &Periodic) -> String {
        p.last
            .runtime
            .map_or(String::new(), |r| format!("in {}", runtime(&Some(r))))
    }

    fn late(&self, p: &Periodic) -> bool {
        p.late(self.now)
    }
}

pub async fn periodic(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "celery").await?;
    let project = chrome.project_or_404()?;
    let page = PeriodicPage {
        periodic: crate::celery::api::periodic_of(&state, project.id).await?,
        now: Timestamp::now(),
        project,
        chrome,
    };
    render(&page, &page.chrome)
}

/// The Celery pages' pulse: the time of the project's last batch of Celery events.
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct CeleryPulse(i64);

impl ProjectPulse for CeleryPulse {
    fn concerns(change: &Change, project: ProjectId) -> bool {
        matches!(change, Change::Celery(p, _) if *p == project)
    }

    async fn read(_: &AppState, _: ProjectId) -> Result<Self, AppError> {
        Ok(CeleryPulse(Timestamp::now().millis()))
    }
}

/// An event's own fields as logfmt pairs; times among them (an `eta`) read as
/// [`super::exact`] times, not raw RFC 3339.
fn detail_line(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    let pairs: Vec<(&str, String)> = fields
        .iter()
        .filter(|(k, _)| k.as_str() != "traceback" && !REDUNDANT_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => match Timestamp::parse_rfc3339(s) {
                Some(t) => (k.as_str(), crate::web::format::exact(t)),
                None => (k.as_str(), s.clone()),
            },
            other => (k.as_str(), other.to_string()),
        })
        .collect();
    crate::web::format::logfmt(pairs.iter().map(|(k, v)| (*k, v.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_line_reads_times_and_quotes_what_has_spaces() {
        let fields = serde_json::json!({
            "eta": "2026-11-23T01:23:51.253098+00:00",
            "args": "('INV-7',)",
            "retries": 1,
            "exception": "ConnectionError('SMTP server went away')",
            "traceback": "kept apart",
        });
        assert_eq!(
            detail_line(fields.as_object().unwrap()),
            "args=('INV-7',) eta=\"2026-11-23 01:23:51.253 UTC\" \
             exception=\"ConnectionError('SMTP server went away')\" retries=1"
        );
    }
}
