//! The incident report page: a window of time, what happened in it, and why it probably
//! happened (see `crate::reports`).

use super::{self as reports, IncidentParams, IncidentReport};
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use vigie_core::Project;

#[derive(Template)]
#[template(path = "reports/incident.html")]
struct IncidentPage {
    chrome: Chrome,
    project: Project,
    params: IncidentParams,
    report: Option<IncidentReport>,
    /// Why the window could not be read.
    problem: Option<String>,
    /// Links stay relative on the page (the export makes them absolute).
    base_url: &'static str,
}

impl IncidentPage {
    /// This window as an HTML file to keep.
    fn export_link(&self) -> String {
        let q = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "/api/v1/reports/incident?from={}&to={}&tz={}&format=html",
            q(&self.params.from),
            q(&self.params.to),
            q(&self.params.tz)
        )
    }
}

pub async fn incident(
    State(state): State<AppState>,
    request: PageRequest,
    Query(params): Query<IncidentParams>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "alerts").await?;
    let project = chrome.project_or_404()?;
    let (report, problem) = if params.from.trim().is_empty() {
        (None, None)
    } else {
        match reports::window(&params) {
            Ok(window) => (
                Some(
                    reports::incident(&state, project.id, window, reports::zone(&params.tz)?)
                        .await?,
                ),
                None,
            ),
            Err(AppError::Invalid { message, .. }) => (None, Some(message)),
            Err(err) => return Err(err.into()),
        }
    };
    let page = IncidentPage {
        chrome,
        project,
        params,
        report,
        problem,
        base_url: "",
    };
    render(&page, &page.chrome)
}
