//! Application metrics (OpenTelemetry meters): data points, the minute they are kept as, and
//! the figures read back from minutes.
//!
//! ```text
//! data point (gauge, sum, histogram; delta or cumulative)
//!   ─▶ cumulative? Cumulative::delta against the series' last point ─▶ what changed since
//!   ─▶ Minute::add: one Minute per series per minute (count, sum, min, max, last, increase,
//!      buckets)
//!   ─▶ Minute::merge over a step and a group of series ─▶ Minute::stat (avg, max, p95, rate…)
//! ```
//!
//! A minute is mergeable: the minutes of many series or many minutes add up to one, and every
//! figure reads from that sum, so a chart of a day and a threshold over five minutes use the
//! same arithmetic. Histograms are kept as (upper bound, count) buckets; exponential
//! histograms arrive converted to the same form (`vigie_protocol::otlp::metrics`), and a
//! percentile is interpolated inside the bucket it falls in, as Prometheus'
//! `histogram_quantile` does.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Most buckets a minute keeps: past it, neighbouring buckets are merged two by two (a
/// percentile grows less precise, no count is lost).
pub const MAX_BUCKETS: usize = 256;
/// Longest metric name kept.
pub const MAX_NAME_BYTES: usize = 255;
/// Most bytes of a series' attributes (as JSON): a point whose attributes are larger is
/// refused (they would make every minute of it a new series of unbounded size).
pub const MAX_ATTRIBUTE_BYTES: usize = 2048;
/// A cumulative series seen for the first time counts its whole total only when it began
/// this recently (a process that just started); an older total is taken as the baseline, so
/// Vigie starting beside a long-running process does not chart a spike of its whole history.
pub const FRESH_START_NS: i64 = 5 * 60 * 1_000_000_000;

/// What a metric measures, which decides how its points add up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A value read now (memory in use, queue depth): minutes keep its average, extremes and
    /// last value.
    Gauge,
    /// A monotonic sum (requests served): minutes keep how much it went up.
    Counter,
    /// A sum that goes up and down (items in flight): kept like a gauge.
    UpDownCounter,
    /// A distribution (request durations): minutes keep counts per bucket.
    Histogram,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::UpDownCounter => "up_down_counter",
            MetricKind::Histogram => "histogram",
        }
    }

    pub fn parse(text: &str) -> Option<MetricKind> {
        [
            MetricKind::Gauge,
            MetricKind::Counter,
            MetricKind::UpDownCounter,
            MetricKind::Histogram,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// The figure a chart of this kind shows unless asked for another.
    pub fn default_stat(self) -> Stat {
        match self {
            MetricKind::Gauge | MetricKind::UpDownCounter => Stat::Avg,
            MetricKind::Counter => Stat::Rate,
            MetricKind::Histogram => Stat::P95,
        }
    }
}

/// A histogram as buckets: `(upper bound, count)`, bounds increasing, the last one may be
/// `f64::INFINITY`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub buckets: Vec<(f64, u64)>,
}

/// What one data point says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PointValue {
    Number(f64),
    Histogram(Histogram),
}

/// One data point of one series, as received.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    pub name: String,
    pub kind: MetricKind,
    pub unit: String,
    pub description: String,
    /// The resource's `service.name`.
    pub service: String,
    /// The point's attributes, sorted by key.
    pub attributes: Vec<(String, String)>,
    /// Nanoseconds since the epoch: when the cumulative total began (0 when not given), and
    /// when the point was taken.
    pub start: i64,
    pub time: i64,
    /// The value is a total since `start` rather than what happened since the last point.
    pub cumulative: bool,
    pub value: PointValue,
}

impl MetricPoint {
    /// The attributes as stored and compared: a JSON list of `[key, value]` pairs.
    pub fn attributes_json(&self) -> String {
        serde_json::to_string(&self.attributes).unwrap_or_else(|_| "[]".into())
    }

    /// A stable 64-bit hash of the series' identity (see [`series_hash`]).
    pub fn series_hash(&self) -> i64 {
        series_hash(&self.name, &self.service, &self.attributes_json())
    }

    /// The minute (since the epoch) the point belongs to.
    pub fn minute(&self) -> i64 {
        self.time.div_euclid(60_000_000_000)
    }
}

/// A stable 64-bit hash of a series' identity (name, service, attributes as JSON), by which
/// storage finds a series without comparing its whole key (FNV-1a: the same on every version
/// and platform, as stored hashes must be).
pub fn series_hash(name: &str, service: &str, attributes_json: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        name.as_bytes(),
        b"\0",
        service.as_bytes(),
        b"\0",
        attributes_json.as_bytes(),
    ] {
        for byte in part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash as i64
}

/// What a cumulative series said last, so the next point can be turned into what changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cumulative {
    pub start: i64,
    pub value: PointValue,
}

impl Default for PointValue {
    fn default() -> Self {
        PointValue::Number(0.0)
    }
}

impl Cumulative {
    /// What changed between `previous` (none for a series never seen) and the total `now`:
    /// the whole total when the series restarted (a new start time, or a total that went
    /// down), nothing when the series is first seen long after it began (see
    /// [`FRESH_START_NS`]).
    pub fn delta(previous: Option<&Cumulative>, now: &MetricPoint) -> PointValue {
        let restarted = match previous {
            None => {
                let fresh = now.start > 0 && now.time - now.start <= FRESH_START_NS;
                if !fresh {
                    return zero_like(&now.value);
                }
                true
            }
            Some(p) => p.start != now.start,
        };
        match (previous.map(|p| &p.value), &now.value) {
            (Some(PointValue::Number(before)), PointValue::Number(after))
                if !restarted && after >= before =>
            {
                PointValue::Number(after - before)
            }
            (Some(PointValue::Histogram(before)), PointValue::Histogram(after))
                if !restarted && after.count >= before.count =>
            {
                match subtract(after, before) {
                    Some(h) => PointValue::Histogram(h),
                    None => now.value.clone(),
                }
            }
            _ => now.value.clone(),
        }
    }
}

fn zero_like(value: &PointValue) -> PointValue {
    match value {
        PointValue::Number(_) => PointValue::Number(0.0),
        PointValue::Histogram(_) => PointValue::Histogram(Histogram::default()),
    }
}

/// `after - before`, bucket by bucket; `None` when a bucket went down (the series restarted
/// without saying so).
fn subtract(after: &Histogram, before: &Histogram) -> Option<Histogram> {
    let mut buckets = Vec::with_capacity(after.buckets.len());
    for &(bound, count) in &after.buckets {
        let earlier = before
            .buckets
            .iter()
            .find(|(b, _)| b.to_bits() == bound.to_bits())
            .map_or(0, |(_, c)| *c);
        buckets.push((bound, count.checked_sub(earlier)?));
    }
    // A bucket the earlier total had and this one lacks means the bounds changed.
    if before.buckets.iter().any(|(b, c)| {
        *c > 0
            && !after
                .buckets
                .iter()
                .any(|(a, _)| a.to_bits() == b.to_bits())
    }) {
        return None;
    }
    buckets.retain(|(_, c)| *c > 0);
    Some(Histogram {
        count: after.count - before.count,
        sum: after.sum - before.sum,
        // A cumulative minimum and maximum are of the series' whole life: the change's own
        // lie within them, so they still bound its percentiles (and are exact when this
        // change set a new extreme).
        min: after.min,
        max: after.max,
        buckets,
    })
}

/// One series over one minute (or, merged, many series over many minutes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    /// Values seen (gauges, sums) or observations (histograms).
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The last value a gauge or up-down counter reported.
    pub last: Option<f64>,
    /// How much a counter went up (or, for histograms, how many observations).
    pub increase: f64,
    pub buckets: Vec<(f64, u64)>,
}

impl Minute {
    /// Adds what one point says (a delta for counters and histograms).
    pub fn add(&mut self, kind: MetricKind, value: &PointValue) {
        match (kind, value) {
            (MetricKind::Counter, PointValue::Number(delta)) => {
                self.count += 1;
                self.sum += delta;
                self.increase += delta;
                self.min = Some(self.min.map_or(*delta, |m| m.min(*delta)));
                self.max = Some(self.max.map_or(*delta, |m| m.max(*delta)));
                self.last = Some(*delta);
            }
            (_, PointValue::Number(v)) => {
                self.count += 1;
                self.sum += v;
                self.min = Some(self.min.map_or(*v, |m| m.min(*v)));
                self.max = Some(self.max.map_or(*v, |m| m.max(*v)));
                self.last = Some(*v);
            }
            (_, PointValue::Histogram(h)) => {
                self.merge(&Minute {
                    count: h.count,
                    sum: h.sum,
                    min: h.min,
                    max: h.max,
                    last: None,
                    increase: h.count as f64,
                    buckets: h.buckets.clone(),
                });
            }
        }
    }

    /// Adds another minute (of another series, or a later minute) to this one.
    pub fn merge(&mut self, other: &Minute) {
        self.count += other.count;
        self.sum += other.sum;
        self.increase += other.increase;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if other.last.is_some() {
            self.last = other.last;
        }
        if !other.buckets.is_empty() {
            self.buckets = merge_buckets(&self.buckets, &other.buckets);
        }
    }

    /// The figure `stat` over this minute (or merged minutes covering `seconds`); `None`
    /// when it has nothing to say (no values, no buckets for a percentile).
    pub fn stat(&self, stat: Stat, seconds: f64) -> Option<f64> {
        let has_values = self.count > 0 || self.increase != 0.0;
        match stat {
            Stat::Avg => (self.count > 0).then(|| self.sum / self.count as f64),
            Stat::Min => self.min,
            Stat::Max => self.max,
            Stat::Sum => has_values.then_some(self.sum),
            Stat::Count => Some(self.count as f64),
            Stat::Last => self.last,
            Stat::Rate => (has_values && seconds > 0.0).then(|| self.increase / seconds),
            Stat::P50 => self.quantile(0.50),
            Stat::P95 => self.quantile(0.95),
            Stat::P99 => self.quantile(0.99),
        }
    }

    /// The `q` quantile of the buckets, interpolated linearly inside its bucket and kept
    /// within the observed minimum and maximum.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().map(|(_, c)| c).sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        let mut lower = self.min.unwrap_or(0.0).min(self.buckets[0].0);
        for &(bound, count) in &self.buckets {
            if count > 0 && (seen + count) as f64 >= rank {
                let upper = if bound.is_finite() {
                    bound
                } else {
                    self.max.unwrap_or(lower)
                };
                let within = (rank - seen as f64) / count as f64;
                let value = lower + (upper - lower) * within.clamp(0.0, 1.0);
                let value = self.max.map_or(value, |m| value.min(m));
                return Some(self.min.map_or(value, |m| value.max(m)));
            }
            seen += count;
            if bound.is_finite() {
                lower = bound;
            }
        }
        self.max
    }
}

/// The union of two bucket lists, counts of the same bound added, kept within
/// [`MAX_BUCKETS`].
pub fn merge_buckets(a: &[(f64, u64)], b: &[(f64, u64)]) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1 + y.1)
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                i += 1;
                *x
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (_, Some(y)) => {
                j += 1;
                *y
            }
            (None, None) => unreachable!("the loop runs while one list has buckets"),
        };
        out.push(next);
    }
    while out.len() > MAX_BUCKETS {
        out = out
            .chunks(2)
            .map(|pair| (pair[pair.len() - 1].0, pair.iter().map(|(_, c)| c).sum()))
            .collect();
    }
    out
}

/// A figure read from minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    /// Increase per second (counters), observations per second (histograms).
    Rate,
    P50,
    P95,
    P99,
}

impl Stat {
    pub const ALL: [Stat; 10] = [
        Stat::Avg,
        Stat::Min,
        Stat::Max,
        Stat::Sum,
        Stat::Count,
        Stat::Last,
        Stat::Rate,
        Stat::P50,
        Stat::P95,
        Stat::P99,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stat::Avg => "avg",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Sum => "sum",
            Stat::Count => "count",
            Stat::Last => "last",
            Stat::Rate => "rate",
            Stat::P50 => "p50",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
        }
    }

    pub fn parse(text: &str) -> Result<Stat, String> {
        Stat::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown statistic {text:?}: use one of {}",
                    Stat::ALL.map(Stat::as_str).join(", ")
                )
            })
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threshold on a metric's figure: a number compared by value (rules compare equal when
/// their thresholds are the same number).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Limit(pub f64);

impl PartialEq for Limit {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Limit {}

/// Buckets as stored: each bound as a little-endian `f64`, then its count as a varint (a
/// histogram of the SDKs' 16 buckets takes about 150 bytes).
pub fn encode_buckets(buckets: &[(f64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buckets.len() * 10);
    put_buckets(&mut out, buckets);
    out
}

fn put_buckets(out: &mut Vec<u8>, buckets: &[(f64, u64)]) {
    for (bound, count) in buckets {
        out.extend_from_slice(&bound.to_le_bytes());
        crate::varint::put(out, *count);
    }
}

/// The buckets [`encode_buckets`] wrote; `None` when the bytes are damaged.
pub fn decode_buckets(mut bytes: &[u8]) -> Option<Vec<(f64, u64)>> {
    let mut buckets = Vec::new();
    while !bytes.is_empty() {
        let bound = take_f64(&mut bytes)?;
        let count = crate::varint::take(&mut bytes)?;
        buckets.push((bound, count));
    }
    Some(buckets)
}

fn take_f64(input: &mut &[u8]) -> Option<f64> {
    let (head, rest) = input.split_at_checked(8)?;
    *input = rest;
    Some(f64::from_le_bytes(head.try_into().ok()?))
}

impl Cumulative {
    /// The state as stored: the start (zigzag varint), then `0` and the value as an `f64`, or
    /// `1`, the count, sum, minimum and maximum (`NaN` for none), then the buckets.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        crate::varint::put(&mut out, crate::varint::zigzag(self.start));
        match &self.value {
            PointValue::Number(v) => {
                out.push(0);
                out.extend_from_slice(&v.to_le_bytes());
            }
            PointValue::Histogram(h) => {
                out.push(1);
                crate::varint::put(&mut out, h.count);
                for v in [h.sum, h.min.unwrap_or(f64::NAN), h.max.unwrap_or(f64::NAN)] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                put_buckets(&mut out, &h.buckets);
            }
        }
        out
    }

    /// The state [`Cumulative::encode`] wrote; `None` when the bytes are damaged.
    pub fn decode(mut bytes: &[u8]) -> Option<Cumulative> {
        let start = crate::varint::unzigzag(crate::varint::take(&mut bytes)?);
        let (&tag, mut rest) = bytes.split_first()?;
        let value = match tag {
            0 => PointValue::Number(take_f64(&mut rest)?),
            1 => {
                let count = crate::varint::take(&mut rest)?;
                let sum = take_f64(&mut rest)?;
                let known = |v: f64| (!v.is_nan()).then_some(v);
                let min = known(take_f64(&mut rest)?);
                let max = known(take_f64(&mut rest)?);
                PointValue::Histogram(Histogram {
                    count,
                    sum,
                    min,
                    max,
                    buckets: decode_buckets(rest)?,
                })
            }
            _ => return None,
        };
        Some(Cumulative { start, value })
    }
}

/// Attribute filters and grouping as written in a chart's or a rule's box:
/// `key:value key2:val*` (a value may end with `*`).
pub fn parse_filter(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split_whitespace()
        .map(|word| match word.split_once(':') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!(
                "{word:?} is not an attribute filter: write key:value (value may end with *)"
            )),
        })
        .collect()
}

/// What a metric rule watches, as written in the rule form: `p95(http.server.duration)
/// http.route:/invoices*` — the figure, the metric in parentheses, then attribute filters.
pub fn parse_watch(text: &str) -> Result<(Stat, String, String), String> {
    let text = text.trim();
    let shape = || {
        format!(
            "{text:?} does not say what to watch: write figure(metric) and any filters, e.g. \
             p95(http.server.duration) http.route:/api*"
        )
    };
    let (stat, rest) = text.split_once('(').ok_or_else(shape)?;
    let (metric, filter) = rest.split_once(')').ok_or_else(shape)?;
    let stat = Stat::parse(stat.trim())?;
    let metric = metric.trim();
    if metric.is_empty() {
        return Err(shape());
    }
    let filter = filter.split_whitespace().collect::<Vec<_>>().join(" ");
    parse_filter(&filter)?;
    Ok((stat, metric.to_string(), filter))
}

/// The rule form's text for what a metric rule watches ([`parse_watch`] reads it back).
pub fn watch_text(stat: Stat, metric: &str, filter: &str) -> String {
    if filter.is_empty() {
        format!("{stat}({metric})")
    } else {
        format!("{stat}({metric}) {filter}")
    }
}

/// Whether a series (its service and attributes) passes every filter; `service` is matched
/// as the attribute `service.name`.
pub fn series_matches(
    service: &str,
    attributes: &[(String, String)],
    filters: &[(String, String)],
) -> bool {
    filters.iter().all(|(key, want)| {
        let value = if key == "service.name" || key == "service" {
            Some(service)
        } else {
            attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        value.is_some_and(|v| match want.strip_suffix('*') {
            Some(prefix) => v.starts_with(prefix),
            None => v == want,
        })
    })
}

/// The value of attribute `key` (or the service) a series is grouped under.
pub fn group_value<'a>(service: &'a str, attributes: &'a [(String, String)], key: &str) -> &'a str {
    if key == "service.name" || key == "service" {
        return service;
    }
    attributes
        .iter()
        .find(|(k, _)| k == key)
        .map_or("(none)", |(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(kind: MetricKind, start: i64, time: i64, value: PointValue) -> MetricPoint {
        MetricPoint {
            name: "m".into(),
            kind,
            unit: String::new(),
            description: String::new(),
            service: "api".into(),
            attributes: vec![],
            start,
            time,
            cumulative: true,
            value,
        }
    }

    fn histogram(count: u64, sum: f64, buckets: &[(f64, u64)]) -> PointValue {
        PointValue::Histogram(Histogram {
            count,
            sum,
            min: None,
            max: None,
            buckets: buckets.to_vec(),
        })
    }

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn a_cumulative_counter_becomes_what_it_went_up_by_and_a_restart_counts_from_zero() {
        let first = point(MetricKind::Counter, MIN, 2 * MIN, PointValue::Number(10.0));
        // Began a minute ago: its whole total is new.
        assert_eq!(Cumulative::delta(None, &first), PointValue::Number(10.0));
        let seen = Cumulative {
            start: MIN,
            value: PointValue::Number(10.0),
        };
        let next = point(MetricKind::Counter, MIN, 3 * MIN, PointValue::Number(25.0));
        assert_eq!(
            Cumulative::delta(Some(&seen), &next),
            PointValue::Number(15.0)
        );
        // The process restarted: a new start, a smaller total.
        let restarted = point(
            MetricKind::Counter,
            3 * MIN,
            4 * MIN,
            PointValue::Number(4.0),
        );
        assert_eq!(
            Cumulative::delta(Some(&seen), &restarted),
            PointValue::Number(4.0)
        );
        // A total that went down with the same start is a restart too.
        let lower = point(MetricKind::Counter, MIN, 4 * MIN, PointValue::Number(3.0));
        assert_eq!(
            Cumulative::delta(Some(&seen), &lower),
            PointValue::Number(3.0)
        );
    }

    #[test]
    fn a_long_running_series_first_seen_is_a_baseline_not_a_spike() {
        let old = point(
            MetricKind::Counter,
            MIN,
            MIN + 2 * FRESH_START_NS,
            PointValue::Number(1e6),
        );
        assert_eq!(Cumulative::delta(None, &old), PointValue::Number(0.0));
        let unknown_start = point(MetricKind::Counter, 0, 10 * MIN, PointValue::Number(5.0));
        assert_eq!(
            Cumulative::delta(None, &unknown_start),
            PointValue::Number(0.0)
        );
    }

    #[test]
    fn a_cumulative_histogram_subtracts_bucket_by_bucket() {
        let seen = Cumulative {
            start: MIN,
            value: histogram(3, 0.6, &[(0.1, 1), (0.5, 2), (f64::INFINITY, 0)]),
        };
        let now = point(
            MetricKind::Histogram,
            MIN,
            3 * MIN,
            histogram(7, 3.0, &[(0.1, 1), (0.5, 4), (f64::INFINITY, 2)]),
        );
        assert_eq!(
            Cumulative::delta(Some(&seen), &now),
            histogram(4, 2.4, &[(0.5, 2), (f64::INFINITY, 2)])
        );
        // Lifetime extremes carry over, as bounds.
        let mut with_extremes = now.clone();
        if let PointValue::Histogram(h) = &mut with_extremes.value {
            h.min = Some(0.01);
            h.max = Some(3.0);
        }
        let PointValue::Histogram(change) = Cumulative::delta(Some(&seen), &with_extremes) else {
            panic!("a histogram")
        };
        assert_eq!((change.min, change.max), (Some(0.01), Some(3.0)));
        // Bounds changed (an exponential histogram rescaled): the total counts whole.
        let rescaled = point(
            MetricKind::Histogram,
            MIN,
            3 * MIN,
            histogram(9, 3.0, &[(0.2, 9)]),
        );
        assert_eq!(
            Cumulative::delta(Some(&seen), &rescaled),
            histogram(9, 3.0, &[(0.2, 9)])
        );
    }

    #[test]
    fn minutes_add_and_merge_into_the_figures_charts_read() {
        let mut gauge = Minute::default();
        for v in [3.0, 9.0, 6.0] {
            gauge.add(MetricKind::Gauge, &PointValue::Number(v));
        }
        assert_eq!(gauge.stat(Stat::Avg, 60.0), Some(6.0));
        assert_eq!(gauge.stat(Stat::Max, 60.0), Some(9.0));
        assert_eq!(gauge.stat(Stat::Min, 60.0), Some(3.0));
        assert_eq!(gauge.stat(Stat::Last, 60.0), Some(6.0));
        assert_eq!(gauge.stat(Stat::Count, 60.0), Some(3.0));
        assert_eq!(gauge.stat(Stat::P95, 60.0), None, "a gauge has no buckets");

        let mut counter = Minute::default();
        counter.add(MetricKind::Counter, &PointValue::Number(90.0));
        let mut other = Minute::default();
        other.add(MetricKind::Counter, &PointValue::Number(30.0));
        counter.merge(&other);
        assert_eq!(counter.stat(Stat::Rate, 60.0), Some(2.0));
        assert_eq!(counter.stat(Stat::Sum, 60.0), Some(120.0));
        assert_eq!(Minute::default().stat(Stat::Avg, 60.0), None);
    }

    #[test]
    fn percentiles_interpolate_inside_their_bucket() {
        let mut m = Minute::default();
        m.add(
            MetricKind::Histogram,
            &PointValue::Histogram(Histogram {
                count: 100,
                sum: 30.0,
                min: Some(0.01),
                max: Some(2.0),
                buckets: vec![(0.1, 50), (0.5, 40), (1.0, 5), (f64::INFINITY, 5)],
            }),
        );
        let p50 = m.stat(Stat::P50, 60.0).unwrap();
        assert!((p50 - 0.1).abs() < 1e-9, "{p50}");
        let p95 = m.stat(Stat::P95, 60.0).unwrap();
        assert!((p95 - 1.0).abs() < 1e-9, "{p95}");
        // In the open last bucket, up to the observed maximum.
        let p99 = m.stat(Stat::P99, 60.0).unwrap();
        assert!(p99 > 1.0 && p99 <= 2.0, "{p99}");
        assert_eq!(m.stat(Stat::Rate, 60.0), Some(100.0 / 60.0));
        assert_eq!(m.stat(Stat::Avg, 60.0), Some(0.3));
    }

    #[test]
    fn merged_buckets_add_counts_and_stay_bounded() {
        let a = [(1.0, 1), (2.0, 1)];
        let b = [(1.5, 4), (2.0, 2), (f64::INFINITY, 1)];
        assert_eq!(
            merge_buckets(&a, &b),
            vec![(1.0, 1), (1.5, 4), (2.0, 3), (f64::INFINITY, 1)]
        );
        let many: Vec<(f64, u64)> = (0..1000).map(|i| (i as f64, 1)).collect();
        let merged = merge_buckets(&many, &[]);
        assert!(merged.len() <= MAX_BUCKETS, "{}", merged.len());
        assert_eq!(merged.iter().map(|(_, c)| c).sum::<u64>(), 1000);
        assert_eq!(merged.last().unwrap().0, 999.0);
    }

    #[test]
    fn buckets_and_states_round_trip_and_damage_is_seen() {
        let b = vec![(0.25, 3), (f64::INFINITY, 70_000)];
        assert_eq!(decode_buckets(&encode_buckets(&b)), Some(b.clone()));
        assert_eq!(encode_buckets(&b).len(), 8 + 1 + 8 + 3);
        assert_eq!(decode_buckets(&[1, 2, 3]), None);
        for state in [
            Cumulative {
                start: -5,
                value: PointValue::Number(12.5),
            },
            Cumulative {
                start: 1_790_000_000_000_000_000,
                value: PointValue::Histogram(Histogram {
                    count: 9,
                    sum: 3.5,
                    min: None,
                    max: Some(2.0),
                    buckets: b.clone(),
                }),
            },
        ] {
            let bytes = state.encode();
            assert_eq!(Cumulative::decode(&bytes), Some(state));
            assert_eq!(Cumulative::decode(&bytes[..bytes.len() - 1]), None);
        }
        assert_eq!(Cumulative::decode(&[0, 9]), None);
    }

    #[test]
    fn a_series_hash_is_stable_and_tells_series_apart() {
        let mut p = point(MetricKind::Gauge, 0, MIN, PointValue::Number(1.0));
        // Fixed forever: stored hashes are compared with new ones.
        assert_eq!(p.series_hash(), -1978198930754352900);
        let first = p.series_hash();
        p.attributes = vec![("queue".into(), "mail".into())];
        assert_ne!(p.series_hash(), first);
        p.service = "API".into();
        let upper = p.series_hash();
        p.service = "api".into();
        assert_ne!(p.series_hash(), upper, "case is kept");
    }

    #[test]
    fn filters_parse_and_match_series() {
        let f = parse_filter("http.route:/api/* service:web").unwrap();
        let attrs = vec![("http.route".to_string(), "/api/x".to_string())];
        assert!(series_matches("web", &attrs, &f));
        assert!(!series_matches("worker", &attrs, &f));
        assert!(!series_matches("web", &[], &f));
        assert!(parse_filter("nocolon").is_err());
        assert_eq!(group_value("web", &attrs, "http.route"), "/api/x");
        assert_eq!(group_value("web", &attrs, "missing"), "(none)");
        assert_eq!(Stat::parse("p95"), Ok(Stat::P95));
        let watch = parse_watch(" p95(http.server.duration)  http.route:/api* ").unwrap();
        assert_eq!(
            watch,
            (
                Stat::P95,
                "http.server.duration".to_string(),
                "http.route:/api*".to_string()
            )
        );
        assert_eq!(
            parse_watch(&watch_text(watch.0, &watch.1, &watch.2)).unwrap(),
            watch
        );
        assert!(parse_watch("http.server.duration").is_err());
        assert!(parse_watch("p42(x)").unwrap_err().contains("p95"));
        assert!(parse_watch("max(x) junk").is_err());
        assert!(Stat::parse("p42").unwrap_err().contains("p95"));
    }
}
