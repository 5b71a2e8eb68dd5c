//! OTLP/HTTP metrics (`POST /v1/metrics`), protobuf (`application/x-protobuf`) and JSON.
//!
//! The messages are the subset of `opentelemetry/proto/metrics/v1` and
//! `collector/metrics/v1` that a [`MetricPoint`] needs, with the published field numbers;
//! JSON requests are read into the same types ([`super::json`]).
//!
//! Mapping: the resource's `service.name` is the series' service; a point's own attributes
//! (sorted by key) name its series. Gauges, sums (monotonic: counters; the others: up-down
//! counters) and histograms keep their shape; an exponential histogram becomes a histogram
//! whose bucket bounds are its exponential ones (`base^(index+1)`, `base = 2^(2^-scale)`), so
//! every histogram adds up the same way.
//!
//! Refused, counted in `partial_success` with the first reason (the rest is kept): a point of
//! a metric without a name or with a name over [`MAX_NAME_BYTES`], without a time or with one
//! more than [`super::traces::MAX_AHEAD_NS`] after it was received, with
//! attributes over [`MAX_ATTRIBUTE_BYTES`], with a value that is not finite, of a sum or
//! histogram whose temporality is unspecified, of a summary (Vigie keeps no summaries: the
//! SDKs send them only when asked to; send a histogram instead), or a histogram whose bucket
//! counts do not match its bounds.

use super::{pairs, text, InstrumentationScope, KeyValue, Resource};
use crate::logs::Parsed;
use prost::Message;
use serde_json::Value;
use vigie_core::metric::{
    Histogram, MetricKind, MetricPoint, PointValue, MAX_ATTRIBUTE_BYTES, MAX_NAME_BYTES,
};

#[derive(Clone, PartialEq, Message)]
pub struct ExportMetricsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeMetrics {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(string, tag = "3")]
    pub unit: String,
    #[prost(oneof = "metric::Data", tags = "5, 7, 9, 10, 11")]
    pub data: Option<metric::Data>,
}

pub mod metric {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(message, tag = "5")]
        Gauge(super::Gauge),
        #[prost(message, tag = "7")]
        Sum(super::Sum),
        #[prost(message, tag = "9")]
        Histogram(super::OtlpHistogram),
        #[prost(message, tag = "10")]
        ExponentialHistogram(super::ExponentialHistogram),
        #[prost(message, tag = "11")]
        Summary(super::Summary),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sum {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
    #[prost(bool, tag = "3")]
    pub is_monotonic: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct OtlpHistogram {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramDataPoint>,
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExponentialHistogram {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<ExponentialHistogramDataPoint>,
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<SummaryDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NumberDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(oneof = "number::Value", tags = "4, 6")]
    pub value: Option<number::Value>,
}

pub mod number {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(double, tag = "4")]
        AsDouble(f64),
        #[prost(sfixed64, tag = "6")]
        AsInt(i64),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct HistogramDataPoint {
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    pub sum: Option<f64>,
    #[prost(fixed64, repeated, tag = "6")]
    pub bucket_counts: Vec<u64>,
    #[prost(double, repeated, tag = "7")]
    pub explicit_bounds: Vec<f64>,
    #[prost(double, optional, tag = "11")]
    pub min: Option<f64>,
    #[prost(double, optional, tag = "12")]
    pub max: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExponentialHistogramDataPoint {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    pub sum: Option<f64>,
    #[prost(sint32, tag = "6")]
    pub scale: i32,
    #[prost(fixed64, tag = "7")]
    pub zero_count: u64,
    #[prost(message, optional, tag = "8")]
    pub positive: Option<Buckets>,
    #[prost(message, optional, tag = "9")]
    pub negative: Option<Buckets>,
    #[prost(double, optional, tag = "12")]
    pub min: Option<f64>,
    #[prost(double, optional, tag = "13")]
    pub max: Option<f64>,
    #[prost(double, tag = "14")]
    pub zero_threshold: f64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Buckets {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint64, repeated, tag = "2")]
    pub bucket_counts: Vec<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExportMetricsServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportMetricsPartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExportMetricsPartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_data_points: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `AggregationTemporality` values.
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

/// Most buckets one histogram point may bring (explicit bounds, or an exponential
/// histogram's two sides; the SDKs' defaults are 16 and 160 a side).
pub const MAX_POINT_BUCKETS: usize = 4096;

/// Why a whole request was refused (the body is not OTLP at all).
#[derive(Debug, thiserror::Error)]
#[error("not an OTLP metrics request: {0}")]
pub struct OtlpMetricsError(pub String);

/// Parses a protobuf request body received at `now_ns`.
pub fn parse_protobuf(body: &[u8], now_ns: i64) -> Result<Parsed<MetricPoint>, OtlpMetricsError> {
    let request =
        ExportMetricsServiceRequest::decode(body).map_err(|e| OtlpMetricsError(e.to_string()))?;
    Ok(points(request, now_ns))
}

/// Parses a JSON request body received at `now_ns`.
pub fn parse_json(body: &[u8], now_ns: i64) -> Result<Parsed<MetricPoint>, OtlpMetricsError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| OtlpMetricsError(e.to_string()))?;
    let request = json::request(&value).ok_or_else(|| {
        OtlpMetricsError("expected an object with a `resourceMetrics` array".into())
    })?;
    Ok(points(request, now_ns))
}

/// The response telling the sender how many points were refused and why; `refused` adds the
/// points refused after parsing (a project's series limit), with their reason.
pub fn response(
    parsed: &Parsed<MetricPoint>,
    refused: usize,
    why: Option<&str>,
) -> ExportMetricsServiceResponse {
    let rejected = parsed.rejected + refused;
    ExportMetricsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: rejected as i64,
            error_message: parsed
                .first_error
                .as_deref()
                .or(why)
                .unwrap_or_default()
                .to_string(),
        }),
    }
}

/// The same response as OTLP JSON.
pub fn response_json(response: &ExportMetricsServiceResponse) -> Value {
    match &response.partial_success {
        Some(p) => serde_json::json!({"partialSuccess": {
            "rejectedDataPoints": p.rejected_data_points.to_string(),
            "errorMessage": p.error_message,
        }}),
        None => serde_json::json!({}),
    }
}

/// What every point of one metric shares.
struct Meta<'a> {
    /// When the request was received, nanoseconds since the epoch.
    now_ns: i64,
    name: &'a str,
    unit: &'a str,
    description: &'a str,
    service: &'a str,
}

fn points(request: ExportMetricsServiceRequest, now_ns: i64) -> Parsed<MetricPoint> {
    let mut parsed = Parsed {
        records: Vec::new(),
        rejected: 0,
        first_error: None,
    };
    for resource_metrics in request.resource_metrics {
        let resource = resource_metrics.resource.unwrap_or_default().attributes;
        let service = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "unknown_service".into());
        for scope in resource_metrics.scope_metrics {
            for metric in scope.metrics {
                read_metric(metric, &service, now_ns, &mut parsed);
            }
        }
    }
    parsed
}

fn read_metric(metric: Metric, service: &str, now_ns: i64, parsed: &mut Parsed<MetricPoint>) {
    use metric::Data;
    let meta = Meta {
        now_ns,
        name: &metric.name,
        unit: &metric.unit,
        description: &metric.description,
        service,
    };
    let refuse_all = |parsed: &mut Parsed<MetricPoint>, n: usize, why: String| {
        for _ in 0..n {
            parsed.reject(why.clone());
        }
    };
    let Some(data) = metric.data else {
        return;
    };
    let count = match &data {
        Data::Gauge(g) => g.data_points.len(),
        Data::Sum(s) => s.data_points.len(),
        Data::Histogram(h) => h.data_points.len(),
        Data::ExponentialHistogram(h) => h.data_points.len(),
        Data::Summary(s) => s.data_points.len(),
    };
    if metric.name.is_empty() || metric.name.len() > MAX_NAME_BYTES {
        let why = format!(
            "a metric's name must be 1 to {MAX_NAME_BYTES} bytes (got {} bytes)",
            metric.name.len()
        );
        return refuse_all(parsed, count, why);
    }
    let cumulative = |temporality: i32| match temporality {
        DELTA => Ok(false),
        CUMULATIVE => Ok(true),
        other => Err(format!(
            "metric {:?}: aggregation temporality {other} is neither delta (1) nor cumulative (2)",
            metric.name
        )),
    };
    match data {
        Data::Gauge(g) => {
            for p in g.data_points {
                push(parsed, number(&meta, MetricKind::Gauge, false, p));
            }
        }
        Data::Sum(s) => {
            let kind = if s.is_monotonic {
                MetricKind::Counter
            } else {
                MetricKind::UpDownCounter
            };
            match cumulative(s.aggregation_temporality) {
                Ok(c) => {
                    for p in s.data_points {
                        push(parsed, number(&meta, kind, c, p));
                    }
                }
                Err(why) => refuse_all(parsed, count, why),
            }
        }
        Data::Histogram(h) => match cumulative(h.aggregation_temporality) {
            Ok(c) => {
                for p in h.data_points {
                    push(parsed, histogram(&meta, c, p));
                }
            }
            Err(why) => refuse_all(parsed, count, why),
        },
        Data::ExponentialHistogram(h) => match cumulative(h.aggregation_temporality) {
            Ok(c) => {
                for p in h.data_points {
                    push(parsed, exponential(&meta, c, p));
                }
            }
            Err(why) => refuse_all(parsed, count, why),
        },
        Data::Summary(_) => refuse_all(
            parsed,
            count,
            format!(
                "metric {:?} is a summary, which Vigie does not keep: record it as a histogram",
                metric.name
            ),
        ),
    }
}

fn push(parsed: &mut Parsed<MetricPoint>, point: Result<MetricPoint, String>) {
    match point {
        Ok(p) => parsed.records.push(p),
        Err(why) => parsed.reject(why),
    }
}

fn point(
    meta: &Meta,
    kind: MetricKind,
    cumulative: bool,
    attributes: Vec<KeyValue>,
    (start, time): (u64, u64),
    value: PointValue,
) -> Result<MetricPoint, String> {
    if time == 0 {
        return Err(format!("a point of {:?} has no time_unix_nano", meta.name));
    }
    if nanos(time) > meta.now_ns.saturating_add(super::traces::MAX_AHEAD_NS) {
        return Err(format!(
            "a point of {:?} is more than a day after it was received: is the sender's clock \
             right?",
            meta.name
        ));
    }
    let mut attributes = pairs(attributes);
    attributes.sort();
    attributes.dedup_by(|a, b| a.0 == b.0);
    let point = MetricPoint {
        name: meta.name.to_string(),
        kind,
        unit: meta.unit.to_string(),
        description: meta.description.to_string(),
        service: meta.service.to_string(),
        attributes,
        start: nanos(start),
        time: nanos(time),
        cumulative,
        value,
    };
    let bytes = point.attributes_json().len();
    if bytes > MAX_ATTRIBUTE_BYTES {
        return Err(format!(
            "a point of {:?} has {bytes} bytes of attributes, over the {MAX_ATTRIBUTE_BYTES} a \
             series may have",
            meta.name
        ));
    }
    Ok(point)
}

fn nanos(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn number(
    meta: &Meta,
    kind: MetricKind,
    cumulative: bool,
    p: NumberDataPoint,
) -> Result<MetricPoint, String> {
    let value = match p.value {
        Some(number::Value::AsDouble(d)) => d,
        Some(number::Value::AsInt(i)) => i as f64,
        None => return Err(format!("a point of {:?} has no value", meta.name)),
    };
    if !value.is_finite() {
        return Err(format!("a point of {:?} is not a finite number", meta.name));
    }
    point(
        meta,
        kind,
        cumulative,
        p.attributes,
        (p.start_time_unix_nano, p.time_unix_nano),
        PointValue::Number(value),
    )
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

fn histogram(meta: &Meta, cumulative: bool, p: HistogramDataPoint) -> Result<MetricPoint, String> {
    let bounds = &p.explicit_bounds;
    let counts = &p.bucket_counts;
    let consistent = counts.is_empty() || counts.len() == bounds.len() + 1;
    if !consistent
        || bounds.len() >= MAX_POINT_BUCKETS
        || bounds.iter().any(|b| !b.is_finite())
        || bounds.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(format!(
            "a histogram point of {:?} has {} bucket counts for {} bounds (there must be one \
             more count than bounds, the bounds finite, increasing and fewer than \
             {MAX_POINT_BUCKETS})",
            meta.name,
            counts.len(),
            bounds.len()
        ));
    }
    let buckets = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, c)| (bounds.get(i).copied().unwrap_or(f64::INFINITY), *c))
        .collect();
    let summary = (p.count, p.sum, p.min, p.max);
    let times = (p.start_time_unix_nano, p.time_unix_nano);
    histogram_point(meta, cumulative, p.attributes, times, summary, buckets)
}

/// A histogram point from what both OTLP histogram kinds carry: count, sum, min and max (a
/// value that is not finite is read as absent) and the buckets by upper bound.
fn histogram_point(
    meta: &Meta,
    cumulative: bool,
    attributes: Vec<KeyValue>,
    times: (u64, u64),
    (count, sum, min, max): (u64, Option<f64>, Option<f64>, Option<f64>),
    buckets: Vec<(f64, u64)>,
) -> Result<MetricPoint, String> {
    let value = PointValue::Histogram(Histogram {
        count,
        sum: finite(sum).unwrap_or(0.0),
        min: finite(min),
        max: finite(max),
        buckets,
    });
    point(
        meta,
        MetricKind::Histogram,
        cumulative,
        attributes,
        times,
        value,
    )
}

fn exponential(
    meta: &Meta,
    cumulative: bool,
    p: ExponentialHistogramDataPoint,
) -> Result<MetricPoint, String> {
    let positive = p.positive.unwrap_or_default();
    let negative = p.negative.unwrap_or_default();
    if positive.bucket_counts.len() + negative.bucket_counts.len() > MAX_POINT_BUCKETS
        || !(-10..=20).contains(&p.scale)
    {
        return Err(format!(
            "an exponential histogram point of {:?} has scale {} and {} buckets (at most \
             {MAX_POINT_BUCKETS}, scale -10 to 20)",
            meta.name,
            p.scale,
            positive.bucket_counts.len() + negative.bucket_counts.len()
        ));
    }
    let base = 2f64.powf(2f64.powi(-p.scale));
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    // Negative buckets, most negative first: index i covers [-base^(i+1), -base^i).
    for (k, count) in negative.bucket_counts.iter().enumerate().rev() {
        if *count > 0 {
            let index = negative.offset as f64 + k as f64;
            buckets.push((-base.powf(index), *count));
        }
    }
    if p.zero_count > 0 {
        let threshold = if p.zero_threshold.is_finite() {
            p.zero_threshold.max(0.0)
        } else {
            0.0
        };
        buckets.push((threshold, p.zero_count));
    }
    for (k, count) in positive.bucket_counts.iter().enumerate() {
        if *count > 0 {
            let index = positive.offset as f64 + k as f64;
            buckets.push((base.powf(index + 1.0), *count));
        }
    }
    buckets.retain(|(b, _)| b.is_finite());
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A zero threshold equal to a positive bound: one bucket.
    buckets.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    let buckets = vigie_core::metric::merge_buckets(&buckets, &[]);
    let summary = (p.count, p.sum, p.min, p.max);
    let times = (p.start_time_unix_nano, p.time_unix_nano);
    histogram_point(meta, cumulative, p.attributes, times, summary, buckets)
}

/// OTLP's JSON mapping of metrics, read into the protobuf types.
mod json {
    use super::super::json::{array, attributes, u64_of};
    use super::*;

    pub fn request(v: &Value) -> Option<ExportMetricsServiceRequest> {
        let resource_metrics = v.get("resourceMetrics")?.as_array()?;
        Some(ExportMetricsServiceRequest {
            resource_metrics: resource_metrics.iter().map(resource).collect(),
        })
    }

    fn resource(v: &Value) -> ResourceMetrics {
        ResourceMetrics {
            resource: v.get("resource").map(|r| Resource {
                attributes: attributes(r),
            }),
            scope_metrics: array(v, "scopeMetrics")
                .map(|s| ScopeMetrics {
                    scope: None,
                    metrics: array(s, "metrics").map(metric).collect(),
                })
                .collect(),
        }
    }

    fn temporality(v: &Value) -> i32 {
        match v.get("aggregationTemporality") {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0) as i32,
            Some(Value::String(s)) => match s.as_str() {
                "AGGREGATION_TEMPORALITY_DELTA" => DELTA,
                "AGGREGATION_TEMPORALITY_CUMULATIVE" => CUMULATIVE,
                other => other.parse().unwrap_or(0),
            },
            _ => 0,
        }
    }

    fn metric(v: &Value) -> Metric {
        use metric::Data;
        let data = if let Some(g) = v.get("gauge") {
            Some(Data::Gauge(Gauge {
                data_points: array(g, "dataPoints").map(number_point).collect(),
            }))
        } else if let Some(s) = v.get("sum") {
            Some(Data::Sum(Sum {
                data_points: array(s, "dataPoints").map(number_point).collect(),
                aggregation_temporality: temporality(s),
                is_monotonic: s
                    .get("isMonotonic")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }))
        } else if let Some(h) = v.get("histogram") {
            Some(Data::Histogram(OtlpHistogram {
                data_points: array(h, "dataPoints").map(histogram_point).collect(),
                aggregation_temporality: temporality(h),
            }))
        } else if let Some(h) = v.get("exponentialHistogram") {
            Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: array(h, "dataPoints").map(exponential_point).collect(),
                aggregation_temporality: temporality(h),
            }))
        } else {
            v.get("summary").map(|s| {
                Data::Summary(Summary {
                    data_points: array(s, "dataPoints")
                        .map(|_| SummaryDataPoint { attributes: vec![] })
                        .collect(),
                })
            })
        };
        let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        Metric {
            name: text("name"),
            description: text("description"),
            unit: text("unit"),
            data,
        }
    }

    fn f64_of(v: Option<&Value>) -> Option<f64> {
        match v? {
            Value::Number(n) => n.as_f64(),
            // Protobuf's JSON mapping writes infinities and NaN as strings.
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    fn i64_of(v: Option<&Value>) -> Option<i64> {
        match v? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    fn number_point(v: &Value) -> NumberDataPoint {
        let value = if let Some(d) = f64_of(v.get("asDouble")) {
            Some(number::Value::AsDouble(d))
        } else {
            i64_of(v.get("asInt")).map(number::Value::AsInt)
        };
        NumberDataPoint {
            attributes: attributes(v),
            start_time_unix_nano: u64_of(v.get("startTimeUnixNano")),
            time_unix_nano: u64_of(v.get("timeUnixNano")),
            value,
        }
    }

    fn histogram_point(v: &Value) -> HistogramDataPoint {
        HistogramDataPoint {
            attributes: attributes(v),
            start_time_unix_nano: u64_of(v.get("startTimeUnixNano")),
            time_unix_nano: u64_of(v.get("timeUnixNano")),
            count: u64_of(v.get("count")),
            sum: f64_of(v.get("sum")),
            bucket_counts: array(v, "bucketCounts").map(|c| u64_of(Some(c))).collect(),
            explicit_bounds: array(v, "explicitBounds")
                .map(|b| f64_of(Some(b)).unwrap_or(f64::NAN))
                .collect(),
            min: f64_of(v.get("min")),
            max: f64_of(v.get("max")),
        }
    }

    fn buckets(v: Option<&Value>) -> Option<Buckets> {
        let v = v?;
        Some(Buckets {
            offset: i64_of(v.get("offset")).unwrap_or(0) as i32,
            bucket_counts: array(v, "bucketCounts").map(|c| u64_of(Some(c))).collect(),
        })
    }

    fn exponential_point(v: &Value) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            attributes: attributes(v),
            start_time_unix_nano: u64_of(v.get("startTimeUnixNano")),
            time_unix_nano: u64_of(v.get("timeUnixNano")),
            count: u64_of(v.get("count")),
            sum: f64_of(v.get("sum")),
            scale: i64_of(v.get("scale")).unwrap_or(0) as i32,
            zero_count: u64_of(v.get("zeroCount")),
            positive: buckets(v.get("positive")),
            negative: buckets(v.get("negative")),
            min: f64_of(v.get("min")),
            max: f64_of(v.get("max")),
            zero_threshold: f64_of(v.get("zeroThreshold")).unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::{any_value, AnyValue};

    const T: u64 = 1_700_000_000_000_000_000;
    /// When the test requests are received: a little after their points.
    const NOW: i64 = T as i64 + 60_000_000_000;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "billing")],
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: None,
                    metrics,
                }],
            }],
        }
    }

    fn sum_metric(name: &str, temporality: i32, value: f64) -> Metric {
        Metric {
            name: name.into(),
            description: String::new(),
            unit: "1".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("route", "/b"), kv("method", "GET")],
                    start_time_unix_nano: T - 60_000_000_000,
                    time_unix_nano: T,
                    value: Some(number::Value::AsDouble(value)),
                }],
                aggregation_temporality: temporality,
                is_monotonic: true,
            })),
        }
    }

    #[test]
    fn protobuf_sums_keep_service_sorted_attributes_and_temporality() {
        let body = request(vec![sum_metric("requests", CUMULATIVE, 42.0)]).encode_to_vec();
        let parsed = parse_protobuf(&body, NOW).unwrap();
        assert_eq!(parsed.rejected, 0);
        let p = &parsed.records[0];
        assert_eq!(
            (p.name.as_str(), p.service.as_str()),
            ("requests", "billing")
        );
        assert_eq!(p.kind, MetricKind::Counter);
        assert!(p.cumulative);
        assert_eq!(p.value, PointValue::Number(42.0));
        assert_eq!(
            p.attributes,
            vec![
                ("method".to_string(), "GET".to_string()),
                ("route".to_string(), "/b".to_string())
            ]
        );
    }

    #[test]
    fn bad_points_are_refused_one_by_one_and_the_rest_kept() {
        let mut no_time = sum_metric("late", DELTA, 1.0);
        if let Some(metric::Data::Sum(s)) = &mut no_time.data {
            s.data_points[0].time_unix_nano = 0;
        }
        let nan = sum_metric("nan", DELTA, f64::NAN);
        let unspecified = sum_metric("unspecified", 0, 1.0);
        let summary = Metric {
            name: "summary".into(),
            description: String::new(),
            unit: String::new(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint { attributes: vec![] }],
            })),
        };
        let big = Metric {
            name: "big".into(),
            description: String::new(),
            unit: String::new(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("blob", &"x".repeat(MAX_ATTRIBUTE_BYTES))],
                    start_time_unix_nano: 0,
                    time_unix_nano: T,
                    value: Some(number::Value::AsInt(1)),
                }],
            })),
        };
        let mut ahead = sum_metric("ahead", DELTA, 1.0);
        if let Some(metric::Data::Sum(s)) = &mut ahead.data {
            s.data_points[0].time_unix_nano = (NOW + 2 * 86_400_000_000_000) as u64;
        }
        let good = sum_metric("good", DELTA, 3.0);
        let body =
            request(vec![no_time, nan, unspecified, summary, big, ahead, good]).encode_to_vec();
        let parsed = parse_protobuf(&body, NOW).unwrap();
        assert_eq!(parsed.rejected, 6);
        assert!(parsed
            .first_error
            .as_deref()
            .unwrap()
            .contains("time_unix_nano"));
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].name, "good");
        let answer = response(&parsed, 2, Some("series limit"));
        assert_eq!(answer.partial_success.unwrap().rejected_data_points, 8);
    }

    #[test]
    fn explicit_and_exponential_histograms_become_the_same_buckets() {
        let explicit = Metric {
            name: "duration".into(),
            description: String::new(),
            unit: "s".into(),
            data: Some(metric::Data::Histogram(OtlpHistogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: T - 1,
                    time_unix_nano: T,
                    count: 6,
                    sum: Some(3.0),
                    bucket_counts: vec![1, 0, 5],
                    explicit_bounds: vec![0.1, 0.5],
                    min: Some(0.05),
                    max: Some(0.9),
                }],
                aggregation_temporality: DELTA,
            })),
        };
        let exponential = Metric {
            name: "size".into(),
            description: String::new(),
            unit: "By".into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: T - 1,
                    time_unix_nano: T,
                    count: 7,
                    sum: Some(20.0),
                    scale: 0,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: 1,
                        bucket_counts: vec![2, 3],
                    }),
                    negative: Some(Buckets {
                        offset: 0,
                        bucket_counts: vec![1],
                    }),
                    min: None,
                    max: None,
                    zero_threshold: 0.0,
                }],
                aggregation_temporality: CUMULATIVE,
            })),
        };
        let bad = Metric {
            name: "bad".into(),
            description: String::new(),
            unit: String::new(),
            data: Some(metric::Data::Histogram(OtlpHistogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: 0,
                    time_unix_nano: T,
                    count: 1,
                    sum: None,
                    bucket_counts: vec![1, 2, 3, 4],
                    explicit_bounds: vec![1.0],
                    min: None,
                    max: None,
                }],
                aggregation_temporality: DELTA,
            })),
        };
        let parsed = parse_protobuf(
            &request(vec![explicit, exponential, bad]).encode_to_vec(),
            NOW,
        )
        .unwrap();
        assert_eq!(parsed.rejected, 1);
        let PointValue::Histogram(h) = &parsed.records[0].value else {
            panic!("a histogram")
        };
        assert_eq!(h.buckets, vec![(0.1, 1), (f64::INFINITY, 5)]);
        assert_eq!(h.min, Some(0.05));
        let PointValue::Histogram(h) = &parsed.records[1].value else {
            panic!("a histogram")
        };
        // Scale 0: base 2; index 1 covers (2, 4], index 2 (4, 8]; negative index 0 is
        // [-2, -1).
        assert_eq!(h.buckets, vec![(-1.0, 1), (0.0, 1), (4.0, 2), (8.0, 3)]);
        assert!(parsed.records[1].cumulative);
    }

    #[test]
    fn json_reads_like_protobuf_with_string_numbers_and_enum_names() {
        let body = serde_json::json!({"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
            "scopeMetrics": [{"metrics": [
                {"name": "queue.depth", "unit": "1", "gauge": {"dataPoints": [
                    {"timeUnixNano": T.to_string(), "asInt": "17",
                     "attributes": [{"key": "queue", "value": {"stringValue": "mail"}}]}]}},
                {"name": "latency", "histogram": {
                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                    "dataPoints": [{"timeUnixNano": T.to_string(), "count": "3", "sum": 0.6,
                                    "bucketCounts": ["1", "2"], "explicitBounds": [0.25]}]}}
            ]}]
        }]});
        let parsed = parse_json(body.to_string().as_bytes(), NOW).unwrap();
        assert_eq!(parsed.rejected, 0, "{:?}", parsed.first_error);
        assert_eq!(parsed.records[0].value, PointValue::Number(17.0));
        assert_eq!(parsed.records[0].service, "web");
        assert!(parsed.records[1].cumulative);
        assert!(parse_json(b"{\"resourceSpans\": []}", NOW).is_err());
        assert!(parse_protobuf(b"\xff\xff\xff", NOW).is_err());
    }
}
