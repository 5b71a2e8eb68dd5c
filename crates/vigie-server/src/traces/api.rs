//! Traces as JSON: a search, and one trace whole.
//!
//! ```text
//! GET /api/v1/traces?q=&order=newest|slowest&limit=   the entries matching a trace search
//! GET /api/v1/traces/{trace_id}?project=              every stored span of the trace
//! ```
//!
//! A search reads `vigie_core::tracequery`'s language over the spans that began a unit of
//! work; without `since:` or `from:` it covers the last [`DEFAULT_RANGE`]. A trace is 404 when
//! no span of it is stored (never sent, or past retention, or not a trace id: 32 hex digits).

use crate::auth::job_access::ProjectReader;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use vigie_core::span::{is_trace_id, Span};
use vigie_core::time::now_ns;
use vigie_core::tracequery::TraceQuery;
use vigie_store::traces::{TraceEntry, TraceOrder, MAX_SEARCH};

/// What a search covers when it names no time: the last day.
pub const DEFAULT_RANGE: &str = "24h";
/// Traces a search answers unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;

#[derive(Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    /// `newest` (the default) or `slowest`.
    #[serde(default)]
    pub order: String,
    pub limit: Option<usize>,
}

impl SearchParams {
    /// The query, with the default range when it names none.
    pub fn query(&self) -> Result<TraceQuery, AppError> {
        let now = now_ns();
        let mut query = TraceQuery::parse(&self.q, now).map_err(|e| AppError::Invalid {
            field: "q".into(),
            message: e.to_string(),
        })?;
        if query.from.is_none() && query.trace_id.is_none() {
            let range = vigie_core::logquery::parse_span(DEFAULT_RANGE).unwrap_or(0);
            query.from = Some(now - range);
        }
        Ok(query)
    }

    pub fn order(&self) -> Result<TraceOrder, AppError> {
        match self.order.as_str() {
            "" | "newest" => Ok(TraceOrder::Newest),
            "slowest" => Ok(TraceOrder::Slowest),
            other => Err(AppError::Invalid {
                field: "order".into(),
                message: format!("{other:?} is not an order: use newest or slowest"),
            }),
        }
    }

    pub fn limit(&self) -> Result<usize, AppError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_SEARCH).contains(&n) => Ok(n),
            Some(n) => Err(AppError::Invalid {
                field: "limit".into(),
                message: format!("{n} is out of range: ask for 1 to {MAX_SEARCH} traces"),
            }),
        }
    }
}

#[derive(Serialize)]
pub struct SearchAnswer {
    /// The spans that began the traces found (a request, a task run, a root), newest or
    /// slowest first.
    pub traces: Vec<TraceEntry>,
}

/// `GET /api/v1/traces`.
#[tracing::instrument(name = "trace_search", skip_all, fields(project = reader.project.id.0))]
pub async fn search(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let (query, order, limit) = (params.query()?, params.order()?, params.limit()?);
    let traces = state
        .store
        .search_traces(reader.project.id, &query, order, limit)
        .await?;
    Ok(Json(SearchAnswer { traces }))
}

#[derive(Serialize)]
pub struct TraceView {
    pub trace_id: String,
    /// The earliest start and the latest end of its spans, nanoseconds since the epoch.
    pub start: i64,
    pub end: i64,
    pub duration_ns: i64,
    /// Every service that reported a span, by name.
    pub services: BTreeSet<String>,
    /// Spans whose status is error.
    pub errors: usize,
    pub spans: Vec<Span>,
}

impl TraceView {
    pub fn new(trace_id: String, spans: Vec<Span>) -> TraceView {
        let start = spans.iter().map(|s| s.start).min().unwrap_or(0);
        let end = spans.iter().map(|s| s.end).max().unwrap_or(0);
        TraceView {
            trace_id,
            start,
            end,
            duration_ns: end.saturating_sub(start),
            services: spans.iter().map(|s| s.service.clone()).collect(),
            errors: spans.iter().filter(|s| s.failed()).count(),
            spans,
        }
    }
}

/// `GET /api/v1/traces/{trace_id}`.
#[tracing::instrument(name = "trace", skip_all, fields(project = reader.project.id.0))]
pub async fn trace(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(trace_id): Path<String>,
) -> Result<Json<TraceView>, ApiError> {
    if !is_trace_id(&trace_id) {
        // No trace has such an id: as missing as any other.
        return Err(AppError::NotFound(format!(
            "{trace_id:?} is not a trace id: a trace id is 32 hex digits"
        ))
        .into());
    }
    let trace_id = trace_id.to_ascii_lowercase();
    let spans = state.store.trace(reader.project.id, &trace_id).await?;
    if spans.is_empty() {
        return Err(AppError::NotFound(format!("no span of trace {trace_id} is stored")).into());
    }
    Ok(Json(TraceView::new(trace_id, spans)))
}
