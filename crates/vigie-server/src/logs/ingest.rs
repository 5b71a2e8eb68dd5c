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
//! admin API token with `?project=`. Bodies may be gzip, deflate, br or zstd compressed; past
//! the configured limits they get 413.

use crate::auth::job_access::JobAccess;
use crate::http::{ApiError, AppError};
use crate::state::AppState;
use axum::body::Bytes;
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

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("protobuf"))
}

async fn store(state: &AppState, access: &JobAccess, parsed: &mut Parsed) -> Result<(), AppError> {
    access.require_project("send logs")?;
    state
        .metrics
        .logs
        .rejected
        .fetch_add(parsed.rejected as u64, Ordering::Relaxed);
    let records = std::mem::take(&mut parsed.records);
    state.logs.append(access.project.id, records).await
}

/// `POST /api/v1/logs`: JSON lines. `?source=NAME` (or `X-Vigie-Source`) names the source of
/// records that do not say theirs.
pub async fn json_lines(
    State(state): State<AppState>,
    access: JobAccess,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let mut parsed = jsonlines::parse(&body, &source, now_ns());
    let count = parsed.records.len();
    let unparsed = parsed
        .records
        .iter()
        .filter(|r| r.flags & vigie_core::LogRecord::UNPARSED != 0)
        .count();
    store(&state, &access, &mut parsed).await?;
    Ok(Json(json!({"accepted": count, "unparsed": unparsed})))
}

/// `POST /v1/logs`: OTLP/HTTP.
pub async fn otlp(
    State(state): State<AppState>,
    access: JobAccess,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let protobuf = is_protobuf(&headers);
    let parsed = if protobuf {
        otlp::parse_protobuf(&body, now_ns())
    } else {
        otlp::parse_json(&body, now_ns())
    };
    let mut parsed = parsed.map_err(|e| AppError::BadRequest(e.to_string()))?;
    store(&state, &access, &mut parsed).await?;
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
    access: JobAccess,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let parsed = if is_protobuf(&headers) {
        loki::parse_protobuf(&body, now_ns())
    } else {
        loki::parse_json(&body, now_ns())
    };
    let mut parsed = parsed.map_err(|e| AppError::BadRequest(e.to_string()))?;
    store(&state, &access, &mut parsed).await?;
    if let Some(why) = parsed.first_error {
        // Loki refuses malformed entries with 400; the well-formed ones are stored.
        return Err(
            AppError::BadRequest(format!("{} entries refused: {why}", parsed.rejected)).into(),
        );
    }
    Ok(StatusCode::NO_CONTENT)
}
