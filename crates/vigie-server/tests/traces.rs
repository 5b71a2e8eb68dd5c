//! OTLP/HTTP traces against the real router: what an OpenTelemetry exporter sends is stored
//! and answered as OTLP says, and a trace reads back whole through the API.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{app, app_configured, gzip, project_key};
use prost::Message;
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
    common::otlp_request("/v1/traces", key, content_type, encoding, body)
}

async fn read_trace(app: &common::App, token: &str) -> common::Answer {
    app.api_get(&format!("/api/v1/traces/{TRACE}?project=1"), token)
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
        .api_get("/api/v1/traces/not-a-trace?project=1", &token)
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

/// Nanoseconds since the epoch, now.
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A FastAPI request as the OpenTelemetry SDK reports it over OTLP/JSON: a server span that
/// answered 500 for a job, and under it a span that recorded the exception.
fn failing_request(trace: &str, start: u64) -> String {
    let traceback = "Traceback (most recent call last):\n  File \"/app/invoices/send.py\", line 12, in send\n    mail(invoice)\nKeyError: 'customer_email'\n";
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "shop"}},
            {"key": "deployment.environment.name", "value": {"stringValue": "prod"}},
            {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}}
        ]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.fastapi"}, "spans": [
            {"traceId": trace, "spanId": "eee19b7ec3c1b174", "name": "GET /invoices/{id}",
             "kind": 2, "startTimeUnixNano": start.to_string(),
             "endTimeUnixNano": (start + 300_000_000).to_string(),
             "attributes": [
                {"key": "http.route", "value": {"stringValue": "/invoices/{id}"}},
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "http.response.status_code", "value": {"intValue": 500}},
                {"key": "job_id", "value": {"stringValue": "bulk-7"}}
             ]},
            {"traceId": trace, "spanId": "00f067aa0ba902b7", "parentSpanId": "eee19b7ec3c1b174",
             "name": "send invoice", "kind": 1,
             "startTimeUnixNano": (start + 1_000_000).to_string(),
             "endTimeUnixNano": (start + 200_000_000).to_string(),
             "status": {"code": 2, "message": "KeyError"},
             "events": [{"name": "exception", "timeUnixNano": (start + 199_000_000).to_string(),
                "attributes": [
                    {"key": "exception.type", "value": {"stringValue": "KeyError"}},
                    {"key": "exception.message", "value": {"stringValue": "'customer_email'"}},
                    {"key": "exception.stacktrace", "value": {"stringValue": traceback}}
                ]}]}
        ]}]
    }]})
    .to_string()
}

#[tokio::test]
async fn spans_feed_performance_and_issues_and_are_found_by_search() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let start = now_ns() - 60_000_000_000;
    let body = failing_request(trace, start).into_bytes();
    let answer = app
        .send(post(&key, "application/json", None, body.clone()))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // The exporter timed out and sends the batch again: nothing counts twice but the figures'
    // request count (the documented cost of a retry).
    let again = app.send(post(&key, "application/json", None, body)).await;
    assert_eq!(again.status, StatusCode::OK);

    // The request is an endpoint on the Performance page, named as a Sentry SDK's would be.
    let list = app
        .api_get("/api/v1/transactions?project=1", &token)
        .await
        .json();
    let endpoint = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "GET /invoices/{id}")
        .unwrap_or_else(|| panic!("no endpoint: {list}"));
    assert_eq!(endpoint["op"], "http.server");
    assert_eq!(endpoint["failure_rate"], 1.0, "answered 500");
    let p50 = endpoint["p50_ms"].as_f64().unwrap();
    assert!((290.0..=310.0).contains(&p50), "{p50}");

    // The exception is an issue, once, with its frames, trace and job.
    let issues = app.api_get("/api/v1/issues?project=1", &token).await.json();
    let issues = issues["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0]["title"], "KeyError: 'customer_email'");
    assert_eq!(issues[0]["culprit"], "GET /invoices/{id}");
    assert_eq!(issues[0]["events"], 1, "the retry's copy is the same event");
    let events = app
        .api_get(
            &format!("/api/v1/issues/{}/events?project=1", issues[0]["id"]),
            &token,
        )
        .await
        .json();
    let event = &events[0];
    assert_eq!(event["trace_id"], trace);
    assert_eq!(event["job_id"], "bulk-7");
    assert_eq!(event["environment"], "prod");

    // Search finds the trace by what began it; the trace page links its issue.
    let search = |q: &str| format!("/api/v1/traces?project=1&q={}", url_encode(q));
    let found = app
        .api_get(&search("service:shop min:250ms error"), &token)
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    let found = found.json();
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "one entry, sent twice: {traces:?}");
    assert_eq!(traces[0]["trace_id"], trace);
    assert_eq!(traces[0]["name"], "GET /invoices/{id}");
    assert_eq!(traces[0]["job_id"], "bulk-7");
    assert_eq!(traces[0]["duration_ns"], 300_000_000);
    for q in ["min:1s", "service:other", "status:ok"] {
        let none = app.api_get(&search(q), &token).await.json();
        assert_eq!(none["traces"], serde_json::json!([]), "{q}");
    }
    for (path, field) in [
        (search("servce:shop"), "q"),
        (format!("{}&order=fastest", search("")), "order"),
        (format!("{}&limit=0", search("")), "limit"),
        (format!("{}&limit=501", search("")), "limit"),
    ] {
        let refused = app.api_get(&path, &token).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(refused.json()["error"]["field"], field, "{}", refused.body);
    }

    let cookie = app.setup_admin().await;
    let page = app.get("/traces?q=service%3Ashop", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains(&format!("href=\"/traces/{trace}#span-eee19b7ec3c1b174\"")));
    assert!(page.body.contains("GET /invoices/{id}"));
    let pasted = app
        .get(&format!("/traces?q=+{}+", trace.to_uppercase()), &cookie)
        .await;
    assert!(pasted.status.is_redirection(), "{}", pasted.status);
    assert_eq!(pasted.location(), format!("/traces/{trace}"));
    let bad = app.get("/traces?q=min%3Afast", &cookie).await;
    assert_eq!(
        bad.status,
        StatusCode::OK,
        "the error shows by the search box"
    );
    assert!(bad.body.contains("is not a duration"), "{}", bad.body);
    let page = app.get(&format!("/traces/{trace}"), &cookie).await;
    assert!(page.body.contains("id=\"trace-errors\""), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("/issues/{}?event=", issues[0]["id"])));
    assert!(
        !page.body.contains("id=\"trace-jobs\""),
        "no such job: no link"
    );
    assert!(
        page.body.contains("wf-row critical"),
        "the critical path is marked"
    );
    // A trace id pasted in the Issues, Logs or Celery search box opens the trace (in capitals
    // too, as some tools print it); an unknown one, or one among other words, searches.
    for search in ["/issues?query=", "/logs?q=", "/celery?q="] {
        for pasted in [trace.to_string(), format!("%20{}%20", trace.to_uppercase())] {
            let answer = app.get(&format!("{search}{pasted}"), &cookie).await;
            assert_eq!(
                answer.location(),
                format!("/traces/{trace}"),
                "{search}{pasted}"
            );
        }
        let unknown = app
            .get(
                &format!("{search}ffffffffffffffffffffffffffffffff"),
                &cookie,
            )
            .await;
        assert_eq!(unknown.status, StatusCode::OK, "{search}: {}", unknown.body);
        let among_words = app.get(&format!("{search}{trace}%20failed"), &cookie).await;
        assert_eq!(
            among_words.status,
            StatusCode::OK,
            "{search}: {}",
            among_words.body
        );
    }
    // The job the request worked for lists its trace, once it exists, and the trace links it.
    let job = app
        .send(
            Request::post("/api/v1/jobs")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"id": "bulk-7", "name": "Bulk send"}"#))
                .unwrap(),
        )
        .await;
    assert!(job.status.is_success(), "{}", job.body);
    let job_page = app.get("/jobs/bulk-7", &cookie).await;
    assert!(
        job_page.body.contains(&format!("href=\"/traces/{trace}\"")),
        "{}",
        job_page.body
    );
    let page = app.get(&format!("/traces/{trace}"), &cookie).await;
    assert!(
        page.body.contains("id=\"trace-jobs\""),
        "the job links back"
    );
    assert!(page.body.contains("href=\"/jobs/bulk-7\""));

    // A project whose Sentry SDK reports its errors turns span exceptions off.
    let off = app
        .api(
            Method::PUT,
            "/api/v1/error-settings?project=1",
            &token,
            Some(r#"{"span_exceptions": false}"#),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(off.json()["span_exceptions"], false);
    let other = "4bf92f3577b34da6a3ce929d0e0e4737";
    let body = failing_request(other, start).into_bytes();
    assert_eq!(
        app.send(post(&key, "application/json", None, body))
            .await
            .status,
        StatusCode::OK
    );
    let issues = app.api_get("/api/v1/issues?project=1", &token).await.json();
    assert_eq!(issues["issues"][0]["events"], 1, "no new event");
    let list = app
        .api_get("/api/v1/transactions?project=1", &token)
        .await
        .json();
    assert_eq!(list[0]["count"], 3, "the request still counts");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_trace_begun_by_a_sentry_sdk_and_continued_over_opentelemetry_is_one_tree() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    let trace = "6e0c63257de34c92bf9efcd03927272e";
    let start = now_ns() - 30_000_000_000;
    let secs = |ns: u64| ns as f64 / 1e9;
    // The browser's page load, as @sentry/browser sends it: a transaction with a fetch span
    // whose id travels in `traceparent` / `sentry-trace` to the backend.
    let pageload = serde_json::json!({
        "type": "transaction", "platform": "javascript",
        "event_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "transaction": "/invoices/:id", "start_timestamp": secs(start),
        "timestamp": secs(start + 900_000_000),
        "contexts": {"trace": {"trace_id": trace, "span_id": "a000000000000001", "op": "pageload"}},
        "spans": [{"span_id": "a000000000000002", "parent_span_id": "a000000000000001",
                   "trace_id": trace, "op": "http.client", "description": "GET /api/invoices/7",
                   "start_timestamp": secs(start + 100_000_000),
                   "timestamp": secs(start + 500_000_000), "status": "ok"}]
    });
    let envelope = format!(
        "{{\"event_id\":\"a1b2c3d4e5f60718293a4b5c6d7e8f90\"}}\n{{\"type\":\"transaction\"}}\n{pageload}\n"
    );
    let sent = app
        .send(
            Request::post("/api/1/envelope/")
                .header(
                    "x-sentry-auth",
                    format!("Sentry sentry_version=7, sentry_key={key}"),
                )
                .body(Body::from(envelope))
                .unwrap(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    // The backend's request, a child of the browser's fetch, over OTLP/JSON.
    let backend = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "invoices-api"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace, "spanId": "b000000000000001", "parentSpanId": "a000000000000002",
            "name": "GET /api/invoices/{id}", "kind": 2,
            "startTimeUnixNano": (start + 150_000_000).to_string(),
            "endTimeUnixNano": (start + 450_000_000).to_string(),
            "attributes": [{"key": "http.route", "value": {"stringValue": "/api/invoices/{id}"}},
                           {"key": "http.request.method", "value": {"stringValue": "GET"}}]
        }]}]
    }]});
    let answer = app
        .send(post(
            &key,
            "application/json",
            None,
            backend.to_string().into_bytes(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let read = app
        .api_get(&format!("/api/v1/traces/{trace}?project=1"), &token)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let read = read.json();
    assert_eq!(
        read["services"],
        serde_json::json!(["invoices-api", "sentry:javascript"])
    );
    let spans = read["spans"].as_array().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "/invoices/:id",
            "GET /api/invoices/7",
            "GET /api/invoices/{id}"
        ],
        "by start time"
    );
    assert_eq!(spans[2]["parent_span_id"], spans[1]["span_id"], "one tree");
    // Sentry's times are float seconds: to the microsecond.
    let duration = read["duration_ns"].as_i64().unwrap();
    assert!((duration - 900_000_000).abs() < 1_000, "{duration}");
    // Both beginnings are found by search: the page load and the request it made.
    let found = app.api_get("/api/v1/traces?project=1", &token).await.json();
    let entries: Vec<(&str, &str)> = found["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["service"].as_str().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            ("invoices-api", "GET /api/invoices/{id}"),
            ("sentry:javascript", "/invoices/:id")
        ]
    );
}

/// A request that went well, `ms` long, as the SDK reports it over OTLP/JSON.
fn quiet_request(trace: &str, start: u64, ms: u64) -> Vec<u8> {
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.fastapi"}, "spans": [
            {"traceId": trace, "spanId": "eee19b7ec3c1b174", "name": "GET /invoices/{id}",
             "kind": 2, "startTimeUnixNano": start.to_string(),
             "endTimeUnixNano": (start + ms * 1_000_000).to_string(),
             "attributes": [
                {"key": "http.route", "value": {"stringValue": "/invoices/{id}"}},
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "http.response.status_code", "value": {"intValue": 200}}
             ]}
        ]}]
    }]})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn settled_traces_keep_the_failed_and_the_slow_and_drop_the_rest_counted() {
    let app = app_configured(Duration::from_secs(3600), |c| {
        c.traces.keep_rate = 0.0;
        c.traces.settle_after = "1ms".into();
    })
    .await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    let start = now_ns() - 60_000_000_000;
    let failing = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = app
        .send(post(
            &key,
            "application/json",
            None,
            failing_request(failing, start).into_bytes(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Twenty ordinary requests of 10 to 29 ms, and one of 900 ms: slower than the p95.
    let quiet = |n: u64| format!("{n:016x}{:016x}", u64::MAX - n);
    for n in 0..20 {
        let body = quiet_request(&quiet(n), start + n * 1_000_000_000, 10 + n);
        let answer = app.send(post(&key, "application/json", None, body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let slow = "0af7651916cd43dd8448eb211c80319c";
    let answer = app
        .send(post(
            &key,
            "application/json",
            None,
            quiet_request(slow, start, 900),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let said = vigie_server::traces::settle(&app.state).await.unwrap();
    assert!(said.contains("span blocks settled"), "{said}");
    let open = |trace: String| {
        let path = format!("/api/v1/traces/{trace}?project=1");
        let (app, token) = (&app, &token);
        async move { app.api_get(&path, token).await.status }
    };
    assert_eq!(open(failing.into()).await, StatusCode::OK, "failed: kept");
    assert_eq!(
        open(slow.into()).await,
        StatusCode::OK,
        "slower than p95: kept"
    );
    assert_eq!(
        open(quiet(0)).await,
        StatusCode::NOT_FOUND,
        "ordinary: dropped"
    );
    // Search no longer finds a dropped trace; the Performance page still counts it.
    let found = app
        .api_get("/api/v1/traces?project=1&q=service%3Ashop", &token)
        .await;
    let found = found.json()["traces"].as_array().unwrap().len();
    assert!(
        (2..=3).contains(&found),
        "the failed, the slow (and one at p95): {found}"
    );
    let endpoints = app
        .api_get("/api/v1/transactions?project=1", &token)
        .await
        .json();
    let endpoint = endpoints
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "GET /invoices/{id}")
        .cloned()
        .unwrap();
    assert_eq!(endpoint["count"], 22, "{endpoint}");

    // Every judged trace is counted by outcome, and the dropped spans as not stored.
    let metrics = app.get("/metrics", "").await.body;
    let count = |line: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let dropped = count("vigie_traces_settled_total{outcome=\"dropped\"}");
    assert_eq!(
        count("vigie_traces_settled_total{outcome=\"kept_error\"}"),
        1,
        "{metrics}"
    );
    assert!(count("vigie_traces_settled_total{outcome=\"kept_slow\"}") >= 1);
    assert_eq!(
        dropped + count("vigie_traces_settled_total{outcome=\"kept_slow\"}"),
        21,
        "{metrics}"
    );
    assert_eq!(
        count("vigie_spans_sampled_out_total"),
        dropped,
        "one span each"
    );
    // A second pass finds nothing left to judge.
    let again = vigie_server::traces::settle(&app.state).await.unwrap();
    assert!(again.starts_with("0 span blocks settled"), "{again}");
}

#[tokio::test]
async fn a_project_keeps_its_spans_as_long_as_its_own_retention_says() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    let other = app
        .state
        .store
        .create_project("kept-longer", &vigie_core::ProjectKey::generate())
        .await
        .unwrap();
    let three_days_ago = now_ns() - 3 * 86_400_000_000_000;
    let old = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = app
        .send(post(
            &key,
            "application/json",
            None,
            quiet_request(old, three_days_ago, 10),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer = app
        .send(post(
            other.public_key.as_str(),
            "application/json",
            None,
            quiet_request(old, three_days_ago, 10),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // Out of range: refused, naming the field; nothing changed.
    for days in ["-1", "3651"] {
        let refused = app
            .api(
                Method::PUT,
                "/api/v1/error-settings?project=1",
                &token,
                Some(&format!(r#"{{"span_retention_days": {days}}}"#)),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert_eq!(refused.json()["error"]["field"], "span_retention_days");
    }
    let set = app
        .api(
            Method::PUT,
            "/api/v1/error-settings?project=1",
            &token,
            Some(r#"{"span_retention_days": 2}"#),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["span_retention_days"], 2);

    let said = vigie_server::sentry::retention(&app.state).await.unwrap();
    assert!(said.contains("spans dropped: 1"), "{said}");
    let path = |project: i64| format!("/api/v1/traces/{old}?project={project}");
    let gone = app.api_get(&path(1), &token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "two days: dropped");
    let kept = app.api_get(&path(other.id.0), &token).await;
    assert_eq!(
        kept.status,
        StatusCode::OK,
        "as long as events (90 days): kept"
    );

    // 0 gives the project the server's retention again.
    let reset = app
        .api(
            Method::PUT,
            "/api/v1/error-settings?project=1",
            &token,
            Some(r#"{"span_retention_days": 0}"#),
        )
        .await;
    assert_eq!(reset.json()["span_retention_days"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_span_from_a_wrong_clock_is_placed_at_its_receive_time_and_found() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    // A clock at the epoch (start 1 µs after it) and one in 1990, in two traces; the second
    // trace also has a span from a right clock. (A start more than a day ahead is refused by
    // the OTLP reader, with a reason in `partial_success`.)
    let wrong = |trace: &str, id: &str, start: u64| {
        format!(
            r#"{{"traceId":"{trace}","spanId":"{id}","name":"nightly import","kind":1,
            "startTimeUnixNano":"{start}","endTimeUnixNano":"{}"}}"#,
            start + 3_000_000_000
        )
    };
    let (old, nineties) = (
        "0000000000000000000000000000000a",
        "0000000000000000000000000000000b",
    );
    let right = now_ns() - 60_000_000_000;
    let spans = [
        wrong(old, "00000000000000a1", 1_000),
        wrong(nineties, "00000000000000b1", 631_152_000_000_000_000),
        format!(
            r#"{{"traceId":"{nineties}","spanId":"00000000000000b2","parentSpanId":"00000000000000b1",
            "name":"SELECT","kind":3,"startTimeUnixNano":"{right}","endTimeUnixNano":"{}"}}"#,
            right + 1_000
        ),
    ];
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"cron"}}}}]}},
        "scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let before = now_ns() as i64;
    let answer = app
        .send(post(&key, "application/json", None, body.into_bytes()))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json(), serde_json::json!({}), "nothing refused");
    let after = now_ns() as i64;

    let read = |trace: &'static str| {
        let app = &app;
        let token = &token;
        async move {
            let answer = app
                .api_get(&format!("/api/v1/traces/{trace}?project=1"), token)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            answer.json()
        }
    };
    let old_trace = read(old).await;
    let span = &old_trace["spans"][0];
    let start = span["start"].as_i64().unwrap();
    assert!(before <= start && start <= after, "{span}");
    assert_eq!(span["end"].as_i64().unwrap() - start, 3_000_000_000);
    let original = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv[0] == "vigie.original_start")
        .unwrap_or_else(|| panic!("the start as sent is kept: {span}"));
    assert_eq!(original[1], "1970-01-01T00:00:00.000001Z");
    let nineties_trace = read(nineties).await;
    let starts: Vec<i64> = nineties_trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_i64().unwrap())
        .collect();
    assert_eq!(
        starts,
        [right as i64, starts[1]],
        "the right clock's span stays"
    );
    assert!(before <= starts[1] && starts[1] <= after);

    // Both are found by a search over the last hour, newest first.
    let found = app
        .api_get("/api/v1/traces?project=1&q=since:1h%20service:cron", &token)
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    let found = found.json();
    let traces: Vec<&str> = found["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("{found}"))
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(traces.len(), 2, "{found}");
    assert!(
        traces.contains(&old) && traces.contains(&nineties),
        "{found}"
    );
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_spans_time_replaced_total 2"),
        "{metrics}"
    );
}
