//! The Metrics page: the project's metrics, one of them charted as lines per group.
//!
//! ```text
//! GET /charts?metric=&filter=&group_by=&stat=&range=
//!   ─▶ MetricStore::metric_names (the list) ─▶ chart::chart (the picked metric, or the first)
//!   ─▶ lines drawn as SVG polylines, a legend with each line's figure over the range
//!   ─▶ otel_metrics/charts.html, re-read when new points arrive (`/live/charts`)
//! ```

use super::api::now_minute;
use super::chart::{chart, Chart, ChartParams, DEFAULT_RANGE};
use crate::http::{AppError, PageError};
use crate::state::AppState;
use crate::web::format::encode;
use crate::web::sse::ProjectPulse;
use crate::web::{render, Chrome, PageRequest};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use vigie_core::metric::Stat;
use vigie_core::{ProjectId, Timestamp};
use vigie_store::metrics::MetricName;

/// The chart's drawing box, in SVG units.
const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 220.0;
/// Colours lines take in turn (`colour-0` … in the stylesheet).
const COLOURS: usize = 6;
/// The ranges offered as buttons.
const RANGES: [&str; 6] = ["15m", "1h", "6h", "24h", "7d", "30d"];

#[derive(Deserialize, Default)]
pub struct PageParams {
    #[serde(default)]
    metric: String,
    #[serde(flatten)]
    chart: ChartParams,
}

/// A line as drawn: its runs of consecutive points (a gap where nothing was reported) and
/// the points that stand alone.
struct Line {
    label: String,
    colour: usize,
    series: usize,
    runs: Vec<String>,
    dots: Vec<(f64, f64)>,
    whole: String,
    last: String,
}

#[derive(Template)]
#[template(path = "otel_metrics/charts.html")]
struct ChartsPage {
    chrome: Chrome,
    project: ProjectId,
    metrics: Vec<MetricName>,
    picked: String,
    params: ChartParams,
    chart: Option<Chart>,
    lines: Vec<Line>,
    /// The y axis' top, middle and bottom, as labels.
    top: String,
    middle: String,
    bottom: String,
    /// The first and last step's times.
    starts: Timestamp,
    ends: Timestamp,
    problem: Option<String>,
    /// Attribute keys the metric's series have, for "group by".
    keys: Vec<String>,
}

impl ChartsPage {
    fn link(&self, metric: &str, range: &str) -> String {
        let range = if range.is_empty() {
            self.range()
        } else {
            range
        };
        format!(
            "/charts?metric={}&filter={}&group_by={}&stat={}&range={}",
            encode(metric),
            encode(&self.params.filter),
            encode(&self.params.group_by),
            encode(&self.params.stat),
            encode(range)
        )
    }

    fn range(&self) -> &str {
        if self.params.range.is_empty() {
            DEFAULT_RANGE
        } else {
            &self.params.range
        }
    }

    fn is_range(&self, range: &str) -> bool {
        range == self.range()
    }

    fn is_group(&self, key: &str) -> bool {
        key == self.params.group_by
    }

    fn is_stat(&self, stat: &str) -> bool {
        stat == self.chosen_stat()
    }

    fn ranges(&self) -> [&'static str; 6] {
        RANGES
    }

    fn stats(&self) -> Vec<&'static str> {
        Stat::ALL.iter().map(|s| s.as_str()).collect()
    }

    fn chosen_stat(&self) -> &str {
        match &self.chart {
            Some(c) => c.stat.as_str(),
            None => &self.params.stat,
        }
    }

    fn step_words(&self) -> String {
        self.chart
            .as_ref()
            .map(|c| vigie_core::alert::span_words(c.step_s as u64))
            .unwrap_or_default()
    }

    fn width(&self) -> f64 {
        WIDTH
    }

    fn height(&self) -> f64 {
        HEIGHT
    }
}

/// A figure for people: thousands separated, at most three decimals, with its unit.
pub fn figure(value: Option<f64>, unit: &str, stat: Stat) -> String {
    let Some(v) = value else {
        return "—".into();
    };
    let magnitude = v.abs();
    let digits = if magnitude >= 1000.0 {
        crate::web::format::thousands(magnitude.round() as u64)
    } else if magnitude == magnitude.trunc() {
        format!("{magnitude:.0}")
    } else {
        let text = format!("{magnitude:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let number = if v < 0.0 && digits != "0" {
        format!("-{digits}")
    } else {
        digits
    };
    let unit = match unit {
        "" | "1" => "",
        u => u,
    };
    let per = if stat == Stat::Rate { "/s" } else { "" };
    match (unit, stat) {
        (_, Stat::Count) => number,
        ("", _) => format!("{number}{per}"),
        (u, _) => format!("{number} {u}{per}"),
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `v` (an axis' top).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|n| *n >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * power)
}

/// Room left at each end of the x axis, so a point at the edge is drawn whole.
const X_PAD: f64 = 6.0;

/// The lines of `chart` in a `WIDTH` × `HEIGHT` box, with the y axis' bounds (zero, or the
/// lowest value when below it; a round number above the highest).
fn draw(chart: &Chart) -> (Vec<Line>, f64, f64) {
    let values = chart.groups.iter().flat_map(|g| g.values.iter().flatten());
    let (low, high) = values.fold((0f64, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let low = if low < 0.0 { -nice_ceiling(-low) } else { 0.0 };
    let high = if high > 0.0 {
        nice_ceiling(high)
    } else {
        low + 1.0
    };
    let lines = chart
        .groups
        .iter()
        .enumerate()
        .map(|(n, group)| {
            let crate::web::chart::LinePath { runs, dots } =
                crate::web::chart::line(&group.values, WIDTH, HEIGHT, X_PAD, (low, high));
            Line {
                label: group.label.clone(),
                colour: n % COLOURS,
                series: group.series,
                runs,
                dots,
                whole: figure(group.whole, &chart.unit, chart.stat),
                last: figure(
                    group.values.iter().rev().flatten().next().copied(),
                    &chart.unit,
                    chart.stat,
                ),
            }
        })
        .collect();
    (lines, low, high)
}

/// `GET /charts`: the Metrics page.
#[tracing::instrument(name = "page", skip_all, fields(route = "/charts"))]
pub async fn charts(
    State(state): State<AppState>,
    request: PageRequest,
    Query(params): Query<PageParams>,
) -> Result<Response, PageError> {
    let chrome = request.chrome(&state, "metrics").await?;
    let project = chrome.project_or_404()?;
    let metrics = state.store.metric_names(project.id).await?;
    let picked = if params.metric.is_empty() {
        metrics.first().map(|m| m.name.clone()).unwrap_or_default()
    } else {
        params.metric.clone()
    };
    let mut problem = None;
    let mut chart_read = None;
    let mut keys = Vec::new();
    if !picked.is_empty() {
        match chart(&state, project.id, &picked, &params.chart, now_minute()).await {
            Ok(c) => chart_read = Some(c),
            Err(AppError::Invalid { message, .. }) | Err(AppError::NotFound(message)) => {
                problem = Some(message)
            }
            Err(err) => return Err(err.into()),
        }
        let mut seen: std::collections::BTreeSet<String> = state
            .store
            .metric_series(project.id, &picked)
            .await?
            .into_iter()
            .flat_map(|s| s.attributes.into_iter().map(|(k, _)| k))
            .collect();
        seen.insert("service.name".into());
        keys = seen.into_iter().collect();
    }
    let (lines, low, high) = chart_read.as_ref().map_or((Vec::new(), 0.0, 1.0), draw);
    let (unit, stat) = chart_read
        .as_ref()
        .map_or(("", Stat::Avg), |c| (c.unit.as_str(), c.stat));
    let (starts, ends) = chart_read
        .as_ref()
        .map_or((Timestamp::now(), Timestamp::now()), |c| {
            let steps = c.groups.first().map_or(1, |g| g.values.len()) as i64;
            (
                Timestamp(c.from),
                Timestamp(c.from + (steps - 1).max(0) * c.step_s * 1000),
            )
        });
    let page = ChartsPage {
        project: project.id,
        metrics,
        picked,
        params: params.chart,
        top: figure(Some(high), unit, stat),
        middle: figure(Some((high + low) / 2.0), unit, stat),
        bottom: figure(Some(low), unit, stat),
        lines,
        chart: chart_read,
        starts,
        ends,
        problem,
        keys,
        chrome,
    };
    render(&page, &page.chrome)
}

/// The Metrics page's pulse: the metrics and when one last received a point, read every
/// few seconds (points arrive without a hub change).
#[derive(Serialize)]
pub struct ChartsPulse(usize, i64);

impl ProjectPulse for ChartsPulse {
    const EVERY: Option<Duration> = Some(Duration::from_secs(10));

    fn concerns(_: &crate::hub::Change, _: ProjectId) -> bool {
        false
    }

    async fn read(state: &AppState, project: ProjectId) -> Result<Self, AppError> {
        let names = state.store.metric_names(project).await?;
        let last = names
            .iter()
            .map(|m| m.last_seen.millis())
            .max()
            .unwrap_or(0);
        Ok(ChartsPulse(names.len(), last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(162.0), 200.0);
        assert_eq!(nice_ceiling(150.0), 200.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(0.042), 0.05);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }

    #[test]
    fn figures_read_for_people_with_their_unit() {
        assert_eq!(figure(None, "s", Stat::Avg), "—");
        assert_eq!(figure(Some(0.25), "s", Stat::P95), "0.25 s");
        assert_eq!(figure(Some(12.0), "1", Stat::Rate), "12/s");
        assert_eq!(figure(Some(1_234_567.4), "By", Stat::Max), "1,234,567 By");
        assert_eq!(figure(Some(-2500.0), "", Stat::Min), "-2,500");
        assert_eq!(figure(Some(3.0), "ms", Stat::Count), "3");
    }
}
