//! Source maps against the real router: the calls `sentry-cli sourcemaps upload` makes (chunk
//! options, assemble, chunks, assemble again), hostile uploads refused as the CLI expects,
//! and a minified browser error resolved to its original file, line and function — by debug
//! id, and by release and URL.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{app, gzip, project_key, Answer, App};
use serde_json::{json, Value};
use std::io::Write;

const DEBUG_ID: &str = "b1a8e0c2-7f3d-4e5a-9c1b-2d3e4f5a6b7c";
const MINIFIED: &str = "function n(){throw new Error(\"boom\")}n();\n";
const SOURCE: &str =
    "// checkout\nfunction payNow() {\n  throw new Error(\"boom\");\n}\npayNow();\n";

/// A map of [`MINIFIED`] to `src/checkout.js` ([`SOURCE`]).
fn source_map() -> String {
    let mut builder = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
    let src = builder.add_source("webpack://shop/./src/checkout.js");
    builder.set_source_contents(src, Some(SOURCE));
    let file = Some("webpack://shop/./src/checkout.js");
    builder.add(0, 0, 1, 0, file, None, false);
    builder.add(0, 9, 1, 9, file, Some("payNow"), false);
    builder.add(0, 12, 2, 2, file, None, false);
    builder.add(0, 38, 4, 0, file, Some("payNow"), false);
    let mut out = Vec::new();
    builder.into_sourcemap().to_writer(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// An artifact bundle as sentry-cli writes one.
fn bundle(release: Option<&str>, with_debug_id: bool) -> Vec<u8> {
    let headers = |map: bool| {
        let mut h = serde_json::Map::new();
        if with_debug_id {
            h.insert("debug-id".into(), json!(DEBUG_ID));
        }
        if !map {
            h.insert("sourcemap".into(), json!("app.min.js.map"));
        }
        Value::Object(h)
    };
    let manifest = json!({
        "files": {
            "files/_/_/assets/app.min.js": {"type": "minified_source", "url": "~/assets/app.min.js", "headers": headers(false)},
            "files/_/_/assets/app.min.js.map": {"type": "source_map", "url": "~/assets/app.min.js.map", "headers": headers(true)},
        },
        "org": "acme",
        "release": release,
    });
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        ("manifest.json", manifest.to_string()),
        ("files/_/_/assets/app.min.js", MINIFIED.to_string()),
        ("files/_/_/assets/app.min.js.map", source_map()),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(data.as_bytes()).unwrap();
    }
    let mut out = b"SYSB\x02\x00\x00\x00".to_vec();
    out.extend(zip.finish().unwrap().into_inner());
    out
}

fn sha1(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// A multipart body as sentry-cli sends chunks: (field name, file name, bytes).
async fn upload(app: &App, token: &str, parts: &[(&str, &str, Vec<u8>)]) -> Answer {
    let parts: Vec<_> = parts
        .iter()
        .map(|(field, file, data)| (*field, Some(*file), data.clone()))
        .collect();
    post_multipart(
        app,
        token,
        "/api/0/organizations/acme/chunk-upload/",
        &parts,
    )
    .await
}

/// A multipart request: (field name, file name for a file part, bytes).
async fn post_multipart(
    app: &App,
    token: &str,
    path: &str,
    parts: &[(&str, Option<&str>, Vec<u8>)],
) -> Answer {
    let boundary = "------------------------vigie7f3d";
    let mut body = Vec::new();
    for (field, file, data) in parts {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\""
        )
        .unwrap();
        if let Some(file) = file {
            write!(
                body,
                "; filename=\"{file}\"\r\nContent-Type: application/octet-stream"
            )
            .unwrap();
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    app.send(
        Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

async fn assemble(app: &App, token: &str, request: Value) -> Value {
    let answer = app
        .api_post(
            "/api/0/organizations/acme/artifactbundle/assemble/",
            token,
            &request.to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()
}

/// Uploads `data` as sentry-cli does (two chunks); answers the last assemble answer.
async fn upload_bundle(app: &App, token: &str, data: &[u8], extra: Value) -> Value {
    let (a, b) = data.split_at(data.len() / 2);
    let mut request = json!({
        "checksum": sha1(data),
        "chunks": [sha1(a), sha1(b)],
        "projects": ["default"],
    });
    for (k, v) in extra.as_object().unwrap() {
        request[k] = v.clone();
    }
    let first = assemble(app, token, request.clone()).await;
    if first["state"] == "ok" {
        return first;
    }
    assert_eq!(first["state"], "not_found", "{first}");
    let sent = upload(
        app,
        token,
        &[
            ("file_gzip", &sha1(a), gzip(a)),
            ("file", &sha1(b), b.to_vec()),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assemble(app, token, request).await
}

/// A browser error from the minified bundle, as @sentry/browser sends it.
fn browser_event(event_id: &str, release: &str, with_image: bool) -> Vec<u8> {
    let mut event = json!({
        "event_id": event_id,
        "platform": "javascript",
        "release": release,
        "exception": {"values": [{"type": "Error", "value": "boom", "stacktrace": {"frames": [
            {"filename": "http://localhost:4173/assets/app.min.js", "abs_path": "http://localhost:4173/assets/app.min.js", "lineno": 1, "colno": 39, "function": "?", "in_app": true},
            // As @sentry/browser sends a frame: the script's URL in `filename`, no `abs_path`.
            {"filename": "http://localhost:4173/assets/app.min.js", "lineno": 1, "colno": 13, "function": "HTMLButtonElement.n", "in_app": true},
        ]}}]},
    });
    if with_image {
        event["debug_meta"] = json!({"images": [{"type": "sourcemap",
            "code_file": "http://localhost:4173/assets/app.min.js", "debug_id": DEBUG_ID}]});
    }
    let mut body =
        format!("{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\"}}\n").into_bytes();
    body.extend(event.to_string().as_bytes());
    body.push(b'\n');
    body
}

async fn send_event(app: &App, body: Vec<u8>) -> Value {
    let key = project_key(app).await;
    let sent = app
        .send(
            Request::post("/api/1/envelope/")
                .header(
                    "x-sentry-auth",
                    format!("Sentry sentry_version=7, sentry_client=sentry.javascript.browser/11.12.0, sentry_key={key}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    sent.json()
}

async fn event(app: &App, token: &str, id: &str) -> Value {
    let mut answer = app.api_get(&format!("/api/v1/events/{id}"), token).await;
    for _ in 0..100 {
        if answer.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        answer = app.api_get(&format!("/api/v1/events/{id}"), token).await;
    }
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()
}

#[tokio::test]
async fn sentry_cli_uploads_a_bundle_and_a_minified_error_reads_as_its_source() {
    let app = app().await;
    let token = app.admin_token().await;

    // What `sentry-cli info` and the upload's first call read.
    let info = app.api_get("/api/0/", &token).await;
    assert_eq!(info.status, StatusCode::OK);
    assert!(info.json()["auth"]["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("project:releases")));
    let anonymous = app.api_get("/api/0/", "nope").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.json()["detail"]
            .as_str()
            .unwrap()
            .contains("token"),
        "{}",
        anonymous.body
    );
    let options = app
        .api_get("/api/0/organizations/acme/chunk-upload/", &token)
        .await;
    assert_eq!(options.status, StatusCode::OK);
    let options = options.json();
    assert_eq!(options["url"], "/api/0/organizations/acme/chunk-upload/");
    assert_eq!(options["hashAlgorithm"], "sha1");
    assert_eq!(options["compression"], json!(["gzip"]));
    assert!(options["accept"]
        .as_array()
        .unwrap()
        .contains(&json!("artifact_bundles_v2")));

    // The upload: assemble (missing chunks), chunks, assemble (ok); the same again is ok at once.
    let data = bundle(Some("shop@1.0.0"), true);
    let done = upload_bundle(&app, &token, &data, json!({})).await;
    assert_eq!(done["state"], "ok", "{done}");
    let again = assemble(
        &app,
        &token,
        json!({"checksum": sha1(&data), "chunks": [], "projects": ["default"]}),
    )
    .await;
    assert_eq!(again["state"], "ok");
    let listed = app.api_get("/api/v1/sourcemaps", &token).await;
    let bundles = listed.json()["bundles"].as_array().unwrap().clone();
    assert_eq!(bundles.len(), 1, "{}", listed.body);
    assert_eq!(bundles[0]["release"], "shop@1.0.0");
    assert_eq!(bundles[0]["files"], 2);

    // A browser error from the minified file reads as the source.
    let sent = send_event(
        &app,
        browser_event("aa000000000000000000000000000001", "shop@1.0.0", true),
    )
    .await;
    let stored = event(&app, &token, sent["id"].as_str().unwrap()).await;
    let frames = &stored["exception"]["values"][0]["stacktrace"]["frames"];
    let thrower = &frames[1];
    assert_eq!(thrower["filename"], "src/checkout.js", "{stored}");
    assert_eq!(thrower["function"], "payNow");
    assert_eq!(thrower["lineno"], 3);
    assert_eq!(thrower["context_line"], "  throw new Error(\"boom\");");
    assert_eq!(thrower["data"]["resolved_with"], "debug-id");
    assert_eq!(frames[0]["lineno"], 5);
    assert_eq!(
        stored["exception"]["values"][0]["raw_stacktrace"]["frames"][1]["function"],
        "HTMLButtonElement.n",
        "the frames as sent are kept"
    );
    let issues = app.api_get("/api/v1/issues", &token).await.json();
    let issue = &issues["issues"][0];
    assert!(
        issue["culprit"].as_str().unwrap_or("").contains("payNow")
            || issue["culprit"].as_str().unwrap_or("").contains("checkout"),
        "grouped on the resolved frames: {issue}"
    );
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_sourcemap_frames_total{outcome=\"resolved\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("vigie_artifact_bundles_total{outcome=\"stored\"} 1"));

    // Deleting it: the next build's error is no longer resolved from it (the cache aside).
    let id = bundles[0]["id"].as_i64().unwrap();
    for (what, want) in [
        ("deleted", StatusCode::NO_CONTENT),
        ("gone", StatusCode::NOT_FOUND),
    ] {
        let path = format!("/api/v1/sourcemaps/{id}");
        let answer = app.api(Method::DELETE, &path, &token, None).await;
        assert_eq!(answer.status, want, "{what}: {}", answer.body);
    }
}

#[tokio::test]
async fn without_debug_ids_the_release_and_url_find_the_map() {
    let app = app().await;
    let token = app.admin_token().await;
    let data = bundle(None, false);
    let done = upload_bundle(&app, &token, &data, json!({"version": "shop@2.0.0"})).await;
    assert_eq!(done["state"], "ok", "{done}");
    // Another release: not resolved, kept as sent.
    let other = send_event(
        &app,
        browser_event("bb000000000000000000000000000001", "shop@1.9.0", false),
    )
    .await;
    let stored = event(&app, &token, other["id"].as_str().unwrap()).await;
    assert_eq!(
        stored["exception"]["values"][0]["stacktrace"]["frames"][1]["function"],
        "HTMLButtonElement.n"
    );
    assert!(stored["exception"]["values"][0]
        .get("raw_stacktrace")
        .is_none());
    let sent = send_event(
        &app,
        browser_event("bb000000000000000000000000000002", "shop@2.0.0", false),
    )
    .await;
    let stored = event(&app, &token, sent["id"].as_str().unwrap()).await;
    let thrower = &stored["exception"]["values"][0]["stacktrace"]["frames"][1];
    assert_eq!(thrower["function"], "payNow", "{stored}");
    assert_eq!(thrower["data"]["resolved_with"], "release");
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_sourcemap_frames_total{outcome=\"unresolved\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_error_sent_before_its_maps_is_resolved_when_it_is_read() {
    let app = app().await;
    let token = app.admin_token().await;
    let session = app.setup_admin().await;
    // The deploy went out before the upload: the error is stored as sent.
    let sent = send_event(
        &app,
        browser_event("cc000000000000000000000000000001", "shop@3.0.0", true),
    )
    .await;
    let id = sent["id"].as_str().unwrap().to_string();
    let raw = event(&app, &token, &id).await;
    assert_eq!(
        raw["exception"]["values"][0]["stacktrace"]["frames"][1]["function"],
        "HTMLButtonElement.n"
    );
    let issue = app.api_get("/api/v1/issues", &token).await.json()["issues"][0]["id"]
        .as_i64()
        .unwrap();

    // The maps come: the issue page reads the original source, and stores it so.
    let data = bundle(Some("shop@3.0.0"), true);
    assert_eq!(
        upload_bundle(&app, &token, &data, json!({})).await["state"],
        "ok"
    );
    let page = app.get(&format!("/issues/{issue}"), &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("payNow"), "{}", page.body);
    assert!(page.body.contains("src/checkout.js"));
    assert!(page.body.contains("throw new Error(&quot;boom&quot;);"));
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_sourcemap_frames_total{outcome=\"resolved_late\"} 2"),
        "{metrics}"
    );
    // Read again through the API: resolved, with the frames as sent beside, and not counted
    // twice (the resolved body was stored).
    let stored = event(&app, &token, &id).await;
    let exception = &stored["exception"]["values"][0];
    assert_eq!(exception["stacktrace"]["frames"][1]["function"], "payNow");
    assert_eq!(exception["stacktrace"]["frames"][1]["lineno"], 3);
    assert_eq!(
        exception["raw_stacktrace"]["frames"][1]["function"],
        "HTMLButtonElement.n"
    );
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_sourcemap_frames_total{outcome=\"resolved_late\"} 2"),
        "{metrics}"
    );
    // It stays in its issue.
    let detail = app
        .api_get(&format!("/api/v1/issues/{issue}"), &token)
        .await
        .json();
    assert_eq!(detail["latest_event"]["event_id"], id);
}

/// A release bundle of older sentry-cli: no debug ids, no file types, the map named by a
/// `Sourcemap` header.
fn release_bundle(release: &str) -> Vec<u8> {
    let manifest = json!({
        "files": {
            "files/_/_/assets/app.min.js": {"url": "~/assets/app.min.js", "headers": {"Sourcemap": "app.min.js.map"}},
            "files/_/_/assets/app.min.js.map": {"url": "~/assets/app.min.js.map"},
        },
        "org": "acme",
        "release": release,
    });
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in [
        ("manifest.json", manifest.to_string()),
        ("files/_/_/assets/app.min.js", MINIFIED.to_string()),
        ("files/_/_/assets/app.min.js.map", source_map()),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(data.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

async fn declare(app: &App, token: &str, version: &str) {
    let body = json!({"version": version, "projects": ["default"]}).to_string();
    let made = app
        .api_post("/api/0/organizations/acme/releases/", token, &body)
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
}

fn thrower(stored: &Value) -> &Value {
    &stored["exception"]["values"][0]["stacktrace"]["frames"][1]
}

#[tokio::test]
async fn older_sentry_cli_uploads_release_files_one_by_one_or_in_chunks() {
    let app = app().await;
    let token = app.admin_token().await;
    declare(&app, &token, "shop@4.0.0").await;
    let files = "/api/0/projects/acme/default/releases/shop@4.0.0/files/";

    // One by one: the minified file naming its map, then the map.
    let minified = post_multipart(
        &app,
        &token,
        files,
        &[
            ("file", Some("app.min.js"), MINIFIED.as_bytes().to_vec()),
            ("name", None, b"~/assets/app.min.js".to_vec()),
            ("header", None, b"Sourcemap:app.min.js.map".to_vec()),
        ],
    )
    .await;
    assert_eq!(minified.status, StatusCode::CREATED, "{}", minified.body);
    let info = minified.json();
    assert_eq!(info["name"], "~/assets/app.min.js");
    assert_eq!(info["size"], MINIFIED.len());
    assert_eq!(info["sha1"], sha1(MINIFIED.as_bytes()));
    assert_eq!(info["headers"]["Sourcemap"], "app.min.js.map");
    let map = post_multipart(
        &app,
        &token,
        files,
        &[
            ("file", Some("app.min.js.map"), source_map().into_bytes()),
            ("name", None, b"~/assets/app.min.js.map".to_vec()),
        ],
    )
    .await;
    assert_eq!(map.status, StatusCode::CREATED, "{}", map.body);
    // The same name again: 409, which sentry-cli reports as already there.
    let again = post_multipart(
        &app,
        &token,
        files,
        &[
            ("file", Some("app.min.js.map"), b"{}".to_vec()),
            ("name", None, b"~/assets/app.min.js.map".to_vec()),
        ],
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.json()["detail"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    let listed = app.api_get(files, &token).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let listed = listed.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["~/assets/app.min.js.map", "~/assets/app.min.js"]);
    assert_eq!(listed[0]["sha1"], sha1(source_map().as_bytes()));
    let sent = send_event(
        &app,
        browser_event("dd000000000000000000000000000001", "shop@4.0.0", false),
    )
    .await;
    let stored = event(&app, &token, sent["id"].as_str().unwrap()).await;
    assert_eq!(thrower(&stored)["function"], "payNow", "{stored}");
    assert_eq!(thrower(&stored)["data"]["resolved_with"], "release");

    // In chunks: a release bundle, for the projects that declared the release.
    declare(&app, &token, "shop@5.0.0").await;
    let data = release_bundle("shop@5.0.0");
    let request = json!({"checksum": sha1(&data), "chunks": [sha1(&data)]});
    let assemble_path = "/api/0/organizations/acme/releases/shop@5.0.0/assemble/";
    let first = app
        .api_post(assemble_path, &token, &request.to_string())
        .await;
    assert_eq!(first.json()["state"], "not_found", "{}", first.body);
    let sent = upload(&app, &token, &[("file", &sha1(&data), data.clone())]).await;
    assert_eq!(sent.status, StatusCode::OK);
    let done = app
        .api_post(assemble_path, &token, &request.to_string())
        .await;
    assert_eq!(done.json()["state"], "ok", "{}", done.body);
    let sent = send_event(
        &app,
        browser_event("dd000000000000000000000000000002", "shop@5.0.0", false),
    )
    .await;
    let stored = event(&app, &token, sent["id"].as_str().unwrap()).await;
    assert_eq!(thrower(&stored)["function"], "payNow", "{stored}");

    // Refused, with the detail sentry-cli prints; nothing stored.
    let undeclared = app
        .api_post(
            "/api/0/organizations/acme/releases/nope@1/assemble/",
            &token,
            &request.to_string(),
        )
        .await;
    assert_eq!(undeclared.status, StatusCode::NOT_FOUND);
    assert_eq!(undeclared.json()["detail"], "Release not found");
    let unknown_release = app
        .api_get(
            "/api/0/projects/acme/default/releases/nope@1/files/",
            &token,
        )
        .await;
    assert_eq!(unknown_release.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_release.json()["detail"], "Release not found");
    let no_file = post_multipart(&app, &token, files, &[("name", None, b"~/x.js".to_vec())]).await;
    assert_eq!(no_file.status, StatusCode::BAD_REQUEST, "{}", no_file.body);
    assert!(no_file.json()["detail"].as_str().unwrap().contains("file"));
    let bad_header = post_multipart(
        &app,
        &token,
        files,
        &[
            ("file", Some("x.js"), b"x".to_vec()),
            ("header", None, b"no colon".to_vec()),
        ],
    )
    .await;
    assert_eq!(bad_header.status, StatusCode::BAD_REQUEST);
    let unknown = post_multipart(
        &app,
        &token,
        "/api/0/projects/acme/nope/releases/shop@4.0.0/files/",
        &[("file", Some("x.js"), b"x".to_vec())],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert!(unknown.json()["detail"].as_str().unwrap().contains("nope"));
    let read_only = app.read_token().await;
    let forbidden = post_multipart(
        &app,
        &read_only,
        files,
        &[("file", Some("x.js"), b"x".to_vec())],
    )
    .await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.body
    );
    // A file over 64 MiB, and a request over the route's limit: 413, the limit said.
    for size in [(64 << 20) + 1, 66 << 20] {
        let huge = post_multipart(
            &app,
            &token,
            files,
            &[
                ("name", None, b"~/huge.js".to_vec()),
                ("file", Some("huge.js"), vec![b'x'; size]),
            ],
        )
        .await;
        assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{size}");
        assert!(huge.json()["detail"].as_str().unwrap().contains("at most"));
    }
    let listed = app.api_get(files, &token).await.json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "nothing else was stored"
    );
}

#[tokio::test]
async fn hostile_uploads_are_refused_as_the_cli_expects_and_nothing_else_is_lost() {
    let app = app().await;
    let token = app.admin_token().await;
    let detail = |a: &Answer| a.json()["detail"].as_str().unwrap_or("").to_string();

    // A read-only token cannot upload.
    let reader = app.read_token().await;
    let refused = upload(&app, &reader, &[("file", &sha1(b"x"), b"x".to_vec())]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(detail(&refused).contains("admin"), "{}", refused.body);

    // A chunk whose content is not its name; a name that is no SHA-1; a gzip bomb.
    let wrong = upload(&app, &token, &[("file", &sha1(b"a"), b"b".to_vec())]).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(detail(&wrong).contains("SHA-1"), "{}", wrong.body);
    let unnamed = upload(&app, &token, &[("file", "chunk.bin", b"b".to_vec())]).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST);
    let zeros = vec![0u8; 9 << 20];
    let bomb = upload(&app, &token, &[("file_gzip", &sha1(&zeros), gzip(&zeros))]).await;
    assert_eq!(bomb.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", bomb.body);
    let not_gzip = upload(&app, &token, &[("file_gzip", &sha1(b"z"), b"z".to_vec())]).await;
    assert_eq!(not_gzip.status, StatusCode::BAD_REQUEST);
    assert!(detail(&not_gzip).contains("gzip"));

    // Assemblies that cannot succeed say why in `detail`, which the CLI prints.
    let garbage = b"this is not a zip file at all".to_vec();
    let failed = upload_bundle(&app, &token, &garbage, json!({})).await;
    assert_eq!(failed["state"], "error");
    assert!(
        failed["detail"].as_str().unwrap().contains("zip"),
        "{failed}"
    );
    let data = bundle(Some("shop@1"), true);
    let unknown = assemble(
        &app,
        &token,
        json!({"checksum": sha1(&data), "chunks": [sha1(&data)], "projects": ["nope"]}),
    )
    .await;
    assert_eq!(unknown["state"], "error");
    assert!(unknown["detail"].as_str().unwrap().contains("nope"));
    let unnamed_project = assemble(
        &app,
        &token,
        json!({"checksum": sha1(&data), "chunks": [sha1(&data)]}),
    )
    .await;
    assert_eq!(unnamed_project["state"], "error");
    // Chunks that do not make the checksum.
    upload(&app, &token, &[("file", &sha1(&data), data.clone())]).await;
    let mismatch = assemble(
        &app,
        &token,
        json!({"checksum": sha1(b"other"), "chunks": [sha1(&data)], "projects": ["default"]}),
    )
    .await;
    assert_eq!(mismatch["state"], "error");
    assert!(
        mismatch["detail"].as_str().unwrap().contains("SHA-1"),
        "{mismatch}"
    );
    let bad_checksum = app
        .api_post(
            "/api/0/organizations/acme/artifactbundle/assemble/",
            &token,
            r#"{"checksum": "xyz", "chunks": []}"#,
        )
        .await;
    assert_eq!(bad_checksum.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&bad_checksum).contains("SHA-1"));
    let metrics = app.get("/metrics", "").await.body;
    assert!(
        metrics.contains("vigie_artifact_bundles_total{outcome=\"refused\"} 2"),
        "{metrics}"
    );

    // After all that, a good bundle goes through, and ordinary events were never touched.
    let done = upload_bundle(&app, &token, &data, json!({})).await;
    assert_eq!(done["state"], "ok", "{done}");
    let bundles = app.api_get("/api/v1/sourcemaps", &token).await.json();
    assert_eq!(bundles["bundles"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_settings_tab_lists_the_bundles_and_an_admin_deletes_one() {
    let app = app().await;
    let token = app.admin_token().await;
    let session = app.setup_admin().await;
    let empty = app.get("/settings/sourcemaps", &session).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.body.contains("No source maps uploaded"),
        "{}",
        empty.body
    );
    assert!(empty.body.contains("SENTRY_PROJECT=default"));
    let data = bundle(Some("shop@<b>1</b>"), true);
    assert_eq!(
        upload_bundle(&app, &token, &data, json!({})).await["state"],
        "ok"
    );
    let page = app.get("/settings/sourcemaps", &session).await;
    assert!(page.body.contains("id=\"bundles\""), "{}", page.body);
    assert!(
        page.body.contains("shop@&lt;b&gt;1&lt;/b&gt;"),
        "the release, escaped: {}",
        page.body
    );
    assert!(page.body.contains(&sha1(&data)[..12]));
    let id = app
        .state
        .store
        .artifact_bundles(vigie_core::ProjectId(1))
        .await
        .unwrap()[0]
        .id;
    let csrf = page.csrf_field();
    let deleted = app
        .post_form(
            &format!("/settings/sourcemaps/{id}/delete"),
            &session,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert_eq!(deleted.location(), "/settings/sourcemaps");
    let after = app.get("/settings/sourcemaps", &session).await;
    assert!(after.body.contains("No source maps uploaded"));
    let again = app
        .post_form(
            &format!("/settings/sourcemaps/{id}/delete"),
            &session,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "a message says it is gone"
    );
}
