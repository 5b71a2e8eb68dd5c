//! The trace pages: a search over traces, and one trace's spans as a waterfall, coloured by
//! service, with its critical path, each span's details, the issues of its errors, its jobs
//! and the log lines written inside it.
//!
//! ```text
//! GET /traces?q=&order=  ─▶ api::SearchParams ─▶ SpanStore::search_traces ─▶ traces/search.html
//!                           (a trace id alone redirects to its page)
//! GET /traces/{trace_id} ─▶ SpanStore::trace ─▶ web::waterfall::bars ─┐
//!                        ─▶ events of the trace (their issues)       │
//!                        ─▶ the jobs its spans name (Span::job_id)   │
//!                        ─▶ logs::search("trace:<id>") oldest first ┴─▶ traces/trace.html
//! ```

use super::api::{SearchParams, TraceView, DEFAULT_RANGE};
use crate::http::PageError;
use crate::logs::ui::Row;
use crate::state::AppState;
use crate::web::format::{encode, ms};
use crate::web::waterfall::{self, SpanBar, Timed};
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::borrow::Borrow;
use std::collections::BTreeSet;
use vigie_core::span::is_trace_id;
use vigie_core::{LogQuery, Timestamp};
use vigie_store::traces::{TraceEntry, TraceOrder};
use vigie_store::EventMeta;

/// Most issues listed under a trace.
const TRACE_EVENTS: u32 = 20;

/// Most log lines shown under a trace (the Logs page has them all).
const LOG_LINES: usize = 200;
/// Colours the services take in turn (`colour-0` … in the stylesheet).
const COLOURS: usize = 6;

#[derive(Template)]
#[template(path = "traces/trace.html")]
struct TracePage {
    chrome: Chrome,
    trace_id: String,
    trace: Option<TraceView>,
    /// Services with their colour, by name.
    services: Vec<(String, usize)>,
    waterfall: Vec<SpanBar>,
    /// The trace's error events (each links its issue).
    errors: Vec<EventMeta>,
    /// The jobs its spans worked for that Vigie knows.
    jobs: Vec<String>,
    logs: Vec<Row>,
    more_logs: bool,
}

impl TracePage {
    fn started(&self, trace: &TraceView) -> Timestamp {
        Timestamp(trace.start / 1_000_000)
    }

    // Askama hands fields by reference and method results by value: both are read.
    fn duration(&self, ns: impl Borrow<i64>) -> String {
        ms(&Some(*ns.borrow() as f64 / 1e6))
    }

    /// A time within the trace, as an offset from its start.
    fn offset(&self, trace: &TraceView, ns: impl Borrow<i64>) -> String {
        format!("+{}", ms(&Some((*ns.borrow() - trace.start) as f64 / 1e6)))
    }

    /// What the trace is called: its first span with no parent among its spans (the root;
    /// a web vital a browser measured from the navigation can start before it, not above it).
    fn heading<'a>(&self, trace: &'a TraceView) -> &'a str {
        let ids: std::collections::HashSet<&str> =
            trace.spans.iter().map(|s| s.span_id.as_str()).collect();
        trace
            .spans
            .iter()
            .find(|s| !ids.contains(s.parent_span_id.as_str()))
            .or(trace.spans.first())
            .map_or("", |s| s.name.as_str())
    }

    fn logs_link(&self) -> String {
        format!(
            "/logs?range=&q={}",
            encode(&format!("trace:{}", self.trace_id))
        )
    }

    fn colour(&self, service: &str) -> usize {
        colour_of(&self.services, service)
    }
}

fn colour_of(services: &[(String, usize)], service: &str) -> usize {
    services
        .iter()
        .find(|(name, _)| name == service)
        .map_or(0, |(_, colour)| *colour)
}

/// `GET /traces/{trace_id}`.
#[tracing::instrument(name = "page", skip_all, fields(route = "/traces/{trace_id}"))]
pub async fn trace(
    State(state): State<AppState>,
    request: PageRequest,
    Path(trace_id): Path<String>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "performance").await?;
    let project = chrome.project_or_404()?;
    let trace_id = trace_id.to_ascii_lowercase();
    let is_id = is_trace_id(&trace_id);
    let spans = if is_id {
        state.store.trace(project.id, &trace_id).await?
    } else {
        Vec::new()
    };
    let trace = (!spans.is_empty()).then(|| TraceView::new(trace_id.clone(), spans));
    let errors = if is_id {
        state
            .store
            .events(&vigie_store::EventFilter {
                project: project.id,
                trace_id: Some(trace_id.clone()),
                limit: TRACE_EVENTS,
                ..Default::default()
            })
            .await?
    } else {
        Vec::new()
    };
    let named: BTreeSet<&str> = trace
        .iter()
        .flat_map(|t| t.spans.iter().filter_map(|s| s.job_id()))
        .chain(errors.iter().filter_map(|e| e.job_id.as_deref()))
        .take(20)
        .collect();
    let mut jobs = Vec::new();
    for id in named {
        // A Celery task id names a job only when the task reported one.
        if state.store.job(project.id, id).await?.is_some() {
            jobs.push(id.to_string());
        }
    }
    let services: Vec<(String, usize)> = trace
        .iter()
        .flat_map(|t| t.services.iter())
        .enumerate()
        .map(|(i, name)| (name.clone(), i % COLOURS))
        .collect();
    let waterfall = trace.as_ref().map_or_else(Vec::new, |t| {
        let timed: Vec<Timed> = t
            .spans
            .iter()
            .map(|s| Timed {
                id: &s.span_id,
                parent: &s.parent_span_id,
                start: s.start,
                end: s.end,
                op: &s.name,
                description: &s.service,
                failed: s.failed(),
                colour: colour_of(&services, &s.service),
            })
            .collect();
        waterfall::bars(&timed)
    });
    let (logs, more_logs) = if is_id {
        let query = LogQuery::parse(&format!("trace:{trace_id}"), vigie_core::time::now_ns())
            .map_err(|e| crate::http::AppError::BadRequest(e.to_string()))?;
        let page =
            vigie_store::logs::search(state.store.as_ref(), project.id, &query, LOG_LINES, None)
                .await?;
        let mut rows: Vec<Row> = page.hits.iter().map(|h| Row::new(&h.record)).collect();
        rows.reverse();
        (rows, page.next.is_some())
    } else {
        (Vec::new(), false)
    };
    let page = TracePage {
        chrome,
        trace_id,
        trace,
        services,
        waterfall,
        errors,
        jobs,
        logs,
        more_logs,
    };
    render(&page, &page.chrome)
}

#[derive(Template)]
#[template(path = "traces/search.html")]
struct SearchPage {
    chrome: Chrome,
    project: String,
    q: String,
    slowest: bool,
    /// Why the search could not run, shown by the search box.
    problem: Option<String>,
    found: Vec<TraceEntry>,
    /// The longest duration found (the bars' scale).
    longest: i64,
    /// Services with their colour, by name.
    services: Vec<(String, usize)>,
}

impl SearchPage {
    fn default_range(&self) -> &'static str {
        DEFAULT_RANGE
    }

    fn order_link(&self, order: &str) -> String {
        format!("/traces?q={}&order={order}", encode(&self.q))
    }

    fn duration(&self, ns: &i64) -> String {
        ms(&Some(*ns as f64 / 1e6))
    }

    fn started(&self, entry: &TraceEntry) -> Timestamp {
        Timestamp(entry.start / 1_000_000)
    }

    /// The row's bar width, in percent of the longest found.
    fn width(&self, entry: &TraceEntry) -> String {
        format!(
            "{:.1}",
            (entry.duration_ns as f64 / self.longest.max(1) as f64 * 100.0).clamp(0.5, 100.0)
        )
    }

    fn colour(&self, service: &str) -> usize {
        colour_of(&self.services, service)
    }

    /// The search for this entry's name, as the name link runs it.
    fn same_name(&self, entry: &TraceEntry) -> String {
        format!(
            "/traces?order=slowest&q={}",
            encode(&format!("name:\"{}\"", entry.name))
        )
    }
}

/// `GET /traces`: trace search.
#[tracing::instrument(name = "page", skip_all, fields(route = "/traces"))]
pub async fn search(
    State(state): State<AppState>,
    request: PageRequest,
    Query(params): Query<SearchParams>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "performance").await?;
    let project = chrome.project_or_404()?;
    // An order that does not read is the default one here (the API names the mistake).
    let order = params.order().unwrap_or_default();
    let slowest = order == TraceOrder::Slowest;
    let (found, problem) = match params.query() {
        Ok(query) => {
            if let Some(id) = &query.trace_id {
                return Ok(Redirect::to(&format!("/traces/{id}")).into_response());
            }
            let limit = params.limit().unwrap_or(super::api::DEFAULT_LIMIT);
            let found = state
                .store
                .search_traces(project.id, &query, order, limit)
                .await?;
            (found, None)
        }
        Err(crate::http::AppError::Invalid { message, .. }) => (Vec::new(), Some(message)),
        Err(err) => return Err(err.into()),
    };
    let services: Vec<(String, usize)> = found
        .iter()
        .map(|e| e.service.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name.to_string(), i % COLOURS))
        .collect();
    let page = SearchPage {
        chrome,
        project: project.name.clone(),
        q: params.q.clone(),
        slowest,
        problem,
        longest: found.iter().map(|e| e.duration_ns).max().unwrap_or(1),
        found,
        services,
    };
    render(&page, &page.chrome)
}
