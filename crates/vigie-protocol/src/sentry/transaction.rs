//! Reading a transaction event: what the Performance aggregates need.
//!
//! A transaction is an event of `"type": "transaction"` with `start_timestamp` and
//! `timestamp` (seconds, or RFC 3339), its name in `transaction`, its operation and status in
//! `contexts.trace`, and child `spans` with their own start and end times.

use super::event::seconds;
use serde_json::Value;
use vigie_core::event::normalize_message;
use vigie_core::json;

/// Longest span description kept, in characters: enough for a SQL statement's shape.
const DESCRIPTION_MAX: usize = 300;

#[derive(Clone, Debug, PartialEq)]
pub struct SpanSummary {
    pub op: String,
    /// Normalized (numbers, ids and quoted values replaced), so one shape is one row.
    pub description: String,
    pub duration_ms: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TransactionSummary {
    pub name: String,
    pub op: String,
    /// `ok`, `internal_error`, `not_found`… (`ok` when the SDK says nothing).
    pub status: String,
    pub duration_ms: f64,
    pub spans: Vec<SpanSummary>,
}

fn duration_ms(item: &Value) -> Option<f64> {
    let start = seconds(item.get("start_timestamp")?)?;
    let end = seconds(item.get("timestamp")?)?;
    Some(((end - start) * 1000.0).max(0.0))
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// One entry of a transaction's `spans`; `None` without a start and an end.
pub fn summarize_span(span: &Value) -> Option<SpanSummary> {
    let description = text(span.get("description")).unwrap_or_default();
    let mut description = normalize_message(&description);
    if let Some((cut, _)) = description.char_indices().nth(DESCRIPTION_MAX) {
        description.truncate(cut);
    }
    Some(SpanSummary {
        op: text(span.get("op")).unwrap_or_else(|| "default".into()),
        description,
        duration_ms: duration_ms(span)?,
    })
}

/// The summary of a transaction event; `None` when it has no usable duration.
pub fn summarize(event: &Value) -> Option<TransactionSummary> {
    let trace = json::at(event, &["contexts", "trace"]);
    let op = trace
        .and_then(|t| text(t.get("op")))
        .unwrap_or_else(|| "default".into());
    let name = text(event.get("transaction")).unwrap_or_else(|| "<unnamed transaction>".into());
    let name = if op.starts_with("http.server") {
        let method = json::at(event, &["request", "method"])
            .or_else(|| trace.and_then(|t| json::at(t, &["data", "http.request.method"])))
            .or_else(|| trace.and_then(|t| json::at(t, &["data", "http.method"])))
            .and_then(Value::as_str);
        vigie_core::endpoint::named(method, &name)
    } else {
        name
    };
    let spans = event
        .get("spans")
        .and_then(Value::as_array)
        .map(|spans| spans.iter().filter_map(summarize_span).collect())
        .unwrap_or_default();
    Some(TransactionSummary {
        name,
        op,
        status: trace
            .and_then(|t| text(t.get("status")))
            .unwrap_or_else(|| "ok".into()),
        duration_ms: duration_ms(event)?,
        spans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_server_transaction_is_named_with_its_method() {
        let python = json!({
            "transaction": "/invoices/{id}",
            "start_timestamp": 1.0, "timestamp": 2.0,
            "request": {"method": "GET", "url": "http://shop/invoices/7"},
            "contexts": {"trace": {"op": "http.server"}},
        });
        assert_eq!(summarize(&python).unwrap().name, "GET /invoices/{id}");
        let javascript = json!({
            "transaction": "POST /invoices",
            "start_timestamp": 1.0, "timestamp": 2.0,
            "contexts": {"trace": {"op": "http.server", "data": {"http.request.method": "POST"}}},
        });
        assert_eq!(summarize(&javascript).unwrap().name, "POST /invoices");
        let otel = json!({
            "transaction": "/health",
            "start_timestamp": 1.0, "timestamp": 2.0,
            "contexts": {"trace": {"op": "http.server", "data": {"http.method": "HEAD"}}},
        });
        assert_eq!(summarize(&otel).unwrap().name, "HEAD /health");
        let task = json!({
            "transaction": "send_invoices",
            "start_timestamp": 1.0, "timestamp": 2.0,
            "request": {"method": "GET"},
            "contexts": {"trace": {"op": "queue.task.celery"}},
        });
        assert_eq!(
            summarize(&task).unwrap().name,
            "send_invoices",
            "only server requests"
        );
    }

    #[test]
    fn reads_name_op_status_duration_and_spans() {
        let event = json!({
            "type": "transaction",
            "transaction": "/invoices/{id}",
            "start_timestamp": 1_800_000_000.0,
            "timestamp": "2027-01-15T08:00:00.250Z",
            "contexts": {"trace": {"op": "http.server", "status": "internal_error"}},
            "spans": [
                {"op": "db", "description": "SELECT * FROM invoice WHERE id = 42",
                 "start_timestamp": 1_800_000_000.010, "timestamp": 1_800_000_000.110},
                {"op": "http.client", "start_timestamp": 1.0},
            ]
        });
        let t = summarize(&event).unwrap();
        assert_eq!(
            (t.name.as_str(), t.op.as_str()),
            ("/invoices/{id}", "http.server")
        );
        assert_eq!(t.status, "internal_error");
        assert!((t.duration_ms - 250.0).abs() < 0.01, "{}", t.duration_ms);
        assert_eq!(t.spans.len(), 1, "a span without an end is left out");
        assert_eq!(
            t.spans[0].description,
            "SELECT * FROM invoice WHERE id = <int>"
        );
        assert!((t.spans[0].duration_ms - 100.0).abs() < 0.01);
    }

    #[test]
    fn defaults_and_refusals() {
        let bare = json!({"start_timestamp": 10.0, "timestamp": 10.5});
        let t = summarize(&bare).unwrap();
        assert_eq!(
            (t.name.as_str(), t.op.as_str(), t.status.as_str()),
            ("<unnamed transaction>", "default", "ok")
        );
        assert!(summarize(&json!({"timestamp": 10.5})).is_none());
        assert!(summarize(&json!({"start_timestamp": "soon", "timestamp": 10.5})).is_none());
    }
}
