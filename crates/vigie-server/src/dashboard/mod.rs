//! The dashboard (the day's work of a project, and a card per section) and the System page
//! (this instance: storage, what was received and not stored, brokers).
//!
//! Every page is server-rendered (askama templates compiled into the binary) around a
//! `crate::web::Chrome`, and kept current over SSE with a polling fallback.
//!
//! - [`pages`]: the dashboard and the System page;
//! - [`overview`]: what the dashboard reads of each section;
//! - [`live`]: the SSE streams of the dashboard and the System page.

pub mod live;
pub mod overview;
mod pages;

use crate::http::Table;
use crate::state::AppState;
use crate::web::sse::project_pulse;
use axum::routing::get;

/// The dashboard and the System page (behind the session and CSRF guard).
pub fn routes() -> Table<AppState> {
    Table::new()
        .route("/", get(pages::dashboard))
        .route(
            "/live/dashboard",
            get(project_pulse::<pages::DashboardPulse>),
        )
        .route("/system", get(pages::system))
        .route("/live/system", get(live::system))
}
