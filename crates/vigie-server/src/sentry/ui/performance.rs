//! The Performance pages: transactions per name with throughput, failure rate, percentiles
//! and Apdex (sortable), and one transaction with percentiles over time, samples, slow spans
//! and a sample's span waterfall.
//!
//! Figures come from `GET /api/v1/transactions` and its detail (`crate::sentry::api`), so the
//! page and the API always agree.

use crate::http::{AppError, PageError};
use crate::sentry::api::{period_of, step_for, TransactionView};
use crate::state::AppState;
use crate::web::chart::{self, Bar};
use crate::web::format::{encode, ms};
use crate::web::waterfall::{self, SpanBar, Timed};
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use vigie_core::{Project, Timestamp};
use vigie_protocol::sentry::event::seconds;
use vigie_store::errors::{SampleMeta, SpanStat, TransactionStats};

/// Periods offered.
const PERIODS: [(&str, &str); 4] = [
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
];

#[derive(Deserialize, Default)]
pub struct PerfQuery {
    period: Option<String>,
    sort: Option<String>,
    name: Option<String>,
    sample: Option<String>,
}

impl PerfQuery {
    fn period(&self) -> &str {
        self.period
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("24h")
    }
}

#[derive(Template)]
#[template(path = "sentry/performance.html")]
struct PerformancePage {
    chrome: Chrome,
    project: Project,
    rows: Vec<TransactionView>,
    /// Each row's count over the period in [`SPARK_BARS`] bars (the first [`SPARK_ROWS`] rows).
    sparks: Vec<Vec<crate::web::chart::Bar>>,
    period: String,
    sort: String,
    dsn: String,
    apdex_ms: i64,
}

/// Rows that get a small chart: each is one query, and the busiest endpoints are on top.
const SPARK_ROWS: usize = 50;
/// Bars in each row's sparkline.
const SPARK_BARS: usize = 24;

impl PerformancePage {
    fn spark(&self, row: &usize) -> &[crate::web::chart::Bar] {
        self.sparks.get(*row).map_or(&[], Vec::as_slice)
    }
    fn periods(&self) -> &'static [(&'static str, &'static str)] {
        &PERIODS
    }
    fn is_period(&self, key: &str) -> bool {
        self.period == key
    }
    fn sort_link(&self, key: &str) -> String {
        format!("/performance?period={}&sort={key}", self.period)
    }
    fn link(&self, row: &TransactionView) -> String {
        format!(
            "/performance/transaction?period={}&name={}",
            self.period,
            encode(&row.name)
        )
    }
    fn rate(&self, v: &f64) -> String {
        if *v >= 10.0 {
            format!("{v:.0}")
        } else if *v >= 0.1 {
            format!("{v:.1}")
        } else {
            format!("{v:.3}")
        }
    }
    fn pct(&self, v: &f64) -> String {
        format!("{:.1} %", v * 100.0)
    }
    fn apdex(&self, v: &Option<f64>) -> String {
        v.map(|a| format!("{a:.2}")).unwrap_or_else(|| "—".into())
    }
    fn apdex_class(&self, v: &Option<f64>) -> &'static str {
        match v {
            Some(a) if *a >= 0.94 => "ok",
            Some(a) if *a >= 0.7 => "warn",
            Some(_) => "error",
            None => "",
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    request: PageRequest,
    Query(query): Query<PerfQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "performance").await?;
    let project = chrome.project_or_404()?;
    let (since, until, minutes) = period_of(Some(query.period()))?;
    let stats = state
        .store
        .transactions(project.id, since, until, SPARK_BARS)
        .await?;
    let mut rows: Vec<(TransactionView, &[i64])> = stats
        .iter()
        .map(|t| (TransactionView::new(t, minutes), t.counts.as_slice()))
        .collect();
    let sort = query.sort.clone().unwrap_or_else(|| "count".into());
    let key = |v: &Option<f64>| v.unwrap_or(0.0);
    match sort.as_str() {
        "p95" => rows.sort_by(|(a, _), (b, _)| key(&b.p95_ms).total_cmp(&key(&a.p95_ms))),
        "p50" => rows.sort_by(|(a, _), (b, _)| key(&b.p50_ms).total_cmp(&key(&a.p50_ms))),
        "failures" => rows.sort_by(|(a, _), (b, _)| b.failure_rate.total_cmp(&a.failure_rate)),
        "apdex" => rows.sort_by(|(a, _), (b, _)| key(&a.apdex).total_cmp(&key(&b.apdex))),
        _ => rows.sort_by_key(|(r, _)| std::cmp::Reverse(r.count)),
    }
    let step = (until.millis() - since.millis()) / SPARK_BARS as i64;
    let sparks = rows
        .iter()
        .take(SPARK_ROWS)
        .map(|(_, counts)| {
            crate::web::chart::bars(counts, 96.0, 20.0, |i, n| {
                let at = Timestamp(since.millis() + step * i as i64);
                format!("{n} from {}", at.relative_to(Timestamp::now()))
            })
        })
        .collect();
    let rows = rows.into_iter().map(|(view, _)| view).collect();
    let page = PerformancePage {
        dsn: state.dsn(&project),
        apdex_ms: state.store.error_settings(project.id).await?.apdex_ms,
        project,
        rows,
        sparks,
        period: query.period().to_string(),
        sort,
        chrome,
    };
    render(&page, &page.chrome)
}

/// A polyline of one percentile over time, in a 0–1000 × 0–200 SVG box.
pub struct Line {
    /// `p50`, `p95` or `p99`: also its CSS class.
    pub label: &'static str,
    pub points: String,
}

#[derive(Template)]
#[template(path = "sentry/transaction.html")]
struct TransactionPage {
    chrome: Chrome,
    name: String,
    period: String,
    summary: Option<TransactionView>,
    lines: Vec<Line>,
    y_max: String,
    axis_start: String,
    axis_end: String,
    throughput: Vec<Bar>,
    samples: Vec<SampleMeta>,
    spans: Vec<SpanStat>,
    sample: Option<SampleMeta>,
    waterfall: Vec<SpanBar>,
    /// The error events of the sample's trace: what went wrong in this very request.
    errors: Vec<vigie_store::EventMeta>,
}

impl TransactionPage {
    fn periods(&self) -> &'static [(&'static str, &'static str)] {
        &PERIODS
    }
    fn is_period(&self, key: &str) -> bool {
        self.period == key
    }
    fn period_link(&self, p: &str) -> String {
        format!(
            "/performance/transaction?period={p}&name={}",
            encode(&self.name)
        )
    }
    fn sample_link(&self, s: &SampleMeta) -> String {
        format!(
            "/performance/transaction?period={}&name={}&sample={}",
            self.period,
            encode(&self.name),
            s.event_id
        )
    }
    fn is_sample(&self, s: &SampleMeta) -> bool {
        self.sample
            .as_ref()
            .is_some_and(|x| x.event_id == s.event_id)
    }
    fn dur(&self, v: &f64) -> String {
        ms(&Some(*v))
    }
    fn avg(&self, span: &SpanStat) -> String {
        ms(&Some(span.total_ms / span.count.max(1) as f64))
    }
    /// The trace search for this name, slowest first, over the page's period.
    fn slowest_traces(&self) -> String {
        format!(
            "/traces?order=slowest&q={}",
            encode(&format!("name:\"{}\" since:{}", self.name, self.period))
        )
    }
    fn logs_of_trace(&self, trace: &str) -> String {
        format!("/logs?range=&q={}", encode(&format!("trace:{trace}")))
    }
}

/// The percentiles over time as polylines in a 0–1000 × 0–200 box, their top value, and the
/// throughput as bars in a 0–1000 × 0–40 box (one per bucket, empty ones included).
fn chart(
    series: &[(Timestamp, TransactionStats)],
    since: Timestamp,
    until: Timestamp,
    step: i64,
) -> (Vec<Line>, f64, Vec<Bar>) {
    let span = (until.millis() - since.millis()).max(1) as f64;
    let x = |t: Timestamp| (t.millis() - since.millis()) as f64 / span * 1000.0;
    let y_max = series
        .iter()
        .filter_map(|(_, s)| s.sketch.quantile(0.99))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let lines = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")]
        .iter()
        .map(|(q, label)| Line {
            label,
            // A step per bucket: the value holds across the bucket it describes, so a
            // single bucket still draws a line.
            points: series
                .iter()
                .filter_map(|(t, s)| {
                    let y = 200.0 - s.sketch.quantile(*q)? / y_max * 200.0;
                    let end = Timestamp(t.millis() + step);
                    Some(format!("{:.1},{y:.1} {:.1},{y:.1}", x(*t), x(end)))
                })
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect();
    let buckets = ((until.millis() - since.millis()) / step.max(1)).max(1) as usize;
    let mut counts = vec![0i64; buckets];
    for (t, s) in series {
        if let Some(c) = counts.get_mut(((t.millis() - since.millis()) / step) as usize) {
            *c += s.count;
        }
    }
    let bars = chart::bars(&counts, 1000.0, 40.0, |i, n| {
        let at = Timestamp(since.millis() + i as i64 * step).to_rfc3339();
        format!(
            "{}: {n} transactions",
            at.get(..16).unwrap_or("").replace('T', " ")
        )
    });
    (lines, y_max, bars)
}

/// The spans of a stored transaction as waterfall bars, the transaction first.
fn waterfall(event: &Value) -> Vec<SpanBar> {
    let Some(start) = event.get("start_timestamp").and_then(seconds) else {
        return Vec::new();
    };
    let nanos = |t: f64| (t * 1e9) as i64;
    let end = event.get("timestamp").and_then(seconds).unwrap_or(start);
    fn text<'a>(v: &'a Value, k: &str) -> &'a str {
        v.get(k).and_then(Value::as_str).unwrap_or("")
    }
    let trace = event.pointer("/contexts/trace").unwrap_or(&Value::Null);
    let failed = |status: &str| !status.is_empty() && status != "ok";
    let mut timed = vec![Timed {
        id: text(trace, "span_id"),
        parent: "",
        start: nanos(start),
        end: nanos(end),
        op: text(trace, "op"),
        description: text(event, "transaction"),
        failed: failed(text(trace, "status")),
        colour: 0,
    }];
    for span in event
        .get("spans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(s_start) = span.get("start_timestamp").and_then(seconds) else {
            continue;
        };
        let s_end = span.get("timestamp").and_then(seconds).unwrap_or(s_start);
        timed.push(Timed {
            id: text(span, "span_id"),
            parent: text(span, "parent_span_id"),
            start: nanos(s_start),
            end: nanos(s_end),
            op: text(span, "op"),
            description: text(span, "description"),
            failed: failed(text(span, "status")),
            colour: 0,
        });
    }
    waterfall::bars(&timed)
}

/// The shortest period that holds all of a transaction's last 30 days: an endpoint first
/// seen ten minutes ago is drawn over the last hour, not as one bar at a day's right edge.
async fn fitting_period(
    state: &AppState,
    project: vigie_core::ProjectId,
    name: &str,
) -> Result<&'static str, AppError> {
    let now = Timestamp::now();
    let month = Timestamp(now.millis() - 30 * 86_400_000);
    // One bucket of the whole month: its first active minute.
    let first = state
        .store
        .transaction_series(project, name, month, now, now.millis() - month.millis())
        .await?
        .iter()
        .filter_map(|(_, t)| t.active.map(|(first, _)| first))
        .min();
    let age_ms = first.map_or(i64::MAX, |f| now.millis() - f.millis());
    Ok(match age_ms {
        a if a < 3_600_000 => "1h",
        a if a < 86_400_000 => "24h",
        a if a < 7 * 86_400_000 => "7d",
        _ => "30d",
    })
}

pub async fn transaction(
    State(state): State<AppState>,
    request: PageRequest,
    Query(query): Query<PerfQuery>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "performance").await?;
    let project = chrome.project_or_404()?;
    let name = query
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| AppError::NotFound("name a transaction: ?name=/invoices/{id}".into()))?;
    let mut query = query;
    if query.period.as_deref().is_none_or(str::is_empty) {
        query.period = Some(fitting_period(&state, project.id, &name).await?.into());
    }
    let (since, until, minutes) = period_of(Some(query.period()))?;
    let step = step_for(since, until);
    let store = &state.store;
    let series = store
        .transaction_series(project.id, &name, since, until, step)
        .await?;
    let whole = TransactionStats::sum(&name, series.iter().map(|(_, s)| s));
    let (lines, y_max, throughput) = chart(&series, since, until, step);
    let samples = store
        .transaction_samples(project.id, Some(&name), since, None, 20)
        .await?;
    let chosen = query
        .sample
        .clone()
        .or_else(|| samples.first().map(|s| s.event_id.clone()));
    let (sample, waterfall) = match chosen {
        Some(id) => match store.transaction_sample(project.id, &id).await? {
            Some((meta, body)) if meta.name == name => {
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                (Some(meta), waterfall(&json))
            }
            _ => (None, Vec::new()),
        },
        None => (None, Vec::new()),
    };
    let errors = match sample.as_ref().and_then(|s| s.trace_id.clone()) {
        Some(trace_id) => {
            store
                .events(&vigie_store::EventFilter {
                    project: project.id,
                    trace_id: Some(trace_id),
                    limit: 20,
                    ..Default::default()
                })
                .await?
        }
        None => Vec::new(),
    };
    let page = TransactionPage {
        errors,
        summary: (whole.count > 0).then(|| TransactionView::new(&whole, minutes)),
        spans: store
            .span_stats(project.id, &name, Timestamp(since.millis() - 3_600_000), 15)
            .await?,
        y_max: ms(&Some(y_max)),
        axis_start: since.to_rfc3339().get(..16).unwrap_or("").replace('T', " "),
        axis_end: until.to_rfc3339().get(..16).unwrap_or("").replace('T', " "),
        lines,
        throughput,
        samples,
        sample,
        waterfall,
        name,
        period: query.period().to_string(),
        chrome,
    };
    render(&page, &page.chrome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn waterfall_nests_spans_under_their_parents() {
        let event = json!({
            "transaction": "/x", "start_timestamp": 100.0, "timestamp": 101.0,
            "contexts": {"trace": {"span_id": "root", "op": "http.server", "status": "ok"}},
            "spans": [
                {"span_id": "b", "parent_span_id": "a", "op": "db", "description": "SELECT 1", "start_timestamp": 100.2, "timestamp": 100.3},
                {"span_id": "a", "parent_span_id": "root", "op": "template", "start_timestamp": 100.1, "timestamp": 100.6},
                {"span_id": "c", "parent_span_id": "elsewhere", "op": "http.client", "start_timestamp": 100.7, "timestamp": 100.9}
            ]
        });
        let bars = waterfall(&event);
        let shape: Vec<(&str, usize)> = bars.iter().map(|b| (b.op.as_str(), b.depth)).collect();
        assert_eq!(
            shape,
            [
                ("http.server", 0),
                ("template", 1),
                ("db", 2),
                ("http.client", 1)
            ]
        );
        assert!((bars[2].left - 20.0).abs() < 1e-6 && (bars[2].width - 10.0).abs() < 1e-6);
        assert_eq!(bars[1].duration, "500 ms");
        assert!(!bars[0].failed);
        assert_eq!(ms(&Some(1234.0)), "1.23 s");
        assert_eq!(ms(&None), "—");
    }
}
