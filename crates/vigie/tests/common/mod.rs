//! The harness the real-binary tests share: `vigie` as a user runs it, a `vigie serve` on a
//! free port with its banner, and a minimal HTTP client over a TCP socket.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn vigie() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    // Keep the developer's own configuration out of the tests.
    cmd.env_remove("VIGIE_DATABASE_URL")
        .env_remove("VIGIE_CONFIG")
        .env("VIGIE_LOG", "warn");
    cmd
}

pub fn run(args: &[&str]) -> Output {
    vigie().args(args).output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A read API token made offline on `data`, as a script would (`vigie token create`).
pub fn offline_token(data: &Path) -> String {
    let out = vigie()
        .args(["token", "create", "--name", "check", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A `vigie serve` on a free port, with its banner.
pub struct Server {
    pub child: Child,
    pub banner: String,
    pub url: String,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// Starts with extra `VIGIE_*` settings in the environment.
    pub fn start_with(data: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = vigie()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = String::new();
        while !banner.contains("Press Ctrl-C") {
            let line = lines.next().expect("banner line").unwrap();
            banner.push_str(&line);
            banner.push('\n');
        }
        let url = banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("UI:"))
            .unwrap()
            .trim()
            .to_string();
        Server { child, banner, url }
    }

    /// The default project's DSN, from the banner.
    pub fn dsn(&self) -> String {
        self.banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("Sentry DSN:"))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("a DSN in the banner")
            .to_string()
    }

    /// The default project's key (the DSN's user part).
    pub fn key(&self) -> String {
        let dsn = self.dsn();
        let rest = dsn.split("://").nth(1).expect("a scheme");
        rest.split('@').next().expect("a key").to_string()
    }

    pub fn interrupt(self) -> std::process::ExitStatus {
        self.signal("-INT")
    }

    /// Sends `signal` (`-INT`, `-TERM`) and waits up to 10 s for the process to end.
    pub fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "vigie did not stop on {signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.record_answers();
        let _ = self.child.kill();
    }
}

impl Server {
    /// Leaves every (method, route, status) this server answered, read from its `/metrics`,
    /// in `$CARGO_TARGET_TMPDIR/answered/`, for the check that the OpenAPI document promises
    /// exactly what the server answers (`vigie-server`'s `tests/http.rs`, run by `.ci/run`).
    fn record_answers(&self) {
        // Not while a failed test unwinds, nor from a server that has stopped.
        let address = self.url.trim_start_matches("http://").trim_end_matches('/');
        if std::thread::panicking() || std::net::TcpStream::connect(address).is_err() {
            return;
        }
        let metrics = http_get(&format!("{}/metrics", self.url), None);
        let lines: String = metrics
            .lines()
            .filter_map(|l| l.strip_prefix("vigie_http_requests_total{method=\""))
            .filter_map(|l| {
                let (method, rest) = l.split_once("\",route=\"")?;
                let (route, rest) = rest.split_once("\",status=\"")?;
                let (status, _) = rest.split_once('"')?;
                Some(format!("{method} {route} {status}\n"))
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("answered");
        let _ = std::fs::create_dir_all(&dir);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("bin-{}-{}-{nanos}.txt", std::process::id(), self.child.id());
        let _ = std::fs::write(dir.join(name), lines);
    }
}

/// A GET with an optional API token (the tests need no HTTP client crate).
pub fn http_get(url: &str, token: Option<&str>) -> String {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http("GET", url, &headers, b"")
}

/// One HTTP/1.1 request over a TCP socket; the whole answer (status line, headers, body).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    try_http(method, url, headers, body).unwrap()
}

/// [`http`], saying why when no answer came (the server refused or closed the connection).
pub fn try_http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<String> {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host)?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response)?;
    Ok(response)
}

pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A small tmpfs mounted for one test, unmounted when dropped.
pub struct SmallDisk(pub std::path::PathBuf);

impl SmallDisk {
    /// `None` (the test says it was skipped) where mounting is not allowed (not root).
    pub fn mount(at: &Path, mib: u32) -> Option<SmallDisk> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        out.status.success().then(|| SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs `statements` with `psql` on the database at `url`.
pub fn psql(url: &str, statements: &[&str]) {
    let mut cmd = std::process::Command::new("psql");
    cmd.args([url, "-v", "ON_ERROR_STOP=1", "-q"]);
    for s in statements {
        cmd.args(["-c", s]);
    }
    let out = cmd.output().expect("psql runs");
    assert!(
        out.status.success(),
        "psql {statements:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database of its own on the test PostgreSQL server, dropped at the end.
pub struct ScratchDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl ScratchDatabase {
    /// A fresh database `name` next to the one `admin` (a URL) names.
    pub fn create(admin: &str, name: &str) -> ScratchDatabase {
        psql(
            admin,
            &[
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                &format!("CREATE DATABASE {name}"),
            ],
        );
        let base = admin.rsplit_once('/').expect("a database in the URL").0;
        ScratchDatabase {
            admin: admin.to_string(),
            name: name.to_string(),
            url: format!("{base}/{name}"),
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        psql(&self.admin, &[&drop]);
    }
}

/// A webhook receiver on a free port: every request's body is kept; each is answered 204.
pub struct Receiver {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if let Some(body) = read_request_body(&mut stream) {
                    keep.lock().unwrap().push(body);
                }
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { url, bodies }
    }

    pub fn received(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The body of one HTTP/1.1 request (by its Content-Length).
fn read_request_body(stream: &mut std::net::TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(&mut reader, &mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The body of a whole HTTP answer, its chunks joined when it was sent chunked.
pub fn body_of(response: &str) -> String {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut joined = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        joined.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    joined
}
