//! Releases: what `sentry-cli releases` declares (created, finalized, deployed) beside what
//! the events and sessions of each release say, on one page.
//!
//! ```text
//!   sentry-cli releases new / finalize / deploys new ─▶ api (Sentry's API subset) ─▶ store
//!   events (release tag) ─▶ issues' tag counts ─┐
//!   sessions (release health) ──────────────────┼─▶ overview: a row per release ─▶ ui, JSON
//!   declared releases and their deploys ─────────┘
//! ```
//!
//! - [`api`]: the Sentry API subset for releases and deploys, and `GET /api/v1/releases`.
//! - [`ui`]: the Releases page.

pub mod api;
pub mod ui;

use crate::http::AppError;
use crate::state::AppState;
use serde::Serialize;
use vigie_core::{ProjectId, Timestamp};
use vigie_store::releases::Deploy;

/// How far back the Releases page reads sessions.
const HEALTH_DAYS: i64 = 90;

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
    pub last_event: Option<Timestamp>,
    /// Sessions started over the last 90 days, and the share that did not crash.
    pub sessions: i64,
    pub crash_free: Option<f64>,
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
            last_event: None,
            sessions: 0,
            crash_free: None,
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
        r.last_event = f.last_event;
    }
    for h in health {
        let r = row(&mut rows, &h.release);
        r.sessions = h.started;
        r.crash_free = h.crash_free();
        r.last_event = r.last_event.max(Some(h.last_seen));
    }
    rows.sort_by(|a, b| {
        b.recency()
            .cmp(&a.recency())
            .then(b.version.cmp(&a.version))
    });
    Ok(rows)
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
        pages: Table::new().route("/releases", get(ui::releases)),
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
