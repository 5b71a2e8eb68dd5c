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
use crate::http::{ApiError, AppError};
use crate::sentry::ErrorIngest;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prost::Message;
use std::sync::atomic::Ordering;
use vigie_protocol::otlp::traces;
use vigie_protocol::weight::{json_elements, protobuf_elements};

/// The two encodings OTLP/HTTP defines.
enum Encoding {
    Protobuf,
    Json,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(AppError::UnsupportedMediaType(format!(
            "Content-Type {content_type:?} is not OTLP: send application/x-protobuf or \
             application/json"
        ))),
    }
}

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
    let encoding = encoding(&headers)?;
    let parsed = match encoding {
        Encoding::Protobuf => {
            body.reserve_elements(protobuf_elements(&body.bytes))
                .await?;
            traces::parse_protobuf(&body.bytes)
        }
        Encoding::Json => {
            body.reserve_elements(json_elements(&body.bytes)).await?;
            traces::parse_json(&body.bytes)
        }
    };
    let mut parsed = parsed.map_err(|e| AppError::BadRequest(e.to_string()))?;
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
    Ok(match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            traces::response(&parsed).encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => Json(traces::response_json(&parsed)).into_response(),
    })
}
