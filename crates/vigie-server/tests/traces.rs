//! OTLP/HTTP traces against the real router: what an OpenTelemetry exporter sends is stored
//! and answered as OTLP says, and a trace reads back whole through the API.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{app, app_configured, project_key};
use prost::Message;
use std::io::Write;
use std::time::Duration;
use vigie_protocol::otlp::traces::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, OtlpSpan, ResourceSpans, ScopeSpans,
    Status,
};
use vigie_protocol::otlp::{any_value, AnyValue, InstrumentationScope, KeyValue, Resource};

const TRACE: &str = "5b8efff798038103d269b633813fc60c";
const T0: u64 = 1_795_295_700_000_000_000;

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A request from the service `shop`: a server span and `children` spans under it, plus
/// `malformed` spans with a 3-byte trace id.
fn request(children: usize, malformed: usize) -> ExportTraceServiceRequest {
    let root = OtlpSpan {
        trace_id: bytes(TRACE),
        span_id: bytes("eee19b7ec3c1b174"),
        name: "GET /invoices/{id}".into(),
        kind: 2,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 250_000_000,
        attributes: vec![string("http.route", "/invoices/{id}")],
        status: Some(Status {
            message: String::new(),
            code: 2,
        }),
        ..OtlpSpan::default()
    };
    let mut spans = vec![root.clone()];
    spans.extend((0..children).map(|i| OtlpSpan {
        span_id: bytes(&format!("{:016x}", i + 1)),
        parent_span_id: root.span_id.clone(),
        name: format!("SELECT {i}"),
        kind: 3,
        start_time_unix_nano: T0 + 1_000 * (i as u64 + 1),
        end_time_unix_nano: T0 + 1_000 * (i as u64 + 2),
        status: None,
        ..root.clone()
    }));
    spans.extend((0..malformed).map(|_| OtlpSpan {
        trace_id: vec![1, 2, 3],
        ..root.clone()
    }));
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", "shop")],
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

fn post(key: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post("/v1/traces")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, content_type);
    if let Some(encoding) = encoding {
        req = req.header(header::CONTENT_ENCODING, encoding);
    }
    req.body(Body::from(body)).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn read_trace(app: &common::App, token: &str) -> common::Answer {
    app.api(
        Method::GET,
        &format!("/api/v1/traces/{TRACE}?project=1"),
        token,
        None,
    )
    .await
}

#[tokio::test]
async fn spans_sent_as_the_exporters_send_them_read_back_as_one_trace() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;

    // Protobuf, gzip-compressed as the Python exporter does: two spans kept, one refused.
    let body = gzip(&request(1, 1).encode_to_vec());
    let answer = app
        .send(post(&key, "application/x-protobuf", Some("gzip"), body))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/x-protobuf");
    let response = ExportTraceServiceResponse::decode(answer.bytes.as_slice()).unwrap();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert_eq!(partial.error_message, "trace_id must be 16 bytes, not 3");

    // JSON, as the Node exporter sends it: one more span of the same trace, nothing refused.
    let json = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"Billing-Worker"}}}}]}},
        "scopeSpans":[{{"scope":{{"name":"celery"}},"spans":[{{"traceId":"{}","spanId":"00000000000000aa",
        "parentSpanId":"eee19b7ec3c1b174","name":"run/send_invoices","kind":5,
        "startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
        TRACE.to_uppercase(),
        T0 + 100_000_000,
        T0 + 200_000_000
    );
    let answer = app
        .send(post(
            &key,
            "application/json; charset=utf-8",
            None,
            json.into_bytes(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json(), serde_json::json!({}));

    let trace = read_trace(&app, &token).await;
    assert_eq!(trace.status, StatusCode::OK, "{}", trace.body);
    let trace = trace.json();
    assert_eq!(trace["trace_id"], TRACE);
    assert_eq!(trace["duration_ns"], 250_000_000);
    assert_eq!(trace["errors"], 1);
    assert_eq!(
        trace["services"],
        serde_json::json!(["Billing-Worker", "shop"])
    );
    let names: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["GET /invoices/{id}", "SELECT 0", "run/send_invoices"]
    );
    assert_eq!(trace["spans"][0]["kind"], "server");
    assert_eq!(trace["spans"][2]["parent_span_id"], "eee19b7ec3c1b174");

    // The trace page: the waterfall in tree order, services as sent, a log line of the trace,
    // and every span's details; names are escaped, never markup.
    let log = format!(
        r#"{{"message": "invoice <F-1> sent", "trace_id": "{TRACE}", "level": "warning"}}"#
    );
    let sent = app
        .send(
            Request::post("/api/v1/logs?source=web")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::from(log))
                .unwrap(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let session = app.setup_admin().await;
    let page = app.get(&format!("/traces/{TRACE}"), &session).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    let at = |text: &str| {
        body.find(text)
            .unwrap_or_else(|| panic!("{text} is not on the page"))
    };
    assert!(at("GET /invoices/{id}") < at("SELECT 0"));
    assert!(at("SELECT 0") < at("run/send_invoices"));
    assert!(body.contains("Billing-Worker"));
    assert!(body.contains("1 in error"));
    assert!(
        body.contains("invoice &lt;F-1&gt; sent"),
        "the log line, escaped"
    );
    assert!(!body.contains("<F-1>"));
    assert!(body.contains(r#"id="span-eee19b7ec3c1b174""#));
    let missing = app
        .get("/traces/ffffffffffffffffffffffffffffffff", &session)
        .await;
    assert_eq!(missing.status, StatusCode::OK);
    assert!(missing.body.contains("No span of this trace is stored"));
    assert!(missing.body.contains("No log line carries this trace id."));
    let not_an_id = app.get("/traces/%3Cscript%3E", &session).await;
    assert_eq!(not_an_id.status, StatusCode::OK);
    assert!(!not_an_id.body.contains("<script>"));

    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_spans_rejected_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_ingest_items_total{protocol=\"otlp\",kind=\"span\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn what_is_not_otlp_is_refused_and_stores_nothing() {
    let app = app_configured(Duration::from_secs(3600), |c| {
        c.limits.max_records_per_request = 100;
    })
    .await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    let not_otlp = app
        .send(post(&key, "text/plain", None, b"hello".to_vec()))
        .await;
    assert_eq!(not_otlp.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(not_otlp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("application/x-protobuf"));
    let garbage = app
        .send(post(&key, "application/x-protobuf", None, vec![0xff; 7]))
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST, "{}", garbage.body);
    let wrong_shape = app
        .send(post(
            &key,
            "application/json",
            None,
            b"{\"spans\": []}".to_vec(),
        ))
        .await;
    assert_eq!(wrong_shape.status, StatusCode::BAD_REQUEST);
    assert!(wrong_shape.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("resourceSpans"));
    // More spans than a request may carry: refused whole.
    let too_many = app
        .send(post(
            &key,
            "application/x-protobuf",
            None,
            request(100, 0).encode_to_vec(),
        ))
        .await;
    assert_eq!(too_many.status, StatusCode::PAYLOAD_TOO_LARGE);
    let none = read_trace(&app, &token).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.body);
    let bad_id = app
        .api(
            Method::GET,
            "/api/v1/traces/not-a-trace?project=1",
            &token,
            None,
        )
        .await;
    assert_eq!(bad_id.status, StatusCode::NOT_FOUND, "{}", bad_id.body);
    assert!(bad_id.body.contains("32 hex digits"), "{}", bad_id.body);
    let anonymous = app
        .send(
            Request::get(format!("/api/v1/traces/{TRACE}?project=1"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
