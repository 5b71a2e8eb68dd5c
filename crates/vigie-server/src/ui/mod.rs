//! The web UI's pages that have not moved to their feature's folder yet: server-rendered
//! (askama templates compiled into the binary), a little vanilla JS, and live updates over SSE.
//!
//! Every page behind login is built from a `crate::web::Chrome` (the sidebar, project switcher,
//! user menu and flash message) plus its own content. Forms post back to the same module, pass
//! the CSRF guard first, and answer with a redirect carrying a flash message
//! (post/redirect/get). What all pages share is in `crate::web`; feature folders
//! (`crate::jobs`) hold their own pages.
//!
//! - [`account`]: login, logout, first-run setup, project switching;
//! - [`pages`]: dashboard, the system page;
//! - [`settings`]: projects, users and API tokens;
//! - [`live`]: the SSE streams of the dashboard and the system page.

mod account;
mod event_view;
mod issues;
pub mod live;
pub mod overview;
mod pages;
pub mod performance;
mod reports;
mod settings;

use crate::state::AppState;
use crate::web::assets;
pub use crate::web::{form_outcome, redirect_with, render, safe_next, Chrome};
use axum::routing::{get, post};
use axum::Router;

/// Routes of the UI that need the session and CSRF guard.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/live/dashboard", get(pages::live_dashboard))
        .route("/issues", get(issues::list))
        .route("/feedback", get(issues::feedback))
        .route("/issues/{id}", get(issues::show))
        .route("/issues/{id}/status", post(issues::set_status))
        .route("/live/issues", get(issues::live))
        .route("/reports/incident", get(reports::incident))
        .route("/performance", get(performance::list))
        .route("/performance/transaction", get(performance::transaction))
        .route("/system", get(pages::system))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/setup", get(account::setup_page).post(account::setup))
        .route("/switch", get(account::switch_project))
        .merge(settings::routes())
        .route("/live/system", get(live::system))
}

/// Routes that need no session at all.
pub fn public_routes() -> Router<AppState> {
    Router::new().route("/static/{name}", get(assets::serve))
}
