//! Monitors through the router: Sentry check-ins with their monitor_config, ping URLs, the
//! API, the periodic check, runs mirrored as Jobs, and the pages.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{app, project_key, Answer, App};
use vigie_core::monitor::RunStatus;
use vigie_core::{Scope, Timestamp};
use vigie_server::accounts::manage;
use vigie_store::CheckInReport;

async fn admin(app: &App) -> String {
    let (_, token) = manage::create_token(app.state.store.as_ref(), "ops", Scope::Admin)
        .await
        .unwrap();
    token
}

async fn ping(app: &App, path: &str, body: &str) -> Answer {
    let req = if body.is_empty() {
        Request::get(path).body(Body::empty())
    } else {
        Request::post(path).body(Body::from(body.to_string()))
    };
    app.send(req.unwrap()).await
}

fn envelope_check_in(id: &str, status: &str, config: &str) -> String {
    format!(
        "{{}}\n{{\"type\":\"check_in\"}}\n{{\"check_in_id\":\"{id}\",\"monitor_slug\":\"nightly-invoices\",\
         \"status\":\"{status}\",\"duration\":2.5,\"environment\":\"production\"{config}}}\n"
    )
}

#[tokio::test]
async fn sdk_check_ins_make_a_monitor_whose_runs_are_jobs() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let auth = format!("Sentry sentry_version=7, sentry_key={key}");
    let config = r#","monitor_config":{"schedule":{"type":"crontab","value":"0 3 * * *"},"checkin_margin":5,"max_runtime":60,"timezone":"Europe/Paris"}"#;
    for (status, config) in [("in_progress", config), ("ok", "")] {
        let sent = app
            .send(
                Request::post("/api/1/envelope/")
                    .header("x-sentry-auth", &auth)
                    .body(Body::from(envelope_check_in("c0ffee", status, config)))
                    .unwrap(),
            )
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    }
    let list = app.api_get("/api/v1/monitors", &token).await.json();
    let m = &list[0];
    assert_eq!(m["slug"], "nightly-invoices");
    assert_eq!(m["state"], "up");
    assert_eq!(m["schedule"], "0 3 * * * (Europe/Paris)");
    assert_eq!(m["checkin_margin_min"], 5);
    assert_eq!(m["recent_runs"][0]["status"], "ok");
    assert_eq!(m["recent_runs"][0]["duration_ms"], 2500.0);
    let job_id = m["recent_runs"][0]["job_id"].as_str().unwrap().to_string();
    let job = app
        .api_get(&format!("/api/v1/jobs/{job_id}"), &token)
        .await
        .json();
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["kind"], "monitor");
    assert_eq!(job["name"], "nightly-invoices");

    // A bad monitor_config is refused with the reason; the rest of the envelope is not lost.
    let bad = app
        .send(
            Request::post("/api/1/envelope/")
                .header("x-sentry-auth", &auth)
                .body(Body::from(envelope_check_in(
                    "bad",
                    "ok",
                    r#","monitor_config":{"schedule":{"type":"crontab","value":"61 * * * *"}}"#,
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("61 is outside 0–59"), "{}", bad.body);

    // An interval does not depend on a time zone: its form does not claim one (it said UTC
    // for a monitor the SDK configured in Europe/Paris).
    let interval = r#","monitor_config":{"schedule":{"type":"interval","value":10,"unit":"minute"},"timezone":"Europe/Paris"}"#;
    let sent = app
        .send(
            Request::post("/api/1/envelope/")
                .header("x-sentry-auth", &auth)
                .body(Body::from(envelope_check_in("c0ffee2", "ok", interval)))
                .unwrap(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let session = app.setup_admin().await;
    let page = app.get("/monitors/nightly-invoices", &session).await.body;
    assert!(page.contains("value=\"every 10 minutes\""), "{page}");
    assert!(
        page.contains("<input name=\"timezone\" value=\"\""),
        "{page}"
    );
}

#[tokio::test]
async fn ping_urls_record_runs_with_their_output() {
    let app = app().await;
    let key = project_key(&app).await;
    let token = admin(&app).await;
    let base = format!("/ping/{key}/backup");

    let started = ping(&app, &format!("{base}/start"), "").await;
    assert_eq!(
        (started.status, started.body.as_str()),
        (StatusCode::OK, "OK\n")
    );
    let failed = ping(
        &app,
        &format!("{base}/2"),
        "copying…\n<script>disk full</script>\n",
    )
    .await;
    assert_eq!(failed.status, StatusCode::OK);
    ping(&app, &base, "").await;
    ping(&app, &format!("{base}/fail?env=staging"), "").await;
    ping(&app, &format!("{base}/0"), "").await;

    let shown = app.api_get("/api/v1/monitors/backup", &token).await.json();
    let statuses: Vec<&str> = shown["recent_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "error", "ok", "error"], "newest first");
    let first = &shown["recent_runs"][3];
    assert!(first["output"].as_str().unwrap().contains("disk full"));
    assert_eq!(shown["recent_runs"][1]["environment"], "staging");
    assert_eq!(shown["schedule"], serde_json::Value::Null);

    // Mistakes say what to do.
    let wrong_key = ping(&app, "/ping/0123456789abcdef0123456789abcdef/backup", "").await;
    assert_eq!(wrong_key.status, StatusCode::NOT_FOUND);
    assert!(wrong_key.body.contains("no project has this key"));
    let wrong_signal = ping(&app, &format!("{base}/finish"), "").await;
    assert_eq!(wrong_signal.status, StatusCode::NOT_FOUND);
    assert!(wrong_signal.body.contains("/start, /fail or an exit code"));
    let wrong_slug = ping(&app, &format!("/ping/{key}/no%20spaces"), "").await;
    assert!(
        wrong_slug.body.contains("not a monitor slug"),
        "{}",
        wrong_slug.body
    );
    assert_eq!(
        wrong_slug.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong_slug.body
    );

    // The page escapes what a script sent.
    let session = app.setup_admin().await;
    let page = app.get("/monitors/backup", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("&lt;script&gt;disk full"));
    assert!(!page.body.contains("<script>disk full"));
    assert!(page.body.contains(&format!("/ping/{key}/backup/start")));

    // A slug with a hyphen reads as typed in its ping URL and links.
    ping(&app, &format!("/ping/{key}/sync-stock"), "").await;
    let page = app.get("/monitors/sync-stock", &session).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(&format!("/ping/{key}/sync-stock")),
        "{}",
        page.body
    );
    assert!(!page.body.contains("sync%2Dstock"));
}

#[tokio::test]
async fn schedules_missed_runs_pause_and_delete() {
    let app = app().await;
    let token = admin(&app).await;
    // A wrong schedule is refused at save time, with the reason.
    for (body, reason) in [
        (
            r#"{"schedule": {"type": "crontab", "value": "0 25 * * *"}}"#,
            "hour",
        ),
        (
            r#"{"schedule": {"type": "crontab", "value": "0 3 * * *"}, "timezone": "Mars/Base"}"#,
            "unknown time zone",
        ),
        (r#"not json"#, "not JSON"),
    ] {
        let refused = app
            .api(
                Method::PUT,
                "/api/v1/monitors/heartbeat",
                &token,
                Some(body),
            )
            .await;
        assert!(refused.status.is_client_error(), "{}", refused.body);
        assert!(refused.body.contains(reason), "{}", refused.body);
    }
    let set = app
        .api(
            Method::PUT,
            "/api/v1/monitors/heartbeat",
            &token,
            Some(r#"{"schedule": {"type": "interval", "value": 5, "unit": "minute"}, "checkin_margin": 1}"#),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["schedule"], "every 5 minutes");

    // Its last check-in was ten minutes ago: the periodic check finds the run missed, and the
    // run's job failed with the reason.
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    let long_ago = Timestamp(Timestamp::now().millis() - 10 * 60_000);
    app.state
        .store
        .record_check_in(
            project,
            &CheckInReport {
                slug: "heartbeat".into(),
                check_in_id: None,
                status: RunStatus::Ok,
                duration_ms: None,
                environment: None,
                output: None,
                config: None,
                at: long_ago,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        vigie_server::monitors::check(&app.state).await.unwrap(),
        "runs missed or timed out: 1"
    );
    let shown = app
        .api_get("/api/v1/monitors/heartbeat", &token)
        .await
        .json();
    assert_eq!(shown["state"], "down");
    assert_eq!(shown["recent_runs"][0]["status"], "missed");
    let job_id = shown["recent_runs"][0]["job_id"].as_str().unwrap();
    let job = app
        .api_get(&format!("/api/v1/jobs/{job_id}"), &token)
        .await
        .json();
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job.to_string().contains("missed: no check-in within 1 min"),
        "{job}"
    );

    // The pages, and the admin forms (CSRF-protected like every form).
    let session = app.setup_admin().await;
    let csrf = app.session_csrf(&session).await;
    let list = app.get("/monitors", &session).await;
    assert!(list.body.contains("heartbeat") && list.body.contains("run-strip"));
    assert!(list.body.contains("badge failed"), "down shows red");
    let bad = app
        .post_form(
            "/monitors/heartbeat/schedule",
            &session,
            &[("csrf", &csrf), ("schedule", "every fortnight")],
        )
        .await;
    assert!(bad.cookie("vigie_flash").unwrap().starts_with("error:"));
    let saved = app
        .post_form(
            "/monitors/heartbeat/schedule",
            &session,
            &[
                ("csrf", &csrf),
                ("schedule", "*/10 * * * *"),
                ("timezone", "Europe/Paris"),
                ("checkin_margin", "3"),
                ("max_runtime", ""),
            ],
        )
        .await;
    assert!(
        saved.cookie("vigie_flash").unwrap().starts_with("ok:"),
        "{:?}",
        saved.cookie("vigie_flash")
    );
    let paused = app
        .post_form(
            "/monitors/heartbeat/pause",
            &session,
            &[("csrf", &csrf), ("action", "pause")],
        )
        .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    let shown = app
        .api_get("/api/v1/monitors/heartbeat", &token)
        .await
        .json();
    assert_eq!(shown["state"], "paused");
    assert_eq!(shown["schedule"], "*/10 * * * * (Europe/Paris)");
    assert_eq!(shown["checkin_margin_min"], 3);
    let pulse = app.get("/live/monitors?project=1", &session).await;
    assert_eq!(pulse.json()["monitors"][0][1], "paused");

    let deleted = app
        .api(Method::DELETE, "/api/v1/monitors/heartbeat", &token, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app.api_get("/api/v1/monitors/heartbeat", &token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_dashboard_shows_the_day() {
    let app = app().await;
    let token = admin(&app).await;
    let session = app.setup_admin().await;
    let fresh = app.get("/", &session).await;
    assert!(
        fresh.body.contains("id=\"getting-started\""),
        "a new project shows how to start"
    );
    assert!(!fresh.body.contains("Items ok · 24 h"));

    let created = app
        .api_post(
            "/api/v1/jobs",
            &token,
            r#"{"id": "send-1", "name": "send <invoices>", "kind": "mail", "total": 10}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let items = app
        .api_post("/api/v1/jobs/send-1/items", &token, r#"{"items": [{"key": "a", "status": "ok"}, {"key": "b", "status": "ok"}, {"key": "c", "status": "error", "error": "421"}]}"#)
        .await;
    assert_eq!(items.status, StatusCode::OK, "{}", items.body);
    let key = project_key(&app).await;
    ping(&app, &format!("/ping/{key}/backup/fail"), "").await;
    let envelope = "{}\n{\"type\":\"event\"}\n{\"message\":\"SMTP 421\",\"level\":\"error\"}\n";
    assert_eq!(app.envelope(&key, envelope).await.status, StatusCode::OK);

    let page = app.get("/", &session).await.body;
    assert!(page.contains("1 new issue<"), "one, in the singular");
    assert!(page.contains("0 transactions<"));
    assert!(!page.contains("id=\"getting-started\""));
    assert!(page.contains("Items ok · 24 h"));
    assert!(page.contains("send &lt;invoices&gt;"), "running, escaped");
    assert!(page.contains("success 66.7 %"), "2 ok of 3");
    assert!(page.contains("0 late, 1 down"));
    assert_eq!(
        page.matches("<span>24 h ago</span><span>now</span>")
            .count(),
        2,
        "both day charts say where their hours start and end"
    );
    let pulse = app.get("/live/dashboard?project=1", &session).await;
    assert!(pulse.json().is_i64());
}
