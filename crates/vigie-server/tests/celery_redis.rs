//! The Redis side of Celery against a real Redis (`VIGIE_TEST_REDIS_URL`): a real worker's
//! captured event messages, published again, come back through `PSUBSCRIBE` and decode into
//! the same events; a wrong password and a closed port give clear errors.

use std::time::Duration;
use vigie_protocol::celery::{decode_message, decode_task_meta};
use vigie_server::celery::redis::{Connection, RedisUrl, Reply};

const EVENTS: &str = include_str!("../../vigie-protocol/tests/fixtures/celery/events.txt");
const META: &str = include_str!("../../vigie-protocol/tests/fixtures/celery/meta.txt");

fn redis() -> Option<RedisUrl> {
    let Ok(url) = std::env::var("VIGIE_TEST_REDIS_URL") else {
        eprintln!("skipped: VIGIE_TEST_REDIS_URL is not set");
        return None;
    };
    Some(RedisUrl::parse(&url).expect("VIGIE_TEST_REDIS_URL is a redis:// URL"))
}

/// `payload` (a captured Celery event message) with its events' times moved by `shift`
/// seconds, so captured events read as recent whenever the test runs: pages that show "the
/// last 24 hours" must not depend on the day the fixture was captured.
fn retimed(payload: &str, shift: f64) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut message: serde_json::Value = serde_json::from_str(payload).unwrap();
    let Some(body) = message["body"].as_str() else {
        return payload.to_string();
    };
    let Ok(decoded) = engine.decode(body) else {
        return payload.to_string();
    };
    let Ok(mut events) = serde_json::from_slice::<serde_json::Value>(&decoded) else {
        return payload.to_string();
    };
    let move_one = |event: &mut serde_json::Value| {
        for key in ["timestamp", "local_received"] {
            if let Some(t) = event[key].as_f64() {
                event[key] = (t + shift).into();
            }
        }
    };
    match &mut events {
        serde_json::Value::Array(list) => list.iter_mut().for_each(move_one),
        event => move_one(event),
    }
    message["body"] = engine.encode(events.to_string()).into();
    message.to_string()
}

/// The seconds from the capture's last event to now.
fn since_capture(capture: &str) -> f64 {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let times = captured(capture).into_iter().flat_map(|(_, payload)| {
        let message: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        let body = message["body"].as_str().unwrap_or_default().to_string();
        let events: serde_json::Value = engine
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let list = match events {
            serde_json::Value::Array(list) => list,
            one => vec![one],
        };
        list.into_iter()
            .filter_map(|e| e["timestamp"].as_f64())
            .collect::<Vec<_>>()
    });
    let last = times.fold(0.0, f64::max);
    let now = vigie_core::Timestamp::now().millis() as f64 / 1000.0;
    if last > 0.0 {
        now - last
    } else {
        0.0
    }
}

/// (channel, payload) pairs as `redis-cli psubscribe` printed them.
fn captured(capture: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = capture.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[1].starts_with('{'))
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .collect()
}

#[tokio::test]
async fn published_celery_messages_come_back_decoded() {
    let Some(mut url) = redis() else { return };
    // A database of its own, so a Celery app on the default one is not disturbed.
    url.db = 7;
    let prefix = format!("/{}.celeryev/", url.db);
    let mut subscriber = Connection::open(&url).await.unwrap();
    subscriber
        .psubscribe(&[format!("{prefix}*"), "celery-task-meta-*".to_string()])
        .await
        .unwrap();
    let mut publisher = Connection::open(&url).await.unwrap();
    let mut sent = 0;
    for (channel, payload) in captured(EVENTS).into_iter().chain(captured(META)) {
        let channel = channel.replace("/5.celeryev/", &prefix);
        let reply = publisher
            .command(&["PUBLISH".into(), channel, payload])
            .await
            .unwrap();
        assert!(matches!(reply, Reply::Integer(n) if n >= 1), "{reply:?}");
        sent += 1;
    }
    let (mut events, mut metas) = (Vec::new(), Vec::new());
    for _ in 0..sent {
        let message = tokio::time::timeout(Duration::from_secs(5), subscriber.next_message())
            .await
            .expect("a message within 5 s")
            .unwrap();
        if message.channel.starts_with("celery-task-meta-") {
            metas.push(decode_task_meta(&message.payload).unwrap());
        } else {
            assert!(message.channel.starts_with(&prefix), "{}", message.channel);
            events.extend(decode_message(&message.payload).unwrap());
        }
    }
    assert!(events.iter().any(|e| e.kind == "task-failed"));
    assert!(events.iter().any(|e| e.kind == "worker-heartbeat"));
    assert!(metas.iter().any(|m| m.progress == Some((1, Some(5)))));

    // One-off commands answer too (what queue lengths will use).
    let length = publisher
        .command(&["LLEN".into(), "vigie-test-empty-queue".into()])
        .await
        .unwrap();
    assert_eq!(length, Reply::Integer(0));
}

#[tokio::test]
async fn mistakes_are_named() {
    let Some(url) = redis() else { return };
    let wrong = RedisUrl {
        password: Some("not the password".into()),
        username: Some("nobody".into()),
        ..url.clone()
    };
    let err = Connection::open(&wrong).await.err().expect("AUTH refused");
    assert!(err.to_string().starts_with("redis: "), "{err}");
    let closed = RedisUrl { port: 1, ..url };
    assert!(Connection::open(&closed).await.is_err());
}

mod common;
use common::eventually;

#[tokio::test]
async fn a_broker_s_events_become_tasks_jobs_and_workers() {
    use axum::http::StatusCode;
    let Some(mut url) = redis() else { return };
    url.db = 8;
    let broker = format!("redis://{}:{}/8", url.host, url.port);
    let app = common::app_configured(Duration::from_secs(3600), |c| {
        // A second broker that is not there: retried, and shown as failing.
        c.celery.brokers = format!("{broker} redis://127.0.0.1:1/0");
    })
    .await;
    let _consumer = vigie_server::celery::consumer::start(&app.state, &app.server.errors)
        .await
        .unwrap();
    let token = app.admin_token().await;
    let state = app.state.clone();
    eventually("both brokers tried", || {
        let brokers = state.brokers.list();
        async move {
            brokers.iter().any(|b| b.connected)
                && brokers
                    .iter()
                    .any(|b| !b.connected && b.last_error.is_some())
        }
    })
    .await;

    let mut publisher = Connection::open(&url).await.unwrap();
    // Another app's result backend on database 7 of the same Redis: pub/sub crosses
    // databases, its states must not become tasks here.
    let mut other_app = Connection::open(&RedisUrl {
        db: 7,
        ..url.clone()
    })
    .await
    .unwrap();
    let ghost = "celery-task-meta-0000aaaa-ghost";
    let ghost_state = r#"{"status": "STARTED", "result": {"pid": 1}, "task_id": "0000aaaa-ghost"}"#;
    for command in [["SET", ghost, ghost_state], ["PUBLISH", ghost, ghost_state]] {
        other_app.command(&command.map(String::from)).await.unwrap();
    }
    // The result backend's progress first, as a running task writes it (the key set, then
    // published, in one MULTI), then the events, moved to now.
    let shift = since_capture(EVENTS);
    for (channel, payload) in captured(META).into_iter().chain(captured(EVENTS)) {
        let channel = channel.replace("/5.celeryev/", "/8.celeryev/");
        let payload = retimed(&payload, shift);
        if channel.starts_with("celery-task-meta-") {
            publisher
                .command(&["SET".into(), channel.clone(), payload.clone()])
                .await
                .unwrap();
        }
        publisher
            .command(&["PUBLISH".into(), channel, payload])
            .await
            .unwrap();
    }
    // A worker configured for pickle: counted and skipped, the rest goes on.
    let pickle = r#"{"body": "gASVBAAAAAAAAACMAXiULg==", "content-type": "application/x-python-serialize", "properties": {"body_encoding": "base64"}}"#;
    publisher
        .command(&[
            "PUBLISH".into(),
            "/8.celeryev/task.multi".into(),
            pickle.into(),
        ])
        .await
        .unwrap();

    let app = &app;
    let token = token.as_str();
    eventually("three tasks finished", || async move {
        let tasks = app.api_get("/api/v1/celery/tasks", token).await.json();
        tasks.as_array().is_some_and(|t| {
            t.len() == 3
                && t.iter()
                    .all(|t| t["state"] == "SUCCESS" || t["state"] == "FAILURE")
        })
    })
    .await;
    let ghost = app
        .api_get("/api/v1/celery/tasks/0000aaaa-ghost", token)
        .await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND, "{}", ghost.body);
    assert!(
        app.state
            .metrics
            .celery
            .foreign
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let failed = app
        .api_get("/api/v1/celery/tasks?state=failure", token)
        .await
        .json();
    assert_eq!(failed[0]["name"], "tasks.boom");
    assert_eq!(failed[0]["exception"], "KeyError('BE')");
    // The failure counts into an issue, grouped like errors, its frame from the traceback.
    eventually("the failure became an issue", || async move {
        let issues = app.api_get("/api/v1/issues", token).await.json();
        issues["issues"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    let issues = app.api_get("/api/v1/issues", token).await.json();
    let issue = &issues["issues"][0];
    assert_eq!(issue["title"], "KeyError: 'BE'", "{issue}");
    assert!(
        issue["culprit"].as_str().unwrap().contains("boom"),
        "{issue}"
    );
    let uuid = failed[0]["uuid"].as_str().unwrap().to_string();
    let searched = app
        .api_get("/api/v1/celery/tasks?q=args:be%20keyerror", token)
        .await
        .json();
    assert_eq!(searched.as_array().map(Vec::len), Some(1), "{searched}");
    assert_eq!(searched[0]["uuid"].as_str(), Some(uuid.as_str()));
    let refused = app
        .api_get("/api/v1/celery/tasks?q=queue:mail", token)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("not a filter"), "{}", refused.body);
    let detail = app
        .api_get(&format!("/api/v1/celery/tasks/{uuid}"), token)
        .await
        .json();
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["task-sent", "task-received", "task-started", "task-failed"]
    );

    // Each task is a Job of kind celery, its end and progress included (mirrored just after
    // the tasks are stored).
    eventually("three jobs finished", || async move {
        let jobs = app.api_get("/api/v1/jobs?kind=celery", token).await.json();
        jobs["jobs"].as_array().is_some_and(|j| {
            j.len() == 3
                && j.iter()
                    .all(|j| j["status"] == "completed" || j["status"] == "failed")
        })
    })
    .await;
    let jobs = app.api_get("/api/v1/jobs?kind=celery", token).await.json();
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let boom = jobs.iter().find(|j| j["name"] == "tasks.boom").unwrap();
    assert_eq!(boom["status"], "failed");
    // A failed task's runtime is from its start to its failure (its event carries none).
    let message = boom["message"].as_str().unwrap();
    assert!(
        message.starts_with("FAILURE in ") && message.ends_with(" s: KeyError('BE')"),
        "{message}"
    );
    let send_all = jobs.iter().find(|j| j["name"] == "tasks.send_all").unwrap();
    assert_eq!(
        (send_all["processed"].as_i64(), send_all["total"].as_i64()),
        (Some(5), Some(5))
    );

    // Workers, and Flower's API for the scripts that read it.
    let workers = app.api_get("/api/v1/celery/workers", token).await.json();
    assert_eq!(workers[0]["hostname"], "celery@vm");
    let flower = app.api_get("/api/tasks?taskname=tasks.add", token).await;
    assert_eq!(flower.status, StatusCode::OK);
    let flower = flower.json();
    let add = flower.as_object().unwrap().values().next().unwrap();
    assert_eq!(
        (add["state"].as_str(), add["result"].as_str()),
        (Some("SUCCESS"), Some("5"))
    );
    assert!(
        add["received"].as_f64().unwrap() > 1.7e9,
        "seconds since the epoch"
    );
    let info = app
        .api_get(&format!("/api/task/info/{uuid}"), token)
        .await
        .json();
    assert_eq!(info["worker"], "celery@vm");
    let types = app.api_get("/api/task/types", token).await.json();
    assert_eq!(
        types["task-types"],
        serde_json::json!(["tasks.add", "tasks.boom", "tasks.send_all"])
    );
    let status = app.api_get("/api/workers?status=true", token).await.json();
    assert!(status["celery@vm"].is_boolean());
    let missing = app.api_get("/api/task/info/nope", token).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = app
        .api_get("/api/tasks?received_start=yesterday", token)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Sorting, in Vigie's words and Flower's; a wrong key is named.
    let slowest = app
        .api_get("/api/v1/celery/tasks?sort=-runtime", token)
        .await
        .json();
    let runtimes: Vec<f64> = slowest
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["runtime"].as_f64())
        .collect();
    assert!(runtimes.len() >= 2, "{slowest}");
    assert!(runtimes.windows(2).all(|w| w[0] >= w[1]), "{runtimes:?}");
    // The map's keys come in the asked order, as Flower sends them.
    let by_name = app.api_get("/api/tasks?sort_by=-name", token).await.body;
    let at = |name: &str| by_name.find(&format!("\"name\":\"{name}\"")).unwrap();
    assert!(at("tasks.send_all") < at("tasks.boom") && at("tasks.boom") < at("tasks.add"));
    let wrong = app.api_get("/api/v1/celery/tasks?sort=size", token).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("runtime"), "{}", wrong.body);

    // Queue lengths, as Flower reads them: the queue's list plus its priority lists.
    for key in ["celery", "celery", "celery\x06\x163"] {
        publisher
            .command(&["RPUSH".into(), key.into(), "{}".into()])
            .await
            .unwrap();
    }
    let queues = app.api_get("/api/v1/celery/queues", token).await.json();
    let flower_queues = app.api_get("/api/queues/length", token).await.json();
    for key in ["celery", "celery\x06\x163"] {
        publisher
            .command(&["DEL".into(), key.into()])
            .await
            .unwrap();
    }
    assert_eq!(
        queues,
        serde_json::json!([{"name": "celery", "messages": 3}])
    );
    assert_eq!(flower_queues["active_queues"][0]["messages"], 3);

    // The pages: the list, one task with its traceback and events, the workers; escaped.
    let session = app.setup_admin().await;
    let list = app.get("/celery?state=FAILURE", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("tasks.boom") && !list.body.contains("tasks.send_all</strong>"));
    assert!(
        list.body.contains("(&#x27;BE&#x27;,)"),
        "arguments are escaped"
    );
    let page = app.get(&format!("/celery/tasks/{uuid}"), &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"traceback\"") && page.body.contains("task-failed"));
    let workers = app.get("/celery/workers", &session).await;
    assert!(workers.body.contains("celery@vm") && workers.body.contains("py-celery"));
    assert_eq!(
        app.get("/celery/tasks/nope", &session).await.status,
        StatusCode::NOT_FOUND
    );
    let found = app
        .get("/celery?q=result:5%20state:success", &session)
        .await
        .body;
    assert!(found.contains("tasks.add") && !found.contains("tasks.boom</strong>"));
    assert!(
        workers.body.contains("Online in the last 24 hours"),
        "the history"
    );
    let system = app.get("/system", &session).await.body;
    assert!(system.contains("Celery brokers") && system.contains("redis://127.0.0.1:1/0"));
    assert!(
        system.contains("events read from the brokers: <strong>")
            && system.contains("events and result-backend states stored: <strong>"),
        "each counter says what it counts"
    );
    assert!(system.contains("unreachable") && system.contains("reading"));

    // A task beat sends every minute: periodic, its next run expected a minute after the last.
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    let now = vigie_core::Timestamp::now().millis();
    let sends: Vec<vigie_store::CeleryNews> = (0..4)
        .map(|i| vigie_store::CeleryNews::Task {
            uuid: format!("beat-{i}"),
            kind: "task-sent".into(),
            hostname: "gen7@beat".into(),
            at: vigie_core::Timestamp(now - (3 - i) * 60_000),
            fields: serde_json::from_str(r#"{"name": "tasks.nightly"}"#).unwrap(),
        })
        .collect();
    app.state.store.apply_celery(project, sends).await.unwrap();
    let periodic = app.api_get("/api/v1/celery/periodic", token).await.json();
    assert_eq!(periodic.as_array().map(Vec::len), Some(1), "{periodic}");
    assert_eq!(
        (
            periodic[0]["name"].as_str(),
            periodic[0]["interval_s"].as_f64(),
            periodic[0]["late"].as_bool()
        ),
        (Some("tasks.nightly"), Some(60.0), Some(false))
    );
    assert_eq!(periodic[0]["expected_next"].as_i64(), Some(now + 60_000));
    let page = app.get("/celery/periodic", &session).await.body;
    assert!(
        page.contains("tasks.nightly") && page.contains("on time"),
        "{page}"
    );

    let sorted = app.get("/celery?sort=-runtime", &session).await.body;
    assert!(sorted.contains("Runtime ↓"), "the order is marked");
    assert!(
        sorted.contains("sort=runtime&amp;page=0"),
        "a second click reverses it"
    );
    let mistake = app.get("/celery?q=queue:mail", &session).await;
    assert_eq!(mistake.status, StatusCode::OK);
    assert!(mistake.body.contains("is not a filter"));

    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_celery_worker_online{worker=\"celery@vm\"}")
            && metrics.contains("vigie_celery_workers_online "),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_celery_undecodable_total 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("vigie_celery_events_total 0"));
}

/// Stopping the consumer (as shutdown does) stores every event it had read: the readers stop,
/// then the writer empties the queue before it ends.
#[tokio::test]
async fn stopping_stores_every_event_already_read() {
    use std::sync::atomic::Ordering;
    let Some(mut url) = redis() else { return };
    url.db = 9;
    let broker = format!("redis://{}:{}/9", url.host, url.port);
    let app = common::app_configured(Duration::from_secs(3600), |c| {
        c.celery.brokers = broker.clone();
    })
    .await;
    let consumer = vigie_server::celery::consumer::start(&app.state, &app.server.errors)
        .await
        .unwrap();
    let state = app.state.clone();
    eventually("the broker connected", || {
        let brokers = state.brokers.list();
        async move { brokers.iter().any(|b| b.connected) }
    })
    .await;

    // A burst of the captured events (task and worker events only: each read event is one
    // item for the writer), published from another task while the consumer is stopped.
    let shift = since_capture(EVENTS);
    let messages: Vec<(String, String)> = captured(EVENTS)
        .into_iter()
        .map(|(channel, payload)| {
            (
                channel.replace("/5.celeryev/", "/9.celeryev/"),
                retimed(&payload, shift),
            )
        })
        .collect();
    let publisher = tokio::spawn(async move {
        let mut publisher = Connection::open(&url).await.unwrap();
        for _ in 0..300 {
            for (channel, payload) in &messages {
                publisher
                    .command(&["PUBLISH".into(), channel.clone(), payload.clone()])
                    .await
                    .unwrap();
            }
        }
    });
    let counters = &app.state.metrics.celery;
    eventually("a good part of the burst was read", || async {
        counters.events.load(Ordering::Relaxed) > 3_000
    })
    .await;
    consumer.stop().await;
    let (read, stored) = (
        counters.events.load(Ordering::Relaxed),
        counters.stored.load(Ordering::Relaxed),
    );
    assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    // `stored` also counts result-backend states, whose channel Redis shares across databases
    // (another test may publish some meanwhile): every event read is stored, perhaps more.
    assert!(
        stored >= read,
        "every event read before the stop is stored: {stored} of {read}"
    );
    publisher.abort();
}
