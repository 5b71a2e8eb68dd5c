//! The `alerts` scenario: what 200 alert rules cost ingest, how soon an alert leaves, and how
//! fast an incident report reads a big log.
//!
//! 1. **Ingest with 200 rules**: two servers side by side, one without rules, one with 200
//!    rules of every kind (log queries, issue and error-rate thresholds, transaction p95 and
//!    failure rates, item error ratios, job and issue events) sending to a webhook; their
//!    thresholds are out of reach, so every rule is evaluated and none fires. Each round runs
//!    the same three workloads — JSON log lines, Sentry error envelopes, job items — on both
//!    servers, in alternating order; the figures are medians over the rounds and their ratio.
//! 2. **Alert latency**: on the server with rules, while it ingests logs, a fresh log-query rule
//!    (above 0 in 60 s) then one matching line; the time from the line being durable to the
//!    webhook receiving the alert. Also a failed job to its "job failed" alert.
//! 3. **Incident report**: a third server holding `report_lines` lines over a week (the `logs`
//!    scenario's lines); `GET /api/v1/reports/incident` for 15-minute windows spread over the
//!    week, median and max.

use super::jobs::Api;
use super::sentry::{self, Encoding};
use super::{client, logs, median, Server};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

#[derive(clap::Args)]
pub struct Options {
    /// Rules on the measured server (every kind, thresholds out of reach)
    #[arg(long, default_value_t = 200)]
    pub rules: usize,
    /// Rounds of the three workloads on each server
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Log lines per round
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: usize,
    /// Sentry error envelopes per round
    #[arg(long, default_value_t = 5_000)]
    pub events: usize,
    /// Job items per round
    #[arg(long, default_value_t = 50_000)]
    pub items: usize,
    /// Alert latency probes
    #[arg(long, default_value_t = 10)]
    pub probes: usize,
    /// Log lines the incident report reads
    #[arg(long, default_value_t = 10_000_000)]
    pub report_lines: usize,
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario alerts: {} ({} cores), {} rules, {} rounds",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        opts.rules,
        opts.rounds
    );
    let env = [("VIGIE_ERRORS_SPIKE_PROTECTION", "false")];
    let (plain, _) = Server::start_with(binary, &env)?;
    let (ruled, _) = Server::start_with(binary, &env)?;
    let (hook, mut received) = receiver().await?;
    let plain_api = api(binary, &plain)?;
    let ruled_api = api(binary, &ruled)?;
    let channel = ruled_api
        .post(
            "alerts/channels",
            &json!({"name": "bench hook", "target": {"kind": "webhook", "url": hook}}),
        )
        .await?["id"]
        .as_i64()
        .context("no channel id")?;
    for n in 0..opts.rules {
        ruled_api
            .post("alerts/rules", &rule(n, channel))
            .await
            .with_context(|| format!("rule {n}"))?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("lines.jsonl");
    logs::generate(&file, opts.lines, logs::now_ns())?;
    let log_opts = logs::Options {
        lines: opts.lines,
        batch: 4096,
        concurrency: 4,
        udp_rates: Vec::new(),
        file: None,
    };
    // Per workload and server: rates, and server CPU per unit (steadier on a shared machine).
    let mut rates: [[Vec<f64>; 2]; 3] = Default::default();
    let mut cpu: [[Vec<f64>; 2]; 3] = Default::default();
    for round in 0..opts.rounds {
        let order: [(usize, &Server, &Arc<Api>); 2] = if round % 2 == 0 {
            [(0, &plain, &plain_api), (1, &ruled, &ruled_api)]
        } else {
            [(1, &ruled, &ruled_api), (0, &plain, &plain_api)]
        };
        for (which, server, api) in order {
            println!(
                "  round {round}, {}:",
                ["without rules", "with rules"][which]
            );
            let key = server.key.clone().context("no DSN")?;
            let before = server.cpu_seconds()?;
            rates[0][which].push(logs::ingest(&server.url, &key, &file, &log_opts).await?);
            let after_logs = server.cpu_seconds()?;
            let errors = sentry::send(
                &[format!("{}/api/1/envelope/", server.url)],
                &key,
                sentry::EXCEPTION,
                opts.events,
                32,
                Encoding::Gzip,
                round * 10_000_000,
            )
            .await?;
            println!("  errors: {errors:.0} events/s durable");
            rates[1][which].push(errors);
            let after_errors = server.cpu_seconds()?;
            rates[2][which]
                .push(super::jobs::ingest(api, opts.items, 8, &format!("r{round}")).await?);
            let after_items = server.cpu_seconds()?;
            let items = (opts.items / 8 / 100 * 100 * 8) as f64;
            cpu[0][which].push((after_logs - before) * 1e6 / opts.lines as f64);
            cpu[1][which].push((after_errors - after_logs) * 1e6 / opts.events as f64);
            cpu[2][which].push((after_items - after_errors) * 1e6 / items);
        }
    }
    let fired_during_ingest = std::iter::from_fn(|| received.try_recv().ok()).count();
    println!(
        "  ingest, median of {} rounds (without rules → with {} rules):",
        opts.rounds, opts.rules
    );
    for (i, (what, unit)) in [
        ("log lines/s", "line"),
        ("error events/s", "event"),
        ("job items/s", "item"),
    ]
    .iter()
    .enumerate()
    {
        let (without, with) = (median(&mut rates[i][0]), median(&mut rates[i][1]));
        let (cpu_without, cpu_with) = (median(&mut cpu[i][0]), median(&mut cpu[i][1]));
        println!(
            "    {what:<15} {without:>10.0} → {with:>10.0}  ({:+.1} %); server CPU per {unit} \
             {cpu_without:.2} → {cpu_with:.2} µs ({:+.1} %)",
            (with / without - 1.0) * 100.0,
            (cpu_with / cpu_without - 1.0) * 100.0
        );
    }
    println!("  alerts sent during ingest (none expected): {fired_during_ingest}");
    println!(
        "  RSS: {:.1} MiB without rules, {:.1} MiB with",
        plain.rss_kib()? as f64 / 1024.0,
        ruled.rss_kib()? as f64 / 1024.0
    );

    latency(
        &ruled,
        &ruled_api,
        channel,
        &mut received,
        &file,
        &log_opts,
        opts.probes,
    )
    .await?;
    drop((plain, ruled));
    report(binary, opts.report_lines).await
}

/// Rule `n` of the 200: every kind, thresholds out of reach.
fn rule(n: usize, channel: i64) -> Value {
    let never = 1_000_000_000u64;
    let kind = match n % 10 {
        0 | 1 => json!({"kind": "log_matches", "query": "level:>=error logger:invoices*",
                        "above": never, "window_s": 300}),
        2 => json!({"kind": "log_matches", "query": format!("\"gateway timeout {n}\""),
                    "above": never, "window_s": 60}),
        3 => json!({"kind": "issue_events", "above": never, "window_s": 600}),
        4 => json!({"kind": "error_events", "per_minute": never}),
        5 => json!({"kind": "slow_transactions", "p95_ms": never, "window_s": 300}),
        6 => json!({"kind": "failing_transactions", "transaction": "/api/*", "percent": 99,
                    "window_s": 300}),
        7 => json!({"kind": "item_errors", "percent": 99}),
        8 => json!({"kind": "job_failed", "job_kind": "nightly"}),
        _ => json!({"kind": "regression"}),
    };
    json!({"name": format!("rule {n}"), "rule": kind, "channels": [channel]})
}

/// An admin API client of `server`, with a token made by the CLI on its data directory.
pub(crate) fn api(binary: &Path, server: &Server) -> Result<Arc<Api>> {
    let out = server
        .offline(
            binary,
            &["token", "create", "--name", "bench", "--scope", "admin"],
        )
        .output()?;
    if !out.status.success() {
        bail!("token create: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(Arc::new(Api {
        http: client()?,
        base: server.url.clone(),
        key: String::from_utf8(out.stdout)?.trim().to_string(),
    }))
}

/// A webhook receiver on a free port: each POST's `rule` and when it arrived.
async fn receiver() -> Result<(String, mpsc::UnboundedReceiver<(String, Instant)>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Headers, then the body Content-Length says.
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            let at = Instant::now();
                            let body: Value =
                                serde_json::from_slice(&buf[end + 4..end + 4 + length])
                                    .unwrap_or_default();
                            let rule = body["rule"].as_str().unwrap_or_default().to_string();
                            let _ = tx.send((rule, at));
                            let _ = socket
                                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok((url, rx))
}

/// Waits for the alert of `rule`; answers when it arrived.
async fn arrival(
    received: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    rule: &str,
) -> Result<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some((name, at))) if name == rule => return Ok(at),
            Ok(Some(_)) => continue,
            _ => bail!("no alert for {rule} within 30 s"),
        }
    }
}

async fn latency(
    server: &Server,
    api: &Arc<Api>,
    channel: i64,
    received: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    file: &Path,
    log_opts: &logs::Options,
    probes: usize,
) -> Result<()> {
    // The server keeps ingesting logs while the alerts are measured.
    let background = {
        let (url, key, data) = (server.url.clone(), server.key.clone(), file.to_path_buf());
        let opts = logs::Options {
            lines: log_opts.lines,
            batch: log_opts.batch,
            concurrency: 2,
            udp_rates: Vec::new(),
            file: None,
        };
        tokio::spawn(async move {
            let key = key.unwrap_or_default();
            loop {
                if logs::ingest(&url, &key, &data, &opts).await.is_err() {
                    break;
                }
            }
        })
    };
    let key = server.key.clone().context("no DSN")?;
    let http = client()?;
    let (mut logs_ms, mut jobs_ms) = (Vec::new(), Vec::new());
    for n in 0..probes {
        let word = format!("latencyprobe{n}");
        let name = format!("probe {n}");
        api.post(
            "alerts/rules",
            &json!({"name": name, "channels": [channel], "cooldown_s": 0,
                    "rule": {"kind": "log_matches", "query": word, "above": 0, "window_s": 60}}),
        )
        .await?;
        // The engine reads a new rule within a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let line = json!({"timestamp": logs::rfc3339(logs::now_ns()), "level": "error",
                          "logger": "probe", "event": format!("{word} happened")});
        let answer = http
            .post(format!("{}/api/v1/logs?source=probe", server.url))
            .bearer_auth(&key)
            .body(format!("{line}\n"))
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("probe line: {}", answer.status());
        }
        let durable = Instant::now();
        logs_ms.push(
            arrival(received, &name)
                .await?
                .duration_since(durable)
                .as_secs_f64()
                * 1000.0,
        );

        // A job failing, to its "job failed" alert (rule 8 of the set, kind nightly).
        let id = format!("probe-job-{n}");
        api.post(
            "jobs",
            &json!({"id": id, "name": "nightly probe", "kind": "nightly"}),
        )
        .await?;
        api.post(&format!("jobs/{id}/finish"), &json!({"status": "failed"}))
            .await?;
        let failed = Instant::now();
        let at = arrival(received, "rule 8").await?;
        jobs_ms.push(at.saturating_duration_since(failed).as_secs_f64() * 1000.0);
    }
    background.abort();
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "  alert latency while ingesting logs, {probes} probes: log-query threshold median {:.0} ms \
         (max {:.0} ms); job failed median {:.0} ms (max {:.0} ms)",
        median(&mut logs_ms.clone()),
        max(&logs_ms),
        median(&mut jobs_ms.clone()),
        max(&jobs_ms)
    );
    Ok(())
}

async fn report(binary: &Path, lines: usize) -> Result<()> {
    let (server, _) = Server::start(binary)?;
    let api = api(binary, &server)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("week.jsonl");
    let now = logs::now_ns();
    logs::generate(&file, lines, now)?;
    let opts = logs::Options {
        lines,
        batch: 4096,
        concurrency: 4,
        udp_rates: Vec::new(),
        file: None,
    };
    let key = server.key.clone().context("no DSN")?;
    logs::ingest(&server.url, &key, &file, &opts).await?;
    let mut times = Vec::new();
    let mut entries = 0;
    for i in 0..20i64 {
        // Windows spread over the week, each 15 minutes.
        let from_ns = now - (6 * 86_400 - i * 25_000) * 1_000_000_000;
        let from = logs::rfc3339(from_ns);
        let to = logs::rfc3339(from_ns + 900 * 1_000_000_000);
        let started = Instant::now();
        let answer = api
            .http
            .get(format!("{}/api/v1/reports/incident", server.url))
            .query(&[
                ("from", from.as_str()),
                ("to", to.as_str()),
                ("format", "json"),
            ])
            .bearer_auth(&api.key)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            bail!("report: {status} {body}");
        }
        entries += body["timeline"].as_array().map_or(0, Vec::len);
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "  incident report, 15-minute windows over {lines} log lines (a week): median {:.0} ms, \
         max {max:.0} ms, {} timeline entries per report on average",
        median(&mut times),
        entries / 20
    );
    Ok(())
}
