//! The `metrics` scenario: OpenTelemetry metric points in over OTLP/HTTP, and charts read back.
//!
//! 1. **Requests**: `series` series (a quarter each of a cumulative counter, a gauge, a
//!    cumulative histogram of 15 bounds as the Python SDK's default, and an up-down counter;
//!    `service.name` one of three, an `http.route` and a `worker` attribute), over `minutes`
//!    minutes ending now, one point per series per minute as a periodic reader exports them:
//!    protobuf requests of `batch` points, gzip-compressed, encoded before the clock starts.
//! 2. **Ingest**: minute by minute (cumulative points of a series arrive in order), each
//!    minute's requests posted by `concurrency` writers to `POST /v1/metrics` with the project
//!    key. Every answer comes after the points are committed: points/s is durable throughput.
//! 3. **Disk and memory**: the data directory's size per point, the server's RSS.
//! 4. **Charts**: p50 and max of `GET /api/v1/metrics/{name}` over the whole range, grouped by
//!    route (a quarter of the series each) and filtered to one route, 21 reads each, the
//!    answer checked against what was sent.

use super::{add_admin, client, login, percentile, Server};
use anyhow::{bail, Context, Result};
use prost::Message;
use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use vigie_protocol::otlp::metrics::{
    metric, number, ExportMetricsServiceRequest, ExportMetricsServiceResponse, Gauge,
    HistogramDataPoint, Metric, NumberDataPoint, OtlpHistogram, ResourceMetrics, ScopeMetrics, Sum,
};
use vigie_protocol::otlp::{any_value, AnyValue, KeyValue, Resource};

pub struct Options {
    pub series: usize,
    pub minutes: usize,
    pub batch: usize,
    pub concurrency: usize,
}

const SERVICES: [&str; 3] = ["invoices-api", "billing-worker", "mailer"];
const ROUTES: [&str; 4] = [
    "/invoices/{id}",
    "/invoices/{id}/send",
    "/customers/{id}",
    "/health",
];
/// The Python SDK's default histogram bounds (milliseconds).
const BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];
const NAMES: [&str; 4] = [
    "http.server.requests",
    "process.memory.usage",
    "http.server.duration",
    "jobs.in_flight",
];
const MINUTE: u64 = 60_000_000_000;

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario metrics: {} ({} cores)",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    let (rounds, raw) = requests(&opts);
    let requests: usize = rounds.iter().map(Vec::len).sum();
    let sent: usize = rounds.iter().flatten().map(Vec::len).sum();
    let points = opts.series * opts.minutes;
    println!(
        "  requests: {points} points ({} series over {} minutes), {requests} requests of {}, \
         {:.1} MiB of protobuf ({:.1} MiB gzipped), made in {:.1} s",
        opts.series,
        opts.minutes,
        opts.batch,
        raw as f64 / 1048576.0,
        sent as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    let (server, _) = Server::start(binary)?;
    let key = server.key.clone().context("no DSN in the banner")?;
    ingest(&server.url, &key, rounds, &opts).await?;
    let disk = super::logs::dir_size(server.data.path())?;
    // The write-ahead log is checkpointed back into the database and reused: the database
    // file is what the points keep taking.
    let wal = std::fs::metadata(server.data.path().join("vigie.db-wal")).map_or(0, |m| m.len());
    println!(
        "  disk: data directory {:.1} MiB, of which the database file {:.1} MiB ({:.0} bytes \
         a point) and the write-ahead log {:.1} MiB; RSS after ingest {:.1} MiB",
        disk as f64 / 1048576.0,
        (disk - wal) as f64 / 1048576.0,
        (disk - wal) as f64 / points as f64,
        wal as f64 / 1048576.0,
        server.rss_kib()? as f64 / 1024.0
    );

    add_admin(binary, &server)?;
    let http = client()?;
    let session = login(&http, &server.url).await?;
    let range = format!("{}m", opts.minutes);
    let per_name = opts.series / NAMES.len();
    for (name, query, groups) in [
        ("http.server.requests", "group_by=http.route", ROUTES.len()),
        (
            "http.server.duration",
            "group_by=http.route&stat=p95",
            ROUTES.len(),
        ),
        (
            "process.memory.usage",
            "filter=http.route:/health&stat=max",
            1,
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..21 {
            let t = Instant::now();
            let answer = http
                .get(format!(
                    "{}/api/v1/metrics/{name}?project=1&range={range}&{query}",
                    server.url
                ))
                .header("cookie", &session)
                .send()
                .await?;
            let status = answer.status();
            let body: serde_json::Value = answer.json().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let lines = body["groups"].as_array().map_or(0, Vec::len);
            let matched = body["series"].as_u64().unwrap_or(0) as usize;
            let expected = if groups == 1 {
                per_name / ROUTES.len()
            } else {
                per_name
            };
            if !status.is_success() || lines != groups || matched != expected {
                bail!("{name} {query}: {status}, {lines} lines, {matched} series: {body}");
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "  chart {name} ({query}) over {} series × {} minutes: p50 {:.1} ms, max {:.1} ms",
            if groups == 1 {
                per_name / ROUTES.len()
            } else {
                per_name
            },
            opts.minutes,
            percentile(&times, 0.5),
            times.last().copied().unwrap_or_default()
        );
    }
    Ok(())
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

/// One minute's point of series `n` (of metric `n % 4`), cumulative totals growing by the
/// minute.
fn metric_of(n: usize, start: u64, time: u64, minute: usize) -> Metric {
    let which = n % NAMES.len();
    let attributes = vec![
        string("http.route", ROUTES[(n / NAMES.len()) % ROUTES.len()]),
        string("worker", &format!("w{}", n / (NAMES.len() * ROUTES.len()))),
    ];
    let total = (minute as f64 + 1.0) * (n % 97 + 1) as f64;
    let number_point = |value: f64| NumberDataPoint {
        attributes: attributes.clone(),
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number::Value::AsDouble(value)),
    };
    let data = match which {
        0 => metric::Data::Sum(Sum {
            data_points: vec![number_point(total)],
            aggregation_temporality: 2,
            is_monotonic: true,
        }),
        1 => metric::Data::Gauge(Gauge {
            data_points: vec![number_point(1e8 + (n * 31 + minute * 7) as f64 % 5e7)],
        }),
        2 => {
            let count = (minute as u64 + 1) * 16;
            metric::Data::Histogram(OtlpHistogram {
                data_points: vec![HistogramDataPoint {
                    attributes: attributes.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count,
                    sum: Some(count as f64 * 120.0),
                    bucket_counts: vec![count / 16; 16],
                    explicit_bounds: BOUNDS.to_vec(),
                    min: Some(1.0),
                    max: Some(9000.0),
                }],
                aggregation_temporality: 2,
            })
        }
        _ => metric::Data::Sum(Sum {
            data_points: vec![number_point((n + minute) as f64 % 13.0)],
            aggregation_temporality: 2,
            is_monotonic: false,
        }),
    };
    Metric {
        name: NAMES[which].into(),
        description: String::new(),
        unit: if which == 2 { "ms".into() } else { "1".into() },
        data: Some(data),
    }
}

/// Each minute's gzipped requests, and the protobuf bytes.
fn requests(opts: &Options) -> (Vec<Vec<Vec<u8>>>, usize) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        / MINUTE
        * MINUTE;
    let first = now - (opts.minutes as u64 - 1) * MINUTE;
    let start = first - MINUTE;
    let mut raw = 0;
    let rounds = (0..opts.minutes)
        .map(|minute| {
            let time = first + minute as u64 * MINUTE + 1_000_000_000;
            let series: Vec<usize> = (0..opts.series).collect();
            series
                .chunks(opts.batch)
                .map(|chunk| {
                    // One resource per service, as three processes' exporters would send.
                    let resource_metrics = SERVICES
                        .iter()
                        .enumerate()
                        .map(|(s, service)| ResourceMetrics {
                            resource: Some(Resource {
                                attributes: vec![string("service.name", service)],
                            }),
                            scope_metrics: vec![ScopeMetrics {
                                scope: None,
                                metrics: chunk
                                    .iter()
                                    .filter(|n| *n % SERVICES.len() == s)
                                    .map(|n| metric_of(*n, start, time, minute))
                                    .collect(),
                            }],
                        })
                        .collect();
                    let bytes = ExportMetricsServiceRequest { resource_metrics }.encode_to_vec();
                    raw += bytes.len();
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    gz.write_all(&bytes).expect("gzip in memory");
                    gz.finish().expect("gzip in memory")
                })
                .collect()
        })
        .collect();
    (rounds, raw)
}

async fn ingest(base: &str, key: &str, rounds: Vec<Vec<Vec<u8>>>, opts: &Options) -> Result<()> {
    let started = Instant::now();
    let mut latencies = Vec::new();
    // A round at a time: a series' cumulative points arrive in order.
    for round in rounds {
        let url = format!("{base}/v1/metrics");
        let posted = super::otlp::post_all(&url, Some(key), round, opts.concurrency, |answer| {
            ExportMetricsServiceResponse::decode(answer)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_data_points)
        })
        .await?;
        latencies.extend(posted.latencies_ms);
    }
    let secs = started.elapsed().as_secs_f64();
    let points = opts.series * opts.minutes;
    latencies.sort_by(f64::total_cmp);
    println!(
        "  ingest: {points} points as OTLP protobuf (gzip), requests of {}, {} writers: {:.0} \
         points/s ({:.1} s; request p50 {:.1} ms, p99 {:.1} ms)",
        opts.batch,
        opts.concurrency,
        points as f64 / secs,
        secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    Ok(())
}
