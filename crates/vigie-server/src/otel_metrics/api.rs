//! Metrics as JSON: the project's metrics, and one metric as a chart.
//!
//! ```text
//! GET /api/v1/metrics                                        every metric, by name
//! GET /api/v1/metrics/{name}?filter=&group_by=&stat=&range=  a line per group (super::chart)
//! ```
//!
//! A metric the project does not have is 404; a filter, statistic or range that does not
//! parse, or a chart past `chart::MAX_CELLS`, is 422 naming the field.

use super::chart::{chart, Chart, ChartParams};
use crate::auth::job_access::ProjectReader;
use crate::http::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;
use vigie_core::Timestamp;
use vigie_store::metrics::MetricName;

#[derive(Serialize)]
pub struct MetricList {
    pub metrics: Vec<MetricName>,
}

/// `GET /api/v1/metrics`.
#[tracing::instrument(name = "metric_list", skip_all, fields(project = reader.project.id.0))]
pub async fn list(
    State(state): State<AppState>,
    reader: ProjectReader,
) -> Result<Json<MetricList>, ApiError> {
    let metrics = state.store.metric_names(reader.project.id).await?;
    Ok(Json(MetricList { metrics }))
}

/// The current minute since the epoch.
pub fn now_minute() -> i64 {
    Timestamp::now().millis().div_euclid(60_000)
}

/// `GET /api/v1/metrics/{name}`.
#[tracing::instrument(name = "metric_chart", skip_all, fields(project = reader.project.id.0))]
pub async fn metric(
    State(state): State<AppState>,
    reader: ProjectReader,
    Path(name): Path<String>,
    Query(params): Query<ChartParams>,
) -> Result<Json<Chart>, ApiError> {
    Ok(Json(
        chart(&state, reader.project.id, &name, &params, now_minute()).await?,
    ))
}
