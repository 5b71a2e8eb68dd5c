//! Inspecting and controlling Celery through the API, Flower's API and its scripts' ways of
//! calling: without a broker (every refusal, clearly), and on a real Redis (a purge, the audit
//! list, a call nobody answers). A real worker answering is `e2e/test_celery.py`'s part.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use base64::Engine;
use std::time::Duration;
use vigie_server::celery::redis::{Connection, RedisUrl, Reply};

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

async fn with_auth(app: &common::App, method: Method, path: &str, auth: &str) -> common::Answer {
    app.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn without_a_broker_every_call_says_what_is_wrong() {
    let app = common::app().await;
    let admin = app.admin_token().await;
    let read = app.read_token().await;
    let call = |method: Method, path: &'static str, body: Option<&'static str>| {
        let (app, admin) = (&app, admin.clone());
        async move { app.api(method, path, &admin, body).await }
    };

    let ping = call(Method::GET, "/api/v1/celery/inspect/ping", None).await;
    assert_eq!(ping.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ping.body.contains("no Celery broker is configured"),
        "{}",
        ping.body
    );
    let bogus = call(Method::GET, "/api/v1/celery/inspect/everything", None).await;
    assert_eq!(bogus.status, StatusCode::NOT_FOUND);
    assert!(
        bogus.body.contains("active_queues"),
        "names what can be asked: {}",
        bogus.body
    );
    let slow = call(Method::GET, "/api/v1/celery/inspect/ping?timeout=90", None).await;
    assert_eq!(
        slow.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        slow.body
    );

    // Each action's own fields, checked before anything is sent.
    for (path, body, field) in [
        ("/api/v1/celery/control/revoke", "{}", "task_id"),
        (
            "/api/v1/celery/control/terminate",
            r#"{"task_id": "5f1c", "signal": "KILL"}"#,
            "SIGTERM",
        ),
        (
            "/api/v1/celery/control/shutdown",
            "{}",
            "needs the worker named",
        ),
        (
            "/api/v1/celery/control/rate_limit",
            r#"{"task_name": "mail.send", "rate": "10/day"}"#,
            "N/m",
        ),
        (
            "/api/v1/celery/control/pool_grow",
            r#"{"n": 0}"#,
            "n must be",
        ),
    ] {
        let answer = call(Method::POST, path, Some(body)).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(answer.body.contains(field), "{path}: {}", answer.body);
    }
    let typo = call(
        Method::POST,
        "/api/v1/celery/control/revoke",
        Some(r#"{"tsk_id": "5f1c"}"#),
    )
    .await;
    assert_eq!(
        typo.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a misspelt field is named"
    );
    let unknown = call(Method::POST, "/api/v1/celery/control/explode", Some("{}")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let revoke = call(
        Method::POST,
        "/api/v1/celery/control/revoke",
        Some(r#"{"task_id": "5f1c"}"#),
    )
    .await;
    assert_eq!(revoke.status, StatusCode::SERVICE_UNAVAILABLE);
    let by_reader = app
        .api_post(
            "/api/v1/celery/control/revoke",
            &read,
            r#"{"task_id": "5f1c"}"#,
        )
        .await;
    assert_eq!(by_reader.status, StatusCode::FORBIDDEN);
    // Nothing was done, so nothing is in the audit list.
    let actions = call(Method::GET, "/api/v1/celery/actions", None).await;
    assert_eq!(
        (actions.status, actions.json()),
        (StatusCode::OK, serde_json::json!([]))
    );

    // Flower's control API: its 404s and its "Missing argument" 400s.
    let nobody = call(Method::POST, "/api/worker/pool/grow/nobody@x?n=2", None).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert!(
        nobody.body.contains("Unknown worker 'nobody@x'"),
        "{}",
        nobody.body
    );
    let missing = call(Method::POST, "/api/task/rate-limit/mail.send", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.body.contains("Missing argument workername"),
        "{}",
        missing.body
    );
    for path in [
        "/api/task/rate-limit/never.seen?workername=celery@a&ratelimit=1/s",
        "/api/task/timeout/never.seen?workername=celery@a&soft=1",
    ] {
        let unknown_task = call(Method::POST, path, None).await;
        assert_eq!(unknown_task.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            unknown_task.body.contains("Unknown task 'never.seen'"),
            "{}",
            unknown_task.body
        );
    }
    let bad_signal = call(
        Method::POST,
        "/api/task/revoke/5f1c?terminate=1&signal=KILL",
        None,
    )
    .await;
    assert_eq!(
        bad_signal.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_signal.body
    );
    let abort = call(
        Method::POST,
        "/api/v1/celery/control/abort",
        Some(r#"{"task_id": "5f1c"}"#),
    )
    .await;
    assert_eq!(
        abort.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        abort.body
    );
    let flower_revoke = call(Method::POST, "/api/task/revoke/5f1c?terminate=true", None).await;
    assert_eq!(flower_revoke.status, StatusCode::SERVICE_UNAVAILABLE);
    // Sending tasks: refused before anything goes out, then 503 for want of a broker.
    use vigie_store::CeleryNews;
    let event = |uuid: &str, kind: &str, fields: serde_json::Value| CeleryNews::Task {
        uuid: uuid.into(),
        kind: kind.into(),
        hostname: "celery@a".into(),
        at: vigie_core::Timestamp::now(),
        fields: fields.as_object().unwrap().clone(),
    };
    app.state
        .store
        .apply_celery(
            vigie_core::ProjectId(1),
            vec![
                event(
                    "t-ok",
                    "task-received",
                    serde_json::json!({"name": "shop.add", "args": "(1, 2)", "kwargs": "{}"}),
                ),
                event("t-ok", "task-succeeded", serde_json::json!({"result": "3"})),
                event(
                    "t-cut",
                    "task-received",
                    serde_json::json!({"name": "shop.add", "args": "('long', ...", "kwargs": "{}"}),
                ),
                event(
                    "t-cut",
                    "task-failed",
                    serde_json::json!({"exception": "KeyError()"}),
                ),
                event(
                    "t-bad",
                    "task-received",
                    serde_json::json!({"name": "shop.add", "args": "(1, 2)", "kwargs": "{}"}),
                ),
                event(
                    "t-bad",
                    "task-failed",
                    serde_json::json!({"exception": "KeyError()"}),
                ),
            ],
        )
        .await
        .unwrap();
    let types = call(Method::GET, "/api/v1/celery/types?period=1h", None).await;
    assert_eq!(types.status, StatusCode::OK, "{}", types.body);
    let types = types.json();
    assert_eq!(types["types"][0]["name"], "shop.add");
    assert_eq!(
        (
            &types["all"]["runs"],
            &types["all"]["succeeded"],
            &types["all"]["failed"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(1),
            &serde_json::json!(2)
        )
    );
    assert_eq!(types["buckets"], 60);
    let wrong = call(Method::GET, "/api/v1/celery/types?period=2w", None).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (body, status, says) in [
        (
            r#"{"task_id": "t-none"}"#,
            StatusCode::NOT_FOUND,
            "no celery task",
        ),
        (
            r#"{"task_id": "t-ok"}"#,
            StatusCode::CONFLICT,
            "this one is SUCCESS",
        ),
        (r#"{"task_id": "t-cut"}"#, StatusCode::CONFLICT, "cut short"),
        (
            r#"{"task_id": "t-bad"}"#,
            StatusCode::SERVICE_UNAVAILABLE,
            "no Celery broker",
        ),
    ] {
        let answer = app
            .api_post("/api/v1/celery/control/retry", &admin, body)
            .await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert!(answer.body.contains(says), "{body}: {}", answer.body);
    }
    for (path, body, status) in [
        (
            "/api/task/async-apply/shop.add",
            r#"{"args": [1, 2]}"#,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            "/api/task/apply/shop.add",
            r#"{"args": [1, 2]}"#,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            "/api/task/async-apply/shop.nope",
            "{}",
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/task/apply/shop.add",
            r#"{"args": "1, 2"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/task/send-task/shop.nope",
            r#"{"expires": 5}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/task/send-task/shop.nope",
            "{}",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ] {
        let answer = app.api_post(path, &admin, body).await;
        assert_eq!(answer.status, status, "{path} {body}: {}", answer.body);
    }
    let pending = call(Method::GET, "/api/task/result/never-sent", None).await;
    assert_eq!(
        pending.json(),
        serde_json::json!({"task-id": "never-sent", "state": "PENDING", "result": null})
    );
    let no_worker = call(Method::GET, "/api/workers?workername=nobody@x", None).await;
    assert_eq!(no_worker.status, StatusCode::NOT_FOUND);
}

/// Flower scripts call without `?project=` and, with Flower's `--basic-auth`, with a user
/// name and password: both work, a wrong password is 401, and guessing is throttled.
#[tokio::test]
async fn flower_scripts_need_no_project_and_may_log_in_with_basic_auth() {
    let app = common::app().await;
    app.setup_admin().await;
    let admin = app.admin_token().await;
    // A second project: Vigie's own API now needs ?project=, Flower's does not.
    let made = app
        .api_post("/api/v1/projects", &admin, r#"{"name": "shop"}"#)
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let ours = app.api_get("/api/v1/celery/tasks", &admin).await;
    assert_eq!(ours.status, StatusCode::UNPROCESSABLE_ENTITY);
    let flower = app.api_get("/api/tasks", &admin).await;
    assert_eq!(flower.status, StatusCode::OK, "{}", flower.body);
    let named = app.api_get("/api/tasks?project=nope", &admin).await;
    assert_eq!(named.status, StatusCode::NOT_FOUND);

    let good = with_auth(
        &app,
        Method::GET,
        "/api/task/types",
        &basic("Alice", "correct horse"),
    )
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    let wrong = with_auth(
        &app,
        Method::GET,
        "/api/task/types",
        &basic("alice", "wrong horse"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let mut throttled = None;
    for _ in 0..20 {
        let answer = with_auth(&app, Method::GET, "/api/workers", &basic("alice", "guess")).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(answer);
            break;
        }
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = throttled.expect("guessing is throttled");
    assert!(throttled.body.contains("wait"), "{}", throttled.body);
}

fn redis() -> Option<RedisUrl> {
    let Ok(url) = std::env::var("VIGIE_TEST_REDIS_URL") else {
        eprintln!("skipped: VIGIE_TEST_REDIS_URL is not set");
        return None;
    };
    Some(RedisUrl::parse(&url).expect("VIGIE_TEST_REDIS_URL is a redis:// URL"))
}

/// On a real Redis: a purge drops a queue's messages in every priority list and says how
/// many; a question nobody answers comes back empty at its timeout; each action is in the
/// audit list with who did it and what came back.
#[tokio::test]
async fn a_purge_and_unanswered_calls_on_redis_are_recorded() {
    let Some(mut url) = redis() else { return };
    url.db = 10;
    let broker = format!("redis://{}:{}/10", url.host, url.port);
    let app = common::app_configured(Duration::from_secs(3600), |c| {
        c.celery.brokers = broker.clone();
    })
    .await;
    let admin = app.admin_token().await;
    let mut redis = Connection::open(&url).await.unwrap();
    let command = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    redis
        .command(&command(&["DEL", "mailq", "mailq\x06\x163"]))
        .await
        .unwrap();
    for key in ["mailq", "mailq", "mailq", "mailq\x06\x163"] {
        redis
            .command(&command(&["LPUSH", key, "{}"]))
            .await
            .unwrap();
    }
    let purged = app
        .api_post(
            "/api/v1/celery/control/purge",
            &admin,
            r#"{"queue": "mailq"}"#,
        )
        .await;
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.body);
    assert_eq!(purged.json()["outcome"], "purged 4 message(s) from mailq");
    for key in ["mailq", "mailq\x06\x163"] {
        let left = redis.command(&command(&["LLEN", key])).await.unwrap();
        assert_eq!(left, Reply::Integer(0), "{key:?}");
    }

    let started = std::time::Instant::now();
    let ping = app
        .api_get("/api/v1/celery/inspect/ping?timeout=0.3", &admin)
        .await;
    assert_eq!(ping.status, StatusCode::OK, "{}", ping.body);
    assert_eq!(ping.json()["replies"], serde_json::json!({}));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The reply list and its binding are gone after the call.
    let bindings = redis
        .command(&command(&[
            "SMEMBERS",
            "_kombu.binding.reply.celery.pidbox",
        ]))
        .await
        .unwrap();
    assert_eq!(
        bindings,
        Reply::Array(Some(vec![])),
        "the binding was removed"
    );

    let grow = app
        .api_post(
            "/api/v1/celery/control/pool_grow",
            &admin,
            r#"{"n": 2, "workers": ["celery@gone"], "timeout": 0.2}"#,
        )
        .await;
    assert_eq!(grow.status, StatusCode::OK, "{}", grow.body);
    let grow = grow.json();
    assert_eq!(grow["ok"], false);
    assert_eq!(grow["outcome"], "no worker answered; silent: celery@gone");

    let actions = app.api_get("/api/v1/celery/actions", &admin).await.json();
    let listed: Vec<(&str, &str, bool)> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["actor"].as_str().unwrap(),
                a["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("pool_grow", "token ops", false),
            ("purge", "token ops", true)
        ]
    );
    let of_queue = app
        .api_get("/api/v1/celery/actions?target=mailq", &admin)
        .await
        .json();
    assert_eq!(of_queue.as_array().unwrap().len(), 1);
    assert_eq!(
        of_queue[0]["arguments"],
        serde_json::json!({"queue": "mailq"})
    );
    let absent = app
        .api_post(
            "/api/v1/celery/control/purge",
            &admin,
            r#"{"queue": "never-declared"}"#,
        )
        .await;
    assert_eq!(
        absent.status,
        StatusCode::OK,
        "an empty Redis queue is a purge of 0"
    );
    assert_eq!(
        absent.json()["outcome"],
        "purged 0 message(s) from never-declared"
    );
}
