//! The `jobs` scenario: what a busy installation asks of the jobs API, measured end to end.
//!
//! 1. **Ingest**: items in batches of 100 from `concurrency` writers, each on its own job;
//!    every batch is acknowledged only after its commit, so items/s is durable throughput.
//! 2. **Live latency**: 100 running jobs, one SSE watcher each; progress updates go round-robin
//!    carrying their send time, and each watcher measures post → event.
//! 3. **Fan-out**: 1,000 SSE watchers on one job; every update must reach every watcher.
//! 4. **Job page**: the UI page of a job holding 100,000 items, as a logged-in person opens it.

use super::{add_admin, client, login, percentile, Server};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

pub struct Options {
    pub items: usize,
    pub concurrency: usize,
    pub live_jobs: usize,
    pub watchers: usize,
    pub page_items: usize,
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) key: String,
}

impl Api {
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let answer = self
            .http
            .post(format!("{}/api/v1/{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await?;
        let status = answer.status();
        let value: Value = answer.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {value}");
        }
        Ok(value)
    }

    async fn create(&self, id: &str, total: usize) -> Result<()> {
        self.post(
            "jobs",
            &json!({"id": id, "name": format!("bench {id}"), "total": total, "kind": "bench"}),
        )
        .await
        .map(drop)
    }
}

fn batch(first: usize, size: usize) -> Value {
    let items: Vec<Value> = (first..first + size)
        .map(|i| {
            json!({
                "id": format!("item-{i}"),
                "status": if i % 97 == 0 { "error" } else { "ok" },
                "name": format!("INV-{i:06}"),
                "target": format!("customer{i}@example.com"),
                "file": format!("invoices/INV-{i:06}.pdf"),
                "duration": 0.42,
                "error": if i % 97 == 0 { Some("550 5.1.1 mailbox unavailable") } else { None },
            })
        })
        .collect();
    json!({ "items": items })
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    let (server, _) = Server::start(binary)?;
    let api = Arc::new(Api {
        http: client()?,
        base: server.url.clone(),
        key: server.key.clone().context("no DSN in the banner")?,
    });
    println!(
        "scenario jobs: {} ({} cores)",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    ingest(&api, opts.items, opts.concurrency, "ingest").await?;
    // A project key writes and never reads: watchers read with an API token, as a page would
    // with its session.
    let reader = crate::alerts::api(binary, &server)?;
    live_latency(&api, &reader.key, opts.live_jobs).await?;
    fan_out(&api, &reader.key, opts.watchers).await?;
    job_page(binary, &server, &api, opts.page_items).await?;
    println!(
        "  RSS at the end: {:.1} MiB",
        server.rss_kib()? as f64 / 1024.0
    );
    Ok(())
}

/// Posts `items` items to jobs named `<round>-<writer>`; prints and answers durable items per
/// second.
pub(crate) async fn ingest(
    api: &Arc<Api>,
    items: usize,
    concurrency: usize,
    round: &str,
) -> Result<f64> {
    let per_worker = items / concurrency / 100 * 100;
    for w in 0..concurrency {
        api.create(&format!("{round}-{w}"), per_worker).await?;
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (api, round) = (api.clone(), round.to_string());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for first in (0..per_worker).step_by(100) {
                let t = Instant::now();
                api.post(&format!("jobs/{round}-{w}/items"), &batch(first, 100))
                    .await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let total = per_worker * concurrency;
    println!(
        "  ingest: {total} items in batches of 100 from {concurrency} writers: {:.0} items/s \
         (batch p50 {:.1} ms, p99 {:.1} ms)",
        total as f64 / secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    Ok(total as f64 / secs)
}

/// Opens an SSE stream and sends `(message, received at µs)` for every message line in it.
async fn watch(
    http: reqwest::Client,
    url: String,
    key: String,
    out: mpsc::UnboundedSender<(String, u128)>,
    ready: mpsc::Sender<()>,
) -> Result<()> {
    let mut response = http
        .get(url)
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("stream answered {}", response.status());
    }
    let _ = ready.send(()).await;
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await? {
        let at = now_micros();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for line in event.lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                        if let Some(messages) = v["messages"].as_array() {
                            for m in messages {
                                if let Some(text) = m["text"].as_str() {
                                    let _ = out.send((text.to_string(), at));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// `t=<µs>` messages → latencies in ms.
fn latency_of(text: &str, at: u128) -> Option<f64> {
    let sent: u128 = text.strip_prefix("t=")?.split(' ').next()?.parse().ok()?;
    Some(at.saturating_sub(sent) as f64 / 1000.0)
}

async fn open_watchers(
    api: &Arc<Api>,
    reader_key: &str,
    jobs: &[String],
    per_job: usize,
) -> Result<mpsc::UnboundedReceiver<(String, u128)>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::channel(jobs.len() * per_job);
    let http = reqwest::Client::builder().build()?;
    for job in jobs {
        for _ in 0..per_job {
            let url = format!("{}/api/v1/live/jobs/{job}", api.base);
            tokio::spawn(watch(
                http.clone(),
                url,
                reader_key.to_string(),
                tx.clone(),
                ready_tx.clone(),
            ));
        }
    }
    for _ in 0..jobs.len() * per_job {
        tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
            .await
            .context("watchers did not connect")?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // snapshots delivered
    Ok(rx)
}

async fn live_latency(api: &Arc<Api>, reader_key: &str, jobs: usize) -> Result<()> {
    let ids: Vec<String> = (0..jobs).map(|j| format!("live-{j}")).collect();
    for id in &ids {
        api.create(id, 1_000_000).await?;
    }
    let mut rx = open_watchers(api, reader_key, &ids, 1).await?;
    let rounds = 20;
    let started = Instant::now();
    for round in 0..rounds {
        let mut sends = Vec::new();
        for id in &ids {
            let api = api.clone();
            let path = format!("jobs/{id}/progress");
            sends.push(tokio::spawn(async move {
                let body =
                    json!({"increment": 1, "message": format!("t={} r={round}", now_micros())});
                api.post(&path, &body).await
            }));
        }
        for s in sends {
            s.await??;
        }
    }
    let updates = rounds * jobs;
    let rate = updates as f64 / started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(updates);
    while latencies.len() < updates {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some((text, at))) => latencies.extend(latency_of(&text, at)),
            _ => break,
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "  live: {jobs} running jobs, one SSE watcher each, {updates} progress updates at {rate:.0}/s: \
         received {}, post→event p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}

async fn fan_out(api: &Arc<Api>, reader_key: &str, watchers: usize) -> Result<()> {
    let id = "fan-out".to_string();
    api.create(&id, 1_000_000).await?;
    let mut rx = open_watchers(api, reader_key, std::slice::from_ref(&id), watchers).await?;
    let updates = 50;
    for _ in 0..updates {
        let body = json!({"increment": 1, "message": format!("t={}", now_micros())});
        api.post(&format!("jobs/{id}/progress"), &body).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = updates * watchers;
    let mut latencies = Vec::with_capacity(expected);
    while latencies.len() < expected {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some((text, at))) => latencies.extend(latency_of(&text, at)),
            _ => break,
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "  fan-out: {watchers} SSE watchers on one job, {updates} updates: {} of {expected} events \
         delivered, post→event p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}

async fn job_page(binary: &Path, server: &Server, api: &Arc<Api>, items: usize) -> Result<()> {
    let id = "big-page";
    api.create(id, items).await?;
    let mut first = 0;
    while first < items {
        let size = 1000.min(items - first);
        api.post(&format!("jobs/{id}/items"), &batch(first, size))
            .await?;
        first += size;
    }
    add_admin(binary, server)?;
    let http = client()?;
    let session = login(&http, &server.url).await?;
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let page = http
            .get(format!("{}/jobs/{id}", server.url))
            .header("cookie", session.as_str())
            .send()
            .await?;
        if !page.status().is_success() {
            bail!("job page answered {}", page.status());
        }
        page.bytes().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  job page with {items} items: median {:.1} ms, max {:.1} ms over 21 loads",
        percentile(&times, 0.5),
        times.last().copied().unwrap_or_default()
    );
    Ok(())
}
