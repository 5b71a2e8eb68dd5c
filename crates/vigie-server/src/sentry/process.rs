//! From a request body to what is stored: each item parsed, scrubbed, grouped, summarized.
//!
//! The order matters: an event is **scrubbed first**, and everything shown later — the title,
//! the user, the tags — is read from the scrubbed event, so a password in an exception message
//! never reaches an issue title either.
//!
//! Problems are collected, not fatal: a malformed item is named in `problems` and the items
//! around it are still stored (the handler then answers 400 with the reasons). Items over the
//! size limits make `oversized` (413) and nothing of the envelope is stored: a request is
//! never half acknowledged.

use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use vigie_core::event::group;
use vigie_core::json;
use vigie_core::monitor::RunStatus;
use vigie_core::scrub::Scrubber;
use vigie_core::secret::random_hex;
use vigie_core::span::Span;
use vigie_core::{LogRecord, ProjectId, Timestamp};
use vigie_protocol::sentry::envelope::{self, ItemType};
use vigie_protocol::sentry::symbolicate::{symbolicate, Outcome, SourceMaps};
use vigie_protocol::sentry::{as_spans, event, items, spans, transaction};
use vigie_store::errors::{
    Dropped, EventBody, LooseSpan, NewAttachment, NewEvent, NewFeedback, NewTransaction,
    SessionCounts, SpanTiming,
};
use vigie_store::{CheckInReport, ErrorBatch, ErrorSettings};

/// Largest event or transaction item (and `/store/` body).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// How one request is processed: whose, when, and under which settings.
pub struct Context<'a> {
    pub project: ProjectId,
    pub settings: &'a ErrorSettings,
    pub received: Timestamp,
    pub max_attachment_bytes: usize,
    /// The source maps this request's JavaScript events need (`crate::sourcemaps::maps`).
    pub js: JsFrames<'a>,
}

/// Source maps for an event's minified frames, and what they resolved.
#[derive(Default)]
pub struct JsFrames<'a> {
    /// `None` when the project holds no map this request needs: frames are left as sent.
    pub maps: Option<&'a (dyn SourceMaps + Sync)>,
    /// Frames resolved and left unresolved, over the request (for `/metrics`).
    pub resolved: AtomicUsize,
    pub unresolved: AtomicUsize,
}

impl JsFrames<'_> {
    /// What the maps did over the request.
    pub fn outcome(&self) -> Outcome {
        Outcome {
            resolved: self.resolved.load(Ordering::Relaxed),
            unresolved: self.unresolved.load(Ordering::Relaxed),
        }
    }
}

/// What a request brought, ready for the sink.
#[derive(Debug)]
pub struct Prepared {
    pub batch: ErrorBatch,
    /// Sentry `log` items, for the log engine.
    pub logs: Vec<LogRecord>,
    /// Cron monitor check-ins (see `crate::monitors`).
    pub check_ins: Vec<CheckInReport>,
    /// The id to answer with: the envelope's event id, or the event's.
    pub id: Option<String>,
    /// Items refused as malformed, each with the reason.
    pub problems: Vec<String>,
    /// Set when an item is over its size limit: the whole request is refused with 413.
    pub oversized: Option<String>,
    /// What the SDK says it dropped (client reports), kept apart from `batch.dropped` (what
    /// Vigie did not keep) until both are counted.
    pub reported: Vec<Dropped>,
}

impl Prepared {
    fn new(project: ProjectId) -> Prepared {
        Prepared {
            batch: ErrorBatch::new(project),
            logs: Vec::new(),
            check_ins: Vec::new(),
            id: None,
            problems: Vec::new(),
            oversized: None,
            reported: Vec::new(),
        }
    }
}

/// The attributes of a Sentry log that say how to reach its user (`sendDefaultPii`).
const USER_CONTACT_FIELDS: [&str; 3] = ["user.email", "user.ip_address", "client.address"];

/// The dropped-count reason of an item of a type Vigie does not store.
pub const NOT_STORED: &str = "not_stored_by_vigie";
/// The dropped-count reason of an attachment over `errors.max_attachment_mib`.
pub const TOO_LARGE: &str = "too_large";
/// The dropped-count reason of spans past the 1,000 of one `span` item.
pub const TOO_MANY: &str = "too_many";
/// The dropped-count reason of a streamed span under no segment that names no transaction.
pub const NO_SEGMENT: &str = "no_segment";

/// A Sentry envelope (`/api/<project>/envelope/`). `Err` when not even the header parses.
pub fn envelope(body: &[u8], ctx: &Context) -> Result<Prepared, String> {
    let parsed = envelope::parse(body).map_err(|e| e.to_string())?;
    let mut out = Prepared::new(ctx.project);
    if let Some(error) = parsed.error {
        out.problems.push(error.to_string());
    }
    let header_id = parsed
        .envelope
        .event_id()
        .and_then(event::normalize_event_id);
    out.id = header_id.clone();
    // Streamed spans are assembled once every item is read: a segment and its children may
    // come in several items.
    let mut streamed = Vec::new();
    for (index, item) in parsed.envelope.items.iter().enumerate() {
        let payload = item.payload;
        let json = || {
            serde_json::from_slice::<Value>(payload)
                .map_err(|e| format!("item {index} ({}): not JSON: {e}", item.kind.as_str()))
        };
        match &item.kind {
            ItemType::Event | ItemType::Transaction if payload.len() > MAX_EVENT_BYTES => {
                out.oversized = Some(format!(
                    "item {index} ({}) is {} KiB, over the {} KiB limit of an event",
                    item.kind.as_str(),
                    payload.len() >> 10,
                    MAX_EVENT_BYTES >> 10
                ));
                return Ok(out);
            }
            ItemType::Event => match json().and_then(|v| error_event(v, header_id.as_deref(), ctx))
            {
                Ok(e) => {
                    out.id.get_or_insert_with(|| e.event_id.clone());
                    out.batch.events.push(e);
                }
                Err(why) => out.problems.push(why),
            },
            ItemType::Transaction => {
                let trace = Some(&mut out.batch.spans);
                match json().and_then(|v| transaction_event(v, header_id.as_deref(), ctx, trace)) {
                    Ok(t) => {
                        out.id.get_or_insert_with(|| t.event_id.clone());
                        out.batch.transactions.push(t);
                    }
                    Err(why) => out.problems.push(why),
                }
            }
            ItemType::Session => match json() {
                Ok(v) => out
                    .batch
                    .sessions
                    .extend(items::session(&v, ctx.received.millis() * 1_000_000).map(counts)),
                Err(why) => out.problems.push(why),
            },
            ItemType::Sessions => match json() {
                Ok(v) => out.batch.sessions.extend(
                    items::sessions(&v, ctx.received.millis() * 1_000_000)
                        .into_iter()
                        .map(counts),
                ),
                Err(why) => out.problems.push(why),
            },
            ItemType::ClientReport => match json() {
                Ok(v) => out
                    .reported
                    .extend(items::client_report(&v).into_iter().map(|d| Dropped {
                        at: ctx.received,
                        reason: d.reason,
                        category: d.category,
                        quantity: d.quantity,
                    })),
                Err(why) => out.problems.push(why),
            },
            ItemType::Log => match json() {
                Ok(v) => {
                    let mut records = items::logs(&v, ctx.received.millis() * 1_000_000);
                    // As for events: the user's e-mail and address only where the project
                    // keeps them.
                    if !ctx.settings.keep_user_contact {
                        for r in &mut records {
                            r.fields
                                .retain(|(k, _)| !USER_CONTACT_FIELDS.contains(&k.as_str()));
                        }
                    }
                    out.logs.extend(records)
                }
                Err(why) => out.problems.push(why),
            },
            ItemType::CheckIn => match json().and_then(|v| {
                items::check_in(&v).map_err(|e| format!("item {index} (check_in): {e}"))
            }) {
                Ok(c) => out.check_ins.push(CheckInReport {
                    slug: c.monitor_slug,
                    check_in_id: Some(c.check_in_id).filter(|id| !id.is_empty()),
                    status: RunStatus::parse(&c.status).unwrap_or(RunStatus::Error),
                    duration_ms: c.duration_ms,
                    environment: c.environment,
                    output: None,
                    config: c.monitor_config,
                    at: ctx.received,
                }),
                Err(why) => out.problems.push(why),
            },
            ItemType::Attachment => attachment(&mut out, item, header_id.as_deref(), ctx),
            ItemType::Feedback(kind) => {
                match json().and_then(|v| {
                    feedback(v, kind, ctx).map_err(|e| format!("item {index} ({kind}): {e}"))
                }) {
                    Ok(f) => out.batch.feedback.push(f),
                    Err(why) => out.problems.push(why),
                }
            }
            ItemType::Span => match json()
                .and_then(|v| spans::spans_of(&v).map_err(|e| format!("item {index} (span): {e}")))
            {
                Ok((list, left_out)) => {
                    streamed.extend(list);
                    if left_out > 0 {
                        out.batch.dropped.push(Dropped::new(
                            ctx.received,
                            TOO_MANY,
                            "span",
                            left_out,
                        ));
                    }
                }
                Err(why) => out.problems.push(why),
            },
            // Types Vigie does not store (profiles, replays, statsd…) are skipped, as the
            // protocol asks of servers that do not know them — but counted, with their type:
            // the Issues page and `/metrics` say what was not kept.
            ItemType::Other(kind) => {
                out.batch
                    .dropped
                    .push(Dropped::new(ctx.received, NOT_STORED, kind, 1))
            }
        }
    }
    if !streamed.is_empty() {
        streamed_spans(&mut out, streamed, ctx);
    }
    Ok(out)
}

/// Streamed spans, as the transactions the static lifecycle would have sent (see
/// `vigie_protocol::sentry::spans`); a child whose segment came earlier or later counts in
/// its transaction's span breakdown.
fn streamed_spans(out: &mut Prepared, streamed: Vec<spans::Span>, ctx: &Context) {
    let assembled = spans::assemble(streamed);
    for event in assembled.transactions {
        match transaction_event(event, None, ctx, Some(&mut out.batch.spans)) {
            Ok(t) => out.batch.transactions.push(t),
            Err(why) => out.problems.push(format!("a segment span: {why}")),
        }
    }
    let scrubber = scrubber(ctx.settings);
    for mut l in assembled.loose {
        scrubber.scrub_event(&mut l.child);
        // Named as its segment's spans are, by the SDK its attributes name.
        let service = as_spans::loose_service(&l.child);
        out.batch
            .spans
            .extend(as_spans::child_span(&l.child, &l.trace_id, &service));
        out.batch.loose_spans.push(LooseSpan {
            transaction: l.transaction,
            time: plausible_or_received(Some((l.end * 1e9) as i64), ctx),
            span: timing(l.span),
            trace_id: l.trace_id,
            segment_id: l.segment_id,
            body: serde_json::to_vec(&l.child).expect("a JSON value serializes"),
        });
    }
    if assembled.unusable > 0 {
        let d = Dropped::new(ctx.received, NO_SEGMENT, "span", assembled.unusable);
        out.batch.dropped.push(d);
    }
}

fn timing(s: transaction::SpanSummary) -> SpanTiming {
    SpanTiming {
        op: s.op,
        description: s.description,
        duration_ms: s.duration_ms,
    }
}

/// `/api/<project>/store/`: one event (or transaction) as the whole JSON body.
pub fn store_body(body: &[u8], ctx: &Context) -> Result<Prepared, String> {
    if body.len() > MAX_EVENT_BYTES {
        let mut out = Prepared::new(ctx.project);
        out.oversized = Some(format!(
            "the event is {} KiB, over the {} KiB limit",
            body.len() >> 10,
            MAX_EVENT_BYTES >> 10
        ));
        return Ok(out);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the event is not JSON: {e}"))?;
    let mut out = Prepared::new(ctx.project);
    let id = add_event(&mut out.batch, value, ctx, true)?;
    out.id = Some(id);
    Ok(out)
}

/// Events Vigie made itself in Sentry's shape (from OpenTelemetry spans, from Celery task
/// failures), each an error event or, with `"type": "transaction"`, a transaction; one that
/// cannot be used is named in `problems` and the others are kept. Their transactions give no
/// spans: spans made them.
pub fn shaped_events(values: impl IntoIterator<Item = Value>, ctx: &Context) -> Prepared {
    let mut out = Prepared::new(ctx.project);
    for value in values {
        if let Err(why) = add_event(&mut out.batch, value, ctx, false) {
            out.problems.push(why);
        }
    }
    out
}

/// Adds one event or transaction to `batch` (with a transaction's spans when `trace`);
/// answers its id.
fn add_event(
    batch: &mut ErrorBatch,
    value: Value,
    ctx: &Context,
    trace: bool,
) -> Result<String, String> {
    if value.get("type").and_then(Value::as_str) == Some("transaction") {
        let spans = trace.then_some(&mut batch.spans);
        let t = transaction_event(value, None, ctx, spans)?;
        let id = t.event_id.clone();
        batch.transactions.push(t);
        Ok(id)
    } else {
        let e = error_event(value, None, ctx)?;
        let id = e.event_id.clone();
        batch.events.push(e);
        Ok(id)
    }
}

fn counts(s: items::SessionCounts) -> SessionCounts {
    SessionCounts {
        release: s.release,
        environment: s.environment,
        at: Timestamp(s.time.div_euclid(1_000_000)),
        started: s.started,
        errored: s.errored,
        crashed: s.crashed,
        abnormal: s.abnormal,
        unhandled: s.unhandled,
        user: s.did.as_deref().map(vigie_store::errors::user_hash),
    }
}

fn scrubber(settings: &ErrorSettings) -> Scrubber {
    Scrubber {
        extra_keys: settings
            .scrub_keys
            .iter()
            .map(|k| k.to_lowercase())
            .collect(),
        keep_user_contact: settings.keep_user_contact,
    }
}

/// The event's id (its own, else the envelope's, else a new one) and time (its own unless
/// missing, more than a minute in the future or implausibly old — see
/// `vigie_core::time::plausible_ns` —, else the time received; the body keeps what was sent).
fn identity(value: &Value, header_id: Option<&str>, ctx: &Context) -> (String, Timestamp) {
    let id = event::event_id(value)
        .or_else(|| header_id.map(str::to_string))
        .unwrap_or_else(|| random_hex(16));
    (id, plausible_or_received(event::timestamp(value), ctx))
}

/// A sent time (ns) unless missing, more than a minute in the future or implausibly old
/// (`vigie_core::time::plausible_ns`); else the time received.
fn plausible_or_received(sent_ns: Option<i64>, ctx: &Context) -> Timestamp {
    sent_ns
        .map(|ns| Timestamp(ns.div_euclid(1_000_000)))
        .filter(|t| t.millis() <= ctx.received.millis() + 60_000)
        .filter(|t| {
            vigie_core::time::plausible_ns(
                t.millis().saturating_mul(1_000_000),
                ctx.received.millis().saturating_mul(1_000_000),
            )
        })
        .unwrap_or(ctx.received)
}

fn error_event(
    mut value: Value,
    header_id: Option<&str>,
    ctx: &Context,
) -> Result<NewEvent, String> {
    if !value.is_object() {
        return Err("an event must be a JSON object".into());
    }
    scrubber(ctx.settings).scrub_event(&mut value);
    // Minified frames are resolved before grouping, so an issue is one bug whatever build
    // threw it; the frames as sent stay beside (raw_stacktrace).
    if let Some(maps) = ctx.js.maps {
        let done = symbolicate(&mut value, maps);
        ctx.js.resolved.fetch_add(done.resolved, Ordering::Relaxed);
        ctx.js
            .unresolved
            .fetch_add(done.unresolved, Ordering::Relaxed);
    }
    let (event_id, time) = identity(&value, header_id, ctx);
    let summary = event::summarize(&value);
    let grouping = group(&summary);
    let context = event::context(&value);
    Ok(NewEvent {
        event_id,
        grouping,
        level: summary.level.as_str().to_string(),
        time,
        received: ctx.received,
        environment: context.environment,
        release: context.release,
        trace_id: context.trace_id,
        job_id: context.job_id,
        user_key: context.user_key,
        user_label: context.user_label,
        tags: context.tags,
        body: EventBody::compress(&serde_json::to_vec(&value).expect("a JSON value serializes")),
    })
}

/// A transaction event, scrubbed and summarized; with `trace`, its spans (root and
/// children) go there too, for the trace store (`vigie_protocol::sentry::as_spans`).
fn transaction_event(
    mut value: Value,
    header_id: Option<&str>,
    ctx: &Context,
    trace: Option<&mut Vec<Span>>,
) -> Result<NewTransaction, String> {
    if !value.is_object() {
        return Err("a transaction must be a JSON object".into());
    }
    scrubber(ctx.settings).scrub_event(&mut value);
    let summary = transaction::summarize(&value);
    let context = event::context(&value);
    if let Some(trace) = trace {
        let job_id = context.job_id.as_deref();
        trace.extend(as_spans::transaction_spans(
            &value,
            summary.as_ref(),
            job_id,
        ));
    }
    let (event_id, time) = identity(&value, header_id, ctx);
    let summary = summary.ok_or("a transaction needs start_timestamp and timestamp")?;
    Ok(NewTransaction {
        event_id,
        apdex_ms: ctx.settings.apdex_ms as f64,
        name: summary.name,
        op: summary.op,
        time,
        duration_ms: summary.duration_ms,
        status: summary.status,
        trace_id: context.trace_id,
        job_id: context.job_id,
        spans: summary.spans.into_iter().map(timing).collect(),
        body: serde_json::to_vec(&value).expect("a JSON value serializes"),
    })
}

/// Feedback, scrubbed like an event (secrets and card numbers in the message are replaced);
/// the contact e-mail stays: the person typed it to be answered.
fn feedback(mut value: Value, kind: &str, ctx: &Context) -> Result<NewFeedback, String> {
    let contact = json::at(&value, &["contexts", "feedback", "contact_email"]).cloned();
    let email = value.get("email").cloned();
    scrubber(ctx.settings).scrub_event(&mut value);
    if let Some(c) = contact {
        value["contexts"]["feedback"]["contact_email"] = c;
    }
    if let Some(e) = email {
        value["email"] = e;
    }
    let f = items::feedback(&value, kind)?;
    Ok(NewFeedback {
        event_id: f
            .event_id
            .and_then(|id| event::normalize_event_id(&id))
            .unwrap_or_else(|| random_hex(16)),
        time: plausible_or_received(f.time, ctx),
        message: f.message,
        name: f.name,
        contact_email: f.contact_email,
        url: f.url,
        associated_event_id: f
            .associated_event_id
            .and_then(|id| event::normalize_event_id(&id)),
    })
}

fn attachment(out: &mut Prepared, item: &envelope::Item, header_id: Option<&str>, ctx: &Context) {
    let Some(event_id) = header_id else {
        out.problems
            .push("an attachment needs the envelope header's event_id".into());
        return;
    };
    if item.payload.len() > ctx.max_attachment_bytes {
        out.batch
            .dropped
            .push(Dropped::new(ctx.received, TOO_LARGE, "attachment", 1));
        return;
    }
    let text = |key: &str, default: &str| {
        item.header
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(default)
            .to_string()
    };
    out.batch.attachments.push(NewAttachment {
        event_id: event_id.to_string(),
        name: text("filename", "attachment"),
        content_type: text("content_type", "application/octet-stream"),
        received: ctx.received,
        data: item.payload.to_vec(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::sketch::Apdex;

    fn ctx(settings: &ErrorSettings) -> Context<'_> {
        Context {
            project: ProjectId(1),
            settings,
            received: Timestamp(1_800_000_000_000),
            max_attachment_bytes: 16,
            js: JsFrames::default(),
        }
    }

    #[test]
    fn a_bad_item_is_named_and_the_others_are_kept() {
        let settings = ErrorSettings::default();
        let body = concat!(
            "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n",
            "{\"type\":\"event\"}\n",
            "{\"message\":\"card 4111 1111 1111 1111 refused\",\"extra\":{\"password\":\"x\"}}\n",
            "{\"type\":\"event\"}\n",
            "{not json\n",
            "{\"type\":\"attachment\",\"filename\":\"big.bin\"}\n",
            "0123456789abcdefXYZ\n",
            "{\"type\":\"attachment\",\"filename\":\"small.txt\",\"content_type\":\"text/plain\"}\n",
            "hello\n",
            "{\"type\":\"profile\"}\n",
            "{}\n",
        );
        let out = envelope(body.as_bytes(), &ctx(&settings)).unwrap();
        assert_eq!(out.id.as_deref(), Some("9ec79c33ec9942ab8353589fcb2e04dc"));
        assert_eq!(out.batch.events.len(), 1);
        let e = &out.batch.events[0];
        assert_eq!(e.event_id, "9ec79c33ec9942ab8353589fcb2e04dc");
        assert_eq!(
            e.time,
            Timestamp(1_800_000_000_000),
            "no timestamp: the time received"
        );
        assert!(!e.grouping.title.contains("4111"), "{}", e.grouping.title);
        let stored = String::from_utf8(e.body.json().unwrap()).unwrap();
        assert!(
            !stored.contains("4111") && !stored.contains("\"x\""),
            "{stored}"
        );
        assert_eq!(out.problems.len(), 1);
        assert!(
            out.problems[0].contains("item 1 (event): not JSON"),
            "{:?}",
            out.problems
        );
        assert_eq!(out.batch.attachments.len(), 1);
        assert_eq!(out.batch.attachments[0].name, "small.txt");
        assert_eq!(out.batch.dropped[0].category, "attachment");
        assert!(out.oversized.is_none());
    }

    #[test]
    fn sentry_logs_keep_user_contact_only_when_the_project_does() {
        let body = concat!(
            "{}\n{\"type\":\"log\"}\n",
            "{\"items\":[{\"level\":\"info\",\"body\":\"paid\",\"attributes\":{",
            "\"user.id\":{\"value\":\"42\",\"type\":\"string\"},",
            "\"user.email\":{\"value\":\"ada@example.com\",\"type\":\"string\"},",
            "\"client.address\":{\"value\":\"10.1.2.3\",\"type\":\"string\"}}}]}\n",
        );
        let fields = |settings: &ErrorSettings| {
            let out = envelope(body.as_bytes(), &ctx(settings)).unwrap();
            out.logs[0]
                .fields
                .iter()
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(&ErrorSettings::default()), ["user.id"]);
        let keep = ErrorSettings {
            keep_user_contact: true,
            ..ErrorSettings::default()
        };
        assert_eq!(fields(&keep), ["client.address", "user.email", "user.id"]);
    }

    #[test]
    fn an_oversized_event_refuses_the_envelope() {
        let settings = ErrorSettings::default();
        let big = format!("{{\"message\":\"{}\"}}", "a".repeat(MAX_EVENT_BYTES));
        let body = format!("{{}}\n{{\"type\":\"event\"}}\n{big}\n");
        let out = envelope(body.as_bytes(), &ctx(&settings)).unwrap();
        assert!(out.oversized.unwrap().contains("over the 1024 KiB limit"));
        assert!(store_body(big.as_bytes(), &ctx(&settings))
            .unwrap()
            .oversized
            .is_some());
    }

    #[test]
    fn store_endpoint_events_and_transactions() {
        let settings = ErrorSettings {
            apdex_ms: 100,
            ..ErrorSettings::default()
        };
        let out = store_body(
            br#"{"message": "hello", "timestamp": 1800000001.5}"#,
            &ctx(&settings),
        )
        .unwrap();
        assert_eq!(out.batch.events[0].time, Timestamp(1_800_000_001_500));
        let future = store_body(
            br#"{"message": "hello", "timestamp": 1900000000}"#,
            &ctx(&settings),
        )
        .unwrap();
        assert_eq!(future.batch.events[0].time, Timestamp(1_800_000_000_000));
        let t = store_body(
            br#"{"type": "transaction", "transaction": "/x", "start_timestamp": 10, "timestamp": 10.25}"#,
            &ctx(&settings),
        )
        .unwrap();
        assert_eq!(t.batch.transactions[0].apdex(), Apdex::Tolerated);
        assert!(store_body(b"[1, 2]", &ctx(&settings)).is_err());
        assert!(store_body(b"nope", &ctx(&settings))
            .unwrap_err()
            .contains("not JSON"));
    }
}
