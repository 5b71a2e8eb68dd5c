//! Traces in the server: OpenTelemetry spans in over OTLP/HTTP, and a trace read back whole.
//!
//! ```text
//! POST /v1/traces (OTLP, protobuf or JSON) ─▶ ingest ─▶ SpanStore::write_spans (durable) ─▶ 2xx
//!                                                        partial_success for refused spans
//!                                          ─▶ derive ─▶ requests, task runs, span exceptions
//!                                                       as Sentry-shaped events (Performance, Issues)
//! GET  /api/v1/traces?q=                   ─▶ api    ─▶ SpanStore::search_traces ─▶ entries
//! GET  /api/v1/traces/{trace_id}           ─▶ api    ─▶ SpanStore::trace ─▶ spans by start
//! GET  /traces?q=, /traces/{trace_id}      ─▶ ui     ─▶ the same as pages
//! ```
//!
//! - [`ingest`]: the OTLP endpoint, as the OpenTelemetry exporters call it with the project
//!   key (`OTEL_EXPORTER_OTLP_ENDPOINT=http://host:8610` and the key in a header).
//! - [`derive`]: what spans feed besides the trace — requests and task runs on the
//!   Performance page, span exceptions as issues.
//! - [`api`]: trace search and one trace as JSON.
//! - [`ui`]: the search page and the trace page.
//!
//! Spans are performance data: `errors.retention` drops them with the events (see
//! `crate::sentry::retention`).

pub mod api;
pub mod derive;
pub mod ingest;
pub mod ui;

/// Span ingest (OTLP/HTTP, called by the OpenTelemetry exporters with the project key, bodies
/// read within the ingest limits) and reading a trace back.
///
/// `S` is the server's state: handlers take the shared `AppState`, and ingest bodies their
/// budget, from it.
pub fn routes<S>() -> crate::http::Routes<S>
where
    S: Clone + Send + Sync + 'static,
    crate::state::AppState: axum::extract::FromRef<S>,
    crate::http::ingest_body::IngestBudget: axum::extract::FromRef<S>,
    crate::sentry::ErrorIngest: axum::extract::FromRef<S>,
{
    use crate::http::Table;
    use axum::routing::{get, post};
    crate::http::Routes {
        pages: Table::new()
            .route("/traces", get(ui::search))
            .route("/traces/{trace_id}", get(ui::trace)),
        api: Table::new()
            .route("/api/v1/traces", get(api::search))
            .route("/api/v1/traces/{trace_id}", get(api::trace)),
        ingest: Table::new().route("/v1/traces", post(ingest::otlp)),
    }
}
