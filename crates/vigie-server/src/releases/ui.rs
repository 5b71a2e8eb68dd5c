//! The Releases page: each release of the project with its events, new issues, crash-free
//! sessions and deploys.

use super::{overview, ReleaseRow};
use crate::auth::LoggedIn;
use crate::http::PageError;
use crate::state::AppState;
use crate::web::{render, Chrome};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use vigie_core::Project;

#[derive(Template)]
#[template(path = "releases/releases.html")]
struct ReleasesPage {
    chrome: Chrome,
    project: Project,
    releases: Vec<ReleaseRow>,
    base_url: String,
}

impl ReleasesPage {
    fn percent(&self, share: &Option<f64>) -> String {
        share.map_or("—".into(), |s| format!("{:.1} %", s * 100.0))
    }
    fn health(&self, share: &Option<f64>) -> &'static str {
        match share {
            Some(s) if *s >= 0.99 => "ok",
            Some(s) if *s >= 0.95 => "warning",
            Some(_) => "error",
            None => "",
        }
    }
    fn count(&self, n: &i64) -> String {
        crate::web::format::thousands(*n)
    }
    fn issues_link(&self, version: &str) -> String {
        format!(
            "/issues?query={}",
            crate::web::format::encode(&format!("release:\"{version}\""))
        )
    }
}

/// `GET /releases`.
pub async fn releases(
    State(state): State<AppState>,
    who: LoggedIn,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let chrome = Chrome::build(&state, who, &headers, &uri, "releases").await?;
    let project = chrome.project_or_404()?;
    let page = ReleasesPage {
        releases: overview(&state, project.id).await?,
        base_url: state.base_url.to_string(),
        project,
        chrome,
    };
    render(&page, &page.chrome)
}
