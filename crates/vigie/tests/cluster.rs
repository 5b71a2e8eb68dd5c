//! Several instances on one PostgreSQL, checked on the real binary: one leads and the other
//! serves; a job that fails through either alerts once; a key rotated on one is refused by
//! the other within a second; when the leader is killed with -9 the other takes over, its
//! stall sweep runs, and alerts keep arriving, each once; threshold rules and quotas count
//! what both instances received.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Waits until `check` holds, up to `limit`; answers how long it took.
fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

fn leads(server: &Server) -> bool {
    http_get(&format!("{}/metrics", server.url), None)
        .lines()
        .any(|line| line == "vigie_instance_leader 1")
}

fn api(server: &Server, token: &str, method: &str, path: &str, body: &str) -> String {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let answer = http(
        method,
        &format!("{}{path}", server.url),
        &headers,
        body.as_bytes(),
    );
    let status = status_of(&answer);
    assert!((200..300).contains(&status), "{method} {path}: {answer}");
    answer
}

/// Creates job `id` through `server` and fails it.
fn fail_job(server: &Server, token: &str, id: &str) {
    let job = format!(r#"{{"id": "{id}", "name": "{id}", "total": 10}}"#);
    api(server, token, "POST", "/api/v1/jobs", &job);
    let failed = r#"{"status": "failed", "message": "SMTP 421"}"#;
    api(
        server,
        token,
        "POST",
        &format!("/api/v1/jobs/{id}/finish"),
        failed,
    );
}

/// The lines of a Server-Sent Events stream at `url`, as they come.
fn stream(url: &str, token: &str) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut socket = std::net::TcpStream::connect(host).unwrap();
    write!(
        socket,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(socket).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// The job names of the alerts received so far.
fn alerted(receiver: &Receiver) -> Vec<String> {
    let mut titles: Vec<String> = receiver
        .received()
        .iter()
        .filter_map(|b| {
            let body: serde_json::Value = serde_json::from_str(b).ok()?;
            Some(body["title"].as_str()?.to_string())
        })
        .collect();
    titles.sort();
    titles
}

/// Two instances on a scratch database of their own (A started first, so it leads), with an
/// admin token; `None` (the test skipped) without PostgreSQL.
struct Pair {
    a: Server,
    b: Server,
    token: String,
    database: ScratchDatabase,
    _dir: tempfile::TempDir,
}

fn pair(name: &str, settings: &[(&str, &str)]) -> Option<Pair> {
    let Ok(admin) = std::env::var("VIGIE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: set VIGIE_TEST_POSTGRES_URL to run several instances on PostgreSQL");
        return None;
    };
    let database = ScratchDatabase::create(&admin, &format!("{name}_{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("VIGIE_DATABASE_URL", database.url.as_str())];
    env.extend_from_slice(settings);
    let a = Server::start_with(&dir.path().join("a"), &env);
    let b = Server::start_with(&dir.path().join("b"), &env);
    let token = token_made_offline(&database.url, "ops", "admin");
    Some(Pair {
        a,
        b,
        token,
        database,
        _dir: dir,
    })
}

/// A token made with `vigie token create` on the database at `url`, as a script would.
fn token_made_offline(url: &str, name: &str, scope: &str) -> String {
    let made = run(&[
        "token",
        "create",
        "--name",
        name,
        "--scope",
        scope,
        "--database",
        url,
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    stdout(&made).trim().to_string()
}

/// A webhook channel to `receiver`, made through `server`; answers its id.
fn hook(server: &Server, token: &str, receiver: &Receiver) -> String {
    let channel = api(
        server,
        token,
        "POST",
        "/api/v1/alerts/channels",
        &format!(
            r#"{{"name": "hook", "target": {{"kind": "webhook", "url": "{}/hook"}}}}"#,
            receiver.url
        ),
    );
    channel
        .split("\"id\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn two_instances_share_one_leader_alert_once_and_fail_over_when_it_is_killed() {
    let Some(Pair {
        a,
        b,
        token,
        database,
        _dir,
    }) = pair("vigie_cluster", &[])
    else {
        return;
    };
    assert!(
        a.banner.contains("Instance:") && a.banner.contains("(leads"),
        "{}",
        a.banner
    );
    assert!(b.banner.contains("(follows"), "{}", b.banner);
    assert!(leads(&a) && !leads(&b));

    let receiver = Receiver::start();
    let channel_id = hook(&a, &token, &receiver);
    let rule = format!(
        r#"{{"name": "failures", "rule": {{"kind": "job_failed"}}, "channels": [{channel_id}]}}"#
    );
    api(&b, &token, "POST", "/api/v1/alerts/rules", &rule);
    let stalls = format!(
        r#"{{"name": "stalls", "rule": {{"kind": "job_stalled"}}, "channels": [{channel_id}]}}"#
    );
    api(&a, &token, "POST", "/api/v1/alerts/rules", &stalls);
    let monitors = format!(
        r#"{{"name": "crons", "rule": {{"kind": "monitor_down"}}, "channels": [{channel_id}]}}"#
    );
    api(&a, &token, "POST", "/api/v1/alerts/rules", &monitors);
    // A heartbeat every minute that beats once, through the leader, and never again: its run is
    // missed two minutes later (the interval, then the shortest margin), long after the
    // leader is killed below, so only the new leader's monitor check can notice it.
    api(
        &a,
        &token,
        "PUT",
        "/api/v1/monitors/heartbeat",
        r#"{"schedule": {"type": "interval", "value": 1, "unit": "minute"}, "checkin_margin": 1}"#,
    );
    let beat = http(
        "GET",
        &format!("{}/ping/{}/heartbeat", a.url, a.key()),
        &[],
        b"",
    );
    assert_eq!(status_of(&beat), 200, "{beat}");
    let beaten = Instant::now();

    // A job that fails through the follower alerts once, sent by the leader.
    fail_job(&b, &token, "through-b");
    within(
        Duration::from_secs(10),
        "the alert of a failure on B",
        || alerted(&receiver).len() == 1,
    );

    // A job's page open on B shows the progress sent to A within a second.
    api(
        &a,
        &token,
        "POST",
        "/api/v1/jobs",
        r#"{"id": "live", "name": "live", "total": 10}"#,
    );
    let lines = stream(&format!("{}/api/v1/live/jobs/live", b.url), &token);
    let snapshot = lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(snapshot.starts_with("HTTP/1.1 200"), "{snapshot}");
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        if line.contains("\"snapshot\"") {
            break;
        }
    }
    let sent = Instant::now();
    api(
        &a,
        &token,
        "POST",
        "/api/v1/jobs/live/progress",
        r#"{"processed": 7, "messages": ["seven done"]}"#,
    );
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(1).saturating_sub(sent.elapsed()))
            .expect("B's stream shows A's progress within a second");
        if line.contains("\"processed\":7") && line.contains("seven done") {
            break;
        }
    }
    eprintln!(
        "a job page on B showed progress sent to A after {:?}",
        sent.elapsed()
    );

    // A live tail on B shows the lines sent to A within a second.
    let tail = stream(&format!("{}/api/v1/logs/tail?project=1", b.url), &token);
    let opening = tail.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(opening.starts_with("HTTP/1.1 200"), "{opening}");
    while let Ok(line) = tail.recv_timeout(Duration::from_secs(5)) {
        if line.starts_with("data:") {
            break;
        }
    }
    let sent = Instant::now();
    let auth = format!("Bearer {}", a.key());
    let lines = b"{\"message\": \"INV-0001 sent\"}\n{\"message\": \"INV-0002 sent\"}\n";
    let answer = http(
        "POST",
        &format!("{}/api/v1/logs?source=mailer", a.url),
        &[("Authorization", auth.as_str())],
        lines,
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    let mut seen = String::new();
    while !(seen.contains("INV-0001 sent") && seen.contains("INV-0002 sent")) {
        let line = tail
            .recv_timeout(Duration::from_secs(1).saturating_sub(sent.elapsed()))
            .expect("B's tail shows the lines sent to A within a second");
        seen.push_str(&line);
    }
    eprintln!(
        "a live tail on B showed lines sent to A after {:?}",
        sent.elapsed()
    );

    // A key rotated on A stops working on B within a second, on the Sentry path whose
    // project cache B had just filled as on the log path that reads the store.
    let key = a.key();
    let send_event = |key: &str| {
        let auth = format!("Sentry sentry_version=7, sentry_key={key}");
        status_of(&http(
            "POST",
            &format!("{}/api/1/store/", b.url),
            &[("X-Sentry-Auth", auth.as_str())],
            br#"{"message": "hello"}"#,
        ))
    };
    let send_log = |key: &str| {
        let auth = format!("Bearer {key}");
        status_of(&http(
            "POST",
            &format!("{}/api/v1/logs", b.url),
            &[("Authorization", auth.as_str())],
            b"{\"message\": \"hello\"}\n",
        ))
    };
    assert_eq!((send_event(&key), send_log(&key)), (200, 200));
    api(&a, &token, "POST", "/api/v1/projects/1/rotate-key", "");
    let took = within(
        Duration::from_millis(1500),
        "B refusing the old key",
        || (400..500).contains(&send_event(&key)) && send_log(&key) == 403,
    );
    eprintln!("the rotated key was refused by the other instance after {took:?}");

    // API tokens are cached by every instance; a revoked one is refused everywhere within a
    // second, whether revoked through an instance or from the command line.
    let me = |server: &Server, secret: &str| {
        let auth = format!("Bearer {secret}");
        let url = format!("{}/api/v1/me", server.url);
        status_of(&http("GET", &url, &[("Authorization", auth.as_str())], b""))
    };
    let listed = |name: &str| {
        let secret = token_made_offline(&database.url, name, "read");
        let tokens = body_of(&api(&a, &token, "GET", "/api/v1/tokens", ""));
        let tokens: Vec<serde_json::Value> = serde_json::from_str(&tokens).unwrap();
        let id = tokens
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {tokens:?}"))["id"]
            .to_string();
        (secret, id)
    };
    let (through_a, id) = listed("revoked-through-a");
    assert_eq!((me(&a, &through_a), me(&b, &through_a)), (200, 200));
    api(&a, &token, "DELETE", &format!("/api/v1/tokens/{id}"), "");
    assert_eq!(
        me(&a, &through_a),
        401,
        "refused at once where it was revoked"
    );
    let took = within(Duration::from_millis(1500), "B refusing the token", || {
        me(&b, &through_a) == 401
    });
    eprintln!("a token revoked on A was refused by B after {took:?}");
    let (from_cli, id) = listed("revoked-from-cli");
    assert_eq!((me(&a, &from_cli), me(&b, &from_cli)), (200, 200));
    let revoked = run(&["token", "revoke", &id, "--database", &database.url]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let took = within(
        Duration::from_millis(1500),
        "both refusing the token",
        || me(&a, &from_cli) == 401 && me(&b, &from_cli) == 401,
    );
    eprintln!("a token revoked from the command line was refused after {took:?}");

    // The leader dies without a word; the follower takes over within 10 s.
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let took = within(Duration::from_secs(10), "B taking the lead", || leads(&b));
    eprintln!("the follower led {took:?} after the leader was killed");

    fail_job(&b, &token, "after-failover");
    // The stall sweep goes on on the new leader: a job that stops reporting turns stalled.
    api(
        &b,
        &token,
        "POST",
        "/api/v1/jobs",
        r#"{"id": "quiet", "name": "quiet", "total": 10, "stall_after": 2}"#,
    );
    within(
        Duration::from_secs(20),
        "the alerts after the failover",
        || alerted(&receiver).len() == 3,
    );
    // The missed heartbeat: noticed by the new leader once its two minutes have passed. By
    // then the job "live" above, silent for more than its minute, has stalled too.
    within(
        Duration::from_secs(150).saturating_sub(beaten.elapsed()),
        "the missed heartbeat's alert",
        || alerted(&receiver).len() == 5,
    );
    eprintln!(
        "the missed heartbeat alerted {:?} after its check-in",
        beaten.elapsed()
    );
    // Anything sent twice would have arrived by now.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        alerted(&receiver),
        [
            "Job failed: after-failover",
            "Job failed: through-b",
            "Job stalled: live",
            "Job stalled: quiet",
            "Monitor heartbeat: run missed"
        ]
    );
    drop(b);
    drop(database);
}

/// One Sentry event through `server` with `key`; answers the status.
fn send_event(server: &Server, key: &str, message: &str) -> u16 {
    let auth = format!("Sentry sentry_version=7, sentry_key={key}");
    let body = format!(r#"{{"message": "{message}", "level": "error"}}"#);
    status_of(&http(
        "POST",
        &format!("{}/api/1/store/", server.url),
        &[("X-Sentry-Auth", auth.as_str())],
        body.as_bytes(),
    ))
}

#[test]
fn thresholds_and_quotas_count_what_every_instance_received() {
    // 40 events a minute for the whole server, whichever instance receives them.
    let Some(Pair {
        a,
        b,
        token,
        database: _database,
        _dir,
    }) = pair("vigie_counts", &[("VIGIE_ERRORS_EVENTS_PER_MINUTE", "40")])
    else {
        return;
    };
    assert!(leads(&a) && !leads(&b));
    // The rule is made on the follower: the leader hears of it through the change feed.
    let receiver = Receiver::start();
    let channel_id = hook(&b, &token, &receiver);
    let rule = format!(
        r#"{{"name": "burst", "rule": {{"kind": "error_events", "per_minute": 20}}, "channels": [{channel_id}]}}"#
    );
    api(&b, &token, "POST", "/api/v1/alerts/rules", &rule);
    std::thread::sleep(Duration::from_secs(3));
    // Everything below happens within one calendar minute (the quotas' unit).
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second > 35 {
        std::thread::sleep(Duration::from_secs(61 - second));
    }

    // 15 events through each: neither instance alone is over 20 a minute; together they are.
    let key = a.key();
    for i in 0..15 {
        assert_eq!(send_event(&a, &key, &format!("through A {i}")), 200);
        assert_eq!(send_event(&b, &key, &format!("through B {i}")), 200);
    }
    let took = within(
        Duration::from_secs(10),
        "the threshold alert over both instances",
        || !receiver.received().is_empty(),
    );
    eprintln!("a threshold split across two instances alerted after {took:?}");
    let titles = alerted(&receiver);
    assert_eq!(titles.len(), 1, "{titles:?}");
    assert!(
        titles[0].contains("error events in the last minute (over 20)"),
        "{titles:?}"
    );

    // 30 of the 40 are taken: once the instances have shared their counts, B accepts 10
    // more and refuses the rest, though it alone accepted only 15.
    std::thread::sleep(Duration::from_secs(3));
    let statuses: Vec<u16> = (0..15)
        .map(|i| send_event(&b, &key, &format!("late {i}")))
        .collect();
    assert_eq!(
        statuses,
        [[200; 10].as_slice(), [429; 5].as_slice()].concat(),
        "B's answers once 30 of 40 were taken"
    );
    // Nothing was sent twice.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(alerted(&receiver).len(), 1);
}
