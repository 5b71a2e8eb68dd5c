//! Ping URLs, for scripts and crontab lines that have no SDK:
//!
//! ```text
//! /ping/<project key>/<slug>          the run ended well (or a heartbeat)
//! /ping/<project key>/<slug>/start    a run begins
//! /ping/<project key>/<slug>/fail     the run failed
//! /ping/<project key>/<slug>/<code>   the run ended with this exit code (0 = ok)
//! ```
//!
//! GET, POST or HEAD; a POST body (up to [`MAX_BODY`]) is kept as the run's output, so
//! `curl --data-binary @job.log` shows the end of the log on the run. `?rid=<id>` pairs a start
//! with its end when runs of one monitor overlap; `?env=` names the environment. The key is the
//! project's public key (the one in its DSN): it can only report check-ins. The first ping
//! creates the monitor; give it a schedule on its page or through the API to be told when a
//! run does not come.

use crate::http::AppError;
use crate::http::Table;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use vigie_core::monitor::RunStatus;
use vigie_core::Timestamp;
use vigie_store::CheckInReport;

/// Largest ping body: a log tail, not a log.
pub const MAX_BODY: usize = 100 << 10;

pub fn routes() -> Table<AppState> {
    let limit = DefaultBodyLimit::max(MAX_BODY);
    Table::new()
        .route(
            "/ping/{key}/{slug}",
            get(success).post(success).head(success).layer(limit),
        )
        .route(
            "/ping/{key}/{slug}/{signal}",
            get(signal).post(signal).head(signal).layer(limit),
        )
}

#[derive(Deserialize, Default)]
pub struct PingParams {
    rid: Option<String>,
    env: Option<String>,
}

async fn success(
    State(state): State<AppState>,
    Path((key, slug)): Path<(String, String)>,
    Query(params): Query<PingParams>,
    body: Bytes,
) -> Response {
    answer(ping(&state, &key, &slug, RunStatus::Ok, params, &body).await)
}

async fn signal(
    State(state): State<AppState>,
    Path((key, slug, signal)): Path<(String, String, String)>,
    Query(params): Query<PingParams>,
    body: Bytes,
) -> Response {
    let status = match signal.as_str() {
        "start" => RunStatus::InProgress,
        "fail" => RunStatus::Error,
        code => match code.parse::<u8>() {
            Ok(0) => RunStatus::Ok,
            Ok(_) => RunStatus::Error,
            Err(_) => {
                return answer(Err(AppError::NotFound(format!(
                    "/{signal} is not a ping: use /start, /fail or an exit code (0-255)"
                ))))
            }
        },
    };
    answer(ping(&state, &key, &slug, status, params, &body).await)
}

/// `OK` for scripts; a mistake as the API's JSON error, which says what is wrong.
fn answer(outcome: Result<(), AppError>) -> Response {
    match outcome {
        Ok(()) => "OK\n".into_response(),
        Err(err) => err.to_json_response(),
    }
}

async fn ping(
    state: &AppState,
    key: &str,
    slug: &str,
    status: RunStatus,
    params: PingParams,
    body: &[u8],
) -> Result<(), AppError> {
    let project = state.projects.with_key(&*state.store, key).await?;
    let project = project.ok_or_else(|| {
        AppError::NotFound("no project has this key: copy it from the project's DSN".into())
    })?;
    let output = (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned());
    let report = CheckInReport {
        slug: slug.to_string(),
        check_in_id: params.rid.filter(|r| !r.trim().is_empty()),
        status,
        duration_ms: None,
        environment: params.env.filter(|e| !e.trim().is_empty()),
        output,
        config: None,
        at: Timestamp::now(),
    };
    super::record(state, project.id, report).await?;
    Ok(())
}
