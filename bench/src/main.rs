//! `vigie-bench`: whole-server measurements of a real `vigie` binary, one named scenario each.
//!
//! Every scenario starts the binary it is given on a fresh data directory and a free port, so a
//! figure never depends on leftover state. Figures go in BENCHMARKS.md with the exact command.
//!
//!   vigie-bench startup    --binary target/release/vigie --runs 20
//!   vigie-bench page-views --binary target/release/vigie --requests 10000 --concurrency 8
//!   vigie-bench jobs       --binary target/release/vigie
//!   vigie-bench logs       --binary target/release/vigie --lines 10000000
//!   vigie-bench sentry     --binary target/release/vigie --events 20000
//!   vigie-bench traces     --binary target/release/vigie --spans 1000000
//!   vigie-bench metrics    --binary target/release/vigie --series 10000 --minutes 30
//!   vigie-bench alerts     --binary target/release/vigie --rules 200
//!   vigie-bench celery     --binary target/release/vigie --flower-url … --flower-pid …
//!   vigie-bench burst      --binary old/vigie --binary target/release/vigie --clients 4000
//!   vigie-bench logins     --binary old/vigie --binary target/release/vigie --at-once 200
//!   vigie-bench search-shapes --binary target/release/vigie --searches 8000
//!
//! With `VIGIE_BENCH_POSTGRES=postgres://user@host/any` in the environment, every server
//! measured keeps its data in a fresh PostgreSQL database of its own on that server (created
//! before it starts, dropped after) instead of the embedded SQLite: the same scenario, side by
//! side, on either backend.

mod alerts;
mod burst;
mod celery;
mod follow;
mod jobs;
mod logins;
mod logs;
mod metrics;
mod otlp;
mod regress;
mod search;
mod sentry;
mod shapes;
mod sourcemaps;
mod traces;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Load generators and whole-server measurements for Vigie")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Time from process start to the first 200 from /health, idle RSS, binary size.
    Startup {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Authenticated dashboard views: throughput, latency percentiles, RSS before and after.
    PageViews {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Page to request (any logged-in page)
        #[arg(long, default_value = "/")]
        path: String,
    },
    /// Jobs: durable item ingest, progress → SSE latency with many jobs, 1,000 watchers on one
    /// job, and the page of a job with 100,000 items.
    Jobs {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        /// Items ingested, in batches of 100
        #[arg(long, default_value_t = 200_000)]
        items: usize,
        /// Concurrent item writers
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Running jobs, one SSE watcher each, for the latency figure
        #[arg(long, default_value_t = 100)]
        live_jobs: usize,
        /// SSE watchers on one job, for the fan-out figure
        #[arg(long, default_value_t = 1000)]
        watchers: usize,
        /// Items of the job whose page is opened
        #[arg(long, default_value_t = 100_000)]
        page_items: usize,
    },
    /// Logs: durable JSON-lines ingest, disk per raw byte, searches over a week of lines
    /// (beside `rg` on the same file), and the rate at which syslog over UDP starts losing.
    Logs {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        /// Lines generated and ingested
        #[arg(long, default_value_t = 10_000_000)]
        lines: usize,
        /// Lines per request
        #[arg(long, default_value_t = 4096)]
        batch: usize,
        /// Concurrent writers
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Syslog UDP rates tried, datagrams per second
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "25000,50000,100000,200000,300000,400000"
        )]
        udp_rates: Vec<u64>,
        /// Keep the generated lines in this file
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Log search, every query kind, beside `rg` on the same lines; with `--baseline`, the
    /// same data searched by another build side by side (wall time and server CPU per query).
    Search {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[command(flatten)]
        opts: search::Options,
    },
    /// The JSON-lines parser alone, in process (no server, no storage): ns per line over the
    /// `logs` scenario's lines, in 4,096-line bodies, best of 7 passes. Run it in two
    /// checkouts to compare parsers.
    ParseLogs {
        #[arg(long, default_value_t = 500_000)]
        lines: usize,
    },
    /// Sentry ingest's request side alone, in process (no HTTP, no storage): ns per error
    /// event to inflate the gzip envelope and to parse, scrub, group and compress its event,
    /// and per transaction to parse, scrub and summarize it, best of 7 passes; then the
    /// error events' storing alone. Run it in two checkouts to compare.
    ProcessEvents {
        #[arg(long, default_value_t = 20_000)]
        events: usize,
    },
    /// Two builds side by side on a short fixed workload: server CPU per error event, per
    /// transaction, per log line and per log query (what `bench/regress` runs).
    Regress {
        /// The build under test
        #[arg(long, default_value = "target/release/vigie")]
        new: PathBuf,
        #[command(flatten)]
        opts: regress::Options,
    },
    /// Log files Vigie follows itself: a backlog, a live line, rotations, and the same lines
    /// sent by `vigie import --url`.
    Follow {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        /// Lines in the backlog (and sent by the import)
        #[arg(long, default_value_t = 1_000_000)]
        lines: usize,
        /// Live lines timed from write to searchable
        #[arg(long, default_value_t = 20)]
        probes: usize,
        /// Lines written while the file rotates
        #[arg(long, default_value_t = 200_000)]
        rotated: usize,
        /// Lines between two rotations
        #[arg(long, default_value_t = 20_000)]
        rotate_every: usize,
    },
    /// OpenTelemetry traces: durable OTLP span ingest, disk and RSS, opening a trace by id.
    Traces {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        /// Spans generated and sent
        #[arg(long, default_value_t = 1_000_000)]
        spans: usize,
        /// Spans per trace
        #[arg(long, default_value_t = 10)]
        per_trace: usize,
        /// Spans per request (the Python SDK's BatchSpanProcessor sends 512)
        #[arg(long, default_value_t = 512)]
        batch: usize,
        /// Spans of the one large trace opened at the end (0: none)
        #[arg(long, default_value_t = 10_000)]
        big_trace: usize,
        /// Concurrent writers
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Arize Phoenix's address, from bench/peers/phoenix-up.sh: fed the same requests
        #[arg(long)]
        phoenix_url: Option<String>,
        /// Phoenix's pid, for its RSS
        #[arg(long)]
        phoenix_pid: Option<u32>,
    },
    /// OpenTelemetry metrics: durable OTLP point ingest, disk and RSS, charts read back.
    Metrics {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        /// Series sent (a project's default limit is 10,000)
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// Minutes of points, one per series per minute
        #[arg(long, default_value_t = 30)]
        minutes: usize,
        /// Points per request
        #[arg(long, default_value_t = 2_000)]
        batch: usize,
        /// Concurrent writers
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Sentry ingest: real sentry-python envelopes (brotli and gzip), durable events/s and
    /// transactions/s, the Issues page with many issues; Bugsink side by side when given.
    Sentry {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        #[arg(long, default_value_t = 40_000)]
        transactions: usize,
        /// Concurrent senders (SDKs send one envelope per request)
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Issues seeded for the Issues page figure (0 skips it)
        #[arg(long, default_value_t = 100_000)]
        issues: usize,
        /// Events over those issues (one each, the rest on a hot 1 %), spread over 14 days
        #[arg(long, default_value_t = 10_000_000)]
        issue_events: usize,
        /// Bugsink's DSN, from ../shared/peers/bugsink-up.sh
        #[arg(long)]
        bugsink_dsn: Option<String>,
        /// Bugsink's SQLite database (DB= in the script's output)
        #[arg(long)]
        bugsink_db: Option<PathBuf>,
        /// Bugsink's gunicorn and task-runner pids, for its RSS
        #[arg(long, value_delimiter = ',')]
        bugsink_pids: Vec<u32>,
        /// With PostgreSQL (VIGIE_BENCH_POSTGRES): also run this many instances on the one
        /// database, the senders spread over them, beside one instance alone
        #[arg(long, default_value_t = 1)]
        instances: usize,
    },
    /// Alerts: ingest with and without 200 rules side by side, alert latency under load, and
    /// the incident report over a week of logs.
    Alerts {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[command(flatten)]
        opts: alerts::Options,
    },
    /// Celery: events/s taken from a Redis broker, RSS at 100,000 tasks, the tasks page over
    /// a million tasks; Flower fed the same stream when given.
    Celery {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[command(flatten)]
        opts: celery::Options,
    },
    /// A burst of thousands of Sentry clients at once: latency of what is accepted, what is
    /// turned away, peak RSS and whether memory returns afterwards; binaries side by side.
    Burst {
        #[command(flatten)]
        opts: burst::Options,
    },
    /// Wrong passwords at once (HTTP Basic, as Flower's `--basic-auth` scripts send them): how
    /// they are answered, how long it takes, and the peak RSS; binaries side by side.
    Logins {
        #[command(flatten)]
        opts: logins::Options,
    },
    /// Thousands of random searches (every count of words and tag filters, every sort): the
    /// memory of Vigie and of its largest PostgreSQL backend as statement shapes pile up.
    SearchShapes {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[command(flatten)]
        opts: shapes::Options,
    },
    /// Source maps: parsing a large map and resolving a 50-frame stack, in process and
    /// through the server beside a project without maps.
    Sourcemaps {
        #[arg(long, default_value = "target/release/vigie")]
        binary: PathBuf,
        #[command(flatten)]
        opts: sourcemaps::Options,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().scenario {
        Scenario::Startup { binary, runs } => startup(&binary, runs).await,
        Scenario::PageViews {
            binary,
            requests,
            concurrency,
            path,
        } => page_views(&binary, requests, concurrency, &path).await,
        Scenario::Jobs {
            binary,
            items,
            concurrency,
            live_jobs,
            watchers,
            page_items,
        } => {
            let opts = jobs::Options {
                items,
                concurrency,
                live_jobs,
                watchers,
                page_items,
            };
            jobs::run(&binary, opts).await
        }
        Scenario::Logs {
            binary,
            lines,
            batch,
            concurrency,
            udp_rates,
            file,
        } => {
            let opts = logs::Options {
                lines,
                batch,
                concurrency,
                udp_rates,
                file,
            };
            logs::run(&binary, opts).await
        }
        Scenario::Follow {
            binary,
            lines,
            probes,
            rotated,
            rotate_every,
        } => {
            let opts = follow::Options {
                lines,
                probes,
                rotated,
                rotate_every,
            };
            follow::run(&binary, opts).await
        }
        Scenario::Sentry {
            binary,
            events,
            transactions,
            concurrency,
            issues,
            issue_events,
            bugsink_dsn,
            bugsink_db,
            bugsink_pids,
            instances,
        } => {
            let opts = sentry::Options {
                instances,
                events,
                transactions,
                concurrency,
                issues,
                issue_events,
                bugsink_dsn,
                bugsink_db,
                bugsink_pids,
            };
            sentry::run(&binary, opts).await
        }
        Scenario::Traces {
            binary,
            spans,
            per_trace,
            batch,
            big_trace,
            concurrency,
            phoenix_url,
            phoenix_pid,
        } => {
            let opts = traces::Options {
                spans,
                per_trace,
                batch,
                big_trace,
                concurrency,
                phoenix_url,
                phoenix_pid,
            };
            traces::run(&binary, opts).await
        }
        Scenario::Metrics {
            binary,
            series,
            minutes,
            batch,
            concurrency,
        } => {
            let opts = metrics::Options {
                series,
                minutes,
                batch,
                concurrency,
            };
            metrics::run(&binary, opts).await
        }
        Scenario::Alerts { binary, opts } => alerts::run(&binary, opts).await,
        Scenario::Celery { binary, opts } => celery::run(&binary, opts).await,
        Scenario::Burst { opts } => burst::run(opts).await,
        Scenario::Logins { opts } => logins::run(opts).await,
        Scenario::Sourcemaps { binary, opts } => sourcemaps::run(&binary, opts).await,
        Scenario::Search { binary, opts } => search::run(&binary, opts).await,
        Scenario::SearchShapes { binary, opts } => shapes::run(&binary, opts).await,
        Scenario::Regress { new, opts } => regress::run(&new, opts).await,
        Scenario::ParseLogs { lines } => logs::parse_only(lines),
        Scenario::ProcessEvents { events } => sentry::process_only(events).await,
    }
}

/// The resident memory of process `pid`, in KiB.
/// The highest RSS (KiB) of a process, sampled every 50 ms from [`PeakRss::of`] until
/// [`PeakRss::stop`]: a burst's peak lasts only as long as the requests it answers.
struct PeakRss {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    fn of(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(rss_of(pid).unwrap_or(0)));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_of(pid).unwrap_or(0), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        PeakRss {
            peak,
            done,
            sampler,
        }
    }

    /// Stops sampling; the peak seen, in KiB.
    async fn stop(self) -> Result<u64> {
        self.done.store(true, Ordering::Relaxed);
        self.sampler.await?;
        Ok(self.peak.load(Ordering::Relaxed))
    }
}

fn rss_of(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

/// A server under measurement.
struct Server {
    child: Child,
    url: String,
    /// The default project's key, from the banner's DSN.
    key: Option<String>,
    data: tempfile::TempDir,
    /// The PostgreSQL database it keeps its data in (`VIGIE_BENCH_POSTGRES`), dropped after it.
    postgres: Option<Scratch>,
}

/// A PostgreSQL database of one server's own, on the server `VIGIE_BENCH_POSTGRES` names.
struct Scratch {
    admin: String,
    name: String,
    url: String,
}

impl Scratch {
    /// `None` unless `VIGIE_BENCH_POSTGRES` asks for PostgreSQL.
    fn from_env() -> Result<Option<Scratch>> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let Ok(admin) = std::env::var("VIGIE_BENCH_POSTGRES") else {
            return Ok(None);
        };
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("vigie_bench_{}_{n}", std::process::id());
        let base = admin
            .rsplit_once('/')
            .context("VIGIE_BENCH_POSTGRES names no database")?
            .0;
        let scratch = Scratch {
            url: format!("{base}/{name}"),
            admin,
            name,
        };
        scratch.psql(&format!("DROP DATABASE IF EXISTS {}", scratch.name))?;
        scratch.psql(&format!("CREATE DATABASE {}", scratch.name))?;
        Ok(Some(scratch))
    }

    fn psql(&self, sql: &str) -> Result<()> {
        let out = Command::new("psql")
            .args([self.admin.as_str(), "-qc", sql])
            .output()
            .context("cannot run psql")?;
        if !out.status.success() {
            bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

impl Server {
    fn start(binary: &Path) -> Result<(Server, Instant)> {
        Server::start_with(binary, &[])
    }

    /// Starts `binary` with extra `VIGIE_*` settings in its environment.
    fn start_with(binary: &Path, env: &[(&str, &str)]) -> Result<(Server, Instant)> {
        Server::start_in(binary, tempfile::tempdir()?, env)
    }

    /// Starts `binary` on the data directory `data` (a fresh one, or one a server left).
    fn start_in(
        binary: &Path,
        data: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> Result<(Server, Instant)> {
        let postgres = Scratch::from_env()?;
        let database = postgres.as_ref().map(|db| db.url.clone());
        Server::spawn(binary, data, env, database.as_deref(), postgres)
    }

    /// Another instance of `binary` on this server's PostgreSQL database (as several
    /// instances behind a load balancer share one), with a data directory of its own.
    fn start_peer(&self, binary: &Path, env: &[(&str, &str)]) -> Result<Server> {
        let db = self
            .postgres
            .as_ref()
            .context("instances share a database only on PostgreSQL: set VIGIE_BENCH_POSTGRES")?;
        Ok(Server::spawn(binary, tempfile::tempdir()?, env, Some(&db.url), None)?.0)
    }

    /// Runs `binary serve` on `data` and `database` (else SQLite in `data`) and reads its
    /// banner; `postgres`, when given, is dropped with the server.
    fn spawn(
        binary: &Path,
        data: tempfile::TempDir,
        env: &[(&str, &str)],
        database: Option<&str>,
        postgres: Option<Scratch>,
    ) -> Result<(Server, Instant)> {
        let started = Instant::now();
        let mut command = Command::new(binary);
        if let Some(url) = database {
            command.env("VIGIE_DATABASE_URL", url);
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .env("VIGIE_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let (mut url, mut key) = (None, None);
        loop {
            let line = lines
                .next()
                .context("vigie exited before printing its address")??;
            let line = line.trim();
            if let Some(u) = line.strip_prefix("UI:") {
                url = Some(u.trim().to_string());
            } else if let Some(dsn) = line.strip_prefix("Sentry DSN:") {
                key = dsn
                    .trim()
                    .strip_prefix("http://")
                    .and_then(|rest| rest.split_once('@'))
                    .map(|(k, _)| k.to_string());
            } else if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        let url = url.context("no UI address in the banner")?;
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok((
            Server {
                child,
                url,
                key,
                data,
                postgres,
            },
            started,
        ))
    }

    /// CPU time the server has used so far (user + system), in seconds. Steadier than a rate
    /// on a shared machine: what other processes take slows the clock, not this count.
    fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(self.child.id())
    }

    /// `binary` run offline on this server's data (`vigie user add …`), as a script would.
    fn offline(&self, binary: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(binary);
        command.args(args).arg("--data").arg(self.data.path());
        if let Some(db) = &self.postgres {
            command.env("VIGIE_DATABASE_URL", &db.url);
        }
        command
    }

    fn rss_kib(&self) -> Result<u64> {
        rss_of(self.child.id())
    }

    /// An admin API token, made offline as a script would (`vigie token create`).
    fn admin_token(&self, binary: &Path) -> Result<String> {
        let out = self
            .offline(
                binary,
                &["token", "create", "--name", "bench", "--scope", "admin"],
            )
            .stderr(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("vigie token create failed");
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time process `pid` has used so far (user + system), in seconds, from `/proc`.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .context("unreadable /proc stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?)
}

/// Sends `request` and reads its answer as JSON; an error status is an error.
async fn json_of(request: reqwest::RequestBuilder) -> Result<serde_json::Value> {
    Ok(request.send().await?.error_for_status()?.json().await?)
}

async fn startup(binary: &Path, runs: usize) -> Result<()> {
    let http = client()?;
    let (mut ready, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (server, started) = Server::start(binary)?;
        loop {
            let ok = http
                .get(format!("{}/health", server.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("not ready after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ready.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(server.rss_kib()? as f64 / 1024.0);
    }
    let size = std::fs::metadata(binary)?.len() as f64 / (1 << 20) as f64;
    println!("scenario startup: {runs} runs of {}", binary.display());
    println!(
        "  ready (spawn -> first /health 200): median {:.1} ms, max {:.1} ms",
        median(&mut ready),
        max(&ready)
    );
    println!(
        "  idle RSS after 1 s:                 median {:.1} MiB, max {:.1} MiB",
        median(&mut rss),
        max(&rss)
    );
    println!("  binary size:                        {size:.1} MiB");
    Ok(())
}

async fn page_views(binary: &Path, requests: usize, concurrency: usize, path: &str) -> Result<()> {
    let (server, _) = Server::start(binary)?;
    add_admin(binary, &server)?;
    let http = client()?;
    let session = login(&http, &server.url).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_kib()?;

    let url = Arc::new(format!("{}{path}", server.url));
    let session = Arc::new(session);
    let per_worker = requests / concurrency;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, session) = (http.clone(), url.clone(), session.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                let response = http
                    .get(url.as_str())
                    .header("cookie", session.as_str())
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("page view answered {}", response.status());
                }
                response.bytes().await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_after = server.rss_kib()?;
    latencies.sort_by(f64::total_cmp);
    println!(
        "scenario page-views: {} authenticated GET {path}, concurrency {concurrency}",
        latencies.len()
    );
    println!(
        "  throughput: {:.0} pages/s",
        latencies.len() as f64 / elapsed
    );
    println!(
        "  latency:    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "  RSS:        {:.1} MiB before, {:.1} MiB after",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    Ok(())
}

/// Adds the admin offline, as a script would.
fn add_admin(binary: &Path, server: &Server) -> Result<()> {
    let mut child = server
        .offline(
            binary,
            &[
                "user",
                "add",
                "bench",
                "--role",
                "admin",
                "--password-stdin",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"bench password\n")?;
    if !child.wait()?.success() {
        bail!("vigie user add failed");
    }
    Ok(())
}

/// Logs in through the real form; returns the `Cookie` header value of the session.
async fn login(http: &reqwest::Client, base: &str) -> Result<String> {
    let page = http.get(format!("{base}/login")).send().await?;
    let csrf_cookie = cookie(&page, "vigie_csrf").context("no csrf cookie")?;
    let html = page.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).context("no csrf field")? + marker.len();
    let csrf = &html[start..start + 32];
    let answer = http
        .post(format!("{base}/login"))
        .header("cookie", format!("vigie_csrf={csrf_cookie}"))
        .form(&[
            ("csrf", csrf),
            ("username", "bench"),
            ("password", "bench password"),
        ])
        .send()
        .await?;
    let session = cookie(&answer, "vigie_session").context("login failed")?;
    Ok(format!("vigie_session={session}"))
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(values, 0.5)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// `q`-quantile of sorted `values` (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
