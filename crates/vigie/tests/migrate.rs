//! Moving up, on the real binary: an embedded installation with every kind of data is copied
//! into PostgreSQL by `vigie storage migrate`, killed with -9 mid-copy and run again, and a
//! server on PostgreSQL then answers what the embedded one answered.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// What the API says of the installation, in the parts that must survive the move.
fn answers(server: &Server, token: &str) -> Vec<serde_json::Value> {
    let get = |path: &str| -> serde_json::Value {
        let answer = http_get(&format!("{}{path}", server.url), Some(token));
        assert_eq!(status_of(&answer), 200, "{path}: {answer}");
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    };
    let job = get("/api/v1/jobs/send-1");
    let issues = get("/api/v1/issues?project=1");
    let search = get("/api/v1/logs/search?project=1&q=smtp&limit=3");
    let stats = get("/api/v1/logs/stats?project=1");
    let monitors = get("/api/v1/monitors?project=1");
    let tokens = get("/api/v1/me");
    vec![
        serde_json::json!([
            job["processed"],
            job["ok"],
            job["failed"],
            job["status"],
            job["finished_at"]
        ]),
        issues["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| serde_json::json!([i["id"], i["title"], i["events"], i["last_seen"]]))
            .collect(),
        search["hits"].clone(),
        stats["total"].clone(),
        monitors
            .as_array()
            .unwrap()
            .iter()
            .map(|m| serde_json::json!([m["slug"], m["status"]]))
            .collect(),
        tokens["name"].clone(),
    ]
}

/// Rows of `table` in the database at `url` (0 while it does not exist yet).
fn rows_in(url: &str, table: &str) -> i64 {
    let out = std::process::Command::new("psql")
        .args([url, "-tAc", &format!("SELECT count(*) FROM {table}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn an_embedded_installation_moves_to_postgres_through_an_interruption() {
    let Ok(admin) = std::env::var("VIGIE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: set VIGIE_TEST_POSTGRES_URL to migrate into PostgreSQL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let token = run(&[
        "token", "create", "--name", "ops", "--scope", "admin", "--data", data_arg,
    ]);
    assert!(token.status.success(), "{}", stderr(&token));
    let token = stdout(&token).trim().to_string();

    // Every kind of data: events and issues, log lines, a job with many items, a monitor.
    let server = Server::start(&data);
    let key = server.key();
    let sentry = format!("Sentry sentry_version=7, sentry_key={key}");
    for i in 0..30 {
        let title = ["SMTP refused", "Timeout reading", "KeyError: user"][i % 3];
        let body = format!(r#"{{"message": "{title}", "level": "error"}}"#);
        let answer = http(
            "POST",
            &format!("{}/api/1/store/", server.url),
            &[("X-Sentry-Auth", sentry.as_str())],
            body.as_bytes(),
        );
        assert_eq!(status_of(&answer), 200, "{answer}");
    }
    let bearer = format!("Bearer {key}");
    let lines: String = (0..5_000)
        .map(|i| format!("{{\"message\": \"INV-{i} sent through smtp\"}}\n"))
        .collect();
    let answer = http(
        "POST",
        &format!("{}/api/v1/logs?source=mailer", server.url),
        &[("Authorization", bearer.as_str())],
        lines.as_bytes(),
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    let json = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let post = |path: &str, body: &str| {
        let answer = http(
            "POST",
            &format!("{}{path}", server.url),
            &json,
            body.as_bytes(),
        );
        assert!((200..300).contains(&status_of(&answer)), "{path}: {answer}");
    };
    post("/api/v1/jobs", r#"{"id": "send-1", "name": "Bulk send"}"#);
    // Enough items that the copy takes a while: it is killed in the middle.
    for batch in 0..40 {
        let items: Vec<String> = (0..1_000)
            .map(|i| {
                let status = if i % 50 == 0 { "error" } else { "ok" };
                format!(r#"{{"key": "member-{batch}-{i}@example.org", "status": "{status}"}}"#)
            })
            .collect();
        post(
            "/api/v1/jobs/send-1/items",
            &format!(r#"{{"items": [{}]}}"#, items.join(",")),
        );
    }
    post("/api/v1/jobs/send-1/finish", r#"{"status": "completed"}"#);
    let check_in = http(
        "GET",
        &format!("{}/ping/{key}/nightly-export", server.url),
        &[],
        b"",
    );
    assert!(status_of(&check_in) < 300, "{check_in}");
    let before = answers(&server, &token);
    drop(server);

    let database = ScratchDatabase::create(&admin, &format!("vigie_move_{}", std::process::id()));
    let url = database.url.as_str();

    // Killed with -9 once some items are in PostgreSQL and not all.
    let mut copy = vigie()
        .args(["storage", "migrate", "--data", data_arg, "--to", url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while rows_in(url, "job_items") == 0 {
        assert!(
            copy.try_wait().unwrap().is_none(),
            "the copy ended before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no item copied"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    copy.kill().unwrap();
    copy.wait().unwrap();
    let part = rows_in(url, "job_items");
    assert!(
        part > 0 && part < 40_000,
        "{part} items copied before the kill"
    );

    // A server on the half-copied data directory would be a mistake: the copy is finished
    // first, by the same command, and nothing is doubled or lost.
    let again = run(&["storage", "migrate", "--data", data_arg, "--to", url]);
    assert!(again.status.success(), "{}", stderr(&again));
    let said = stdout(&again);
    assert!(
        said.contains("finished copying") && said.contains("every count matches"),
        "{said}"
    );
    assert!(
        said.contains("job_items") && said.contains("40000"),
        "{said}"
    );
    assert_eq!(rows_in(url, "job_items"), 40_000);
    assert_eq!(rows_in(url, "events"), 30);

    // Once done, the target is a Vigie's: a third run is refused, saying why.
    let third = run(&["storage", "migrate", "--data", data_arg, "--to", url]);
    assert!(!third.status.success());
    assert!(stderr(&third).contains("not empty"), "{}", stderr(&third));

    // Two instances on PostgreSQL answer what the embedded server answered, and new rows
    // take new ids (the sequences moved past the copied ones).
    let env = [("VIGIE_DATABASE_URL", url)];
    let a = Server::start_with(&dir.path().join("a"), &env);
    let b = Server::start_with(&dir.path().join("b"), &env);
    assert_eq!(answers(&a, &token), before);
    assert_eq!(answers(&b, &token), before);
    let answer = http(
        "POST",
        &format!("{}/api/1/store/", b.url),
        &[("X-Sentry-Auth", sentry.as_str())],
        br#"{"message": "A new kind of failure", "level": "error"}"#,
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    let issues = http_get(&format!("{}/api/v1/issues?project=1", a.url), Some(&token));
    assert!(issues.contains("A new kind of failure"), "{issues}");
    assert!(issues.contains("\"total\":4"), "{issues}");
    drop((a, b));
    drop(database);
}

#[test]
fn migrate_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    let not_postgres = run(&[
        "storage",
        "migrate",
        "--data",
        data.to_str().unwrap(),
        "--to",
        "mysql://db/vigie",
    ]);
    assert!(!not_postgres.status.success());
    assert!(
        stderr(&not_postgres).contains("--to takes a PostgreSQL URL"),
        "{}",
        stderr(&not_postgres)
    );
    let no_data = run(&[
        "storage",
        "migrate",
        "--data",
        data.to_str().unwrap(),
        "--to",
        "postgres://127.0.0.1:1/vigie",
    ]);
    assert!(!no_data.status.success());
    assert!(
        stderr(&no_data).contains("no database at"),
        "{}",
        stderr(&no_data)
    );
    let missing = run(&["storage", "migrate"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("--to"), "{}", stderr(&missing));
}
