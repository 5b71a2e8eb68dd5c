//! Live streams for pages: Server-Sent Events, with the same URL answering JSON for polling.
//!
//! A stream sends the current state at once, then again whenever the hub reports a change and
//! at least every few seconds, and ends when the server shuts down. The browser side is
//! `assets/live.js` (`Vigie.live`), which falls back to polling the same URL with
//! `Accept: application/json` when EventSource cannot get through.

use crate::auth::ApiCaller;
use crate::http::{ApiError, AppError};
use crate::hub::Change;
use crate::state::AppState;
use crate::web::format::human_bytes;
use crate::web::sse::wants_event_stream;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;

/// How often a stream refreshes when nothing changed (uptime and sizes still move).
const REFRESH: Duration = Duration::from_secs(5);

/// What the dashboard and the system page show about this instance.
#[derive(Serialize, Clone, Debug)]
pub struct SystemStats {
    pub version: &'static str,
    pub backend: &'static str,
    pub projects: usize,
    pub users: usize,
    pub tokens: usize,
    pub database_bytes: u64,
    pub uptime_seconds: u64,
    pub write_queue_depth: usize,
}

impl SystemStats {
    pub async fn gather(state: &AppState) -> Result<SystemStats, AppError> {
        let store = &state.store;
        Ok(SystemStats {
            version: env!("CARGO_PKG_VERSION"),
            backend: store.backend().as_str(),
            projects: store.list_projects().await?.len(),
            users: store.count_users().await? as usize,
            tokens: store.list_api_tokens().await?.len(),
            database_bytes: store.database_size().await?,
            uptime_seconds: state.started.elapsed().as_secs(),
            write_queue_depth: store.write_queue_depth(),
        })
    }

    pub fn database_human(&self) -> String {
        human_bytes(self.database_bytes)
    }

    pub fn uptime_human(&self) -> String {
        let s = self.uptime_seconds;
        match s {
            0..=59 => format!("{s}s"),
            60..=3599 => format!("{}m {}s", s / 60, s % 60),
            3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
            _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
        }
    }
}

/// `GET /live/system`: instance statistics, as SSE or as one JSON answer.
pub async fn system(
    State(state): State<AppState>,
    _caller: ApiCaller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !wants_event_stream(&headers) {
        return Ok(Json(SystemStats::gather(&state).await?).into_response());
    }
    let changes = state.hub.subscribe();
    let stream = futures_util::stream::unfold(
        (state, changes, true),
        |(state, mut changes, first)| async move {
            if !first {
                let refresh = tokio::time::sleep(REFRESH);
                tokio::pin!(refresh);
                loop {
                    tokio::select! {
                        _ = state.hub.shutting_down() => return None,
                        // Job progress and events do not change these counts; the refresh
                        // shows the rest.
                        change = changes.recv() => match change {
                            Ok(Change::Job(_) | Change::Issues(_) | Change::Transactions(_) | Change::Celery(..)) => continue,
                            _ => break,
                        },
                        _ = &mut refresh => break,
                    }
                }
            }
            let event = match SystemStats::gather(&state).await {
                Ok(stats) => Event::default().json_data(&stats).unwrap_or_default(),
                Err(err) => Event::default().event("error").data(err.to_string()),
            };
            Some((Ok::<_, Infallible>(event), (state, changes, false)))
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
