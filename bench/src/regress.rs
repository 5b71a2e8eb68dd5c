//! The `regress` scenario: a short fixed workload run by two builds side by side, printing
//! the server CPU each spends per unit of work — what `bench/regress` runs before an issue
//! that touches a hot path is resolved.
//!
//! Each round starts both builds in turn on fresh data directories (the order alternates
//! from round to round) and, on each, measures the server's CPU time (user + system, from
//! `/proc`: steadier than a rate on a shared machine) for:
//!
//! - **error events**: Sentry envelopes as sentry-python sends them (gzip), 50 issues;
//! - **transactions**: the same SDK's transactions;
//! - **log lines**: JSON lines posted in batches, as the `logs` scenario does;
//! - **queries**: every kind of the `search` scenario over those lines, a few times each.
//!
//! It prints the median over the rounds of each figure for both builds and their ratio.

use super::logs::{self, generate, ingest, now_ns, url};
use super::sentry::{send, Encoding, EXCEPTION, TRANSACTION};
use super::{client, median, Server};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Options {
    /// The build to compare with (e.g. the previous release)
    #[arg(long)]
    pub old: PathBuf,
    /// Rounds; each runs both builds once
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Error events sent per round
    #[arg(long, default_value_t = 3_000)]
    pub events: usize,
    /// Transactions sent per round
    #[arg(long, default_value_t = 6_000)]
    pub transactions: usize,
    /// Log lines sent per round
    #[arg(long, default_value_t = 300_000)]
    pub lines: usize,
    /// Runs of each query kind per round
    #[arg(long, default_value_t = 5)]
    pub query_runs: usize,
}

/// CPU microseconds per unit of each kind of work, for one run of one build.
#[derive(Default, Clone, Copy)]
struct Costs {
    event: f64,
    transaction: f64,
    line: f64,
    query: f64,
}

pub async fn run(new: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario regress: {} (old) against {} (new), {} rounds ({} cores)",
        opts.old.display(),
        new.display(),
        opts.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("lines.jsonl");
    let now = now_ns();
    generate(&file, opts.lines, now)?;
    let builds = [opts.old.as_path(), new];
    let mut costs: [Vec<Costs>; 2] = [Vec::new(), Vec::new()];
    for round in 0..opts.rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            costs[i].push(measure(builds[i], &file, now, &opts).await?);
        }
    }
    let med = |i: usize, pick: fn(&Costs) -> f64| {
        median(&mut costs[i].iter().map(pick).collect::<Vec<_>>())
    };
    println!(
        "  {:<34} {:>12} {:>12} {:>10}",
        "server CPU, median of rounds", "old", "new", "new / old"
    );
    type Pick = fn(&Costs) -> f64;
    let rows: [(&str, Pick); 4] = [
        ("per error event (µs)", |c| c.event),
        ("per transaction (µs)", |c| c.transaction),
        ("per log line (µs)", |c| c.line),
        ("per log query, all kinds (ms)", |c| c.query / 1000.0),
    ];
    for (name, pick) in rows {
        let (old, new) = (med(0, pick), med(1, pick));
        println!("  {name:<34} {old:>12.2} {new:>12.2} {:>10.2}", new / old);
    }
    Ok(())
}

/// One build's costs on a fresh data directory.
async fn measure(binary: &Path, file: &Path, now: i64, opts: &Options) -> Result<Costs> {
    let (server, _) = Server::start_with(binary, &[("VIGIE_ERRORS_SPIKE_PROTECTION", "false")])?;
    let key = server.key.clone().context("no DSN in the banner")?;
    let envelopes = [format!("{}/api/1/envelope/", server.url)];
    let per = |cpu: f64, n: usize| cpu * 1e6 / n.max(1) as f64;

    let cpu = server.cpu_seconds()?;
    send(
        &envelopes,
        &key,
        EXCEPTION,
        opts.events,
        16,
        Encoding::Gzip,
        0,
    )
    .await?;
    let event = per(server.cpu_seconds()? - cpu, opts.events);
    let cpu = server.cpu_seconds()?;
    send(
        &envelopes,
        &key,
        TRANSACTION,
        opts.transactions,
        16,
        Encoding::Gzip,
        10_000_000,
    )
    .await?;
    let transaction = per(server.cpu_seconds()? - cpu, opts.transactions);

    let cpu = server.cpu_seconds()?;
    let ingest_opts = logs::Options {
        lines: opts.lines,
        batch: 4096,
        concurrency: 4,
        udp_rates: Vec::new(),
        file: None,
    };
    ingest(&server.url, &key, file, &ingest_opts).await?;
    let line = per(server.cpu_seconds()? - cpu, opts.lines);

    let token = server.admin_token(binary)?;
    let http = client()?;
    let queries = super::search::queries(now);
    let cpu = server.cpu_seconds()?;
    for query in &queries {
        for _ in 0..opts.query_runs {
            let address = url(
                &server.url,
                "/api/v1/logs/search",
                &[("limit", "100"), ("q", &query.q)],
            )?;
            let answer = http.get(&address).bearer_auth(&token).send().await?;
            if !answer.status().is_success() {
                bail!("{}: {}", query.q, answer.status());
            }
            answer.bytes().await?;
        }
    }
    let query = per(server.cpu_seconds()? - cpu, queries.len() * opts.query_runs);
    Ok(Costs {
        event,
        transaction,
        line,
        query,
    })
}
