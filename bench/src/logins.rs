//! Wrong passwords at once: what a server does when hundreds of clients try HTTP Basic
//! credentials together (Flower's `--basic-auth` scripts send them; so would a guesser). Each
//! check is an Argon2id hash of 19 MiB, so how many run at once sets the memory: the figure
//! says how the attempts were answered (401 wrong, 429 throttled), how long the last one
//! waited, and the peak RSS, binaries side by side.
//!
//!   vigie-bench logins --binary old/vigie --binary target/release/vigie --at-once 200

use crate::Server;
use anyhow::Result;
use base64::Engine;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

#[derive(clap::Args)]
pub struct Options {
    /// Binaries to compare, each in turn on a fresh data directory
    #[arg(long = "binary", required = true)]
    binaries: Vec<PathBuf>,
    /// Attempts sent together, each on its own connection
    #[arg(long, default_value_t = 200)]
    at_once: usize,
}

pub async fn run(opts: Options) -> Result<()> {
    println!(
        "logins: {} wrong Basic credentials at once against /api/workers",
        opts.at_once
    );
    for binary in &opts.binaries {
        let (server, _) = Server::start(binary)?;
        let figures = attempts(&server, opts.at_once).await?;
        println!("  {}: {figures}", binary.display());
    }
    Ok(())
}

async fn attempts(server: &Server, at_once: usize) -> Result<String> {
    let idle = server.rss_kib()?;
    let peak = crate::PeakRss::of(server.child.id());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(at_once)
        .timeout(Duration::from_secs(300))
        .build()?;
    let url = format!("{}/api/workers", server.url);
    // Every attempt is ready before any is sent, so they arrive together.
    let ready = Arc::new(Barrier::new(at_once));
    let started = Instant::now();
    let mut sent = Vec::new();
    for n in 0..at_once {
        let (http, url, ready) = (http.clone(), url.clone(), ready.clone());
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("admin:wrong-{n}"));
        sent.push(tokio::spawn(async move {
            ready.wait().await;
            http.get(&url)
                .header("authorization", format!("Basic {credentials}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    let (mut wrong, mut throttled, mut other) = (0usize, 0usize, 0usize);
    for attempt in sent {
        match attempt.await? {
            401 => wrong += 1,
            429 => throttled += 1,
            _ => other += 1,
        }
    }
    let elapsed = started.elapsed();
    let peak = peak.stop().await?;
    Ok(format!(
        "{wrong} refused (401), {throttled} throttled (429), {other} other, all answered in \
         {:.1} s; RSS {:.0} MiB idle, {:.0} MiB peak",
        elapsed.as_secs_f64(),
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    ))
}
