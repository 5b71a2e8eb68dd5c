//! Alerts through the router, delivered to a real HTTP receiver on a local port: channels and
//! their checks, "send test", rules on new issues, failed jobs and monitors (with the
//! "resolved" message), the HMAC signature, retries and the channel's health.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use common::{app, project_key, App};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_core::alert::signature;
use vigie_core::monitor::RunStatus;
use vigie_core::Timestamp;
use vigie_store::CheckInReport;

/// What the receiver got: path, signature header, JSON body.
type Received = Arc<Mutex<Vec<(String, Option<String>, serde_json::Value)>>>;

/// A webhook receiver on a free port: `/ok/...` answers 200, `/down/...` answers 500.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let keep = keep.clone();
        async move {
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let sig = headers
                .get("x-vigie-signature")
                .map(|v| v.to_str().unwrap().to_string());
            keep.lock()
                .unwrap()
                .push((uri.path().to_string(), sig, json));
            if uri.path().starts_with("/down") {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
    };
    let router = axum::Router::new().route("/{*path}", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}

async fn admin(app: &App) -> String {
    app.admin_token().await
}

async fn wait_for(got: &Received, n: usize) -> Vec<(String, Option<String>, serde_json::Value)> {
    for _ in 0..100 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got.lock().unwrap().clone()
}

#[tokio::test]
async fn rules_send_to_channels_with_signatures_and_retries() {
    let app = app().await;
    let _tasks = vigie_server::alerts::start(&app.state);
    let token = admin(&app).await;
    let (url, got) = receiver().await;

    // Channels are checked when saved.
    let no_smtp = app
        .api_post(
            "/api/v1/alerts/channels",
            &token,
            r#"{"name": "mail", "target": {"kind": "email", "to": ["ops@example.com"]}}"#,
        )
        .await;
    assert_eq!(no_smtp.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_smtp.body.contains("no mail server is configured"));
    let bad_url = app
        .api_post(
            "/api/v1/alerts/channels",
            &token,
            r#"{"name": "x", "target": {"kind": "webhook", "url": "ftp://nowhere"}}"#,
        )
        .await;
    assert_eq!(
        bad_url.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_url.body
    );
    let hook = app
        .api_post("/api/v1/alerts/channels", &token, &format!(
                r#"{{"name": "ops hook", "target": {{"kind": "webhook", "url": "{url}/ok/hook", "secret": "s3cret"}}}}"#
            ))
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let hook_id = hook.json()["id"].as_i64().unwrap();
    assert_eq!(hook.json()["destination"], "127.0.0.1");
    assert!(!hook.body.contains("s3cret"), "secrets are not shown");
    let discord = app
        .api_post("/api/v1/alerts/channels", &token, &format!(
                r#"{{"name": "discord", "target": {{"kind": "discord", "url": "{url}/ok/api/webhooks/1/tok"}}}}"#
            ))
        .await
        .json();

    // Send test.
    let test = app
        .api(
            Method::POST,
            &format!("/api/v1/alerts/channels/{hook_id}/test"),
            &token,
            None,
        )
        .await
        .json();
    assert_eq!(test["sent"], true, "{test}");
    let first = wait_for(&got, 1).await;
    let (path, sig, body) = &first[0];
    assert_eq!(path, "/ok/hook");
    assert!(body["title"].as_str().unwrap().contains("Test from Vigie"));
    let raw = serde_json::to_vec(body).unwrap();
    assert_eq!(sig.as_deref(), Some(signature("s3cret", &raw).as_str()));

    // A rule on new issues to both channels; a Sentry error arrives.
    let rule = app
        .api_post("/api/v1/alerts/rules", &token, &format!(
                r#"{{"name": "new issues", "rule": {{"kind": "new_issue"}}, "channels": [{hook_id}, {}]}}"#,
                discord["id"]
            ))
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.body);
    assert_eq!(rule.json()["when"], "a new issue appears");
    let key = project_key(&app).await;
    let envelope = "{}\n{\"type\":\"event\"}\n{\"message\":\"SMTP 421 too many messages\",\"level\":\"error\"}\n";
    let sent = app.envelope(&key, envelope).await;
    assert_eq!(sent.status, StatusCode::OK);
    let all = wait_for(&got, 3).await;
    let to_hook = all
        .iter()
        .find(|(p, _, b)| p == "/ok/hook" && b["rule"] == "new issues");
    let (_, sig, body) = to_hook.expect("the webhook got the new issue");
    assert_eq!(body["status"], "firing");
    assert!(body["title"]
        .as_str()
        .unwrap()
        .starts_with("New issue: SMTP 421"));
    assert!(body["link"].as_str().unwrap().contains("/issues/"));
    assert!(sig.is_some());
    let to_discord = all.iter().find(|(p, _, _)| p.contains("/api/webhooks/"));
    let (_, _, embed) = to_discord.expect("discord got it too");
    assert!(embed["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .contains("SMTP 421"));

    // A failing channel: the test says why, the delivery log and the channel's health show it.
    let down = app
        .api_post(
            "/api/v1/alerts/channels",
            &token,
            &format!(
                r#"{{"name": "broken", "target": {{"kind": "webhook", "url": "{url}/down"}}}}"#
            ),
        )
        .await
        .json();
    let test = app
        .api(
            Method::POST,
            &format!("/api/v1/alerts/channels/{}/test", down["id"]),
            &token,
            None,
        )
        .await
        .json();
    assert_eq!(test["sent"], false);
    assert!(
        test["error"].as_str().unwrap().contains("HTTP 500"),
        "{test}"
    );
    let channels = app.api_get("/api/v1/alerts/channels", &token).await.json();
    let broken = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "broken")
        .unwrap();
    assert!(broken["failing_since"].is_i64());
    let log = app
        .api_get("/api/v1/alerts/deliveries", &token)
        .await
        .json();
    assert_eq!(log[0]["status"], "failed");
}

#[tokio::test]
async fn jobs_and_monitors_alert_and_resolve() {
    let app = app().await;
    let _tasks = vigie_server::alerts::start(&app.state);
    let token = admin(&app).await;
    let (url, got) = receiver().await;
    let hook = app
        .webhook_channel(&token, "hook", &format!("{url}/ok/hook"))
        .await;
    for body in [
        format!(
            r#"{{"name": "celery failures", "rule": {{"kind": "job_failed", "job_kind": "celery"}}, "channels": [{}]}}"#,
            hook
        ),
        format!(
            r#"{{"name": "cron", "rule": {{"kind": "monitor_down"}}, "channels": [{}], "cooldown_s": 0}}"#,
            hook
        ),
    ] {
        let made = app.api_post("/api/v1/alerts/rules", &token, &body).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }

    // A failed job of another kind says nothing; a failed celery job alerts with its counts.
    for (id, kind) in [("j-other", "import"), ("j-celery", "celery")] {
        let created = app
            .api_post(
                "/api/v1/jobs",
                &token,
                &format!(
                    r#"{{"id": "{id}", "name": "send invoices", "kind": "{kind}", "total": 500}}"#
                ),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let finished = app
            .api_post(
                &format!("/api/v1/jobs/{id}/finish"),
                &token,
                r#"{"status": "failed", "message": "SMTP 421 4.7.0 rate limit"}"#,
            )
            .await;
        assert_eq!(finished.status, StatusCode::OK, "{}", finished.body);
    }
    let all = wait_for(&got, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let jobs: Vec<_> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, b)| b["rule"] == "celery failures")
        .cloned()
        .collect();
    assert_eq!(jobs.len(), 1, "{all:?}");
    let body = &jobs[0].2;
    assert_eq!(body["title"], "Job failed: send invoices");
    assert!(body.to_string().contains("0 of 500 processed"), "{body}");
    assert!(body["link"].as_str().unwrap().ends_with("/jobs/j-celery"));

    // A monitor run fails, then comes back: "firing", then "resolved".
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    for status in [RunStatus::Error, RunStatus::Ok, RunStatus::Ok] {
        let report = CheckInReport {
            slug: "nightly".into(),
            check_in_id: None,
            status,
            duration_ms: None,
            environment: None,
            output: Some("421 too many messages".into()),
            config: None,
            at: Timestamp::now(),
        };
        vigie_server::monitors::record(&app.state, project, report)
            .await
            .unwrap();
    }
    let all = wait_for(&got, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cron: Vec<serde_json::Value> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, b)| b["rule"] == "cron")
        .map(|(_, _, b)| b.clone())
        .collect();
    assert_eq!(cron.len(), 2, "{all:?}");
    assert_eq!(cron[0]["status"], "firing");
    assert_eq!(cron[0]["title"], "Monitor nightly: run failed");
    assert_eq!(cron[0]["evidence"], "421 too many messages");
    assert_eq!(cron[1]["status"], "resolved");
    assert_eq!(cron[1]["title"], "Monitor nightly is up again");
}

/// The live hub holds 1,024 changes per listener; a flood of job progress overruns it. Every
/// failed job still alerts, exactly once: the engine reads the change feed, not the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_failed_job_alerts_exactly_once_through_a_flood_of_progress() {
    const FAILING: usize = 30;
    const BUSY: usize = 8;
    const UPDATES: usize = 400;
    let app = Arc::new(app().await);
    let _tasks = vigie_server::alerts::start(&app.state);
    // A listener as slow as a busy engine: it reads nothing until the flood is over.
    let mut slow = app.state.hub.subscribe();
    let token = admin(&app).await;
    let (url, got) = receiver().await;
    let hook = app
        .webhook_channel(&token, "hook", &format!("{url}/ok/flood"))
        .await;
    let rule = format!(
        r#"{{"name": "failures", "rule": {{"kind": "job_failed"}}, "channels": [{}], "cooldown_s": 3600}}"#,
        hook
    );
    let made = app.api_post("/api/v1/alerts/rules", &token, &rule).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let create = |id: String| {
        let (app, token) = (app.clone(), token.clone());
        async move {
            let body = format!(r#"{{"id": "{id}", "name": "job {id}", "total": 100000}}"#);
            let created = app.api_post("/api/v1/jobs", &token, &body).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        }
    };
    for i in 0..BUSY {
        create(format!("busy-{i}")).await;
    }
    for i in 0..FAILING {
        create(format!("fails-{i}")).await;
    }
    // Progress from every busy job at once, while the others fail one by one in between.
    let mut flood = Vec::new();
    for i in 0..BUSY {
        let (app, token) = (app.clone(), token.clone());
        flood.push(tokio::spawn(async move {
            for n in 0..UPDATES {
                let progress = app
                    .api_post(
                        &format!("/api/v1/jobs/busy-{i}/progress"),
                        &token,
                        &format!(r#"{{"processed": {n}}}"#),
                    )
                    .await;
                assert_eq!(progress.status, StatusCode::OK, "{}", progress.body);
            }
        }));
    }
    let failing = {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move {
            for i in 0..FAILING {
                let finished = app
                    .api_post(
                        &format!("/api/v1/jobs/fails-{i}/finish"),
                        &token,
                        r#"{"status": "failed", "message": "SMTP 421"}"#,
                    )
                    .await;
                assert_eq!(finished.status, StatusCode::OK, "{}", finished.body);
            }
        })
    };
    for task in flood {
        task.await.unwrap();
    }
    failing.await.unwrap();
    assert!(
        matches!(
            slow.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_))
        ),
        "the flood overran the hub: a listener that relied on it would have missed changes"
    );
    for _ in 0..200 {
        if got.lock().unwrap().len() >= FAILING {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything sent twice would arrive by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut titles: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, body)| body["title"].as_str().unwrap_or("").to_string())
        .collect();
    titles.sort();
    let mut expected: Vec<String> = (0..FAILING)
        .map(|i| format!("Job failed: job fails-{i}"))
        .collect();
    expected.sort();
    assert_eq!(titles, expected);
}

/// Threshold rules count everything stored, even when the hub's broadcast is overrun: 200
/// batches of stored log lines published back to back, while the engine cannot run (one
/// thread, no await), overrun the 64 batches the broadcast keeps for a slow reader. All 200
/// count, and "more than 150 in a minute" fires once. Counted from the broadcast, 64 did.
#[tokio::test]
async fn thresholds_count_what_a_flood_overruns_the_hub_with() {
    let app = app().await;
    let _tasks = vigie_server::alerts::start(&app.state);
    let token = admin(&app).await;
    let (url, got) = receiver().await;
    let hook = app
        .webhook_channel(&token, "hook", &format!("{url}/ok/thresholds"))
        .await;
    let rule = format!(
        r#"{{"name": "many errors", "rule": {{"kind": "log_matches", "query": "level:>=error", "above": 150, "window_s": 60}}, "channels": [{}], "cooldown_s": 3600}}"#,
        hook
    );
    let made = app.api_post("/api/v1/alerts/rules", &token, &rule).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    // The threshold loop reads the new rule at its next second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut overrun = app.state.hub.watch_own_logs();
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    let now = Timestamp::now();
    for i in 0..200 {
        app.state.hub.publish_logs(vigie_server::hub::LogNews {
            project,
            records: Arc::new(vec![log_line(
                vigie_core::Level::Error,
                "invoices",
                &format!("invoice {i} failed"),
                now,
            )]),
            blocks: Vec::new(),
        });
    }
    assert!(
        matches!(
            overrun.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(136))
        ),
        "the broadcast kept 64 of the 200 batches"
    );
    let fired = wait_for_rule(&got, "many errors", 1).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["status"], "firing", "{}", fired[0]);
    // Once: the window stays above for a minute, and that is one episode.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, b)| b["rule"] == "many errors")
        .count();
    assert_eq!(sent, 1);
}

#[tokio::test]
async fn the_alerts_page_and_its_forms() {
    let app = app().await;
    let session = app.setup_admin().await;
    let csrf = app.session_csrf(&session).await;
    let page = app.get("/alerts", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No channel yet"));
    assert!(
        page.body.contains("set [smtp] first"),
        "e-mail needs a mail server"
    );

    let added = app
        .post_form(
            "/alerts/channels",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "<b>ops</b>"),
                ("kind", "webhook"),
                ("destination", "http://127.0.0.1:9/hook"),
            ],
        )
        .await;
    assert!(added.cookie("vigie_flash").unwrap().starts_with("ok:"));
    let refused = app
        .post_form(
            "/alerts/channels",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "slack"),
                ("kind", "slack"),
                ("destination", "https://example.com/x"),
            ],
        )
        .await;
    assert!(refused.cookie("vigie_flash").unwrap().starts_with("error:"));

    let rule = app
        .post_form(
            "/alerts/rules",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "stalls"),
                ("kind", "job_stalled"),
                ("filter", "celery"),
                ("cooldown_min", "10"),
                ("channel", "1"),
            ],
        )
        .await;
    assert!(
        rule.cookie("vigie_flash").unwrap().starts_with("ok:"),
        "{:?}",
        rule.cookie("vigie_flash")
    );
    let no_channel = app
        .post_form(
            "/alerts/rules",
            &session,
            &[("csrf", &csrf), ("name", "x"), ("kind", "new_issue")],
        )
        .await;
    assert!(no_channel
        .cookie("vigie_flash")
        .unwrap()
        .starts_with("error:"));
    // A threshold rule from the form: the query, N, the window and a re-notify interval.
    let threshold = app
        .post_form(
            "/alerts/rules",
            &session,
            &[
                ("csrf", &csrf),
                ("name", "invoice errors"),
                ("kind", "log_matches"),
                ("filter", "level:>=error logger:invoices*"),
                ("threshold", "50"),
                ("window_min", "5"),
                ("renotify_min", "60"),
                ("channel", "1"),
            ],
        )
        .await;
    let flash = threshold.cookie("vigie_flash").unwrap();
    assert!(flash.starts_with("ok:"), "{flash}");
    // Celery rules from the form: a runtime in minutes, a queue's length.
    for (kind, filter, n) in [
        ("task_runtime", "shop.export", "30"),
        ("queue_length", "mail", "500"),
    ] {
        let made = app
            .post_form(
                "/alerts/rules",
                &session,
                &[
                    ("csrf", &csrf),
                    ("name", kind),
                    ("kind", kind),
                    ("filter", filter),
                    ("threshold", n),
                    ("channel", "1"),
                ],
            )
            .await;
        let flash = made.cookie("vigie_flash").unwrap();
        assert!(flash.starts_with("ok:"), "{kind}: {flash}");
    }
    for (kind, filter, n, why) in [
        ("log_matches", "", "50", "give the log query"),
        ("error_events", "", "", "give a threshold"),
        ("failing_transactions", "", "150", "a percentage is 1 to 99"),
        ("issue_events", "", "lots", "is not a whole number"),
        ("task_failures", "", "100", "a percentage is 1 to 99"),
    ] {
        let refused = app
            .post_form(
                "/alerts/rules",
                &session,
                &[
                    ("csrf", &csrf),
                    ("name", "x"),
                    ("kind", kind),
                    ("filter", filter),
                    ("threshold", n),
                    ("channel", "1"),
                ],
            )
            .await;
        let flash = refused.cookie("vigie_flash").unwrap();
        assert!(flash.starts_with("error:"), "{kind}: {flash}");
        let text = urlencoding_decode(&flash);
        assert!(text.contains(why), "{kind}: {text}");
    }
    let muted = app
        .post_form(
            "/alerts/rules/1/mute",
            &session,
            &[("csrf", &csrf), ("hours", "1")],
        )
        .await;
    assert!(muted.cookie("vigie_flash").unwrap().starts_with("ok:"));

    let page = app.get("/alerts", &session).await.body;
    assert!(page.contains("&lt;b&gt;ops&lt;/b&gt;"), "names are escaped");
    assert!(page.contains("a celery job stalls"));
    assert!(page.contains("badge pending\">muted"));
    assert!(page.contains(">10 min<"), "cooldown shown in words");
    assert!(
        page.contains("more than 50 log lines match `level:&gt;=error logger:invoices*` in 5 min")
    );
    assert!(page.contains(">1 h<"), "re-notify shown in words");
    assert!(!page.contains("m 0s"));
    assert!(page.contains("task shop.export runs longer than 30 min"));
    assert!(page.contains("more than 500 messages wait in queue mail"));
}

/// A flash cookie's text.
fn urlencoding_decode(cookie: &str) -> String {
    url::form_urlencoded::parse(format!("x={cookie}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_daily_report_is_read_and_sent_on_schedule() {
    let app = common::app_configured(Duration::from_secs(3600), |c| {
        c.reports.daily = "* * * * *".into();
        c.reports.daily_channel = "ops hook".into();
    })
    .await;
    let _tasks = vigie_server::alerts::start(&app.state);
    let token = admin(&app).await;
    let (url, got) = receiver().await;
    for (id, kind, items) in [
        (
            "m1",
            "mail",
            r#"[{"key": "a", "status": "ok"}, {"key": "b", "status": "ok"}, {"key": "c", "name": "facture_CCT_003", "status": "error", "error": "421 4.7.0 too many messages"}]"#,
        ),
        ("s1", "sync", r#"[{"key": "x", "status": "ok"}]"#),
    ] {
        app.api_post(
            "/api/v1/jobs",
            &token,
            &format!(r#"{{"id": "{id}", "name": "job {id}", "kind": "{kind}"}}"#),
        )
        .await;
        let added = app
            .api_post(
                &format!("/api/v1/jobs/{id}/items"),
                &token,
                &format!(r#"{{"items": {items}}}"#),
            )
            .await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    }
    let report = app.api_get("/api/v1/reports/daily", &token).await.json();
    let mail = report["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "mail")
        .unwrap()
        .clone();
    assert_eq!(
        (mail["ok"].as_i64(), mail["failed"].as_i64()),
        (Some(2), Some(1))
    );
    assert!((mail["success_rate"].as_f64().unwrap() - 66.666).abs() < 0.01);
    assert_eq!(report["last_errors"][0]["item"], "facture_CCT_003");
    assert_eq!(report["running"].as_array().unwrap().len(), 2);
    let text = app
        .api_get("/api/v1/reports/daily?format=text", &token)
        .await
        .body;
    assert!(
        text.contains("- mail: 1 jobs (0 failed or stalled), 2 ok, 1 failed, success 66.7 %"),
        "{text}"
    );
    let bad = app
        .api_get("/api/v1/reports/daily?date=yesterday", &token)
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("not a date"));

    // On schedule ("* * * * *": every minute), to the project's channel of that name.
    app.api_post(
        "/api/v1/alerts/channels",
        &token,
        &format!(
            r#"{{"name": "ops hook", "target": {{"kind": "webhook", "url": "{url}/ok/daily"}}}}"#
        ),
    )
    .await;
    let first = vigie_server::reports::send_daily_if_due(&app.state).await;
    assert_eq!(first.unwrap(), "not due", "the clock starts now");
    // A minute later (the remembered time moved back instead of waiting).
    let store = app.state.store.as_ref();
    store.meta_delete("reports.daily.last_sent").await.unwrap();
    let earlier = (Timestamp::now().millis() - 120_000).to_string();
    store
        .meta_get_or_insert("reports.daily.last_sent", &earlier)
        .await
        .unwrap();
    let sent = vigie_server::reports::send_daily_if_due(&app.state).await;
    assert_eq!(sent.unwrap(), "reports queued: 1");
    let all = wait_for(&got, 1).await;
    let body = &all[0].2;
    assert_eq!(body["rule"], "daily report");
    assert_eq!(body["status"], "report");
    assert!(body["title"]
        .as_str()
        .unwrap()
        .starts_with("Daily report of default for "));
    assert!(body["evidence"].as_str().unwrap().contains("Work by kind"));
    assert_eq!(
        vigie_server::reports::send_daily_if_due(&app.state)
            .await
            .unwrap(),
        "not due",
        "once per scheduled time"
    );
}

/// Waits until `pick` finds `n` messages among those received.
async fn wait_for_rule(got: &Received, rule: &str, n: usize) -> Vec<serde_json::Value> {
    let pick = || -> Vec<serde_json::Value> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(_, _, b)| b["rule"] == rule)
            .map(|(_, _, b)| b.clone())
            .collect()
    };
    for _ in 0..300 {
        if pick().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pick()
}

fn log_line(
    level: vigie_core::Level,
    logger: &str,
    message: &str,
    at: Timestamp,
) -> vigie_core::LogRecord {
    vigie_core::LogRecord {
        time: at.millis() * 1_000_000,
        received: at.millis() * 1_000_000,
        source: "billing".into(),
        level,
        logger: logger.into(),
        message: message.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn threshold_rules_open_remind_and_resolve() {
    let (url, got) = receiver().await;
    // The channel and one rule come from the configuration file, as an operator writes them.
    let config = format!(
        r#"
        [[alerts.channels]]
        project = "default"
        name = "hook"
        kind = "webhook"
        url = "{url}/ok/hook"

        [[alerts.rules]]
        project = "default"
        name = "invoice errors"
        kind = "log_matches"
        query = "level:>=error logger:invoices*"
        above = 2
        window_s = 10
        channels = ["hook"]
        cooldown_s = 0
        "#
    );
    let alerts: vigie_server::config::Config = {
        let mut table: toml::Table = toml::from_str(vigie_server::config::DEFAULT_TOML).unwrap();
        table.extend(toml::from_str::<toml::Table>(&config).unwrap());
        table.try_into().unwrap()
    };
    let redis = std::env::var("VIGIE_TEST_REDIS_URL").ok();
    let app = common::app_configured(Duration::from_secs(3600), |c| {
        c.alerts = alerts.alerts.clone();
        // Queue lengths are read from a Redis database of this test's own.
        if let Some(url) = &redis {
            c.celery.brokers = format!(
                "{}/9",
                url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base)
            );
        }
    })
    .await;
    let applied = vigie_server::alerts::config::apply(&app.state, &app.state.config.alerts)
        .await
        .unwrap();
    assert_eq!(applied, (1, 1));
    let _tasks = vigie_server::alerts::start(&app.state);
    let token = admin(&app).await;
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    let rules = app.api_get("/api/v1/alerts/rules", &token).await.json();
    assert_eq!(rules[0]["from_config"], true);
    let hook_id = rules[0]["channels"][0].as_i64().unwrap();

    // More rules through the API: a job's item error ratio, and slow transactions.
    for body in [
        format!(
            r#"{{"name": "bad items", "rule": {{"kind": "item_errors", "percent": 20}}, "channels": [{hook_id}], "cooldown_s": 0}}"#
        ),
        format!(
            r#"{{"name": "slow pages", "rule": {{"kind": "slow_transactions", "transaction": "GET /invoices*", "p95_ms": 500, "window_s": 10}}, "channels": [{hook_id}], "cooldown_s": 0}}"#
        ),
    ] {
        let made = app.api_post("/api/v1/alerts/rules", &token, &body).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    }
    // Mistakes are refused with the reason.
    let bad = app
        .api_post("/api/v1/alerts/rules", &token, &format!(
                r#"{{"name": "x", "rule": {{"kind": "log_matches", "query": "level:>=", "above": 1, "window_s": 60}}, "channels": [{hook_id}]}}"#
            ))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("the log query"), "{}", bad.body);
    let bad = app
        .api_post("/api/v1/alerts/rules", &token, &format!(
                r#"{{"name": "x", "rule": {{"kind": "error_events", "per_minute": 10}}, "channels": [{hook_id}], "renotify_s": 5}}"#
            ))
        .await;
    assert!(bad.body.contains("re-notify"), "{}", bad.body);

    // Log lines: two matching lines are not more than two; a third is. Warnings, other
    // loggers and an imported line from last week do not count.
    let now = Timestamp::now();
    let week_ago = Timestamp(now.millis() - 7 * 86_400_000);
    use vigie_core::Level;
    let lines = vec![
        log_line(Level::Error, "invoices.render", "KeyError: 'BE'", now),
        log_line(Level::Warning, "invoices.render", "slow template", now),
        log_line(Level::Error, "payments", "card declined", now),
        log_line(Level::Error, "invoices.send", "SMTP 421 4.7.0", week_ago),
        log_line(
            Level::Critical,
            "invoices.send",
            "SMTP 421 4.7.0 rate limit",
            now,
        ),
    ];
    app.server.logs.append(project, lines).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        wait_for_rule(&got, "invoice errors", 0).await.is_empty(),
        "2 lines are not over 2"
    );
    let started = std::time::Instant::now();
    app.server
        .logs
        .append(
            project,
            vec![log_line(
                Level::Error,
                "invoices",
                "PDF failed",
                Timestamp::now(),
            )],
        )
        .await
        .unwrap();
    let fired = wait_for_rule(&got, "invoice errors", 1).await;
    let latency = started.elapsed();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(latency < Duration::from_secs(5), "alert after {latency:?}");
    let body = &fired[0];
    assert_eq!(body["status"], "firing");
    assert!(
        body["title"]
            .as_str()
            .unwrap()
            .starts_with("3 log lines match level:>=error logger:invoices* in 10 s"),
        "{body}"
    );
    let evidence = body["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("PDF failed") && evidence.contains("KeyError"),
        "{evidence}"
    );
    assert!(!evidence.contains("card declined"));
    assert!(
        body["link"]
            .as_str()
            .unwrap()
            .contains("/logs?q=level%3A%3E%3Derror"),
        "{body}"
    );
    // Once the lines leave the window, the condition clears: "resolved".
    let resolved = wait_for_rule(&got, "invoice errors", 2).await;
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    assert_eq!(resolved[1]["status"], "resolved");

    // A job whose items fail: 1 in 10 is fine, 3 in 12 is over 20 %, then it recovers.
    let created = app
        .api_post(
            "/api/v1/jobs",
            &token,
            r#"{"id": "send-1", "name": "send invoices", "total": 100}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for (done, failed) in [(10, 1), (2, 2), (20, 0)] {
        let moved = app
            .api_post(
                "/api/v1/jobs/send-1/progress",
                &token,
                &format!(r#"{{"increment": {done}, "failed_increment": {failed}}}"#),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let items = wait_for_rule(&got, "bad items", 2).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0]["title"],
        "25 % of items failed in send invoices (over 20 %)"
    );
    assert_eq!(items[1]["status"], "resolved");

    // Transactions: fast ones and other names do not count; slow invoice pages do.
    let sample = |name: &str, ms: f64| vigie_server::sentry::TransactionSample {
        name: name.into(),
        time: Timestamp::now(),
        duration_ms: ms,
        failed: false,
    };
    let mut samples: Vec<_> = (0..20)
        .map(|_| sample("GET /invoices/{id}", 900.0))
        .collect();
    samples.extend((0..50).map(|_| sample("GET /health", 2000.0)));
    app.state
        .hub
        .publish(vigie_server::hub::Change::Transactions(Arc::new(
            vigie_server::sentry::TransactionNews { project, samples },
        )));
    let slow = wait_for_rule(&got, "slow pages", 1).await;
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert!(
        slow[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("p95 of GET /invoices* is 9"),
        "{}",
        slow[0]
    );

    // A Celery worker whose heartbeats stopped: offline, then back.
    let made = app
        .api_post("/api/v1/alerts/rules", &token, &format!(
                r#"{{"name": "workers", "rule": {{"kind": "worker_offline"}}, "channels": [{hook_id}], "cooldown_s": 0}}"#
            ))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let beat = |at: Timestamp| vigie_store::CeleryNews::Worker {
        hostname: "celery@w1".into(),
        kind: "worker-heartbeat".into(),
        at,
        fields: serde_json::from_str(r#"{"freq": 2.0, "processed": 12}"#).unwrap(),
    };
    let heartbeat = |at: Timestamp| {
        let state = app.state.clone();
        async move {
            state
                .store
                .apply_celery(project, vec![beat(at)])
                .await
                .unwrap();
            state.hub.publish(vigie_server::hub::Change::Celery(
                project,
                Arc::new(Vec::new()),
            ));
        }
    };
    heartbeat(Timestamp(Timestamp::now().millis() - 10_000)).await;
    let offline = wait_for_rule(&got, "workers", 1).await;
    assert_eq!(offline.len(), 1, "{offline:?}");
    assert_eq!(offline[0]["title"], "Celery worker celery@w1 is offline");
    heartbeat(Timestamp::now()).await;
    let back = wait_for_rule(&got, "workers", 2).await;
    assert_eq!(back[1]["status"], "resolved", "{back:?}");

    // Celery tasks: a failure rate over a window, a task running too long, a queue backing up.
    let rule = |body: &str| {
        let body = body.replace("HOOK", &hook_id.to_string());
        let (app, token) = (&app, &token);
        async move {
            let made = app.api_post("/api/v1/alerts/rules", token, &body).await;
            assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        }
    };
    rule(r#"{"name": "task failures", "rule": {"kind": "task_failures", "task": "shop.*", "percent": 20, "window_s": 60}, "channels": [HOOK], "cooldown_s": 0}"#).await;
    rule(r#"{"name": "long tasks", "rule": {"kind": "task_runtime", "above_s": 1}, "channels": [HOOK], "cooldown_s": 0}"#).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the engine loads the rules
    use vigie_server::hub::{OutcomeKind, TaskOutcome};
    let outcome = |uuid: &str, name: &str, kind: OutcomeKind, at: Timestamp| TaskOutcome {
        uuid: uuid.into(),
        name: Some(name.into()),
        at,
        kind,
    };
    let now = Timestamp::now();
    let mut outcomes: Vec<TaskOutcome> = (0..10)
        .map(|i| {
            let kind = if i < 3 {
                OutcomeKind::Failed { runtime: Some(0.1) }
            } else {
                OutcomeKind::Succeeded { runtime: Some(0.1) }
            };
            outcome(&format!("t{i}"), "shop.send", kind, now)
        })
        .collect();
    // Another app's failures are not counted.
    outcomes.extend((0..10).map(|i| {
        outcome(
            &format!("o{i}"),
            "other.sync",
            OutcomeKind::Failed { runtime: None },
            now,
        )
    }));
    outcomes.push(outcome(
        "long-1",
        "shop.export",
        OutcomeKind::Started,
        Timestamp(now.millis() - 5_000),
    ));
    let publish = |outcomes: Vec<TaskOutcome>| {
        app.state.hub.publish(vigie_server::hub::Change::Celery(
            project,
            Arc::new(outcomes),
        ))
    };
    publish(outcomes);
    let failing = wait_for_rule(&got, "task failures", 1).await;
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert!(
        failing[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("30 % of shop.* failed"),
        "{}",
        failing[0]
    );
    let long = wait_for_rule(&got, "long tasks", 1).await;
    assert!(
        long[0]["title"].as_str().unwrap().contains("shop.export"),
        "{}",
        long[0]
    );
    publish(vec![outcome(
        "long-1",
        "shop.export",
        OutcomeKind::Succeeded { runtime: Some(6.0) },
        Timestamp::now(),
    )]);
    let ended = wait_for_rule(&got, "long tasks", 2).await;
    assert_eq!(ended[1]["status"], "resolved", "{ended:?}");

    let Some(redis) = redis else {
        eprintln!("queue_length skipped: VIGIE_TEST_REDIS_URL is not set");
        return;
    };
    let mut url = vigie_server::celery::redis::RedisUrl::parse(&redis).unwrap();
    url.db = 9;
    let mut broker = vigie_server::celery::redis::Connection::open(&url)
        .await
        .unwrap();
    let queue = "vigie-test-alerts-mail";
    let command = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    broker.command(&command(&["DEL", queue])).await.unwrap();
    app.state
        .store
        .apply_celery(
            project,
            vec![vigie_store::CeleryNews::Task {
                uuid: "q-1".into(),
                kind: "task-sent".into(),
                hostname: "gen1@web".into(),
                at: Timestamp::now(),
                fields: serde_json::from_str(&format!(
                    r#"{{"name": "shop.send", "queue": "{queue}"}}"#
                ))
                .unwrap(),
            }],
        )
        .await
        .unwrap();
    for _ in 0..3 {
        broker
            .command(&command(&["RPUSH", queue, "{}"]))
            .await
            .unwrap();
    }
    rule(&format!(r#"{{"name": "queue", "rule": {{"kind": "queue_length", "queue": "{queue}", "above": 2}}, "channels": [HOOK], "cooldown_s": 0}}"#)).await;
    let backed_up = wait_for_rule(&got, "queue", 1).await;
    broker.command(&command(&["DEL", queue])).await.unwrap();
    assert_eq!(backed_up.len(), 1, "{backed_up:?}");
    assert_eq!(
        backed_up[0]["title"],
        format!("3 messages wait in Celery queue {queue} (over 2)")
    );
    let drained = wait_for_rule(&got, "queue", 2).await;
    assert_eq!(drained[1]["status"], "resolved", "{drained:?}");
}
