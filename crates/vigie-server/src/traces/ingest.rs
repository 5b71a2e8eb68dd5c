//! `POST /v1/traces`: OTLP/HTTP traces, as the OpenTelemetry exporters send them.
//!
//! The encoding follows `Content-Type` (`application/x-protobuf` or `application/json`; any
//! other is 415, as OTLP/HTTP asks), a compressed body is inflated by the ingest body reader,
//! and the answer is in the request's encoding: an empty `ExportTraceServiceResponse`, or one
//! with `partial_success` saying how many spans were refused and why. A body that is not OTLP
//! at all is 400 and stores nothing. Spans are acknowledged once committed, with what they
//! feed elsewhere (endpoint figures, issues: see [`super::derive`]).

use crate::auth::job_access::JobAccess;
use crate::http::ingest_body::IngestBody;
use crate::http::otlp::Encoding;
use crate::http::ApiError;
use crate::sentry::ErrorIngest;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::atomic::Ordering;
use vigie_protocol::otlp::traces;

/// `POST /v1/traces`.
#[tracing::instrument(
    name = "ingest",
    skip_all,
    fields(protocol = "otlp_traces", project, spans)
)]
pub async fn otlp(
    State(state): State<AppState>,
    State(errors): State<ErrorIngest>,
    access: JobAccess,
    headers: HeaderMap,
    mut body: IngestBody,
) -> Result<Response, ApiError> {
    access.require_project("send traces")?;
    let encoding = Encoding::of(&headers)?;
    let mut parsed = encoding
        .parse(&mut body, traces::parse_protobuf, traces::parse_json)
        .await?;
    body.check_records(parsed.records.len() + parsed.rejected, "spans")?;
    let project = access.project.id;
    tracing::Span::current()
        .record("project", project.0)
        .record("spans", parsed.records.len());
    state
        .metrics
        .spans_rejected
        .fetch_add(parsed.rejected as u64, Ordering::Relaxed);
    let spans = std::mem::take(&mut parsed.records);
    let count = spans.len() as u64;
    // The spans and what they stand for (endpoint figures, issues) in one commit: an export
    // is stored whole or not at all, and the exporter's retry after a failure adds nothing
    // twice but the figures' request count.
    let batch = super::derive::batch(&state, &errors, project, spans).await?;
    let counts = [
        ("event", batch.events.len() as u64),
        ("transaction", batch.transactions.len() as u64),
        ("span", count),
    ];
    errors.sink.write(batch).await?;
    for (what, n) in counts {
        state.metrics.ingested("otlp", what, n);
    }
    Ok(encoding.answer(traces::response(&parsed), traces::response_json(&parsed)))
}
