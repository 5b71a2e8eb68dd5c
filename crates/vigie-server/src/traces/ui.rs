//! The trace page: one trace's spans as a waterfall, coloured by service, with each span's
//! details and the log lines written inside the trace.
//!
//! ```text
//! GET /traces/{trace_id} ─▶ SpanStore::trace ─▶ web::waterfall::bars ─┐
//!                        ─▶ logs::search("trace:<id>") ─ oldest first ┴─▶ traces/trace.html
//! ```

use super::api::TraceView;
use crate::auth::LoggedIn;
use crate::http::PageError;
use crate::logs::ui::Row;
use crate::state::AppState;
use crate::web::format::{encode, ms};
use crate::web::waterfall::{self, SpanBar, Timed};
use crate::web::{render, Chrome};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use std::borrow::Borrow;
use vigie_core::span::is_trace_id;
use vigie_core::{LogQuery, Timestamp};

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
    who: LoggedIn,
    headers: HeaderMap,
    uri: Uri,
    Path(trace_id): Path<String>,
) -> Result<Response, PageError> {
    let chrome = Chrome::build(&state, who, &headers, &uri, "performance").await?;
    let project = chrome.project_or_404()?;
    let trace_id = trace_id.to_ascii_lowercase();
    let is_id = is_trace_id(&trace_id);
    let spans = if is_id {
        state.store.trace(project.id, &trace_id).await?
    } else {
        Vec::new()
    };
    let trace = (!spans.is_empty()).then(|| TraceView::new(trace_id.clone(), spans));
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
        logs,
        more_logs,
    };
    render(&page, &page.chrome)
}
