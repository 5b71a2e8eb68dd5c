//! The Settings tab that lists a project's uploaded source maps, and deletes them (admins).

use crate::auth::AdminUser;
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::web::{form_outcome, render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use vigie_core::Project;
use vigie_store::artifacts::BundleMeta;

const PAGE: &str = "/settings/sourcemaps";

#[derive(Template)]
#[template(path = "sourcemaps/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    tab: &'static str,
    project: Project,
    bundles: Vec<BundleMeta>,
    base_url: String,
    cap: String,
    retention: String,
}

impl SettingsPage {
    fn size(&self, bytes: &i64) -> String {
        crate::web::format::human_bytes((*bytes).max(0) as u64)
    }
    fn short(&self, checksum: &str) -> String {
        checksum.chars().take(12).collect()
    }
}

/// `GET /settings/sourcemaps`: the current project's bundles, newest first.
pub async fn settings(
    State(state): State<AppState>,
    request: PageRequest,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "settings").await?;
    let project = chrome.project_or_404()?;
    let retention = match &state.config.sourcemaps.retention {
        r if r.trim().is_empty() => "ever".to_string(),
        r => r.trim().to_string(),
    };
    let page = SettingsPage {
        bundles: state.store.artifact_bundles(project.id).await?,
        base_url: state.base_url.to_string(),
        cap: crate::web::format::human_bytes(state.config.sourcemaps.max_project_mib << 20),
        retention,
        project,
        tab: "sourcemaps",
        chrome,
    };
    render(&page, &page.chrome)
}

/// `POST /settings/sourcemaps/{id}/delete` (admins).
pub async fn delete(
    State(state): State<AppState>,
    request: PageRequest<AdminUser>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "settings").await?;
    let project = chrome.project_or_404()?;
    let result = match state.store.delete_artifact_bundle(project.id, id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AppError::NotFound(format!(
            "no source map bundle {id} in {}",
            project.name
        ))),
        Err(err) => Err(err.into()),
    };
    form_outcome(result, PAGE, request.secure_cookies(&state), |_| {
        "Source maps deleted.".to_string()
    })
}
