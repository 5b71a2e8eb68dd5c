//! OTLP/HTTP logs (`POST /v1/logs`), protobuf (`application/x-protobuf`) and JSON.
//!
//! The messages below are the subset of `opentelemetry/proto/logs/v1` and `common/v1` that a
//! log record needs, with the field numbers of the published `.proto` files. JSON requests use
//! the same shapes in lowerCamelCase (OTLP's JSON mapping: 64-bit integers may be strings,
//! trace and span ids are hex), and are read into these types so both encodings share one path.
//!
//! Mapping: the resource's `service.name` is the source; the scope name (the Python logger's
//! name with the OTel logging handler) is the logger, unless a `code.namespace` or
//! `logger.name` attribute says otherwise; severity number or text the level; the body the
//! message; `exception.stacktrace` joins the message; other attributes (resource ones
//! prefixed `resource.`) become fields. A record with a malformed trace or span id is
//! rejected and counted in `partial_success`.

use super::Parsed;
use crate::otlp::{hex, text, AnyValue, InstrumentationScope, KeyValue, Resource};
use prost::Message;
use serde_json::Value;
use vigie_core::log::LogRecord;
use vigie_core::Level;

/// What the names of a record's resource attributes start with among its fields
/// (`resource.host.name`): the page shows them apart from the record's own.
pub const RESOURCE_PREFIX: &str = "resource.";

#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeLogs {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<OtlpLogRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OtlpLogRecord {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    #[prost(string, tag = "3")]
    pub severity_text: String,
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    pub span_id: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsPartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// Why a whole request was refused (the body is not OTLP at all).
#[derive(Debug, thiserror::Error)]
#[error("not an OTLP logs request: {0}")]
pub struct OtlpError(pub String);

/// Parses a protobuf request body.
pub fn parse_protobuf(body: &[u8], received: i64) -> Result<Parsed, OtlpError> {
    let request = ExportLogsServiceRequest::decode(body).map_err(|e| OtlpError(e.to_string()))?;
    Ok(records(request, received))
}

/// Parses a JSON request body.
pub fn parse_json(body: &[u8], received: i64) -> Result<Parsed, OtlpError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| OtlpError(e.to_string()))?;
    let request = json::request(&value)
        .ok_or_else(|| OtlpError("expected an object with a `resourceLogs` array".into()))?;
    Ok(records(request, received))
}

/// The response body telling the sender how many records were refused and why.
pub fn response(parsed: &Parsed) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: (parsed.rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: parsed.rejected as i64,
            error_message: parsed.first_error.clone().unwrap_or_default(),
        }),
    }
}

/// The same response as OTLP JSON.
pub fn response_json(parsed: &Parsed) -> Value {
    match response(parsed).partial_success {
        Some(p) => serde_json::json!({"partialSuccess": {
            "rejectedLogRecords": p.rejected_log_records.to_string(),
            "errorMessage": p.error_message,
        }}),
        None => serde_json::json!({}),
    }
}

fn records(request: ExportLogsServiceRequest, received: i64) -> Parsed {
    let mut parsed = Parsed::default();
    for resource_logs in request.resource_logs {
        let resource = resource_logs.resource.unwrap_or_default().attributes;
        let source = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref()))
            .unwrap_or_else(|| "otlp".into());
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.map(|s| s.name).unwrap_or_default();
            for log in scope_logs.log_records {
                match record(log, &source, &scope, &resource, received) {
                    Ok(record) => parsed.records.push(record),
                    Err(why) => parsed.reject(why),
                }
            }
        }
    }
    parsed
}

fn record(
    log: OtlpLogRecord,
    source: &str,
    scope: &str,
    resource: &[KeyValue],
    received: i64,
) -> Result<LogRecord, String> {
    if !log.trace_id.is_empty() && log.trace_id.len() != 16 {
        return Err(format!(
            "trace_id must be 16 bytes, not {}",
            log.trace_id.len()
        ));
    }
    if !log.span_id.is_empty() && log.span_id.len() != 8 {
        return Err(format!(
            "span_id must be 8 bytes, not {}",
            log.span_id.len()
        ));
    }
    let time = [log.time_unix_nano, log.observed_time_unix_nano]
        .into_iter()
        .find(|t| *t > 0 && *t < i64::MAX as u64)
        .map_or(received, |t| i64::try_from(t).unwrap_or(i64::MAX));
    let level = Level::from_otel(log.severity_number)
        .or_else(|| Level::parse(&log.severity_text))
        .unwrap_or_default();
    let mut record = LogRecord {
        time,
        received,
        source: source.into(),
        level,
        level_raw: log.severity_text.into(),
        logger: scope.into(),
        message: text(log.body.as_ref()).into(),
        trace_id: hex(&log.trace_id).into(),
        span_id: hex(&log.span_id).into(),
        ..LogRecord::default()
    };
    let mut stack = None;
    for kv in log.attributes {
        let value = text(kv.value.as_ref());
        match kv.key.as_str() {
            "code.namespace" | "logger.name" | "logger" if !value.is_empty() => {
                record.logger = value.into()
            }
            "exception.stacktrace" => stack = Some(value),
            "job_id" | "vigie.job_id" => record.job_id = value.into(),
            _ => record.fields.push((kv.key.into(), value.into())),
        }
    }
    if let Some(stack) = stack {
        record.message = format!("{}\n{stack}", record.message).into();
    }
    for kv in resource.iter().filter(|kv| kv.key != "service.name") {
        record.fields.push((
            format!("{RESOURCE_PREFIX}{}", kv.key).into(),
            text(kv.value.as_ref()).into(),
        ));
    }
    record.truncate_message();
    Ok(record)
}

/// OTLP's JSON mapping, read into the protobuf types.
mod json {
    use super::*;
    use crate::otlp::json::{any, array, attributes, hex_bytes, u64_of};

    pub fn request(v: &Value) -> Option<ExportLogsServiceRequest> {
        v.get("resourceLogs")?.as_array()?;
        Some(ExportLogsServiceRequest {
            resource_logs: array(v, "resourceLogs")
                .map(|rl| ResourceLogs {
                    resource: rl.get("resource").map(|r| Resource {
                        attributes: attributes(r),
                    }),
                    scope_logs: array(rl, "scopeLogs")
                        .map(|sl| ScopeLogs {
                            scope: sl.get("scope").map(|s| InstrumentationScope {
                                name: s.get("name").and_then(Value::as_str).unwrap_or("").into(),
                            }),
                            log_records: array(sl, "logRecords").map(record).collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    fn record(v: &Value) -> OtlpLogRecord {
        OtlpLogRecord {
            time_unix_nano: u64_of(v.get("timeUnixNano")),
            observed_time_unix_nano: u64_of(v.get("observedTimeUnixNano")),
            severity_number: v
                .get("severityNumber")
                .and_then(|n| n.as_i64().or_else(|| n.as_str().and_then(severity_name)))
                .unwrap_or(0) as i32,
            severity_text: v
                .get("severityText")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            body: v.get("body").map(any),
            attributes: attributes(v),
            trace_id: hex_bytes(v.get("traceId")),
            span_id: hex_bytes(v.get("spanId")),
        }
    }

    /// `"SEVERITY_NUMBER_WARN"` as protobuf's JSON mapping may write enums.
    fn severity_name(name: &str) -> Option<i64> {
        let level = Level::parse(
            name.strip_prefix("SEVERITY_NUMBER_")?
                .trim_end_matches(char::is_numeric),
        )?;
        Some(match level {
            Level::Trace => 1,
            Level::Debug => 5,
            Level::Info => 9,
            Level::Notice => 11,
            Level::Warning => 13,
            Level::Error => 17,
            Level::Critical => 21,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::any_value;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn string(s: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s.into())),
        })
    }

    #[test]
    fn protobuf_records_with_partial_success() {
        let good = OtlpLogRecord {
            time_unix_nano: 1_795_295_700_000_000_000,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: string("payment failed"),
            attributes: vec![
                KeyValue {
                    key: "order".into(),
                    value: string("A-1"),
                },
                KeyValue {
                    key: "exception.stacktrace".into(),
                    value: string("Traceback …"),
                },
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            ..OtlpLogRecord::default()
        };
        let bad = OtlpLogRecord {
            trace_id: vec![1, 2, 3],
            ..good.clone()
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        KeyValue {
                            key: "service.name".into(),
                            value: string("shop"),
                        },
                        KeyValue {
                            key: "host.name".into(),
                            value: string("web-1"),
                        },
                    ],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "shop.payments".into(),
                    }),
                    log_records: vec![good, bad],
                }],
            }],
        };
        let parsed = parse_protobuf(&request.encode_to_vec(), NOW).unwrap();
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.rejected, 1);
        assert!(parsed.first_error.as_deref().unwrap().contains("trace_id"));
        let r = &parsed.records[0];
        assert_eq!(
            (r.source.as_str(), r.logger.as_str()),
            ("shop", "shop.payments")
        );
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.message, "payment failed\nTraceback …");
        assert_eq!(r.trace_id, "ab".repeat(16));
        assert_eq!(r.field("order"), Some("A-1"));
        assert_eq!(r.field("resource.host.name"), Some("web-1"));
        let response = response(&parsed);
        assert_eq!(response.partial_success.unwrap().rejected_log_records, 1);
        assert!(parse_protobuf(b"\xff\xff\xff", NOW).is_err());
    }

    #[test]
    fn json_mapping() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"worker"}}]},
          "scopeLogs":[{"scope":{"name":"celery.task"},"logRecords":[
            {"timeUnixNano":"1795295700000000000","severityNumber":13,"body":{"stringValue":"retrying"},
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "attributes":[{"key":"attempt","value":{"intValue":"3"}},{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"}]}}}]},
            {"severityText":"INFO","body":{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":true}}]}}}
          ]}]}]}"#;
        let parsed = parse_json(body, NOW).unwrap();
        assert_eq!(parsed.rejected, 0);
        let r = &parsed.records[0];
        assert_eq!(r.time, 1_795_295_700_000_000_000);
        assert_eq!(r.level, Level::Warning);
        assert_eq!(r.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(r.field("attempt"), Some("3"));
        assert_eq!(r.field("tags"), Some(r#"["a"]"#));
        assert_eq!(parsed.records[1].message, r#"{"k":true}"#);
        assert_eq!(parsed.records[1].time, NOW);
        assert!(parse_json(b"{}", NOW).is_err());
        assert!(parse_json(b"nope", NOW).is_err());
    }
}
