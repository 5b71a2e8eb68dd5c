//! Releases: what `sentry-cli releases` declares (created, finalized, deployed) beside what
//! the events and sessions of each release say, on one page.
//!
//! ```text
//!   sentry-cli releases new / finalize / deploys new ─▶ api (Sentry's API subset) ─▶ store
//!   events (release tag) ─▶ issues' tag counts ─┐
//!   regressions (issue_regressions) ────────────┤
//!   sessions, users (release health) ───────────┼─▶ overview: a row per release ─▶ ui, JSON
//!   declared releases and their deploys ─────────┘
//!   sessions and users per day ─▶ every_day ─▶ the crash-free charts (list, release page)
//!   one release ─▶ detail: its row, its days, its new and regressed issues ─▶ release page
//! ```
//!
//! - [`api`]: the Sentry API subset for releases and deploys, and `GET /api/v1/releases`.
//! - [`ui`]: the Releases page and a release's page.

pub mod api;
pub mod ui;

use crate::http::AppError;
use crate::state::AppState;
use serde::Serialize;
use vigie_core::issue::Issue;
use vigie_core::{ProjectId, Timestamp};
use vigie_store::errors::share_without;
use vigie_store::releases::{Deploy, ReleaseDay};

/// How far back the Releases page reads sessions.
const HEALTH_DAYS: i64 = 90;
/// Days the crash-free charts show.
pub const CHART_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;
/// Issues a release's page lists, of each kind.
const LISTED_ISSUES: u32 = 50;

/// A release as the Releases page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseRow {
    pub version: String,
    /// When `sentry-cli releases new` declared it (`None`: only events or sessions name it).
    pub created_at: Option<Timestamp>,
    /// When it was finalized.
    pub released_at: Option<Timestamp>,
    pub events: i64,
    /// Issues first seen in it.
    pub new_issues: i64,
    /// Resolved issues its events brought back.
    pub regressions: i64,
    pub last_event: Option<Timestamp>,
    /// Sessions started over the last 90 days, and the share that did not crash.
    pub sessions: i64,
    pub crash_free: Option<f64>,
    /// Of those sessions, those an uncaught error ended without a crash (browsers; not
    /// counted as crashes, as Sentry does), and their share.
    pub unhandled: i64,
    pub unhandled_share: Option<f64>,
    /// People its sessions named (the SDK's user) over the last 90 days, and the share none
    /// of whose sessions crashed.
    pub users: i64,
    pub crash_free_users: Option<f64>,
    /// Newest first.
    pub deploys: Vec<Deploy>,
}

impl ReleaseRow {
    fn new(version: String) -> ReleaseRow {
        ReleaseRow {
            version,
            created_at: None,
            released_at: None,
            events: 0,
            new_issues: 0,
            regressions: 0,
            last_event: None,
            sessions: 0,
            crash_free: None,
            unhandled: 0,
            unhandled_share: None,
            users: 0,
            crash_free_users: None,
            deploys: Vec::new(),
        }
    }

    /// When Vigie first knew of it, or last heard of it: the order of the page.
    fn recency(&self) -> i64 {
        self.created_at
            .or(self.last_event)
            .map_or(i64::MIN, Timestamp::millis)
    }
}

/// Every release of `project` that was declared, or that events or sessions name; newest
/// first.
pub async fn overview(state: &AppState, project: ProjectId) -> Result<Vec<ReleaseRow>, AppError> {
    let since = Timestamp(Timestamp::now().millis() - HEALTH_DAYS * 86_400_000);
    let declared = state.store.releases(project).await?;
    let figures = state.store.release_figures(project).await?;
    let health = state.store.release_health(project, since).await?;
    let mut rows: Vec<ReleaseRow> = Vec::new();
    fn row<'a>(rows: &'a mut Vec<ReleaseRow>, version: &str) -> &'a mut ReleaseRow {
        let at = match rows.iter().position(|r| r.version == version) {
            Some(at) => at,
            None => {
                rows.push(ReleaseRow::new(version.to_string()));
                rows.len() - 1
            }
        };
        &mut rows[at]
    }
    for release in declared {
        let r = row(&mut rows, &release.version);
        r.created_at = Some(release.created_at);
        r.released_at = release.released_at;
        r.deploys = release.deploys;
    }
    for f in figures {
        let r = row(&mut rows, &f.version);
        r.events = f.events;
        r.new_issues = f.new_issues;
        r.regressions = f.regressions;
        r.last_event = f.last_event;
    }
    for h in health {
        let r = row(&mut rows, &h.release);
        r.sessions = h.started;
        r.crash_free = h.crash_free();
        r.unhandled = h.unhandled;
        r.unhandled_share = h.unhandled_share();
        r.users = h.users;
        r.crash_free_users = h.crash_free_users();
        r.last_event = r.last_event.max(Some(h.last_seen));
    }
    rows.sort_by(|a, b| {
        b.recency()
            .cmp(&a.recency())
            .then(b.version.cmp(&a.version))
    });
    Ok(rows)
}

/// Sessions and users of one day, every release (or one) together.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Day {
    pub day: Timestamp,
    pub sessions: i64,
    pub crashed: i64,
    pub users: i64,
    pub crashed_users: i64,
}

impl Day {
    pub fn crash_free(&self) -> Option<f64> {
        share_without(self.crashed, self.sessions)
    }
    pub fn crash_free_users(&self) -> Option<f64> {
        share_without(self.crashed_users, self.users)
    }
}

/// The first day of the charts ([`CHART_DAYS`] days ending today, UTC).
pub fn chart_start(now: Timestamp) -> Timestamp {
    Timestamp((now.millis().div_euclid(DAY_MS) - (CHART_DAYS - 1)) * DAY_MS)
}

/// `days` (of any releases) added up per day, one entry for each of the `CHART_DAYS` days
/// from `start`, days without sessions included.
pub fn every_day(days: &[ReleaseDay], start: Timestamp) -> Vec<Day> {
    let mut out: Vec<Day> = (0..CHART_DAYS)
        .map(|i| Day {
            day: Timestamp(start.millis() + i * DAY_MS),
            ..Day::default()
        })
        .collect();
    for d in days {
        let index = (d.day.millis() - start.millis()).div_euclid(DAY_MS);
        if let Some(day) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) {
            day.sessions += d.started;
            day.crashed += d.crashed;
            day.users += d.users;
            day.crashed_users += d.crashed_users;
        }
    }
    out
}

/// A release's page worth of data.
pub struct ReleaseDetail {
    pub row: ReleaseRow,
    /// The declared release's URL.
    pub url: Option<String>,
    pub days: Vec<Day>,
    pub new_issues: Vec<Issue>,
    pub regressed_issues: Vec<Issue>,
}

/// One release of `project`; `None` when it was never declared nor named by events or
/// sessions.
pub async fn detail(
    state: &AppState,
    project: ProjectId,
    version: &str,
) -> Result<Option<ReleaseDetail>, AppError> {
    let Some(row) = overview(state, project)
        .await?
        .into_iter()
        .find(|r| r.version == version)
    else {
        return Ok(None);
    };
    let start = chart_start(Timestamp::now());
    let days = state
        .store
        .release_days(project, Some(version.to_string()), start)
        .await?;
    let issues = state
        .store
        .release_issues(project, version, LISTED_ISSUES)
        .await?;
    let url = state
        .store
        .release(project, version)
        .await?
        .and_then(|r| r.url);
    Ok(Some(ReleaseDetail {
        row,
        url,
        days: every_day(&days, start),
        new_issues: issues.new,
        regressed_issues: issues.regressed,
    }))
}

/// Sentry's release and deploy API (`/api/0/…`), the Releases page and its JSON.
pub fn routes<S>() -> crate::http::Routes<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: axum::extract::FromRef<S>,
{
    use crate::http::Table;
    use axum::routing::get;
    crate::http::Routes {
        pages: Table::new()
            .route("/releases", get(ui::releases))
            .route("/releases/{version}", get(ui::release)),
        api: Table::new()
            .route(
                "/api/0/organizations/{org}/releases/",
                get(api::list_all).post(api::create),
            )
            .route(
                "/api/0/organizations/{org}/releases/{version}/",
                get(api::show).put(api::update),
            )
            .route(
                "/api/0/organizations/{org}/releases/{version}/deploys/",
                get(api::list_deploys).post(api::create_deploy),
            )
            .route(
                "/api/0/projects/{org}/{project}/releases/",
                get(api::list_project).post(api::create_in_project),
            )
            .route(
                "/api/0/projects/{org}/{project}/releases/{version}/",
                get(api::show_in_project).put(api::update_in_project),
            )
            .route("/api/v1/releases", get(api::releases)),
        ingest: Table::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_added_up_across_releases_and_every_day_is_there() {
        let start = chart_start(Timestamp(10 * DAY_MS + 5));
        assert_eq!(start.millis(), (10 - (CHART_DAYS - 1)) * DAY_MS);
        let day = |release: &str, n: i64, started: i64, crashed: i64| ReleaseDay {
            release: release.into(),
            day: Timestamp(start.millis() + n * DAY_MS),
            started,
            crashed,
            users: started / 2,
            crashed_users: crashed,
        };
        let days = every_day(
            &[
                day("a", 0, 10, 1),
                day("b", 0, 30, 1),
                day("a", CHART_DAYS - 1, 4, 0),
                day("a", CHART_DAYS, 99, 99),
                day("a", -1, 99, 99),
            ],
            start,
        );
        assert_eq!(days.len() as i64, CHART_DAYS);
        assert_eq!((days[0].sessions, days[0].crashed), (40, 2));
        assert_eq!(days[0].crash_free(), Some(0.95));
        assert_eq!(days[0].crash_free_users(), Some(0.9));
        assert_eq!(days[1].crash_free(), None, "a day without sessions");
        assert_eq!(days[CHART_DAYS as usize - 1].sessions, 4);
    }
}
