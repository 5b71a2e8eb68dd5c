//! The `follow` scenario: how fast Vigie stores the lines of files it follows itself
//! (`[[logs.follow]]`), beside the same lines sent by `vigie import --url`, in one run.
//!
//! 1. **Backlog**: `lines` Python logging lines (`%(asctime)s %(levelname)s %(name)s:
//!    %(message)s`, ~100 B, a three-line traceback every 1,000th) in `app.log`, in a folder a
//!    server is then started to follow. From start to the last line stored (counted through
//!    `/api/v1/logs/stats`): lines/s, and the server's CPU per line.
//! 2. **Live**: a line appended to the followed file with a word of its own, then searched
//!    for until found: p50 and max of `probes` runs (the poll interval is 250 ms).
//! 3. **Rotations**: `rotated` more lines appended as fast as the writer goes, the file renamed
//!    to `app.log.1` … (RotatingFileHandler's way) every `rotate_every` lines: every line is
//!    counted stored once.
//! 4. **Import over HTTP**: the backlog file sent by `vigie import --url` to a second server
//!    (the same parsing, in the client): lines/s and the server's CPU per line.

use super::{json_of, percentile, Server};
use anyhow::{bail, Context, Result};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct Options {
    pub lines: usize,
    pub probes: usize,
    pub rotated: usize,
    pub rotate_every: usize,
}

/// One Python logging line; every 1,000th an error with its traceback (three more lines).
fn line(n: usize, out: &mut impl Write) -> std::io::Result<()> {
    let (s, ms) = ((n / 1000) % 60, n % 1000);
    if n % 1000 == 999 {
        write!(
            out,
            "2026-11-25 10:{:02}:{s:02},{ms:03} ERROR shop.mailer: invoice F-{n} not sent\n\
             Traceback (most recent call last):\n  File \"/srv/shop/mail.py\", line 42, in send\n\
             smtplib.SMTPDataError: (421, b'too many messages')\n",
            (n / 60_000) % 60
        )
    } else {
        writeln!(
            out,
            "2026-11-25 10:{:02}:{s:02},{ms:03} INFO shop.mailer: invoice F-{n} sent to client {} in {} ms",
            (n / 60_000) % 60,
            n % 977,
            n % 350
        )
    }
}

fn marker(path: &Path, what: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "2026-11-25 11:59:59,999 INFO bench: {what}")?;
    Ok(())
}

fn write_lines(path: &Path, range: std::ops::Range<usize>) -> Result<u64> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for n in range {
        line(n, &mut out)?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Records of `source` stored so far.
async fn stored(http: &reqwest::Client, server: &Server, token: &str, query: &str) -> Result<u64> {
    let answer = json_of(
        http.get(format!("{}/api/v1/logs/stats", server.url))
            .query(&[("q", query)])
            .bearer_auth(token),
    )
    .await?;
    answer["total"].as_u64().context("no total in the stats")
}

/// Waits until `query` counts `want` records; the time it took from `since`.
async fn until_stored(
    http: &reqwest::Client,
    server: &Server,
    token: &str,
    query: &str,
    want: u64,
    since: Instant,
) -> Result<Duration> {
    loop {
        let n = stored(http, server, token, query).await?;
        if n >= want {
            return Ok(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(600) {
            bail!("{query}: {n} of {want} records after 10 min");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario follow: {} ({} cores)",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = tempfile::tempdir()?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let app = logs.join("app.log");
    let bytes = write_lines(&app, 0..opts.lines)?;
    // The last record is finished by the next line (or 2 s of quiet): a marker line follows.
    marker(&app, "backlog end")?;
    let records = opts.lines as u64;
    println!(
        "  backlog: {} lines ({} records), {:.1} MiB",
        opts.lines + 3 * (opts.lines / 1000),
        records,
        bytes as f64 / (1 << 20) as f64
    );
    let backlog_copy = dir.path().join("backlog.log");
    std::fs::copy(&app, &backlog_copy)?;
    let config = dir.path().join("vigie.toml");
    std::fs::write(
        &config,
        format!("[[logs.follow]]\npath = \"{}/*.log\"\n", logs.display()),
    )?;

    let http = super::client()?;
    let (server, started) =
        Server::start_with(binary, &[("VIGIE_CONFIG", config.to_str().unwrap())])?;
    let token = server.admin_token(binary)?;
    let took = until_stored(&http, &server, &token, "source:app.log", records, started).await?;
    let cpu = server.cpu_seconds()?;
    println!(
        "  follow a backlog: {records} records in {:.2} s from start: {:.0} records/s, {:.2} µs server CPU per record (start included)",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64(),
        cpu * 1e6 / records as f64
    );

    // Probes go to a file of their own, so the counts of app.log stay exact.
    let probes = logs.join("probe.log");
    let mut waits = Vec::new();
    for probe in 0..opts.probes {
        let word = format!("probe{probe}x{}", std::process::id());
        let at = Instant::now();
        marker(&probes, &word)?;
        // A record is finished by the next line or the quiet rule (2 s): the next line.
        marker(&probes, &format!("after {word}"))?;
        until_stored(&http, &server, &token, &word, 1, at).await?;
        waits.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    waits.sort_by(f64::total_cmp);
    println!(
        "  live: a line appended is searchable after p50 {:.0} ms, max {:.0} ms ({} probes)",
        percentile(&waits, 0.5),
        waits.last().copied().unwrap_or_default(),
        opts.probes
    );

    let before = records + 1; // the backlog and its marker
    let cpu = server.cpu_seconds()?;
    let at = Instant::now();
    let mut written = opts.lines;
    let mut rotations = 0;
    while written < opts.lines + opts.rotated {
        let end = (written + opts.rotate_every).min(opts.lines + opts.rotated);
        write_lines(&app, written..end)?;
        written = end;
        // Every rotated file kept (RotatingFileHandler's numbering, backups enough for all):
        // a file deleted before Vigie read it would be lost to any reader.
        for k in (1..=rotations).rev() {
            let _ = std::fs::rename(
                logs.join(format!("app.log.{k}")),
                logs.join(format!("app.log.{}", k + 1)),
            );
        }
        std::fs::rename(&app, logs.join("app.log.1"))?;
        rotations += 1;
    }
    marker(&app, "rotations end")?;
    let want = before + opts.rotated as u64;
    let took = until_stored(&http, &server, &token, "source:app.log", want, at).await?;
    println!(
        "  rotations: {} records through {rotations} renames in {:.2} s: {:.0} records/s, {:.2} µs server CPU per record",
        opts.rotated,
        took.as_secs_f64(),
        opts.rotated as f64 / took.as_secs_f64(),
        (server.cpu_seconds()? - cpu) * 1e6 / opts.rotated as f64
    );
    // Once the last marker is finished by the quiet rule: every record exactly once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let total = stored(&http, &server, &token, "source:app.log").await?;
    if total != want + 1 {
        bail!("app.log: {total} records stored, {} written", want + 1);
    }
    println!("  every record of app.log stored once: {total}");
    drop(server);

    let (remote, _) = Server::start(binary)?;
    let token = remote.admin_token(binary)?;
    let cpu = remote.cpu_seconds()?;
    let at = Instant::now();
    let out = std::process::Command::new(binary)
        .args(["import", "--url", &remote.url, "--token", &token])
        .arg(&backlog_copy)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!("vigie import --url failed");
    }
    let took = at.elapsed();
    let n = stored(&http, &remote, &token, "source:backlog.log").await?;
    if n != records + 1 {
        bail!(
            "import over HTTP: {n} records stored, {} expected (the marker too)",
            records + 1
        );
    }
    println!(
        "  import over HTTP (vigie import --url): {records} records in {:.2} s: {:.0} records/s, {:.2} µs server CPU per record",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64(),
        (remote.cpu_seconds()? - cpu) * 1e6 / records as f64
    );
    Ok(())
}
