//! The dashboard, the product sections and the system page.

use super::{icons, render, Chrome};
use crate::auth::LoggedIn;
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::ui::live::SystemStats;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

/// A part of Vigie with its own page: what it is for and what its empty state says.
pub struct Section {
    pub key: &'static str,
    pub title: &'static str,
    pub href: &'static str,
    pub icon: &'static str,
    pub summary: &'static str,
    pub empty: &'static str,
    pub points: &'static [&'static str],
    /// Has its own pages (otherwise a placeholder says what it will show).
    pub built: bool,
}

pub const SECTIONS: &[Section] = &[
    Section {
        key: "jobs",
        title: "Jobs",
        href: "/jobs",
        icon: icons::JOBS,
        summary: "Bulk sends, imports, syncs and Celery tasks: live progress, one row per item, and a warning when one stops.",
        empty: "Jobs appear here when your workers report progress through the jobs API or the Python helper, or when Vigie listens to your Celery broker.",
        points: &[
            "a live progress bar, speed and ETA for every running job",
            "one trace row per item (the e-mail sent, its recipients, its error)",
            "jobs that stop reporting turn \"stalled\" within a minute",
        ],
        built: true,
    },
    Section {
        key: "logs",
        title: "Logs",
        href: "/logs",
        icon: icons::LOGS,
        summary: "Every log line from syslog, Python logging, OpenTelemetry and Loki shippers, searchable and live.",
        empty: "Logs appear here when an application, rsyslog or a log shipper sends them to Vigie, or when you import existing files with `vigie import`.",
        points: &[
            "search with words, levels, sources and time ranges",
            "a live tail in the browser and in the terminal",
            "the lines of one job or one trace, side by side",
        ],
        built: true,
    },
    Section {
        key: "issues",
        title: "Issues",
        href: "/issues",
        icon: icons::ISSUES,
        summary: "Errors from your unchanged Sentry SDKs, grouped into issues with stack traces and breadcrumbs.",
        empty: "Issues appear here when an application whose Sentry SDK uses this project's DSN reports an error. The DSN is on the dashboard.",
        points: &[
            "errors grouped by cause, with counts and affected users",
            "stack traces with local variables, breadcrumbs and request data",
            "regressions flagged when a resolved issue comes back",
        ],
        built: true,
    },
    Section {
        key: "performance",
        title: "Performance",
        href: "/performance",
        icon: icons::PERFORMANCE,
        summary: "Transactions from your Sentry SDKs: latency percentiles, throughput and Apdex per endpoint and task.",
        empty: "Performance data appears here when a Sentry SDK with `traces_sample_rate` above 0 sends transactions to this project.",
        points: &[
            "p50, p95 and p99 latency per endpoint and task",
            "slow spans in a waterfall",
        ],
        built: true,
    },
    Section {
        key: "celery",
        title: "Celery",
        href: "/celery",
        icon: icons::CELERY,
        summary: "Celery tasks and workers, read from the broker's events and kept: states, arguments, results, tracebacks, progress.",
        empty: "Tasks appear here when Vigie reads a Celery broker (`vigie serve --celery-broker redis://…`) and workers send events (`celery worker -E`).",
        points: &[
            "every task with its state, arguments, result or traceback",
            "workers online and offline, with their heartbeats",
        ],
        built: true,
    },
    Section {
        key: "monitors",
        title: "Monitors",
        href: "/monitors",
        icon: icons::MONITORS,
        summary: "Cron jobs and scheduled tasks that check in, and a warning when one is missed.",
        empty: "Monitors appear here when a scheduled job sends Sentry cron check-ins or calls its ping URL.",
        points: &[
            "each schedule with its last and next expected run",
            "missed and failed runs, as they happen",
        ],
        built: true,
    },
    Section {
        key: "alerts",
        title: "Alerts",
        href: "/alerts",
        icon: icons::ALERTS,
        summary: "Rules that tell you by e-mail, Slack, Discord or webhook when something fails or stops.",
        empty: "Alert rules are set here: a new issue, a failed or stalled job, a missed cron run, a log pattern.",
        points: &[
            "new issue, regression and error-rate rules",
            "job failed, job stalled and missed check-in rules",
            "an incident report that gathers the logs of a time window",
        ],
        built: true,
    },
];

#[derive(Template)]
#[template(path = "dashboard.html")]
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
    who: LoggedIn,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let chrome = Chrome::build(&state, who, &headers, &uri, "dashboard").await?;
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
#[template(path = "section.html")]
struct SectionPage {
    chrome: Chrome,
    section: &'static Section,
}

/// The page of a product section, found by its path.
pub async fn section(
    State(state): State<AppState>,
    who: LoggedIn,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let section = SECTIONS
        .iter()
        .find(|s| s.href == uri.path())
        .ok_or_else(|| AppError::NotFound("no such page".into()))?;
    let chrome = Chrome::build(&state, who, &headers, &uri, section.key).await?;
    let page = SectionPage { chrome, section };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "system.html")]
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
}

pub async fn system(
    State(state): State<AppState>,
    who: LoggedIn,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let chrome = Chrome::build(&state, who, &headers, &uri, "system").await?;
    let page = SystemPage {
        chrome,
        stats: SystemStats::gather(&state).await?,
        base_url: state.base_url.to_string(),
        tasks: state.tasks.records(),
        brokers: state.brokers.list(),
        celery: state.metrics.celery.summary(),
        not_stored: state.metrics.not_stored(),
    };
    render(&page, &page.chrome)
}

/// `GET /live/dashboard?project=`: a pulse after each change of the project's jobs, issues or
/// monitors (at most one a second); the page then reads itself again.
pub async fn live_dashboard(
    State(state): State<AppState>,
    _caller: crate::auth::ApiCaller,
    headers: HeaderMap,
    axum::extract::Query(params): axum::extract::Query<super::live::ProjectParam>,
) -> Result<Response, crate::http::ApiError> {
    use crate::hub::Change;
    let project = vigie_core::ProjectId(params.project);
    super::live::pulse_stream(
        state,
        &headers,
        move |change| match change {
            Change::Job(news) => news.job.project == project,
            Change::Issues(news) => news.project == project,
            Change::Monitors(p, _) => *p == project,
            _ => false,
        },
        |_| async { Ok(vigie_core::Timestamp::now().millis()) },
    )
    .await
}
