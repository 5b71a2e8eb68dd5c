//! The incident report page: a window of time, what happened in it, and why it probably
//! happened (see `crate::reports`).

use super::{render, Chrome};
use crate::auth::LoggedIn;
use crate::http::{AppError, PageError};
use crate::reports::{self, IncidentParams, IncidentReport};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use vigie_core::incident::{Entry, EntryKind};
use vigie_core::Project;

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: Chrome,
    project: Project,
    params: IncidentParams,
    report: Option<IncidentReport>,
    /// Why the window could not be read.
    problem: Option<String>,
}

impl IncidentPage {
    fn entry(&self, i: &usize) -> Option<&Entry> {
        self.report.as_ref().and_then(|r| r.timeline.get(*i))
    }

    fn kind_class(&self, kind: &EntryKind) -> &'static str {
        match kind {
            EntryKind::Error => "failed",
            EntryKind::Job => "running",
            EntryKind::Monitor => "stalled",
            EntryKind::Log => "pending",
        }
    }

    fn clock(&self, t: &vigie_core::Timestamp) -> String {
        t.to_rfc3339().replace('T', " ")
    }

    fn first_line<'a>(&self, text: &'a str) -> &'a str {
        text.lines().next().unwrap_or("")
    }
}

pub async fn incident(
    State(state): State<AppState>,
    who: LoggedIn,
    headers: HeaderMap,
    uri: Uri,
    Query(params): Query<IncidentParams>,
) -> Result<Response, PageError> {
    let chrome = Chrome::build(&state, who, &headers, &uri, "alerts").await?;
    let project = chrome.project_or_404()?;
    let (report, problem) = if params.from.trim().is_empty() {
        (None, None)
    } else {
        match reports::window(&params) {
            Ok((from, to)) => (
                Some(reports::incident(&state, project.id, from, to).await?),
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
    };
    render(&page, &page.chrome)
}
