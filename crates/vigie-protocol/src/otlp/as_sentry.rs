//! What OpenTelemetry spans stand for in Sentry's terms: the transactions (endpoint and task
//! figures) and the error events (issues) a batch of spans carries.
//!
//! ```text
//!   spans of one OTLP request
//!     ├─ each entry span (kind SERVER: a request; kind CONSUMER: a task run)
//!     │    ─▶ a transaction event named by `Span::entry_name` (`GET /invoices/{id}`),
//!     │       status internal_error when the span failed or answered 5xx, its descendants in
//!     │       the batch as child spans (the "slow spans" breakdown)
//!     └─ each span event named "exception"
//!          ─▶ an error event: exception.type / exception.message, frames read from
//!             exception.stacktrace (Python tracebacks, JavaScript stacks), the trace and span,
//!             the entry span's name as the transaction, the job it ran for
//! ```
//!
//! The server runs these events through the same processing as an SDK's (scrubbing,
//! grouping, Apdex), so an endpoint or an error looks the same whichever SDK reported it.
//! Ids are derived from the span's, so a batch the exporter sends twice (after a timeout)
//! names the same events again.

use crate::celery::parse_traceback;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use vigie_core::span::{Span, SpanKind};

/// The transaction events the entry spans of `spans` stand for.
pub fn transactions(spans: &[Span]) -> Vec<Value> {
    let batch = Batch::new(spans);
    spans
        .iter()
        .filter_map(|span| {
            let op = entry_op(span)?;
            Some(transaction(&batch, span, op))
        })
        .collect()
}

/// Most error events one span makes: a loop that records an exception per iteration in one
/// span is one failure, not thousands of events.
pub const MAX_EXCEPTIONS_PER_SPAN: usize = 10;

/// The error events the `exception` events of `spans` stand for (the first
/// [`MAX_EXCEPTIONS_PER_SPAN`] of each span), and how many were left out past that.
pub fn exceptions(spans: &[Span]) -> (Vec<Value>, usize) {
    let batch = Batch::new(spans);
    let mut events = Vec::new();
    let mut left_out = 0;
    for span in spans {
        let recorded = span
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.name == "exception");
        for (n, (index, event)) in recorded.enumerate() {
            if n < MAX_EXCEPTIONS_PER_SPAN {
                events.push(exception(&batch, span, index, event));
            } else {
                left_out += 1;
            }
        }
    }
    (events, left_out)
}

/// The Sentry operation of a span that begins a unit of work, if it is one.
fn entry_op(span: &Span) -> Option<&'static str> {
    match span.kind {
        SpanKind::Server => Some("http.server"),
        SpanKind::Consumer if span.is_celery() => Some("queue.task.celery"),
        SpanKind::Consumer => Some("queue.process"),
        _ => None,
    }
}

/// The spans of one request, by id, to find a span's entry and children.
struct Batch<'a> {
    by_id: HashMap<&'a str, &'a Span>,
    children: HashMap<&'a str, Vec<&'a Span>>,
}

impl<'a> Batch<'a> {
    fn new(spans: &'a [Span]) -> Batch<'a> {
        let mut children: HashMap<&str, Vec<&Span>> = HashMap::new();
        for span in spans.iter().filter(|s| !s.parent_span_id.is_empty()) {
            children.entry(&span.parent_span_id).or_default().push(span);
        }
        Batch {
            by_id: spans.iter().map(|s| (s.span_id.as_str(), s)).collect(),
            children,
        }
    }

    /// `span` and its ancestors in the batch, nearest first (a cycle ends the walk).
    fn lineage(&self, span: &'a Span) -> impl Iterator<Item = &'a Span> + '_ {
        let mut next = Some(span);
        let mut steps = 0;
        std::iter::from_fn(move || {
            let current = next.take()?;
            steps += 1;
            if steps <= self.by_id.len() + 1 {
                next = self
                    .by_id
                    .get(current.parent_span_id.as_str())
                    .copied()
                    .filter(|p| p.trace_id == current.trace_id);
            }
            Some(current)
        })
    }

    /// The spans under `entry` in the batch, down to (not into) the next entry spans.
    fn descendants(&self, entry: &'a Span) -> Vec<&'a Span> {
        let mut found = Vec::new();
        let mut todo = vec![entry];
        while let Some(span) = todo.pop() {
            for child in self
                .children
                .get(span.span_id.as_str())
                .into_iter()
                .flatten()
            {
                if child.trace_id == entry.trace_id
                    && entry_op(child).is_none()
                    && found.len() < self.by_id.len()
                {
                    found.push(*child);
                    todo.push(child);
                }
            }
        }
        found
    }
}

/// The first `n` bytes of an id (all of it when shorter or not ASCII).
fn head(id: &str, n: usize) -> &str {
    id.get(..n).unwrap_or(id)
}

fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// Sentry's trace status of an entry span (see `Span::entry_failed`).
fn status(span: &Span) -> &'static str {
    if span.entry_failed() {
        "internal_error"
    } else {
        "ok"
    }
}

/// The child span op Sentry's breakdown groups by: a query, an outgoing request, a publish…
fn child_op(span: &Span) -> String {
    if span.attribute("db.system").is_some() {
        return "db".into();
    }
    match span.kind {
        SpanKind::Client if span.attribute("http.request.method").is_some() => "http.client",
        SpanKind::Client if span.attribute("http.method").is_some() => "http.client",
        SpanKind::Producer => "queue.publish",
        kind => kind.as_str(),
    }
    .to_string()
}

fn child_description(span: &Span) -> String {
    let attr = |keys: &[&str]| keys.iter().find_map(|k| span.attribute(k));
    if span.attribute("db.system").is_some() {
        if let Some(query) = attr(&["db.query.text", "db.statement"]) {
            return query.to_string();
        }
    }
    if let Some(url) = attr(&["url.full", "http.url"]) {
        let method = attr(&["http.request.method", "http.method"]).unwrap_or("GET");
        return format!("{method} {url}");
    }
    span.name.clone()
}

/// Resource attributes Sentry events carry in fields of their own.
fn resource<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.resource
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Fields every event of the span shares: environment, release, host, the service as a tag,
/// and the job it ran for (`Span::job_id` of it or its nearest ancestor in the batch).
fn common(batch: &Batch, span: &Span, event: &mut Map<String, Value>) {
    if let Some(env) = resource(span, "deployment.environment.name")
        .or_else(|| resource(span, "deployment.environment"))
    {
        event.insert("environment".into(), json!(env));
    }
    if let Some(version) = resource(span, "service.version") {
        event.insert("release".into(), json!(version));
    }
    if let Some(host) = resource(span, "host.name") {
        event.insert("server_name".into(), json!(host));
    }
    let mut tags = Map::new();
    if !span.service.is_empty() {
        tags.insert("service".into(), json!(span.service));
    }
    if let Some(job) = batch.lineage(span).find_map(Span::job_id) {
        tags.insert("job_id".into(), json!(job));
    }
    event.insert("tags".into(), Value::Object(tags));
}

fn transaction(batch: &Batch, span: &Span, op: &str) -> Value {
    let children: Vec<Value> = batch
        .descendants(span)
        .into_iter()
        .map(|child| {
            json!({
                "span_id": child.span_id,
                "parent_span_id": child.parent_span_id,
                "trace_id": child.trace_id,
                "op": child_op(child),
                "description": child_description(child),
                "start_timestamp": seconds(child.start),
                "timestamp": seconds(child.end),
                "status": if child.failed() { "internal_error" } else { "ok" },
            })
        })
        .collect();
    let mut data = Map::new();
    for key in ["http.request.method", "http.method"] {
        if let Some(method) = span.attribute(key) {
            data.insert(key.into(), json!(method));
        }
    }
    let mut event = json!({
        "type": "transaction",
        "event_id": format!("{}{}", head(&span.trace_id, 16), span.span_id),
        "transaction": span.entry_name(),
        "start_timestamp": seconds(span.start),
        "timestamp": seconds(span.end),
        "contexts": {"trace": {
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id,
            "op": op,
            "status": status(span),
            "data": data,
        }},
        "spans": children,
    });
    if let Value::Object(map) = &mut event {
        common(batch, span, map);
    }
    event
}

/// An exception type as a Sentry SDK of the language reports it: OpenTelemetry's Python, Java
/// and .NET SDKs send the qualified name (`smtplib.SMTPRecipientsRefused`), Sentry's the type
/// (`SMTPRecipientsRefused`) and its module apart — so the issue reads, and is named, the same
/// whichever SDK reported it.
fn split_type<'a>(language: &str, kind: &'a str) -> (Option<&'a str>, &'a str) {
    if !matches!(language, "python" | "java" | "dotnet") {
        return (None, kind);
    }
    match kind.rsplit_once('.') {
        Some((module, name)) if !module.is_empty() && !name.is_empty() => (Some(module), name),
        _ => (None, kind),
    }
}

fn exception(
    batch: &Batch,
    span: &Span,
    index: usize,
    event: &vigie_core::span::SpanEvent,
) -> Value {
    let attr = |key: &str| {
        event
            .attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let (kind, message, stack) = (
        attr("exception.type"),
        attr("exception.message"),
        attr("exception.stacktrace"),
    );
    let language = resource(span, "telemetry.sdk.language").unwrap_or("");
    let (module, kind) = split_type(language, kind);
    let mut exception = json!({
        "type": kind,
        "value": message,
        "mechanism": {"type": "opentelemetry", "handled": attr("exception.escaped") != "true"},
    });
    if let Some(module) = module {
        exception["module"] = json!(module);
    }
    let frames = frames(language, stack);
    if !frames.is_empty() {
        exception["stacktrace"] = json!({ "frames": frames });
    }
    let entry = batch.lineage(span).find(|s| entry_op(s).is_some());
    let mut value = json!({
        "event_id": format!("{}{index:08x}{}", head(&span.trace_id, 8), span.span_id),
        "timestamp": seconds(event.time),
        "level": "error",
        "platform": match language { "nodejs" | "webjs" => "javascript", "" => "other", l => l },
        "logger": span.scope,
        "transaction": entry.map_or_else(|| span.name.clone(), Span::entry_name),
        "exception": {"values": [exception]},
        "contexts": {"trace": {"trace_id": span.trace_id, "span_id": span.span_id}},
    });
    if !stack.is_empty() {
        value["extra"] = json!({ "exception.stacktrace": stack });
    }
    if let Value::Object(map) = &mut value {
        common(batch, span, map);
    }
    value
}

/// Sentry frames (oldest call first) read from an exception's printed stack, when it is a
/// Python traceback or a JavaScript stack; other languages' stacks stay text in `extra`.
fn frames(language: &str, stack: &str) -> Vec<Value> {
    if stack.contains("Traceback (most recent call last):") {
        return parse_traceback(stack, "")
            .frames
            .iter()
            .map(|f| f.to_sentry())
            .collect();
    }
    if language.ends_with("js") || stack.lines().any(|l| l.trim_start().starts_with("at ")) {
        let mut frames: Vec<Value> = stack.lines().filter_map(javascript_frame).collect();
        // V8 prints the newest call first.
        frames.reverse();
        return frames;
    }
    Vec::new()
}

/// `    at render (/app/src/render.js:12:5)` or `    at /app/src/index.js:3:1`.
fn javascript_frame(line: &str) -> Option<Value> {
    let rest = line.trim().strip_prefix("at ")?;
    let (function, place) = match rest.rsplit_once(" (") {
        Some((function, place)) => (function, place.strip_suffix(')')?),
        None => ("?", rest),
    };
    let mut parts = place.rsplitn(3, ':');
    let column: u32 = parts.next()?.parse().ok()?;
    let lineno: u32 = parts.next()?.parse().ok()?;
    let filename = parts.next()?;
    Some(json!({
        "filename": filename,
        "abs_path": filename,
        "function": function,
        "lineno": lineno,
        "colno": column,
        "in_app": !filename.contains("node_modules") && !filename.starts_with("node:"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::span::{SpanEvent, SpanStatus};

    fn span(id: u8, parent: u8, kind: SpanKind, name: &str) -> Span {
        Span {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: format!("{id:016x}"),
            parent_span_id: if parent == 0 {
                String::new()
            } else {
                format!("{parent:016x}")
            },
            service: "invoices".into(),
            name: name.into(),
            kind,
            start: 1_800_000_000_000_000_000 + i64::from(id) * 1_000_000,
            end: 1_800_000_000_250_000_000,
            resource: vec![
                ("deployment.environment.name".into(), "prod".into()),
                ("service.version".into(), "1.4.2".into()),
                ("telemetry.sdk.language".into(), "python".into()),
            ],
            ..Span::default()
        }
    }

    const TRACEBACK: &str = "Traceback (most recent call last):\n  File \"/app/invoices/send.py\", line 12, in send\n    mail(invoice)\n  File \"/usr/lib/python3/site-packages/smtp.py\", line 3, in mail\n    raise KeyError(x)\nKeyError: 'customer_email'\n";

    fn batch() -> Vec<Span> {
        let mut request = span(1, 0, SpanKind::Server, "GET /invoices/{id}");
        request.attributes = vec![
            ("http.route".into(), "/invoices/{id}".into()),
            ("http.request.method".into(), "GET".into()),
            ("http.response.status_code".into(), "200".into()),
            ("job_id".into(), "bulk-7".into()),
        ];
        let mut query = span(2, 1, SpanKind::Client, "SELECT invoices");
        query.attributes = vec![
            ("db.system".into(), "postgresql".into()),
            (
                "db.query.text".into(),
                "SELECT * FROM invoices WHERE id = 42".into(),
            ),
        ];
        let mut render = span(3, 1, SpanKind::Internal, "render");
        render.status = SpanStatus::Error;
        render.events = vec![
            SpanEvent {
                time: 1_800_000_000_100_000_000,
                name: "log".into(),
                attributes: vec![],
            },
            SpanEvent {
                time: 1_800_000_000_200_000_000,
                name: "exception".into(),
                attributes: vec![
                    ("exception.type".into(), "KeyError".into()),
                    ("exception.message".into(), "'customer_email'".into()),
                    ("exception.stacktrace".into(), TRACEBACK.into()),
                ],
            },
        ];
        let mut task = span(4, 0, SpanKind::Consumer, "run/invoices.send");
        task.attributes = vec![
            ("celery.task_name".into(), "invoices.send".into()),
            ("messaging.message.id".into(), "5f1c".into()),
        ];
        let publish = span(5, 4, SpanKind::Producer, "apply_async/invoices.pdf");
        vec![request, query, render, task, publish]
    }

    #[test]
    fn entry_spans_become_transactions_with_their_descendants() {
        let spans = batch();
        let found = transactions(&spans);
        assert_eq!(found.len(), 2, "the request and the task run: {found:#?}");
        let request = &found[0];
        assert_eq!(request["transaction"], "GET /invoices/{id}");
        assert_eq!(request["contexts"]["trace"]["op"], "http.server");
        assert_eq!(
            request["contexts"]["trace"]["status"], "ok",
            "200, span not failed"
        );
        assert_eq!(
            request["contexts"]["trace"]["data"]["http.request.method"],
            "GET"
        );
        assert_eq!(
            request["event_id"], "0af7651916cd43dd0000000000000001",
            "derived from the trace and span ids"
        );
        assert_eq!(request["environment"], "prod");
        assert_eq!(request["release"], "1.4.2");
        assert_eq!(request["tags"]["service"], "invoices");
        assert_eq!(request["tags"]["job_id"], "bulk-7");
        let children = request["spans"].as_array().unwrap();
        let ops: Vec<&str> = children.iter().map(|c| c["op"].as_str().unwrap()).collect();
        assert_eq!(children.len(), 2, "{children:#?}");
        assert!(ops.contains(&"db") && ops.contains(&"internal"), "{ops:?}");
        let db = children.iter().find(|c| c["op"] == "db").unwrap();
        assert_eq!(db["description"], "SELECT * FROM invoices WHERE id = 42");
        // The Sentry reader names it as it names an SDK's transaction: method in front.
        let summary = crate::sentry::transaction::summarize(request).unwrap();
        assert_eq!(summary.name, "GET /invoices/{id}");
        assert!(
            (summary.duration_ms - 249.0).abs() < 0.01,
            "{}",
            summary.duration_ms
        );

        let task = &found[1];
        assert_eq!(task["transaction"], "invoices.send");
        assert_eq!(task["contexts"]["trace"]["op"], "queue.task.celery");
        assert_eq!(task["tags"]["job_id"], "5f1c", "a task's job has its id");
        assert_eq!(task["spans"][0]["op"], "queue.publish");
    }

    #[test]
    fn a_failed_span_or_a_5xx_is_an_internal_error_a_4xx_is_not() {
        let mut spans = batch();
        spans[0].attributes[2].1 = "503".into();
        assert_eq!(
            transactions(&spans)[0]["contexts"]["trace"]["status"],
            "internal_error"
        );
        spans[0].attributes[2].1 = "404".into();
        assert_eq!(transactions(&spans)[0]["contexts"]["trace"]["status"], "ok");
        spans[0].status = SpanStatus::Error;
        assert_eq!(
            transactions(&spans)[0]["contexts"]["trace"]["status"],
            "internal_error"
        );
        // A span of kind INTERNAL or CLIENT alone is no transaction.
        assert!(transactions(&spans[1..3]).is_empty());
    }

    #[test]
    fn a_qualified_exception_type_reads_as_a_sentry_sdk_reports_it() {
        let cases = [
            (
                "python",
                "smtplib.SMTPRecipientsRefused",
                (Some("smtplib"), "SMTPRecipientsRefused"),
            ),
            ("python", "KeyError", (None, "KeyError")),
            (
                "java",
                "java.lang.IllegalStateException",
                (Some("java.lang"), "IllegalStateException"),
            ),
            ("python", "odd.", (None, "odd.")),
            ("nodejs", "errors.Failed", (None, "errors.Failed")),
            ("go", "*fs.PathError", (None, "*fs.PathError")),
        ];
        for (language, kind, expected) in cases {
            assert_eq!(split_type(language, kind), expected, "{language} {kind}");
        }
    }

    #[test]
    fn exception_events_become_error_events_with_frames() {
        let spans = batch();
        let (events, _) = exceptions(&spans);
        assert_eq!(events.len(), 1, "only events named exception");
        let event = &events[0];
        let exception = &event["exception"]["values"][0];
        assert_eq!(exception["type"], "KeyError");
        assert_eq!(exception["value"], "'customer_email'");
        let frames = exception["stacktrace"]["frames"].as_array().unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0]["function"], "send");
        assert_eq!(frames[0]["in_app"], true);
        assert_eq!(frames[1]["in_app"], false);
        assert_eq!(event["transaction"], "GET /invoices/{id}", "its request");
        assert_eq!(event["platform"], "python");
        assert_eq!(event["tags"]["job_id"], "bulk-7", "the request's job");
        assert_eq!(
            event["contexts"]["trace"]["span_id"],
            spans[2].span_id.as_str()
        );
        assert_eq!(event["event_id"].as_str().unwrap().len(), 32);
        assert!((event["timestamp"].as_f64().unwrap() - 1_800_000_000.2).abs() < 1e-3);
        // Grouped by type and in-app frames, as an SDK's event with the same frames.
        let summary = crate::sentry::event::summarize(event);
        assert_eq!(summary.exceptions[0].frames.len(), 2);
    }

    #[test]
    fn javascript_stacks_are_read_newest_last() {
        let stack = "TypeError: x is undefined\n    at render (/app/src/render.js:12:5)\n    at /app/src/index.js:3:1\n    at Module._compile (node:internal/modules/cjs/loader:1256:14)";
        let read = frames("nodejs", stack);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0]["filename"], "node:internal/modules/cjs/loader");
        assert_eq!(read[0]["in_app"], false);
        assert_eq!(read[2]["function"], "render");
        assert_eq!(read[2]["lineno"], 12);
        assert_eq!(read[1]["function"], "?");
        assert!(frames("java", "java.lang.Error\n\tat A.b(A.java:1)").is_empty());
    }

    #[test]
    fn a_span_recording_thousands_of_exceptions_makes_ten_events_and_says_so() {
        let mut looping = span(1, 0, SpanKind::Server, "GET /loop");
        looping.events = (0..5000)
            .map(|i| SpanEvent {
                name: if i % 2 == 0 { "exception" } else { "retry" }.into(),
                ..SpanEvent::default()
            })
            .collect();
        let mut once = span(2, 1, SpanKind::Internal, "once");
        once.events = vec![SpanEvent {
            name: "exception".into(),
            ..SpanEvent::default()
        }];
        let (events, left_out) = exceptions(&[looping, once]);
        assert_eq!(events.len(), MAX_EXCEPTIONS_PER_SPAN + 1);
        assert_eq!(left_out, 2500 - MAX_EXCEPTIONS_PER_SPAN);
    }

    #[test]
    fn a_parent_cycle_ends() {
        let mut a = span(1, 2, SpanKind::Internal, "a");
        let b = span(2, 1, SpanKind::Internal, "b");
        a.events = vec![SpanEvent {
            name: "exception".into(),
            ..SpanEvent::default()
        }];
        let spans = vec![a, b];
        let (events, _) = exceptions(&spans);
        assert_eq!(events[0]["transaction"], "a", "no entry span: its own name");
    }
}
