//! The harness the HTTP tests share: the whole router on a fresh data directory, requests
//! sent without a network, answers read whole.

#![allow(dead_code)] // each test file uses its own part of the harness

use axum::body::Body;
use axum::http::{header, Method, Request, Response, StatusCode};
use std::time::Duration;
use tower::ServiceExt;
use vigie_server::accounts::manage;
use vigie_server::app::Server;
use vigie_server::hub::Hub;
use vigie_server::state::AppState;
use vigie_server::Config;

pub struct App {
    _dir: tempfile::TempDir,
    pub state: AppState,
    /// The state and the ingest pipelines (log sink, Sentry ingest) the router serves.
    pub server: Server,
    pub router: axum::Router,
    pub setup_token: String,
    _stop: tokio::sync::watch::Sender<bool>,
}

pub async fn app_with(session_lifetime: Duration) -> App {
    app_configured(session_lifetime, |_| {}).await
}

/// A test server whose configuration `change` adjusts first.
pub async fn app_configured(session_lifetime: Duration, change: impl FnOnce(&mut Config)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data: dir.path().to_path_buf(),
        ..Config::default()
    };
    change(&mut config);
    config.limits.max_body_mib = 1;
    config.limits.max_decompressed_mib = 2;
    let store = vigie_server::open_store(&config).await.unwrap();
    let boot = manage::bootstrap(store.as_ref(), manage::Start::default())
        .await
        .unwrap();
    let (hub, stop) = Hub::new();
    let state = AppState::new(
        store,
        config,
        hub,
        "http://127.0.0.1:8610".into(),
        session_lifetime,
        std::time::Instant::now(),
    );
    let server = Server::start(state.clone()).unwrap();
    App {
        router: vigie_server::app::router(server.clone()),
        server,
        state,
        _dir: dir,
        setup_token: boot.setup_token.unwrap(),
        _stop: stop,
    }
}

/// Each test app leaves what it answered (method, route, status) in
/// `$CARGO_TARGET_TMPDIR/answered/`, for the check that every status the OpenAPI document
/// promises is one the router really sends (`http.rs`, run by `.ci/run` after the suite).
impl Drop for App {
    fn drop(&mut self) {
        let answered = self.state.metrics.answered();
        if answered.is_empty() {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("answered");
        let _ = std::fs::create_dir_all(&dir);
        let lines: String = answered
            .iter()
            .map(|(method, route, status)| format!("{method} {route} {status}\n"))
            .collect();
        let name = format!("{}-{}.txt", std::process::id(), unique_suffix());
        let _ = std::fs::write(dir.join(name), lines);
    }
}

/// A name no other app of this run takes.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

pub async fn app() -> App {
    app_with(Duration::from_secs(3600)).await
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    /// The body as text (invalid UTF-8 replaced), and as sent.
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub async fn from(response: Response<Body>) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: bytes.to_vec(),
        }
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value set for cookie `name` by this answer.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// The value of the hidden `csrf` input on a page.
    pub fn csrf_field(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a csrf field") + marker.len();
        self.body[start..start + 32].to_string()
    }
}

impl App {
    pub async fn send(&self, req: Request<Body>) -> Answer {
        Answer::from(self.router.clone().oneshot(req).await.unwrap()).await
    }

    pub async fn get(&self, path: &str, cookie: &str) -> Answer {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn post_form(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            Request::post(path)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    pub async fn api(&self, method: Method, path: &str, token: &str, json: Option<&str>) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        self.send(
            req.body(Body::from(json.unwrap_or("").to_string()))
                .unwrap(),
        )
        .await
    }

    /// `GET path` with a bearer token.
    pub async fn api_get(&self, path: &str, token: &str) -> Answer {
        self.api(Method::GET, path, token, None).await
    }

    /// `POST path` with a bearer token and a JSON body.
    pub async fn api_post(&self, path: &str, token: &str, json: &str) -> Answer {
        self.api(Method::POST, path, token, Some(json)).await
    }

    /// Adds a webhook alert channel named `name` that posts to `url`; answers its id.
    pub async fn webhook_channel(&self, token: &str, name: &str, url: &str) -> i64 {
        let body = serde_json::json!({"name": name, "target": {"kind": "webhook", "url": url}});
        let made = self
            .api_post("/api/v1/alerts/channels", token, &body.to_string())
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        made.json()["id"].as_i64().unwrap()
    }

    /// Posts a Sentry envelope with `key` in `X-Sentry-Auth`, as an SDK sends one.
    pub async fn envelope(&self, key: &str, body: impl Into<Body>) -> Answer {
        self.send(
            Request::post("/api/1/envelope/")
                .header("x-sentry-auth", format!("Sentry sentry_key={key}"))
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    /// A new admin API token, as `vigie token create --scope admin` makes one.
    pub async fn admin_token(&self) -> String {
        vigie_server::accounts::manage::create_token(
            self.state.store.as_ref(),
            "ops",
            vigie_core::Scope::Admin,
        )
        .await
        .unwrap()
        .1
    }

    /// A new read-scope API token.
    pub async fn read_token(&self) -> String {
        vigie_server::accounts::manage::create_token(
            self.state.store.as_ref(),
            "reader",
            vigie_core::Scope::Read,
        )
        .await
        .unwrap()
        .1
    }

    /// Completes first-run setup; returns the admin's session cookie header.
    pub async fn setup_admin(&self) -> String {
        let page = self
            .get(&format!("/setup?token={}", self.setup_token), "")
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf_cookie = page.cookie("vigie_csrf").expect("csrf cookie");
        let csrf = page.csrf_field();
        let done = self
            .post_form(
                "/setup",
                &format!("vigie_csrf={csrf_cookie}"),
                &[
                    ("csrf", &csrf),
                    ("token", &self.setup_token),
                    ("username", "Alice"),
                    ("password", "correct horse"),
                    ("confirm", "correct horse"),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), "/");
        format!("vigie_session={}", done.cookie("vigie_session").unwrap())
    }

    /// Logs in through the form; returns the answer.
    pub async fn login(&self, username: &str, password: &str) -> Answer {
        let page = self.get("/login", "").await;
        let csrf_cookie = page.cookie("vigie_csrf").unwrap();
        let csrf = page.csrf_field();
        self.post_form(
            "/login",
            &format!("vigie_csrf={csrf_cookie}"),
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// The CSRF token of a logged-in session (from a page's form).
    pub async fn session_csrf(&self, cookie: &str) -> String {
        self.get("/settings/projects", cookie).await.csrf_field()
    }
}

/// `data` compressed as gzip, as SDKs and collectors send bodies.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// An OTLP export to `path` (`/v1/traces`, `/v1/metrics`, `/v1/logs`) with a project key, as
/// an exporter sends it: protobuf or JSON, compressed or not.
pub fn otlp_request(
    path: &str,
    key: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> Request<Body> {
    let mut req = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, content_type);
    if let Some(encoding) = encoding {
        req = req.header(header::CONTENT_ENCODING, encoding);
    }
    req.body(Body::from(body)).unwrap()
}

/// The public key of the first project.
pub async fn project_key(app: &App) -> String {
    let projects = app.state.store.list_projects().await.unwrap();
    projects[0].public_key.to_string()
}

/// Waits until `check` holds, for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

/// What a webhook receiver got: each body, as JSON.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// A webhook receiver on a free local port, answering 204 to any POST.
pub async fn webhook_receiver() -> (String, Received) {
    let got: Received = Default::default();
    let keep = got.clone();
    let handler = move |body: axum::body::Bytes| {
        let keep = keep.clone();
        async move {
            keep.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or_default());
            StatusCode::NO_CONTENT
        }
    };
    let router = axum::Router::new().route("/{*path}", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}
