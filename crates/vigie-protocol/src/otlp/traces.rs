//! OTLP/HTTP traces (`POST /v1/traces`), protobuf (`application/x-protobuf`) and JSON.
//!
//! The messages are the subset of `opentelemetry/proto/trace/v1` and
//! `collector/trace/v1` that a [`Span`] needs, with the published field numbers; JSON requests
//! are read into the same types ([`super::json`]).
//!
//! Mapping: the resource's `service.name` is the span's service (`unknown_service` when
//! missing, as the SDKs say themselves); its other attributes are the span's resource. A span
//! whose trace or span id is not 16 or 8 bytes, or is all zero, or whose parent id is neither
//! empty nor 8 bytes, is refused and counted in `partial_success` — the rest of the request is
//! kept. So is a span without a start time, or one starting more than [`MAX_AHEAD_NS`] after
//! the time it is received (a sender's clock far off: kept, it would sit at the top of every
//! "newest first" search and outlive retention). An end before the start is read as the start
//! (a zero-length span), as a clock step back on the sender would give.

use super::{hex, pairs, text, InstrumentationScope, KeyValue, Resource};
use crate::logs::Parsed;
use prost::Message;
use serde_json::Value;
use vigie_core::span::{check_id, Span, SpanEvent, SpanKind, SpanLink, SpanStatus};

#[derive(Clone, PartialEq, Message)]
pub struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeSpans {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<OtlpSpan>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OtlpSpan {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    pub name: String,
    #[prost(int32, tag = "6")]
    pub kind: i32,
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<OtlpEvent>,
    #[prost(message, repeated, tag = "13")]
    pub links: Vec<OtlpLink>,
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OtlpEvent {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OtlpLink {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(int32, tag = "3")]
    pub code: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExportTraceServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportTracePartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExportTracePartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_spans: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// Why a whole request was refused (the body is not OTLP at all).
#[derive(Debug, thiserror::Error)]
#[error("not an OTLP traces request: {0}")]
pub struct OtlpTracesError(pub String);

/// How far after its arrival a span may start: a day, beyond any clock drift or time zone
/// mistake that still reads as today.
pub const MAX_AHEAD_NS: i64 = 86_400_000_000_000;

/// Parses a protobuf request body received at `now_ns`.
pub fn parse_protobuf(body: &[u8], now_ns: i64) -> Result<Parsed<Span>, OtlpTracesError> {
    let request =
        ExportTraceServiceRequest::decode(body).map_err(|e| OtlpTracesError(e.to_string()))?;
    Ok(spans(request, now_ns))
}

/// Parses a JSON request body received at `now_ns`.
pub fn parse_json(body: &[u8], now_ns: i64) -> Result<Parsed<Span>, OtlpTracesError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| OtlpTracesError(e.to_string()))?;
    let request = json::request(&value)
        .ok_or_else(|| OtlpTracesError("expected an object with a `resourceSpans` array".into()))?;
    Ok(spans(request, now_ns))
}

/// The response body telling the sender how many spans were refused and why.
pub fn response(parsed: &Parsed<Span>) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (parsed.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: parsed.rejected as i64,
            error_message: parsed.first_error.clone().unwrap_or_default(),
        }),
    }
}

/// The same response as OTLP JSON.
pub fn response_json(parsed: &Parsed<Span>) -> Value {
    match response(parsed).partial_success {
        Some(p) => serde_json::json!({"partialSuccess": {
            "rejectedSpans": p.rejected_spans.to_string(),
            "errorMessage": p.error_message,
        }}),
        None => serde_json::json!({}),
    }
}

fn spans(request: ExportTraceServiceRequest, now_ns: i64) -> Parsed<Span> {
    let mut parsed = Parsed::default();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.unwrap_or_default().attributes;
        let service = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "unknown_service".into());
        let resource = pairs(
            resource
                .into_iter()
                .filter(|kv| kv.key != "service.name")
                .collect(),
        );
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                match read_span(span, &service, &scope, &resource, now_ns) {
                    Ok(span) => parsed.records.push(span),
                    Err(why) => parsed.reject(why),
                }
            }
        }
    }
    parsed
}

fn read_span(
    span: OtlpSpan,
    service: &str,
    scope: &str,
    resource: &[(String, String)],
    now_ns: i64,
) -> Result<Span, String> {
    check_id("trace_id", &span.trace_id, 16)?;
    check_id("span_id", &span.span_id, 8)?;
    if !span.parent_span_id.is_empty() {
        check_id("parent_span_id", &span.parent_span_id, 8)?;
    }
    let start = nanos(span.start_time_unix_nano);
    if start == 0 {
        return Err(format!("span {:?} has no start_time_unix_nano", span.name));
    }
    if start > now_ns.saturating_add(MAX_AHEAD_NS) {
        return Err(format!(
            "span {:?} starts more than a day after it was received: is the sender's clock \
             right?",
            span.name
        ));
    }
    let status = span.status.unwrap_or_default();
    let links = span
        .links
        .into_iter()
        .map(|link| {
            check_id("a link's trace_id", &link.trace_id, 16)?;
            check_id("a link's span_id", &link.span_id, 8)?;
            Ok(SpanLink {
                trace_id: hex(&link.trace_id),
                span_id: hex(&link.span_id),
                attributes: pairs(link.attributes),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Span {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: hex(&span.parent_span_id),
        service: service.to_string(),
        name: span.name,
        kind: SpanKind::from_otlp(span.kind),
        start,
        end: nanos(span.end_time_unix_nano).max(start),
        status: SpanStatus::from_otlp(status.code),
        status_message: status.message,
        scope: scope.to_string(),
        attributes: pairs(span.attributes),
        resource: resource.to_vec(),
        events: span
            .events
            .into_iter()
            .map(|event| SpanEvent {
                time: nanos(event.time_unix_nano),
                name: event.name,
                attributes: pairs(event.attributes),
            })
            .collect(),
        links,
    })
}

/// A time as sent, within what an `i64` of nanoseconds holds (until the year 2262).
fn nanos(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

/// OTLP's JSON mapping of the trace messages.
mod json {
    use super::*;
    use crate::otlp::json::{array, attributes, hex_bytes, u64_of};

    pub fn request(v: &Value) -> Option<ExportTraceServiceRequest> {
        v.get("resourceSpans")?.as_array()?;
        Some(ExportTraceServiceRequest {
            resource_spans: array(v, "resourceSpans")
                .map(|rs| ResourceSpans {
                    resource: rs.get("resource").map(|r| Resource {
                        attributes: attributes(r),
                    }),
                    scope_spans: array(rs, "scopeSpans")
                        .map(|ss| ScopeSpans {
                            scope: ss.get("scope").map(|s| InstrumentationScope {
                                name: string(s, "name"),
                            }),
                            spans: array(ss, "spans").map(span).collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    fn string(v: &Value, key: &str) -> String {
        v.get(key).and_then(Value::as_str).unwrap_or("").into()
    }

    /// An enum as protobuf's JSON mapping writes it: its number, or its name.
    fn number(v: Option<&Value>, names: &[&str]) -> i32 {
        match v {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0) as i32,
            Some(Value::String(s)) => names.iter().position(|n| n == s).unwrap_or(0) as i32,
            _ => 0,
        }
    }

    fn span(v: &Value) -> OtlpSpan {
        const KINDS: [&str; 6] = [
            "SPAN_KIND_UNSPECIFIED",
            "SPAN_KIND_INTERNAL",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
            "SPAN_KIND_PRODUCER",
            "SPAN_KIND_CONSUMER",
        ];
        const CODES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
        OtlpSpan {
            trace_id: hex_bytes(v.get("traceId")),
            span_id: hex_bytes(v.get("spanId")),
            parent_span_id: hex_bytes(v.get("parentSpanId")),
            name: string(v, "name"),
            kind: number(v.get("kind"), &KINDS),
            start_time_unix_nano: u64_of(v.get("startTimeUnixNano")),
            end_time_unix_nano: u64_of(v.get("endTimeUnixNano")),
            attributes: attributes(v),
            events: array(v, "events")
                .map(|e| OtlpEvent {
                    time_unix_nano: u64_of(e.get("timeUnixNano")),
                    name: string(e, "name"),
                    attributes: attributes(e),
                })
                .collect(),
            links: array(v, "links")
                .map(|l| OtlpLink {
                    trace_id: hex_bytes(l.get("traceId")),
                    span_id: hex_bytes(l.get("spanId")),
                    attributes: attributes(l),
                })
                .collect(),
            status: v.get("status").map(|s| Status {
                message: string(s, "message"),
                code: number(s.get("code"), &CODES),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::{any_value, AnyValue};

    fn attribute(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn request(spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        attribute("service.name", any_value::Value::StringValue("shop".into())),
                        attribute("host.name", any_value::Value::StringValue("web-1".into())),
                    ],
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "opentelemetry.instrumentation.fastapi".into(),
                    }),
                    spans,
                }],
            }],
        }
    }

    /// When the test requests are received: a little after their spans.
    const NOW: i64 = 1_795_295_800_000_000_000;

    fn server_span() -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            name: "GET /invoices/{id}".into(),
            kind: 2,
            start_time_unix_nano: 1_795_295_700_000_000_000,
            end_time_unix_nano: 1_795_295_700_250_000_000,
            attributes: vec![
                attribute(
                    "http.route",
                    any_value::Value::StringValue("/invoices/{id}".into()),
                ),
                attribute("http.response.status_code", any_value::Value::IntValue(500)),
            ],
            events: vec![OtlpEvent {
                time_unix_nano: 1_795_295_700_200_000_000,
                name: "exception".into(),
                attributes: vec![attribute(
                    "exception.type",
                    any_value::Value::StringValue("KeyError".into()),
                )],
            }],
            status: Some(Status {
                message: "KeyError: 'id'".into(),
                code: 2,
            }),
            ..OtlpSpan::default()
        }
    }

    #[test]
    fn protobuf_spans_with_partial_success() {
        let child = OtlpSpan {
            span_id: vec![2; 8],
            parent_span_id: vec![1; 8],
            name: "SELECT invoices".into(),
            kind: 3,
            // A clock that stepped back: a zero-length span, not a negative one.
            end_time_unix_nano: 1_795_295_699_000_000_000,
            ..server_span()
        };
        let short_trace = OtlpSpan {
            trace_id: vec![1, 2, 3],
            ..server_span()
        };
        let zero_span = OtlpSpan {
            span_id: vec![0; 8],
            ..server_span()
        };
        let no_start = OtlpSpan {
            span_id: vec![3; 8],
            start_time_unix_nano: 0,
            ..server_span()
        };
        let from_the_future = OtlpSpan {
            span_id: vec![4; 8],
            start_time_unix_nano: (NOW + MAX_AHEAD_NS) as u64 + 1,
            end_time_unix_nano: (NOW + MAX_AHEAD_NS) as u64 + 2,
            ..server_span()
        };
        let body = request(vec![
            server_span(),
            child,
            short_trace,
            zero_span,
            no_start,
            from_the_future,
        ])
        .encode_to_vec();
        let parsed = parse_protobuf(&body, NOW).unwrap();
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.rejected, 4);
        assert_eq!(
            parsed.first_error.as_deref(),
            Some("trace_id must be 16 bytes, not 3")
        );
        let root = &parsed.records[0];
        assert_eq!(root.trace_id, "ab".repeat(16));
        assert_eq!(root.span_id, "0101010101010101");
        assert_eq!(root.parent_span_id, "");
        assert_eq!(
            (root.service.as_str(), root.kind),
            ("shop", SpanKind::Server)
        );
        assert_eq!(root.scope, "opentelemetry.instrumentation.fastapi");
        assert_eq!(root.duration_ns(), 250_000_000);
        assert_eq!(root.status, SpanStatus::Error);
        assert_eq!(root.status_message, "KeyError: 'id'");
        assert_eq!(root.attribute("http.route"), Some("/invoices/{id}"));
        assert_eq!(root.attribute("http.response.status_code"), Some("500"));
        assert_eq!(root.resource, [("host.name".into(), "web-1".into())]);
        assert_eq!(root.events[0].name, "exception");
        assert_eq!(root.events[0].attributes[0].1, "KeyError");
        let child = &parsed.records[1];
        assert_eq!(child.parent_span_id, root.span_id);
        assert_eq!((child.kind, child.duration_ns()), (SpanKind::Client, 0));
        let answer = response(&parsed).partial_success.unwrap();
        assert_eq!(answer.rejected_spans, 4);
        assert!(parse_protobuf(b"\xff\xff\xff", NOW).is_err());
    }

    #[test]
    fn a_missing_service_name_is_unknown_service() {
        let mut body = request(vec![server_span()]);
        body.resource_spans[0].resource = None;
        let parsed = parse_protobuf(&body.encode_to_vec(), NOW).unwrap();
        assert_eq!(parsed.records[0].service, "unknown_service");
        assert!(parsed.records[0].resource.is_empty());
    }

    /// OTLP/JSON as the OpenTelemetry exporters write it: hex ids, 64-bit integers as strings
    /// or numbers, enums as numbers or names.
    #[test]
    fn json_mapping() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"worker"}}]},
          "scopeSpans":[{"scope":{"name":"opentelemetry.instrumentation.celery"},"spans":[
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "parentSpanId":"eee19b7ec3c1b173","name":"run/send_invoices","kind":5,
             "startTimeUnixNano":"1795295700000000000","endTimeUnixNano":1795295701500000000,
             "attributes":[{"key":"celery.task_name","value":{"stringValue":"send_invoices"}},
                           {"key":"attempt","value":{"intValue":"3"}}],
             "status":{"code":"STATUS_CODE_OK"},
             "links":[{"traceId":"5b8efff798038103d269b633813fc60d","spanId":"eee19b7ec3c1b175"}]},
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"zz","name":"bad"}
          ]}]}]}"#;
        let parsed = parse_json(body, NOW).unwrap();
        assert_eq!(parsed.rejected, 1);
        assert!(parsed
            .first_error
            .as_deref()
            .unwrap()
            .starts_with("span_id must be 8 bytes"));
        let span = &parsed.records[0];
        assert_eq!(span.service, "worker");
        assert_eq!(span.kind, SpanKind::Consumer);
        assert_eq!(span.start, 1_795_295_700_000_000_000);
        assert_eq!(span.duration_ns(), 1_500_000_000);
        assert_eq!(span.status, SpanStatus::Ok);
        assert_eq!(span.attribute("attempt"), Some("3"));
        assert_eq!(span.links[0].span_id, "eee19b7ec3c1b175");
        assert_eq!(
            response_json(&parsed)["partialSuccess"]["rejectedSpans"],
            "1"
        );
        assert!(parse_json(b"{}", NOW).is_err());
        assert!(parse_json(b"[1]", NOW).is_err());
        assert!(parse_json(b"nope", NOW).is_err());
    }

    /// Mutated real requests: spans or a refusal, never a panic, and every kept span sound.
    #[test]
    fn mutated_requests_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let protobuf = request(vec![server_span(), server_span()]).encode_to_vec();
        let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","startTimeUnixNano":"5","endTimeUnixNano":3,"kind":"SPAN_KIND_SERVER","events":[{"timeUnixNano":"x"}]}]}]}]}"#.to_vec();
        for _ in 0..5_000 {
            for original in [&protobuf, &json] {
                let mut body = original.clone();
                for _ in 0..rng.gen_range(1..6) {
                    if body.is_empty() {
                        break;
                    }
                    let at = rng.gen_range(0..body.len());
                    match rng.gen_range(0..3) {
                        0 => body[at] = rng.gen(),
                        1 => drop(body.remove(at)),
                        _ => body.truncate(at.max(1)),
                    }
                }
                for parsed in [parse_protobuf(&body, NOW), parse_json(&body, NOW)]
                    .into_iter()
                    .flatten()
                {
                    for span in parsed.records {
                        assert_eq!((span.trace_id.len(), span.span_id.len()), (32, 16));
                        assert!(span.end >= span.start);
                    }
                }
            }
        }
    }
}
