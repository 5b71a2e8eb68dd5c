//! The `traces` scenario: OpenTelemetry spans in over OTLP/HTTP, and traces opened by id.
//!
//! 1. **Requests**: `spans` spans in traces of `per_trace` (a server span and its children,
//!    over the last day and sent in time order as live exporters send them, one service in
//!    three), encoded before the clock starts as the Python
//!    SDK's `BatchSpanProcessor` sends them: OTLP protobuf requests of `batch` spans (512 by
//!    default, the SDK's), gzip-compressed.
//! 2. **Ingest**: `concurrency` writers post them to `POST /v1/traces` with the project key.
//!    Every answer comes after the spans are committed, so spans/s is durable throughput.
//! 3. **Disk and memory**: the data directory's size, the server's RSS.
//! 4. **Open a trace**: p50 and max of `GET /api/v1/traces/{id}` over 101 trace ids picked
//!    at random among those sent, each checked to hold all its spans.
//! 5. **Search**: p50 and max of `GET /api/v1/traces?q=service:S name:"GET R" min:40ms`
//!    (a random service and route; newest, then slowest first) over 51 searches each, the
//!    first answer checked against what was sent.
//! 6. **A large trace**: one trace of `big_trace` spans (a bulk send: a request, a task run
//!    per batch of 100 items, a span per item with a child for its SMTP call, over three
//!    services), sent in requests of `batch` after the others; p50 and max over 21 opens of
//!    `GET /api/v1/traces/{id}` (every span checked) and of its page `/traces/{id}`.
//! 7. **Arize Phoenix** (`--phoenix-url`, `--phoenix-pid` from `bench/peers/phoenix-up.sh`),
//!    an OTLP trace store on SQLite, when given: the same requests to its `/v1/traces`
//!    (answered before it writes: its acceptance rate, then how long until the last trace
//!    sent and the 101 to be opened read back whole), and the same 101 traces (picked as in
//!    4) opened by id through its REST API.

use super::{add_admin, client, login, percentile, Server};
use anyhow::{bail, Context, Result};
use prost::Message;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use vigie_protocol::otlp::traces::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, OtlpSpan, ResourceSpans, ScopeSpans,
    Status,
};
use vigie_protocol::otlp::{any_value, AnyValue, InstrumentationScope, KeyValue, Resource};

pub struct Options {
    pub spans: usize,
    pub per_trace: usize,
    pub batch: usize,
    pub big_trace: usize,
    pub concurrency: usize,
    pub phoenix_url: Option<String>,
    pub phoenix_pid: Option<u32>,
}

const SERVICES: [&str; 3] = ["invoices-api", "billing-worker", "mailer"];
const ROUTES: [&str; 4] = [
    "/invoices/{id}",
    "/invoices/{id}/send",
    "/customers/{id}",
    "/health",
];

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario traces: {} ({} cores)",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    let (bodies, traces, raw) = requests(&opts);
    let sent: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "  requests: {} spans in {} traces, {} requests of {}, {:.1} MiB of protobuf ({:.1} MiB gzipped), made in {:.1} s",
        opts.spans,
        traces.len(),
        bodies.len(),
        opts.batch,
        raw as f64 / 1048576.0,
        sent as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    let (server, _) = Server::start(binary)?;
    let key = server.key.clone().context("no DSN in the banner")?;
    let phoenix_bodies = opts.phoenix_url.as_ref().map(|_| bodies.clone());
    ingest(
        &format!("{}/v1/traces", server.url),
        Some(&key),
        bodies,
        &opts,
    )
    .await?;
    println!(
        "  disk: data directory {:.1} MiB; RSS after ingest {:.1} MiB",
        super::logs::dir_size(server.data.path())? as f64 / 1048576.0,
        server.rss_kib()? as f64 / 1024.0
    );

    add_admin(binary, &server)?;
    let http = client()?;
    let session = login(&http, &server.url).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut times = Vec::new();
    for _ in 0..101 {
        let (id, spans) = &traces[rng.gen_range(0..traces.len())];
        let t = Instant::now();
        let answer = http
            .get(format!("{}/api/v1/traces/{id}?project=1", server.url))
            .header("cookie", &session)
            .send()
            .await?;
        let status = answer.status();
        let body: serde_json::Value = answer.json().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let got = body["spans"].as_array().map_or(0, Vec::len);
        if !status.is_success() || got != *spans {
            bail!("trace {id}: {status}, {got} spans of {spans}");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  open a trace by id ({} spans each) among {} spans: p50 {:.1} ms, max {:.1} ms (101 random ids)",
        opts.per_trace,
        opts.spans,
        percentile(&times, 0.5),
        times.last().copied().unwrap_or_default()
    );
    search(&http, &server.url, &session, &opts).await?;
    if opts.big_trace > 0 {
        big_trace(&http, &server.url, &key, &session, &opts).await?;
    }
    if let (Some(url), Some(bodies)) = (&opts.phoenix_url, phoenix_bodies) {
        drop(server);
        phoenix(url, bodies, &traces, &opts).await?;
    }
    Ok(())
}

/// The same requests to Arize Phoenix, then the same traces opened by id there.
async fn phoenix(
    url: &str,
    bodies: Vec<Vec<u8>>,
    traces: &[(String, usize)],
    opts: &Options,
) -> Result<()> {
    let url = url.trim_end_matches('/');
    let http = client()?;
    let started = Instant::now();
    ingest(&format!("{url}/v1/traces"), None, bodies, opts).await?;
    // Phoenix answers before it writes: wait for the last trace sent to read back whole.
    let spans_of = |id: String| {
        let http = http.clone();
        let path = format!("{url}/v1/projects/default/spans");
        async move {
            let answer = http
                .get(&path)
                .query(&[("trace_id", id.as_str()), ("limit", "1000")])
                .send()
                .await?;
            let body: serde_json::Value = answer.json().await?;
            Ok::<_, anyhow::Error>(body["data"].as_array().map_or(0, Vec::len))
        }
    };
    // It writes out of order: wait until the last trace sent and the 101 about to be opened
    // all read back whole.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let picked: Vec<(String, usize)> = (0..101)
        .map(|_| traces[rng.gen_range(0..traces.len())].clone())
        .collect();
    let mut waiting: Vec<(String, usize)> = picked.clone();
    waiting.push(traces.last().cloned().context("no trace sent")?);
    let deadline = Instant::now() + std::time::Duration::from_secs(1800);
    while let Some((id, spans)) = waiting.last().cloned() {
        if spans_of(id).await? >= spans {
            waiting.pop();
            continue;
        }
        if Instant::now() > deadline {
            bail!("phoenix: {} traces not whole after 30 min", waiting.len());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  phoenix: {} spans sent, the last trace and 101 others whole after {secs:.1} s: {:.0} spans/s end to end{}",
        opts.spans,
        opts.spans as f64 / secs,
        opts.phoenix_pid
            .and_then(|pid| super::rss_of(pid).ok())
            .map_or(String::new(), |kib| format!(
                "; RSS {:.0} MiB",
                kib as f64 / 1024.0
            ))
    );
    let mut times = Vec::new();
    for (id, spans) in &picked {
        let t = Instant::now();
        let got = spans_of(id.clone()).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if got != *spans {
            bail!("phoenix: trace {id}: {got} spans of {spans}");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  phoenix: open a trace by id ({} spans each) among {} spans: p50 {:.1} ms, max {:.1} ms (101 random ids)",
        opts.per_trace,
        opts.spans,
        percentile(&times, 0.5),
        times.last().copied().unwrap_or_default()
    );
    Ok(())
}

/// Sends one trace of `opts.big_trace` spans and opens it, as JSON and as its page.
async fn big_trace(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    session: &str,
    opts: &Options,
) -> Result<()> {
    let (trace_id, bodies) = bulk_send_trace(opts.big_trace, opts.batch);
    let small = Options {
        spans: opts.big_trace,
        phoenix_url: None,
        ..*opts
    };
    ingest(&format!("{base}/v1/traces"), Some(key), bodies, &small).await?;
    for (what, path) in [
        ("as JSON", format!("/api/v1/traces/{trace_id}?project=1")),
        ("its page", format!("/traces/{trace_id}")),
    ] {
        let mut times = Vec::new();
        for _ in 0..21 {
            let t = Instant::now();
            let answer = http
                .get(format!("{base}{path}"))
                .header("cookie", session)
                .send()
                .await?;
            let status = answer.status();
            let body = answer.bytes().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if !status.is_success() {
                bail!("{path}: {status}");
            }
            if what == "as JSON" {
                let trace: serde_json::Value = serde_json::from_slice(&body)?;
                let got = trace["spans"].as_array().map_or(0, Vec::len);
                if got != opts.big_trace {
                    bail!("{path}: {got} spans of {}", opts.big_trace);
                }
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "  open one trace of {} spans, {what}: p50 {:.1} ms, max {:.1} ms (21 opens)",
            opts.big_trace,
            percentile(&times, 0.5),
            times.last().copied().unwrap_or_default()
        );
    }
    Ok(())
}

/// One bulk send as a trace of `spans` spans: a request, a task run per 100 items, a span per
/// item and one for its SMTP call; answers its id and its requests of `batch` spans.
fn bulk_send_trace(spans: usize, batch: usize) -> (String, Vec<Vec<u8>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let trace_id: [u8; 16] = rng.gen();
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        - 600_000_000_000;
    let span = |id: [u8; 8], parent: Option<[u8; 8]>, name: String, kind: i32, at: u64| OtlpSpan {
        trace_id: trace_id.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.map_or_else(Vec::new, |p| p.to_vec()),
        name,
        kind,
        start_time_unix_nano: at,
        end_time_unix_nano: at + 2_000_000,
        ..OtlpSpan::default()
    };
    let root: [u8; 8] = rng.gen();
    let mut all = vec![(0, span(root, None, "POST /invoices/send".into(), 2, start))];
    let mut run = root;
    let mut at = start;
    while all.len() < spans {
        let n = all.len();
        if n % 201 == 1 {
            run = rng.gen();
            all.push((
                1,
                span(run, Some(root), "run/invoices.send_batch".into(), 5, at),
            ));
            continue;
        }
        let item: [u8; 8] = rng.gen();
        all.push((1, span(item, Some(run), format!("send invoice {n}"), 1, at)));
        if all.len() < spans {
            let smtp: [u8; 8] = rng.gen();
            all.push((
                2,
                span(smtp, Some(item), "SMTP sendmail".into(), 3, at + 100_000),
            ));
        }
        at += 1_000_000;
    }
    // The runs and items end after the request, when their last child does.
    let end = at + 2_000_000;
    all[0].1.end_time_unix_nano = end;
    let bodies = all
        .chunks(batch)
        .map(|chunk| {
            let mut by_service: Vec<Vec<OtlpSpan>> = vec![Vec::new(); SERVICES.len()];
            for (service, s) in chunk {
                by_service[*service].push(s.clone());
            }
            let resource_spans = by_service
                .into_iter()
                .enumerate()
                .filter(|(_, spans)| !spans.is_empty())
                .map(|(i, spans)| resource_spans(SERVICES[i], spans))
                .collect();
            gzip(&ExportTraceServiceRequest { resource_spans }.encode_to_vec())
        })
        .collect();
    (hex(&trace_id), bodies)
}

fn resource_spans(service: &str, spans: Vec<OtlpSpan>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![string("service.name", service)],
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "opentelemetry.instrumentation.fastapi".into(),
            }),
            spans,
        }],
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Trace search by service, route and minimum duration, newest and slowest first.
async fn search(http: &reqwest::Client, base: &str, session: &str, opts: &Options) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for order in ["newest", "slowest"] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..51 {
            let service = SERVICES[rng.gen_range(0..SERVICES.len())];
            let route = ROUTES[rng.gen_range(0..ROUTES.len())];
            let q = format!("service:{service} name:\"GET {route}\" min:40ms");
            let t = Instant::now();
            let answer = http
                .get(format!("{base}/api/v1/traces"))
                .query(&[("project", "1"), ("q", &q), ("order", order)])
                .header("cookie", session)
                .send()
                .await?;
            let status = answer.status();
            let body: serde_json::Value = answer.json().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let traces = body["traces"].as_array().cloned().unwrap_or_default();
            if !status.is_success() {
                bail!("search {q}: {status} {body}");
            }
            if let Some(first) = traces.first() {
                let right = first["service"] == service
                    && first["name"] == format!("GET {route}")
                    && first["duration_ns"].as_i64().unwrap_or(0) >= 40_000_000;
                if !right {
                    bail!("search {q}: found {first}");
                }
            }
            found += traces.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "  search service+route+min 40 ms, {order} first, among {} spans: p50 {:.1} ms, max {:.1} ms ({} traces found in 51 searches)",
            opts.spans,
            percentile(&times, 0.5),
            times.last().copied().unwrap_or_default(),
            found
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

/// The gzipped requests, the trace ids with their span counts, and the protobuf bytes.
fn requests(opts: &Options) -> (Vec<Vec<u8>>, Vec<(String, usize)>, usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let day = 86_400_000_000_000u64;
    let mut spans = Vec::with_capacity(opts.spans);
    let mut traces = Vec::new();
    // Each trace's spans with its start, to send the day in the order it happened.
    let mut by_start: Vec<(u64, usize, std::ops::Range<usize>)> = Vec::new();
    while spans.len() < opts.spans {
        let trace_id: [u8; 16] = rng.gen();
        let count = opts.per_trace.min(opts.spans - spans.len());
        let start = now - rng.gen_range(0..day);
        let root_id: [u8; 8] = rng.gen();
        let route = ROUTES[rng.gen_range(0..ROUTES.len())];
        by_start.push((start, traces.len(), spans.len()..spans.len() + count));
        for n in 0..count {
            let span_id: [u8; 8] = if n == 0 { root_id } else { rng.gen() };
            let begin = start + n as u64 * 1_000_000;
            spans.push(OtlpSpan {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: if n == 0 { Vec::new() } else { root_id.to_vec() },
                name: if n == 0 {
                    format!("GET {route}")
                } else {
                    format!("SELECT invoices {n}")
                },
                kind: if n == 0 { 2 } else { 3 },
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + rng.gen_range(100_000..50_000_000),
                attributes: if n == 0 {
                    vec![
                        string("http.route", route),
                        string("http.request.method", "GET"),
                    ]
                } else {
                    vec![string("db.system", "postgresql")]
                },
                status: (rng.gen_range(0..50) == 0).then(|| Status {
                    message: "KeyError: 'customer_email'".into(),
                    code: 2,
                }),
                ..OtlpSpan::default()
            });
        }
        traces.push((hex(&trace_id), count));
    }
    // Exporters send what just happened: a day of traffic arrives in time order.
    by_start.sort_by_key(|(start, _, _)| *start);
    // The traces in the order they are sent: the last one is the last to arrive.
    let traces = by_start
        .iter()
        .map(|(_, i, _)| traces[*i].clone())
        .collect();
    let spans: Vec<OtlpSpan> = by_start
        .into_iter()
        .flat_map(|(_, _, range)| spans[range].to_vec())
        .collect();
    let mut raw = 0;
    let bodies = spans
        .chunks(opts.batch)
        .enumerate()
        .map(|(i, chunk)| {
            let request = ExportTraceServiceRequest {
                resource_spans: vec![resource_spans(SERVICES[i % SERVICES.len()], chunk.to_vec())],
            };
            let bytes = request.encode_to_vec();
            raw += bytes.len();
            gzip(&bytes)
        })
        .collect();
    (bodies, traces, raw)
}

/// Posts `bodies` to the OTLP endpoint `url` (with the project key when given) from
/// `opts.concurrency` writers, each request until it is taken; no answer may refuse a span.
async fn ingest(url: &str, key: Option<&str>, bodies: Vec<Vec<u8>>, opts: &Options) -> Result<()> {
    let started = Instant::now();
    let posted = super::otlp::post_all(url, key, bodies, opts.concurrency, |answer| {
        ExportTraceServiceResponse::decode(answer)
            .ok()
            .and_then(|r| r.partial_success)
            .map_or(0, |p| p.rejected_spans)
    })
    .await?;
    let latencies = posted.latencies_ms;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  ingest: {} spans as OTLP protobuf (gzip), requests of {}, {} writers: {:.0} spans/s \
         ({:.1} s; request p50 {:.1} ms, p99 {:.1} ms; {} answers 429/503, retried)",
        opts.spans,
        opts.batch,
        opts.concurrency,
        opts.spans as f64 / secs,
        secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        posted.retries
    );
    Ok(())
}
