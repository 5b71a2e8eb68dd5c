//! Accounts: projects, users, API tokens and sessions — the rules ([`manage`], shared by the
//! UI, the API and the CLI), the JSON API ([`api`]), login, setup and project switching
//! ([`ui`]) and the Settings pages ([`settings`]).

pub mod api;
pub mod manage;
pub mod patch;
pub mod settings;
pub mod ui;

use crate::state::AppState;
use vigie_core::Timestamp;
use vigie_store::StoreError;

/// Login, logout, first-run setup, project switching and Settings (pages); the accounts API.
pub fn routes() -> crate::http::Routes<crate::state::AppState> {
    use crate::http::Table;
    use axum::routing::{get, post};
    crate::http::Routes {
        pages: Table::new()
            .route("/login", get(ui::login_page).post(ui::login))
            .route("/logout", post(ui::logout))
            .route("/setup", get(ui::setup_page).post(ui::setup))
            .route("/switch", get(ui::switch_project))
            .merge(settings::routes()),
        api: api::routes(),
        ingest: Table::new(),
    }
}

/// Removes expired browser sessions.
pub async fn forget_sessions(state: &AppState) -> Result<String, StoreError> {
    let now = Timestamp::now();
    let sessions = state.store.delete_expired_sessions(now).await?;
    if sessions > 0 {
        tracing::info!(sessions, "expired sessions removed");
    }
    // Failed logins quiet for longer than the throttle remembers them.
    let quiet = vigie_core::login_limiter::FORGET_AFTER.as_millis() as i64;
    let failures = state
        .store
        .forget_login_failures(Timestamp(now.millis() - quiet))
        .await?;
    Ok(format!(
        "sessions removed: {sessions}; login failures forgotten: {failures}"
    ))
}
