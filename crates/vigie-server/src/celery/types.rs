//! Figures per task type: the Task types page and `GET /api/v1/celery/types`.
//!
//! ```text
//! ?period=1h|24h|7d|30d (&name=) ─► Store::celery_runs (the tasks that moved in the range, at
//!   most MAX_TASKS) ─► vigie_core::celery::types::figures ─► a table (one row per type) and
//!   the throughput of all types, or of the one named, as bars
//! ```

use crate::auth::job_access::ProjectReader;
use crate::http::{ApiError, AppError, PageError};
use crate::state::AppState;
use crate::web::chart::{self, Bar};
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use vigie_core::celery::types::{figures, Range, TypeFigures};
use vigie_core::{Project, ProjectId, Timestamp};

/// The most tasks a range reads; beyond, the figures are of the latest ones (and say so).
pub const MAX_TASKS: u32 = 200_000;

/// The periods offered, with their bar count.
const PERIODS: [(&str, i64, usize); 4] = [
    ("1h", 3_600_000, 60),
    ("24h", 86_400_000, 48),
    ("7d", 7 * 86_400_000, 56),
    ("30d", 30 * 86_400_000, 60),
];

#[derive(Deserialize, Default)]
pub struct TypesParams {
    period: Option<String>,
    name: Option<String>,
}

/// The range a period names, ending now.
fn range_of(period: Option<&str>) -> Result<(&'static str, Range), AppError> {
    let asked = period.filter(|p| !p.is_empty()).unwrap_or("24h");
    let (name, span, buckets) = PERIODS
        .iter()
        .find(|(name, ..)| *name == asked)
        .ok_or_else(|| AppError::Invalid {
            field: "period".into(),
            message: format!("{asked:?} is not one of 1h, 24h, 7d, 30d"),
        })?;
    let until = Timestamp::now();
    Ok((
        name,
        Range {
            since: Timestamp(until.millis() - span),
            until,
            buckets: *buckets,
        },
    ))
}

/// The figures of a project over a range: per type, all together, and whether the range
/// held more tasks than were read.
async fn read(
    state: &AppState,
    project: ProjectId,
    range: Range,
) -> Result<(Vec<TypeFigures>, TypeFigures, bool), AppError> {
    let tasks = state
        .store
        .celery_runs(project, range.since, range.until, MAX_TASKS)
        .await?;
    let capped = tasks.len() as u32 >= MAX_TASKS;
    let (types, all) = figures(&tasks, range);
    Ok((types, all, capped))
}

/// Milliseconds as people read them, `—` when there are none.
fn ms(value: Option<f64>) -> String {
    match value {
        None => "—".into(),
        Some(ms) if ms < 1_000.0 => format!("{ms:.0} ms"),
        Some(ms) if ms < 120_000.0 => format!("{:.1} s", ms / 1000.0),
        Some(ms) => format!("{:.1} min", ms / 60_000.0),
    }
}

fn figures_json(f: &TypeFigures) -> Value {
    let q = |s: &vigie_core::sketch::Sketch, p| s.quantile(p);
    json!({
        "name": f.name,
        "runs": f.runs,
        "succeeded": f.succeeded,
        "failed": f.failed,
        "revoked": f.revoked,
        "retries": f.retries,
        "failure_rate": f.failure_rate(),
        "runtime_ms": {"p50": q(&f.runtime, 0.5), "p95": q(&f.runtime, 0.95), "p99": q(&f.runtime, 0.99)},
        "wait_ms": {"p50": q(&f.wait, 0.5), "p95": q(&f.wait, 0.95)},
        "throughput": f.throughput.iter().map(|(done, failed)| json!([done, failed])).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/celery/types?period=`: figures per task type.
pub async fn api(
    State(state): State<AppState>,
    reader: ProjectReader,
    Query(p): Query<TypesParams>,
) -> Result<Json<Value>, ApiError> {
    let (period, range) = range_of(p.period.as_deref())?;
    let (types, all, capped) = read(&state, reader.project.id, range).await?;
    Ok(Json(json!({
        "period": period,
        "since": range.since,
        "until": range.until,
        "buckets": range.buckets,
        "capped": capped,
        "all": figures_json(&all),
        "types": types.iter().map(figures_json).collect::<Vec<_>>(),
    })))
}

#[derive(Template)]
#[template(path = "celery/types.html")]
struct TypesPage {
    chrome: Chrome,
    project: Project,
    period: &'static str,
    periods: Vec<&'static str>,
    types: Vec<TypeFigures>,
    /// The figures the chart draws: all types, or the one named.
    shown: TypeFigures,
    /// The type named (`?name=`), when it is one.
    named: Option<String>,
    done_bars: Vec<Bar>,
    failed_bars: Vec<Bar>,
    y_max: u64,
    axis_start: String,
    axis_end: String,
    capped: bool,
}

impl TypesPage {
    fn ms(&self, value: Option<f64>) -> String {
        ms(value)
    }

    fn percent(&self, share: Option<f64>) -> String {
        share.map_or("—".into(), |s| format!("{:.1} %", s * 100.0))
    }

    fn is_period(&self, p: &str) -> bool {
        p == self.period
    }

    fn is_named(&self, name: &str) -> bool {
        self.named.as_deref() == Some(name)
    }

    fn max_tasks(&self) -> String {
        crate::web::format::thousands(i64::from(MAX_TASKS))
    }
}

/// `GET /celery/types`.
pub async fn page(
    State(state): State<AppState>,
    request: PageRequest,
    Query(p): Query<TypesParams>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "celery").await?;
    let project = chrome.project_or_404()?;
    let (period, range) = range_of(p.period.as_deref())?;
    let (types, all, capped) = read(&state, project.id, range).await?;
    let named = p.name.filter(|n| types.iter().any(|t| &t.name == n));
    let shown = named
        .as_ref()
        .and_then(|n| types.iter().find(|t| &t.name == n).cloned())
        .unwrap_or(all);
    let done: Vec<i64> = shown.throughput.iter().map(|b| b.0 as i64).collect();
    let failed: Vec<i64> = shown.throughput.iter().map(|b| b.1 as i64).collect();
    let y_max = done.iter().copied().max().unwrap_or(0);
    let when = |i: usize| range.start_of(i).to_rfc3339()[..16].replace('T', " ");
    let done_bars = chart::bars(&done, 1000.0, 100.0, |i, n| {
        format!("{} — {n} finished, {} failed", when(i), failed[i])
    });
    let failed_bars = chart::bars_up_to(&failed, y_max, 1000.0, 100.0, |i, n| {
        format!("{} — {n} failed", when(i))
    });
    let page = TypesPage {
        period,
        periods: PERIODS.iter().map(|(name, ..)| *name).collect(),
        types,
        shown,
        named,
        done_bars,
        failed_bars,
        y_max: y_max as u64,
        axis_start: range.since.to_rfc3339()[..16].replace('T', " "),
        axis_end: range.until.to_rfc3339()[..16].replace('T', " "),
        capped,
        project,
        chrome,
    };
    render(&page, &page.chrome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_durations_read_as_people_say_them() {
        let (name, range) = range_of(None).unwrap();
        assert_eq!((name, range.buckets), ("24h", 48));
        assert_eq!(range.until.millis() - range.since.millis(), 86_400_000);
        assert!(matches!(
            range_of(Some("2w")),
            Err(AppError::Invalid { .. })
        ));
        assert_eq!(ms(Some(12.4)), "12 ms");
        assert_eq!(ms(Some(2_345.0)), "2.3 s");
        assert_eq!(ms(Some(600_000.0)), "10.0 min");
        assert_eq!(ms(None), "—");
    }
}
