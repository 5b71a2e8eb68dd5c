//! `POST /v1/metrics`: OTLP/HTTP metrics, as the OpenTelemetry exporters send them.
//!
//! The encoding follows `Content-Type` (415 for any but protobuf and JSON), a compressed body
//! is inflated by the ingest body reader, and the answer is in the request's encoding: an
//! empty `ExportMetricsServiceResponse`, or one with `partial_success` counting the points
//! refused and the first reason (malformed points, points of new series past
//! `metrics.max_series`, points of a metric stored with another kind). A body that is not OTLP
//! at all is 400 and stores nothing. Points are acknowledged once committed.

use crate::auth::job_access::JobAccess;
use crate::http::ingest_body::IngestBody;
use crate::http::otlp::Encoding;
use crate::http::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::atomic::Ordering;
use vigie_protocol::otlp::metrics;

/// `POST /v1/metrics`.
#[tracing::instrument(
    name = "ingest",
    skip_all,
    fields(protocol = "otlp_metrics", project, points)
)]
pub async fn otlp(
    State(state): State<AppState>,
    access: JobAccess,
    headers: HeaderMap,
    mut body: IngestBody,
) -> Result<Response, ApiError> {
    access.require_project("send metrics")?;
    let encoding = Encoding::of(&headers)?;
    let mut parsed = encoding
        .parse(&mut body, metrics::parse_protobuf, metrics::parse_json)
        .await?;
    body.check_records(parsed.records.len() + parsed.rejected, "metric points")?;
    let project = access.project.id;
    tracing::Span::current()
        .record("project", project.0)
        .record("points", parsed.records.len());
    let counters = &state.metrics;
    counters
        .metric_points_malformed
        .fetch_add(parsed.rejected as u64, Ordering::Relaxed);
    let points = std::mem::take(&mut parsed.records);
    let written = state
        .store
        .write_metrics(project, points, state.config.metrics.max_series)
        .await?;
    counters
        .metric_points_over_limit
        .fetch_add(written.over_limit as u64, Ordering::Relaxed);
    counters
        .metric_points_wrong_kind
        .fetch_add(written.wrong_kind as u64, Ordering::Relaxed);
    counters.ingested("otlp", "metric_point", written.points as u64);
    if written.over_limit > 0 {
        tracing::warn!(
            project = project.0,
            refused = written.over_limit,
            "metric points of new series refused: the project is at metrics.max_series"
        );
    }
    let response = metrics::response(
        &parsed,
        written.over_limit + written.wrong_kind,
        written.refusal.as_deref(),
    );
    let json = metrics::response_json(&response);
    Ok(encoding.answer(response, json))
}
