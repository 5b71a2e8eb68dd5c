//! `vigie-bench search-shapes`: what many different searches cost the server and its database.
//!
//! Every count of search words and tag filters, every sort and status, is one more statement
//! shape for the database; on PostgreSQL each prepared statement keeps its plans in the
//! backend of the connection that prepared it. A user clicking and typing makes thousands of
//! shapes over a day. This scenario makes them at random, as fast as `--concurrency` readers
//! can, and samples the resident memory of Vigie and of the largest PostgreSQL backend serving
//! its database every `--sample` searches: both must level off (Vigie's bound is
//! `STATEMENTS_PER_CONNECTION` in `vigie-store`'s PostgreSQL engine). It also checks that a
//! search one past its limits is refused (422), not cut short.
//!
//! ```text
//!   seed: 1,000 error events (50 issues with the fixture's tags), one job with 100 items
//!   readers ─ random /api/v1/issues, /jobs, /items, /celery/tasks searches ─ Vigie ─ database
//!   every --sample searches: Vigie RSS, largest backend RSS, latency of the last ones
//! ```

use crate::sentry::{send, Encoding, EXCEPTION};
use crate::{client, percentile, rss_of, Server};
use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Options {
    /// Random searches sent
    #[arg(long, default_value_t = 8_000)]
    searches: usize,
    /// Concurrent readers
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Searches between two samples of memory and latency
    #[arg(long, default_value_t = 1_000)]
    sample: usize,
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    let (server, _) = Server::start_with(binary, &[("VIGIE_ERRORS_SPIKE_PROTECTION", "false")])?;
    let key = server.key.clone().context("no DSN in the banner")?;
    let token = server.admin_token(binary)?;
    seed(&server, &key).await?;
    let engine = match &server.postgres {
        Some(_) => "PostgreSQL",
        None => "SQLite",
    };
    println!(
        "search-shapes ({engine}): {} random searches, {} readers",
        opts.searches, opts.concurrency
    );
    refused_past_limits(&server, &token).await?;

    let http = client()?;
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut readers = Vec::new();
    for reader in 0..opts.concurrency {
        let (http, next, latencies) = (http.clone(), next.clone(), latencies.clone());
        let (url, token, total) = (server.url.clone(), token.clone(), opts.searches);
        readers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(reader as u64);
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let path = random_search(&mut rng);
                let sent = Instant::now();
                let answer = http
                    .get(format!("{url}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                if !answer.status().is_success() {
                    bail!("{path} answered {}", answer.status());
                }
                answer.bytes().await?;
                let ms = sent.elapsed().as_secs_f64() * 1e3;
                latencies.lock().expect("not poisoned").push(ms);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }

    println!("  searches  Vigie RSS  largest backend  p50 ms  p99 ms");
    let mut sampled = 0;
    while sampled < opts.searches {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let done = latencies.lock().expect("not poisoned").len();
        let finished = readers.iter().all(|r| r.is_finished());
        if done < sampled + opts.sample && !finished {
            continue;
        }
        let mut last: Vec<f64> = latencies.lock().expect("not poisoned")[sampled..].to_vec();
        last.sort_by(f64::total_cmp);
        sampled = done;
        let backend = match &server.postgres {
            Some(db) => format!(
                "{:>11.1} MB",
                largest_backend_kib(&db.name)? as f64 / 1024.0
            ),
            None => format!("{:>14}", "—"),
        };
        println!(
            "  {done:>8}  {:>5.1} MiB  {backend}  {:>6.1}  {:>6.1}",
            server.rss_kib()? as f64 / 1024.0,
            percentile(&last, 0.5),
            percentile(&last, 0.99),
        );
        if finished {
            break;
        }
    }
    for reader in readers {
        reader.await??;
    }
    println!(
        "  {:.0} searches/s",
        opts.searches as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Issues with tags to filter on, and a job with items to search.
async fn seed(server: &Server, key: &str) -> Result<()> {
    let envelopes = format!("{}/api/1/envelope/", server.url);
    send(&[envelopes], key, EXCEPTION, 1_000, 8, Encoding::Gzip, 0).await?;
    let http = client()?;
    let job = http
        .post(format!("{}/api/v1/jobs", server.url))
        .bearer_auth(key)
        .body(r#"{"id": "shapes", "name": "search shapes"}"#)
        .header("content-type", "application/json")
        .send()
        .await?;
    if !job.status().is_success() {
        bail!("creating the job answered {}", job.status());
    }
    let items: Vec<String> = (0..100)
        .map(|i| {
            let status = ["ok", "error", "skipped"][i % 3];
            format!(
                r#"{{"status": "{status}", "name": "invoice {i}", "target": "c{i}@example.org"}}"#
            )
        })
        .collect();
    let answer = http
        .post(format!("{}/api/v1/jobs/shapes/items", server.url))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(format!("[{}]", items.join(",")))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("sending items answered {}", answer.status());
    }
    Ok(())
}

/// Words the searches draw from: some match the seeded data, most do not.
const WORDS: &[&str] = &[
    "invoice",
    "vat",
    "rate",
    "ZeroDivisionError",
    "render",
    "example",
    "c7",
    "shapes",
    "error",
    "timeout",
    "Acme",
    "été",
    "42",
    "customer",
    "send",
    "pdf",
];

/// One search as a reader types it: any list, any number of words within the limits, and on
/// issues any number of tag filters (keys the fixture carries and keys it does not).
fn random_search(rng: &mut impl Rng) -> String {
    let words = |rng: &mut dyn rand::RngCore, most: usize| {
        let n = rng.gen_range(0..=most);
        (0..n)
            .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
            .collect::<Vec<_>>()
            .join("%20")
    };
    match rng.gen_range(0..4) {
        0 | 1 => {
            let tags = (0..rng.gen_range(0..=vigie_core::validate::MAX_TAG_FILTERS))
                .map(|_| {
                    let key = ["browser", "os", "server_name", "level", "customer", "k"]
                        [rng.gen_range(0..6)];
                    format!("{key}%3Av{}", rng.gen_range(0..5))
                })
                .collect::<Vec<_>>()
                .join("%20");
            let sort = ["last_seen", "first_seen", "events", "users"][rng.gen_range(0..4)];
            let status = ["unresolved", "resolved", "all", "ignored"][rng.gen_range(0..4)];
            format!(
                "/api/v1/issues?query={tags}%20{}&sort={sort}&status={status}",
                words(rng, vigie_core::validate::MAX_SEARCH_WORDS)
            )
        }
        2 => {
            let status = ["", "running", "completed", "failed"][rng.gen_range(0..4)];
            format!(
                "/api/v1/jobs?q={}&status={status}",
                words(rng, vigie_core::validate::MAX_SEARCH_WORDS)
            )
        }
        _ => {
            let status = ["", "ok", "error", "skipped"][rng.gen_range(0..4)];
            format!(
                "/api/v1/items?job=shapes&q={}&status={status}",
                words(rng, vigie_core::validate::MAX_SEARCH_WORDS)
            )
        }
    }
}

/// Whether one word and one tag filter past the limits are refused with 422 (a build from
/// before the limits answers them; said, so that side-by-side figures read right).
async fn refused_past_limits(server: &Server, token: &str) -> Result<()> {
    let over_words = (0..=vigie_core::validate::MAX_SEARCH_WORDS)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join("%20");
    let over_tags = (0..=vigie_core::validate::MAX_TAG_FILTERS)
        .map(|i| format!("k{i}%3Av"))
        .collect::<Vec<_>>()
        .join("%20");
    let http = client()?;
    let mut statuses = Vec::new();
    for path in [
        format!("/api/v1/issues?query={over_words}"),
        format!("/api/v1/issues?query={over_tags}"),
        format!("/api/v1/jobs?q={over_words}"),
    ] {
        let status = http
            .get(format!("{}{path}", server.url))
            .bearer_auth(token)
            .send()
            .await?
            .status();
        statuses.push(status.as_u16().to_string());
    }
    println!(
        "  past the limits (9 words on issues, 21 tag filters, 9 words on jobs): answered {}",
        statuses.join(", ")
    );
    Ok(())
}

/// The resident memory of the largest backend connected to `database`, in KiB.
fn largest_backend_kib(database: &str) -> Result<u64> {
    let admin = std::env::var("VIGIE_BENCH_POSTGRES")?;
    let out = Command::new("psql")
        .args([
            admin.as_str(),
            "-Atc",
            &format!("SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"),
        ])
        .output()
        .context("cannot run psql")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|pid| rss_of(pid.trim().parse().ok()?).ok())
        .max()
        .unwrap_or(0))
}
