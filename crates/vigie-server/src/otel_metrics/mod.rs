//! Application metrics in the server: OpenTelemetry meters in over OTLP/HTTP, read back as
//! charts, watched by alert rules.
//!
//! ```text
//! POST /v1/metrics (OTLP, protobuf or JSON) ─▶ ingest ─▶ MetricStore::write_metrics (durable) ─▶ 2xx
//!                                                        partial_success for refused points
//! GET  /api/v1/metrics[/{name}]             ─▶ api ─┐
//! GET  /charts?metric=                      ─▶ ui  ─┼─▶ chart ─▶ series, minutes ─▶ lines
//! alert rule "metric_threshold"             ───────┘   (crate::alerts::thresholds)
//! ```
//!
//! - [`ingest`]: the OTLP endpoint, called with the project key like `/v1/traces`.
//! - [`chart`]: a metric filtered, grouped and reduced to a figure per step.
//! - [`api`], [`ui`]: the same as JSON and as the Metrics page.
//!
//! The page lives at `/charts` because `/metrics` is Vigie's own Prometheus exposition, where
//! scrapers expect it. Minutes are kept for `metrics.retention` (see `crate::schedule`).

pub mod api;
pub mod chart;
pub mod ingest;
pub mod ui;

/// Metric ingest (OTLP/HTTP, with the project key), the chart API and the Metrics page.
pub fn routes<S>() -> crate::http::Routes<S>
where
    S: Clone + Send + Sync + 'static,
    crate::state::AppState: axum::extract::FromRef<S>,
    crate::http::ingest_body::IngestBudget: axum::extract::FromRef<S>,
{
    use crate::http::Table;
    use axum::routing::{get, post};
    crate::http::Routes {
        pages: Table::new().route("/charts", get(ui::charts)).route(
            "/live/charts",
            get(crate::web::sse::project_pulse::<ui::ChartsPulse>),
        ),
        api: Table::new()
            .route("/api/v1/metrics", get(api::list))
            .route("/api/v1/metrics/{name}", get(api::metric)),
        ingest: Table::new().route("/v1/metrics", post(ingest::otlp)),
    }
}

/// Drops metric minutes older than `metrics.retention` (run hourly by `crate::schedule`).
pub async fn retention(state: &crate::state::AppState) -> Result<String, vigie_store::StoreError> {
    let Ok(Some(keep)) = state.config.metric_retention() else {
        return Ok("kept forever (metrics.retention = 0)".into());
    };
    use vigie_core::Timestamp;
    let before =
        Timestamp(Timestamp::now().millis() - keep.as_millis().min(i64::MAX as u128) as i64);
    let minutes = state.store.prune_metrics(before).await?;
    if minutes > 0 {
        tracing::info!(minutes, "old metric minutes dropped by retention");
    }
    Ok(format!("metric minutes dropped: {minutes}"))
}
