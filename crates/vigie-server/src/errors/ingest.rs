//! The Sentry ingest endpoints, as unchanged SDKs call them.
//!
//! ```text
//! POST /api/<project>/envelope/   envelopes (every current SDK)
//! POST /api/<project>/store/      one event as JSON (older SDKs)
//! OPTIONS on both                 CORS preflight for browser SDKs
//! ```
//!
//! Browser SDKs post `text/plain` from any origin, so every answer carries
//! `Access-Control-Allow-Origin: *` and exposes the rate-limit headers; the project key is
//! public by design (it is in the page) and only allows sending.

use super::process::{self, Context, Prepared};
use super::quota::{Refusal, Verdict};
use crate::http::AppError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use vigie_core::{Project, ProjectId, Timestamp};
use vigie_protocol::sentry::rate_limits;
use vigie_protocol::{find_project_key, Dsn, KeySources};
use vigie_store::errors::Dropped;

/// Bodies above this are processed on the blocking pool, not on a request thread.
const INLINE_BYTES: usize = 256 << 10;

/// `POST /api/<project>/envelope/`.
pub async fn envelope(
    State(state): State<AppState>,
    Path(project): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingest(&state, &project, &uri, &headers, body, Kind::Envelope)
        .await
        .unwrap_or_else(|err| err.to_json_response())
}

/// `POST /api/<project>/store/`.
pub async fn store(
    State(state): State<AppState>,
    Path(project): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingest(&state, &project, &uri, &headers, body, Kind::Store)
        .await
        .unwrap_or_else(|err| err.to_json_response())
}

/// `OPTIONS` on the ingest paths: what browsers ask before a cross-origin POST.
pub async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "content-type, content-encoding, x-sentry-auth, authorization, sentry-trace, baggage",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    response
}

/// Middleware around the whole application: every answer on an ingest path carries the CORS
/// headers — also the 413 the decompression layer gives before any handler runs, which a
/// browser SDK would otherwise see as a network error rather than a refusal.
pub async fn cors(req: Request, next: Next) -> Response {
    let ingest_path = is_ingest_path(req.uri().path());
    let mut response = next.run(req).await;
    if ingest_path {
        add_cors(&mut response);
    }
    response
}

/// `/api/<project>/envelope/` or `/api/<project>/store/`.
fn is_ingest_path(path: &str) -> bool {
    let mut parts = path.trim_end_matches('/').split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(""), Some("api"), Some(project), Some("envelope" | "store"), None)
            if !project.is_empty()
    )
}

fn add_cors(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-sentry-rate-limits, retry-after"),
    );
}

#[derive(Clone, Copy)]
enum Kind {
    Envelope,
    Store,
}

async fn ingest(
    state: &AppState,
    project: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Result<Response, AppError> {
    let project = authorize(state, project, uri, headers, &body, kind).await?;
    let settings = state
        .errors
        .settings(state.store.as_ref(), project.id)
        .await?;
    let project_limit = settings.events_per_minute;
    let received = Timestamp::now();
    let max_attachment_bytes = state.errors.max_attachment_bytes;
    let work = move || {
        let ctx = Context {
            project: project.id,
            settings: &settings,
            received,
            max_attachment_bytes,
        };
        match kind {
            Kind::Envelope => process::envelope(&body, &ctx),
            Kind::Store => process::store_body(&body, &ctx),
        }
    };
    let prepared = if matches!(kind, Kind::Envelope) && work_is_large(headers) {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
    } else {
        work()
    };
    let mut prepared = prepared.map_err(AppError::BadRequest)?;
    if let Some(why) = prepared.oversized {
        return Err(AppError::PayloadTooLarge(why));
    }

    let verdict = state.errors.quotas.check(
        project.id,
        project_limit,
        prepared.batch.events.len() as u64,
        prepared.batch.transactions.len() as u64,
        received,
    );
    let refused = apply(&mut prepared, &verdict, received);
    let accepted_something = !prepared.batch.events.is_empty()
        || !prepared.batch.transactions.is_empty()
        || !prepared.batch.sessions.is_empty()
        || !prepared.check_ins.is_empty()
        || !prepared.batch.attachments.is_empty()
        || !prepared.logs.is_empty();

    let logs = std::mem::take(&mut prepared.logs);
    state.logs.append(project.id, logs).await?;
    let Prepared {
        batch,
        id,
        problems,
        check_ins,
        ..
    } = prepared;
    state.errors.sink.write(batch).await?;
    for report in check_ins {
        crate::monitors::record(state, project.id, report).await?;
    }

    if !problems.is_empty() {
        return Err(AppError::BadRequest(format!(
            "the envelope is malformed (the valid items were stored): {}",
            problems.join("; ")
        )));
    }
    let limits = rate_limit_header(&verdict);
    if refused && !accepted_something {
        let mut response = AppError::TooManyRequests {
            retry_after: verdict.retry_after,
            message: format!(
                "{}; retry after {} s",
                refusal_words(&verdict),
                verdict.retry_after
            ),
        }
        .to_json_response();
        if let Some(value) = limits {
            response.headers_mut().insert("x-sentry-rate-limits", value);
        }
        return Ok(response);
    }
    let mut response = Json(match id {
        Some(id) => json!({ "id": id }),
        None => json!({}),
    })
    .into_response();
    if let Some(value) = limits {
        response.headers_mut().insert("x-sentry-rate-limits", value);
    }
    Ok(response)
}

/// Whether the (already inflated) body is big enough to parse off the request threads.
fn work_is_large(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_none_or(|len| len > INLINE_BYTES)
}

/// Checks the project in the path and the key presented; answers the project.
async fn authorize(
    state: &AppState,
    project: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    kind: Kind,
) -> Result<Project, AppError> {
    let not_found = || AppError::NotFound(format!("no project {project:?} on this server"));
    let id: i64 = project.parse().map_err(|_| not_found())?;
    let project = state
        .errors
        .project(state.store.as_ref(), ProjectId(id))
        .await?
        .ok_or_else(not_found)?;
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let key = find_project_key(KeySources {
        x_sentry_auth: header(header::HeaderName::from_static("x-sentry-auth")),
        authorization: header(header::AUTHORIZATION),
        query: uri.query(),
    })
    .or_else(|| match kind {
        Kind::Envelope => envelope_dsn_key(body),
        Kind::Store => None,
    });
    let Some(key) = key else {
        return Err(AppError::Other {
            status: StatusCode::UNAUTHORIZED,
            message: "missing project key: send X-Sentry-Auth with sentry_key, ?sentry_key=, \
                      or a DSN in the envelope header (the SDK does this from its DSN)"
                .into(),
        });
    };
    if !key.eq_ignore_ascii_case(project.public_key.as_str()) {
        return Err(AppError::Forbidden(format!(
            "this key does not belong to project {}: copy the DSN from Settings → Projects",
            project.id.0
        )));
    }
    Ok(project)
}

/// The public key of the DSN in the envelope's header line, if there is one.
fn envelope_dsn_key(body: &[u8]) -> Option<String> {
    let line = body.split(|b| *b == b'\n').next()?;
    let header: serde_json::Value = serde_json::from_slice(line).ok()?;
    Dsn::parse(header.get("dsn")?.as_str()?)
        .ok()
        .map(|d| d.public_key)
}

/// Moves refused events and transactions out of the batch into dropped counts; answers
/// whether anything was refused.
fn apply(prepared: &mut Prepared, verdict: &Verdict, at: Timestamp) -> bool {
    let batch = &mut prepared.batch;
    let mut refused = false;
    if let Some(why) = verdict.events {
        let n = std::mem::take(&mut batch.events).len();
        if n > 0 {
            refused = true;
            batch.dropped.push(dropped(why, "error", n, at));
        }
    }
    if let Some(why) = verdict.transactions {
        let n = std::mem::take(&mut batch.transactions).len();
        if n > 0 {
            refused = true;
            batch.dropped.push(dropped(why, "transaction", n, at));
        }
    }
    refused
}

fn dropped(why: Refusal, category: &str, n: usize, at: Timestamp) -> Dropped {
    Dropped {
        at,
        reason: why.reason().into(),
        category: category.into(),
        quantity: n as i64,
    }
}

/// `X-Sentry-Rate-Limits` naming each refused category and its scope.
fn rate_limit_header(verdict: &Verdict) -> Option<HeaderValue> {
    let mut parts = Vec::new();
    if let Some(why) = verdict.events {
        parts.push(rate_limits(
            verdict.retry_after,
            &["error", "default"],
            why.scope(),
        ));
    }
    if let Some(why) = verdict.transactions {
        parts.push(rate_limits(
            verdict.retry_after,
            &["transaction"],
            why.scope(),
        ));
    }
    (!parts.is_empty()).then(|| HeaderValue::from_str(&parts.join(", ")).expect("ASCII"))
}

fn refusal_words(verdict: &Verdict) -> &'static str {
    match verdict.events.or(verdict.transactions) {
        Some(Refusal::ServerQuota) => "the server's quota for this minute is used up",
        Some(Refusal::ProjectQuota) => "the project's quota for this minute is used up",
        Some(Refusal::SpikeProtection) => {
            "spike protection is holding back this project's events (far above its usual rate)"
        }
        None => "nothing was refused",
    }
}

#[cfg(test)]
mod tests {
    use super::is_ingest_path;

    #[test]
    fn ingest_paths_are_the_two_sentry_endpoints() {
        for path in ["/api/1/envelope/", "/api/7/store/", "/api/billing/envelope"] {
            assert!(is_ingest_path(path), "{path}");
        }
        for path in [
            "/api/v1/issues",
            "/api//envelope/",
            "/api/1/envelope/x",
            "/envelope/",
        ] {
            assert!(!is_ingest_path(path), "{path}");
        }
    }
}
