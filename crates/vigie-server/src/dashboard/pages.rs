//! The dashboard and the system page.

use crate::dashboard::live::SystemStats;
use crate::http::PageError;
use crate::state::AppState;
use crate::web::sections::{Section, SECTIONS};
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use vigie_core::Timestamp;

#[derive(Template)]
#[template(path = "dashboard/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    dsn: String,
    sections: &'static [Section],
    /// What each section's card says it holds.
    activity: Vec<super::overview::Activity>,
    now: vigie_core::Timestamp,
    /// The current project's day at a glance.
    overview: Option<super::overview::Overview>,
}

impl DashboardPage {
    fn rate(&self, counts: &vigie_core::job::ItemCounts) -> String {
        super::overview::Overview::success_rate(counts)
            .map_or_else(|| "—".to_string(), |r| format!("{r:.1} %"))
    }

    /// The DSN and snippet, until the project has reported something.
    fn getting_started(&self) -> bool {
        self.overview.as_ref().is_none_or(|o| o.is_empty())
    }

    fn ms(&self, value: &Option<f64>) -> String {
        value.map_or_else(|| "—".to_string(), |v| format!("{v:.0} ms"))
    }

    /// What a section's card says it holds.
    fn activity(&self, section: &Section) -> Option<&super::overview::Activity> {
        self.activity.iter().find(|a| a.key == section.key)
    }

    fn ago(&self, t: &vigie_core::Timestamp) -> String {
        t.relative_to(self.now)
    }
}

pub async fn dashboard(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "dashboard").await?;
    let dsn = chrome
        .project
        .as_ref()
        .map(|p| state.dsn(p))
        .unwrap_or_default();
    let mut overview = match &chrome.project {
        Some(project) => Some(super::overview::Overview::gather(&state, project.id).await?),
        None => None,
    };
    let activity = overview
        .as_mut()
        .map(|o| std::mem::take(&mut o.activity))
        .unwrap_or_default();
    let page = DashboardPage {
        dsn,
        sections: SECTIONS,
        activity,
        now: vigie_core::Timestamp::now(),
        overview,
        chrome,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "dashboard/system.html")]
struct SystemPage {
    chrome: Chrome,
    stats: SystemStats,
    base_url: String,
    /// Vigie's own periodic tasks.
    tasks: Vec<crate::tasks::TaskRecord>,
    /// The Celery brokers read, and how each is doing.
    brokers: Vec<crate::celery::BrokerStatus>,
    /// Celery counters: (what, how many).
    celery: Vec<(&'static str, u64)>,
    /// What was received and not stored since start.
    not_stored: Vec<crate::metrics::NotStored>,
    /// The instances sharing the database (heard from in the last day), the leader first.
    instances: Vec<vigie_store::Instance>,
    /// The log files this machine follows (`[[logs.follow]]`), and the globs configured.
    followed: Vec<crate::logs::follow::FileStatus>,
    follow_globs: Vec<String>,
    /// This instance's name.
    me: String,
    /// Heartbeats older than this are shown as gone.
    gone_before: vigie_core::Timestamp,
}

impl SystemPage {
    fn is_me(&self, instance: &vigie_store::Instance) -> bool {
        instance.id == self.me
    }

    fn is_gone(&self, instance: &vigie_store::Instance) -> bool {
        instance.seen_at < self.gone_before
    }
}

pub async fn system(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "system").await?;
    let page = SystemPage {
        chrome,
        stats: SystemStats::gather(&state).await?,
        base_url: state.base_url.to_string(),
        tasks: state.tasks.records(),
        brokers: state.brokers.list(),
        celery: state.metrics.celery.summary(),
        not_stored: state.metrics.not_stored(),
        instances: state
            .store
            .instances(Timestamp(Timestamp::now().millis() - 86_400_000))
            .await?,
        followed: crate::logs::follow::FileStatus::of(
            state
                .store
                .followed_files(&crate::state::host_name())
                .await?,
        ),
        follow_globs: state
            .config
            .logs
            .follow
            .iter()
            .map(|f| f.path.clone())
            .collect(),
        me: state.instance.id.clone(),
        gone_before: Timestamp(
            Timestamp::now().millis() - crate::cluster::GONE_AFTER.as_millis() as i64,
        ),
    };
    render(&page, &page.chrome)
}

/// The dashboard's pulse: the time of the last change of the project's jobs, issues or
/// monitors; the page then reads itself again.
#[derive(serde::Serialize)]
#[serde(transparent)]
pub struct DashboardPulse(i64);

impl crate::web::sse::ProjectPulse for DashboardPulse {
    fn concerns(change: &crate::hub::Change, project: vigie_core::ProjectId) -> bool {
        use crate::hub::Change;
        match change {
            Change::Job(news) => news.job.project == project,
            Change::Issues(news) => news.project == project,
            Change::Monitors(p, _) => *p == project,
            _ => false,
        }
    }

    async fn read(_: &AppState, _: vigie_core::ProjectId) -> Result<Self, crate::http::AppError> {
        Ok(DashboardPulse(vigie_core::Timestamp::now().millis()))
    }
}
