//! What a page's object relates to, as links: a job's issues, logs, Celery task and monitor;
//! a Celery task's issue; an event's requests. Each is found by the id the other side carries
//! (an event's `job_id`, which is also the Celery task id the SDK's Celery integration tags; a
//! log record's `job:`; an event's and a transaction's `trace_id`).
//!
//! ```text
//! job / Celery task ─► events whose job_id is its id ─► their issues (one link each)
//!                   ─► /logs?q=job:ID
//!                   ─► the traces whose entry spans name it (trace search `job:ID`)
//! a trace id typed in a search box ─► its trace, when its spans are stored
//! job of kind celery ─► /celery/tasks/ID        job of kind monitor ─► /monitors/SLUG
//! event ─► its trace_id ─► the transaction samples of that trace (the request that failed)
//! ```

use crate::http::AppError;
use crate::state::AppState;
use vigie_core::{JobOrigin, ProjectId};
use vigie_store::errors::SampleMeta;
use vigie_store::{EventFilter, EventMeta};

/// An issue some events of a job (or task) belong to.
pub struct RelatedIssue {
    pub id: vigie_core::issue::IssueId,
    pub title: String,
    pub events: usize,
}

/// The trace `text` names when it is a trace id alone whose spans are stored (a search box
/// elsewhere then opens the trace rather than search for the id).
pub async fn stored_trace(
    state: &AppState,
    project: vigie_core::ProjectId,
    text: &str,
) -> Result<Option<String>, AppError> {
    let text = text.trim();
    if !vigie_core::span::is_trace_id(text) {
        return Ok(None);
    }
    let query = vigie_core::tracequery::TraceQuery {
        trace_id: Some(text.to_ascii_lowercase()),
        ..Default::default()
    };
    let found = state
        .store
        .search_traces(project, &query, vigie_store::traces::TraceOrder::Newest, 1)
        .await?;
    Ok(found.into_iter().next().map(|e| e.trace_id))
}

/// A redirect to the trace `text` names when it is a stored trace's id alone: what the Issues,
/// Logs and Celery search boxes answer to a pasted trace id, since the trace page lists that
/// trace's issues, log lines and tasks together.
pub async fn open_trace(
    state: &AppState,
    project: vigie_core::ProjectId,
    text: &str,
) -> Result<Option<axum::response::Response>, AppError> {
    let trace = stored_trace(state, project, text).await?;
    Ok(trace.map(|trace| {
        axum::response::IntoResponse::into_response(axum::response::Redirect::to(&format!(
            "/traces/{trace}"
        )))
    }))
}

/// Most traces a job's (or Celery task's) page lists (the trace search has them all).
pub const JOB_TRACES: usize = 3;

/// The newest traces that began with a span naming a job (its `job_id` attribute, or the
/// Celery task id), as a job's and a Celery task's page link them (`web/job_traces.html`).
pub struct JobTraces {
    job_id: String,
    /// At most [`JOB_TRACES`] and one more, to say there are others.
    entries: Vec<vigie_store::traces::TraceEntry>,
}

impl JobTraces {
    pub fn shown(&self) -> &[vigie_store::traces::TraceEntry] {
        &self.entries[..self.entries.len().min(JOB_TRACES)]
    }
    pub fn more(&self) -> bool {
        self.entries.len() > JOB_TRACES
    }
    /// The trace search that finds them all.
    pub fn all_link(&self) -> String {
        format!(
            "/traces?q={}",
            crate::web::format::encode(&format!("job:\"{}\" since:90d", self.job_id))
        )
    }
    pub fn duration(&self, ns: &i64) -> String {
        crate::web::format::ms(&Some(*ns as f64 / 1e6))
    }
}

/// The traces begun for `job_id` (a job's id or a Celery task id), newest first.
pub async fn traces_of_job(
    state: &AppState,
    project: ProjectId,
    job_id: &str,
) -> Result<JobTraces, AppError> {
    let query = vigie_core::tracequery::TraceQuery {
        job: Some(job_id.to_string()),
        ..Default::default()
    };
    let entries = state
        .store
        .search_traces(
            project,
            &query,
            vigie_store::traces::TraceOrder::Newest,
            JOB_TRACES + 1,
        )
        .await?;
    Ok(JobTraces {
        job_id: job_id.to_string(),
        entries,
    })
}

/// The issues of the events that name `job_id`, most events first (from the newest 500).
pub async fn issues_of_job(
    state: &AppState,
    project: ProjectId,
    job_id: &str,
) -> Result<Vec<RelatedIssue>, AppError> {
    let events = state
        .store
        .events(&EventFilter {
            project,
            job_id: Some(job_id.to_string()),
            limit: 500,
            ..Default::default()
        })
        .await?;
    let mut issues: Vec<RelatedIssue> = Vec::new();
    for e in events {
        match issues.iter_mut().find(|i| i.id == e.issue_id) {
            Some(issue) => issue.events += 1,
            None => issues.push(RelatedIssue {
                id: e.issue_id,
                title: e.title,
                events: 1,
            }),
        }
    }
    issues.sort_by_key(|i| std::cmp::Reverse(i.events));
    Ok(issues)
}

/// Where a job's own page is elsewhere: its Celery task, or its monitor (by slug, the name
/// Vigie gives a monitor run's job). `None` for a job the application reported.
pub fn origin_link(kind: Option<&str>, id: &str, name: &str) -> Option<(String, &'static str)> {
    match JobOrigin::of(kind) {
        JobOrigin::Celery => Some((
            format!("/celery/tasks/{}", super::format::encode(id)),
            "its Celery task",
        )),
        JobOrigin::Monitor => Some((
            format!("/monitors/{}", super::format::encode(name)),
            "its monitor",
        )),
        JobOrigin::Reported => None,
    }
}

/// The samples of the trace an event happened in: the request or task that failed, timed.
pub async fn requests_of_event(
    state: &AppState,
    project: ProjectId,
    event: Option<&EventMeta>,
) -> Result<Vec<SampleMeta>, AppError> {
    match event.and_then(|e| e.trace_id.as_deref()) {
        Some(trace) => Ok(state.store.trace_samples(project, trace).await?),
        None => Ok(Vec::new()),
    }
}

/// A release's page.
pub fn release_link(version: &str) -> String {
    format!("/releases/{}", super::format::encode(version))
}

/// A transaction sample's page: its endpoint's figures over a period that holds it, with its
/// waterfall open.
pub fn sample_link(sample: &SampleMeta) -> String {
    format!(
        "/performance/transaction?name={}&sample={}",
        super::format::encode(&sample.name),
        super::format::encode(&sample.event_id)
    )
}

/// The logs of a job (`job:ID`), as the README promises.
pub fn logs_of_job(id: &str) -> String {
    format!("/logs?q={}", super::format::encode(&format!("job:{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_links_to_where_it_came_from_and_to_its_logs() {
        assert_eq!(
            origin_link(Some("celery"), "a1-b2", "send"),
            Some(("/celery/tasks/a1-b2".to_string(), "its Celery task"))
        );
        assert_eq!(
            origin_link(Some("monitor"), "monitor-1-2", "sync stock"),
            Some(("/monitors/sync%20stock".to_string(), "its monitor"))
        );
        assert_eq!(origin_link(Some("email"), "x", "y"), None);
        assert_eq!(logs_of_job("Run 7"), "/logs?q=job%3ARun%207");
    }
}
