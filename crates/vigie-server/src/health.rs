//! `/health` for load balancers and `/metrics` for Prometheus. Both open: they reveal no data,
//! and a load balancer or scraper should not need a token (bind Vigie to a private address, or
//! filter these paths at the proxy, to hide them).

use crate::metrics::Gauges;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// 200 with `"status": "ok"` when the database answers and takes writes; 503 with
/// `"degraded"` and the `reason` when it does not answer, or when writes were refused for lack
/// of space within the last `DISK_FULL_MEMORY` (it clears by itself once space returns).
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let ping = state.store.ping().await;
    let disk = state.metrics.storage.problem(std::time::Instant::now());
    let mut database = json!({
        "backend": state.store.backend().as_str(),
        "reachable": ping.is_ok(),
        "writable": ping.is_ok() && disk.is_none(),
    });
    let reason = match (&ping, disk) {
        (Err(err), _) => Some(err.to_string()),
        (Ok(()), disk) => disk,
    };
    if let Some(reason) = &reason {
        database["error"] = json!(reason);
    }
    let status = if reason.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if reason.is_none() { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
        "uptime_seconds": state.started.elapsed().as_secs(),
    });
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let gauges = Gauges {
        leads: state.instance.leads(),
        write_queue_depth: state.store.write_queue_depth(),
        database_size_bytes: state.store.database_size().await.ok(),
        uptime_seconds: state.started.elapsed().as_secs(),
        celery_workers: celery_workers(&state).await,
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
}

/// Each Celery worker of `celery.project` and whether it is online; none when Vigie reads no
/// broker.
async fn celery_workers(state: &AppState) -> Vec<(String, bool)> {
    if state.config.celery.brokers.trim().is_empty() {
        return Vec::new();
    }
    let Ok(projects) = state.store.list_projects().await else {
        return Vec::new();
    };
    let Some(project) = projects
        .iter()
        .find(|p| p.name == state.config.celery.project)
    else {
        return Vec::new();
    };
    let now = vigie_core::Timestamp::now();
    state
        .store
        .celery_workers(project.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|w| {
            let online = w.online(now);
            (w.hostname, online)
        })
        .collect()
}
