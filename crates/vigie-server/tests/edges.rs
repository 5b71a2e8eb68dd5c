//! The edges a hostile or careless sender reaches: bodies read only after the sender is known,
//! compressed bombs, amplifying bodies, record caps, impossible times, counts that would
//! overflow, a public key that only writes, and a login a stranger cannot lock.

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A body that fails the moment anyone reads it: a handler that reads before authenticating
/// answers 400 ("could not read the body") instead of 401/403.
fn unreadable() -> Body {
    Body::from_stream(futures_util::stream::once(async {
        Err::<Vec<u8>, _>(std::io::Error::other("the body was read"))
    }))
}

const INGEST_PATHS: [&str; 6] = [
    "/api/v1/logs",
    "/v1/logs",
    "/v1/traces",
    "/loki/api/v1/push",
    "/api/v1/jobs",
    "/api/1/store/",
];

#[tokio::test]
async fn no_body_is_read_before_the_sender_is_known() {
    let app = app().await;
    for path in INGEST_PATHS {
        for auth in [None, Some("Bearer 0123456789abcdef0123456789abcdef")] {
            let mut req = Request::post(path).header(header::CONTENT_ENCODING, "zstd");
            if let Some(auth) = auth {
                req = req.header(header::AUTHORIZATION, auth);
            }
            let answer = app.send(req.body(unreadable()).unwrap()).await;
            assert!(
                matches!(
                    answer.status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ),
                "{path} {auth:?}: {} {}",
                answer.status,
                answer.body
            );
            assert!(
                answer.body.starts_with('{'),
                "{path}: JSON, {}",
                answer.body
            );
        }
    }
    // An envelope may carry its key only in its header line: only that line is inflated
    // (64 KiB at most), so an anonymous 64 MiB zstd bomb is refused without being inflated.
    let bomb = zstd::encode_all(&vec![b'{'; 64 << 20][..], 19).unwrap();
    assert!(bomb.len() < 64 << 10);
    let answer = app
        .send(
            Request::post("/api/1/envelope/")
                .header(header::CONTENT_ENCODING, "zstd")
                .body(Body::from(bomb))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert!(answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing project key"));
    assert_eq!(app.state.ingest.in_use(), 0, "nothing stays reserved");
}

#[tokio::test]
async fn a_snappy_header_claiming_gigabytes_gets_a_json_413() {
    let app = app().await;
    let key = project_key(&app).await;
    let answer = app
        .send(
            Request::post("/loki/api/v1/push")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .body(Body::from(vec![0x80, 0x80, 0x80, 0x80, 0x0c]))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.json()["error"]["code"], "payload_too_large");
    assert!(answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("3221225472 bytes"));
    // Past the body limit, OTLP and Loki senders get JSON too, not a page.
    for path in ["/v1/logs", "/loki/api/v1/push"] {
        let answer = app
            .send(
                Request::post(path)
                    .header(header::AUTHORIZATION, format!("Bearer {key}"))
                    .header(header::CONTENT_LENGTH, (2 << 20).to_string())
                    .body(Body::from(vec![b'x'; 2 << 20]))
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(
            answer.json()["error"]["code"],
            "payload_too_large",
            "{path}"
        );
    }
}

#[tokio::test]
async fn records_per_request_and_parse_costs_are_bounded() {
    let app = app_configured(Duration::from_secs(3600), |c| {
        c.limits.max_records_per_request = 1000;
        c.limits.ingest_budget_mib = 16;
    })
    .await;
    let key = project_key(&app).await;
    let post = |body: Vec<u8>, encoding: Option<&'static str>| {
        let mut req =
            Request::post("/api/v1/logs").header(header::AUTHORIZATION, format!("Bearer {key}"));
        if let Some(encoding) = encoding {
            req = req.header(header::CONTENT_ENCODING, encoding);
        }
        req.body(Body::from(body)).unwrap()
    };
    let lines = |n: usize| {
        (0..n)
            .map(|i| format!("{{\"msg\": \"line {i}\"}}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let ok = app.send(post(lines(1000), None)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.json()["accepted"], 1000);

    let over = app.send(post(lines(1001), None)).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    let message = over.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("max_records_per_request"), "{message}");
    assert!(
        message.contains("nothing of this request was stored"),
        "{message}"
    );

    // 2 MiB of `{}` lines inflate from a few KiB into 699,000 lines: counted before parsing.
    let amplifier = gzip(&b"{}\n".repeat(699_000));
    assert!(amplifier.len() < 16 << 10);
    let refused = app.send(post(amplifier, Some("gzip"))).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("699000 lines"));
    // Few lines, millions of values: the body is weighed before it is parsed, and refused
    // for what it would cost.
    let line = format!("{{\"v\": [{}0]}}\n", "0,".repeat(20_000));
    let amplifier = gzip(line.repeat(40).as_bytes());
    assert!(amplifier.len() < 64 << 10);
    let refused = app.send(post(amplifier, Some("gzip"))).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        refused.body
    );
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ingest_budget_mib"));

    assert_eq!(
        app.state.metrics.logs.stored.load(Ordering::Relaxed),
        1000,
        "only the first request was stored"
    );
    assert_eq!(app.state.ingest.in_use(), 0, "every reservation ended");
}

#[tokio::test]
async fn a_taken_budget_answers_503_with_retry_after() {
    let app = app_configured(Duration::from_secs(3600), |c| {
        c.limits.ingest_budget_mib = 1;
    })
    .await;
    let key = project_key(&app).await;
    let job = app
        .api_post("/api/v1/jobs", &key, r#"{"id": "held", "name": "send"}"#)
        .await;
    assert_eq!(job.status, StatusCode::CREATED, "{}", job.body);
    // A slow sender holds most of the budget with its declared length, sending nothing yet.
    let (hold, body) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let slow = Request::post("/api/v1/logs")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_LENGTH, (900 << 10).to_string())
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(body),
        ))
        .unwrap();
    let router = app.router.clone();
    let slow = tokio::spawn(async move {
        use tower::ServiceExt;
        router.oneshot(slow).await.unwrap().status()
    });
    eventually("the slow request holds its reservation", || async {
        app.state.ingest.in_use() >= 900 << 10
    })
    .await;
    let answer = app
        .send(
            Request::post("/api/v1/logs")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::from(vec![b'a'; 200 << 10]))
                .unwrap(),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    assert_eq!(answer.json()["error"]["code"], "overloaded");

    // Every job write reads its body through the same budget, so a reporter is told the same.
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/held/progress",
        "/api/v1/jobs/held/heartbeat",
        "/api/v1/jobs/held/finish",
        "/api/v1/jobs/held/items",
    ] {
        let answer = app
            .send(
                Request::post(path)
                    .header(header::AUTHORIZATION, format!("Bearer {key}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(vec![b' '; 200 << 10]))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            answer.body
        );
        assert_eq!(answer.headers[header::RETRY_AFTER], "1", "{path}");
    }

    // OpenTelemetry exporters read their bodies through it too; 503 with `Retry-After` is what
    // the OTLP spec tells them to retry.
    for path in ["/v1/logs", "/v1/traces", "/v1/metrics"] {
        let answer = app
            .send(
                Request::post(path)
                    .header(header::AUTHORIZATION, format!("Bearer {key}"))
                    .header(header::CONTENT_TYPE, "application/x-protobuf")
                    .body(Body::from(vec![0u8; 200 << 10]))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            answer.body
        );
        assert_eq!(answer.headers[header::RETRY_AFTER], "1", "{path}");
    }

    // A Sentry SDK is told in the header it honours on any status, for every category.
    let envelope = Request::post("/api/1/envelope/")
        .header(
            "x-sentry-auth",
            format!("Sentry sentry_version=7, sentry_key={key}"),
        )
        .body(Body::from(vec![b'{'; 200 << 10]))
        .unwrap();
    let answer = app.send(envelope).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["x-sentry-rate-limits"], "1::organization");
    drop(hold);
    let _ = slow.await;
    assert_eq!(app.state.ingest.in_use(), 0);
}

#[tokio::test]
async fn implausible_log_times_are_stored_at_arrival_with_the_original_kept() {
    let app = app().await;
    let key = project_key(&app).await;
    let admin = app.admin_token().await;
    let body = concat!(
        "{\"msg\": \"after 2262\", \"timestamp\": \"2262-04-12T00:00:00Z\"}\n",
        "{\"msg\": \"year 9999\", \"timestamp\": \"9999-12-31T23:59:59Z\"}\n",
        "{\"msg\": \"in time\"}\n",
    );
    let answer = app.api_post("/api/v1/logs", &key, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        app.state.metrics.logs.time_replaced.load(Ordering::Relaxed),
        2
    );
    let found = app.api_get("/api/v1/logs/search?q=&limit=10", &admin).await;
    let records = found.json()["hits"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 3, "{}", found.body);
    let now_ms = vigie_core::Timestamp::now().millis();
    for record in &records {
        let text = record.to_string();
        let time = record["time"].as_str().unwrap();
        let at = vigie_core::Timestamp::parse_rfc3339(time).unwrap().millis();
        assert!((now_ms - at).abs() < 60_000, "{text}: stored near now");
    }
    let kept: Vec<String> = records
        .iter()
        .filter_map(|r| r["fields"]["original_time"].as_str().map(str::to_string))
        .collect();
    assert_eq!(kept.len(), 2, "{}", found.body);
    assert!(
        kept.contains(&"9999-12-31T23:59:59Z".to_string()),
        "{kept:?}"
    );
    assert!(
        kept.contains(&"2262-04-12T00:00:00Z".to_string()),
        "{kept:?}"
    );
    // Stats over the project stay sane.
    let stats = app.api_get("/api/v1/logs/stats", &admin).await;
    assert_eq!(stats.json()["total"], 3, "{}", stats.body);
}

#[tokio::test]
async fn a_count_that_would_overflow_is_refused_naming_the_field() {
    let app = app().await;
    let key = project_key(&app).await;
    let admin = app.admin_token().await;
    app.api_post("/api/v1/jobs", &key, r#"{"name": "n", "id": "n"}"#)
        .await;
    let big = format!(r#"{{"increment": {}}}"#, i64::MAX);
    let first = app.api_post("/api/v1/jobs/n/progress", &key, &big).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let next = app
        .api_post("/api/v1/jobs/n/progress", &key, r#"{"increment": 1}"#)
        .await;
    assert_eq!(
        next.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        next.body
    );
    assert_eq!(next.json()["error"]["field"], "processed");
    let items = app
        .api_post("/api/v1/jobs/n/items", &key, r#"[{"status": "ok"}]"#)
        .await;
    assert_eq!(
        items.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        items.body
    );
    let job = app.api_get("/api/v1/jobs/n", &admin).await;
    assert_eq!(job.json()["processed"], i64::MAX, "not wrapped");
}

#[tokio::test]
async fn the_project_key_writes_jobs_but_never_reads_them() {
    let app = app().await;
    let key = project_key(&app).await;
    let created = app
        .api_post("/api/v1/jobs", &key, r#"{"name": "k", "id": "k"}"#)
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let token = created.json()["read_token"].as_str().unwrap().to_string();
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/k",
        "/api/v1/jobs/k/items",
        "/api/v1/items",
        "/api/v1/live/jobs/k",
    ] {
        let answer = app.api_get(path, &key).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
        let query = app
            .send(
                Request::get(format!("{path}?sentry_key={key}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(query.status, StatusCode::FORBIDDEN, "{path}?sentry_key");
    }
    let by_token = app
        .send(
            Request::get(format!("/api/v1/jobs/k?token={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(by_token.status, StatusCode::OK);
    assert_eq!(by_token.json()["name"], "k");
}

#[tokio::test]
async fn a_stranger_failing_as_alice_does_not_lock_her_out() {
    let app = app().await;
    let admin = app.admin_token().await;
    let made = app
        .api_post(
            "/api/v1/users",
            &admin,
            r#"{"username": "alice", "password": "correct horse battery", "role": "viewer"}"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let login_from = |ip: [u8; 4], password: &'static str| {
        let app = &app;
        async move {
            let page = app.get("/login", "").await;
            let csrf_cookie = page.cookie("vigie_csrf").unwrap();
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("csrf", page.csrf_field().as_str()),
                    ("username", "alice"),
                    ("password", password),
                ])
                .finish();
            let mut req = Request::post("/login")
                .header(header::COOKIE, format!("vigie_csrf={csrf_cookie}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
            app.send(req).await.status
        }
    };
    let stranger = [203, 0, 113, 9];
    for _ in 0..8 {
        let status = login_from(stranger, "guess").await;
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{status}"
        );
    }
    assert_eq!(
        login_from(stranger, "correct horse battery").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser's address waits"
    );
    assert_eq!(
        login_from([192, 0, 2, 1], "correct horse battery").await,
        StatusCode::SEE_OTHER,
        "alice, from her own address, gets in"
    );
}

/// The router on a real listener at port 0, as `vigie serve` runs it.
async fn listen(app: &App) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

#[tokio::test]
async fn a_request_refused_before_its_body_is_read_still_gets_its_answer() {
    let app = app().await;
    let addr = listen(&app).await;
    // A 4 MiB upload with a wrong key: refused from its headers, body never looked at. A
    // server that closes on the unread bytes resets the connection, and the sender sees a
    // broken pipe instead of the 403. Then the same connection is used again.
    let answers = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader, Read};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let body = vec![b'{'; 4 << 20];
        let mut answers = Vec::new();
        for _ in 0..2 {
            write!(
                stream,
                "POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \
                 0123456789abcdef0123456789abcdef\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream
                .write_all(&body)
                .expect("the whole body is taken, not reset");
            let mut reader = BufReader::new(&mut stream);
            let mut status = String::new();
            reader.read_line(&mut status).expect("an answer");
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut answer = vec![0; length];
            reader.read_exact(&mut answer).unwrap();
            answers.push((status, String::from_utf8(answer).unwrap()));
        }
        answers
    })
    .await
    .unwrap();
    for (status, body) in answers {
        assert!(status.starts_with("HTTP/1.1 403"), "{status}");
        assert!(body.contains("\"code\":\"forbidden\""), "{body}");
    }
}

#[tokio::test]
async fn a_patch_that_changes_nothing_or_sets_null_is_refused_naming_the_field() {
    let app = app().await;
    let (_, admin) = vigie_server::accounts::manage::create_token(
        app.state.store.as_ref(),
        "ops",
        vigie_core::Scope::Admin,
    )
    .await
    .unwrap();
    let user = vigie_server::accounts::manage::create_user(
        app.state.store.as_ref(),
        "alice",
        "a long password",
        vigie_core::Role::Viewer,
    )
    .await
    .unwrap();
    for (path, body, field) in [
        (format!("/api/v1/users/{}", user.id), "[null, null]", "body"),
        (
            format!("/api/v1/users/{}", user.id),
            r#"{"role": null}"#,
            "role",
        ),
        (
            "/api/v1/projects/1".to_string(),
            r#"{"name": null}"#,
            "name",
        ),
        ("/api/v1/projects/1".to_string(), "{}", "body"),
    ] {
        let answer = app.api(Method::PATCH, &path, &admin, Some(body)).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {}",
            answer.body
        );
        assert_eq!(answer.json()["error"]["field"], field, "{}", answer.body);
    }
    let renamed = app
        .api(
            Method::PATCH,
            "/api/v1/projects/1",
            &admin,
            Some(r#"{"name": "shop"}"#),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.json()["name"], "shop");
}

/// While the ingest budget is held by a request still sending its body, a Loki push waits a
/// little for room, then is told to come back (503 + `Retry-After`) rather than queued in
/// memory; once the first request ends, the push is taken.
#[tokio::test]
async fn a_loki_push_is_turned_away_while_the_budget_is_held() {
    let app = app_configured(Duration::from_secs(3600), |c| {
        c.limits.ingest_budget_mib = 1;
    })
    .await;
    let key = project_key(&app).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    // Fused, as a connection's body is: read again after its end, it stays ended.
    let slow_body =
        futures_util::StreamExt::fuse(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk)), rx))
        }));
    let holder = {
        let router = app.router.clone();
        let key = key.clone();
        tokio::spawn(async move {
            use tower::ServiceExt;
            let req = Request::post("/api/v1/logs?source=slow")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::from_stream(slow_body))
                .unwrap();
            Answer::from(router.oneshot(req).await.unwrap()).await
        })
    };
    // Nearly the whole budget, as one frame of lines; the rest of the body is still to come.
    let line = format!("{{\"message\": \"{}\"}}\n", "x".repeat(1000));
    tx.send(line.repeat(1000).into_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let push = || {
        Request::post("/loki/api/v1/push")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(
                r#"{{"streams": [{{"stream": {{"app": "shop"}}, "values": [["{}", "{}"]]}}]}}"#,
                1_800_000_000_000_000_000u64,
                "y".repeat(200_000)
            )))
            .unwrap()
    };
    let refused = app.send(push()).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert!(refused.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(
        refused.json()["error"]["code"],
        "overloaded",
        "{}",
        refused.body
    );

    drop(tx);
    // The holder gets its own answer (its thousand lines would take more than the whole
    // budget to parse), and lets go of what it held.
    let held = holder.await.unwrap();
    assert_eq!(held.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", held.body);
    let taken = app.send(push()).await;
    assert_eq!(taken.status, StatusCode::NO_CONTENT, "{}", taken.body);
}

/// At shutdown the log sink is drained after the syslog listeners stop: what syslog handed
/// over (without waiting for the write, as a UDP or TCP listener does) is stored before the
/// store closes, and the drain answers only after every batch queued before it.
#[tokio::test]
async fn the_drain_stores_what_syslog_handed_over() {
    let app = app().await;
    let admin = app.admin_token().await;
    let project = vigie_core::ProjectId(1);
    let now = vigie_core::Timestamp::now().millis() * 1_000_000;
    for batch in 0..6 {
        let records = (0..500)
            .map(|i| vigie_core::LogRecord {
                time: now,
                received: now,
                source: "syslog-drain".into(),
                message: format!("handed over {batch}-{i}").into(),
                ..Default::default()
            })
            .collect();
        app.server.logs.offer(project, records, true).await;
    }
    app.server.logs.flush().await;
    assert_eq!(
        app.state.metrics.logs.stored.load(Ordering::Relaxed),
        3000,
        "every record queued before the drain is stored when it answers"
    );
    let found = app
        .api_get("/api/v1/logs/stats?q=source:syslog-drain", &admin)
        .await;
    assert_eq!(found.json()["total"], 3000, "{}", found.body);
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_ingest_items_total{protocol=\"syslog\",kind=\"log\"} 3000"),
        "{metrics}"
    );
}

/// A search box takes what a person types, not a statement built to tire the database: each
/// word or tag filter is one more condition (and one more statement shape). Past the limits a
/// search is refused with the reason, never cut short.
#[tokio::test]
async fn searches_past_their_limits_are_refused_and_say_why() {
    let app = app().await;
    let token = app.read_token().await;
    let words = |n: usize| {
        (0..n)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join("%20")
    };
    let tags = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}%3Av{i}"))
            .collect::<Vec<_>>()
            .join("%20")
    };
    for (path, most, over) in [
        ("/api/v1/issues?query=", tags(20), tags(21)),
        ("/api/v1/issues?query=", words(8), words(9)),
        ("/api/v1/jobs?q=", words(8), words(9)),
        ("/api/v1/items?q=", words(8), words(9)),
        ("/api/v1/celery/tasks?q=", words(8), words(9)),
        ("/api/tasks?search=", words(8), words(9)),
    ] {
        let fits = app.api_get(&format!("{path}{most}"), &token).await;
        assert_eq!(fits.status, StatusCode::OK, "{path}: {}", fits.body);
        let refused = app.api_get(&format!("{path}{over}"), &token).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            refused.body
        );
        let message = refused.json()["error"]["message"].to_string();
        assert!(message.contains("at most"), "{path}: {message}");
    }
    // Tags and words are counted apart; 20 tags and 8 words together still fit.
    let both = format!("/api/v1/issues?query={}%20{}", tags(20), words(8));
    assert_eq!(app.api_get(&both, &token).await.status, StatusCode::OK);

    // The pages' search boxes say why above an empty table and keep what was typed.
    let key = project_key(&app).await;
    let job = app
        .api_post("/api/v1/jobs", &key, r#"{"name": "j", "id": "j"}"#)
        .await;
    assert_eq!(job.status, StatusCode::CREATED, "{}", job.body);
    // Quotes group words; they are not searched for.
    let quoted = app.api_get("/api/v1/jobs?q=%22j%22", &token).await;
    assert_eq!(quoted.json()["total"], 1, "{}", quoted.body);
    // Quotes group words; they are not searched for.
    let quoted = app.api_get("/api/v1/jobs?q=%22j%22", &token).await;
    assert_eq!(quoted.json()["total"], 1, "{}", quoted.body);
    let session = app.setup_admin().await;
    let typed = (0..9)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    for page in ["/issues?query=", "/jobs?q=", "/jobs/j?q=", "/celery?q="] {
        let answer = app.get(&format!("{page}{}", words(9)), &session).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}: {}", answer.body);
        assert!(
            answer.body.contains("9 words; a search takes at most 8"),
            "{page} does not say why: {}",
            answer.body
        );
        assert!(
            answer.body.contains(&format!("value=\"{typed}\"")),
            "{page}"
        );
    }
    // A job's items are not hidden by a refused search of them: the job itself still shows.
    let job_page = app.get(&format!("/jobs/j?q={}", words(9)), &session).await;
    assert!(
        job_page.body.contains("No item matches"),
        "{}",
        job_page.body
    );
}
