//! Jobs: the work an application reports (a bulk send, an import, a nightly export), with its
//! progress, items and messages; Celery tasks and monitor runs are shown as jobs too.
//!
//! ```text
//! job process ──POST /api/v1/jobs…──▶ api (JobAccess: project key or token) ──▶ Store
//!                                        │ after the commit
//!                                        ▼
//!                                   hub (JobNews) ──▶ live (SSE per job and for the list)
//!                                                        ▲
//! browser ──/jobs, /jobs/{id}──▶ ui (rendered now) ──────┘ jobs.js keeps the page current
//! ```
//!
//! - [`api`]: the JSON API a job's process calls, and the reads the UI and CLI share.
//! - [`live`]: the Server-Sent Events streams (and their one-snapshot polling form).
//! - [`ui`]: the Jobs list and a job's page.

pub mod api;
pub mod live;
pub mod ui;

use crate::http::Routes;
use crate::http::Table;
use crate::hub::JobNews;
use crate::state::AppState;
use axum::routing::{get, post};
use vigie_core::Timestamp;
use vigie_protocol::jobs as wire;
use vigie_store::StoreError;

/// The jobs pages, and the jobs API. The API is called by jobs themselves with a project key
/// and takes large item uploads, so it reads its bodies itself (an ingest route).
pub fn routes() -> Routes<AppState> {
    Routes {
        pages: Table::new()
            .route("/jobs", get(ui::list))
            .route("/jobs/{id}", get(ui::show)),
        api: Table::new(),
        ingest: Table::new()
            .route("/api/v1/jobs", get(api::list).post(api::create))
            .route("/api/v1/jobs/{id}", get(api::get))
            .route("/api/v1/jobs/{id}/start", post(api::start))
            .route(
                "/api/v1/jobs/{id}/progress",
                post(|s, a, p, b| api::update(s, a, p, b, wire::progress)),
            )
            .route(
                "/api/v1/jobs/{id}/heartbeat",
                post(|s, a, p, b| api::update(s, a, p, b, wire::heartbeat)),
            )
            .route(
                "/api/v1/jobs/{id}/finish",
                post(|s, a, p, b| api::update(s, a, p, b, wire::finish)),
            )
            .route(
                "/api/v1/jobs/{id}/items",
                get(api::list_job_items).post(api::add_items),
            )
            .route("/api/v1/items", get(api::list_items))
            .route("/api/v1/live/jobs", get(live::list))
            .route("/api/v1/live/jobs/{id}", get(live::job)),
    }
}

/// Turns silent running jobs to stalled and tells the live pages.
pub async fn sweep_stalled(state: &AppState) -> Result<String, StoreError> {
    match state.store.mark_stalled_jobs(Timestamp::now()).await {
        Ok(changed) => {
            let n = changed.len();
            for change in changed {
                tracing::warn!(job = %change.job.id, name = %change.job.name, "job stalled");
                state
                    .hub
                    .publish_job(JobNews::new(change.job, vec![], change.messages));
            }
            Ok(format!("jobs stalled: {n}"))
        }
        Err(err) => {
            tracing::warn!(%err, "stall sweep failed");
            Err(err)
        }
    }
}
