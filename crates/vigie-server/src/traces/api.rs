//! One trace as JSON.
//!
//! ```text
//! GET /api/v1/traces/{trace_id}?project=   every stored span of the trace, by start time
//! ```
//!
//! 404 when no span of that trace is stored (never sent, or past retention, or not a trace id:
//! 32 hex digits).

use crate::auth::job_access::ProjectReader;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use std::collections::BTreeSet;
use vigie_core::span::{is_trace_id, Span};

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
            duration_ns: end - start,
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
