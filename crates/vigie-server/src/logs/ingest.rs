//! The HTTP ingest endpoints for logs, one per protocol, all answered after the records are
//! durable (see `sink`).
//!
//! ```text
//! POST /api/v1/logs          JSON lines (structlog, python-json-logger, Vector, the client)
//! POST /v1/logs              OTLP/HTTP, protobuf or JSON (answer in the same encoding)
//! POST /loki/api/v1/push     Loki push, snappy protobuf or JSON (204 like Loki)
//! ```
//!
//! Callers authenticate with the project key (`Authorization: Bearer <key>`, as OTLP
//! exporters and Promtail's `bearer_token` send it, `X-Sentry-Auth` or `?sentry_key=`), or an
//! admin API token with `?project=`. The body is read only after that (see
//! `crate::http::ingest_body`): it may be gzip, deflate, br or zstd compressed; past the
//! configured sizes, or carrying more than `limits.max_records_per_request` records, it gets
//! 413 and nothing of it is stored; while the ingest memory budget is taken, 503 with
//! `Retry-After`. Each body is weighed (`vigie_protocol::weight`) before it is parsed.

use super::LogSink;
use crate::auth::job_access::JobAccess;
use crate::http::ingest_body::IngestBody;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prost::Message;
use serde_json::json;
use std::sync::atomic::Ordering;
use vigie_core::time::now_ns;
use vigie_protocol::logs::{jsonlines, loki, otlp, Parsed};
use vigie_protocol::query_value;
use vigie_protocol::weight::{json_elements, protobuf_elements};

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("protobuf"))
}

/// Stores what a body brought and counts it under `protocol` in `vigie_ingest_items_total`.
async fn store(
    state: &AppState,
    sink: &LogSink,
    protocol: &'static str,
    body: &IngestBody,
    parsed: &mut Parsed,
    project: vigie_core::ProjectId,
) -> Result<(), AppError> {
    body.check_records(parsed.records.len() + parsed.rejected, "log records")?;
    state
        .metrics
        .logs
        .rejected
        .fetch_add(parsed.rejected as u64, Ordering::Relaxed);
    let records = std::mem::take(&mut parsed.records);
    let count = records.len() as u64;
    sink.append(project, records).await?;
    state.metrics.ingested(protocol, "log", count);
    Ok(())
}

/// `POST /api/v1/logs`: JSON lines. `?source=NAME` (or `X-Vigie-Source`) names the source of
/// records that do not say theirs.
pub async fn json_lines(
    State(state): State<AppState>,
    State(sink): State<LogSink>,
    access: JobAccess,
    uri: axum::http::Uri,
    headers: HeaderMap,
    mut body: IngestBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    access.require_project("send logs")?;
    let source = uri
        .query()
        .and_then(|q| query_value(q, "source"))
        .or_else(|| {
            headers
                .get("x-vigie-source")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "app".into());
    // Counted before anything is parsed: a line is at most one record.
    let lines = body
        .bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count();
    body.check_records(lines, "lines")?;
    body.reserve_elements(json_elements(&body.bytes)).await?;
    let mut parsed = jsonlines::parse(&body.bytes, &source, now_ns());
    let count = parsed.records.len();
    let unparsed = parsed
        .records
        .iter()
        .filter(|r| r.flags & vigie_core::LogRecord::UNPARSED != 0)
        .count();
    store(
        &state,
        &sink,
        "jsonlines",
        &body,
        &mut parsed,
        access.project.id,
    )
    .await?;
    Ok(Json(json!({"accepted": count, "unparsed": unparsed})))
}

/// `POST /v1/logs`: OTLP/HTTP.
pub async fn otlp(
    State(state): State<AppState>,
    State(sink): State<LogSink>,
    access: JobAccess,
    headers: HeaderMap,
    mut body: IngestBody,
) -> Result<Response, ApiError> {
    access.require_project("send logs")?;
    let protobuf = is_protobuf(&headers);
    let parsed = if protobuf {
        body.reserve_elements(protobuf_elements(&body.bytes))
            .await?;
        otlp::parse_protobuf(&body.bytes, now_ns())
    } else {
        body.reserve_elements(json_elements(&body.bytes)).await?;
        otlp::parse_json(&body.bytes, now_ns())
    };
    let mut parsed = parsed.map_err(|e| AppError::BadRequest(e.to_string()))?;
    store(&state, &sink, "otlp", &body, &mut parsed, access.project.id).await?;
    Ok(if protobuf {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            otlp::response(&parsed).encode_to_vec(),
        )
            .into_response()
    } else {
        Json(otlp::response_json(&parsed)).into_response()
    })
}

/// `POST /loki/api/v1/push`.
pub async fn loki(
    State(state): State<AppState>,
    State(sink): State<LogSink>,
    access: JobAccess,
    headers: HeaderMap,
    mut body: IngestBody,
) -> Result<StatusCode, ApiError> {
    access.require_project("send logs")?;
    let parsed = if is_protobuf(&headers) {
        let raw = unsnap(&mut body).await?;
        body.reserve_elements(protobuf_elements(&raw)).await?;
        loki::parse_protobuf(&raw, now_ns())
    } else {
        body.reserve_elements(json_elements(&body.bytes)).await?;
        loki::parse_json(&body.bytes, now_ns())
    };
    let mut parsed = parsed.map_err(|e| AppError::BadRequest(e.to_string()))?;
    store(&state, &sink, "loki", &body, &mut parsed, access.project.id).await?;
    if let Some(why) = parsed.first_error {
        // Loki refuses malformed entries with 400; the well-formed ones are stored.
        return Err(AppError::BadRequest(format!(
            "{} refused: {why}",
            crate::web::format::count(parsed.rejected, "entry", "entries")
        ))
        .into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Inflates a Loki protobuf body (raw snappy), reserving what its header claims first and
/// refusing a claim past `limits.max_decompressed_mib` before allocating anything.
async fn unsnap(body: &mut IngestBody) -> Result<Vec<u8>, AppError> {
    let cap = body.max_decompressed();
    let refuse = |e: loki::UnsnapError| match e {
        loki::UnsnapError::TooLarge { claimed, cap } => AppError::PayloadTooLarge(format!(
            "the snappy body says it inflates to {claimed} bytes, over the {} MiB limit \
             (limits.max_decompressed_mib)",
            cap >> 20
        )),
        e @ loki::UnsnapError::Invalid(_) => AppError::BadRequest(e.to_string()),
    };
    let claimed = loki::unsnapped_len(&body.bytes).map_err(refuse)?;
    if claimed > cap {
        return Err(refuse(loki::UnsnapError::TooLarge { claimed, cap }));
    }
    body.reserve_bytes(claimed).await?;
    loki::unsnap(&body.bytes, cap).map_err(refuse)
}
