//! The web UI: server-rendered pages (askama templates compiled into the binary), a little
//! vanilla JS, and live updates over SSE.
//!
//! Every page behind login is built from a [`Chrome`] (the sidebar, project switcher, user menu
//! and flash message) plus its own content. Forms post back to the same module, pass the CSRF
//! guard first, and answer with a redirect carrying a flash message (post/redirect/get).
//!
//! - [`account`]: login, logout, first-run setup, project switching;
//! - [`pages`]: dashboard, the product sections, the system page;
//! - [`settings`]: projects, users and API tokens;
//! - [`live`]: the SSE streams live pages subscribe to;
//! - [`related`]: the links between a page's object and what relates to it;
//! - [`format`]: how values read on every page (numbers, times, durations, state colours);
//! - [`assets`], [`icons`]: what the pages load and draw.
//!
//! A feature folder (`crate::jobs`) holds its own pages and uses this module's chrome and
//! formatters; the pages still here move to theirs one feature at a time.

mod account;
pub mod alerts;
pub mod assets;
pub mod celery;
pub mod chart;
mod event_view;
pub mod format;
pub mod icons;
mod issues;
pub mod live;
pub mod logs;
pub mod monitors;
pub mod overview;
mod pages;
pub mod performance;
pub mod related;
mod reports;
mod settings;

use crate::auth::LoggedIn;
use crate::http::{cookies, AppError, PageError};
use crate::state::AppState;
use askama::Template;
use axum::http::{header, HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use vigie_core::{Access, Project, Timestamp, User};

/// Routes of the UI that need the session and CSRF guard.
pub fn routes() -> Router<AppState> {
    // Sections still to come answer with their placeholder page; the built ones have their own.
    let sections = pages::SECTIONS
        .iter()
        .filter(|s| !s.built)
        .fold(Router::new(), |router, s| {
            router.route(s.href, get(pages::section))
        });
    sections
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

pub struct NavItem {
    pub key: &'static str,
    pub label: &'static str,
    pub href: &'static str,
    pub icon: &'static str,
    pub active: bool,
}

pub struct Flash {
    pub ok: bool,
    pub text: String,
}

/// What every logged-in page shows around its content.
pub struct Chrome {
    pub user: User,
    pub csrf: String,
    pub projects: Vec<Project>,
    /// The project picked in the switcher (or the first one).
    pub project: Option<Project>,
    pub section: &'static str,
    pub flash: Option<Flash>,
    /// The current path and query, so the switcher comes back here.
    pub path: String,
    pub version: &'static str,
    now: Timestamp,
    secure: bool,
}

impl Chrome {
    pub async fn build(
        state: &AppState,
        who: LoggedIn,
        headers: &HeaderMap,
        uri: &Uri,
        section: &'static str,
    ) -> Result<Chrome, AppError> {
        let projects = state.store.list_projects().await?;
        let chosen = cookies::get(headers, cookies::PROJECT).and_then(|v| v.parse::<i64>().ok());
        let project = chosen
            .and_then(|id| projects.iter().find(|p| p.id.0 == id))
            .or(projects.first())
            .cloned();
        Ok(Chrome {
            user: who.user,
            csrf: who.csrf,
            projects,
            project,
            section,
            flash: cookies::read_flash(headers).map(|(ok, text)| Flash { ok, text }),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            version: env!("CARGO_PKG_VERSION"),
            now: Timestamp::now(),
            secure: state.secure_cookies(headers),
        })
    }

    /// The sidebar: the dashboard, each product section, then System and Settings.
    pub fn nav(&self) -> Vec<NavItem> {
        let item = |key, label, href, icon| NavItem {
            key,
            label,
            href,
            icon,
            active: key == self.section,
        };
        let mut items = vec![item("dashboard", "Dashboard", "/", icons::DASHBOARD)];
        items.extend(
            pages::SECTIONS
                .iter()
                .map(|s| item(s.key, s.title, s.href, s.icon)),
        );
        items.push(item("system", "System", "/system", icons::SYSTEM));
        items.push(item(
            "settings",
            "Settings",
            "/settings/projects",
            icons::SETTINGS,
        ));
        items
    }

    /// The current project, or a 404 saying how to make one.
    pub fn project_or_404(&self) -> Result<Project, AppError> {
        self.project.clone().ok_or_else(|| {
            AppError::NotFound("no project yet: create one in Settings → Projects".into())
        })
    }

    pub fn is_current(&self, project: &Project) -> bool {
        self.project.as_ref().is_some_and(|p| p.id == project.id)
    }

    pub fn is_admin(&self) -> bool {
        self.user.role.allows(Access::Admin)
    }

    pub fn initial(&self) -> String {
        self.user.username.chars().next().unwrap_or('?').to_string()
    }

    pub fn ago(&self, t: &Timestamp) -> String {
        t.relative_to(self.now)
    }
}

/// Renders a page; if it showed a flash message, clears it so it shows once.
pub fn render(template: &impl Template, chrome: &Chrome) -> Result<Response, PageError> {
    let html = template
        .render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))?;
    let mut response = Html(html).into_response();
    if chrome.flash.is_some() {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookies::delete(cookies::FLASH, chrome.secure),
        );
    }
    Ok(response)
}

/// Redirects to `to` with a flash message for the next page.
pub fn redirect_with(to: &str, ok: bool, message: &str, secure: bool) -> Response {
    (
        [(header::SET_COOKIE, cookies::flash(ok, message, secure))],
        Redirect::to(to),
    )
        .into_response()
}

/// The answer to a settings form: success or a mistake the user can fix go back to `to` as a
/// flash message; faults become an error page.
pub fn form_outcome<T>(
    result: Result<T, AppError>,
    to: &str,
    secure: bool,
    success: impl FnOnce(&T) -> String,
) -> Result<Response, PageError> {
    match result {
        Ok(value) => Ok(redirect_with(to, true, &success(&value), secure)),
        Err(err) if err.is_user_error() => Ok(redirect_with(to, false, &err.to_string(), secure)),
        Err(err) => Err(PageError(err)),
    }
}

/// A `next=` target that stays on this site: a path, never `//host` or a full URL.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_stay_on_site() {
        assert_eq!(
            safe_next(Some("/settings/users?x=1")),
            "/settings/users?x=1"
        );
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
