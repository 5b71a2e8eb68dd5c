//! Streamed spans: `span` items, which today's JavaScript SDKs send by default
//! (`traceLifecycle: "stream"`) instead of transactions, turned into what the static lifecycle
//! would have sent, so Performance (endpoint p95, Apdex, span breakdown, waterfall) reads them
//! like any transaction.
//!
//! ```text
//! span item {"version": 2, "items": [span, …]}   (or one older v1 span JSON)
//!   ─► [`spans_of`]: each span normalized (attributes {"type", "value"} → plain values)
//!   ─► [`assemble`], over all the span items of one envelope:
//!        a segment span (is_segment) + the spans under it ─► a transaction event JSON
//!                                                           (then `transaction::summarize`)
//!        a child whose segment came in another envelope ─► a [`LooseSpan`]: it counts in
//!                       its transaction's span breakdown (named by `sentry.segment.name`),
//!                       and is kept to join its segment's waterfall (by trace and segment id)
//!        a child with neither ─► counted as unusable (the caller records it as dropped)
//! ```
//!
//! The SDK buffers a trace's spans and sends them 5 s after the first one ended (or at 1,000
//! spans), whether the segment has ended or not: a segment longer than that (a slow request,
//! a page load with late requests) comes after some of its children. Those children arrive
//! as loose spans; the store keeps them and joins them to the segment's sample when it is read.

use super::event::seconds;
use super::transaction::{summarize_span, SpanSummary};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Most spans read from one item (the protocol's own bound); the rest are counted as dropped.
pub const MAX_SPANS_PER_ITEM: usize = 1000;

/// The spans of one `span` item, normalized, and how many were past [`MAX_SPANS_PER_ITEM`] or
/// not objects. `Err` when the payload is neither form.
pub fn spans_of(payload: &Value) -> Result<(Vec<Span>, usize), String> {
    let list: Vec<&Value> = match payload.get("items") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return Err("a span item's \"items\" must be a list".into()),
        // A v1 span: one span JSON as the whole payload.
        None if payload.is_object() => vec![payload],
        None => return Err("a span item must be a JSON object".into()),
    };
    let total = list.len();
    let spans: Vec<Span> = list
        .into_iter()
        .take(MAX_SPANS_PER_ITEM)
        .filter_map(Span::read)
        .collect();
    let left_out = total - spans.len();
    Ok((spans, left_out))
}

/// One span, in the v2 shape whichever form it came in.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `ok` or `error` (v2); whatever a v1 span said.
    pub status: String,
    pub is_segment: bool,
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// Attribute values, without their `type` wrappers.
    pub attributes: Map<String, Value>,
}

impl Span {
    fn read(value: &Value) -> Option<Span> {
        let object = value.as_object()?;
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let mut attributes = Map::new();
        for key in ["attributes", "data"] {
            if let Some(Value::Object(map)) = object.get(key) {
                for (k, v) in map {
                    // v2 wraps each value as {"type": …, "value": …}; v1 `data` does not.
                    let plain = match v {
                        Value::Object(wrapped) if wrapped.contains_key("value") => {
                            wrapped["value"].clone()
                        }
                        other => other.clone(),
                    };
                    attributes.insert(k.clone(), plain);
                }
            }
        }
        // v1 spans carry op and description as fields.
        if let Some(op) = text("op") {
            attributes.entry("sentry.op").or_insert(Value::String(op));
        }
        let segment_id = text("segment_id");
        if let Some(id) = &segment_id {
            attributes
                .entry("sentry.segment.id")
                .or_insert(Value::String(id.clone()));
        }
        let span_id = text("span_id").unwrap_or_default();
        Some(Span {
            trace_id: text("trace_id").unwrap_or_default(),
            is_segment: object
                .get("is_segment")
                .and_then(Value::as_bool)
                .unwrap_or_else(|| segment_id.is_some_and(|s| s == span_id)),
            span_id,
            parent_span_id: text("parent_span_id").filter(|p| !p.is_empty()),
            name: text("name")
                .or_else(|| text("description"))
                .unwrap_or_default(),
            status: text("status").unwrap_or_else(|| "ok".into()),
            start: object.get("start_timestamp").and_then(seconds),
            end: object
                .get("end_timestamp")
                .or_else(|| object.get("timestamp"))
                .and_then(seconds),
            attributes,
        })
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    fn op(&self) -> &str {
        self.attribute("sentry.op").unwrap_or("default")
    }

    /// The transaction status the static lifecycle would give: v2 says only `ok` or `error`,
    /// and the JavaScript SDK names an error without a message `internal_error`.
    fn transaction_status(&self) -> &str {
        match self.status.as_str() {
            "error" => "internal_error",
            "" => "ok",
            other => other,
        }
    }

    /// The child as a transaction's `spans` entry.
    fn as_child(&self) -> Value {
        let mut data = self.attributes.clone();
        data.remove("sentry.op");
        json!({
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "op": self.op(),
            "description": self.name,
            "status": self.transaction_status(),
            "start_timestamp": self.start,
            "timestamp": self.end,
            "data": data,
        })
    }
}

/// A span whose segment is not in this envelope: it counts in `transaction`'s span breakdown.
#[derive(Clone, Debug, PartialEq)]
pub struct LooseSpan {
    pub transaction: String,
    pub trace_id: String,
    /// The span id of its segment, when the span says or its parents show it.
    pub segment_id: Option<String>,
    /// When it ended, in seconds since the epoch.
    pub end: f64,
    pub span: SpanSummary,
    /// The span as its transaction's `spans` entry, for the waterfall.
    pub child: Value,
}

/// What the spans of one envelope became.
#[derive(Debug, Default)]
pub struct Assembled {
    /// Transaction events, as the static lifecycle would have sent them.
    pub transactions: Vec<Value>,
    pub loose: Vec<LooseSpan>,
    /// Spans that are neither a segment, nor under one, nor name their transaction.
    pub unusable: usize,
}

/// Builds the transactions of an envelope's streamed spans (see the module doc).
pub fn assemble(spans: Vec<Span>) -> Assembled {
    let by_id: HashMap<&str, &Span> = spans
        .iter()
        .filter(|s| !s.span_id.is_empty())
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    // The segment of a span: the one it names, else the first segment up its parents.
    let segment_of = |span: &Span| -> Option<String> {
        if let Some(id) = span.attribute("sentry.segment.id") {
            return Some(id.to_string());
        }
        let mut at = span;
        for _ in 0..spans.len() {
            let parent = by_id.get(at.parent_span_id.as_deref()?)?;
            if parent.is_segment {
                return Some(parent.span_id.clone());
            }
            at = parent;
        }
        None
    };
    let mut out = Assembled::default();
    let mut children: HashMap<String, Vec<&Span>> = HashMap::new();
    let segments: Vec<&Span> = spans.iter().filter(|s| s.is_segment).collect();
    for span in spans.iter().filter(|s| !s.is_segment) {
        let segment = segment_of(span);
        match segment {
            Some(segment) if segments.iter().any(|s| s.span_id == segment) => {
                children.entry(segment).or_default().push(span)
            }
            _ => match (span.attribute("sentry.segment.name"), loose(span)) {
                (Some(name), Some((end, summary))) => out.loose.push(LooseSpan {
                    transaction: name.to_string(),
                    trace_id: span.trace_id.clone(),
                    segment_id: segment,
                    end,
                    span: summary,
                    child: span.as_child(),
                }),
                _ => out.unusable += 1,
            },
        }
    }
    for segment in segments {
        let under = children.remove(&segment.span_id).unwrap_or_default();
        out.transactions.push(transaction(segment, &under));
    }
    out
}

fn loose(span: &Span) -> Option<(f64, SpanSummary)> {
    let end = span.end?;
    Some((end, summarize_span(&span.as_child())?))
}

/// The transaction event the static lifecycle would have sent for `segment` and its spans.
fn transaction(segment: &Span, children: &[&Span]) -> Value {
    let mut data = segment.attributes.clone();
    let mut take = |key: &str| data.remove(key).filter(|v| !v.is_null());
    let op = take("sentry.op");
    let release = take("sentry.release");
    let environment = take("sentry.environment");
    let platform = take("sentry.platform");
    let sdk_name = take("sentry.sdk.name");
    let sdk_version = take("sentry.sdk.version");
    let mut user = Map::new();
    for (attribute, field) in [
        ("user.id", "id"),
        ("user.email", "email"),
        ("user.ip_address", "ip_address"),
        ("user.name", "username"),
    ] {
        if let Some(v) = take(attribute) {
            user.insert(field.into(), v);
        }
    }
    // The keys a job is found by on a transaction (`event::context`).
    let mut tags = Map::new();
    for key in ["job_id", "vigie.job_id", "celery_task_id"] {
        if let Some(v) = data.get(key).and_then(Value::as_str) {
            tags.insert(key.into(), Value::String(v.to_string()));
        }
    }
    let source = segment
        .attribute("sentry.segment.name.source")
        .or_else(|| segment.attribute("sentry.span.source"));
    let name = match (source, segment.attribute("url.path")) {
        // A streaming SDK names a URL-sourced segment with a low-cardinality fallback
        // ("Pageload", "Navigation"); the static lifecycle names it by the path.
        (Some("url"), Some(path)) => path,
        _ => segment
            .attribute("sentry.segment.name")
            .unwrap_or(&segment.name),
    }
    .to_string();
    // Deterministic, so an SDK's retry of the same envelope keeps one sample.
    let event_id: String = format!("{:0<16.16}{:0<16.16}", segment.trace_id, segment.span_id);
    let mut event = json!({
        "type": "transaction",
        "event_id": event_id,
        "transaction": if name.is_empty() { Value::Null } else { Value::String(name) },
        "start_timestamp": segment.start,
        "timestamp": segment.end,
        "contexts": {"trace": {
            "trace_id": segment.trace_id,
            "span_id": segment.span_id,
            "parent_span_id": segment.parent_span_id,
            "op": op.unwrap_or(Value::String("default".into())),
            "status": segment.transaction_status(),
            "data": data,
        }},
        "spans": children.iter().map(|c| c.as_child()).collect::<Vec<_>>(),
    });
    let object = event.as_object_mut().expect("built as an object");
    for (key, value) in [
        ("release", release),
        ("environment", environment),
        ("platform", platform),
    ] {
        if let Some(v) = value {
            object.insert(key.into(), v);
        }
    }
    if let (Some(name), Some(version)) = (sdk_name, sdk_version) {
        object.insert("sdk".into(), json!({"name": name, "version": version}));
    }
    if !user.is_empty() {
        object.insert("user".into(), Value::Object(user));
    }
    if !tags.is_empty() {
        object.insert("tags".into(), Value::Object(tags));
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentry::transaction::summarize;

    fn attr(value: &str) -> Value {
        json!({"type": "string", "value": value})
    }

    /// What `@sentry/browser` 10 streams for a page load with one fetch.
    fn page_load() -> Value {
        json!({"version": 2, "items": [
            {"trace_id": "6cf173d587eb48568a9b2e12dcfbea52", "span_id": "f1196292f76e45c0",
             "parent_span_id": "438f40bd3b4a41ee", "name": "GET /api/invoices/42", "status": "ok",
             "is_segment": false, "start_timestamp": 1742921669.20, "end_timestamp": 1742921669.35,
             "attributes": {"sentry.op": attr("http.client"),
                            "sentry.segment.id": attr("438f40bd3b4a41ee"),
                            "sentry.segment.name": attr("/invoices/:id")}},
            {"trace_id": "6cf173d587eb48568a9b2e12dcfbea52", "span_id": "438f40bd3b4a41ee",
             "name": "/invoices/:id", "status": "error", "is_segment": true,
             "start_timestamp": 1742921669.0, "end_timestamp": 1742921669.5,
             "attributes": {"sentry.op": attr("pageload"), "sentry.release": attr("shop@2.1"),
                            "sentry.environment": attr("production"),
                            "user.email": attr("ada@example.com"),
                            "http.response.status_code": {"type": "integer", "value": 500}}}
        ]})
    }

    #[test]
    fn a_segment_and_its_children_become_a_transaction() {
        let (spans, left_out) = spans_of(&page_load()).unwrap();
        assert_eq!((spans.len(), left_out), (2, 0));
        let assembled = assemble(spans);
        assert_eq!((assembled.loose.len(), assembled.unusable), (0, 0));
        let [event] = assembled.transactions.as_slice() else {
            panic!("{:?}", assembled.transactions)
        };
        assert_eq!(event["release"], "shop@2.1");
        assert_eq!(event["environment"], "production");
        assert_eq!(event["user"]["email"], "ada@example.com");
        assert_eq!(
            event["contexts"]["trace"]["trace_id"],
            "6cf173d587eb48568a9b2e12dcfbea52"
        );
        assert_eq!(
            event["contexts"]["trace"]["data"]["http.response.status_code"],
            500
        );
        assert_eq!(event["event_id"], "6cf173d587eb4856438f40bd3b4a41ee");
        let t = summarize(event).unwrap();
        assert_eq!(
            (t.name.as_str(), t.op.as_str(), t.status.as_str()),
            ("/invoices/:id", "pageload", "internal_error")
        );
        assert!((t.duration_ms - 500.0).abs() < 0.01, "{}", t.duration_ms);
        assert_eq!(t.spans.len(), 1);
        assert_eq!(t.spans[0].op, "http.client");
        assert!(
            t.spans[0].description.starts_with("GET "),
            "{}",
            t.spans[0].description
        );
        assert!((t.spans[0].duration_ms - 150.0).abs() < 0.01);
    }

    #[test]
    fn children_are_found_through_their_parents_without_a_segment_id() {
        let payload = json!({"items": [
            {"trace_id": "t", "span_id": "a", "name": "GET /", "is_segment": true,
             "start_timestamp": 10.0, "end_timestamp": 11.0},
            {"trace_id": "t", "span_id": "b", "parent_span_id": "a", "name": "render",
             "start_timestamp": 10.1, "end_timestamp": 10.2},
            {"trace_id": "t", "span_id": "c", "parent_span_id": "b", "name": "SELECT 1",
             "start_timestamp": 10.1, "end_timestamp": 10.15,
             "attributes": {"sentry.op": attr("db")}},
        ]});
        let assembled = assemble(spans_of(&payload).unwrap().0);
        let t = summarize(&assembled.transactions[0]).unwrap();
        assert_eq!((t.name.as_str(), t.op.as_str()), ("GET /", "default"));
        assert_eq!(t.spans.len(), 2);
    }

    #[test]
    fn a_child_of_a_segment_sent_elsewhere_is_loose_or_unusable() {
        let payload = json!({"items": [
            {"trace_id": "t", "span_id": "b", "parent_span_id": "a", "name": "SELECT 1",
             "start_timestamp": 10.0, "end_timestamp": 10.25,
             "attributes": {"sentry.op": attr("db"), "sentry.segment.id": attr("a"),
                            "sentry.segment.name": attr("GET /")}},
            {"trace_id": "t", "span_id": "c", "name": "orphan",
             "start_timestamp": 10.0, "end_timestamp": 10.25},
            {"trace_id": "t", "span_id": "d", "name": "no end",
             "attributes": {"sentry.segment.name": attr("GET /")}},
        ]});
        let assembled = assemble(spans_of(&payload).unwrap().0);
        assert!(assembled.transactions.is_empty());
        assert_eq!(assembled.loose.len(), 1);
        assert_eq!(assembled.loose[0].transaction, "GET /");
        assert_eq!(assembled.loose[0].end, 10.25);
        assert_eq!(assembled.loose[0].segment_id.as_deref(), Some("a"));
        assert_eq!(assembled.loose[0].child["span_id"], "b");
        assert_eq!(assembled.loose[0].child["parent_span_id"], "a");
        assert!((assembled.loose[0].span.duration_ms - 250.0).abs() < 0.01);
        assert_eq!(assembled.unusable, 2);
    }

    #[test]
    fn a_page_load_is_named_by_its_path_as_the_static_lifecycle_does() {
        let payload = json!({"items": [
            {"trace_id": "t", "span_id": "a", "name": "Pageload", "is_segment": true,
             "start_timestamp": 10.0, "end_timestamp": 11.0,
             "attributes": {"sentry.op": attr("pageload"), "url.path": attr("/checkout"),
                            "sentry.segment.name.source": attr("url")}},
            {"trace_id": "t", "span_id": "b", "name": "GET /", "is_segment": true,
             "start_timestamp": 10.0, "end_timestamp": 11.0,
             "attributes": {"url.path": attr("/"), "sentry.segment.name.source": attr("route")}},
        ]});
        let assembled = assemble(spans_of(&payload).unwrap().0);
        let names: Vec<_> = assembled
            .transactions
            .iter()
            .map(|t| t["transaction"].clone())
            .collect();
        assert_eq!(names, ["/checkout", "GET /"]);
    }

    #[test]
    fn a_v1_standalone_span_reads_too() {
        let v1 = json!({"trace_id": "t", "span_id": "s", "segment_id": "s",
                        "op": "ui.interaction.click", "description": "body > button",
                        "start_timestamp": 5.0, "timestamp": 5.08,
                        "data": {"sentry.segment.name": "/checkout"}});
        let assembled = assemble(spans_of(&v1).unwrap().0);
        let t = summarize(&assembled.transactions[0]).unwrap();
        assert_eq!(
            (t.name.as_str(), t.op.as_str()),
            ("/checkout", "ui.interaction.click")
        );
    }

    #[test]
    fn bounds_and_refusals() {
        let many: Vec<Value> = (0..MAX_SPANS_PER_ITEM + 5)
            .map(|i| json!({"span_id": i.to_string()}))
            .chain([json!("not a span")])
            .collect();
        let (spans, left_out) = spans_of(&json!({ "items": many })).unwrap();
        assert_eq!((spans.len(), left_out), (MAX_SPANS_PER_ITEM, 6));
        assert!(spans_of(&json!({"items": 3})).is_err());
        assert!(spans_of(&json!([1])).is_err());
    }
}
