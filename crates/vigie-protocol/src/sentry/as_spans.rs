//! Sentry transactions as spans, for the one trace store OpenTelemetry spans go to: a trace
//! begun by a browser's Sentry SDK and continued by an OpenTelemetry backend (or the other way
//! round) reads as one tree, since both carry the W3C trace id.
//!
//! ```text
//! transaction event (scrubbed)
//!   contexts.trace {trace_id, span_id, parent_span_id, op, status}, start_timestamp,
//!   timestamp, transaction  ─▶ the root span, named as the Performance page names it
//!   spans[] {span_id, parent_span_id, op, description, start_timestamp, timestamp, status,
//!            data}            ─▶ one span each, named by its description (else its op)
//! ```
//!
//! Sentry has no service name: a span's service is the event's `service` tag when the app
//! sets one, else `sentry:<platform>` (`sentry:javascript`, `sentry:python`), so a browser's
//! spans and a backend's read apart on the waterfall. The kind follows the operation
//! (`http.server` a request served, `http.client` and `db` calls, `queue.*` messaging). A span
//! whose ids are not hex of the right length is left out; a transaction without a trace id
//! gives none.

use super::event::seconds;
use super::transaction::TransactionSummary;
use serde_json::{Map, Value};
use vigie_core::json;
use vigie_core::span::{Span, SpanKind, SpanStatus};

/// Most child spans taken from one transaction (the SDKs send at most 1,000).
pub const MAX_CHILDREN: usize = 1000;

/// The spans a (scrubbed) transaction event holds: its root, then its children. `summary` and
/// `job_id` are what [`super::transaction::summarize`] and [`super::event::context`] read
/// from the same event: the caller has them already, and reading them twice was a fifth of a
/// transaction's work.
pub fn transaction_spans(
    event: &Value,
    summary: Option<&TransactionSummary>,
    job_id: Option<&str>,
) -> Vec<Span> {
    let trace = json::at(event, &["contexts", "trace"]);
    fn text(v: Option<&Value>) -> &str {
        v.and_then(Value::as_str).map(str::trim).unwrap_or("")
    }
    let trace_id = text(trace.and_then(|t| t.get("trace_id"))).to_ascii_lowercase();
    let root_id = text(trace.and_then(|t| t.get("span_id"))).to_ascii_lowercase();
    if !is_hex(&trace_id, 32) || !is_hex(&root_id, 16) {
        return Vec::new();
    }
    let service = service(event);
    let op = text(trace.and_then(|t| t.get("op")));
    let name = summary.map_or_else(
        || text(event.get("transaction")).to_string(),
        |s| s.name.clone(),
    );
    let Some(mut root) = span_of(event, trace, &trace_id, &service) else {
        return Vec::new();
    };
    root.span_id = root_id;
    root.name = if name.is_empty() {
        op.to_string()
    } else {
        name
    };
    root.status = status(text(trace.and_then(|t| t.get("status"))));
    if root.status == SpanStatus::Error {
        root.status_message = text(trace.and_then(|t| t.get("status"))).to_string();
    }
    if let Some(job) = job_id {
        root.attributes.push(("job_id".into(), job.to_string()));
    }
    let mut spans = vec![root];
    for child in event
        .get("spans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_CHILDREN)
    {
        if let Some(span) = child_span(child, &trace_id, &service) {
            spans.push(span);
        }
    }
    spans
}

/// One entry of a transaction's `spans` (also a streamed span kept apart from its segment).
pub fn child_span(child: &Value, trace_id: &str, service: &str) -> Option<Span> {
    let mut span = span_of(child, Some(child), trace_id, service)?;
    let id = child
        .get("span_id")
        .and_then(Value::as_str)?
        .to_ascii_lowercase();
    if !is_hex(&id, 16) {
        return None;
    }
    span.span_id = id;
    let description = child
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !description.is_empty() {
        span.name = description.to_string();
    }
    let said = child.get("status").and_then(Value::as_str).unwrap_or("");
    span.status = status(said);
    if span.status == SpanStatus::Error {
        span.status_message = said.to_string();
    }
    Some(span)
}

/// The fields a root and a child share: times, parent, op as name and kind, data as
/// attributes. `None` without a start and an end.
fn span_of(item: &Value, trace: Option<&Value>, trace_id: &str, service: &str) -> Option<Span> {
    let start = seconds(item.get("start_timestamp")?)?;
    let end = seconds(item.get("timestamp")?)?.max(start);
    let op = trace
        .and_then(|t| t.get("op"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let parent = trace
        .and_then(|t| t.get("parent_span_id"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .filter(|p| is_hex(p, 16))
        .unwrap_or_default();
    let mut attributes = vec![("sentry.op".to_string(), op.clone())];
    if let Some(Value::Object(data)) = trace.and_then(|t| t.get("data")) {
        attributes.extend(as_text(data));
    }
    Some(Span {
        trace_id: trace_id.to_string(),
        span_id: String::new(),
        parent_span_id: parent,
        service: service.to_string(),
        kind: kind(&op),
        name: op,
        start: nanos(start),
        end: nanos(end),
        scope: "sentry".into(),
        attributes,
        ..Span::default()
    })
}

/// Seconds as nanoseconds, the whole seconds apart so the microseconds SDKs send survive
/// (a float holds a 2026 time to about 240 ns only).
fn nanos(seconds: f64) -> i64 {
    seconds.trunc() as i64 * 1_000_000_000 + (seconds.fract() * 1e9).round() as i64
}

/// The event's `service` tag, else `sentry:<platform>`: its `platform`, or, for a streaming
/// SDK that sends none (`@sentry/browser` 11), the one its SDK name says
/// (`sentry.javascript.browser` is `javascript`).
pub fn service(event: &Value) -> String {
    let tagged = match event.get("tags") {
        Some(Value::Object(tags)) => tags.get("service").and_then(Value::as_str),
        Some(Value::Array(pairs)) => pairs.iter().find_map(|p| {
            let p = p.as_array()?;
            (p.first()?.as_str()? == "service").then(|| p.get(1)?.as_str())?
        }),
        _ => None,
    };
    match tagged.map(str::trim).filter(|s| !s.is_empty()) {
        Some(service) => service.to_string(),
        None => format!(
            "sentry:{}",
            event
                .get("platform")
                .and_then(Value::as_str)
                .or_else(|| {
                    let sdk = event.get("sdk")?.get("name")?.as_str()?;
                    sdk.strip_prefix("sentry.")?.split('.').next()
                })
                .filter(|p| !p.is_empty())
                .unwrap_or("other")
        ),
    }
}

/// The service of a streamed span that came without its segment (a loose span, as its
/// transaction's `spans` entry): `sentry:<platform>` read from its own attributes, which carry
/// the SDK that sent it.
pub fn loose_service(child: &Value) -> String {
    let attribute = |key: &str| child.get("data").and_then(|d| d.get(key)).cloned();
    service(&serde_json::json!({
        "platform": attribute("sentry.platform"),
        "sdk": {"name": attribute("sentry.sdk.name")},
    }))
}

fn kind(op: &str) -> SpanKind {
    let family = op.split('.').next().unwrap_or("");
    match op {
        "http.server" => SpanKind::Server,
        "http.client" => SpanKind::Client,
        _ if op.starts_with("queue.task") || op == "queue.process" => SpanKind::Consumer,
        _ if op.starts_with("queue.publish") || op.starts_with("queue.submit") => {
            SpanKind::Producer
        }
        _ if matches!(family, "db" | "cache" | "redis") => SpanKind::Client,
        _ => SpanKind::Internal,
    }
}

/// Sentry's span status: `ok` (or nothing, or `unknown`) is fine, any other is an error.
fn status(text: &str) -> SpanStatus {
    match text {
        "" | "unknown" => SpanStatus::Unset,
        "ok" => SpanStatus::Ok,
        _ => SpanStatus::Error,
    }
}

fn as_text(map: &Map<String, Value>) -> impl Iterator<Item = (String, String)> + '_ {
    map.iter().map(|(k, v)| {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        (k.clone(), text)
    })
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text.bytes().all(|b| b.is_ascii_hexdigit())
        && text.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transaction() -> Value {
        json!({
            "type": "transaction",
            "platform": "python",
            "transaction": "/invoices/{id}",
            "start_timestamp": 1_800_000_000.0,
            "timestamp": 1_800_000_000.25,
            "request": {"method": "GET"},
            "tags": {"job_id": "bulk-7"},
            "contexts": {"trace": {
                "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736",
                "span_id": "00f067aa0ba902b7",
                "parent_span_id": "b7ad6b7169203331",
                "op": "http.server",
                "status": "internal_error",
                "data": {"thread.id": 7}
            }},
            "spans": [
                {"span_id": "1111111111111111", "parent_span_id": "00f067aa0ba902b7",
                 "op": "db", "description": "SELECT * FROM invoices WHERE id = %s",
                 "start_timestamp": 1_800_000_000.01, "timestamp": 1_800_000_000.05,
                 "status": "ok", "data": {"db.system": "postgresql"}},
                {"span_id": "not hex", "op": "db",
                 "start_timestamp": 1_800_000_000.01, "timestamp": 1_800_000_000.05},
                {"span_id": "2222222222222222", "parent_span_id": "00f067aa0ba902b7",
                 "op": "http.client", "start_timestamp": 1_800_000_000.1}
            ]
        })
    }

    fn spans_of(event: &Value) -> Vec<Span> {
        use crate::sentry::{event, transaction::summarize};
        let job_id = event::context(event).job_id;
        transaction_spans(event, summarize(event).as_ref(), job_id.as_deref())
    }

    #[test]
    fn a_transaction_is_its_root_and_children() {
        let spans = spans_of(&transaction());
        assert_eq!(
            spans.len(),
            2,
            "the one without an id, the one without an end: left out"
        );
        let root = &spans[0];
        assert_eq!(root.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(root.span_id, "00f067aa0ba902b7");
        assert_eq!(
            root.parent_span_id, "b7ad6b7169203331",
            "continued from a browser"
        );
        assert_eq!(
            root.name, "GET /invoices/{id}",
            "as the Performance page names it"
        );
        assert_eq!(root.entry_name(), "GET /invoices/{id}");
        assert_eq!(root.kind, SpanKind::Server);
        assert!(root.is_entry());
        assert_eq!(root.service, "sentry:python");
        let streamed = json!({"sdk": {"name": "sentry.javascript.browser", "version": "11.12.0"}});
        assert_eq!(service(&streamed), "sentry:javascript");
        assert_eq!(
            service(&json!({"sdk": {"name": "sentry."}})),
            "sentry:other"
        );
        assert_eq!(service(&json!({"sdk": {"name": "custom"}})), "sentry:other");
        let loose = json!({"data": {"sentry.sdk.name": "sentry.javascript.browser"}});
        assert_eq!(loose_service(&loose), "sentry:javascript");
        assert_eq!(loose_service(&json!({"data": {}})), "sentry:other");
        assert_eq!(root.status, SpanStatus::Error);
        assert_eq!(root.status_message, "internal_error");
        assert_eq!(root.duration_ns(), 250_000_000);
        assert_eq!(root.attribute("thread.id"), Some("7"));
        assert_eq!(root.job_id(), Some("bulk-7"));
        let query = &spans[1];
        assert_eq!(query.name, "SELECT * FROM invoices WHERE id = %s");
        assert_eq!(query.kind, SpanKind::Client);
        assert_eq!(query.parent_span_id, root.span_id);
        assert_eq!(query.attribute("db.system"), Some("postgresql"));
        assert_eq!(query.attribute("sentry.op"), Some("db"));
        assert_eq!(query.status, SpanStatus::Ok);
    }

    #[test]
    fn the_service_tag_names_the_service_and_bad_ids_give_nothing() {
        let mut event = transaction();
        event["tags"] = json!([["service", "Invoices-Web"]]);
        assert_eq!(service(&event), "Invoices-Web");
        event["contexts"]["trace"]["trace_id"] = json!("00000000000000000000000000000000");
        assert!(spans_of(&event).is_empty());
        assert!(spans_of(&json!({"type": "transaction"})).is_empty());
    }
}
