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
use super::ErrorIngest;
use crate::http::ingest_body::{self, off_runtime_if};
use crate::http::AppError;
use crate::state::AppState;
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

/// `POST /api/<project>/envelope/`.
pub async fn envelope(
    State(state): State<AppState>,
    State(errors): State<ErrorIngest>,
    Path(project): Path<String>,
    request: Request,
) -> Response {
    ingest(&state, &errors, &project, request, Kind::Envelope)
        .await
        .unwrap_or_else(|err| err.to_json_response())
}

/// `POST /api/<project>/store/`.
pub async fn store(
    State(state): State<AppState>,
    State(errors): State<ErrorIngest>,
    Path(project): Path<String>,
    request: Request,
) -> Response {
    ingest(&state, &errors, &project, request, Kind::Store)
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
///
/// Sentry SDKs honour `Retry-After` only on 429 (the Python SDK) but `X-Sentry-Rate-Limits`
/// on any answer, so a 503 (overloaded) or 507 (disk full) with `Retry-After` also says it
/// that way: the SDK backs off instead of sending again at once.
pub async fn cors(req: Request, next: Next) -> Response {
    let ingest_path = is_ingest_path(req.uri().path());
    let mut response = next.run(req).await;
    if ingest_path {
        add_cors(&mut response);
        back_off_all_categories(&mut response);
    }
    response
}

fn back_off_all_categories(response: &mut Response) {
    let status = response.status();
    let refused =
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::INSUFFICIENT_STORAGE;
    let headers = response.headers_mut();
    if !refused || headers.contains_key("x-sentry-rate-limits") {
        return;
    }
    let Some(seconds) = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    // No categories: every kind of item; the scope only informs.
    let value = format!("{seconds}::organization");
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("x-sentry-rate-limits", value);
    }
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

impl Kind {
    /// The protocol's name in `vigie_ingest_items_total`.
    fn protocol(self) -> &'static str {
        match self {
            Kind::Envelope => "sentry_envelope",
            Kind::Store => "sentry_store",
        }
    }
}

/// The largest envelope header line read to find a DSN before the sender is known.
const MAX_HEADER_LINE: usize = 64 << 10;

async fn ingest(
    state: &AppState,
    errors: &ErrorIngest,
    project: &str,
    request: Request,
    kind: Kind,
) -> Result<Response, AppError> {
    let headers = request.headers().clone();
    let headers = &headers;
    // The key from the headers or the query when there is one: then nothing of the body is
    // read before the sender is known. Browser SDKs behind a tunnel put it only in the
    // envelope's header line; that line alone is read (and inflated) to find it.
    let project = project_of(state, errors, project).await?;
    let key = header_key(request.uri(), headers);
    let raw = match key {
        Some(key) => {
            check_key(&project, &key)?;
            ingest_body::read_raw(request, state.ingest.clone()).await?
        }
        None if matches!(kind, Kind::Store) => return Err(missing_key()),
        None => {
            let raw = ingest_body::read_raw(request, state.ingest.clone()).await?;
            let key = envelope_dsn_key(&raw.first_line(MAX_HEADER_LINE)?);
            check_key(&project, &key.ok_or_else(missing_key)?)?;
            raw
        }
    };
    let mut held = raw.inflate().await?;
    // Events are parsed one item at a time, each at most MAX_EVENT_BYTES, into JSON values:
    // the weight of the whole body bounds what the batch holds. `held` keeps the memory
    // reserved until the answer is made.
    held.reserve_elements(vigie_protocol::weight::json_elements(&held.bytes))
        .await?;
    let body = held.bytes.clone();
    let large = body.len() > ingest_body::INLINE_BYTES;
    let settings = errors.settings(state.store.as_ref(), project.id).await?;
    let project_limit = settings.events_per_minute;
    let received = Timestamp::now();
    let max_attachment_bytes = errors.max_attachment_bytes;
    let maps = errors
        .maps
        .for_body(
            state.store.as_ref(),
            project.id,
            &body,
            matches!(kind, Kind::Envelope),
        )
        .await?;
    let metrics = state.metrics.clone();
    let work = move || {
        let ctx = Context {
            project: project.id,
            settings: &settings,
            received,
            max_attachment_bytes,
            js: process::JsFrames {
                maps: maps.wanted.then_some(&maps as _),
                ..Default::default()
            },
        };
        let prepared = match kind {
            Kind::Envelope => process::envelope(&body, &ctx),
            Kind::Store => process::store_body(&body, &ctx),
        };
        metrics.sourcemap_frames(ctx.js.outcome());
        prepared
    };
    let prepared = off_runtime_if(matches!(kind, Kind::Envelope) && large, work).await?;
    let mut prepared = prepared.map_err(AppError::BadRequest)?;
    if let Some(why) = prepared.oversized {
        return Err(AppError::PayloadTooLarge(why));
    }
    held.check_records(prepared.logs.len(), "log records")?;

    let verdict = errors.quotas.check(
        project.id,
        project_limit,
        prepared.batch.events.len() as u64,
        prepared.batch.transactions.len() as u64,
        received,
    );
    let refused = apply(&mut prepared, &verdict, received);
    // What Vigie itself did not keep goes to `/metrics`; with what the SDK reports it dropped,
    // to the project's dropped counts (the Issues page).
    for d in &prepared.batch.dropped {
        state
            .metrics
            .sentry_dropped(&d.category, &d.reason, d.quantity as u64);
    }
    let reported = std::mem::take(&mut prepared.reported);
    prepared.batch.dropped.extend(reported);
    let accepted_something = !prepared.batch.events.is_empty()
        || !prepared.batch.transactions.is_empty()
        || !prepared.batch.loose_spans.is_empty()
        || !prepared.batch.feedback.is_empty()
        || !prepared.batch.sessions.is_empty()
        || !prepared.check_ins.is_empty()
        || !prepared.batch.attachments.is_empty()
        || !prepared.logs.is_empty();

    let logs = std::mem::take(&mut prepared.logs);
    let log_count = logs.len() as u64;
    errors.logs.append(project.id, logs).await?;
    let protocol = kind.protocol();
    state.metrics.ingested(protocol, "log", log_count);
    let Prepared {
        batch,
        id,
        problems,
        check_ins,
        ..
    } = prepared;
    let stored = [
        ("event", batch.events.len()),
        ("transaction", batch.transactions.len()),
        ("span", batch.loose_spans.len()),
        ("feedback", batch.feedback.len()),
        ("session", batch.sessions.len()),
        ("attachment", batch.attachments.len()),
    ];
    errors.sink.write(batch).await?;
    for (what, n) in stored {
        state.metrics.ingested(protocol, what, n as u64);
    }
    let check_in_count = check_ins.len() as u64;
    for report in check_ins {
        crate::monitors::record(state, project.id, report).await?;
    }
    state.metrics.ingested(protocol, "check_in", check_in_count);

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

/// The project named in the path (404 when there is none).
async fn project_of(
    state: &AppState,
    errors: &ErrorIngest,
    project: &str,
) -> Result<Project, AppError> {
    let not_found = || AppError::NotFound(format!("no project {project:?} on this server"));
    let id: i64 = project.parse().map_err(|_| not_found())?;
    errors
        .project(state.store.as_ref(), ProjectId(id))
        .await?
        .ok_or_else(not_found)
}

/// The key in `X-Sentry-Auth`, `Authorization` or `?sentry_key=`.
fn header_key(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    find_project_key(KeySources {
        x_sentry_auth: header(header::HeaderName::from_static("x-sentry-auth")),
        authorization: header(header::AUTHORIZATION),
        query: uri.query(),
    })
}

fn missing_key() -> AppError {
    AppError::Other {
        status: StatusCode::UNAUTHORIZED,
        message: "missing project key: send X-Sentry-Auth with sentry_key, ?sentry_key=, \
                  or a DSN in the envelope header (the SDK does this from its DSN)"
            .into(),
    }
}

/// Refuses a key that is not the project's.
fn check_key(project: &Project, key: &str) -> Result<(), AppError> {
    if !key.eq_ignore_ascii_case(project.public_key.as_str()) {
        return Err(AppError::Forbidden(format!(
            "this key does not belong to project {}: copy the DSN from Settings → Projects",
            project.id.0
        )));
    }
    Ok(())
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
pub(crate) fn apply(prepared: &mut Prepared, verdict: &Verdict, at: Timestamp) -> bool {
    let batch = &mut prepared.batch;
    let mut refused = false;
    if let Some(why) = verdict.events {
        let n = std::mem::take(&mut batch.events).len();
        if n > 0 {
            refused = true;
            batch
                .dropped
                .push(Dropped::new(at, why.reason(), "error", n));
        }
    }
    if let Some(why) = verdict.transactions {
        let n = std::mem::take(&mut batch.transactions).len();
        if n > 0 {
            refused = true;
            batch
                .dropped
                .push(Dropped::new(at, why.reason(), "transaction", n));
        }
        // Streamed spans are performance data too (the SDKs' `span` category), and so are
        // the spans of the trace store that came with the refused transactions.
        let n =
            std::mem::take(&mut batch.loose_spans).len() + std::mem::take(&mut batch.spans).len();
        if n > 0 {
            refused = true;
            batch
                .dropped
                .push(Dropped::new(at, why.reason(), "span", n));
        }
    }
    refused
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
            &["transaction", "span"],
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
