//! A burst: thousands of Sentry clients at once, each sending a few envelopes, against one or
//! more binaries side by side. Says what the accepted requests waited (p50, p99), how many were
//! turned away (503 + Retry-After, which a real SDK honours by backing off), the peak RSS, and
//! whether the memory comes back once the burst is over.
//!
//!   vigie-bench burst --binary old/vigie --binary target/release/vigie --clients 4000

use crate::sentry::{envelope, Encoding, EXCEPTION};
use crate::Server;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Options {
    /// Binaries to compare, each in turn on a fresh data directory
    #[arg(long = "binary", required = true)]
    binaries: Vec<PathBuf>,
    /// Clients sending at the same time
    #[arg(long, default_value_t = 4000)]
    clients: usize,
    /// Envelopes each client sends, one after the other
    #[arg(long, default_value_t = 5)]
    per_client: usize,
    /// Seconds to watch the RSS after the burst
    #[arg(long, default_value_t = 30)]
    settle: u64,
}

pub async fn run(opts: Options) -> Result<()> {
    println!(
        "burst: {} clients × {} envelopes (sentry-python exception, gzip), spike protection off",
        opts.clients, opts.per_client
    );
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..opts.clients * opts.per_client)
            .map(|n| envelope(EXCEPTION, 5_000_000 + n, Encoding::Gzip))
            .collect(),
    );
    for binary in &opts.binaries {
        let (server, _) =
            Server::start_with(binary, &[("VIGIE_ERRORS_SPIKE_PROTECTION", "false")])?;
        let figures = burst(&server, &opts, bodies.clone()).await?;
        println!("  {}: {figures}", binary.display());
    }
    Ok(())
}

async fn burst(server: &Server, opts: &Options, bodies: Arc<Vec<Vec<u8>>>) -> Result<String> {
    let key = server.key.clone().context("no DSN in the banner")?;
    let url = format!("{}/api/1/envelope/", server.url);
    let auth = format!("Sentry sentry_version=7, sentry_key={key}");
    let idle = server.rss_kib()?;
    let peak = crate::PeakRss::of(server.child.id());
    // One connection per client, as thousands of separate processes would have.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.clients)
        .timeout(Duration::from_secs(60))
        .build()?;
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..opts.clients {
        let (http, url, auth, bodies, per) = (
            http.clone(),
            url.clone(),
            auth.clone(),
            bodies.clone(),
            opts.per_client,
        );
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..per {
                let sent = Instant::now();
                let status = http
                    .post(&url)
                    .header("x-sentry-auth", &auth)
                    .header("content-type", "application/x-sentry-envelope")
                    .header("content-encoding", "gzip")
                    .body(bodies[c * per + i].clone())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                seen.push((status, sent.elapsed()));
            }
            seen
        }));
    }
    let mut accepted = Vec::new();
    let (mut shed, mut other) = (0usize, 0usize);
    for client in clients {
        for (status, waited) in client.await? {
            match status {
                200 => accepted.push(waited),
                503 => shed += 1,
                _ => other += 1,
            }
        }
    }
    let elapsed = started.elapsed();
    let peak = peak.stop().await?;
    drop(http);
    accepted.sort();
    let at = |q: f64| {
        accepted
            .get(((accepted.len() as f64 * q) as usize).min(accepted.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let mut after = Vec::new();
    for wait in [1, 10, opts.settle] {
        let since = started.elapsed().saturating_sub(elapsed);
        if let Some(left) = Duration::from_secs(wait).checked_sub(since) {
            tokio::time::sleep(left).await;
        }
        after.push(format!(
            "{:.0} MiB at +{wait} s",
            server.rss_kib()? as f64 / 1024.0
        ));
    }
    Ok(format!(
        "{} accepted in {:.1} s (p50 {:.0} ms, p99 {:.0} ms), {shed} turned away (503), {other} \
         other; RSS {:.0} MiB idle, {:.0} MiB peak, then {}",
        accepted.len(),
        elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
        after.join(", ")
    ))
}
