//! OTLP/HTTP metrics against the real router: what an OpenTelemetry metric exporter sends is
//! stored per series per minute, answered as OTLP says (partial_success, 400, 415), charted
//! back through the API and the Metrics page, bounded per project, and watched by a
//! threshold rule that delivers to a real webhook receiver.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};

use common::{app, app_configured, gzip, project_key};
use prost::Message;
use std::time::Duration;
use vigie_protocol::otlp::metrics::{
    metric, number, ExportMetricsServiceRequest, ExportMetricsServiceResponse, Gauge,
    HistogramDataPoint, Metric, NumberDataPoint, OtlpHistogram, ResourceMetrics, ScopeMetrics, Sum,
};
use vigie_protocol::otlp::{any_value, AnyValue, KeyValue, Resource};

const MINUTE: u64 = 60_000_000_000;
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

/// The start of the current minute, in nanoseconds.
fn this_minute() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    now / MINUTE * MINUTE
}

fn export(service: &str, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string("service.name", service)],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    }
}

fn number_point(attrs: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number::Value::AsDouble(value)),
    }
}

fn counter(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: "Requests served".into(),
        unit: "1".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: CUMULATIVE,
            is_monotonic: true,
        })),
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: String::new(),
        unit: "1".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
    }
}

fn post(key: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    common::otlp_request("/v1/metrics", key, content_type, encoding, body)
}

#[tokio::test]
async fn points_sent_as_the_exporters_send_them_chart_back_per_group() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    let now = this_minute();
    let start = now - 3 * MINUTE;

    // Protobuf, gzip-compressed, cumulative as the Python SDK sends by default: two routes
    // over two minutes, a histogram, and one point without a time (refused, the rest kept).
    let route = |r: &str| vec![string("http.route", r), string("http.method", "GET")];
    let first = export(
        "Shop",
        vec![
            counter(
                "http.server.requests",
                vec![
                    number_point(route("/Invoices"), start, now - 2 * MINUTE + 5, 60.0),
                    number_point(route("/<b>cart</b>"), start, now - 2 * MINUTE + 5, 6.0),
                    number_point(route("/late"), start, 0, 1.0),
                ],
            ),
            Metric {
                name: "http.server.duration".into(),
                description: String::new(),
                unit: "s".into(),
                data: Some(metric::Data::Histogram(OtlpHistogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: route("/Invoices"),
                        start_time_unix_nano: now - MINUTE,
                        time_unix_nano: now - MINUTE + 5,
                        count: 20,
                        sum: Some(4.0),
                        bucket_counts: vec![10, 9, 1],
                        explicit_bounds: vec![0.1, 0.5],
                        min: Some(0.01),
                        max: Some(0.9),
                    }],
                    aggregation_temporality: DELTA,
                })),
            },
        ],
    );
    let answer = app
        .send(post(
            &key,
            "application/x-protobuf",
            Some("gzip"),
            gzip(&first.encode_to_vec()),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.content_type(), "application/x-protobuf");
    let partial = ExportMetricsServiceResponse::decode(answer.bytes.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("time_unix_nano"),
        "{partial:?}"
    );

    // A minute later the totals went up: 120 more on /Invoices (2 a second), 0 on the cart.
    let later = export(
        "Shop",
        vec![counter(
            "http.server.requests",
            vec![
                number_point(route("/Invoices"), start, now - MINUTE + 5, 180.0),
                number_point(route("/<b>cart</b>"), start, now - MINUTE + 5, 6.0),
            ],
        )],
    );
    let answer = app
        .send(post(
            &key,
            "application/x-protobuf",
            None,
            later.encode_to_vec(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(
        ExportMetricsServiceResponse::decode(answer.bytes.as_slice())
            .unwrap()
            .partial_success
            .is_none()
    );

    // JSON, as the Node exporter sends it.
    let json = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"worker"}}}}]}},
        "scopeMetrics":[{{"metrics":[{{"name":"queue.depth","unit":"1","gauge":{{"dataPoints":[
        {{"timeUnixNano":"{}","asInt":"42","attributes":[{{"key":"queue","value":{{"stringValue":"mail"}}}}]}}]}}}}]}}]}}]}}"#,
        now + 1
    );
    let answer = app
        .send(post(&key, "application/json", None, json.into_bytes()))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json(), serde_json::json!({}));

    // What is not OTLP is refused whole, in JSON.
    let garbage = app
        .send(post(&key, "application/x-protobuf", None, vec![0xff; 9]))
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.content_type(), "application/json");
    let text = app
        .send(post(&key, "text/plain", None, b"requests 1".to_vec()))
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let anonymous = app
        .send(post("nope", "application/json", None, b"{}".to_vec()))
        .await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);

    // The list, and a chart: rate per route, per minute.
    let list = app.api_get("/api/v1/metrics?project=1", &token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let names: Vec<(String, u64)> = list.json()["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["series"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("http.server.duration".to_string(), 1),
            ("http.server.requests".to_string(), 2),
            ("queue.depth".to_string(), 1)
        ]
    );
    let chart = app
        .api_get(
            "/api/v1/metrics/http.server.requests?project=1&group_by=http.route&range=5m",
            &token,
        )
        .await;
    assert_eq!(chart.status, StatusCode::OK, "{}", chart.body);
    let chart = chart.json();
    assert_eq!(chart["stat"], "rate", "a counter's default figure");
    assert_eq!(chart["step_s"], 60);
    let invoices = &chart["groups"][0];
    assert_eq!(invoices["label"], "/Invoices");
    let values: Vec<Option<f64>> = invoices["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64())
        .collect();
    // Five minutes ending with the current one: the first total (began a minute before)
    // counts whole, the next adds 120 in a minute. The current minute is the chart's, which
    // may be the one after `now` on a slow machine: the steps are placed from its `from`.
    let step_of = |nanos: u64| {
        let from_ms = chart["from"].as_i64().unwrap();
        usize::try_from((nanos / 1_000_000) as i64 - from_ms).unwrap() / 60_000
    };
    let mut expected = vec![None; 5];
    expected[step_of(now - 2 * MINUTE)] = Some(1.0);
    expected[step_of(now - MINUTE)] = Some(2.0);
    assert_eq!(values, expected);
    assert!(
        [now, now + MINUTE].contains(&(chart["from"].as_u64().unwrap() * 1_000_000 + 4 * MINUTE)),
        "the chart ends with the minute the points were sent in, or the next: {}",
        chart["from"]
    );
    assert_eq!(invoices["whole"], 180.0 / 300.0);
    let p95 = app
        .api_get(
            "/api/v1/metrics/http.server.duration?project=1&stat=p95&range=5m",
            &token,
        )
        .await
        .json();
    let p95 = p95["groups"][0]["whole"].as_f64().unwrap();
    assert!((0.1..=0.5).contains(&p95), "{p95}");

    // Mistakes say which field.
    for (path, field) in [
        ("/api/v1/metrics/queue.depth?project=1&stat=p42", "stat"),
        ("/api/v1/metrics/queue.depth?project=1&range=90d", "range"),
        (
            "/api/v1/metrics/queue.depth?project=1&filter=nocolon",
            "filter",
        ),
    ] {
        let bad = app.api_get(path, &token).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(bad.body.contains(field), "{}", bad.body);
    }
    let missing = app
        .api_get("/api/v1/metrics/nothing?project=1", &token)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The page: the metric list, the chart's lines and legend, attribute values escaped.
    let session = app.setup_admin().await;
    let page = app
        .get(
            "/charts?metric=http.server.requests&group_by=http.route&range=15m",
            &session,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("queue.depth"));
    assert!(page.body.contains("&lt;b&gt;cart&lt;/b&gt;"), "escaped");
    assert!(!page.body.contains("<b>cart</b>"));
    assert!(page.body.contains("<polyline"), "a line is drawn");
    assert!(page.body.contains("/Invoices"));
    let empty_filter = app
        .get("/charts?metric=queue.depth&filter=queue:nothing", &session)
        .await;
    assert_eq!(empty_filter.status, StatusCode::OK);
    assert!(empty_filter.body.contains("0 of 1 series"));

    // Every refused point is counted.
    let metrics = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert!(metrics
        .body
        .contains("vigie_metric_points_malformed_total 1"));
    assert!(
        metrics
            .body
            .contains("vigie_ingest_items_total{protocol=\"otlp\",kind=\"metric_point\"} 6"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn a_project_past_its_series_limit_refuses_new_series_and_keeps_known_ones() {
    let app = app_configured(Duration::from_secs(3600), |c| c.metrics.max_series = 3).await;
    let key = project_key(&app).await;
    let now = this_minute();
    let user = |n: usize| {
        number_point(
            vec![string("user.id", &n.to_string())],
            now - MINUTE,
            now + 1,
            n as f64,
        )
    };
    // A metric labelled by user id, a classic cardinality mistake: five series, three kept.
    let body = export(
        "api",
        vec![gauge("session.age", (0..5).map(user).collect())],
    );
    let answer = app
        .send(post(
            &key,
            "application/x-protobuf",
            None,
            body.encode_to_vec(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let partial = ExportMetricsServiceResponse::decode(answer.bytes.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_data_points, 2);
    assert!(partial.error_message.contains("max_series"), "{partial:?}");
    // The kept series go on.
    let again = export("api", vec![gauge("session.age", vec![user(0), user(1)])]);
    let answer = app
        .send(post(
            &key,
            "application/x-protobuf",
            None,
            again.encode_to_vec(),
        ))
        .await;
    assert!(
        ExportMetricsServiceResponse::decode(answer.bytes.as_slice())
            .unwrap()
            .partial_success
            .is_none()
    );
    let metrics = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert!(
        metrics
            .body
            .contains("vigie_metric_points_over_series_limit_total 2"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn a_metric_threshold_rule_fires_to_a_webhook_once() {
    let app = app().await;
    let _tasks = vigie_server::alerts::start(&app.state);
    let key = project_key(&app).await;
    let token = app.admin_token().await;
    let (url, got) = common::webhook_receiver().await;
    let hook_id = app
        .webhook_channel(&token, "ops", &format!("{url}/hook"))
        .await;
    // A window under a minute is refused: metrics are kept per minute.
    let short = app
        .api_post("/api/v1/alerts/rules", &token, &format!(
                r#"{{"name": "deep", "rule": {{"kind": "metric_threshold", "metric": "queue.depth", "stat": "max", "above": 100, "window_s": 30}}, "channels": [{hook_id}]}}"#
            ))
        .await;
    assert_eq!(
        short.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        short.body
    );
    let rule = app
        .api_post("/api/v1/alerts/rules", &token, &format!(
                r#"{{"name": "mail queue deep", "rule": {{"kind": "metric_threshold", "metric": "queue.depth", "stat": "max", "filter": "queue:mail", "above": 100.5, "window_s": 300}}, "channels": [{hook_id}]}}"#
            ))
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);

    let now = this_minute();
    let depth =
        |queue: &str, value: f64| number_point(vec![string("queue", queue)], 0, now + 1, value);
    // Deep, but on another queue than the rule's: nothing.
    let body = export(
        "worker",
        vec![gauge(
            "queue.depth",
            vec![depth("reports", 500.0), depth("mail", 40.0)],
        )],
    );
    let answer = app
        .send(post(
            &key,
            "application/x-protobuf",
            None,
            body.encode_to_vec(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(got.lock().unwrap().is_empty(), "{:?}", got.lock().unwrap());

    let body = export(
        "worker",
        vec![gauge("queue.depth", vec![depth("mail", 150.0)])],
    );
    app.send(post(
        &key,
        "application/x-protobuf",
        None,
        body.encode_to_vec(),
    ))
    .await;
    common::eventually("the alert is delivered", || {
        let got = got.clone();
        async move { !got.lock().unwrap().is_empty() }
    })
    .await;
    // Still above on the next readings: no second message.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let text = got[0].to_string();
    assert!(text.contains("queue.depth"), "{text}");
    assert!(text.contains("150"), "{text}");
}
