//! The `logs` scenario: a week of a busy application's logs, ingested, stored and searched.
//!
//! 1. **Lines**: `lines` realistic JSON lines (structlog's shape, ~150 B: requests, invoices
//!    sent, SMTP retries, Celery tasks, cache misses, the odd traceback-less error) spread over
//!    the last 7 days, written to one plain file first. Ten of them hold the rare word
//!    `quasar7731`.
//! 2. **Ingest**: that file, cut in batches of `batch` lines, posted to `POST /api/v1/logs` by
//!    `concurrency` writers (three sources in turn). Every answer comes after the records are
//!    durable, so lines/s is durable throughput.
//! 3. **Disk**: the data directory's size against the file's.
//! 4. **Search**: p50 of 21 runs each of the rare word over all time, a one-hour window a few
//!    days back (first page of 100 and the page's counts + histogram), and errors over all
//!    time; beside each, `rg` on the same file, warm, median of 5.
//! 5. **Syslog UDP**: a second server listening for syslog on UDP; datagrams at rising rates
//!    for three seconds each, then the count stored: the rate at which loss begins.

use super::{add_admin, client, json_of, login, percentile, Server};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

pub struct Options {
    pub lines: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub udp_rates: Vec<u64>,
    /// Keep the generated file here instead of a temporary directory.
    pub file: Option<PathBuf>,
}

const RARE: &str = "quasar7731";
const RARE_COUNT: usize = 10;
const WEEK_NS: i64 = 7 * 86_400 * 1_000_000_000;
const SOURCES: [&str; 3] = ["web", "worker", "mailer"];
/// How long each syslog rate is held: long enough to fill the socket's receive buffer.
const UDP_SECONDS: u64 = 3;

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario logs: {} ({} cores)",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = tempfile::tempdir()?;
    let file = opts
        .file
        .clone()
        .unwrap_or_else(|| dir.path().join("lines.jsonl"));
    let now = now_ns();
    let started = Instant::now();
    let raw_bytes = generate(&file, opts.lines, now)?;
    println!(
        "  lines: {} lines, {:.1} MiB, {:.0} B/line, written in {:.1} s ({})",
        opts.lines,
        mib(raw_bytes),
        raw_bytes as f64 / opts.lines as f64,
        started.elapsed().as_secs_f64(),
        file.display()
    );

    let (server, _) = Server::start(binary)?;
    let key = server.key.clone().context("no DSN in the banner")?;
    ingest(&server.url, &key, &file, &opts).await?;
    let disk = dir_size(server.data.path())?;
    println!(
        "  disk: data directory {:.1} MiB for {:.1} MiB of lines: {:.3}× raw",
        mib(disk),
        mib(raw_bytes),
        disk as f64 / raw_bytes as f64
    );
    // The directory's size moves with the write-ahead log's checkpoints (±25 % from run to
    // run); the blocks' own bytes are what compression decides.
    let stored = stored_bytes(binary, &server).await?;
    println!(
        "  blocks: {:.1} MiB stored for the same lines: {:.3}× raw (with their word filters)",
        mib(stored),
        stored as f64 / raw_bytes as f64
    );
    println!(
        "  RSS after ingest: {:.1} MiB",
        server.rss_kib()? as f64 / 1024.0
    );
    searches(binary, &server, &file, now).await?;
    drop(server);
    syslog_udp(binary, &opts.udp_rates).await
}

/// The bytes of every log block stored (compressed records and word filter), as `GET
/// /api/v1/logs/sources` counts them: the data directory less the write-ahead log, the group
/// filters and the other tables.
async fn stored_bytes(binary: &Path, server: &Server) -> Result<u64> {
    let token = server.admin_token(binary)?;
    let sources = json_of(
        client()?
            .get(url(&server.url, "/api/v1/logs/sources", &[])?)
            .bearer_auth(token),
    )
    .await?;
    Ok(sources
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["stored_bytes"].as_u64())
        .sum())
}

// --- the lines ---

/// A small, fast, deterministic generator (xorshift64*): the same lines on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Writes `count` lines over the week before `now`, oldest first; returns the bytes written.
pub(crate) fn generate(path: &Path, count: usize, now: i64) -> Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = now - WEEK_NS;
    let step = WEEK_NS / count.max(1) as i64;
    let rare_every = (count / RARE_COUNT).max(1);
    let mut written = 0u64;
    let mut line = String::with_capacity(256);
    for i in 0..count {
        line.clear();
        let time = start + i as i64 * step + rng.below(step.max(1) as u64) as i64;
        let rare = i % rare_every == rare_every / 2;
        write_line(&mut line, &mut rng, time, rare);
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

fn write_line(line: &mut String, rng: &mut Rng, time: i64, rare: bool) {
    use std::fmt::Write as _;
    let _ = write!(line, "{{\"timestamp\":\"{}\",", rfc3339(time));
    let roll = rng.below(1000);
    let n = rng.below(1_000_000);
    let ms = 3 + rng.below(2000);
    let (level, logger) = match roll {
        0..=99 => ("debug", "cache"),
        100..=749 => (
            "info",
            ["django.request", "invoices.send", "celery.worker"][(n % 3) as usize],
        ),
        750..=899 => ("warning", "invoices.smtp"),
        900..=998 => ("error", "invoices.render"),
        _ => ("critical", "celery.worker"),
    };
    let _ = write!(
        line,
        "\"level\":\"{level}\",\"logger\":\"{logger}\",\"event\":\""
    );
    if rare {
        let _ = write!(line, "payment gateway answered {RARE} for order O-{n:06}");
    } else {
        match logger {
            "cache" => {
                let _ = write!(line, "cache miss for product:{n} (ttl {}s)", ms % 600);
            }
            "django.request" => {
                let verb = if n.is_multiple_of(5) { "POST" } else { "GET" };
                let status = [200, 200, 200, 201, 302, 404][(n % 6) as usize];
                let _ = write!(
                    line,
                    "{verb} /api/orders/{} {status} {ms}ms user={}",
                    n % 50_000,
                    n % 3000
                );
            }
            "invoices.send" => {
                let _ = write!(
                    line,
                    "invoice INV-{n:06} sent to customer{}@example.com in {ms} ms",
                    n % 20_000
                );
            }
            "celery.worker" if level == "critical" => {
                let _ = write!(
                    line,
                    "worker lost: task sync.fetch_feed[{n:08x}] killed by signal 9"
                );
            }
            "celery.worker" => {
                let _ = write!(
                    line,
                    "Task sync.fetch_feed[{:08x}-{:04x}] succeeded in {}.{:03}s: None",
                    rng.next() as u32,
                    n % 65_536,
                    ms / 1000,
                    ms % 1000
                );
            }
            "invoices.smtp" => {
                let _ = write!(
                    line,
                    "SMTP 421 too many messages from 10.0.{}.{}, retrying in {}s",
                    n % 256,
                    (n / 256) % 256,
                    ms % 60
                );
            }
            _ => {
                let _ = write!(
                    line,
                    "could not render invoice INV-{n:06}: KeyError 'vat_rate' (template v{})",
                    n % 7
                );
            }
        }
    }
    let _ = writeln!(line, "\",\"pid\":{}}}", 4000 + n % 8);
}

/// `2026-11-21T22:15:00.123456Z` from ns since the epoch (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1000;
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days → civil date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub(crate) fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

// --- ingest ---

/// Posts the file's lines; prints and answers durable lines per second.
pub(crate) async fn ingest(base: &str, key: &str, file: &Path, opts: &Options) -> Result<f64> {
    let key = key.to_string();
    let http = client()?;
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>, usize)>(opts.concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    // The reader cuts the file into bodies on its own thread, ahead of the writers.
    let (path, batch) = (file.to_path_buf(), opts.batch);
    let reader = std::thread::spawn(move || -> Result<()> {
        let mut lines = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        let (mut body, mut count, mut index) = (Vec::with_capacity(batch * 200), 0, 0);
        loop {
            let n = lines.read_until(b'\n', &mut body)?;
            count += usize::from(n > 0);
            if (n == 0 && count > 0) || count == batch {
                let full = std::mem::replace(&mut body, Vec::with_capacity(batch * 200));
                if tx.blocking_send((index, full, count)).is_err() {
                    break;
                }
                (count, index) = (0, index + 1);
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    });
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..opts.concurrency {
        let (http, rx, key) = (http.clone(), rx.clone(), key.clone());
        let base = base.to_string();
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some((index, body, count)) = rx.lock().await.recv().await else {
                    break;
                };
                let source = SOURCES[index % SOURCES.len()];
                let t = Instant::now();
                let answer = http
                    .post(format!("{base}/api/v1/logs?source={source}"))
                    .bearer_auth(&key)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await?;
                let status = answer.status();
                let value: Value = answer.json().await?;
                if !status.is_success() || value["accepted"].as_u64() != Some(count as u64) {
                    bail!("batch {index}: {status} {value}");
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for w in writers {
        latencies.extend(w.await??);
    }
    reader.join().expect("reader thread")?;
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    println!(
        "  ingest: {} lines as JSON lines, batches of {}, {} writers: {:.0} lines/s \
         ({:.1} s; batch p50 {:.1} ms, p99 {:.1} ms)",
        opts.lines,
        opts.batch,
        opts.concurrency,
        opts.lines as f64 / secs,
        secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    Ok(opts.lines as f64 / secs)
}

// --- search ---

pub(crate) struct Timing {
    pub(crate) p50: f64,
    pub(crate) max: f64,
    pub(crate) answer: Value,
}

pub(crate) async fn timed(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    runs: usize,
) -> Result<Timing> {
    let mut times = Vec::new();
    let mut answer = Value::Null;
    for _ in 0..runs {
        let t = Instant::now();
        let response = http.get(url).header("cookie", session).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("{url}: {status} {body}");
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        answer = body;
    }
    times.sort_by(f64::total_cmp);
    Ok(Timing {
        p50: percentile(&times, 0.5),
        max: times.last().copied().unwrap_or_default(),
        answer,
    })
}

/// The `parse-logs` scenario: this build's JSON-lines parser over `count` generated lines.
pub fn parse_only(count: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("lines.jsonl");
    generate(&file, count, now_ns())?;
    let text = std::fs::read(&file)?;
    let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
    let bodies: Vec<Vec<u8>> = lines.chunks(4096).map(|c| c.concat()).collect();
    let mut best = f64::MAX;
    for _ in 0..7 {
        let started = Instant::now();
        let mut parsed = 0;
        for body in &bodies {
            parsed += vigie_protocol::logs::jsonlines::parse(body, "bench", now_ns())
                .records
                .len();
        }
        if parsed != count {
            bail!("{parsed} records parsed from {count} lines");
        }
        best = best.min(started.elapsed().as_secs_f64() * 1e9 / count as f64);
    }
    println!(
        "scenario parse-logs: {count} lines ({} bytes): {best:.0} ns per line (best of 7)",
        text.len()
    );
    Ok(())
}

/// `rg` on the same file, warm: the median of 5 runs after one unmeasured run.
pub(crate) fn ripgrep(args: &[&str], file: &Path) -> Option<(f64, String)> {
    warm_median(Command::new("rg").args(args).arg(file))
}

/// `command`'s wall time in ms and what it printed, warm: the median of 5 runs after one
/// unmeasured run (a command that finds nothing and says so by its exit code still counts).
pub(crate) fn warm_median(command: &mut Command) -> Option<(f64, String)> {
    let mut run = || {
        let t = Instant::now();
        let out = command.output().ok()?;
        // 1 is grep's "no line matched"; anything else (127: not installed) is no figure,
        // rather than the time it took to fail.
        if !matches!(out.status.code(), Some(0 | 1)) {
            return None;
        }
        Some((
            t.elapsed().as_secs_f64() * 1000.0,
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    };
    run()?;
    let mut runs: Vec<(f64, String)> = (0..5).filter_map(|_| run()).collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs.get(runs.len() / 2).cloned()
}

/// `base` + `path` with `params` in its query, encoded.
pub(crate) fn url(base: &str, path: &str, params: &[(&str, &str)]) -> Result<String> {
    Ok(reqwest::Url::parse_with_params(&format!("{base}{path}"), params)?.to_string())
}

async fn searches(binary: &Path, server: &Server, file: &Path, now: i64) -> Result<()> {
    add_admin(binary, server)?;
    let http = client()?;
    let session = login(&http, &server.url).await?;
    let base = &server.url;
    let runs = 21;

    let rare = timed(
        &http,
        &url(
            base,
            "/api/v1/logs/search",
            &[("limit", "100"), ("q", RARE)],
        )?,
        &session,
        runs,
    )
    .await?;
    let hits = rare.answer["hits"].as_array().map_or(0, Vec::len);
    if hits != RARE_COUNT {
        bail!("the rare word matched {hits} records, not {RARE_COUNT}");
    }
    println!(
        "  search \"{RARE}\" over all time: p50 {:.1} ms, max {:.1} ms ({hits} hits; {} of {} blocks scanned)",
        rare.p50, rare.max, rare.answer["blocks_scanned"], rare.answer["blocks_considered"]
    );
    if let Some((ms, out)) = ripgrep(&["-c", RARE], file) {
        let ratio = ms / rare.p50;
        let verdict = if ratio >= 1.0 {
            format!("Vigie {ratio:.1}× faster")
        } else {
            format!("rg {:.1}× faster", 1.0 / ratio)
        };
        println!("    rg -c {RARE} on the file: {ms:.1} ms ({out} lines): {verdict}");
    } else {
        println!("    rg not found on PATH: install ripgrep for the comparison");
    }

    // One hour, three days back.
    let hour = 3_600_000_000_000;
    let from = (now - 3 * 86_400 * 1_000_000_000) / hour * hour;
    let (from_text, to_text) = (rfc3339(from), rfc3339(from + hour - 1));
    let window = format!("from:{from_text} to:{to_text}");
    let page = timed(
        &http,
        &url(
            base,
            "/api/v1/logs/search",
            &[("limit", "100"), ("q", &window)],
        )?,
        &session,
        runs,
    )
    .await?;
    let stats = timed(
        &http,
        &url(
            base,
            "/api/v1/logs/stats",
            &[("buckets", "60"), ("q", &window)],
        )?,
        &session,
        runs,
    )
    .await?;
    println!(
        "  one-hour window ({from_text}): first page of 100 p50 {:.1} ms (max {:.1}); \
         counts + histogram of its {} records p50 {:.1} ms (max {:.1})",
        page.p50, page.max, stats.answer["total"], stats.p50, stats.max
    );
    let prefix = &from_text[..13]; // 2026-11-18T14: the same hour, as rg can find it
    if let Some((ms, out)) = ripgrep(&["-c", &format!("\"timestamp\":\"{prefix}")], file) {
        println!("    rg -c '\"timestamp\":\"{prefix}' on the file: {ms:.1} ms ({out} lines)");
    }

    let errors = timed(
        &http,
        &url(
            base,
            "/api/v1/logs/stats",
            &[("buckets", "60"), ("q", "level:error")],
        )?,
        &session,
        runs,
    )
    .await?;
    println!(
        "  counts + histogram of level:error over all time: p50 {:.1} ms ({} records)",
        errors.p50, errors.answer["total"]
    );
    let phrase = timed(
        &http,
        &url(
            base,
            "/api/v1/logs/search",
            &[
                ("limit", "100"),
                ("q", "\"too many messages\" level:warning"),
            ],
        )?,
        &session,
        runs,
    )
    .await?;
    println!(
        "  newest 100 of \"too many messages\" level:warning: p50 {:.1} ms",
        phrase.p50
    );
    Ok(())
}

// --- syslog over UDP ---

async fn syslog_udp(binary: &Path, rates: &[u64]) -> Result<()> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (server, _) = Server::start_with(
        binary,
        &[("VIGIE_LOGS_SYSLOG_UDP", &format!("127.0.0.1:{port}"))],
    )?;
    add_admin(binary, &server)?;
    let http = client()?;
    let session = login(&http, &server.url).await?;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(("127.0.0.1", port))?;
    let mut onset = None;
    for &rate in rates {
        let tag = format!("rate{rate}");
        let sent = blast(&socket, &tag, rate, Duration::from_secs(UDP_SECONDS))?;
        tokio::time::sleep(Duration::from_secs(2)).await; // the receive buffer drains
        let query = format!("source:{tag}");
        let stats = url(
            &server.url,
            "/api/v1/logs/stats",
            &[("buckets", "1"), ("q", &query)],
        )?;
        let stored = timed(&http, &stats, &session, 1).await?.answer["total"]
            .as_u64()
            .unwrap_or(0);
        let lost = 1.0 - stored as f64 / sent as f64;
        println!(
            "  syslog UDP at {rate}/s for {UDP_SECONDS} s (sender reached {:.0}/s): {sent} sent, \
             {stored} stored ({:.2} % lost)",
            sent as f64 / UDP_SECONDS as f64,
            lost * 100.0
        );
        if lost > 0.001 && onset.is_none() {
            onset = Some(sent / UDP_SECONDS);
        }
    }
    match onset {
        Some(rate) => println!("  syslog UDP loss begins at about {rate} datagrams/s (as sent)"),
        None => println!("  syslog UDP: no loss up to the highest rate tried"),
    }
    Ok(())
}

/// Sends ~150-byte RFC 3164 datagrams at `rate` per second for `length`; returns how many.
/// The lines are made beforehand so the sender's speed is the socket's, not the formatter's.
fn blast(socket: &std::net::UdpSocket, tag: &str, rate: u64, length: Duration) -> Result<u64> {
    let lines: Vec<String> = (0..1024u64)
        .map(|i| {
            format!(
                "<14>Nov 21 22:15:00 web-1 {tag}[4242]: request {i} GET /api/orders/{} 200 {}ms user={} via upstream 10.0.0.{}",
                i * 37 % 50_000,
                i % 900,
                i * 7 % 3000,
                i % 250
            )
        })
        .collect();
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < length {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            socket.send(lines[(sent % 1024) as usize].as_bytes())?;
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(sent)
}
