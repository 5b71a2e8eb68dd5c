//! Sentry ingest against the real router: envelopes the real sentry-python sent (the
//! protocol crate's fixtures), authentication, encodings, limits, malformed input, quotas,
//! and what the issues and performance API answer afterwards.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{app, gzip, project_key, Answer, App};
use vigie_core::Scope;
use vigie_server::accounts::manage;

const EXCEPTION: &[u8] =
    include_bytes!("../../vigie-protocol/tests/fixtures/sentry/exception.envelope");
const MESSAGE: &[u8] =
    include_bytes!("../../vigie-protocol/tests/fixtures/sentry/message.envelope");
const TRANSACTION: &[u8] =
    include_bytes!("../../vigie-protocol/tests/fixtures/sentry/transaction.envelope");

fn auth(key: &str) -> String {
    format!("Sentry sentry_version=7, sentry_client=sentry.python/2.75.0, sentry_key={key}")
}

/// The first line of an envelope with a new event id, so a fixture can be sent again as a
/// different event.
fn with_event_id(envelope: &[u8], id: &str) -> Vec<u8> {
    let text = String::from_utf8(envelope.to_vec()).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let mut header: serde_json::Value = serde_json::from_str(head).unwrap();
    let old = header["event_id"].as_str().unwrap().to_string();
    header["event_id"] = id.into();
    format!("{header}\n{}", rest.replace(&old, id)).into_bytes()
}

async fn post(app: &App, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut req = Request::post(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.send(req.body(Body::from(body)).unwrap()).await
}

/// Posts an envelope with the `X-Sentry-Auth` header `auth` and checks it is taken (200).
async fn send_envelope(app: &App, auth: &str, body: Vec<u8>) -> Answer {
    let sent = post(app, "/api/1/envelope/", &[("x-sentry-auth", auth)], body).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    sent
}

async fn admin(app: &App) -> String {
    let (_, token) = manage::create_token(app.state.store.as_ref(), "ops", Scope::Admin)
        .await
        .unwrap();
    token
}

#[tokio::test]
async fn an_sdk_envelope_becomes_a_scrubbed_issue_once() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let sent = post(
        &app,
        "/api/1/envelope/",
        &[
            ("x-sentry-auth", &auth(&key)),
            ("content-type", "application/x-sentry-envelope"),
        ],
        EXCEPTION.to_vec(),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let id = sent.json()["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(sent.headers["access-control-allow-origin"], "*");

    // The SDK retries the same envelope: stored once.
    send_envelope(&app, &auth(&key), EXCEPTION.to_vec()).await;

    let list = app.api_get("/api/v1/issues", &token).await.json();
    assert_eq!(list["total"], 1, "{list}");
    let issue = &list["issues"][0];
    assert_eq!(issue["title"], "KeyError: 'vat_rate'");
    assert_eq!(issue["culprit"], "__main__ in render");
    assert_eq!(
        (issue["events"].as_i64(), issue["users"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(issue["status"], "unresolved");

    let detail = app
        .api_get(&format!("/api/v1/issues/{}", issue["id"]), &token)
        .await
        .json();
    let frames = &detail["latest_event"]["exception"]["values"][0]["stacktrace"]["frames"];
    assert_eq!(frames[2]["vars"]["password"], "[Filtered]");
    assert!(
        detail["latest_event"]["user"].get("email").is_none(),
        "e-mail scrubbed by default"
    );
    assert!(detail["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "job_id" && t["value"] == "nightly-7"));
    let event = app.api_get(&format!("/api/v1/events/{id}"), &token).await;
    assert_eq!(event.status, StatusCode::OK);
    assert!(
        !event.body.contains("4111 1111"),
        "card numbers never stored"
    );

    // Resolve it; the same error again (a new event id) is a regression.
    let resolved = app
        .api_post(
            &format!("/api/v1/issues/{}/status", issue["id"]),
            &token,
            r#"{"action": "resolve"}"#,
        )
        .await;
    assert_eq!(resolved.json()["status"], "resolved");
    let next = with_event_id(EXCEPTION, "0123456789abcdef0123456789abcdef");
    let sent = post(
        &app,
        "/api/1/envelope/",
        &[("x-sentry-auth", &auth(&key)), ("content-encoding", "gzip")],
        gzip(&next),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let issue = app.api_get("/api/v1/issues", &token).await.json()["issues"][0].clone();
    assert_eq!(
        (
            issue["status"].as_str(),
            issue["regressed"].as_bool(),
            issue["events"].as_i64()
        ),
        (Some("unresolved"), Some(true), Some(2))
    );
    let bad = app
        .api_post(
            &format!("/api/v1/issues/{}/status", issue["id"]),
            &token,
            r#"{"action": "archive"}"#,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["error"]["field"], "action");
}

#[tokio::test]
async fn keys_projects_and_cors() {
    let app = app().await;
    let key = project_key(&app).await;
    let body = || MESSAGE.to_vec();
    let none = post(&app, "/api/1/envelope/", &[], body()).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{}", none.body);
    assert!(none.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sentry_key"));
    let other_key = "0123456789abcdef0123456789abcdef";
    for (path, key, expected) in [
        ("/api/1/envelope/", other_key, StatusCode::FORBIDDEN),
        ("/api/99/envelope/", &key, StatusCode::NOT_FOUND),
        ("/api/shop/store/", &key, StatusCode::NOT_FOUND),
    ] {
        let refused = post(&app, path, &[("x-sentry-auth", &auth(key))], body()).await;
        assert_eq!(refused.status, expected, "{path} with {key}");
    }

    // Browser SDKs: the key in the query, text/plain, any origin, and a preflight.
    let browser = post(
        &app,
        &format!("/api/1/envelope/?sentry_key={key}&sentry_version=7"),
        &[
            ("content-type", "text/plain;charset=UTF-8"),
            ("origin", "https://shop.example"),
        ],
        body(),
    )
    .await;
    assert_eq!(browser.status, StatusCode::OK, "{}", browser.body);
    assert_eq!(browser.headers["access-control-allow-origin"], "*");
    let preflight = app
        .send(
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/api/1/envelope/")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert!(preflight.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("x-sentry-auth"));

    // The DSN in the envelope header is enough.
    let text = String::from_utf8(MESSAGE.to_vec()).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let mut header: serde_json::Value = serde_json::from_str(head).unwrap();
    header["dsn"] = format!("http://{key}@127.0.0.1:8610/1").into();
    header["event_id"] = "fedcba9876543210fedcba9876543210".into();
    let with_dsn = format!("{header}\n{}", rest.replace(head, ""));
    let sent = post(&app, "/api/1/envelope/", &[], with_dsn.into_bytes()).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);

    // The old store endpoint.
    let stored = post(
        &app,
        "/api/1/store/",
        &[("x-sentry-auth", &auth(&key)), ("content-type", "application/json")],
        br#"{"event_id": "11111111111111111111111111111111", "message": "from the store endpoint", "level": "info"}"#.to_vec(),
    )
    .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    assert_eq!(stored.json()["id"], "11111111111111111111111111111111");
}

#[tokio::test]
async fn malformed_oversized_and_bombs() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let h = auth(&key);
    let headers = [("x-sentry-auth", h.as_str())];

    let garbage = post(
        &app,
        "/api/1/envelope/",
        &headers,
        b"not an envelope".to_vec(),
    )
    .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(
        garbage.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("header"),
        "{}",
        garbage.body
    );

    // A good event next to a broken one: 400 naming the broken item, the good one stored.
    let mixed = concat!(
        "{\"event_id\":\"22222222222222222222222222222222\"}\n",
        "{\"type\":\"event\"}\n",
        "{\"message\":\"good one\"}\n",
        "{\"type\":\"transaction\"}\n",
        "{broken\n",
    );
    let answer = post(
        &app,
        "/api/1/envelope/",
        &headers,
        mixed.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body.contains("item 1 (transaction)"),
        "{}",
        answer.body
    );
    let list = app
        .api_get("/api/v1/issues?query=good", &token)
        .await
        .json();
    assert_eq!(list["total"], 1, "{list}");

    // An event over 1 MiB: 413 and nothing stored.
    let big = format!(
        "{{\"event_id\":\"33333333333333333333333333333333\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"huge\",\"extra\":{{\"blob\":\"{}\"}}}}\n",
        "x".repeat(1_100_000)
    );
    let answer = post(
        &app,
        "/api/1/envelope/",
        &[("x-sentry-auth", &h), ("content-encoding", "gzip")],
        gzip(big.as_bytes()),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    let list = app
        .api_get("/api/v1/issues?query=huge", &token)
        .await
        .json();
    assert_eq!(list["total"], 0);

    // A gzip bomb (the test server inflates at most 2 MiB): 413, refused before any handler
    // runs, yet with the CORS headers a browser SDK needs to read the refusal.
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let answer = post(
        &app,
        "/api/1/envelope/",
        &[("x-sentry-auth", &h), ("content-encoding", "gzip")],
        bomb,
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.headers["access-control-allow-origin"], "*");
    // Other paths get no CORS headers from that layer.
    let other = app.api_get("/api/v1/issues", &token).await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_project_quota_answers_429_with_rate_limits() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let set = app
        .api(
            Method::PUT,
            "/api/v1/error-settings",
            &token,
            Some(r#"{"events_per_minute": 2, "apdex_ms": 200}"#),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["events_per_minute"], 2);
    let h = auth(&key);
    let mut statuses = Vec::new();
    let mut refused = None;
    for i in 0..4 {
        let body = with_event_id(MESSAGE, &format!("{i:032x}"));
        let answer = post(
            &app,
            "/api/1/envelope/",
            &[("x-sentry-auth", h.as_str())],
            body,
        )
        .await;
        statuses.push(answer.status.as_u16());
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(answer);
        }
    }
    // Two per minute: unless the minute turned during the loop, the last two are refused.
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 1,
        "{statuses:?}"
    );
    let refused = refused.unwrap();
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let limits = refused.headers["x-sentry-rate-limits"].to_str().unwrap();
    assert!(limits.ends_with(":error;default:project"), "{limits}");
    let issues = app.api_get("/api/v1/issues", &token).await.json();
    let stored = issues["issues"][0]["events"].as_i64().unwrap();
    assert_eq!(
        stored as usize,
        statuses.iter().filter(|s| **s == 200).count()
    );
    let bad = app
        .api(
            Method::PUT,
            "/api/v1/error-settings",
            &token,
            Some(r#"{"apdex_ms": -3}"#),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Ingest caches each project's settings; saving them must reach the very next envelope.
#[tokio::test]
async fn saved_settings_apply_to_the_next_event() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let h = auth(&key);
    let mut statuses = Vec::new();
    let first = post(
        &app,
        "/api/1/envelope/",
        &[("x-sentry-auth", h.as_str())],
        with_event_id(MESSAGE, &format!("{:032x}", 0)),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "the settings are now cached");
    let set = app
        .api(
            Method::PUT,
            "/api/v1/error-settings",
            &token,
            Some(r#"{"events_per_minute": 1}"#),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    // One per minute: of two more events at least one is refused, even if the minute turned.
    for i in 1..=2 {
        let body = with_event_id(MESSAGE, &format!("{i:032x}"));
        let answer = post(
            &app,
            "/api/1/envelope/",
            &[("x-sentry-auth", h.as_str())],
            body,
        )
        .await;
        statuses.push(answer.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn transactions_sessions_reports_and_logs() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let h = auth(&key);
    send_envelope(&app, h.as_str(), TRANSACTION.to_vec()).await;
    let list = app
        .api_get("/api/v1/transactions?period=30d", &token)
        .await
        .json();
    assert_eq!(list[0]["name"], "/api/invoices/{id}", "{list}");
    assert_eq!(list[0]["count"], 1);
    assert!(list[0]["p95_ms"].as_f64().unwrap() > 0.0);
    let detail = app
        .api_get(
            "/api/v1/transactions/detail?period=30d&name=%2Fapi%2Finvoices%2F%7Bid%7D",
            &token,
        )
        .await
        .json();
    assert_eq!(detail["samples"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["spans"][0]["op"], "db");

    let now = vigie_core::Timestamp::now().to_rfc3339();
    let other = format!(
        "{{}}\n{{\"type\":\"sessions\"}}\n{{\"attrs\":{{\"release\":\"shop@2.0\"}},\"aggregates\":[{{\"started\":\"{now}\",\"exited\":9,\"crashed\":1}}]}}\n\
         {{\"type\":\"client_report\"}}\n{{\"discarded_events\":[{{\"reason\":\"queue_overflow\",\"category\":\"error\",\"quantity\":4}}]}}\n\
         {{\"type\":\"log\"}}\n{{\"items\":[{{\"level\":\"error\",\"body\":\"smtp quota reached\",\"attributes\":{{\"logger.name\":{{\"value\":\"shop.mail\",\"type\":\"string\"}}}}}}]}}\n\
         {{\"type\":\"check_in\"}}\n{{\"check_in_id\":\"c1\",\"monitor_slug\":\"nightly\",\"status\":\"ok\"}}\n\
         {{\"type\":\"replay_event\"}}\n{{}}\n"
    );
    let sent = send_envelope(&app, h.as_str(), other.into_bytes()).await;
    assert_eq!(sent.json(), serde_json::json!({}));
    let store = app.state.store.as_ref();
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    let since = vigie_core::Timestamp(0);
    let health = store.release_health(project, since).await.unwrap();
    assert_eq!(
        (
            health[0].release.as_str(),
            health[0].started,
            health[0].crashed
        ),
        ("shop@2.0", 10, 1)
    );
    // What the SDK dropped and what Vigie did not store are both counted, by type and reason;
    // only Vigie's own go to /metrics.
    let dropped: Vec<(String, String, i64)> = store
        .dropped_events(project, since)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.category, d.reason, d.quantity))
        .collect();
    assert!(
        dropped.contains(&("error".into(), "queue_overflow".into(), 4)),
        "{dropped:?}"
    );
    assert!(
        dropped.contains(&("replay_event".into(), "not_stored_by_vigie".into(), 1)),
        "{dropped:?}"
    );
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains(
            "vigie_sentry_items_dropped_total{item=\"replay_event\",reason=\"not_stored_by_vigie\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains("queue_overflow"),
        "the SDK's drops are its own"
    );
    // The Issues page says what each reason means.
    let session = app.setup_admin().await;
    let issues = app.get("/issues", &session).await.body;
    assert!(
        issues.contains("<strong>4</strong> error — the SDK&#x27;s send queue was full"),
        "{issues}"
    );
    assert!(issues.contains("of a type Vigie does not store"));
    let nightly = store.monitor(project, "nightly").await.unwrap().unwrap();
    let runs = store.monitor_runs(vec![nightly.id], 5).await.unwrap();
    assert_eq!(
        (runs[0].check_in_id.as_str(), runs[0].status),
        ("c1", vigie_core::monitor::RunStatus::Ok),
        "the check-in is a monitor run"
    );
    let logs = app
        .api_get("/api/v1/logs/search?q=smtp", &token)
        .await
        .json();
    assert_eq!(logs["hits"][0]["logger"], "shop.mail", "{logs}");
    assert_eq!(logs["hits"][0]["source"], "sentry");

    // A failed transaction is in the incident report's timeline, next to the log line; the
    // report also comes as one HTML file.
    let now = vigie_core::Timestamp::now();
    let at = |ms: i64| vigie_core::Timestamp(now.millis() + ms).to_rfc3339();
    let failed = format!(
        "{{}}\n{{\"type\":\"transaction\"}}\n{{\"type\":\"transaction\",\"transaction\":\"GET /progress/<id>\",         \"contexts\":{{\"trace\":{{\"trace_id\":\"{:032x}\",\"span_id\":\"{:016x}\",\"op\":\"http.server\",         \"status\":\"deadline_exceeded\"}}}},\"start_timestamp\":\"{}\",\"timestamp\":\"{}\",\"spans\":[]}}\n",
        7,
        9,
        at(-30_000),
        at(0)
    );
    send_envelope(&app, h.as_str(), failed.into_bytes()).await;
    let q = |t: vigie_core::Timestamp| {
        url::form_urlencoded::byte_serialize(t.to_rfc3339().as_bytes()).collect::<String>()
    };
    let window = format!(
        "/api/v1/reports/incident?from={}&to={}",
        q(vigie_core::Timestamp(now.millis() - 600_000)),
        q(vigie_core::Timestamp(now.millis() + 600_000))
    );
    let report = app.api_get(&window, &token).await.json();
    let entries = report["timeline"].as_array().unwrap();
    let tx = entries
        .iter()
        .find(|e| e["kind"] == "transaction")
        .unwrap_or_else(|| panic!("no transaction in {report}"));
    assert_eq!(tx["level"], "failed");
    assert!(
        tx["text"]
            .as_str()
            .unwrap()
            .contains("GET /progress/<id> 30000 ms, deadline_exceeded"),
        "{tx}"
    );
    assert!(entries.iter().any(|e| e["text"] == "smtp quota reached"));
    let html = app
        .send(
            axum::http::Request::get(format!("{window}&format=html&tz=Europe/Paris"))
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(html.body.starts_with("<!doctype html>"));
    let disposition = html.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"incident-"),
        "{disposition}"
    );
    assert!(
        html.body.contains("GET /progress/&lt;id&gt; 30000 ms"),
        "escaped"
    );
    assert!(html.body.contains("(Europe/Paris)"));
    assert!(html.body.contains("<style>"), "self-contained");
}

/// What `@sentry/browser` 10 sends by default (`traceLifecycle: "stream"`): `span` items.
/// A segment and its children become a transaction with its span breakdown, exactly as the
/// static lifecycle's transaction would; a child flushed before its segment still counts in
/// the breakdown; a span belonging nowhere is counted as dropped, never silently lost.
#[tokio::test]
async fn streamed_spans_become_transactions() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let h = auth(&key);
    let now = vigie_core::Timestamp::now().millis() as f64 / 1000.0;
    let attr = |v: &str| serde_json::json!({"type": "string", "value": v});
    let span = |id: &str, name: &str, op: &str, start: f64, end: f64| {
        serde_json::json!({
            "trace_id": "6cf173d587eb48568a9b2e12dcfbea52", "span_id": id,
            "parent_span_id": "438f40bd3b4a41ee", "name": name, "status": "ok",
            "is_segment": false, "start_timestamp": now + start, "end_timestamp": now + end,
            "attributes": {"sentry.op": attr(op), "sentry.segment.id": attr("438f40bd3b4a41ee"),
                           "sentry.segment.name": attr("/invoices/:id")}})
    };
    let early = serde_json::json!({"version": 2, "items": [
        span("aaaaaaaaaaaaaaa1", "resource.script main.js", "resource.script", -0.9, -0.7),
        {"trace_id": "6cf173d587eb48568a9b2e12dcfbea52", "span_id": "aaaaaaaaaaaaaaa9",
         "name": "belongs nowhere", "is_segment": false,
         "start_timestamp": now - 1.0, "end_timestamp": now - 0.5},
    ]});
    let last = serde_json::json!({"version": 2, "items": [
        span("aaaaaaaaaaaaaaa2", "GET /api/invoices/42", "http.client", -0.6, -0.4),
        {"trace_id": "6cf173d587eb48568a9b2e12dcfbea52", "span_id": "438f40bd3b4a41ee",
         "name": "/invoices/:id", "status": "ok", "is_segment": true,
         "start_timestamp": now - 1.0, "end_timestamp": now,
         "attributes": {"sentry.op": attr("pageload"), "sentry.release": attr("shop@2.1")}},
    ]});
    for payload in [early, last] {
        let envelope = format!(
            "{{\"sent_at\":\"2026-11-22T10:00:00Z\"}}\n\
             {{\"type\":\"span\",\"item_count\":2,\"content_type\":\"application/vnd.sentry.items.span.v2+json\"}}\n{payload}\n"
        );
        send_envelope(&app, h.as_str(), envelope.into_bytes()).await;
    }
    let list = app
        .api_get("/api/v1/transactions?period=24h", &token)
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (&list[0]["name"], &list[0]["op"]),
        (&"/invoices/:id".into(), &"pageload".into())
    );
    assert_eq!(list[0]["count"], 1);
    let p95 = list[0]["p95_ms"].as_f64().unwrap();
    assert!((900.0..=1100.0).contains(&p95), "{list}");
    let detail = app
        .api_get(
            "/api/v1/transactions/detail?period=24h&name=%2Finvoices%2F%3Aid",
            &token,
        )
        .await
        .json();
    let mut ops: Vec<&str> = detail["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["op"].as_str().unwrap())
        .collect();
    ops.sort();
    assert_eq!(ops, ["http.client", "resource.script"], "{detail}");
    assert_eq!(detail["samples"].as_array().unwrap().len(), 1, "{detail}");

    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_sentry_items_dropped_total{item=\"span\",reason=\"no_segment\"} 1"),
        "{metrics}"
    );
    // And on the System page, for a person.
    let session = app.setup_admin().await;
    let system = app.get("/system", &session).await.body;
    let panel = &system[system.find("id=\"not-stored\"").expect("the panel")..];
    assert!(
        panel.contains("<td>Sentry span</td><td>no_segment</td><td class=\"num\">1</td>"),
        "{panel}"
    );
}

/// Feedback (`captureFeedback`, the browser widget) and the older `user_report` are kept,
/// scrubbed, listed per project and shown on the issue of the event they are about.
#[tokio::test]
async fn feedback_is_kept_and_shown_on_its_issue() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let h = auth(&key);
    let event_id = "0a2b3c4d5e6f40718293a4b5c6d7e8f9";
    send_envelope(&app, h.as_str(), with_event_id(EXCEPTION, event_id)).await;
    let feedback = serde_json::json!({
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "type": "feedback",
        "timestamp": vigie_core::Timestamp::now().millis() as f64 / 1000.0,
        "contexts": {"feedback": {
            "message": "<script>alert(1)</script> Checkout does nothing, card 4111 1111 1111 1111",
            "name": "Grace", "contact_email": "grace@example.com",
            "url": "https://shop.test/checkout", "associated_event_id": event_id}}});
    let report = serde_json::json!({"event_id": event_id, "name": "Ada",
                                    "email": "ada@example.com", "comments": "It broke again"});
    let body = format!(
        "{{}}\n{{\"type\":\"feedback\"}}\n{feedback}\n{{\"type\":\"user_report\"}}\n{report}\n\
         {{\"type\":\"feedback\"}}\n{{\"contexts\":{{\"feedback\":{{\"message\":\"Love the new page\"}}}}}}\n"
    );
    send_envelope(&app, h.as_str(), body.into_bytes()).await;

    let all = app.api_get("/api/v1/feedback", &token).await.json();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    let widget = all.iter().find(|f| f["name"] == "Grace").unwrap();
    let message = widget["message"].as_str().unwrap();
    assert!(
        message.starts_with("<script>alert(1)</script> Checkout does nothing"),
        "{message}"
    );
    assert!(!message.contains("4111 1111"), "scrubbed: {message}");
    assert_eq!(widget["contact_email"], "grace@example.com");
    assert_eq!(widget["url"], "https://shop.test/checkout");
    let issue = widget["issue_id"]
        .as_i64()
        .expect("linked to the event's issue");
    let about: Vec<_> = app
        .api_get(&format!("/api/v1/feedback?issue={issue}"), &token)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        about.len(),
        2,
        "the widget's and the user report: {about:?}"
    );
    assert!(about.contains(&"It broke again".to_string()));
    let missing = app.api_get("/api/v1/feedback?issue=999", &token).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let session = app.setup_admin().await;
    let page = app.get(&format!("/issues/{issue}"), &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("User feedback (2)"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.body.contains("<script>alert(1)"));
    assert!(page.body.contains("mailto:grace@example.com"));
    let list = app.get("/feedback", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Love the new page"));
    assert!(
        list.body
            .contains(&format!("href=\"/issues/{issue}?event={event_id}\"")),
        "{}",
        list.body
    );
}

#[tokio::test]
async fn issue_and_performance_pages_render_and_escape() {
    let app = app().await;
    let key = project_key(&app).await;
    let admin = app.setup_admin().await;
    let h = auth(&key);
    let hostile = concat!(
        "{\"event_id\":\"44444444444444444444444444444444\"}\n{\"type\":\"event\"}\n",
        "{\"exception\":{\"values\":[{\"type\":\"<script>alert(1)</script>\",\"value\":\"<b>x</b>\",",
        "\"stacktrace\":{\"frames\":[{\"function\":\"<img src=x>\",\"module\":\"shop\",\"context_line\":\"<i>\",\"lineno\":3,\"vars\":{\"<k>\":\"<v>\"}}]}}]},",
        "\"breadcrumbs\":[{\"message\":\"<u>crumb</u>\"}],\"tags\":{\"<t>\":\"<tv>\"}}\n"
    );
    send_envelope(&app, h.as_str(), hostile.as_bytes().to_vec()).await;
    post(
        &app,
        "/api/1/envelope/",
        &[("x-sentry-auth", h.as_str())],
        TRANSACTION.to_vec(),
    )
    .await;

    let list = app.get("/issues", &admin).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!list.body.contains("<script>alert"));
    let page = app.get("/issues/1", &admin).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for raw in [
        "<script>alert",
        "<img src=x>",
        "<u>crumb",
        "<k>",
        "<tv>",
        "<i>",
    ] {
        assert!(!page.body.contains(raw), "{raw} must be escaped");
    }
    assert!(page.body.contains("&lt;u&gt;crumb&lt;/u&gt;"));
    assert_eq!(
        app.get("/issues/999", &admin).await.status,
        StatusCode::NOT_FOUND
    );

    let perf = app.get("/performance?period=30d", &admin).await;
    assert_eq!(perf.status, StatusCode::OK);
    assert!(perf.body.contains("/api/invoices/{id}"), "{}", perf.body);
    let tx = app
        .get(
            "/performance/transaction?period=30d&name=%2Fapi%2Finvoices%2F%7Bid%7D",
            &admin,
        )
        .await;
    assert_eq!(tx.status, StatusCode::OK);
    assert!(
        tx.body.contains("wf-row") && tx.body.contains("<polyline"),
        "waterfall and chart"
    );

    let pulse = app.get("/live/issues?project=1", &admin).await;
    assert_eq!(pulse.json()["total"], 1);

    // Resolving from the page needs the form's CSRF token, then the list hides it.
    let csrf = app.session_csrf(&admin).await;
    let done = app
        .post_form(
            "/issues/1/status",
            &admin,
            &[("csrf", &csrf), ("action", "resolve")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(!app.get("/issues", &admin).await.body.contains("alert(1)"));
    assert!(app
        .get("/issues?status=resolved", &admin)
        .await
        .body
        .contains("alert(1)"));
}

#[tokio::test]
async fn error_settings_are_changed_from_the_settings_page() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let session = app.setup_admin().await;
    let csrf = app.session_csrf(&session).await;

    let page = app.get("/settings/projects", &session).await;
    assert!(page.body.contains("id=\"error-settings\""), "{}", page.body);
    assert!(
        page.body.contains("value=\"300\""),
        "the default Apdex T is shown"
    );

    let saved = app
        .post_form(
            "/settings/projects/1/errors",
            &session,
            &[
                ("csrf", &csrf),
                ("apdex_ms", "150"),
                ("events_per_minute", "500"),
                ("keep_user_contact", "on"),
                ("scrub_keys", "siret, Phone"),
                ("span_retention_days", "14"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let flash = saved.cookie("vigie_flash").unwrap();
    assert!(flash.starts_with("ok:"), "{flash}");
    assert!(
        percent_encoding::percent_decode_str(&flash)
            .decode_utf8_lossy()
            .contains("spans kept 14 days"),
        "{flash}"
    );
    let settings = app.api_get("/api/v1/error-settings", &token).await.json();
    assert_eq!(settings["apdex_ms"], 150);
    assert_eq!(settings["events_per_minute"], 500);
    assert_eq!(settings["keep_user_contact"], true);
    assert_eq!(settings["span_retention_days"], 14);
    let page = app.get("/settings/projects", &session).await;
    assert!(
        page.body
            .contains(r#"name="span_retention_days" min="0" max="3650" value="14""#),
        "{}",
        page.body
    );
    assert_eq!(
        settings["scrub_keys"],
        serde_json::json!(["siret", "phone"])
    );

    // The next event is scrubbed with the new key words at once (the cache was dropped).
    let body = format!(
        "{{}}\n{{\"type\":\"event\"}}\n{}\n",
        r#"{"message":"x","extra":{"client_siret":"12345678900011","city":"Lyon"}}"#
    );
    let h = auth(&key);
    let sent = send_envelope(&app, &h, body.into()).await;
    let id = sent.json()["id"].as_str().unwrap().to_string();
    let event = app.api_get(&format!("/api/v1/events/{id}"), &token).await;
    assert!(!event.body.contains("12345678900011"), "{}", event.body);
    assert!(event.body.contains("Lyon"));

    // A bad value is refused with the reason, and nothing changes; a blank limit removes it.
    for (apdex, reason) in [("fast", "not a whole number"), ("0", "apdex")] {
        let refused = app
            .post_form(
                "/settings/projects/1/errors",
                &session,
                &[
                    ("csrf", &csrf),
                    ("apdex_ms", apdex),
                    ("events_per_minute", ""),
                    ("scrub_keys", ""),
                ],
            )
            .await;
        let flash = refused.cookie("vigie_flash").unwrap();
        assert!(flash.starts_with("error:"), "{flash}");
        assert!(
            percent_encoding::percent_decode_str(&flash)
                .decode_utf8_lossy()
                .contains(reason),
            "{flash}"
        );
    }
    assert_eq!(
        app.api_get("/api/v1/error-settings", &token).await.json()["apdex_ms"],
        150
    );
    app.post_form(
        "/settings/projects/1/errors",
        &session,
        &[
            ("csrf", &csrf),
            ("apdex_ms", "150"),
            ("events_per_minute", " "),
            ("scrub_keys", ""),
        ],
    )
    .await;
    let settings = app.api_get("/api/v1/error-settings", &token).await.json();
    assert_eq!(settings["events_per_minute"], serde_json::Value::Null);
    assert_eq!(settings["keep_user_contact"], false);
    assert_eq!(
        settings["span_retention_days"],
        serde_json::Value::Null,
        "a blank retention: as long as events"
    );
}

/// `/metrics` counts what each ingest protocol brought and Vigie acknowledged, by kind: the
/// Sentry endpoints per item type, the log endpoints per protocol.
#[tokio::test]
async fn ingest_is_counted_per_protocol_and_kind() {
    let app = app().await;
    let key = project_key(&app).await;
    for envelope in [EXCEPTION, TRANSACTION] {
        send_envelope(&app, &auth(&key), envelope.to_vec()).await;
    }
    let bearer = format!("Bearer {key}");
    let lines = post(
        &app,
        "/api/v1/logs",
        &[("authorization", &bearer)],
        b"{\"message\": \"one\"}\n{\"message\": \"two\"}\n".to_vec(),
    )
    .await;
    assert_eq!(lines.status, StatusCode::OK, "{}", lines.body);
    let otlp = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1700000000000000000", "body": {"stringValue": "otel says hi"}}
    ]}]}]});
    let sent = post(
        &app,
        "/v1/logs",
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        otlp.to_string().into_bytes(),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    // A refused body counts nothing.
    let refused = post(
        &app,
        "/v1/logs",
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
        ],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);

    let metrics = app.get("/metrics", "").await.body;
    for line in [
        "vigie_ingest_items_total{protocol=\"sentry_envelope\",kind=\"event\"} 1",
        "vigie_ingest_items_total{protocol=\"sentry_envelope\",kind=\"transaction\"} 1",
        "vigie_ingest_items_total{protocol=\"jsonlines\",kind=\"log\"} 2",
        "vigie_ingest_items_total{protocol=\"otlp\",kind=\"log\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(!metrics.contains("protocol=\"loki\""), "{metrics}");
}

/// A rotated key stops working at once on the instance that rotated it, although Sentry ingest
/// caches projects: the old DSN's next envelope is refused, the new one's is taken.
#[tokio::test]
async fn a_rotated_key_is_refused_at_once() {
    let app = app().await;
    let old = project_key(&app).await;
    send_envelope(&app, &auth(&old), MESSAGE.to_vec()).await;
    let token = admin(&app).await;
    let rotated = app
        .api(Method::POST, "/api/v1/projects/1/rotate-key", &token, None)
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let again = post(
        &app,
        "/api/1/envelope/",
        &[("x-sentry-auth", &auth(&old))],
        with_event_id(MESSAGE, "0123456789abcdef0123456789abcdef"),
    )
    .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "{}", again.body);
    let new = project_key(&app).await;
    assert_ne!(new, old);
    send_envelope(
        &app,
        &auth(&new),
        with_event_id(MESSAGE, "fedcba9876543210fedcba9876543210"),
    )
    .await;
}
