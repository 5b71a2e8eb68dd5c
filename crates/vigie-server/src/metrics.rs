//! Vigie's own metrics in the Prometheus text format, served at `/metrics`.
//!
//! The middleware [`track`] runs every request inside a `request` span (method, route,
//! status), counts it by method, route template and status, and records its latency in a
//! histogram per route. Route templates (`/api/v1/projects/{id}`), not
//! raw paths, keep the number of series bounded whatever clients request. Gauges (writer queue
//! depth, database size, uptime) are read when scraped.
//!
//! Beside the counters live the in-memory status boards several parts share without
//! belonging to one of them: how each Celery broker connection is doing ([`Brokers`]), the
//! web origins refused a job's progress ([`OriginRefusals`]), and whether storage refuses
//! writes ([`StorageHealth`]).

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Upper bounds of the Celery task runtime buckets, in seconds: tasks last from milliseconds
/// to an hour.
const RUNTIME_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub logs: LogCounters,
    pub celery: CeleryCounters,
    pub storage: StorageHealth,
    /// Sentry items Vigie received and did not store, by item type and reason.
    pub sentry_dropped: Mutex<BTreeMap<(String, String), u64>>,
    /// Spans an OTLP request carried and OTLP's rules refused (malformed ids).
    pub spans_rejected: AtomicU64,
    /// Traces the keep rules judged, by outcome (`vigie_core::trace_keep::Keep::as_str`).
    pub traces_settled: Mutex<BTreeMap<&'static str, u64>>,
    /// Spans of the traces the keep rules dropped.
    pub spans_sampled_out: AtomicU64,
    /// Spans whose start was implausible, stored at their receive time
    /// (`vigie_core::span::place_in_time`).
    pub spans_time_replaced: AtomicU64,
    /// OpenTelemetry metric points refused, by reason (see [`Metrics::otlp_counters`]).
    pub metric_points_malformed: AtomicU64,
    pub metric_points_over_limit: AtomicU64,
    pub metric_points_wrong_kind: AtomicU64,
    /// Connections closed because a request's headers did not come in time
    /// (`http::connections::HEADER_TIMEOUT`), idle kept-alive ones included.
    pub connections_timed_out: AtomicU64,
    /// Connections the listener could not take (e.g. no file descriptor left).
    pub accept_failed: AtomicU64,
    /// What ingest acknowledged, by protocol and kind of item (see [`Metrics::ingested`]).
    ingested: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Artifact bundle assemblies, by outcome (`stored`, `already_stored`, `refused`).
    artifact_bundles: Mutex<BTreeMap<&'static str, u64>>,
    /// JavaScript frames of events from projects with source maps: resolved, unresolved.
    sourcemap_frames: Mutex<BTreeMap<&'static str, u64>>,
}

/// How long after the last write refused for lack of space `/health` still says degraded.
/// Refusals go on while the disk is full (clients retry), so the state clears by itself
/// this long after space returns.
pub const DISK_FULL_MEMORY: Duration = Duration::from_secs(15);

/// Whether storage refuses writes for lack of space, as the writes themselves found out: every
/// answer 507 (`AppError::InsufficientStorage`) and every background write that failed so
/// marks it, `/health` reads it.
#[derive(Default)]
pub struct StorageHealth {
    last_refusal: Mutex<Option<(Instant, String)>>,
    pub refusals: AtomicU64,
}

impl StorageHealth {
    pub fn refused(&self, reason: &str) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        *self.last_refusal.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), reason.to_string()));
    }

    /// Notes a background write's failure if it was the disk's.
    pub fn note<T>(&self, outcome: &Result<T, vigie_store::StoreError>) {
        if let Err(vigie_store::StoreError::DiskFull(reason)) = outcome {
            self.refused(&format!("disk full: {reason}"));
        }
    }

    /// Why writes are refused now, if they were within [`DISK_FULL_MEMORY`].
    pub fn problem(&self, now: Instant) -> Option<String> {
        let last = self.last_refusal.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some((at, reason)) if now.duration_since(*at) < DISK_FULL_MEMORY => {
                Some(reason.clone())
            }
            _ => None,
        }
    }
}

/// What the Celery consumer read, by outcome, and what the tasks did (as Flower's metrics
/// tell it: events by type, runtimes by task, workers online).
#[derive(Default)]
pub struct CeleryCounters {
    /// Events stored, by type (`task-succeeded`, `worker-heartbeat`, …).
    pub by_type: Mutex<BTreeMap<String, u64>>,
    /// Runtimes of finished tasks, by task name.
    pub runtime: Mutex<BTreeMap<String, Histogram>>,
    /// How far behind the last stored batch was: now minus its newest event's time.
    pub lag_ms: std::sync::atomic::AtomicI64,
    /// Events read from brokers (a `task.multi` message counts each of its events).
    pub events: AtomicU64,
    /// Events and result-backend states stored.
    pub stored: AtomicU64,
    /// Messages skipped: another serializer (pickle, msgpack) or not a Celery message.
    pub undecodable: AtomicU64,
    /// Events lost because the queue to storage was full (storage could not keep up).
    pub dropped: AtomicU64,
    /// Events lost because storage refused the batch holding them (the error is logged).
    pub store_failed: AtomicU64,
    /// Result-backend states of another database on the same Redis (pub/sub is global):
    /// skipped, they are another app's tasks.
    pub foreign: AtomicU64,
    /// Failed tasks the app's Sentry SDK reported itself: no second issue made of them.
    pub left_to_sdk: AtomicU64,
    /// Connections to a broker lost and tried again.
    pub reconnects: AtomicU64,
}

impl CeleryCounters {
    /// The counters in words, for the System page.
    pub fn summary(&self) -> Vec<(&'static str, u64)> {
        vec![
            // Stored counts the result backend's task states too, which are not events: a
            // bare "events stored" read as more stored than read.
            (
                "events read from the brokers",
                self.events.load(Ordering::Relaxed),
            ),
            (
                "events and result-backend states stored",
                self.stored.load(Ordering::Relaxed),
            ),
            (
                "messages skipped as unreadable",
                self.undecodable.load(Ordering::Relaxed),
            ),
            (
                "events dropped under overload",
                self.dropped.load(Ordering::Relaxed),
            ),
            (
                "events lost to a storage error",
                self.store_failed.load(Ordering::Relaxed),
            ),
            (
                "task states of another Redis database skipped",
                self.foreign.load(Ordering::Relaxed),
            ),
            ("reconnections", self.reconnects.load(Ordering::Relaxed)),
        ]
    }

    /// Counts stored events, (kind, how many): a batch's worth under one lock.
    pub fn saw_events(&self, counts: impl IntoIterator<Item = (String, u64)>) {
        let mut by_type = self.by_type.lock().unwrap_or_else(|p| p.into_inner());
        for (kind, n) in counts {
            *by_type.entry(kind).or_default() += n;
        }
    }

    /// Records a finished task's runtime.
    pub fn saw_runtime(&self, task: &str, seconds: f64) {
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(task.to_string())
            .or_default()
            .observe(&RUNTIME_BUCKETS, seconds);
    }

    fn render(&self, out: &mut String, workers: &[(String, bool)]) {
        let by_type = self.by_type.lock().unwrap_or_else(|p| p.into_inner());
        labeled_counters(
            out,
            "vigie_celery_task_events_total",
            "Celery events stored, by type.",
            by_type
                .iter()
                .map(|(kind, n)| (format!("type=\"{}\"", escape(kind)), *n)),
        );
        histograms(
            out,
            "vigie_celery_task_runtime_seconds",
            "Runtime of finished Celery tasks, by task.",
            "task",
            &self.runtime.lock().unwrap_or_else(|p| p.into_inner()),
            &RUNTIME_BUCKETS,
        );
        let _ = writeln!(
            out,
            "# HELP vigie_celery_event_lag_seconds Age of the newest event of the last stored batch.\n\
             # TYPE vigie_celery_event_lag_seconds gauge\nvigie_celery_event_lag_seconds {}",
            self.lag_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
        out.push_str("# HELP vigie_celery_worker_online Whether each Celery worker is online (1) or not (0).\n");
        out.push_str("# TYPE vigie_celery_worker_online gauge\n");
        for (worker, online) in workers {
            let _ = writeln!(
                out,
                "vigie_celery_worker_online{{worker=\"{}\"}} {}",
                escape(worker),
                u8::from(*online)
            );
        }
        gauge(
            out,
            "vigie_celery_workers_online",
            "Celery workers online.",
            workers.iter().filter(|(_, online)| *online).count() as u64,
        );
        counters(out, &self.table());
    }

    /// Every plain counter of the Celery consumer, as `/metrics` and the System page name it.
    fn table(&self) -> [Counter<'_>; 8] {
        [
            Counter::new(
                "vigie_celery_events_total",
                "Celery events read from brokers.",
                &self.events,
            ),
            Counter::new(
                "vigie_celery_stored_total",
                "Celery events and task states stored.",
                &self.stored,
            ),
            Counter::new(
                "vigie_celery_undecodable_total",
                "Broker messages skipped as unreadable.",
                &self.undecodable,
            )
            .not_stored(
                "Celery messages",
                "not JSON (pickle, msgpack) or not Celery's",
            ),
            Counter::new(
                "vigie_celery_dropped_total",
                "Celery events not stored: the queue to storage was full.",
                &self.dropped,
            )
            .not_stored("Celery events", "storage could not keep up"),
            Counter::new(
                "vigie_celery_store_failed_total",
                "Celery events not stored: storage refused the batch holding them (see the log).",
                &self.store_failed,
            )
            .not_stored("Celery events", "storage refused their batch (see the log)"),
            Counter::new(
                "vigie_celery_failures_left_to_sdk_total",
                "Failed tasks the app's Sentry SDK reported: they join its issue, no second one.",
                &self.left_to_sdk,
            ),
            Counter::new(
                "vigie_celery_foreign_total",
                "Result-backend task states published from another Redis database, skipped.",
                &self.foreign,
            )
            .not_stored(
                "Celery task states",
                "another Redis database's (another app's) tasks",
            ),
            Counter::new(
                "vigie_celery_reconnects_total",
                "Broker connections lost and retried.",
                &self.reconnects,
            ),
        ]
    }
}

/// How each Celery broker connection is doing, for the System page and the API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BrokerStatus {
    pub url: String,
    pub connected: bool,
    pub since: vigie_core::Timestamp,
    pub last_error: Option<String>,
}

/// This instance, as the System page and its heartbeat (`crate::cluster`) tell it.
pub struct InstanceBoard {
    pub id: String,
    pub started_at: vigie_core::Timestamp,
    leads: std::sync::atomic::AtomicBool,
}

impl InstanceBoard {
    pub fn new(id: String, started_at: vigie_core::Timestamp) -> InstanceBoard {
        InstanceBoard {
            id,
            started_at,
            leads: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether this instance leads (runs the schedule, alerts and Celery consumers).
    pub fn leads(&self) -> bool {
        self.leads.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_leads(&self, leads: bool) {
        self.leads
            .store(leads, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Every configured Celery broker's status: set by the consumer's readers, read by pages.
#[derive(Clone, Default)]
pub struct Brokers(Arc<Mutex<Vec<BrokerStatus>>>);

impl Brokers {
    pub fn list(&self) -> Vec<BrokerStatus> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records how the broker at `url` (as shown, without its password) is doing now.
    pub fn set(&self, url: String, connected: bool, error: Option<String>) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let status = BrokerStatus {
            url: url.clone(),
            connected,
            since: vigie_core::Timestamp::now(),
            last_error: error,
        };
        match list.iter_mut().find(|b| b.url == url) {
            Some(b) if b.connected == connected => b.last_error = status.last_error,
            Some(b) => *b = status,
            None => list.push(status),
        }
    }
}

/// The web pages refused a job's progress for their origin, newest first per job: the job
/// page tells its owner, who can then allow the origin. Kept in memory, for the last
/// [`OriginRefusals::KEEP`] jobs refused.
#[derive(Default)]
pub struct OriginRefusals(std::sync::Mutex<Vec<OriginRefusal>>);

#[derive(Clone, Debug, PartialEq)]
pub struct OriginRefusal {
    pub project: vigie_core::ProjectId,
    pub job: String,
    pub origin: String,
    pub at: vigie_core::Timestamp,
}

impl OriginRefusals {
    pub const KEEP: usize = 200;

    pub fn record(&self, job: &vigie_core::Job, origin: &str) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|r| !(r.project == job.project && r.job == job.id && r.origin == origin));
        list.insert(
            0,
            OriginRefusal {
                project: job.project,
                job: job.id.clone(),
                origin: origin.chars().take(200).collect(),
                at: vigie_core::Timestamp::now(),
            },
        );
        list.truncate(Self::KEEP);
    }

    /// The origins refused for this job, newest first.
    pub fn of(&self, project: vigie_core::ProjectId, job: &str) -> Vec<OriginRefusal> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.iter()
            .filter(|r| r.project == project && r.job == job)
            .cloned()
            .collect()
    }
}

/// Counters in the Prometheus text format.
/// One counter family: its help, then a line per label set (`labels` already escaped).
fn labeled_counters(
    out: &mut String,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (String, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, n) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {n}");
    }
}

/// One plain counter: its `/metrics` name and help and, when what it counts was received and
/// not stored, how the System page names it. One table serves both, so they cannot drift apart.
struct Counter<'a> {
    name: &'static str,
    help: &'static str,
    value: &'a AtomicU64,
    /// What was not stored, and why.
    not_stored: Option<(&'static str, &'static str)>,
}

impl<'a> Counter<'a> {
    fn new(name: &'static str, help: &'static str, value: &'a AtomicU64) -> Self {
        Counter {
            name,
            help,
            value,
            not_stored: None,
        }
    }

    fn not_stored(self, what: &'static str, why: &'static str) -> Self {
        Counter {
            not_stored: Some((what, why)),
            ..self
        }
    }

    fn load(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

fn counters(out: &mut String, list: &[Counter<'_>]) {
    for c in list {
        let (name, help) = (c.name, c.help);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            c.load()
        );
    }
}

/// What log ingest saw, by outcome. Counters only grow.
#[derive(Default)]
pub struct LogCounters {
    /// Records stored.
    pub stored: AtomicU64,
    /// Lines no format recognized, stored whole.
    pub unparsed: AtomicU64,
    /// Entries a protocol refused (OTLP partial success, malformed Loki entries).
    pub rejected: AtomicU64,
    /// Records whose bytes were not UTF-8, decoded lossily.
    pub lossy_utf8: AtomicU64,
    /// Records whose message was cut at the size limit.
    pub truncated: AtomicU64,
    /// Syslog records dropped because storage could not keep up.
    pub dropped: AtomicU64,
    /// Records whose time was implausible, placed at their receive time.
    pub time_replaced: AtomicU64,
}

impl LogCounters {
    /// Places records with implausible times at their receive time (see
    /// `LogRecord::place_in_time`) and counts the flags of records about to be stored.
    pub fn admit(&self, records: &mut [vigie_core::LogRecord]) {
        use vigie_core::LogRecord as R;
        let (mut unparsed, mut lossy, mut truncated, mut replaced) = (0, 0, 0, 0);
        for r in records {
            r.place_in_time();
            replaced += u64::from(r.flags & R::TIME_REPLACED != 0);
            unparsed += u64::from(r.flags & R::UNPARSED != 0);
            lossy += u64::from(r.flags & R::LOSSY_UTF8 != 0);
            truncated += u64::from(r.flags & R::TRUNCATED != 0);
        }
        self.unparsed.fetch_add(unparsed, Ordering::Relaxed);
        self.lossy_utf8.fetch_add(lossy, Ordering::Relaxed);
        self.truncated.fetch_add(truncated, Ordering::Relaxed);
        self.time_replaced.fetch_add(replaced, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        counters(out, &self.table());
    }

    /// Every log counter, as `/metrics` and the System page name it.
    fn table(&self) -> [Counter<'_>; 7] {
        [
            Counter::new(
                "vigie_logs_stored_total",
                "Log records stored.",
                &self.stored,
            ),
            Counter::new(
                "vigie_logs_unparsed_total",
                "Log lines no format recognized, stored whole.",
                &self.unparsed,
            ),
            Counter::new(
                "vigie_logs_rejected_total",
                "Log entries refused by protocol rules.",
                &self.rejected,
            )
            .not_stored("log entries", "refused by their protocol's rules"),
            Counter::new(
                "vigie_logs_lossy_utf8_total",
                "Log records with invalid UTF-8, decoded lossily.",
                &self.lossy_utf8,
            ),
            Counter::new(
                "vigie_logs_truncated_total",
                "Log records cut at the message size limit.",
                &self.truncated,
            ),
            Counter::new(
                "vigie_logs_dropped_total",
                "Syslog records dropped under overload.",
                &self.dropped,
            )
            .not_stored("syslog records", "storage could not keep up"),
            Counter::new(
                "vigie_logs_time_replaced_total",
                "Log records with an implausible time, stored at their receive time.",
                &self.time_replaced,
            ),
        ]
    }
}

/// Observations counted into buckets (whose bounds the caller keeps).
#[derive(Default, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        self.buckets.resize(bounds.len(), 0);
        if let Some(i) = bounds.iter().position(|&le| value <= le) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += value;
    }
}

/// One histogram per label value, in the Prometheus text format.
fn histograms(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    list: &BTreeMap<String, Histogram>,
    bounds: &[f64],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (value, h) in list {
        let value = escape(value);
        let mut cumulative = 0;
        for (i, le) in bounds.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {}\n\
             {name}_sum{{{label}=\"{value}\"}} {}\n\
             {name}_count{{{label}=\"{value}\"}} {}",
            h.count, h.sum, h.count
        );
    }
}

/// Values read at scrape time from outside the HTTP layer.
#[derive(Default)]
pub struct Gauges {
    /// Whether this instance leads (see `crate::cluster`).
    pub leads: bool,
    pub write_queue_depth: usize,
    pub database_size_bytes: Option<u64>,
    pub uptime_seconds: u64,
    /// Each Celery worker and whether it is online.
    pub celery_workers: Vec<(String, bool)>,
}

/// One kind of input received and not stored, for the System page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotStored {
    pub what: String,
    pub reason: String,
    pub count: u64,
    /// The `/metrics` counter that holds it.
    pub metric: &'static str,
}

impl Metrics {
    /// The OTLP span and metric counters, as `/metrics` and the System page name them.
    fn otlp_counters(&self) -> [Counter<'_>; 6] {
        [
            Counter::new(
                "vigie_spans_rejected_total",
                "Spans refused by OTLP's rules (malformed ids).",
                &self.spans_rejected,
            )
            .not_stored("spans", "refused by OTLP's rules"),
            Counter::new(
                "vigie_spans_sampled_out_total",
                "Spans of traces the keep rules dropped once settled (traces.keep_rate).",
                &self.spans_sampled_out,
            )
            .not_stored(
                "spans",
                "of traces the keep rules dropped (traces.keep_rate)",
            ),
            Counter::new(
                "vigie_spans_time_replaced_total",
                "Spans with an implausible start, stored at their receive time.",
                &self.spans_time_replaced,
            ),
            Counter::new(
                "vigie_metric_points_malformed_total",
                "OpenTelemetry metric points refused as malformed (no name or time, not finite, \
                 a summary, inconsistent buckets, oversized attributes).",
                &self.metric_points_malformed,
            )
            .not_stored("metric points", "malformed"),
            Counter::new(
                "vigie_metric_points_over_series_limit_total",
                "OpenTelemetry metric points of new series refused past metrics.max_series.",
                &self.metric_points_over_limit,
            )
            .not_stored("metric points", "over the project's series limit"),
            Counter::new(
                "vigie_metric_points_wrong_kind_total",
                "OpenTelemetry metric points refused because their metric is stored with \
                 another kind.",
                &self.metric_points_wrong_kind,
            )
            .not_stored("metric points", "of a metric stored with another kind"),
        ]
    }

    /// Everything received and not stored since start (the nonzero counters of `/metrics`
    /// that say so), for the System page: what, why, how many.
    pub fn not_stored(&self) -> Vec<NotStored> {
        let at = |what: &str, reason: &str, count: u64, metric| NotStored {
            what: what.into(),
            reason: reason.into(),
            count,
            metric,
        };
        let mut out: Vec<NotStored> = self
            .sentry_dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((item, reason), n)| {
                at(
                    &format!("Sentry {item}"),
                    reason,
                    *n,
                    "vigie_sentry_items_dropped_total",
                )
            })
            .collect();
        let (logs, celery, spans) = (self.logs.table(), self.celery.table(), self.otlp_counters());
        out.extend(logs.iter().chain(&celery).chain(&spans).filter_map(|c| {
            let (what, why) = c.not_stored?;
            Some(at(what, why, c.load(), c.name))
        }));
        out.retain(|n| n.count > 0);
        out
    }

    /// Every (method, route template, status) answered since start: what the router really
    /// sends, which the OpenAPI test compares with what the document promises.
    pub fn answered(&self) -> Vec<(String, String, u16)> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Counts what a settle pass of the trace keep rules judged and dropped.
    pub fn note_settled(&self, pass: &vigie_store::traces::Settled) {
        let mut settled = self
            .traces_settled
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (outcome, n) in &pass.traces {
            *settled.entry(outcome.as_str()).or_default() += n;
        }
        self.spans_sampled_out
            .fetch_add(pass.spans_dropped, Ordering::Relaxed);
    }

    /// Counts an artifact bundle assembly by its outcome.
    pub fn artifact_bundle(&self, outcome: &'static str) {
        *self
            .artifact_bundles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    /// Counts what source maps did for a request's JavaScript frames.
    pub fn sourcemap_frames(&self, outcome: vigie_protocol::sentry::symbolicate::Outcome) {
        if outcome.resolved + outcome.unresolved == 0 {
            return;
        }
        let mut frames = self
            .sourcemap_frames
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *frames.entry("resolved").or_default() += outcome.resolved as u64;
        *frames.entry("unresolved").or_default() += outcome.unresolved as u64;
    }

    /// Counts frames resolved when their event was read, its maps having come after it.
    pub fn sourcemap_frames_late(&self, resolved: usize) {
        *self
            .sourcemap_frames
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry("resolved_late")
            .or_default() += resolved as u64;
    }

    /// Counts `n` items of `kind` acknowledged from `protocol` (`sentry_envelope`, `otlp`, `loki`,
    /// `syslog`, …): with the not-stored counters, every received item is accounted for.
    pub fn ingested(&self, protocol: &'static str, kind: &'static str, n: u64) {
        if n > 0 {
            *self
                .ingested
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((protocol, kind))
                .or_default() += n;
        }
    }

    /// Counts Sentry items received and not stored.
    pub fn sentry_dropped(&self, item: &str, reason: &str, n: u64) {
        *self
            .sentry_dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((item.to_string(), reason.to_string()))
            .or_default() += n;
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if status == 507 {
            self.storage
                .refused("disk full: the database refused a write for lack of space");
        }
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        self.latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route.to_string())
            .or_default()
            .observe(&BUCKETS, seconds);
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP vigie_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE vigie_http_requests_total counter\n");
        for ((method, route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "vigie_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        histograms(
            &mut out,
            "vigie_http_request_duration_seconds",
            "Time to answer HTTP requests.",
            "route",
            &self.latency.lock().unwrap_or_else(|p| p.into_inner()),
            &BUCKETS,
        );
        labeled_counters(
            &mut out,
            "vigie_ingest_items_total",
            "Items acknowledged by ingest, by protocol and kind.",
            self.ingested
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|((protocol, kind), n)| {
                    (format!("protocol=\"{protocol}\",kind=\"{kind}\""), *n)
                }),
        );
        let dropped = self
            .sentry_dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        labeled_counters(
            &mut out,
            "vigie_sentry_items_dropped_total",
            "Sentry items received and not stored, by item type and reason.",
            dropped.iter().map(|((item, reason), n)| {
                let labels = format!("item=\"{}\",reason=\"{}\"", escape(item), escape(reason));
                (labels, *n)
            }),
        );
        counters(
            &mut out,
            &[Counter::new(
                "vigie_storage_disk_full_total",
                "Writes refused because the disk (or the database's quota) was full.",
                &self.storage.refusals,
            )],
        );
        gauge(
            &mut out,
            "vigie_instance_leader",
            "Whether this instance leads: runs the schedule, alerts and Celery consumers (1) or not (0).",
            u64::from(gauges.leads),
        );
        gauge(
            &mut out,
            "vigie_writer_queue_depth",
            "Writes waiting for the storage writer.",
            gauges.write_queue_depth as u64,
        );
        if let Some(size) = gauges.database_size_bytes {
            gauge(
                &mut out,
                "vigie_database_size_bytes",
                "Bytes the database occupies.",
                size,
            );
        }
        gauge(
            &mut out,
            "vigie_uptime_seconds",
            "Seconds since this Vigie started.",
            gauges.uptime_seconds,
        );
        self.logs.render(&mut out);
        counters(&mut out, &self.otlp_counters());
        counters(
            &mut out,
            &[
                Counter::new(
                    "vigie_http_connections_timed_out_total",
                    "Connections closed because a request's headers did not come within the \
                     header deadline (README, Limits; idle kept-alive connections included).",
                    &self.connections_timed_out,
                ),
                Counter::new(
                    "vigie_http_accept_failed_total",
                    "Connections the listener could not take (e.g. no file descriptor left).",
                    &self.accept_failed,
                ),
            ],
        );
        let settled = self
            .traces_settled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(outcome, n)| (format!("outcome=\"{outcome}\""), *n))
            .collect::<Vec<_>>();
        labeled_counters(
            &mut out,
            "vigie_traces_settled_total",
            "Traces the keep rules judged once settled, by outcome (kept_error, kept_slow, \
             kept_sampled, dropped).",
            settled.into_iter(),
        );
        let by_outcome = |map: &Mutex<BTreeMap<&'static str, u64>>| {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(outcome, n)| (format!("outcome=\"{outcome}\""), *n))
                .collect::<Vec<_>>()
        };
        labeled_counters(
            &mut out,
            "vigie_artifact_bundles_total",
            "Source map bundles sentry-cli asked to assemble, by outcome (stored, \
             already_stored, refused).",
            by_outcome(&self.artifact_bundles).into_iter(),
        );
        labeled_counters(
            &mut out,
            "vigie_sourcemap_frames_total",
            "JavaScript frames of events from projects with source maps, by outcome (resolved; \
             unresolved: no uploaded map covers them, they are kept as sent).",
            by_outcome(&self.sourcemap_frames).into_iter(),
        );
        self.celery.render(&mut out, &gauges.celery_workers);
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times the request and records it under its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    // Every request runs inside this span, so what a handler, the store (`store` spans) or
    // a sink logs carries the route it served.
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        status = tracing::field::Empty,
    );
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    metrics.observe(&method, &route, status, started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.observe("GET", "/health", 200, 0.002);
        m.observe("GET", "/health", 200, 0.3);
        m.observe("POST", "/login", 303, 0.05);
        m.celery.saw_runtime("shop.send", 0.3);
        m.celery.saw_runtime("shop.send", 42.0);
        m.celery.saw_events([("task-failed".to_string(), 1)]);
        m.ingested("sentry_envelope", "event", 2);
        m.ingested("sentry_envelope", "event", 1);
        m.ingested("otlp", "log", 0);
        let text = m.render(&Gauges {
            leads: true,
            write_queue_depth: 3,
            database_size_bytes: Some(4096),
            uptime_seconds: 9,
            celery_workers: vec![("celery@a".into(), true), ("celery@b".into(), false)],
        });
        assert!(text.contains(
            "vigie_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2"
        ));
        assert!(text
            .contains("vigie_ingest_items_total{protocol=\"sentry_envelope\",kind=\"event\"} 3"));
        assert!(
            !text.contains("protocol=\"otlp\""),
            "nothing stored, no series"
        );
        assert!(text.contains(
            "vigie_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "vigie_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.5\"} 2"
        ));
        assert!(text.contains("vigie_http_request_duration_seconds_count{route=\"/health\"} 2"));
        assert!(text.contains("vigie_writer_queue_depth 3"));
        assert!(text.contains("vigie_instance_leader 1"));
        assert!(text.contains("vigie_database_size_bytes 4096"));
        // Celery, as Flower's metrics tell it.
        for line in [
            "vigie_celery_task_runtime_seconds_bucket{task=\"shop.send\",le=\"0.5\"} 1",
            "vigie_celery_task_runtime_seconds_bucket{task=\"shop.send\",le=\"60\"} 2",
            "vigie_celery_task_runtime_seconds_count{task=\"shop.send\"} 2",
            "vigie_celery_task_events_total{type=\"task-failed\"} 1",
            "vigie_celery_worker_online{worker=\"celery@b\"} 0",
            "vigie_celery_workers_online 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
