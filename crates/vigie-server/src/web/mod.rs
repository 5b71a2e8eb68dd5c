//! What every page shares: the chrome around it (sidebar, project switcher, user menu, flash
//! message), rendering, redirects after a form, how values read, charts, icons, assets, the
//! product's sections and the links between objects. Every feature's pages build on it
//! (`crate::jobs::ui`, …, `crate::dashboard`); it depends on no feature.
//!
//! A page handler takes a [`PageRequest`] (`PageRequest<AdminUser>` for admins' forms) and
//! draws its chrome from it:
//!
//! ```text
//!   request ─ PageRequest (the session's user, or the login page / 403; headers; address)
//!           ─ request.chrome(&state, "logs") ─ Chrome (projects, the one picked, flash)
//!           ─ the feature's page struct ─ render ─ HTML
//! ```
//!
//! - [`format`]: how values read on every page (numbers, times, durations, state colours);
//! - [`chart`]: bars and lines as SVG;
//! - [`related`]: the links between a page's object and what relates to it;
//! - [`sections`]: the product's sections (the sidebar, the dashboard's cards);
//! - [`sse`]: what live streams share;
//! - [`waterfall`]: a trace's spans as rows on a time axis (transactions and traces);
//! - [`assets`], [`icons`]: what the pages load and draw.

pub mod assets;
pub mod chart;
pub mod format;
pub mod icons;
pub mod related;
pub mod sections;
pub mod sse;
pub mod waterfall;

use crate::auth::LoggedIn;
use crate::http::{cookies, AppError, PageError};
use crate::state::AppState;
use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use vigie_core::{Access, Project, Timestamp, User};

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

/// Who asks for a page, with the request's headers (cookies, `Accept`) and address: what the
/// chrome around a page is drawn from and a form's answer is made with. `PageRequest` lets
/// in anyone logged in (others go to the login page), `PageRequest<AdminUser>` admins only
/// (viewers get 403): `Who` is any extractor of a logged-in person.
pub struct PageRequest<Who = LoggedIn> {
    pub who: Who,
    pub headers: HeaderMap,
    pub uri: Uri,
}

impl<S, Who> FromRequestParts<S> for PageRequest<Who>
where
    S: Send + Sync,
    Who: FromRequestParts<S, Rejection = Response> + Send,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        Ok(PageRequest {
            who: Who::from_request_parts(parts, state).await?,
            headers: parts.headers.clone(),
            uri: parts.uri.clone(),
        })
    }
}

impl<Who: AsRef<LoggedIn>> PageRequest<Who> {
    /// The chrome of a page of `section` (a key of [`sections::SECTIONS`], or `dashboard`,
    /// `system`, `settings`).
    pub async fn chrome(
        &self,
        state: &AppState,
        section: &'static str,
    ) -> Result<Chrome, AppError> {
        Chrome::build(state, self.who.as_ref(), &self.headers, &self.uri, section).await
    }

    /// Whether the cookies of this request's answer (a form's flash) must be `Secure`.
    pub fn secure_cookies(&self, state: &AppState) -> bool {
        state.secure_cookies(&self.headers)
    }
}

impl Chrome {
    async fn build(
        state: &AppState,
        who: &LoggedIn,
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
            user: who.user.clone(),
            csrf: who.csrf.clone(),
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
            sections::SECTIONS
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

/// A page's filters as the store takes them, or why they could not be read. A search box
/// past its limits, or a filter typed into the address, is the user's to mend: the page says
/// why above an empty table (the API answers 422) instead of showing an error page.
pub fn searchable<T>(filters: Result<T, AppError>) -> Result<Result<T, String>, PageError> {
    match filters {
        Ok(filters) => Ok(Ok(filters)),
        Err(AppError::Invalid { message, .. }) => Ok(Err(message)),
        Err(err) => Err(err.into()),
    }
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
