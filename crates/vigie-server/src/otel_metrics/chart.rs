//! A metric read back as a chart: its series filtered by attributes, grouped by one, and a
//! figure per step over a range. The API, the Metrics page and metric alert rules all read
//! through here.
//!
//! ```text
//! ChartParams (filter, group_by, stat, range)
//!   ─▶ MetricStore::metric_series(name) ─▶ metric::series_matches(filter) ─▶ groups
//!   ─▶ MetricStore::metric_minutes(matched, range) ─▶ Minute::merge per (group, step)
//!   ─▶ Minute::stat per step, and over the whole range (the figure a rule judges)
//! ```
//!
//! A range is whole minutes ending with the current one (partly filled). Steps are chosen so
//! a chart has at most [`MAX_STEPS`] points; groups beyond [`MAX_GROUPS`] (the smallest by
//! their figure over the range) are added up into one "other" line, so no series is left
//! out of what is drawn.

use crate::http::AppError;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vigie_core::metric::{group_value, parse_filter, series_matches, MetricKind, Minute, Stat};
use vigie_core::ProjectId;

/// The range a chart covers unless asked otherwise.
pub const DEFAULT_RANGE: &str = "1h";
/// The longest range.
pub const MAX_RANGE_MINUTES: i64 = 31 * 1440;
/// Most points a line has.
pub const MAX_STEPS: i64 = 180;
/// Most lines a chart draws; the rest are added up into one.
pub const MAX_GROUPS: usize = 10;
/// Most (series × minute) cells one chart may read: past it, a narrower filter or a shorter
/// range is asked for (422).
pub const MAX_CELLS: i64 = 2_000_000;
/// The step lengths a chart may take, in minutes.
const STEPS: [i64; 13] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880];

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChartParams {
    /// Attribute filters: `key:value key2:val*` (`service.name` matches the service).
    #[serde(default)]
    pub filter: String,
    /// One attribute (or `service.name`) to draw a line per value of.
    #[serde(default)]
    pub group_by: String,
    /// `avg`, `min`, `max`, `sum`, `count`, `last`, `rate`, `p50`, `p95`, `p99`; by default
    /// the metric kind's (see `MetricKind::default_stat`).
    #[serde(default)]
    pub stat: String,
    /// How far back: `15m`, `1h` (the default), `24h`, `7d`, at most 31 days.
    #[serde(default)]
    pub range: String,
}

/// What a chart shows.
#[derive(Clone, Debug, Serialize)]
pub struct Chart {
    pub metric: String,
    pub kind: MetricKind,
    pub unit: String,
    pub stat: Stat,
    pub group_by: Option<String>,
    /// The first step's start, milliseconds since the epoch.
    pub from: i64,
    pub step_s: i64,
    /// Series matching the filter (of all the metric has).
    pub series: usize,
    pub series_total: usize,
    pub groups: Vec<ChartGroup>,
    /// Groups added up into the last line, "other".
    pub folded_groups: usize,
}

/// One line of a chart.
#[derive(Clone, Debug, Serialize)]
pub struct ChartGroup {
    /// The group's attribute value (`"all"` when not grouped).
    pub label: String,
    pub series: usize,
    /// The figure per step (`null` where nothing was reported).
    pub values: Vec<Option<f64>>,
    /// The figure over the whole range.
    pub whole: Option<f64>,
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A range as a number of minutes, within bounds.
pub fn range_minutes(text: &str) -> Result<i64, AppError> {
    let text = if text.is_empty() { DEFAULT_RANGE } else { text };
    let ns = vigie_core::logquery::parse_span(text).map_err(|e| invalid("range", e))?;
    let minutes = (ns + 59_999_999_999) / 60_000_000_000;
    if !(1..=MAX_RANGE_MINUTES).contains(&minutes) {
        return Err(invalid(
            "range",
            format!("a range is 1 minute to 31 days, not {text}"),
        ));
    }
    Ok(minutes)
}

/// `a / b` rounded up, for positive numbers (`i64::div_ceil` is not stable yet).
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// The step for a range: the shortest that keeps a line within [`MAX_STEPS`] points.
fn step_minutes(range: i64) -> i64 {
    STEPS
        .into_iter()
        .find(|s| ceil_div(range, *s) <= MAX_STEPS)
        .unwrap_or(STEPS[STEPS.len() - 1])
}

impl ChartParams {
    fn filters(&self) -> Result<Vec<(String, String)>, AppError> {
        parse_filter(&self.filter).map_err(|e| invalid("filter", e))
    }

    fn stat(&self, kind: MetricKind) -> Result<Stat, AppError> {
        if self.stat.is_empty() {
            return Ok(kind.default_stat());
        }
        Stat::parse(&self.stat).map_err(|e| invalid("stat", e))
    }
}

/// Reads `metric` of `project` as `params` ask, over the minutes up to `now_minute`;
/// `NotFound` when the project has no such metric.
pub async fn chart(
    state: &AppState,
    project: ProjectId,
    metric: &str,
    params: &ChartParams,
    now_minute: i64,
) -> Result<Chart, AppError> {
    let filters = params.filters()?;
    let range = range_minutes(&params.range)?;
    let all = state.store.metric_series(project, metric).await?;
    let Some(first) = all.first() else {
        return Err(AppError::NotFound(format!(
            "no metric {metric:?} is stored in this project"
        )));
    };
    let (kind, unit) = (first.kind, first.unit.clone());
    let stat = params.stat(kind)?;
    let group_by = (!params.group_by.trim().is_empty()).then(|| params.group_by.trim().to_string());
    let mut group_of: BTreeMap<i64, String> = BTreeMap::new();
    for s in &all {
        if series_matches(&s.service, &s.attributes, &filters) {
            let label = match &group_by {
                Some(key) => group_value(&s.service, &s.attributes, key).to_string(),
                None => "all".to_string(),
            };
            group_of.insert(s.id, label);
        }
    }
    let cells = group_of.len() as i64 * range;
    if cells > MAX_CELLS {
        return Err(invalid(
            "range",
            format!(
                "{} series over {range} minutes is more than one chart reads ({MAX_CELLS} \
                 series-minutes): narrow the filter or shorten the range",
                group_of.len()
            ),
        ));
    }
    let step = step_minutes(range);
    let steps = ceil_div(range, step);
    // The range ends with the current minute, and starts on a step boundary.
    let end = now_minute + 1;
    let from = end - steps * step;
    let minutes = state
        .store
        .metric_minutes(project, group_of.keys().copied().collect(), from, end)
        .await?;

    struct Acc {
        series: usize,
        steps: Vec<Minute>,
        whole: Minute,
    }
    let mut groups: BTreeMap<&str, Acc> = BTreeMap::new();
    for label in group_of.values() {
        groups
            .entry(label.as_str())
            .or_insert_with(|| Acc {
                series: 0,
                steps: vec![Minute::default(); steps as usize],
                whole: Minute::default(),
            })
            .series += 1;
    }
    for m in &minutes {
        let Some(acc) = group_of
            .get(&m.series)
            .and_then(|l| groups.get_mut(l.as_str()))
        else {
            continue;
        };
        let index = ((m.minute - from) / step) as usize;
        if let Some(cell) = acc.steps.get_mut(index) {
            cell.merge(&m.data);
        }
        acc.whole.merge(&m.data);
    }
    let (step_s, range_s) = ((step * 60) as f64, (steps * step * 60) as f64);
    let mut ranked: Vec<(String, Acc)> = groups
        .into_iter()
        .map(|(label, acc)| (label.to_string(), acc))
        .collect();
    ranked.sort_by(|a, b| {
        let figure = |acc: &Acc| acc.whole.stat(stat, range_s).unwrap_or(f64::NEG_INFINITY);
        figure(&b.1)
            .total_cmp(&figure(&a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    let mut folded_groups = 0;
    if ranked.len() > MAX_GROUPS {
        let rest = ranked.split_off(MAX_GROUPS - 1);
        folded_groups = rest.len();
        let mut other = Acc {
            series: 0,
            steps: vec![Minute::default(); steps as usize],
            whole: Minute::default(),
        };
        for (_, acc) in rest {
            other.series += acc.series;
            for (o, s) in other.steps.iter_mut().zip(&acc.steps) {
                o.merge(s);
            }
            other.whole.merge(&acc.whole);
        }
        ranked.push((format!("other ({folded_groups})"), other));
    }
    Ok(Chart {
        metric: metric.to_string(),
        kind,
        unit,
        stat,
        group_by,
        from: from * 60_000,
        step_s: step * 60,
        series: group_of.len(),
        series_total: all.len(),
        groups: ranked
            .into_iter()
            .map(|(label, acc)| ChartGroup {
                label,
                series: acc.series,
                values: acc.steps.iter().map(|m| m.stat(stat, step_s)).collect(),
                whole: acc.whole.stat(stat, range_s),
            })
            .collect(),
        folded_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_bounded_and_steps_keep_lines_short() {
        assert_eq!(range_minutes("").unwrap(), 60);
        assert_eq!(range_minutes("90s").unwrap(), 2);
        assert!(range_minutes("40d").is_err());
        assert!(range_minutes("soon").is_err());
        assert_eq!(step_minutes(60), 1);
        assert_eq!(step_minutes(1440), 10);
        assert_eq!(step_minutes(31 * 1440), 360);
        for range in [1, 59, 181, 1440, 10_080, MAX_RANGE_MINUTES] {
            assert!(ceil_div(range, step_minutes(range)) <= MAX_STEPS, "{range}");
        }
    }
}
