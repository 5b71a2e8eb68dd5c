//! The real `vigie` binary, run as a user runs it: start-up banner, offline admin commands
//! against a running server, wrong arguments, unopenable databases, Ctrl-C.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn serve_prints_what_a_new_user_needs_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    assert!(server.banner.starts_with("Vigie "), "{}", server.banner);
    assert!(server.url.starts_with("http://127.0.0.1:"));
    let setup = format!("{}/setup?token=", server.url);
    assert!(server.banner.contains(&setup), "{}", server.banner);
    assert!(server.banner.contains("Sentry DSN:  http://"));
    assert!(server.banner.contains("(project \"default\")"));
    let ready_ms: u64 = server
        .banner
        .split("ready in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(ready_ms < 1000, "ready in {ready_ms} ms");
    assert!(dir.path().join("data/vigie.db").exists());

    let health = http_get(&format!("{}/health", server.url), None);
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    assert!(server.interrupt().success(), "exit code 0 after Ctrl-C");
}

/// A log sent to a file is plain text: no colour codes (they are for terminals).
#[test]
fn serve_logs_into_a_file_without_escape_codes() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut child = vigie()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .env("VIGIE_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if line.unwrap().contains("Press Ctrl-C") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG") || text.contains("INFO"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
}

#[test]
fn an_offline_token_works_against_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);

    // The DSNs printed offline are those of the running server, on its real port (it was
    // started on port 0, not the default 8610); its first start made the default project
    // and Vigie's own, in that order.
    let listed = vigie()
        .args(["project", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let host = server.url.trim_start_matches("http://");
    for (id, name) in [(1, "default"), (2, "vigie")] {
        assert!(
            stdout(&listed)
                .lines()
                .any(|l| l.contains(name) && l.contains(&format!("@{host}/{id}"))),
            "{}",
            stdout(&listed)
        );
    }

    // Created by another process while the server runs, on the same data directory.
    let out = vigie()
        .args([
            "token", "create", "--name", "ci", "--scope", "admin", "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert!(
        token.starts_with("vigie_"),
        "only the token on stdout: {token:?}"
    );
    assert!(stderr(&out).contains("shown only now"));

    let me = http_get(&format!("{}/api/v1/me", server.url), Some(&token));
    assert!(me.contains("\"name\":\"ci\""), "{me}");
    let projects = http_get(&format!("{}/api/v1/projects", server.url), Some(&token));
    assert!(projects.contains("\"name\":\"default\""), "{projects}");

    // A user added offline shows in the list; a second one with the same name is refused.
    let mut add = vigie()
        .args([
            "user",
            "add",
            "ops",
            "--role",
            "admin",
            "--password-stdin",
            "--data",
        ])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a long password\n")
        .unwrap();
    let added = add.wait_with_output().unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    assert_eq!(stdout(&added).trim(), "added user ops (admin)");
    let list = run(&["user", "list", "--data", data.to_str().unwrap()]);
    assert!(stdout(&list).contains("ops"), "{}", stdout(&list));
    let users = http_get(&format!("{}/api/v1/users", server.url), Some(&token));
    assert!(users.contains("\"username\":\"ops\""), "{users}");

    let tokens = run(&["token", "list", "--data", data.to_str().unwrap()]);
    assert!(stdout(&tokens).contains("ci"));
    assert!(
        !stdout(&tokens).contains(&token),
        "secrets are never listed"
    );
    let revoke = run(&["token", "revoke", "1", "--data", data.to_str().unwrap()]);
    assert!(revoke.status.success(), "{}", stderr(&revoke));
    let again = run(&["token", "revoke", "1", "--data", data.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).starts_with("error: no API token with id 1"));
    assert!(server.interrupt().success());
}

#[test]
fn projects_are_managed_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let created = run(&["project", "create", "billing", "--data", data]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("created project 2 \"billing\""));
    assert!(stdout(&created).contains("@127.0.0.1:8610/2"));
    let dup = run(&["project", "create", "billing", "--data", data]);
    assert_eq!(dup.status.code(), Some(1));
    assert_eq!(
        stderr(&dup).trim(),
        "error: a project named \"billing\" already exists"
    );
    let list = run(&["project", "list", "--data", data]);
    let text = stdout(&list);
    assert!(text.starts_with("ID  NAME"), "{text}");
    assert!(text.contains("default") && text.contains("billing"));
}

#[test]
fn wrong_arguments_get_one_line_and_exit_2() {
    for args in [
        &["serve", "--bogus"][..],
        &["user", "add"],
        &["token", "create", "--name", "x", "--scope", "root"],
        &["frobnicate"],
        &["token", "revoke", "not-a-number"],
        &["job", "list", "--status", "bogus"],
        &["job", "list", "--origin", "Celery"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    // A command that talks to a running Vigie says where its token comes from.
    for args in [&["search", "smtp"][..], &["tail"], &["issues", "list"]] {
        let out = vigie()
            .env_remove("VIGIE_TOKEN")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("vigie token create") && err.contains("VIGIE_TOKEN"),
            "{args:?}: {err}"
        );
    }
    let out = vigie()
        .env_remove("VIGIE_DSN")
        .args(["job", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("VIGIE_DSN"), "{}", stderr(&out));
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["token", "create", "--help"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Usage: vigie"), "{args:?}");
    }
}

#[test]
fn unopenable_databases_are_one_line_errors_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = vigie()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(file.join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: cannot open database "), "{err}");
    assert!(err.contains("a-file"), "{err}");

    let out = run(&[
        "user",
        "list",
        "--database",
        "postgres://vigie:hunter2@127.0.0.1:1/vigie",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("127.0.0.1:1") && !err.contains("hunter2"),
        "{err}"
    );

    let out = run(&["user", "list", "--database", "mysql://x/y"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unsupported database URL"));
}

#[test]
fn config_default_is_the_documented_file() {
    let out = run(&["config", "default"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("listen = \"127.0.0.1:8610\""));
    assert!(text.contains("VIGIE_"));
    // It is valid TOML that Vigie itself accepts as a config file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.toml");
    std::fs::write(&path, &text).unwrap();
    let out = vigie()
        .args(["project", "list", "--config"])
        .arg(&path)
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn job_run_reports_the_command_and_passes_its_exit_code_through() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let data_arg = data.to_str().unwrap();
    let token = run(&["token", "create", "--name", "cli", "--data", data_arg]);
    let token = stdout(&token).trim().to_string();
    let dsn = server.dsn();

    let out = vigie()
        .args([
            "job",
            "run",
            "--name",
            "Nightly import",
            "--stall-after",
            "5s",
            "--",
        ])
        .args([
            "sh",
            "-c",
            "echo row one; echo \"job=$VIGIE_JOB_ID\"; echo oops >&2; exit 3",
        ])
        .env("VIGIE_DSN", &dsn)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "the command's exit code");
    assert!(stdout(&out).contains("row one"), "output still shown");
    assert!(stderr(&out).contains("oops"));
    let job_id = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("job="))
        .unwrap()
        .to_string();
    assert_eq!(job_id.len(), 36, "the command sees VIGIE_JOB_ID");
    let first = stderr(&out).lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with(&format!("vigie: job {job_id}: http://"))
            && first.ends_with(&format!("/jobs/{job_id}")),
        "the job's id and page are said first: {first}"
    );

    // The DSN's key only sends; reading takes an API token.
    let refused = vigie()
        .args(["job", "show", &job_id])
        .env("VIGIE_DSN", &dsn)
        .env_remove("VIGIE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("needs an API token: pass --token or set VIGIE_TOKEN"),
        "{}",
        stderr(&refused)
    );

    let shown = vigie()
        .args(["job", "show", &job_id, "--json"])
        .env("VIGIE_DSN", &dsn)
        .env("VIGIE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", stderr(&shown));
    let job: serde_json::Value = serde_json::from_str(stdout(&shown).trim()).unwrap();
    assert_eq!(job["status"], "failed");
    assert_eq!(job["message"], "exit code 3");
    let lines: Vec<&str> = job["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(
        lines.contains(&"row one") && lines.contains(&"oops"),
        "{lines:?}"
    );

    // Into a file or a pipe, --follow writes lines: no carriage returns, no escape codes.
    let followed = vigie()
        .args(["job", "show", &job_id, "--follow"])
        .env("VIGIE_DSN", &dsn)
        .env("VIGIE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(followed.status.success(), "{}", stderr(&followed));
    let text = stdout(&followed);
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
    assert!(text.contains("Nightly import"), "{text}");

    let list = vigie()
        .args(["job", "list"])
        .env("VIGIE_DSN", &dsn)
        .env("VIGIE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        stdout(&list).contains("Nightly import"),
        "{}",
        stdout(&list)
    );
    assert!(stdout(&list).contains("KIND"), "{}", stdout(&list));
    // `vigie job run` reports work: no Celery task to show, and the command says where to look.
    let celery = vigie()
        .args(["job", "list", "--origin", "celery"])
        .env("VIGIE_DSN", &dsn)
        .env("VIGIE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(celery.status.success(), "{}", stderr(&celery));
    assert_eq!(stdout(&celery).trim(), "No job of origin celery.");

    let missing = vigie()
        .args(["job", "show", "nope"])
        .env("VIGIE_DSN", &dsn)
        .env("VIGIE_TOKEN", &token)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no job \"nope\""),
        "{}",
        stderr(&missing)
    );

    // Vigie unreachable: the command runs anyway.
    let offline = vigie()
        .args(["job", "run", "--name", "x", "--", "true"])
        .env(
            "VIGIE_DSN",
            "http://0123456789abcdef0123456789abcdef@127.0.0.1:1/1",
        )
        .output()
        .unwrap();
    assert_eq!(offline.status.code(), Some(0));
    assert!(stderr(&offline).contains("running the command anyway"));

    let bad = vigie()
        .args(["job", "list"])
        .env("VIGIE_DSN", "not a dsn")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("VIGIE_DSN"), "{}", stderr(&bad));
}

#[test]
fn import_then_search_with_grep_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let log = dir.path().join("worker.log");
    std::fs::write(
        &log,
        "2026-11-21 21:15:00,250 ERROR invoices.send: smtp refused\n\
         Traceback (most recent call last):\n  File \"send.py\", line 3, in <module>\n\
         smtplib.SMTPDataError: (421, b'too many messages')\n\
         2026-11-21 21:15:01,000 INFO invoices.send: retrying\n",
    )
    .unwrap();
    let data_arg = data.to_str().unwrap();
    let import = run(&["import", log.to_str().unwrap(), "--data", data_arg]);
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(
        stdout(&import).ends_with("5 lines read, 2 records imported, 0 unparsed (kept raw)\n"),
        "{}",
        stdout(&import)
    );
    let bad_format = run(&[
        "import",
        log.to_str().unwrap(),
        "--format",
        "apache",
        "--data",
        data_arg,
    ]);
    assert_eq!(bad_format.status.code(), Some(1));
    assert!(
        stderr(&bad_format).contains("--format \"apache\": use auto or one of journald-json"),
        "{}",
        stderr(&bad_format)
    );
    let missing = run(&["import", "/nonexistent.log", "--data", data_arg]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).starts_with("error: cannot open /nonexistent.log"));

    let token = stdout(&run(&[
        "token", "create", "--name", "cli", "--data", data_arg,
    ]))
    .trim()
    .to_string();
    let search = |args: &[&str]| {
        vigie()
            .args(["search", "--url", &server.url, "--token", &token])
            .args(args)
            .output()
            .unwrap()
    };
    let found = search(&["smtp", "level:error", "--raw"]);
    assert_eq!(found.status.code(), Some(0), "{}", stderr(&found));
    assert!(
        stdout(&found).starts_with("smtp refused\nTraceback"),
        "{}",
        stdout(&found)
    );
    assert!(
        stdout(&found).contains("SMTPDataError"),
        "the traceback is one record"
    );
    let nothing = search(&["nosuchword"]);
    assert_eq!(nothing.status.code(), Some(1), "no match: 1, like grep");
    assert_eq!(stdout(&nothing), "");
    let wrong = search(&["levl:error"]);
    assert_eq!(wrong.status.code(), Some(2), "an error: 2, like grep");
    assert!(stderr(&wrong).contains("levl"), "{}", stderr(&wrong));
    let unreachable = vigie()
        .args([
            "search",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            &token,
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(stderr(&unreachable).starts_with("error: cannot reach Vigie at http://127.0.0.1:9"));
    assert!(server.interrupt().success());
}

/// `vigie import` to a running Vigie, with an admin token or the project's DSN: the same
/// detection and summary, records read back exactly (time to the nanosecond, the level as
/// written, a traceback whole); `--follow` goes on through a rotation until Ctrl-C.
#[test]
fn import_to_a_running_vigie_and_follow_a_file_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let data_arg = data.to_str().unwrap();
    let token = stdout(&run(&[
        "token", "create", "--name", "cli", "--scope", "admin", "--data", data_arg,
    ]))
    .trim()
    .to_string();
    let pg = dir.path().join("postgresql.log");
    std::fs::write(
        &pg,
        "2026-11-21 21:15:00.123 UTC [4242] ERROR:  duplicate key value\n\
         2026-11-21 21:15:00.123 UTC [4242] DETAIL:  Key (id)=(7) already exists.\n\
         2026-11-21 21:15:01.000 UTC [4243] LOG:  checkpoint starting: time\n",
    )
    .unwrap();
    let sent = vigie()
        .args(["import", "--url", &server.url, "--token", &token])
        .arg(&pg)
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(
        stdout(&sent).ends_with("3 lines read, 2 records imported, 0 unparsed (kept raw)\n"),
        "{}",
        stdout(&sent)
    );
    assert!(
        stderr(&sent).contains("postgresql.log: postgres"),
        "{}",
        stderr(&sent)
    );
    let search = |query: &str| -> Vec<serde_json::Value> {
        let out = vigie()
            .args([
                "search",
                "--url",
                &server.url,
                "--token",
                &token,
                "--json",
                query,
            ])
            .output()
            .unwrap();
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let found = search("source:postgresql.log");
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["time"], "2026-11-21T21:15:00.123000000Z");
    assert_eq!(
        (&found[0]["level"], &found[0]["level_raw"]),
        (&"error".into(), &"ERROR".into())
    );
    assert_eq!(found[0]["fields"]["pid"], "4242");
    assert!(found[0]["message"]
        .as_str()
        .unwrap()
        .contains("\nDETAIL:  Key (id)=(7)"));
    assert_eq!(found[1]["level_raw"], "LOG");

    // Wrong arguments say what to do.
    let no_token = vigie()
        .env_remove("VIGIE_TOKEN")
        .args(["import", "--url", &server.url])
        .arg(&pg)
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(1));
    assert!(
        stderr(&no_token).contains("an admin API token is needed too"),
        "{}",
        stderr(&no_token)
    );
    let bad_key = vigie()
        .args(["import", "--dsn", &server.dsn().replace("@", "x@")])
        .arg(&pg)
        .output()
        .unwrap();
    assert_eq!(bad_key.status.code(), Some(1));
    assert!(
        stderr(&bad_key).contains("vigie answered 403"),
        "{}",
        stderr(&bad_key)
    );

    // --follow with the DSN: lines as they come, through a rotation, until Ctrl-C.
    let logs = dir.path().join("app");
    std::fs::create_dir_all(&logs).unwrap();
    let app = logs.join("app.log");
    std::fs::write(&app, "2026-11-21 21:16:00,000 INFO shop: first F-1\n").unwrap();
    let mut follower = vigie()
        .args(["import", "--follow", "--dsn", &server.dsn()])
        .arg(logs.join("*.log"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |query: &str, n: usize| -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = search(query);
            if found.len() >= n || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(wait_for("F-1", 1).len(), 1);
    let mut file = std::fs::OpenOptions::new().append(true).open(&app).unwrap();
    writeln!(file, "2026-11-21 21:16:01,000 WARNING shop: second F-2").unwrap();
    std::fs::rename(&app, logs.join("app.log.1")).unwrap();
    std::fs::write(&app, "2026-11-21 21:16:02,000 ERROR shop: third F-3\n").unwrap();
    let found = wait_for("source:app.log", 3);
    let levels: Vec<&str> = found.iter().map(|r| r["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["info", "warning", "error"], "{found:?}");
    Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .unwrap();
    let status = follower.wait().unwrap();
    assert!(status.success());
    let mut said = String::new();
    std::io::Read::read_to_string(follower.stdout.as_mut().unwrap(), &mut said).unwrap();
    assert_eq!(said, "3 records imported\n");
    assert!(server.interrupt().success());
}

/// `vigie backup` copies a running server's database; a second server on the same data
/// directory, or a restore under the running one, is refused; the backup restored into a new
/// directory serves the same data.
#[test]
fn backup_while_serving_then_restore_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let key = server.key();
    let auth = format!("Bearer {key}");
    let sent = http(
        "POST",
        &format!("{}/api/v1/jobs", server.url),
        &[("Authorization", auth.as_str())],
        br#"{"id": "nightly-export", "name": "Nightly export", "total": 3}"#,
    );
    assert_eq!(status_of(&sent), 201, "{sent}");

    let file = dir.path().join("vigie-backup.db");
    let data_arg = data.to_str().unwrap();
    let made = run(&["backup", file.to_str().unwrap(), "--data", data_arg]);
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(stderr(&made).contains("backed up"), "{}", stderr(&made));
    let again = run(&["backup", file.to_str().unwrap(), "--data", data_arg]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );

    let second = vigie()
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data_arg])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("a Vigie server is running on this data directory"),
        "{}",
        stderr(&second)
    );
    let under = run(&["restore", file.to_str().unwrap(), "--data", data_arg]);
    assert_eq!(under.status.code(), Some(1));
    assert!(
        stderr(&under).contains("stop it first"),
        "{}",
        stderr(&under)
    );
    drop(server);

    let elsewhere = dir.path().join("restored");
    let restored = run(&[
        "restore",
        file.to_str().unwrap(),
        "--data",
        elsewhere.to_str().unwrap(),
    ]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let server = Server::start(&elsewhere);
    assert_eq!(server.key(), key, "the same projects and keys");
    let job = http(
        "GET",
        &format!("{}/api/v1/jobs/nightly-export", server.url),
        &[("Authorization", auth.as_str())],
        b"",
    );
    // A project key sends; reading needs a token: the job is there if it is refused for that
    // reason and not as unknown.
    assert_eq!(status_of(&job), 403, "{job}");
    let token = run(&[
        "token",
        "create",
        "--name",
        "t",
        "--data",
        elsewhere.to_str().unwrap(),
    ]);
    let token = stdout(&token).trim().to_string();
    let job = http_get(
        &format!("{}/api/v1/jobs/nightly-export", server.url),
        Some(&token),
    );
    assert_eq!(status_of(&job), 200, "{job}");
    assert!(job.contains("Nightly export"), "{job}");

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"just some text").unwrap();
    let refused = run(&[
        "restore",
        junk.to_str().unwrap(),
        "--data",
        dir.path().join("other").to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("not an SQLite database"),
        "{}",
        stderr(&refused)
    );
}
