//! The Releases page (each release of the project with its events, new issues, regressions,
//! crash-free sessions and users, deploys, and the project's crash-free rate per day) and a
//! release's page (its figures, its sessions and crash-free rates per day, the issues it
//! brought and reopened, its deploys).

use super::{chart_start, detail, every_day, overview, Day, ReleaseDetail, ReleaseRow};
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::web::chart::{bars, line, Bar, LinePath};
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use vigie_core::{Project, Timestamp};

/// The charts' box (stretched to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
const BAR_HEIGHT: f64 = 48.0;

/// The crash-free rates per day, as two lines (sessions, users) with their y axis.
pub struct CrashFreeChart {
    pub sessions: LinePath,
    pub users: LinePath,
    /// The bottom of the y axis, in percent (the top is 100 %).
    pub low: f64,
    pub from: String,
    pub to: String,
    /// Whether any day had sessions.
    pub any: bool,
}

impl CrashFreeChart {
    fn of(days: &[Day]) -> CrashFreeChart {
        let sessions: Vec<Option<f64>> = days.iter().map(Day::crash_free).collect();
        let users: Vec<Option<f64>> = days.iter().map(Day::crash_free_users).collect();
        let lowest = sessions
            .iter()
            .chain(&users)
            .flatten()
            .fold(1.0f64, |lo, v| lo.min(*v));
        // A whole percent below the lowest rate: a fall from 100 % to 99 % reads as one.
        let low = ((lowest * 100.0).floor() - 1.0).clamp(0.0, 99.0);
        let bounds = (low / 100.0, 1.0);
        let day = |d: Option<&Day>| {
            d.map(|d| d.day.to_rfc3339()[..10].to_string())
                .unwrap_or_default()
        };
        CrashFreeChart {
            any: sessions.iter().any(Option::is_some),
            sessions: line(&sessions, WIDTH, HEIGHT, 4.0, bounds),
            users: line(&users, WIDTH, HEIGHT, 4.0, bounds),
            low,
            from: day(days.first()),
            to: day(days.last()),
        }
    }
}

/// Formatting shared by both pages.
trait Figures {
    fn percent(&self, share: &Option<f64>) -> String {
        share.map_or("—".into(), |s| format!("{:.1} %", s * 100.0))
    }
    /// The badge (or stat) colour of a crash-free share.
    fn health(&self, share: &Option<f64>) -> &'static str {
        match share {
            Some(s) if *s >= 0.99 => "ok",
            Some(s) if *s >= 0.95 => "warning",
            Some(_) => "error",
            None => "",
        }
    }
    /// The stat colour (`.stat .value.ok`, …) of a crash-free share.
    fn stat_health(&self, share: &Option<f64>) -> &'static str {
        match self.health(share) {
            "warning" => "warn",
            "error" => "err",
            other => other,
        }
    }
    fn count(&self, n: &i64) -> String {
        crate::web::format::thousands(*n)
    }
    fn release_link(&self, version: &str) -> String {
        crate::web::related::release_link(version)
    }
    fn issues_link(&self, version: &str) -> String {
        format!(
            "/issues?query={}",
            crate::web::format::encode(&format!("release:\"{version}\""))
        )
    }
    fn width(&self) -> f64 {
        WIDTH
    }
    fn height(&self) -> f64 {
        HEIGHT
    }
    fn bar_height(&self) -> f64 {
        BAR_HEIGHT
    }
}

#[derive(Template)]
#[template(path = "releases/releases.html")]
struct ReleasesPage {
    chrome: Chrome,
    project: Project,
    releases: Vec<ReleaseRow>,
    chart: CrashFreeChart,
    base_url: String,
}

impl Figures for ReleasesPage {}

/// `GET /releases`.
#[tracing::instrument(name = "page", skip_all, fields(route = "/releases"))]
pub async fn releases(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "releases").await?;
    let project = chrome.project_or_404()?;
    let start = chart_start(Timestamp::now());
    let days = state.store.release_days(project.id, None, start).await?;
    let page = ReleasesPage {
        releases: overview(&state, project.id).await?,
        chart: CrashFreeChart::of(&every_day(&days, start)),
        base_url: state.base_url.to_string(),
        project,
        chrome,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "releases/release.html")]
struct ReleasePage {
    chrome: Chrome,
    release: ReleaseDetail,
    chart: CrashFreeChart,
    bars: Vec<Bar>,
}

impl Figures for ReleasePage {}

/// `GET /releases/{version}`.
#[tracing::instrument(name = "page", skip_all, fields(route = "/releases/{version}"))]
pub async fn release(
    State(state): State<AppState>,
    request: PageRequest,
    Path(version): Path<String>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "releases").await?;
    let project = chrome.project_or_404()?;
    let release = detail(&state, project.id, &version)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no release {version:?} in this project")))?;
    let sessions: Vec<i64> = release.days.iter().map(|d| d.sessions).collect();
    let days = &release.days;
    let bars = bars(&sessions, WIDTH, BAR_HEIGHT, |i, n| {
        let day = &days[i];
        let date = &day.day.to_rfc3339()[..10];
        match day.crash_free() {
            Some(share) => format!("{date}: {n} sessions, {:.1} % crash-free", share * 100.0),
            None => format!("{date}: no sessions"),
        }
    });
    let page = ReleasePage {
        chart: CrashFreeChart::of(&release.days),
        bars,
        release,
        chrome,
    };
    render(&page, &page.chrome)
}
