//! Releases against the real router: what `sentry-cli releases new`, `finalize`, `list`,
//! `info` and `deploys new` send, answered as the CLI reads it; bad calls refused with a
//! `detail` it prints; and the Releases page (and its JSON) putting a declared release beside
//! its events, new issues and crash-free sessions.

mod common;

use axum::http::{Method, StatusCode};
use common::{app, project_key, App};
use serde_json::{json, Value};

async fn call(
    app: &App,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let body = (method != Method::GET).then(|| body.to_string());
    let answer = app.api(method, path, token, body.as_deref()).await;
    let json = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, json)
}

const RELEASES: &str = "/api/0/organizations/acme/releases/";

#[tokio::test]
async fn sentry_cli_declares_finalizes_and_deploys_a_release() {
    let app = app().await;
    let token = app.admin_token().await;

    // releases new, twice (a retried CI step): one release.
    for _ in 0..2 {
        let (status, created) = call(
            &app,
            Method::POST,
            RELEASES,
            &token,
            json!({"version": "shop@2.0.0", "projects": ["default"]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["version"], "shop@2.0.0");
        assert_eq!(created["projects"][0]["slug"], "default");
        assert!(created["dateReleased"].is_null());
    }
    // Refused as the CLI prints it.
    let (status, bad) = call(
        &app,
        Method::POST,
        RELEASES,
        &token,
        json!({"version": "a/b", "projects": ["default"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad["detail"].as_str().unwrap().contains("version"), "{bad}");
    let (status, bad) = call(
        &app,
        Method::POST,
        RELEASES,
        &token,
        json!({"version": "x", "projects": ["nope"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["detail"].as_str().unwrap().contains("nope"), "{bad}");
    let (status, missing) = call(
        &app,
        Method::GET,
        &format!("{RELEASES}shop@9/"),
        &token,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["detail"], "Release not found");

    // finalize; set-commits is refused, changing nothing.
    let (status, done) = call(
        &app,
        Method::PUT,
        &format!("{RELEASES}shop@2.0.0/"),
        &token,
        json!({"dateReleased": "2026-11-24T10:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let released = vigie_core::Timestamp::parse_rfc3339(done["dateReleased"].as_str().unwrap());
    assert_eq!(
        released,
        vigie_core::Timestamp::parse_rfc3339("2026-11-24T10:00:00Z")
    );
    // `sentry-cli releases info` reads it back as finalized.
    let (status, info) = call(
        &app,
        Method::GET,
        &format!("{RELEASES}shop@2.0.0/"),
        &token,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["version"], "shop@2.0.0");
    assert_eq!(info["dateReleased"], done["dateReleased"]);
    let (status, commits) = call(
        &app,
        Method::PUT,
        &format!("{RELEASES}shop@2.0.0/"),
        &token,
        json!({"refs": [{"repository": "shop", "commit": "abc"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(commits["detail"].as_str().unwrap().contains("commits"));
    let (status, _) = call(
        &app,
        Method::PUT,
        &format!("{RELEASES}shop@2.0.0/"),
        &token,
        json!({"dateReleased": "yesterday"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // sentry-cli 2.x (the bundler plugins' own) names one project in the path.
    let project_level = "/api/0/projects/acme/default/releases/";
    let (status, created) = call(
        &app,
        Method::POST,
        project_level,
        &token,
        json!({"version": "shop@2.1.0", "projects": ["default"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let one = format!("{project_level}shop@2.1.0/");
    let (status, info) = call(&app, Method::GET, &one, &token, Value::Null).await;
    assert_eq!(
        (status, info["version"].as_str()),
        (StatusCode::OK, Some("shop@2.1.0"))
    );
    let (status, _) = call(
        &app,
        Method::PUT,
        &one,
        &token,
        json!({"dateReleased": "soon"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, done) = call(
        &app,
        Method::PUT,
        &one,
        &token,
        json!({"dateReleased": "2026-11-24T11:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["dateReleased"].is_string());

    // deploys new and list; a deploy of an undeclared release is "Release not found".
    let deploys = format!("{RELEASES}shop@2.0.0/deploys/");
    let (status, deploy) = call(
        &app,
        Method::POST,
        &deploys,
        &token,
        json!({"environment": "production", "name": "Deploy <7>"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{deploy}");
    assert_eq!(deploy["environment"], "production");
    let (status, empty_env) = call(
        &app,
        Method::POST,
        &deploys,
        &token,
        json!({"environment": ""}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{empty_env}");
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("{RELEASES}shop@9/deploys/"),
        &token,
        json!({"environment": "production"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = call(&app, Method::GET, &deploys, &token, Value::Null).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (_, all) = call(&app, Method::GET, RELEASES, &token, Value::Null).await;
    let versions: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["shop@2.1.0", "shop@2.0.0"], "newest first");
    let (_, of_project) = call(
        &app,
        Method::GET,
        "/api/0/projects/acme/default/releases/",
        &token,
        Value::Null,
    )
    .await;
    assert_eq!(of_project.as_array().unwrap().len(), 2);

    // Events and sessions of the release, and one of a release nobody declared.
    let key = project_key(&app).await;
    let now = vigie_core::Timestamp::now().to_rfc3339();
    let envelope = format!(
        "{{}}\n{{\"type\":\"event\"}}\n{{\"release\":\"shop@2.0.0\",\"exception\":{{\"values\":[{{\"type\":\"KeyError\",\"value\":\"sku\"}}]}}}}\n\
         {{\"type\":\"event\"}}\n{{\"release\":\"shop@1.9.0\",\"message\":\"old build\"}}\n\
         {{\"type\":\"sessions\"}}\n{{\"attrs\":{{\"release\":\"shop@2.0.0\"}},\"aggregates\":[{{\"started\":\"{now}\",\"exited\":19,\"crashed\":1}}]}}\n"
    );
    let sent = app.envelope(&key, envelope).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let mut rows = Value::Null;
    for _ in 0..100 {
        rows = app.api_get("/api/v1/releases", &token).await.json();
        if rows.as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["events"] == 1 && r["version"] == "shop@2.0.0")
        }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let declared = rows.iter().find(|r| r["version"] == "shop@2.0.0").unwrap();
    assert_eq!(declared["events"], 1);
    assert_eq!(declared["new_issues"], 1);
    assert_eq!(declared["sessions"], 20);
    assert_eq!(declared["crash_free"], 0.95);
    assert_eq!(declared["deploys"][0]["environment"], "production");
    let seen = rows.iter().find(|r| r["version"] == "shop@1.9.0").unwrap();
    assert!(seen["created_at"].is_null(), "only events name it: {seen}");

    // The page shows both, escaped, each linking its issues.
    let session = app.setup_admin().await;
    let page = app.get("/releases", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"releases\""), "{}", page.body);
    assert!(page.body.contains("shop@2.0.0") && page.body.contains("shop@1.9.0"));
    assert!(page.body.contains("95.0 %"), "{}", page.body);
    assert!(
        page.body.contains("Deploy &lt;7&gt;"),
        "escaped: {}",
        page.body
    );
    assert!(
        page.body
            .contains("/issues?query=release%3A%22shop%402.0.0%22"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn an_empty_releases_page_says_how_to_declare_one() {
    let app = app().await;
    let session = app.setup_admin().await;
    let page = app.get("/releases", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No releases yet"));
    assert!(page.body.contains("sentry-cli releases new"));
    let anonymous = app.api_post(RELEASES, "nope", "{}").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.json()["detail"].is_string());
}

/// Sends one envelope to the default project.
async fn send_envelope(app: &App, envelope: String) {
    let key = project_key(app).await;
    let sent = app.envelope(&key, envelope).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
}

/// A browser session's last update, as @sentry/browser sends it (`did` when a user is set).
fn session_item(release: &str, did: Option<&str>, status: &str) -> String {
    let now = vigie_core::Timestamp::now().to_rfc3339();
    let mut session = json!({"sid": uuid_like(), "init": true, "status": status, "started": now,
        "timestamp": now, "errors": i32::from(status == "crashed"), "attrs": {"release": release}});
    if let Some(did) = did {
        session["did"] = json!(did);
    }
    format!("{{\"type\":\"session\"}}\n{session}\n")
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn error_item(release: &str) -> String {
    format!(
        "{{\"type\":\"event\"}}\n{}\n",
        json!({"release": release, "exception": {"values": [{"type": "PaymentDeclined", "value": "card"}]}})
    )
}

#[tokio::test]
async fn crash_free_users_regressions_and_a_release_page() {
    let app = app().await;
    let token = app.admin_token().await;
    let session = app.setup_admin().await;
    // Release 1.0: four sessions, one crashed; three people, Ada's session crashed (the
    // anonymous one counts for sessions only). Its error opens an issue.
    let mut envelope = String::from("{}\n");
    for (did, status) in [
        (Some("ada"), "crashed"),
        (Some("bob"), "exited"),
        (Some("Bob"), "exited"),
        (None, "exited"),
    ] {
        envelope.push_str(&session_item("web@1.0", did, status));
    }
    envelope.push_str(&error_item("web@1.0"));
    send_envelope(&app, envelope).await;
    let row = |rows: &Value, version: &str| {
        rows.as_array()
            .and_then(|r| r.iter().find(|r| r["version"] == version).cloned())
            .unwrap_or(Value::Null)
    };
    let releases = || async { app.api_get("/api/v1/releases", &token).await.json() };
    common::eventually("the release's sessions and error are stored", || async {
        let rows = releases().await;
        row(&rows, "web@1.0")["events"] == 1 && row(&rows, "web@1.0")["sessions"] == 4
    })
    .await;
    let first = row(&releases().await, "web@1.0");
    assert_eq!(first["crash_free"], 0.75, "{first}");
    assert_eq!(
        first["users"], 3,
        "Bob and bob are two people, as sent: {first}"
    );
    assert_eq!(first["crash_free_users"], 1.0 - 1.0 / 3.0);

    // Resolved, the issue comes back with the next release: a regression of that release.
    let issue = app.api_get("/api/v1/issues", &token).await.json()["issues"][0]["id"]
        .as_i64()
        .unwrap();
    let resolved = app
        .api_post(
            &format!("/api/v1/issues/{issue}/status"),
            &token,
            r#"{"action": "resolve"}"#,
        )
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    let next = "web@1.1<b>";
    send_envelope(&app, format!("{{}}\n{}", error_item(next))).await;
    common::eventually("the regression is counted", || async {
        row(&releases().await, next)["regressions"] == 1
    })
    .await;
    assert_eq!(row(&releases().await, next)["new_issues"], 0);

    // The list: both releases, each linking its page, and the crash-free chart.
    let list = app.get("/releases", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("id=\"crash-free-chart\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("href=\"/releases/web%401.0\""));
    assert!(list.body.contains("href=\"/releases/web%401.1%3Cb%3E\""));
    assert!(list.body.contains("66.7 %"), "{}", list.body);

    // The release's page: its figures, a bar per day, its new issue and its deploys.
    let page = app.get("/releases/web%401.0", &session).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("id=\"crash-free-sessions\">75.0 %"), "{body}");
    assert!(body.contains("id=\"crash-free-users\">66.7 %"), "{body}");
    assert!(body.contains("4 sessions, 75.0 % crash-free"), "{body}");
    let new_issues = &body[body.find("id=\"new-issues\"").unwrap()..];
    assert!(new_issues.contains(&format!("href=\"/issues/{issue}\"")));
    assert!(body.contains("id=\"deploys\""));
    // The next release's page lists the issue it brought back, its version escaped.
    let page = app.get("/releases/web%401.1%3Cb%3E", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("web@1.1&lt;b&gt;"), "{}", page.body);
    assert!(!page.body.contains("web@1.1<b>"));
    let regressed = &page.body[page.body.find("id=\"regressed-issues\"").unwrap()..];
    assert!(regressed.contains(&format!("href=\"/issues/{issue}\"")));
    assert!(page.body.contains("No sessions from this release"));
    assert_eq!(
        app.get("/releases/nope", &session).await.status,
        StatusCode::NOT_FOUND
    );

    // The issue's page links the releases it was first and last seen in, and its regression.
    let issue_page = app.get(&format!("/issues/{issue}"), &session).await;
    let body = &issue_page.body;
    assert!(
        body.contains("id=\"first-release\" class=\"mono\" href=\"/releases/web%401.0\""),
        "{body}"
    );
    assert!(body.contains("id=\"last-release\" class=\"mono\" href=\"/releases/web%401.1%3Cb%3E\""));
    let regressions = &body[body.find("id=\"regressions\"").unwrap()..];
    assert!(regressions.contains("web@1.1&lt;b&gt;"), "{regressions}");
}

/// Aggregated sessions of `release` this hour, as server-mode SDKs send them.
fn sessions_item(release: &str, exited: u32, crashed: u32) -> String {
    let now = vigie_core::Timestamp::now().to_rfc3339();
    format!(
        "{{\"type\":\"sessions\"}}\n{}\n",
        json!({"attrs": {"release": release}, "aggregates": [{"started": now, "exited": exited, "crashed": crashed}]})
    )
}

#[tokio::test]
async fn a_release_crashing_more_than_allowed_alerts_once_then_resolves() {
    let app = app().await;
    let _tasks = vigie_server::alerts::start(&app.state);
    let token = app.admin_token().await;
    let (url, got) = common::webhook_receiver().await;
    let hook_id = app
        .webhook_channel(&token, "ops", &format!("{url}/hook"))
        .await;
    let rule = |below: &str, window_s: u64| {
        format!(
            r#"{{"name": "crashes", "rule": {{"kind": "crash_free_sessions", "below": {below}, "window_s": {window_s}}}, "channels": [{hook_id}]}}"#
        )
    };
    // Sessions are kept per hour: a shorter window is refused, as is a rate of 100 %.
    for (below, window_s) in [("99", 600), ("100", 3600)] {
        let refused = app
            .api_post("/api/v1/alerts/rules", &token, &rule(below, window_s))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
    }
    let made = app
        .api_post("/api/v1/alerts/rules", &token, &rule("99", 3600))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);

    // 2.0 crashes in 3 sessions of 30 (90 %); 1.9 never does; 0.1 crashes always, but in too
    // few sessions to judge.
    send_envelope(
        &app,
        format!(
            "{{}}\n{}{}{}",
            sessions_item("web@2.0", 27, 3),
            sessions_item("web@1.9", 30, 0),
            sessions_item("web@0.1", 0, 5)
        ),
    )
    .await;
    // Release health is read every 10 s.
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    common::eventually("the alert is delivered", || {
        let got = got.clone();
        async move { !got.lock().unwrap().is_empty() }
    })
    .await;
    // Still below on the next readings: no second message.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    {
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["status"], "firing");
        let title = got[0]["title"].as_str().unwrap();
        assert!(
            title.contains("web@2.0") && title.contains("90.00 %"),
            "{title}"
        );
        assert!(got[0]["link"]
            .as_str()
            .unwrap()
            .ends_with("/releases/web%402.0"));
    }

    // 300 good sessions later it is back above 99 %: resolved, once.
    send_envelope(&app, format!("{{}}\n{}", sessions_item("web@2.0", 300, 0))).await;
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    common::eventually("the alert is resolved", || {
        let got = got.clone();
        async move { got.lock().unwrap().len() >= 2 }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["status"], "resolved");
    assert!(got[1]["link"]
        .as_str()
        .unwrap()
        .ends_with("/releases/web%402.0"));
}
