//! Errors and performance: issues, events, transaction aggregates and the rest of what Sentry
//! SDKs send, written and read by one piece of code for both backends.
//!
//! The server turns each envelope into an [`ErrorBatch`] (already scrubbed, grouped and
//! summarized) and hands it to [`crate::Store::write_errors`], which stores all of it in one
//! transaction:
//!
//! ```text
//! events        -> duplicates (same event id) dropped -> issues upserted per grouping key
//!                  (count, last seen, reopen on regression) -> events rows (zstd bodies)
//!                  -> hourly counts, tag values, distinct users
//! transactions  -> per (name, op, minute): counts, Apdex classes, a duration sketch merged
//!                  into the stored one -> a few samples kept whole -> span totals per hour
//! sessions, client reports, check-ins, attachments -> their tables
//! ```
//!
//! The logic is written once against [`crate::tx::Tx`], for both backends.

mod read;
mod write;

pub use read::*;
pub(crate) use write::{prune, write_batch};

pub(crate) use crate::tx::Tx;
use crate::{Result, StoreError};
use serde::Serialize;
use vigie_core::event::Grouping;
use vigie_core::issue::{Issue, IssueId, StatusChange};
use vigie_core::sketch::{Apdex, Sketch};
use vigie_core::span::Span;
use vigie_core::{ProjectId, Timestamp};

/// Per-project settings of error ingest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorSettings {
    /// Apdex threshold T in ms: satisfied ≤ T, tolerated ≤ 4T.
    pub apdex_ms: i64,
    /// Most error events accepted per minute (`None`: only the server-wide limits apply).
    pub events_per_minute: Option<i64>,
    /// Keep the user's e-mail and IP address on events (scrubbed by default).
    pub keep_user_contact: bool,
    /// Extra key names to scrub, on top of the built-in list.
    pub scrub_keys: Vec<String>,
    /// OpenTelemetry span exceptions become error events (off for a service whose Sentry SDK
    /// reports the same errors, which would count them twice).
    pub span_exceptions: bool,
    /// How many days the project's spans are kept (`None`: the server's `errors.retention`).
    pub span_retention_days: Option<i64>,
}

impl Default for ErrorSettings {
    fn default() -> Self {
        ErrorSettings {
            apdex_ms: 300,
            events_per_minute: None,
            keep_user_contact: false,
            scrub_keys: Vec::new(),
            span_exceptions: true,
            span_retention_days: None,
        }
    }
}

/// An error or message event, ready to store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// 32 hex digits.
    pub event_id: String,
    pub grouping: Grouping,
    pub level: String,
    pub time: Timestamp,
    pub received: Timestamp,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub trace_id: Option<String>,
    pub job_id: Option<String>,
    /// Who was affected: a stable key (id, else e-mail, else IP) and what to show.
    pub user_key: Option<String>,
    pub user_label: Option<String>,
    /// Tag values counted on the issue (environment, release and level are added by the store).
    pub tags: Vec<(String, String)>,
    /// The scrubbed event JSON, already compressed.
    pub body: EventBody,
}

/// A transaction (a request, a task run), ready to aggregate.
#[derive(Clone, Debug)]
pub struct NewTransaction {
    pub event_id: String,
    pub name: String,
    pub op: String,
    pub time: Timestamp,
    pub duration_ms: f64,
    /// The trace status (`ok`, `internal_error`, …).
    pub status: String,
    /// The project's Apdex threshold T when it arrived.
    pub apdex_ms: f64,
    pub trace_id: Option<String>,
    pub job_id: Option<String>,
    pub spans: Vec<SpanTiming>,
    /// The scrubbed transaction JSON, stored only if the transaction is kept as a sample.
    pub body: Vec<u8>,
}

impl NewTransaction {
    pub fn failed(&self) -> bool {
        !matches!(self.status.as_str(), "ok" | "" | "unknown")
    }

    pub fn apdex(&self) -> Apdex {
        Apdex::classify(self.duration_ms, self.apdex_ms, self.failed())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanTiming {
    pub op: String,
    /// Normalized: numbers and quoted values replaced, so one query shape is one row.
    pub description: String,
    pub duration_ms: f64,
}

/// A span whose transaction came in another request (a streamed span flushed before its
/// segment): it counts in that transaction's span breakdown, and, kept under its trace and
/// segment, joins the waterfall of that transaction's sample when the sample is read.
#[derive(Clone, Debug, PartialEq)]
pub struct LooseSpan {
    pub transaction: String,
    pub time: Timestamp,
    pub span: SpanTiming,
    /// Where it belongs: its trace and its segment's span id (none: breakdown only).
    pub trace_id: String,
    pub segment_id: Option<String>,
    /// The scrubbed span JSON, as a transaction's `spans` entry.
    pub body: Vec<u8>,
}

/// User feedback as it arrived (`feedback` or `user_report` items), scrubbed.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFeedback {
    pub event_id: String,
    pub time: Timestamp,
    pub message: String,
    pub name: Option<String>,
    pub contact_email: Option<String>,
    /// The page it was sent from.
    pub url: Option<String>,
    /// The error event it is about, when the SDK linked one.
    pub associated_event_id: Option<String>,
}

/// Release health counts (from `session` and `sessions` items).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionCounts {
    pub release: String,
    pub environment: String,
    pub at: Timestamp,
    pub started: i64,
    pub errored: i64,
    pub crashed: i64,
    pub abnormal: i64,
    /// Ended by an uncaught error that did not crash the program (browsers).
    pub unhandled: i64,
    /// The session's user, hashed ([`user_hash`]), for crash-free users.
    pub user: Option<i64>,
}

/// A session's user (`did`) as release health keeps it: the first 8 bytes of its SHA-1,
/// enough to count people apart without keeping who they are.
pub fn user_hash(did: &str) -> i64 {
    let digest = sha1_smol::Sha1::from(did).digest().bytes();
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-1 has 20 bytes"))
}

/// Events dropped before storage: by the SDK (client reports) or by Vigie (quotas).
#[derive(Clone, Debug, PartialEq)]
pub struct Dropped {
    pub at: Timestamp,
    pub reason: String,
    pub category: String,
    pub quantity: i64,
}

impl Dropped {
    /// `quantity` items of `category` (a Sentry data category: `error`, `span`, ...) left out at
    /// `at` for `reason` (the outcome reason SDK client reports use).
    pub fn new(at: Timestamp, reason: &str, category: &str, quantity: usize) -> Dropped {
        Dropped {
            at,
            reason: reason.into(),
            category: category.into(),
            quantity: i64::try_from(quantity).unwrap_or(i64::MAX),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub event_id: String,
    pub name: String,
    pub content_type: String,
    pub received: Timestamp,
    pub data: Vec<u8>,
}

/// Everything one or more envelopes of a project brought.
#[derive(Clone, Debug)]
pub struct ErrorBatch {
    pub project: ProjectId,
    pub events: Vec<NewEvent>,
    pub transactions: Vec<NewTransaction>,
    pub loose_spans: Vec<LooseSpan>,
    pub feedback: Vec<NewFeedback>,
    pub sessions: Vec<SessionCounts>,
    pub dropped: Vec<Dropped>,
    pub attachments: Vec<NewAttachment>,
    /// Spans for the trace store, in the same commit: an OpenTelemetry export's (beside the
    /// transactions and events made from them), or a Sentry transaction's as spans.
    pub spans: Vec<Span>,
}

impl ErrorBatch {
    pub fn new(project: ProjectId) -> ErrorBatch {
        ErrorBatch {
            project,
            events: Vec::new(),
            transactions: Vec::new(),
            loose_spans: Vec::new(),
            feedback: Vec::new(),
            sessions: Vec::new(),
            dropped: Vec::new(),
            attachments: Vec::new(),
            spans: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.transactions.is_empty()
            && self.loose_spans.is_empty()
            && self.feedback.is_empty()
            && self.sessions.is_empty()
            && self.dropped.is_empty()
            && self.attachments.is_empty()
            && self.spans.is_empty()
    }

    /// Appends `other` (of the same project).
    pub fn extend(&mut self, other: ErrorBatch) {
        self.events.extend(other.events);
        self.transactions.extend(other.transactions);
        self.loose_spans.extend(other.loose_spans);
        self.feedback.extend(other.feedback);
        self.sessions.extend(other.sessions);
        self.dropped.extend(other.dropped);
        self.attachments.extend(other.attachments);
        self.spans.extend(other.spans);
    }
}

/// What storing an event did to its issue (what alerts are about).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueChange {
    /// The first event of a new issue.
    New,
    /// A resolved issue came back.
    Regression,
    /// One more event of an open (or ignored) issue.
    Seen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventWritten {
    pub event_id: String,
    pub issue_id: IssueId,
    pub change: IssueChange,
    pub environment: Option<String>,
}

/// The outcome of [`crate::Store::write_errors`].
#[derive(Clone, Debug, Default)]
pub struct ErrorsWritten {
    pub events: Vec<EventWritten>,
    /// Events left out because their id was stored already (an SDK retry).
    pub duplicates: usize,
    pub transactions: usize,
    /// Streamed spans whose body was not kept for their segment's waterfall: it held
    /// [`STRAY_SPANS_PER_SEGMENT`] already (each still counts in its transaction's span
    /// breakdown). Also counted in `dropped_hours` as [`SEGMENT_FULL`].
    pub stray_spans_dropped: usize,
}

/// Most spans kept for one segment that arrived apart from it (`stray_spans`): as many as a
/// static transaction may carry (the SDKs' `maxSpans`, 1,000), so a sender that streams spans
/// under one segment forever cannot fill the disk with it.
pub const STRAY_SPANS_PER_SEGMENT: usize = 1000;
/// The dropped-count reason of a span past [`STRAY_SPANS_PER_SEGMENT`].
pub const SEGMENT_FULL: &str = "segment_full";

/// The sketch column of `transaction_minutes`, read back.
pub(crate) fn sketch_from(raw: &[u8]) -> Result<Sketch> {
    Sketch::decode(raw).ok_or_else(|| StoreError::database("unreadable duration sketch"))
}

/// zstd level of event bodies: 1. On a real 6 KB sentry-python event, levels 1 and 3 both
/// compress 2.2× (2,753 and 2,706 bytes), and level 1 costs about half the time.
const BODY_LEVEL: i32 = 1;

/// An event's JSON, zstd-compressed as it is stored.
///
/// Every event is stored with its body, so the compression is done where the event is
/// processed — on the request's thread, in parallel — and the one writer only copies bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct EventBody(Vec<u8>);

impl EventBody {
    pub fn compress(json: &[u8]) -> EventBody {
        EventBody(compress_body(json))
    }

    /// The JSON back.
    pub fn json(&self) -> Result<Vec<u8>> {
        decompress_body(&self.0)
    }

    pub(crate) fn stored(&self) -> &[u8] {
        &self.0
    }
}

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// `t` floored to a multiple of `step` ms: the start of its hour, its day (UTC).
pub(crate) fn floor(t: Timestamp, step: i64) -> i64 {
    t.millis().div_euclid(step) * step
}

pub(crate) fn compress_body(json: &[u8]) -> Vec<u8> {
    // One compression context per thread: creating one costs about as much as compressing a
    // small event.
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    CONTEXT.with_borrow_mut(|context| {
        let context = context.get_or_insert_with(|| {
            zstd::bulk::Compressor::new(BODY_LEVEL).expect("a zstd context at the default level")
        });
        context
            .compress(json)
            .expect("zstd compression of an in-memory buffer")
    })
}

pub(crate) fn decompress_body(stored: &[u8]) -> Result<Vec<u8>> {
    zstd::decode_all(stored).map_err(|e| StoreError::database(format!("unreadable body: {e}")))
}

/// Sentry events, issues, performance, feedback and attachments.
#[async_trait::async_trait]
pub trait ErrorStore: Send + Sync {
    /// Stores everything a batch of Sentry envelopes brought, in one transaction.
    async fn write_errors(&self, batch: ErrorBatch, now: Timestamp) -> Result<ErrorsWritten>;
    /// Retention: deletes events and performance data older than `before`, and the issues not
    /// seen since; answers the rows deleted.
    async fn prune_errors(&self, before: Timestamp) -> Result<u64>;
    async fn error_settings(&self, project: ProjectId) -> Result<ErrorSettings>;
    async fn set_error_settings(&self, project: ProjectId, settings: &ErrorSettings) -> Result<()>;
    async fn list_issues(&self, filter: &IssueFilter) -> Result<IssuePage>;
    async fn issue(&self, project: ProjectId, id: IssueId) -> Result<Option<Issue>>;
    /// Applies a person's status change; `NotFound` if the project has no such issue.
    async fn set_issue_status(
        &self,
        project: ProjectId,
        id: IssueId,
        change: &StatusChange,
    ) -> Result<Issue>;
    async fn issue_tags(&self, issue: IssueId) -> Result<Vec<TagCount>>;
    /// `(issue id, hour start ms, events)` since `since`.
    async fn issue_hours(
        &self,
        issues: Vec<IssueId>,
        since: Timestamp,
    ) -> Result<Vec<(IssueId, i64, i64)>>;
    async fn events(&self, filter: &EventFilter) -> Result<Vec<EventMeta>>;
    /// An event's summary and JSON body.
    async fn event(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(EventMeta, Vec<u8>)>>;
    /// Replaces a stored event's JSON (its frames resolved by source maps uploaded after it
    /// came); `false` when the project holds no such event. Its issue and summary stay.
    async fn set_event_body(&self, project: ProjectId, event_id: &str, json: &[u8])
        -> Result<bool>;
    /// Every transaction name's figures over `[since, until)`; with `buckets > 0`, also its
    /// counts over that many equal slices of the period (`TransactionStats::counts`).
    async fn transactions(
        &self,
        project: ProjectId,
        since: Timestamp,
        until: Timestamp,
        buckets: usize,
    ) -> Result<Vec<TransactionStats>>;
    async fn transaction_series(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        until: Timestamp,
        step_ms: i64,
    ) -> Result<Vec<(Timestamp, TransactionStats)>>;
    /// Kept transactions (the slowest first) from `since`, before `until` when given.
    async fn transaction_samples(
        &self,
        project: ProjectId,
        name: Option<&str>,
        since: Timestamp,
        until: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<SampleMeta>>;
    async fn transaction_sample(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(SampleMeta, Vec<u8>)>>;
    /// The samples kept of one trace (the requests and tasks it went through), oldest first.
    async fn trace_samples(&self, project: ProjectId, trace_id: &str) -> Result<Vec<SampleMeta>>;
    async fn span_stats(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<SpanStat>>;
    async fn release_health(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<ReleaseHealth>>;
    async fn dropped_events(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<DroppedCount>>;
    /// A project's user feedback, newest first; only that about `issue`'s events when given.
    async fn feedback(
        &self,
        project: ProjectId,
        issue: Option<IssueId>,
        limit: u32,
    ) -> Result<Vec<Feedback>>;
    async fn attachments(&self, project: ProjectId, event_id: &str) -> Result<Vec<AttachmentMeta>>;
    async fn attachment(
        &self,
        project: ProjectId,
        id: i64,
    ) -> Result<Option<(AttachmentMeta, Vec<u8>)>>;
}

#[async_trait::async_trait]
impl<E: crate::engine::Engine> ErrorStore for crate::engine::Db<E> {
    async fn write_errors(&self, mut batch: ErrorBatch, now: Timestamp) -> Result<ErrorsWritten> {
        let spans = std::mem::take(&mut batch.spans);
        let spans = crate::traces::EncodedSpans::encode(batch.project, spans).await?;
        self.write("write_errors", move |tx| {
            Box::pin(write_batch(tx, batch, spans, now))
        })
        .await
    }

    async fn prune_errors(&self, before: Timestamp) -> Result<u64> {
        self.write("prune_errors", move |tx| Box::pin(prune(tx, before)))
            .await
    }

    async fn error_settings(&self, project: ProjectId) -> Result<ErrorSettings> {
        self.read("error_settings", move |tx| {
            Box::pin(error_settings(tx, project))
        })
        .await
    }

    async fn set_error_settings(&self, project: ProjectId, settings: &ErrorSettings) -> Result<()> {
        let settings = settings.clone();
        self.write("set_error_settings", move |tx| {
            Box::pin(async move { set_error_settings(tx, project, &settings).await })
        })
        .await
    }

    async fn list_issues(&self, filter: &IssueFilter) -> Result<IssuePage> {
        let filter = filter.clone();
        self.read("list_issues", move |tx| {
            Box::pin(async move { list_issues(tx, &filter).await })
        })
        .await
    }

    async fn issue(&self, project: ProjectId, id: IssueId) -> Result<Option<Issue>> {
        self.read("issue", move |tx| Box::pin(issue(tx, project, id)))
            .await
    }

    async fn set_issue_status(
        &self,
        project: ProjectId,
        id: IssueId,
        change: &StatusChange,
    ) -> Result<Issue> {
        let change = change.clone();
        self.write("set_issue_status", move |tx| {
            Box::pin(async move { set_issue_status(tx, project, id, &change).await })
        })
        .await
    }

    async fn issue_tags(&self, issue: IssueId) -> Result<Vec<TagCount>> {
        self.read("issue_tags", move |tx| Box::pin(issue_tags(tx, issue)))
            .await
    }

    async fn issue_hours(
        &self,
        issues: Vec<IssueId>,
        since: Timestamp,
    ) -> Result<Vec<(IssueId, i64, i64)>> {
        self.read("issue_hours", move |tx| {
            Box::pin(async move { issue_hours(tx, &issues, since).await })
        })
        .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<EventMeta>> {
        let filter = filter.clone();
        self.read("events", move |tx| {
            Box::pin(async move { events(tx, &filter).await })
        })
        .await
    }

    async fn event(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(EventMeta, Vec<u8>)>> {
        let event_id = event_id.to_string();
        self.read("event", move |tx| {
            Box::pin(async move { event(tx, project, &event_id).await })
        })
        .await
    }

    async fn set_event_body(
        &self,
        project: ProjectId,
        event_id: &str,
        json: &[u8],
    ) -> Result<bool> {
        let event_id = event_id.to_string();
        let body = compress_body(json);
        self.write("set_event_body", move |tx| {
            Box::pin(async move {
                let changed = tx
                    .execute(
                        "UPDATE events SET body = $1 WHERE project_id = $2 AND event_id = $3",
                        &[
                            crate::sql::Value::Blob(body),
                            project.0.into(),
                            event_id.as_str().into(),
                        ],
                    )
                    .await?;
                Ok(changed > 0)
            })
        })
        .await
    }

    async fn transactions(
        &self,
        project: ProjectId,
        since: Timestamp,
        until: Timestamp,
        buckets: usize,
    ) -> Result<Vec<TransactionStats>> {
        self.read("transactions", move |tx| {
            Box::pin(transactions(tx, project, since, until, buckets))
        })
        .await
    }

    async fn transaction_series(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        until: Timestamp,
        step_ms: i64,
    ) -> Result<Vec<(Timestamp, TransactionStats)>> {
        let name = name.to_string();
        self.read("transaction_series", move |tx| {
            Box::pin(
                async move { transaction_series(tx, project, &name, since, until, step_ms).await },
            )
        })
        .await
    }

    async fn transaction_samples(
        &self,
        project: ProjectId,
        name: Option<&str>,
        since: Timestamp,
        until: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<SampleMeta>> {
        let name = name.map(str::to_string);
        self.read("transaction_samples", move |tx| {
            Box::pin(async move {
                transaction_samples(tx, project, name.as_deref(), since, until, limit).await
            })
        })
        .await
    }

    async fn transaction_sample(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<(SampleMeta, Vec<u8>)>> {
        let event_id = event_id.to_string();
        self.read("transaction_sample", move |tx| {
            Box::pin(async move { transaction_sample(tx, project, &event_id).await })
        })
        .await
    }

    async fn trace_samples(&self, project: ProjectId, trace_id: &str) -> Result<Vec<SampleMeta>> {
        let trace_id = trace_id.to_string();
        self.read("trace_samples", move |tx| {
            Box::pin(async move { trace_samples(tx, project, &trace_id).await })
        })
        .await
    }

    async fn span_stats(
        &self,
        project: ProjectId,
        name: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<SpanStat>> {
        let name = name.to_string();
        self.read("span_stats", move |tx| {
            Box::pin(async move { span_stats(tx, project, &name, since, limit).await })
        })
        .await
    }

    async fn release_health(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<ReleaseHealth>> {
        self.read("release_health", move |tx| {
            Box::pin(release_health(tx, project, since))
        })
        .await
    }

    async fn dropped_events(
        &self,
        project: ProjectId,
        since: Timestamp,
    ) -> Result<Vec<DroppedCount>> {
        self.read("dropped_events", move |tx| {
            Box::pin(dropped(tx, project, since))
        })
        .await
    }

    async fn feedback(
        &self,
        project: ProjectId,
        issue: Option<IssueId>,
        limit: u32,
    ) -> Result<Vec<Feedback>> {
        self.read("feedback", move |tx| {
            Box::pin(feedback(tx, project, issue, limit))
        })
        .await
    }

    async fn attachments(&self, project: ProjectId, event_id: &str) -> Result<Vec<AttachmentMeta>> {
        let event_id = event_id.to_string();
        self.read("attachments", move |tx| {
            Box::pin(async move { attachments(tx, project, &event_id).await })
        })
        .await
    }

    async fn attachment(
        &self,
        project: ProjectId,
        id: i64,
    ) -> Result<Option<(AttachmentMeta, Vec<u8>)>> {
        self.read("attachment", move |tx| {
            Box::pin(attachment(tx, project, id))
        })
        .await
    }
}
