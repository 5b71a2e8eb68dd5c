//! Handler tests against the real router, on a real SQLite store in a temporary directory:
//! setup, login, roles, CSRF, API tokens, body limits, error shapes, headers.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use std::time::Duration;
use tower::ServiceExt;
use vigie_core::{Role, Scope};
use vigie_server::accounts::manage;

mod common;

use common::{app, app_with, project_key, App};

#[tokio::test]
async fn anonymous_visitors_are_sent_to_login_and_api_says_401() {
    let app = app().await;
    for path in [
        "/",
        "/jobs",
        "/logs",
        "/issues",
        "/performance",
        "/monitors",
        "/alerts",
        "/system",
        "/settings/projects",
        "/settings/users",
        "/settings/tokens",
        "/settings/sourcemaps",
    ] {
        let answer = app.get(path, "").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert!(answer.location().starts_with("/login?next="), "{path}");
    }
    for path in [
        "/api/v1/projects",
        "/api/v1/users",
        "/api/v1/tokens",
        "/live/system",
    ] {
        let answer = app.get(path, "").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.json()["error"]["code"], "unauthorized");
        assert!(answer.headers.contains_key(header::WWW_AUTHENTICATE));
    }
    let login = app.get("/login", "").await;
    assert!(
        login.body.contains("No account exists yet"),
        "{}",
        login.body
    );
}

#[tokio::test]
async fn the_base_url_remembered_is_the_last_one_announced() {
    // Announced again unchanged (a restart: nothing written), changed, and changed back.
    let app = app().await;
    let store = app.state.store.as_ref();
    assert_eq!(manage::remembered_base_url(store).await.unwrap(), None);
    for url in [
        "http://127.0.0.1:8610",
        "http://127.0.0.1:8610",
        "https://vigie.example.com",
        "http://127.0.0.1:8610",
    ] {
        let start = manage::Start {
            base_url: Some(url),
            own_project: None,
        };
        manage::bootstrap(store, start).await.unwrap();
        let remembered = manage::remembered_base_url(store).await.unwrap();
        assert_eq!(remembered.as_deref(), Some(url));
    }
}

#[tokio::test]
async fn first_run_setup_works_once() {
    let app = app().await;
    let wrong = app.get("/setup?token=nope", "").await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("setup link is not valid"));

    // A mistyped confirmation is shown back, nothing is created.
    let page = app
        .get(&format!("/setup?token={}", app.setup_token), "")
        .await;
    let cookie = format!("vigie_csrf={}", page.cookie("vigie_csrf").unwrap());
    let differ = app
        .post_form(
            "/setup",
            &cookie,
            &[
                ("csrf", &page.csrf_field()),
                ("token", &app.setup_token),
                ("username", "alice"),
                ("password", "correct horse"),
                ("confirm", "correct horsf"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(differ.body.contains("The two passwords differ"));
    assert_eq!(app.state.store.count_users().await.unwrap(), 0);

    let session = app.setup_admin().await;
    let dashboard = app.get("/", &session).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("sentry_sdk.init("));
    let key = app.state.store.list_projects().await.unwrap()[0]
        .public_key
        .clone();
    assert!(dashboard
        .body
        .contains(&format!("http://{key}@127.0.0.1:8610/1")));

    // Setup is over: the link now leads to login, and the token no longer creates accounts.
    let again = app
        .get(&format!("/setup?token={}", app.setup_token), "")
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location(), "/login");
    let err = manage::create_first_admin(
        app.state.store.as_ref(),
        &app.setup_token,
        "mallory",
        "whatever123",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, manage::ManageError::SetupLinkInvalid),
        "{err}"
    );
    assert_eq!(
        vigie_server::http::AppError::from(err).status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn wrong_passwords_are_slowed_down_and_logout_ends_the_session() {
    let app = app().await;
    app.setup_admin().await;

    let wrong = app.login("alice", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong username or password"));
    assert!(wrong.cookie("vigie_session").is_none());

    let hurried = app.login("alice", "correct horse").await;
    assert_eq!(hurried.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(hurried.body.contains("Too many failed attempts"));
    assert_eq!(hurried.headers[header::RETRY_AFTER], "1");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ok = app.login("ALICE", "correct horse").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let set_cookie = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("vigie_session="))
        .unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let session = format!("vigie_session={}", ok.cookie("vigie_session").unwrap());
    assert_eq!(app.get("/", &session).await.status, StatusCode::OK);

    let csrf = app.session_csrf(&session).await;
    let out = app.post_form("/logout", &session, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get("/", &session).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn unknown_users_get_the_same_answer() {
    let app = app().await;
    app.setup_admin().await;
    let answer = app.login("nobody", "whatever123").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.body.contains("Wrong username or password"));
}

#[tokio::test]
async fn sessions_expire() {
    let app = app_with(Duration::from_secs(1)).await;
    let session = app.setup_admin().await;
    assert_eq!(app.get("/", &session).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/", &session).await.status, StatusCode::SEE_OTHER);
}

/// Sessions are kept in memory between requests (`cache::Sessions`): a change of their user
/// made through the server counts at once, one made from the command line within a second.
#[tokio::test]
async fn a_kept_session_follows_its_user() {
    let app = app().await;
    let alice = app.setup_admin().await;
    let store = app.state.store.as_ref();
    let bob = manage::create_user(store, "bob", "bobs password", Role::Admin)
        .await
        .unwrap();
    let login = app.login("bob", "bobs password").await;
    let bob_session = format!("vigie_session={}", login.cookie("vigie_session").unwrap());
    for _ in 0..2 {
        let page = app.get("/settings/users", &bob_session).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("You are a viewer"), "an admin");
    }

    // Demoted through the server: his very next page knows it.
    let csrf = app.session_csrf(&alice).await;
    let path = format!("/settings/users/{}/role", bob.id);
    let demoted = app
        .post_form(&path, &alice, &[("csrf", &csrf), ("role", "viewer")])
        .await;
    assert!(demoted.cookie("vigie_flash").unwrap().starts_with("ok:"));
    let page = app.get("/settings/users", &bob_session).await;
    assert!(
        page.body.contains("You are a viewer"),
        "the new role at once"
    );

    // His password set from the command line (outside any server) ends his sessions: the
    // kept one is refused within the cache's TTL.
    manage::set_password(store, bob.id, "a new password")
        .await
        .unwrap();
    tokio::time::sleep(vigie_server::cache::TOKEN_TTL + Duration::from_millis(50)).await;
    assert_eq!(
        app.get("/", &bob_session).await.status,
        StatusCode::SEE_OTHER
    );

    // Logged in again, then deleted through the server: refused at once.
    let login = app.login("bob", "a new password").await;
    let bob_session = format!("vigie_session={}", login.cookie("vigie_session").unwrap());
    assert_eq!(app.get("/", &bob_session).await.status, StatusCode::OK);
    let path = format!("/settings/users/{}/delete", bob.id);
    let deleted = app.post_form(&path, &alice, &[("csrf", &csrf)]).await;
    assert!(deleted.cookie("vigie_flash").unwrap().starts_with("ok:"));
    assert_eq!(
        app.get("/", &bob_session).await.status,
        StatusCode::SEE_OTHER
    );
}

/// Routes that take a project key (log lines, job progress, monitor pings) find it in the
/// cached project list: a project made outside the server works at once, a rotated key is
/// refused at once, and the key is taken in any case.
#[tokio::test]
async fn project_keys_come_from_memory_and_a_rotated_one_is_refused_at_once() {
    let app = app().await;
    let admin = app.admin_token().await;
    let line = "{\"msg\": \"hello\"}\n";
    let key = project_key(&app).await;
    assert_eq!(
        app.api_post("/api/v1/logs", &key, line).await.status,
        StatusCode::OK
    );

    // Made from the command line while the server runs (`vigie project create`).
    let made = manage::create_project(app.state.store.as_ref(), "outside")
        .await
        .unwrap();
    let outside = made.public_key.as_str().to_uppercase();
    let sent = app.api_post("/api/v1/logs", &outside, line).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let ping = Request::get(format!("/ping/{outside}/backup"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(ping).await.status, StatusCode::OK);

    let path = format!("/api/v1/projects/{}/rotate-key", made.id.0);
    let rotated = app.api(Method::POST, &path, &admin, None).await;
    let new_key = rotated.json()["public_key"].as_str().unwrap().to_string();
    let refused = app.api_post("/api/v1/logs", &outside, line).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("unknown project key"));
    let ping = Request::get(format!("/ping/{outside}/backup"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(ping).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.api_post("/api/v1/logs", &new_key, line).await.status,
        StatusCode::OK
    );
    // Each line went to its own project.
    let path = format!("/api/v1/logs/search?q=&project={}", made.id.0);
    let found = app.api_get(&path, &admin).await;
    assert_eq!(found.json()["hits"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let app = app().await;
    let session = app.setup_admin().await;
    let missing = app
        .post_form("/settings/projects", &session, &[("name", "shop")])
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("this form has expired"));
    let wrong = app
        .post_form(
            "/settings/projects",
            &session,
            &[
                ("name", "shop"),
                ("csrf", "0123456789abcdef0123456789abcdef"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(app.state.store.list_projects().await.unwrap().len(), 1);

    // The login form too: a post without the pre-session cookie is refused.
    let login = app
        .post_form(
            "/login",
            "",
            &[
                ("csrf", "x"),
                ("username", "alice"),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_manage_projects_users_and_tokens_viewers_only_look() {
    let app = app().await;
    let admin = app.setup_admin().await;
    let csrf = app.session_csrf(&admin).await;

    let created = app
        .post_form(
            "/settings/projects",
            &admin,
            &[("csrf", &csrf), ("name", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let flash = format!(
        "{admin}; vigie_flash={}",
        created.cookie("vigie_flash").unwrap()
    );
    let page = app.get("/settings/projects", &flash).await;
    assert!(!page.body.contains("<script>alert(1)</script>"), "escaped");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.body.contains("created"), "flash shown");

    let project = app.state.store.list_projects().await.unwrap()[1].clone();
    let before = app.state.dsn(&project);
    let rotated = app
        .post_form(
            &format!("/settings/projects/{}/rotate-key", project.id),
            &admin,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    let after = app.state.store.project(project.id).await.unwrap().unwrap();
    assert_ne!(app.state.dsn(&after), before);

    let renamed = app
        .post_form(
            &format!("/settings/projects/{}/rename", project.id),
            &admin,
            &[("csrf", &csrf), ("name", "default")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    assert!(renamed.cookie("vigie_flash").unwrap().starts_with("error:"));

    let added = app
        .post_form(
            "/settings/users",
            &admin,
            &[
                ("csrf", &csrf),
                ("username", "bob"),
                ("password", "bobs password"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER);
    assert!(added.cookie("vigie_flash").unwrap().starts_with("ok:"));

    let token_page = app
        .post_form(
            "/settings/tokens",
            &admin,
            &[("csrf", &csrf), ("name", "ci"), ("scope", "read")],
        )
        .await;
    assert_eq!(token_page.status, StatusCode::OK);
    assert!(token_page.body.contains("will not show it again"));
    assert!(token_page.body.contains("vigie_"));

    // Bob the viewer sees settings but cannot change them.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let bob = app.login("bob", "bobs password").await;
    let bob = format!("vigie_session={}", bob.cookie("vigie_session").unwrap());
    let page = app.get("/settings/users", &bob).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are a viewer"));
    let bob_csrf = page.csrf_field();
    let refused = app
        .post_form(
            "/settings/projects",
            &bob,
            &[("csrf", &bob_csrf), ("name", "sneaky")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("only admins"));

    // The last admin can be neither demoted nor deleted.
    let alice = app
        .state
        .store
        .credentials("alice")
        .await
        .unwrap()
        .unwrap()
        .user;
    let demote = manage::set_role(app.state.store.as_ref(), alice.id, Role::Viewer)
        .await
        .unwrap_err();
    assert!(demote.to_string().contains("last admin"));
}

#[tokio::test]
async fn api_tokens_grant_their_scope_and_nothing_more() {
    let app = app().await;
    let store = app.state.store.as_ref();
    let (_, read) = manage::create_token(store, "grafana", Scope::Read)
        .await
        .unwrap();
    let (admin_token, admin) = manage::create_token(store, "ci", Scope::Admin)
        .await
        .unwrap();

    let list = app.api_get("/api/v1/projects", &read).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()[0]["name"], "default");
    assert!(list.json()[0]["dsn"]
        .as_str()
        .unwrap()
        .ends_with("@127.0.0.1:8610/1"));

    let body = r#"{"name": "billing"}"#;
    let refused = app.api_post("/api/v1/projects", &read, body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("read scope"));

    let created = app.api_post("/api/v1/projects", &admin, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_i64().unwrap();
    let dup = app.api_post("/api/v1/projects", &admin, body).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let renamed = app
        .api(
            Method::PATCH,
            &format!("/api/v1/projects/{id}"),
            &admin,
            Some(r#"{"name": "invoices"}"#),
        )
        .await;
    assert_eq!(renamed.json()["name"], "invoices");
    let key_before = renamed.json()["public_key"].clone();
    let rotated = app
        .api(
            Method::POST,
            &format!("/api/v1/projects/{id}/rotate-key"),
            &admin,
            None,
        )
        .await;
    assert_ne!(rotated.json()["public_key"], key_before);

    let user = app
        .api_post(
            "/api/v1/users",
            &admin,
            r#"{"username": "carol", "password": "carols password", "role": "admin"}"#,
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED, "{}", user.body);
    let short = app
        .api_post(
            "/api/v1/users",
            &admin,
            r#"{"username": "dave", "password": "short"}"#,
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.body.contains("at least 8 characters"));

    let token = app
        .api_post(
            "/api/v1/tokens",
            &admin,
            r#"{"name": "temp", "scope": "read"}"#,
        )
        .await;
    assert_eq!(token.status, StatusCode::CREATED);
    let secret = token.json()["token"].as_str().unwrap().to_string();
    let temp_id = token.json()["id"].as_i64().unwrap();
    assert_eq!(
        app.api_get("/api/v1/me", &secret).await.json()["name"],
        "temp"
    );
    let listed = app.api_get("/api/v1/tokens", &admin).await;
    assert!(!listed.body.contains(&secret), "secrets are never listed");
    let revoked = app
        .api(
            Method::DELETE,
            &format!("/api/v1/tokens/{temp_id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.api_get("/api/v1/me", &secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.api_get("/api/v1/me", "vigie_forged").await.status,
        StatusCode::UNAUTHORIZED
    );
    let _ = admin_token;
}

#[tokio::test]
async fn cookie_authenticated_api_changes_need_the_csrf_header() {
    let app = app().await;
    let session = app.setup_admin().await;
    let csrf = app.session_csrf(&session).await;
    let request = |with_csrf: bool| {
        let mut req = Request::post("/api/v1/projects")
            .header(header::COOKIE, &session)
            .header(header::CONTENT_TYPE, "application/json");
        if with_csrf {
            req = req.header("x-csrf-token", &csrf);
        }
        req.body(Body::from(r#"{"name": "from-ui"}"#)).unwrap()
    };
    assert_eq!(app.send(request(false)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.send(request(true)).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn bodies_are_decompressed_within_limits() {
    use std::io::Write;
    let app = app().await;
    let key = project_key(&app).await;
    let admin = app.admin_token().await;
    let gzip = |data: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    };
    // Ingest paths take compressed bodies (SDKs and shippers send them); here the jobs API.
    let send = |encoding: &'static str, body: Vec<u8>| {
        Request::post("/api/v1/jobs")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, encoding)
            .body(Body::from(body))
            .unwrap()
    };

    let ok = app
        .send(send("gzip", gzip(br#"{"name": "compressed", "id": "gz"}"#)))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);

    let zstd = zstd::encode_all(&br#"{"name": "zstd-one", "id": "zs"}"#[..], 3).unwrap();
    assert_eq!(
        app.send(send("zstd", zstd)).await.status,
        StatusCode::CREATED
    );

    // 64 MiB of spaces compress to ~64 KiB; the 2 MiB cap stops the inflation.
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let refused = app.send(send("gzip", bomb)).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refused.json()["error"]["code"], "payload_too_large");

    let garbage = app
        .send(send("gzip", b"definitely not gzip".to_vec()))
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(garbage.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not valid"));

    let unknown = app.send(send("compress", b"x".to_vec())).await;
    assert_eq!(unknown.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = Request::post("/api/v1/jobs")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_LENGTH, (5 << 20).to_string())
        .body(Body::from(vec![b'x'; 5 << 20]))
        .unwrap();
    let huge = app.send(huge).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);

    let bad_json = app.api_post("/api/v1/jobs", &key, "{not json").await;
    assert_eq!(bad_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_json.json()["error"]["field"], "body");

    // Nothing else was lost: exactly the two valid jobs were added.
    let jobs = app.api_get("/api/v1/jobs", &admin).await;
    assert_eq!(jobs.json()["total"], 2, "{}", jobs.body);
}

#[tokio::test]
async fn an_encoded_body_without_length_stops_at_the_limit() {
    let app = app().await;
    let key = project_key(&app).await;
    // 2 MiB of gzip bytes streamed without Content-Length, against a 1 MiB limit.
    let chunks = (0..32).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 << 10]));
    let req = Request::post("/api/v1/jobs")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let answer = app.send(req).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.body
    );
    assert!(answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 MiB limit"));
}

#[tokio::test]
async fn errors_have_the_right_shape_and_headers_are_set() {
    let app = app().await;
    let page = app.get("/no/such/page", "").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("<!doctype html>"));
    let api = app.get("/api/v1/no/such", "").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.json()["error"]["code"], "not_found");
    let method = app
        .send(
            Request::put("/api/v1/projects")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(method.json()["error"]["code"], "method_not_allowed");

    let health = app.get("/health", "").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["database"]["reachable"], true);
    for (name, expected) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(health.headers[name], expected, "{name}");
    }
    let csp = health.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));

    let css = app.get("/static/app.css", "").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));

    let metrics = app.get("/metrics", "").await;
    assert!(metrics
        .body
        .contains("vigie_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"));
    assert!(metrics.body.contains("vigie_writer_queue_depth 0"));
    assert!(metrics.body.contains("vigie_database_size_bytes"));
}

/// Every (method, path) of the machine interfaces the router serves: the paths it was built
/// from (`vigie_server::app::paths`), and for each, the methods the router itself says it
/// takes (the `Allow` header of its 405 to a method no route uses). Pages are left out: their
/// guard refuses such a method before the router is asked.
async fn api_routes_of_the_router(app: &App) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let paths = vigie_server::app::paths(app.server.clone());
    assert!(paths.contains(&"/logs"), "pages are listed too: {paths:?}");
    for path in paths.into_iter().filter(|p| is_api(p)) {
        // Each parameter filled with a word no static segment uses, so the same route answers.
        let concrete = path
            .split('/')
            .map(|part| if part.starts_with('{') { "probe" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let answer = app
            .send(
                Request::builder()
                    .method("TRACE")
                    .uri(&concrete)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "TRACE {concrete}"
        );
        let allow = answer.headers[header::ALLOW]
            .to_str()
            .unwrap()
            .to_lowercase();
        for method in allow.split(',').map(str::trim) {
            out.push((method.to_string(), path.to_string()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The machine interfaces (the rest are HTML pages and their forms).
fn is_api(path: &str) -> bool {
    ["/api/", "/v1/", "/loki/", "/ping/"]
        .iter()
        .any(|p| path.starts_with(p))
        || path == "/health"
        || path == "/metrics"
}

/// No API route is undocumented, and no documented operation is missing from the router.
#[tokio::test]
async fn every_api_route_is_in_the_openapi_document() {
    let app = app().await;
    let doc = app.get("/api/v1/openapi.json", "").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = api_routes_of_the_router(&app).await;
    assert!(routes.len() > 60, "the router was read: {routes:?}");
    // axum answers HEAD wherever GET is routed; the document names HEAD only where callers
    // are meant to use it (check-in pings).
    let undocumented: Vec<String> = routes
        .iter()
        .filter(|(method, _)| method != "head")
        .filter(|(method, path)| !doc["paths"][path][method].is_object())
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routed but not documented: {undocumented:?}"
    );
    let mut unrouted = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            if !routes.contains(&(method.clone(), path.clone())) {
                unrouted.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

/// One operation the OpenAPI document describes.
struct Operation<'a> {
    path: &'a str,
    method: Method,
    spec: &'a serde_json::Value,
    responses: &'a serde_json::Map<String, serde_json::Value>,
}

/// Every operation of the OpenAPI document `doc` (what a path holds besides operations, such
/// as parameters shared by them all, is passed over).
fn operations(doc: &serde_json::Value) -> Vec<Operation<'_>> {
    let mut found = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, spec) in operations.as_object().unwrap() {
            if let Some(responses) = spec["responses"].as_object() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                found.push(Operation {
                    path,
                    method,
                    spec,
                    responses,
                });
            }
        }
    }
    found
}

/// Each documented operation, called the ways a stranger or a wrong client would: without
/// credentials, with the project key where an API token is needed, with a read-only token
/// where a change needs admin, about an object that does not exist, with a body that is not
/// JSON. Each refusal the document promises must be the one answered (and what is answered is
/// recorded for `every_documented_status_is_one_the_router_really_answers_and_no_other`).
#[tokio::test]
async fn every_operation_refuses_as_documented() {
    let app = app().await;
    let admin = app.admin_token().await;
    let read = vigie_server::accounts::manage::create_token(
        app.state.store.as_ref(),
        "reader",
        vigie_core::Scope::Read,
    )
    .await
    .unwrap()
    .1;
    let key = project_key(&app).await;
    let doc = app.get("/api/v1/openapi.json", "").await.json();
    let mut wrong = Vec::new();
    for Operation {
        path,
        method,
        spec: operation,
        responses,
    } in operations(&doc)
    {
        // `{project}` is a Sentry project id, `{key}` a project key: a real one, so the probe
        // reaches what follows; every other parameter names something that does not exist.
        let concrete = path
            .replace("{project}", "1")
            .replace("{key}", &key)
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "999999"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let documented = |status: &str| responses.contains_key(status);
        let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let call = |credential: Option<String>, body: &'static str| {
            let mut req = Request::builder().method(method.clone()).uri(&concrete);
            if let Some(c) = credential {
                req = req.header(header::AUTHORIZATION, c);
            }
            if changes {
                req = req.header(header::CONTENT_TYPE, "application/json");
            }
            req.body(Body::from(body)).unwrap()
        };
        let mut expect = |what: &str, status: StatusCode, want: u16| {
            if status.as_u16() != want {
                wrong.push(format!(
                    "{method} {path} {what}: answered {status}, documented {want}"
                ));
            }
        };
        let anonymous = app.send(call(None, "{}")).await.status;
        if documented("401") {
            expect("without credentials", anonymous, 401);
        }
        let uses_key = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s.get("projectKey").is_some()));
        let uses_token = operation["security"].is_null()
            || operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s.get("bearer").is_some()));
        if uses_token && !uses_key && documented("401") {
            let with_key = app.send(call(Some(format!("Bearer {key}")), "{}")).await;
            expect("with the project key", with_key.status, 401);
        }
        let with_read = app.send(call(Some(format!("Bearer {read}")), "{}")).await;
        if uses_token && changes && documented("403") && !uses_key {
            expect("with a read-only token", with_read.status, 403);
        }
        let with_admin = app.send(call(Some(format!("Bearer {admin}")), "{}")).await;
        let about_an_object = responses
            .get("404")
            .is_some_and(|r| r["$ref"] != "#/components/responses/NoSuchProject");
        if !changes && path.contains("{") && about_an_object && !path.contains("{key}") {
            expect("about nothing that exists", with_admin.status, 404);
        }
        // Each documented query parameter, given a value no parameter takes.
        if documented("422") || documented("400") {
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for param in params.iter().filter(|p| p["in"] == "query") {
                let name = param["name"].as_str().unwrap();
                let uri = format!("{concrete}?{name}=%00nonsense");
                let mut req = Request::builder()
                    .method(method.clone())
                    .uri(uri)
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"));
                if changes {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                }
                app.send(req.body(Body::from("{}")).unwrap()).await;
            }
        }
        if changes && documented("400") {
            app.send(call(Some(format!("Bearer {admin}")), "{not json"))
                .await;
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The management operations' answers, each once: what a script sees when it changes users,
/// projects, alert channels and rules, monitors and log sources (a conflict, a missing object,
/// a value that breaks a rule, and success).
#[tokio::test]
async fn management_operations_answer_as_documented() {
    let app = app().await;
    let admin = app.admin_token().await;
    let call = |method: Method, path: String, body: Option<String>| {
        let admin = admin.clone();
        let app = &app;
        async move { app.api(method, &path, &admin, body.as_deref()).await }
    };
    let status = |a: &common::Answer| a.status.as_u16();
    // Calls, and checks the status the OpenAPI document promises for that case.
    let expect = |want: u16, method: Method, path: String, body: Option<String>| {
        let answer = call(method, path.clone(), body);
        async move {
            let answer = answer.await;
            assert_eq!(answer.status.as_u16(), want, "{path}: {}", answer.body);
            answer
        }
    };

    // Users: created, read, changed, a clash of names, the last admin kept, deleted.
    let bob = expect(
        201,
        Method::POST,
        "/api/v1/users".into(),
        Some(r#"{"username": "Bob", "password": "long enough pass"}"#.into()),
    )
    .await;
    let bob_id = bob.json()["id"].as_i64().unwrap();
    expect(
        409,
        Method::POST,
        "/api/v1/users".into(),
        Some(r#"{"username": "Bob", "password": "long enough pass"}"#.into()),
    )
    .await;
    let read = call(Method::GET, format!("/api/v1/users/{bob_id}"), None).await;
    // Usernames are kept in lower case: one person, however it is typed.
    assert_eq!(
        (status(&read), read.json()["username"].as_str()),
        (200, Some("bob"))
    );
    expect(
        200,
        Method::PATCH,
        format!("/api/v1/users/{bob_id}"),
        Some(r#"{"role": "admin"}"#.into()),
    )
    .await;
    expect(
        404,
        Method::PATCH,
        "/api/v1/users/999999".into(),
        Some(r#"{"role": "admin"}"#.into()),
    )
    .await;
    let carol = call(
        Method::POST,
        "/api/v1/users".into(),
        Some(r#"{"username": "Carol", "password": "long enough pass"}"#.into()),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    // Bob is the only admin account: he can be neither demoted nor deleted; Carol can go.
    expect(
        409,
        Method::PATCH,
        format!("/api/v1/users/{bob_id}"),
        Some(r#"{"role": "viewer"}"#.into()),
    )
    .await;
    expect(409, Method::DELETE, format!("/api/v1/users/{bob_id}"), None).await;
    expect(204, Method::DELETE, format!("/api/v1/users/{carol}"), None).await;

    // Alert channels and rules: a clash of names, muted, a bad mute time, deleted.
    let channel =
        r#"{"name": "hook", "target": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"}}"#;
    let made = expect(
        201,
        Method::POST,
        "/api/v1/alerts/channels".into(),
        Some(channel.into()),
    )
    .await;
    let channel_id = made.json()["id"].as_i64().unwrap();
    expect(
        409,
        Method::POST,
        "/api/v1/alerts/channels".into(),
        Some(channel.into()),
    )
    .await;
    let rule = expect(201, Method::POST,
        "/api/v1/alerts/rules".into(),
        Some(format!(
            r#"{{"name": "new issues", "rule": {{"kind": "new_issue"}}, "channels": [{channel_id}]}}"#
        )),).await;
    let rule_id = rule.json()["id"].as_i64().unwrap();
    expect(
        200,
        Method::POST,
        format!("/api/v1/alerts/rules/{rule_id}/mute"),
        Some(r#"{"until": "2999-01-01T00:00:00Z"}"#.into()),
    )
    .await;
    expect(
        422,
        Method::POST,
        format!("/api/v1/alerts/rules/{rule_id}/mute"),
        Some(r#"{"until": "next tuesday"}"#.into()),
    )
    .await;
    // Changed wholly: another name, another kind; a missing rule, a bad one, a name taken.
    let changed = expect(200, Method::PUT,
        format!("/api/v1/alerts/rules/{rule_id}"),
        Some(format!(
            r#"{{"name": "Failed sends", "rule": {{"kind": "job_failed", "job_kind": "email"}}, "channels": [{channel_id}], "cooldown_s": 600}}"#
        )),).await;
    assert_eq!(changed.json()["name"], "Failed sends");
    assert!(
        changed.body.contains(r#""job_kind":"email""#),
        "{}",
        changed.body
    );
    assert!(
        !changed.json()["muted_until"].is_null(),
        "its mute stays: {}",
        changed.body
    );
    expect(
        404,
        Method::PUT,
        "/api/v1/alerts/rules/999999".into(),
        Some(format!(
            r#"{{"name": "x", "rule": {{"kind": "new_issue"}}, "channels": [{channel_id}]}}"#
        )),
    )
    .await;
    expect(
        422,
        Method::PUT,
        format!("/api/v1/alerts/rules/{rule_id}"),
        Some(r#"{"name": "x", "rule": {"kind": "new_issue"}, "channels": []}"#.into()),
    )
    .await;
    let other = expect(201, Method::POST,
        "/api/v1/alerts/rules".into(),
        Some(format!(
            r#"{{"name": "regressions", "rule": {{"kind": "regression"}}, "channels": [{channel_id}]}}"#
        )),).await;
    expect(409, Method::PUT,
        format!("/api/v1/alerts/rules/{}", other.json()["id"]),
        Some(format!(
            r#"{{"name": "Failed sends", "rule": {{"kind": "regression"}}, "channels": [{channel_id}]}}"#
        )),).await;
    expect(
        204,
        Method::DELETE,
        format!("/api/v1/alerts/rules/{rule_id}"),
        None,
    )
    .await;
    expect(
        204,
        Method::DELETE,
        format!("/api/v1/alerts/channels/{channel_id}"),
        None,
    )
    .await;

    // A monitor paused and resumed.
    expect(
        200,
        Method::PUT,
        "/api/v1/monitors/nightly".into(),
        Some(r#"{"schedule": {"type": "interval", "value": 1, "unit": "hour"}}"#.into()),
    )
    .await;
    for action in ["pause", "resume"] {
        let answer = call(
            Method::POST,
            format!("/api/v1/monitors/nightly/{action}"),
            None,
        )
        .await;
        assert_eq!(status(&answer), 200, "{action}: {}", answer.body);
    }

    // A log source deleted with its lines.
    let key = project_key(&app).await;
    let sent = app
        .send(
            Request::post("/api/v1/logs?source=old-app")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::from("{\"message\": \"bye\"}\n"))
                .unwrap(),
        )
        .await;
    assert_eq!(status(&sent), 200, "{}", sent.body);
    let sources = call(Method::GET, "/api/v1/logs/sources".into(), None)
        .await
        .json();
    let source = sources
        .as_array()
        .or_else(|| sources["sources"].as_array())
        .unwrap()
        .iter()
        .find(|s| s["name"] == "old-app")
        .unwrap_or_else(|| panic!("{sources}"))["id"]
        .as_i64()
        .unwrap();
    expect(
        204,
        Method::DELETE,
        format!("/api/v1/logs/sources/{source}"),
        None,
    )
    .await;

    // Projects: read, a name taken, a project that does not exist.
    expect(200, Method::GET, "/api/v1/projects/1".into(), None).await;
    expect(
        201,
        Method::POST,
        "/api/v1/projects".into(),
        Some(r#"{"name": "shop"}"#.into()),
    )
    .await;
    expect(
        409,
        Method::PATCH,
        "/api/v1/projects/1".into(),
        Some(r#"{"name": "shop"}"#.into()),
    )
    .await;
    expect(
        404,
        Method::PATCH,
        "/api/v1/projects/999999".into(),
        Some(r#"{"name": "x"}"#.into()),
    )
    .await;
}

/// What a job's process, a cron wrapper and an old Sentry SDK see: a job's life with its
/// conflicts and bad values, pings with a wrong key or slug, the store endpoint with bad JSON,
/// a body too large and a rate limit; then an event read back through its issue and its
/// attachment; and, with two projects, every read that needs `?project=` says so.
#[tokio::test]
async fn ingest_and_job_operations_answer_as_documented() {
    let app = app().await;
    let admin = app.admin_token().await;
    let key = project_key(&app).await;
    let status = |a: &common::Answer| a.status.as_u16();
    // Sends, and checks the status the OpenAPI document promises for that case.
    let sent = |want: u16, request: Request<Body>| {
        let path = request.uri().to_string();
        let answer = app.send(request);
        async move {
            let answer = answer.await;
            assert_eq!(answer.status.as_u16(), want, "{path}: {}", answer.body);
            answer
        }
    };
    let with_key = |method: Method, path: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };

    // A job: started, started again, finished, then every change after its end refused.
    let job = sent(
        201,
        with_key(
            Method::POST,
            "/api/v1/jobs",
            r#"{"name": "invoices", "total": 3}"#,
        ),
    )
    .await;
    let id = job.json()["id"].as_str().unwrap().to_string();
    let at = |what: &str| format!("/api/v1/jobs/{id}/{what}");
    sent(200, with_key(Method::POST, &at("start"), "")).await;
    sent(
        422,
        with_key(Method::POST, &at("heartbeat"), r#"{"messages": 5}"#),
    )
    .await;
    sent(
        422,
        with_key(Method::POST, &at("finish"), r#"{"status": "running"}"#),
    )
    .await;
    let items = app
        .api_get(&format!("{}?status=lost", at("items")), &admin)
        .await;
    assert_eq!(status(&items), 422, "{}", items.body);
    sent(200, with_key(Method::POST, &at("finish"), "{}")).await;
    for (what, body) in [
        ("start", ""),
        ("finish", "{}"),
        ("heartbeat", "{}"),
        ("progress", r#"{"processed": 1}"#),
    ] {
        let late = app.send(with_key(Method::POST, &at(what), body)).await;
        assert_eq!(status(&late), 409, "{what} after the end: {}", late.body);
    }

    // Pings: a key no project has, a slug that breaks the rules, a start signal by HEAD.
    for method in [Method::HEAD, Method::POST] {
        let stranger = app
            .send(
                Request::builder()
                    .method(method.clone())
                    .uri("/ping/0123456789abcdef0123456789abcdef/nightly")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status(&stranger), 404, "{method}: {}", stranger.body);
        let bad_slug = app
            .send(
                Request::builder()
                    .method(method.clone())
                    .uri(format!("/ping/{key}/{}", "x".repeat(200)))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status(&bad_slug), 422, "{method}: {}", bad_slug.body);
    }
    let start = app
        .send(
            Request::head(format!("/ping/{key}/nightly/start"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status(&start), 200, "{}", start.body);

    // The store endpoint (old SDKs): bad JSON, too large, then over the project's rate.
    let store = |body: Vec<u8>| {
        Request::post("/api/1/store/")
            .header(
                "x-sentry-auth",
                format!("Sentry sentry_key={key}, sentry_version=7"),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let bad = app.send(store(b"{not json".to_vec())).await;
    assert_eq!(status(&bad), 400, "{}", bad.body);
    let huge = app.send(store(vec![b' '; 3 << 20])).await;
    assert_eq!(status(&huge), 413, "{}", huge.body);
    let limited = app
        .api(
            Method::PUT,
            "/api/v1/error-settings",
            &admin,
            Some(r#"{"events_per_minute": 1}"#),
        )
        .await;
    assert_eq!(status(&limited), 200, "{}", limited.body);
    let event = |n: u32| {
        format!(
            r#"{{"event_id": "{n:032x}", "message": "disk almost full", "level": "error", "platform": "python"}}"#
        )
        .into_bytes()
    };
    let first = app.send(store(event(1))).await;
    assert_eq!(status(&first), 200, "{}", first.body);
    let second = app.send(store(event(2))).await;
    assert_eq!(status(&second), 429, "{}", second.body);

    // The event, read back through its issue; an attachment sent with another.
    let mut issue = 0;
    for _ in 0..200 {
        let list = app.api_get("/api/v1/issues", &admin).await.json();
        issue = list["issues"][0]["id"].as_i64().unwrap_or(0);
        if issue > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(issue > 0, "the event's issue");
    let events = app
        .api_get(&format!("/api/v1/issues/{issue}/events"), &admin)
        .await;
    assert_eq!(status(&events), 200, "{}", events.body);
    let _ = app
        .api(
            Method::PUT,
            "/api/v1/error-settings",
            &admin,
            Some(r#"{"events_per_minute": null}"#),
        )
        .await;
    let event_id = format!("{:032x}", 3);
    let envelope = format!(
        "{{\"event_id\": \"{event_id}\"}}\n{{\"type\": \"event\"}}\n{{\"message\": \"with a file\"}}\n\
         {{\"type\": \"attachment\", \"length\": 7, \"filename\": \"log.txt\"}}\nhello!\n\n"
    );
    let sent = app.envelope(&key, envelope).await;
    assert_eq!(status(&sent), 200, "{}", sent.body);
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    let mut attachment = 0;
    for _ in 0..200 {
        let files = app
            .state
            .store
            .attachments(project, &event_id)
            .await
            .unwrap();
        attachment = files.first().map(|f| f.id).unwrap_or(0);
        if attachment > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(attachment > 0, "the attachment");
    let file = app
        .api_get(&format!("/api/v1/attachments/{attachment}"), &admin)
        .await;
    assert_eq!((status(&file), file.body.as_str()), (200, "hello!\n"));

    // Two projects: a read that does not name one is refused, naming the parameter.
    let second = app
        .api_post("/api/v1/projects", &admin, r#"{"name": "shop"}"#)
        .await;
    assert_eq!(status(&second), 201, "{}", second.body);
    for path in [
        "/api/v1/error-settings".to_string(),
        format!("/api/v1/events/{event_id}"),
        "/api/v1/feedback".into(),
        format!("/api/v1/issues/{issue}"),
        format!("/api/v1/issues/{issue}/events"),
        format!("/api/v1/attachments/{attachment}"),
        "/api/v1/logs/sources".into(),
        "/api/v1/logs/sources/1".into(),
        "/api/v1/logs/sources/1/lines".into(),
        "/api/v1/logs/sources/1/download".into(),
        "/api/v1/logs/stats".into(),
        "/api/v1/logs/tail".into(),
    ] {
        let answer = app.api_get(&path, &admin).await;
        assert_eq!(status(&answer), 422, "{path}: {}", answer.body);
        assert_eq!(answer.json()["error"]["field"], "project", "{path}");
    }
    let answer = app
        .api(Method::DELETE, "/api/v1/logs/sources/1", &admin, None)
        .await;
    assert_eq!(status(&answer), 422, "{}", answer.body);
    // A script's token names no project for a job either.
    let answer = app
        .api(
            Method::POST,
            &format!("/api/v1/jobs/{id}/start"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status(&answer), 422, "{}", answer.body);
    assert_eq!(answer.json()["error"]["field"], "project");
    // A body that says gzip and is not: refused, nothing stored.
    let garbled = app
        .send(
            Request::post("/api/v1/logs?source=x")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from("not gzip at all"))
                .unwrap(),
        )
        .await;
    assert_eq!(status(&garbled), 400, "{}", garbled.body);
}

/// Mistakes any client makes, tried on every operation of the OpenAPI document that can meet
/// them, each answered with the status the document lists for it: naming a project that does
/// not exist (404) or none on a server with several (422, the field `project`), a JSON body
/// without its `Content-Type` (415), a word where an integer id goes (400), a name that
/// matches nothing, a query parameter given twice. No mistake is taken: a 2xx or a 5xx
/// here is a defect of its own. (The API fuzz, `e2e/test_api_fuzz.py`,
/// found these answers undocumented on 62 operations.)
#[tokio::test]
async fn every_operation_answers_a_client_s_mistakes_as_documented() {
    let app = app().await;
    let token = app.admin_token().await;
    let second = app
        .api_post("/api/v1/projects", &token, r#"{"name": "second"}"#)
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../src/api/openapi.json")).unwrap();

    let mut wrong = Vec::new();
    let mut tried = 0;
    for Operation {
        path: route,
        method,
        spec: operation,
        responses,
    } in operations(&doc)
    {
        // Live streams answer for as long as the client listens; a CORS preflight answers
        // whatever it is asked.
        let live = route.contains("/live/") || route.ends_with("/logs/tail");
        if live || method == Method::OPTIONS {
            continue;
        }
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let path_parameter = |name: &str| {
            parameters
                .iter()
                .find(|p| p["in"] == "path" && p["name"] == name)
                .map(|p| p["schema"]["type"] == "integer")
        };
        // Every path parameter filled with a value of its type; `word_for` gets a word.
        let fill = |word_for: Option<&str>| {
            let mut path = route.to_string();
            while let Some(start) = path.find('{') {
                let end = path[start..].find('}').unwrap() + start;
                let name = path[start + 1..end].to_string();
                let value = match (Some(name.as_str()) == word_for, path_parameter(&name)) {
                    (true, _) => "not-a-number",
                    (false, Some(true)) => "1",
                    _ => "default",
                };
                path.replace_range(start..=end, value);
            }
            path
        };
        let takes_project = parameters
            .iter()
            .any(|p| p["in"] == "query" && p["name"] == "project");
        let json_body = operation["requestBody"]["content"]
            .as_object()
            .is_some_and(|content| content.keys().eq(["application/json"]));
        let send = |uri: String, content_type: Option<&str>| {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {token}"));
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            request.body(Body::from("{}")).unwrap()
        };
        let json = json_body.then_some("application/json");
        let project = if takes_project { "?project=1" } else { "" };
        let mut mistakes: Vec<(&str, Request<Body>, Must)> = Vec::new();
        if takes_project {
            mistakes.push((
                "an unknown project",
                send(format!("{}?project=no-such-project", fill(None)), json),
                Must::Be(404),
            ));
            // Flower's API falls back to the Celery project instead.
            if !route.starts_with("/api/") || route.starts_with("/api/v1/") {
                mistakes.push((
                    "no project of several",
                    send(fill(None), json),
                    Must::Be(422),
                ));
            }
        }
        if json_body {
            let uri = format!("{}{project}", fill(None));
            mistakes.push((
                "JSON without its Content-Type",
                send(uri, None),
                Must::BeRefused,
            ));
        }
        for p in parameters.iter().filter(|p| p["in"] == "path") {
            let name = p["name"].as_str().unwrap();
            if p["schema"]["type"] == "integer" || name == "project" {
                let uri = format!("{}{project}", fill(Some(name)));
                mistakes.push((
                    "a word for an id or an unknown name",
                    send(uri, json),
                    Must::BeRefused,
                ));
            }
            if matches!(name, "task" | "worker") {
                let uri = format!(
                    "{}{project}",
                    fill(None).replace("/default", "/two%20words")
                );
                mistakes.push(("a name with a space", send(uri, json), Must::BeRefused));
            }
        }
        // axum's typed queries refuse a repeated field; others take one of the values.
        if let Some(repeated) = parameters
            .iter()
            .find(|p| p["in"] == "query" && p["name"] != "project")
        {
            let name = repeated["name"].as_str().unwrap();
            let project = if takes_project { "project=1&" } else { "" };
            let uri = format!("{}?{project}{name}=1&{name}=2", fill(None));
            mistakes.push((
                "a query parameter given twice",
                send(uri, json),
                Must::BeDocumented,
            ));
        }
        for (mistake, request, expected) in mistakes {
            tried += 1;
            let uri = request.uri().to_string();
            let answer = app.send(request).await;
            let status = answer.status.as_u16();
            // Refused: a 4xx, or 503 where no broker is configured.
            let refused = answer.status.is_client_error() || status == 503;
            let right = match expected {
                Must::Be(expected) => status == expected,
                Must::BeRefused => refused,
                Must::BeDocumented => true,
            };
            if !right || !responses.contains_key(&status.to_string()) {
                wrong.push(format!(
                    "{method} {uri} ({mistake}): {status}, must {expected:?} and be one of \
                         {:?}: {}",
                    responses.keys().collect::<Vec<_>>(),
                    answer.body.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    assert!(tried > 100, "the document's operations were tried: {tried}");
    assert!(
        wrong.is_empty(),
        "{} of {tried} mistakes answered otherwise:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// What a mistake's answer must be, beyond being documented.
#[derive(Debug, Clone, Copy)]
enum Must {
    Be(u16),
    BeRefused,
    /// Either refused or taken (e.g. a repeated query parameter: typed queries refuse it, ingest takes one).
    BeDocumented,
}

/// Every status the OpenAPI document promises for an operation is one the router was seen to
/// answer for it, and every status it was seen to answer is documented: somewhere in this
/// crate's tests or the e2e suite (each test app leaves what it answered in
/// `answered/`: see `common::App`'s `Drop` and `e2e/harness.py`). Run after both, by `.ci/run`:
/// `cargo test -p vigie-server --test http -- --ignored every_documented_status`.
#[test]
#[ignore = "reads what the whole suite answered; .ci/run runs it after `cargo test`"]
fn every_documented_status_is_one_the_router_really_answers_and_no_other() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("answered");
    let mut answered = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("run the suite first: nothing answered yet") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let mut parts = line.split(' ');
            let (Some(method), Some(route), Some(status)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            answered.insert((method.to_lowercase(), route.to_string(), status.to_string()));
        }
    }
    assert!(
        answered.len() > 100,
        "the suite's answers were read: {answered:?}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../src/api/openapi.json")).unwrap();
    let mut never_sent = Vec::new();
    for Operation {
        path,
        method,
        responses,
        ..
    } in operations(&doc)
    {
        let method = method.as_str().to_lowercase();
        for status in responses.keys() {
            if !answered.contains(&(method.clone(), path.to_string(), status.clone())) {
                never_sent.push(format!("{} {path} {status}", method.to_uppercase()));
            }
        }
    }
    // And the other way: what an operation was seen to answer is documented.
    let undocumented: Vec<String> = answered
        .iter()
        .filter(|(method, route, _)| doc["paths"][route][method].is_object())
        .filter(|(method, route, status)| {
            doc["paths"][route][method]["responses"][status.as_str()].is_null()
        })
        .map(|(method, route, status)| format!("{} {route} {status}", method.to_uppercase()))
        .collect();
    let new_gaps: Vec<&String> = never_sent
        .iter()
        .filter(|g| !NOT_YET_ANSWERED.contains(&g.as_str()))
        .collect();
    let closed: Vec<&&str> = NOT_YET_ANSWERED
        .iter()
        .filter(|g| !never_sent.iter().any(|n| n == *g))
        .collect();
    assert!(
        new_gaps.is_empty() && closed.is_empty() && undocumented.is_empty(),
        "documented, and never answered by any test ({}): {new_gaps:#?}\n\
         answered now, so take them off NOT_YET_ANSWERED: {closed:#?}\n\
         answered, and not documented ({}): {undocumented:#?}",
        new_gaps.len(),
        undocumented.len()
    );
}

/// Documented statuses no test has made the router answer yet: each is either untested (a
/// test must come) or unreachable (the document must drop it). Empty, and to stay so: the
/// check fails on a new gap, and on an entry a test now answers.
const NOT_YET_ANSWERED: &[&str] = &[];

/// What the pages say is what was sent: the dashboard counts each kind of data, the Jobs page
/// shows reported jobs with Celery tasks and monitor runs one tab away, a job's page links
/// its logs and its issues and shows skipped items and item fields, a Celery task's page its
/// issue, and a log query that cannot be read draws no histogram of 1970.
#[tokio::test]
async fn pages_tell_the_truth_and_link_what_relates() {
    let app = app().await;
    let session = app.setup_admin().await;
    let key = project_key(&app).await;
    let send = |method: Method, path: String, body: String| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    // Before anything arrives, every card says so.
    let empty = app.get("/", &session).await.body;
    assert_eq!(empty.matches("Nothing received yet").count(), 9, "{empty}");

    let job = |id: &str, kind: &str| {
        send(
            Method::POST,
            "/api/v1/jobs".into(),
            format!(r#"{{"id": "{id}", "name": "Send {id}", "kind": "{kind}", "total": 3}}"#),
        )
    };
    assert_eq!(
        app.send(job("inv-7", "email")).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.send(job("c0ffee", "celery")).await.status,
        StatusCode::CREATED
    );
    let items = app
        .send(send(
            Method::POST,
            "/api/v1/jobs/inv-7/items".into(),
            r#"[{"status": "ok", "id": "INV-1", "fields": {"customer": "ACME Corp", "amount": 12.5}},
                {"status": "skipped", "id": "INV-2"},
                {"status": "error", "id": "INV-3", "error": "550 mailbox full"}]"#
                .into(),
        ))
        .await;
    assert_eq!(items.status, StatusCode::OK, "{}", items.body);
    let logs = app
        .send(send(
            Method::POST,
            "/api/v1/logs?source=worker".into(),
            "{\"message\": \"sending INV-1\", \"job_id\": \"inv-7\", \"smtp_host\": \"mx 1\"}\n"
                .into(),
        ))
        .await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.body);
    // An error event of the job, as the SDK tags it.
    let event = r#"{"event_id": "0123456789abcdef0123456789abcdef", "level": "error", "platform": "python",
        "tags": {"job_id": "inv-7"},
        "exception": {"values": [{"type": "SMTPDataError", "value": "550 mailbox full"}]}}"#;
    let stored = app
        .send(
            Request::post("/api/1/store/")
                .header("x-sentry-auth", format!("Sentry sentry_key={key}"))
                .body(Body::from(event))
                .unwrap(),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);

    // The Jobs page: the reported job, the Celery task a tab away, each tab counted.
    let mut jobs = String::new();
    for _ in 0..100 {
        jobs = app.get("/jobs", &session).await.body;
        if jobs.contains("Send inv-7") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        jobs.contains("Send inv-7") && !jobs.contains("Send c0ffee"),
        "{jobs}"
    );
    assert!(
        jobs.contains(
            r#"href="/jobs?origin=celery">Celery tasks <span class="muted small">1</span>"#
        ),
        "{jobs}"
    );
    let celery = app.get("/jobs?origin=celery", &session).await.body;
    assert!(
        celery.contains("Send c0ffee") && !celery.contains("Send inv-7"),
        "{celery}"
    );

    // The dashboard counts what arrived.
    let mut dashboard = String::new();
    for _ in 0..100 {
        dashboard = app.get("/", &session).await.body;
        if dashboard.contains("1 open issue") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for figure in ["1 job<", "1 log line<", "1 open issue<", "1 task<"] {
        assert!(dashboard.contains(figure), "{figure}: {dashboard}");
    }
    assert_eq!(
        dashboard.matches("Nothing received yet").count(),
        5,
        "performance, releases, metrics, monitors, alerts"
    );
    assert!(
        !dashboard.contains(r#"data-bind="users""#),
        "admin counters live on System"
    );

    // The job's page: its logs, its issue, skipped items counted, fields shown, the item ids.
    let page = app.get("/jobs/inv-7", &session).await.body;
    assert!(page.contains(r#"href="/logs?q=job%3Ainv-7""#), "{page}");
    assert!(
        page.contains(">SMTPDataError: 550 mailbox full</a>"),
        "{page}"
    );
    assert!(
        page.contains(r#"<div class="label">Skipped</div>"#),
        "{page}"
    );
    assert!(
        page.contains("amount=12.5 customer=&quot;ACME Corp&quot;"),
        "{page}"
    );
    assert!(
        page.contains(">INV-3<") && !page.contains("<th class=\"num\">#</th>"),
        "{page}"
    );
    // A Celery job links to its task.
    let task_job = app.get("/jobs/c0ffee", &session).await.body;
    assert!(
        task_job.contains(r#"href="/celery/tasks/c0ffee""#),
        "{task_job}"
    );
    // Without a total there is no percentage to show: no big dash in its place.
    let key = project_key(&app).await;
    let untotalled = app
        .api_post(
            "/api/v1/jobs",
            &key,
            r#"{"id": "open-ended", "name": "Sync"}"#,
        )
        .await;
    assert_eq!(
        untotalled.status,
        StatusCode::CREATED,
        "{}",
        untotalled.body
    );
    let page = app.get("/jobs/open-ended", &session).await.body;
    assert!(
        page.contains(r#"data-format="percent" data-empty=""></span>"#),
        "{page}"
    );

    // A query that cannot be read: the reason, and no histogram from 1970.
    let bad = app.get("/logs?q=levl%3Aerror", &session).await.body;
    assert!(bad.contains("levl"), "{bad}");
    // The date itself: a bare "1970" also turns up, rarely, inside a random CSRF token.
    assert!(!bad.contains("1970-01-01"), "{bad}");
    // A query that matches: bars that zoom into their own time, the fields after the message,
    // and the lines around it.
    let good = app.get("/logs?q=sending", &session).await.body;
    assert!(good.contains("from%3A") && good.contains("to%3A"), "{good}");
    assert!(
        good.contains("data-y-max>1 per bar</span>"),
        "the scale: one line"
    );
    assert!(good.contains(r#"class="context-link""#), "{good}");
    assert!(
        good.contains(r#"<span class="fields-inline">smtp_host=&quot;mx 1&quot;</span>"#),
        "{good}"
    );
    // A time typed in the box is the search's own; the range menu (24 hours unless chosen)
    // only bounds a query that has none.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old_line = format!(
        "{{\"message\": \"archived INV-9\", \"timestamp\": {}}}\n",
        now - 3 * 86_400
    );
    let old = app
        .send(send(Method::POST, "/api/v1/logs".into(), old_line))
        .await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.body);
    let typed = app.get("/logs?q=archived+since%3A7d", &session).await.body;
    assert!(typed.contains("archived INV-9"), "{typed}");
    let menu = app.get("/logs?q=archived", &session).await.body;
    assert!(!menu.contains("archived INV-9"), "{menu}");
    let chosen = app.get("/logs?q=archived&range=7d", &session).await.body;
    assert!(chosen.contains("archived INV-9"), "{chosen}");
    // A regex whose only word opens it: the page says a `\b` would let the filters look the
    // word up; with the `\b`, or beside a word, it says nothing.
    let tip = |page: &str| page.contains(r#"id="word-start-tip""#);
    let open = app
        .get("/logs?q=%2Farchived+%5Cw%2B-%5Cd%2F", &session)
        .await
        .body;
    assert!(
        tip(&open) && open.contains("<code>archived</code>"),
        "{open}"
    );
    let bounded = app
        .get("/logs?q=%2F%5Cbarchived+%5Cw%2B-%5Cd%2F", &session)
        .await
        .body;
    assert!(!tip(&bounded), "{bounded}");
    let worded = app
        .get("/logs?q=archived+%2F%5Cw%2B-%5Cd%2F", &session)
        .await
        .body;
    assert!(!tip(&worded), "{worded}");
}

/// A rule is changed from the Alerts page: its form opens with the rule's values and saves
/// over it.
#[tokio::test]
async fn a_rule_is_edited_from_the_alerts_page() {
    let app = app().await;
    let session = app.setup_admin().await;
    let admin = app.admin_token().await;
    let channel = app
        .api_post(
            "/api/v1/alerts/channels",
            &admin,
            r#"{"name": "hook", "target": {"kind": "webhook", "url": "http://127.0.0.1:9/h"}}"#,
        )
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let rule = app
        .api_post("/api/v1/alerts/rules", &admin, &format!(
                r#"{{"name": "Slow exports", "rule": {{"kind": "slow_transactions", "transaction": "/Reports/Export", "p95_ms": 800, "window_s": 600}}, "channels": [{channel}]}}"#
            ))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let form = app.get(&format!("/alerts?edit={rule}"), &session).await;
    assert!(form.body.contains("Change the rule"), "{}", form.body);
    assert!(form
        .body
        .contains(&format!(r#"action="/alerts/rules/{rule}""#)));
    for value in [
        r#"value="Slow exports""#,
        r#"value="/Reports/Export""#,
        r#"value="800""#,
        r#"value="10""#,
        r#"<option value="slow_transactions" selected>"#,
    ] {
        assert!(form.body.contains(value), "{value}: {}", form.body);
    }
    let csrf = app.session_csrf(&session).await;
    let saved = app
        .post_form(
            &format!("/alerts/rules/{rule}"),
            &session,
            &[
                ("csrf", &csrf),
                ("name", "Slow exports"),
                ("kind", "slow_transactions"),
                ("filter", "/Reports/Export"),
                ("threshold", "1200"),
                ("window_min", "15"),
                ("channel", &channel.to_string()),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let rules = app.api_get("/api/v1/alerts/rules", &admin).await.body;
    assert!(
        rules.contains(r#""p95_ms":1200"#) && rules.contains(r#""window_s":900"#),
        "{rules}"
    );
    assert_eq!(
        rules.matches(r#""name":"Slow exports""#).count(),
        1,
        "changed, not added: {rules}"
    );
}

/// A transaction's sample links the errors of its trace: what went wrong in that request; the
/// issue links back to the request, named with its method as the Python SDK sends it apart.
#[tokio::test]
async fn a_sample_and_the_errors_of_its_trace_link_each_other() {
    let app = app().await;
    let session = app.setup_admin().await;
    let key = project_key(&app).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let transaction = format!(
        r#"{{"type": "transaction", "transaction": "/Reports/Export", "start_timestamp": {}, "timestamp": {now}, "request": {{"method": "GET"}},
            "contexts": {{"trace": {{"trace_id": "{trace}", "span_id": "a1b2c3d4e5f60718", "op": "http.server", "status": "internal_error"}}}}}}"#,
        now - 0.5
    );
    let error = format!(
        r#"{{"level": "error", "platform": "python", "contexts": {{"trace": {{"trace_id": "{trace}", "span_id": "a1b2c3d4e5f60718"}}}},
            "exception": {{"values": [{{"type": "PermissionError", "value": "/Reports/Export is read-only"}}]}}}}"#
    );
    let envelope = format!(
        "{{}}\n{{\"type\": \"transaction\"}}\n{transaction}\n{{\"type\": \"event\"}}\n{error}\n"
    )
    .replace("\n            ", " ");
    let sent = app.envelope(&key, envelope).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let mut page = String::new();
    for _ in 0..100 {
        page = app
            .get(
                "/performance/transaction?name=GET%20%2FReports%2FExport",
                &session,
            )
            .await
            .body;
        if page.contains("trace-errors") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(page.contains(r#"id="trace-errors""#), "{page}");
    assert!(
        page.contains("PermissionError: /Reports/Export is read-only</a>"),
        "{page}"
    );

    let admin = app.admin_token().await;
    let issues = app.api_get("/api/v1/issues", &admin).await;
    let issue = issues.json()["issues"][0]["id"].as_i64().unwrap();
    let page = app.get(&format!("/issues/{issue}"), &session).await.body;
    let prefix = "In its trace:\n    <a class=\"mono\" href=\"/performance/transaction?name=GET%20%2FReports%2FExport&amp;sample=";
    let at = page.find(prefix).unwrap_or_else(|| panic!("{page}")) + prefix.len();
    let sample = &page[at..at + 32];
    assert!(sample.bytes().all(|b| b.is_ascii_hexdigit()), "{sample}");
    let rest = &page[at + 32..];
    assert!(
        rest.starts_with(r#"">GET /Reports/Export</a> <span class="muted">"#)
            && rest[..200].contains("ms, internal_error</span>"),
        "{rest}"
    );
    let opened = app
        .get(
            &format!("/performance/transaction?name=GET%20%2FReports%2FExport&sample={sample}"),
            &session,
        )
        .await;
    assert_eq!(opened.status, StatusCode::OK);
    assert!(
        opened.body.contains(r#"id="trace-errors""#),
        "the sample the link names"
    );

    // On the Performance page the endpoint wraps after its slashes and has its sparkline,
    // read with its figures: one transaction, in the last of 24 bars.
    let list = app.get("/performance", &session).await.body;
    assert!(
        list.contains(r#"title="GET /Reports/Export">GET /<wbr>Reports/<wbr>Export<wbr></a>"#),
        "{list}"
    );
    let spark = &list[list
        .find("aria-label=\"count over the period\"")
        .expect("a sparkline")..];
    let spark = &spark[..spark.find("</svg>").unwrap()];
    assert_eq!(spark.matches("<rect").count(), 24, "{spark}");
    assert_eq!(spark.matches("<title>1 from").count(), 1, "{spark}");
}

#[tokio::test]
async fn live_endpoint_answers_json_and_event_streams() {
    let app = app().await;
    let session = app.setup_admin().await;
    let json = app.get("/live/system", &session).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(json.json()["projects"], 1);
    assert_eq!(json.json()["backend"], "sqlite");

    let response = app
        .router
        .clone()
        .oneshot(
            Request::get("/live/system")
                .header(header::COOKIE, &session)
                .header(header::ACCEPT, "text/event-stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    // Through nginx too: a reverse proxy must not hold the stream back.
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    use futures_util::StreamExt;
    let mut body = response.into_body().into_data_stream();
    let first = body.next().await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("data: {"), "{text}");
    assert!(text.contains("\"users\":1"), "{text}");

    // A change is pushed without waiting for the refresh interval.
    manage::create_project(app.state.store.as_ref(), "pushed")
        .await
        .unwrap();
    app.state.hub.publish(vigie_server::hub::Change::Projects);
    let next = tokio::time::timeout(Duration::from_secs(2), body.next())
        .await
        .expect("pushed promptly")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&next).contains("\"projects\":2"));
}

/// The default project's key, as a job process holds it.

#[tokio::test]
async fn a_job_reports_through_the_project_key() {
    let app = app().await;
    let key = project_key(&app).await;
    let created = app
        .api_post(
            "/api/v1/jobs",
            &key,
            r#"{"name":"Send invoices","total":3,"kind":"email","id":"inv-1"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let job = created.json();
    assert_eq!(job["status"], "running");
    let read_token = job["read_token"].as_str().unwrap().to_string();

    let dup = app
        .api_post("/api/v1/jobs", &key, r#"{"name":"x","id":"inv-1"}"#)
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    // A batch with one bad item stores the others and names the bad one by index.
    let items = app
        .api_post("/api/v1/jobs/inv-1/items", &key, r#"{"items":[{"id":"1","status":"ok","target":"a@example.com"},{"id":"2","status":"sent"},{"id":"3","status":"error","error":"550 <b>no</b>"}]}"#)
        .await;
    assert_eq!(items.status, StatusCode::OK, "{}", items.body);
    let answer = items.json();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["field"], "items[1].status");
    assert_eq!(answer["job"]["processed"], 2);
    assert_eq!(answer["job"]["failed"], 1);

    let all_bad = app
        .api_post("/api/v1/jobs/inv-1/items", &key, r#"[{"status":1.5}]"#)
        .await;
    assert_eq!(all_bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let negative = app
        .api_post("/api/v1/jobs/inv-1/progress", &key, r#"{"increment":-2}"#)
        .await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(negative.json()["error"]["field"], "increment");
    let garbage = app
        .api_post("/api/v1/jobs/inv-1/progress", &key, "{not json")
        .await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = app.api_post("/api/v1/jobs/nope/progress", &key, "{}").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let finished = app
        .api_post("/api/v1/jobs/inv-1/finish", &key, r#"{"message":"done"}"#)
        .await;
    assert_eq!(finished.status, StatusCode::OK);
    assert_eq!(finished.json()["summary"]["ok"], 1);
    let late = app
        .api_post("/api/v1/jobs/inv-1/items", &key, r#"{"status":"ok"}"#)
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);

    // The polling endpoint, with the read token, from a page whose origin is not allowed yet:
    // refused in words that page can read (so progress.js can say why), nothing of the job.
    let from_shop = || {
        Request::get(format!("/api/v1/jobs/inv-1?token={read_token}"))
            .header(header::ORIGIN, "https://shop.example.com")
            .body(Body::empty())
            .unwrap()
    };
    let refused = app.send(from_shop()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.json()["error"]["code"], "origin_not_allowed");
    assert!(
        refused.body.contains("https://shop.example.com") && !refused.body.contains("done"),
        "{}",
        refused.body
    );
    assert_eq!(
        refused.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example.com",
        "the page may read why it was refused"
    );
    // The job's page tells its owner which page was refused.
    let session = app.setup_admin().await;
    let page = app.get("/jobs/inv-1", &session).await;
    assert!(page.body.contains("data-origin-refused"), "{}", page.body);
    assert!(page.body.contains("https://shop.example.com"));
    // Without an Origin (a server, curl), the read token reads.
    let polled = app
        .send(
            Request::get(format!("/api/v1/jobs/inv-1?token={read_token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(polled.status, StatusCode::OK);
    let detail = polled.json();
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["items"].as_array().unwrap().len(), 2);
    assert_eq!(detail["items"][0]["error"], "550 <b>no</b>");
    assert!(detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["text"] == "done"));
    let (_, admin) = manage::create_token(app.state.store.as_ref(), "ops", Scope::Admin)
        .await
        .unwrap();
    let bad = app
        .api(
            Method::PATCH,
            "/api/v1/projects/1",
            &admin,
            Some(r#"{"allowed_origins":["shop.example.com"]}"#),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    let set = app
        .api(
            Method::PATCH,
            "/api/v1/projects/1",
            &admin,
            Some(r#"{"allowed_origins":["https://Shop.example.com/"]}"#),
        )
        .await;
    assert_eq!(set.json()["allowed_origins"][0], "https://shop.example.com");
    let polled = app.send(from_shop()).await;
    assert_eq!(polled.status, StatusCode::OK);
    assert_eq!(
        polled.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example.com"
    );
    // The read token reads only; a wrong token is nobody.
    let write = app
        .send(
            Request::post(format!("/api/v1/jobs/inv-1/progress?token={read_token}"))
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    let wrong = app.get("/api/v1/jobs/inv-1?token=abc", "").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn jobs_list_and_items_filter_for_token_callers() {
    let app = app().await;
    let key = project_key(&app).await;
    for (id, kind) in [("a", "email"), ("b", "import")] {
        let body = format!(
            r#"{{"name":"job {id}","id":"{id}","kind":"{kind}","application":"invoices"}}"#
        );
        let r = app.api_post("/api/v1/jobs", &key, &body).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    app.api_post(
        "/api/v1/jobs/a/items",
        &key,
        r#"[{"status":"ok"},{"status":"error","error":"boom"}]"#,
    )
    .await;
    let (_, token) = manage::create_token(app.state.store.as_ref(), "reader", Scope::Read)
        .await
        .unwrap();
    let list = app.api_get("/api/v1/jobs?kind=email", &token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.json()["total"], 1);
    assert_eq!(list.json()["jobs"][0]["id"], "a");
    let errors = app
        .api_get(
            "/api/v1/items?application=invoices&errors=true&today=true",
            &token,
        )
        .await;
    assert_eq!(errors.json()["total"], 1);
    assert_eq!(errors.json()["items"][0]["error"], "boom");
    let bad = app.api_get("/api/v1/jobs?status=done", &token).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A read-scoped token cannot report progress.
    let refused = app.api_post("/api/v1/jobs/a/progress", &token, "{}").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn oversized_item_uploads_are_refused_whole() {
    let app = app().await;
    let key = project_key(&app).await;
    app.api_post("/api/v1/jobs", &key, r#"{"name":"big","id":"big"}"#)
        .await;
    let item = format!(r#"{{"status":"ok","comment":"{}"}}"#, "x".repeat(1000));
    let body = format!("[{}]", vec![item; 1200].join(","));
    let answer = app.api_post("/api/v1/jobs/big/items", &key, &body).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let admin = app.admin_token().await;
    let job = app.api_get("/api/v1/jobs/big", &admin).await;
    assert_eq!(job.json()["processed"], 0, "nothing half-written");
}

#[tokio::test]
async fn job_pages_render_and_escape() {
    let app = app().await;
    let cookie = app.setup_admin().await;
    let empty = app.get("/jobs", &cookie).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No job has reported yet"));
    let key = project_key(&app).await;
    app.api_post(
        "/api/v1/jobs",
        &key,
        r#"{"name":"<script>alert(1)</script>","id":"x1","total":10}"#,
    )
    .await;
    app.api_post(
        "/api/v1/jobs/x1/items",
        &key,
        r#"{"status":"error","error":"<img src=x onerror=alert(1)>"}"#,
    )
    .await;
    let list = app.get("/jobs", &cookie).await;
    assert!(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!list.body.contains("<script>alert(1)"));
    let page = app.get("/jobs/x1", &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.body.contains("10.0 %"));
    let missing = app.get("/jobs/none", &cookie).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn logs_arrive_over_every_protocol_and_are_searchable() {
    let app = app().await;
    let key = project_key(&app).await;
    let admin = app.setup_admin().await;

    let lines = concat!(
        r#"{"event": "invoice sent", "level": "info", "logger": "invoices", "invoice": 7}"#,
        "\n",
        r#"{"event": "smtp refused <b>", "level": "error", "logger": "invoices", "job_id": "nightly-1"}"#,
        "\nnot json\n"
    );
    let sent = app
        .api_post("/api/v1/logs?source=worker", &key, lines)
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(sent.json()["accepted"], 3);
    assert_eq!(sent.json()["unparsed"], 1);
    let anonymous = app
        .send(
            Request::post("/api/v1/logs")
                .body(Body::from("{\"event\":\"x\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let otlp = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
        "scopeLogs":[{"scope":{"name":"shop.pay"},"logRecords":[
          {"severityNumber":17,"body":{"stringValue":"payment failed"}},
          {"severityNumber":9,"body":{"stringValue":"bad ids"},"traceId":"abcd"}]}]}]}"#;
    let sent = app.api_post("/v1/logs", &key, otlp).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(sent.json()["partialSuccess"]["rejectedLogRecords"], "1");

    let loki = r#"{"streams":[{"stream":{"app":"nginx","level":"warn"},"values":[["1795295700000000000","GET /x 404"]]}]}"#;
    let sent = app.api_post("/loki/api/v1/push", &key, loki).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT, "{}", sent.body);
    let bad = app.api_post("/loki/api/v1/push", &key, "[]").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let found = app
        .get("/api/v1/logs/search?q=level:%3E%3Derror", &admin)
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    let hits = found.json()["hits"].as_array().unwrap().clone();
    let messages: Vec<_> = hits
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.contains(&"payment failed"));
    assert!(messages.contains(&"smtp refused <b>"));
    let job = app
        .get("/api/v1/logs/search?q=job:nightly-1", &admin)
        .await
        .json();
    assert_eq!(job["hits"][0]["source"], "worker");
    assert_eq!(job["hits"][0]["logger"], "invoices");

    let wrong = app.get("/api/v1/logs/search?q=levl:error", &admin).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.json()["error"]["field"], "q");
    let unauth = app.get("/api/v1/logs/search?q=x", "").await;
    assert_eq!(unauth.status, StatusCode::UNAUTHORIZED);

    let stats = app
        .get("/api/v1/logs/stats?q=&buckets=4", &admin)
        .await
        .json();
    assert_eq!(stats["total"], 5);
    assert_eq!(stats["levels"]["error"], 2);

    let sources = app.get("/api/v1/logs/sources", &admin).await.json();
    let names: Vec<_> = sources
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nginx", "shop", "worker"]);
    let worker = sources[2]["id"].as_i64().unwrap();
    let one = app
        .get(&format!("/api/v1/logs/sources/{worker}"), &admin)
        .await
        .json();
    assert_eq!(
        (one["name"].as_str(), one["lines"].as_u64()),
        (Some("worker"), Some(3))
    );
    let text = app
        .get(&format!("/api/v1/logs/sources/{worker}/download"), &admin)
        .await;
    assert_eq!(text.status, StatusCode::OK);
    assert_eq!(text.body.lines().count(), 3, "{}", text.body);
    assert!(text
        .body
        .contains("ERROR    worker invoices: smtp refused <b>"));
    let last = app
        .get(&format!("/api/v1/logs/sources/{worker}/lines?n=1"), &admin)
        .await
        .json();
    assert_eq!(last.as_array().unwrap().len(), 1);
    let missing = app.get("/api/v1/logs/sources/999999/lines", &admin).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let metrics = app.get("/metrics", "").await.body;
    assert!(metrics.contains("vigie_logs_stored_total 5"), "{metrics}");
    assert!(metrics.contains("vigie_logs_unparsed_total 1"));
    assert!(metrics.contains("vigie_logs_rejected_total 1"));

    // A Loki push with a malformed entry is refused with 400 saying how many, and its
    // well-formed entries are stored all the same.
    let half = r#"{"streams":[{"stream":{"app":"nginx"},"values":[["1795295701000000000","GET /y 200"],["bad"]]}]}"#;
    let refused = app.api_post("/loki/api/v1/push", &key, half).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("1 entry refused: "),
        "{}",
        refused.body
    );
    let metrics = app.get("/metrics", "").await.body;
    assert!(metrics.contains("vigie_logs_stored_total 6"), "{metrics}");
    assert!(metrics.contains("vigie_logs_rejected_total 2"), "{metrics}");
}

/// A followed file's lines go through the log sink with its position (one commit), are
/// searchable, and the System page says how far the file was stored.
#[tokio::test]
async fn followed_files_are_stored_through_the_sink_and_shown_on_the_system_page() {
    use vigie_server::logs::follow::{self, FollowSpec, Follower};
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    std::fs::write(
        &file,
        "2026-11-25 10:00:00,000 INFO shop: followed F-4040\n\
         2026-11-25 10:00:01,000 ERROR shop: failed F-4041\n\
         Traceback (most recent call last):\nValueError: no rate\n",
    )
    .unwrap();
    let project = app.state.store.list_projects().await.unwrap()[0].id;
    let spec = FollowSpec {
        pattern: dir.path().join("*.log").to_string_lossy().into_owned(),
        format: None,
        source: None,
        project,
        zone: vigie_protocol::logs::files::Zone::utc(),
        from_end: false,
    };
    let host = vigie_server::state::host_name();
    let follower = Follower::new(spec, &host, Vec::new()).quiet_after(Duration::ZERO);
    let sink = app.server.logs.clone();
    let task = tokio::spawn(follow::run(follower, move |project, records, positions| {
        let sink = sink.clone();
        async move {
            sink.append_followed(project, records, positions)
                .await
                .map_err(|e| e.to_string())
        }
    }));
    let token = app.admin_token().await;
    let mut found = serde_json::Value::Null;
    for _ in 0..100 {
        found = app
            .api_get("/api/v1/logs/search?q=source:app.log", &token)
            .await
            .json();
        if found["hits"].as_array().is_some_and(|h| h.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = found["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 2, "{found}");
    assert_eq!(
        hits[0]["message"],
        "failed F-4041\nTraceback (most recent call last):\nValueError: no rate"
    );
    let size = std::fs::metadata(&file).unwrap().len();
    let stored = app.state.store.followed_files(&host).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].read_to, size);

    let session = app.setup_admin().await;
    let system = app.get("/system", &session).await.body;
    let panel = &system[system.find("id=\"followed\"").expect("the panel")..];
    assert!(panel.contains(&*file.to_string_lossy()), "{panel}");
    assert!(panel.contains("up to date"), "{panel}");
    task.abort();
}
