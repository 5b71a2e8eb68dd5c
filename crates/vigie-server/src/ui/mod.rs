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
pub mod alerts;
pub mod celery;
mod event_view;
mod issues;
pub mod live;
pub mod logs;
pub mod monitors;
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
        .route("/logs", get(logs::search))
        .route("/logs/sources", get(logs::sources))
        .route("/logs/sources/{id}", get(logs::source))
        .route("/logs/sources/{id}/clear", post(logs::clear))
        .route("/issues", get(issues::list))
        .route("/feedback", get(issues::feedback))
        .route("/issues/{id}", get(issues::show))
        .route("/issues/{id}/status", post(issues::set_status))
        .route("/live/issues", get(issues::live))
        .route("/alerts", get(alerts::page))
        .route("/reports/incident", get(reports::incident))
        .route("/alerts/channels", post(alerts::add_channel))
        .route("/alerts/channels/{id}/test", post(alerts::test_channel))
        .route("/alerts/channels/{id}/delete", post(alerts::delete_channel))
        .route("/alerts/rules", post(alerts::add_rule))
        .route("/alerts/rules/{id}", post(alerts::change_rule))
        .route("/alerts/rules/{id}/mute", post(alerts::mute_rule))
        .route("/alerts/rules/{id}/delete", post(alerts::delete_rule))
        .route("/celery", get(celery::tasks))
        .route("/celery/tasks/{uuid}", get(celery::task))
        .route("/celery/workers", get(celery::workers))
        .route("/celery/periodic", get(celery::periodic))
        .route("/monitors", get(monitors::list))
        .route("/monitors/{slug}", get(monitors::show))
        .route("/monitors/{slug}/schedule", post(monitors::configure))
        .route("/monitors/{slug}/pause", post(monitors::pause))
        .route("/monitors/{slug}/delete", post(monitors::delete))
        .route("/live/monitors", get(monitors::live))
        .route("/live/celery", get(celery::live))
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
