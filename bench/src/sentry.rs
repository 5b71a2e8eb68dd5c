//! The `sentry` scenario: Sentry envelopes as sentry-python sends them, into Vigie and (when
//! given) Bugsink, side by side on this machine.
//!
//! The envelope is the real sentry-python exception envelope of the protocol crate's fixtures
//! (≈ 6 KB: a three-frame stack with locals and context lines, a user, a breadcrumb, tags),
//! with a fresh event id each time and one of 50 different messages, so scrubbing, grouping
//! and the issue upsert do real work. Bodies are compressed as the SDK does: brotli, or gzip.
//!
//! - **errors**: envelopes from `concurrency` senders; Vigie answers once stored on disk, so
//!   the rate of 200s is the rate of durable, scrubbed, grouped events;
//! - **transactions**: the fixture's transaction envelope, the same way;
//! - **issue list**: the Issues page with `issues` issues and `issue_events` events, seeded
//!   through the envelope endpoint (every issue gets one event, the rest go to a hot 1 % of
//!   them, as in real projects where a few issues make most events), timestamps spread over
//!   the 14 days the sparklines show; median of 20 loads of each view;
//! - **Bugsink** (`--bugsink-dsn`, `--bugsink-db`, `--bugsink-pids` from
//!   `../shared/peers/bugsink-up.sh`): the same envelopes; accepted per second, then digested
//!   per second (rows in its `events_event` table), and its RSS (gunicorn + workers + task
//!   runner).

use super::{client, median, Server};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const EXCEPTION: &str =
    include_str!("../../crates/vigie-protocol/tests/fixtures/sentry/exception.envelope");
pub(crate) const TRANSACTION: &str =
    include_str!("../../crates/vigie-protocol/tests/fixtures/sentry/transaction.envelope");

pub struct Options {
    /// Instances on one PostgreSQL database for the scale-out figure (1: none).
    pub instances: usize,
    pub events: usize,
    pub transactions: usize,
    pub concurrency: usize,
    pub issues: usize,
    pub issue_events: usize,
    pub bugsink_dsn: Option<String>,
    pub bugsink_db: Option<PathBuf>,
    pub bugsink_pids: Vec<u32>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn header(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Encoding::Brotli => {
                let mut out = Vec::new();
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 5,
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &data[..], &mut out, &params).expect("in memory");
                out
            }
            Encoding::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(data).expect("in memory");
                enc.finish().expect("in memory")
            }
        }
    }
}

/// This run's share of event ids: the start time in the high 64 bits, so a peer that keeps
/// its data between runs (Bugsink) never sees an id twice.
fn run_nonce() -> u128 {
    static NONCE: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    *NONCE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        u128::from(nanos) << 64
    })
}

/// Distinct issues the error events fall into.
pub(crate) const ISSUES: usize = 50;

/// The fixture with event id `n`, compressed. Error events fall into [`ISSUES`] issues: the
/// exception's value and its innermost frame's function both vary, as two different bugs'
/// would (grouping goes by the frames, so a value alone would make one issue).
pub(crate) fn envelope(template: &str, n: usize, encoding: Encoding) -> Vec<u8> {
    let id = format!("{:032x}", run_nonce() + n as u128);
    let (head, rest) = template.split_once('\n').expect("an envelope header");
    let old: serde_json::Value = serde_json::from_str(head).expect("a JSON header");
    let old_id = old["event_id"].as_str().unwrap_or_default();
    let bug = n % ISSUES;
    let rest = rest
        .replace(old_id, &id)
        .replace("vat_rate", &format!("vat_rate_{bug}"))
        .replace(
            "\"function\":\"render\"",
            &format!("\"function\":\"render_{bug}\""),
        );
    // Items are a header line and a payload line; the payload changed, so its length did.
    let mut body = format!("{{\"event_id\":\"{id}\"}}\n");
    let lines: Vec<&str> = rest.lines().collect();
    for pair in lines.chunks(2) {
        let mut header: serde_json::Value = serde_json::from_str(pair[0]).expect("an item header");
        let payload = pair.get(1).copied().unwrap_or("");
        header["length"] = payload.len().into();
        body.push_str(&format!("{header}\n{payload}\n"));
    }
    encoding.compress(body.as_bytes())
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    let (server, _) = Server::start_with(binary, &[("VIGIE_ERRORS_SPIKE_PROTECTION", "false")])?;
    let key = server.key.clone().context("no DSN in the banner")?;
    let url = format!("{}/api/1/envelope/", server.url);
    println!(
        "sentry: {} events, {} senders",
        opts.events, opts.concurrency
    );
    println!("  envelope: {} bytes uncompressed", EXCEPTION.len());
    let rss_before = server.rss_kib()?;
    if opts.events > 0 {
        errors(binary, &server, &url, &key, &opts).await?;
    }
    if opts.transactions > 0 {
        let cpu = server.cpu_seconds()?;
        let rate = send(
            std::slice::from_ref(&url),
            &key,
            TRANSACTION,
            opts.transactions,
            opts.concurrency,
            Encoding::Gzip,
            10_000_000,
        )
        .await?;
        println!(
            "  vigie transactions (gzip): {rate:.0} transactions/s durable; \
             {:.0} µs of server CPU per transaction",
            (server.cpu_seconds()? - cpu) * 1e6 / opts.transactions as f64
        );
    }
    println!(
        "  vigie RSS: {:.1} MiB before, {:.1} MiB after",
        rss_before as f64 / 1024.0,
        server.rss_kib()? as f64 / 1024.0
    );
    if opts.instances > 1 {
        scale_out(binary, &server, &key, &opts).await?;
    }
    issue_list(binary, opts.issues, opts.issue_events).await?;
    if let Some(dsn) = &opts.bugsink_dsn {
        bugsink(dsn, &opts).await?;
    }
    Ok(())
}

/// Error events in brotli then gzip, and the issues they made (each of [`ISSUES`] bugs once).
async fn errors(
    binary: &Path,
    server: &Server,
    url: &str,
    key: &str,
    opts: &Options,
) -> Result<()> {
    for encoding in [Encoding::Brotli, Encoding::Gzip] {
        let cpu = server.cpu_seconds()?;
        let rate = send(
            &[url.to_string()],
            key,
            EXCEPTION,
            opts.events,
            opts.concurrency,
            encoding,
            0,
        )
        .await?;
        println!(
            "  vigie errors ({}): {rate:.0} events/s durable (scrubbed, grouped, on disk); \
             {:.0} µs of server CPU per event",
            encoding.header(),
            (server.cpu_seconds()? - cpu) * 1e6 / opts.events as f64
        );
    }
    let token = server.admin_token(binary)?;
    let issues: serde_json::Value = client()?
        .get(format!("{}/api/v1/issues?limit=200", server.url))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let distinct = issues["total"].as_u64().unwrap_or(0);
    println!("  issues: the error events made {distinct} distinct issues");
    if distinct != ISSUES as u64 {
        bail!("{distinct} issues, {ISSUES} expected: the events do not differ as two bugs would");
    }
    Ok(())
}

/// Error events, then transactions, sent to `server` alone and then spread over it and
/// `opts.instances - 1` more instances on its database: the rate each way, side by side.
async fn scale_out(binary: &Path, server: &Server, key: &str, opts: &Options) -> Result<()> {
    let env = [("VIGIE_ERRORS_SPIKE_PROTECTION", "false")];
    let mut peers = Vec::new();
    for _ in 1..opts.instances {
        peers.push(server.start_peer(binary, &env)?);
    }
    let urls: Vec<String> = std::iter::once(server)
        .chain(&peers)
        .map(|s| format!("{}/api/1/envelope/", s.url))
        .collect();
    println!(
        "  scale-out: {} instances on one PostgreSQL database",
        urls.len()
    );
    let kinds = [
        ("error events", EXCEPTION, opts.events),
        ("transactions", TRANSACTION, opts.transactions),
    ];
    let mut first_id = 20_000_000;
    for (kind, template, count) in kinds {
        if count == 0 {
            continue;
        }
        let mut rates = Vec::new();
        for targets in [&urls[..1], &urls[..]] {
            let (encoding, senders) = (Encoding::Gzip, opts.concurrency);
            rates.push(send(targets, key, template, count, senders, encoding, first_id).await?);
            first_id += 10_000_000;
        }
        println!(
            "    {kind} (gzip): one instance {:.0}/s, {} instances {:.0}/s: {:.2}×",
            rates[0],
            urls.len(),
            rates[1],
            rates[1] / rates[0]
        );
    }
    Ok(())
}

/// Sends `count` envelopes from `concurrency` senders spread over `urls` (sender `i` sends to
/// `urls[i % n]`, as a load balancer spreads SDKs over instances); answers the rate of 200s
/// per second.
pub(crate) async fn send(
    urls: &[String],
    key: &str,
    template: &str,
    count: usize,
    concurrency: usize,
    encoding: Encoding,
    first_id: usize,
) -> Result<f64> {
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..count)
            .map(|n| {
                envelope(
                    template,
                    first_id + n + encoding as usize * 1_000_000,
                    encoding,
                )
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let auth =
        format!("Sentry sentry_version=7, sentry_client=sentry.python/2.75.0, sentry_key={key}");
    let http = client()?;
    let started = Instant::now();
    let mut senders = Vec::new();
    for sender in 0..concurrency {
        let (http, bodies, next, url, auth) = (
            http.clone(),
            bodies.clone(),
            next.clone(),
            urls[sender % urls.len()].clone(),
            auth.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut ok = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let answer = http
                    .post(&url)
                    .header("x-sentry-auth", &auth)
                    .header("content-type", "application/x-sentry-envelope")
                    .header("content-encoding", encoding.header())
                    .body(body.clone())
                    .send()
                    .await?;
                if answer.status().is_success() {
                    ok += 1;
                } else {
                    bail!("{} answered {}", url, answer.status());
                }
            }
            Ok::<_, anyhow::Error>(ok)
        }));
    }
    let mut ok = 0;
    for s in senders {
        ok += s.await??;
    }
    Ok(ok as f64 / started.elapsed().as_secs_f64())
}

/// Events per seeding envelope: small events, so one request carries many.
const SEED_BATCH: usize = 500;

/// The Issues page with many issues and events: seeded, then loaded.
async fn issue_list(binary: &Path, issues: usize, events: usize) -> Result<()> {
    if issues == 0 {
        return Ok(());
    }
    let events = events.max(issues);
    let (server, _) = Server::start_with(binary, &[("VIGIE_ERRORS_SPIKE_PROTECTION", "false")])?;
    let key = server.key.clone().context("no DSN in the banner")?;
    let url = format!("{}/api/1/envelope/", server.url);
    let auth = format!("Sentry sentry_version=7, sentry_key={key}");
    let http = client()?;
    let next = Arc::new(AtomicUsize::new(0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let seeding = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (http, next, url, auth) = (http.clone(), next.clone(), url.clone(), auth.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(SEED_BATCH, Ordering::Relaxed);
                if first >= events {
                    break;
                }
                let mut body = String::from("{}\n");
                for n in first..(first + SEED_BATCH).min(events) {
                    body.push_str("{\"type\":\"event\"}\n");
                    body.push_str(&seed_event(n, events, issues, now));
                    body.push('\n');
                }
                let answer = http
                    .post(&url)
                    .header("x-sentry-auth", &auth)
                    .body(body)
                    .send()
                    .await?;
                if !answer.status().is_success() {
                    bail!("seeding answered {}", answer.status());
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for s in senders {
        s.await??;
    }
    println!(
        "  issue list: {issues} issues, {events} events seeded in {:.0} s; data directory {:.1} GiB",
        seeding.elapsed().as_secs_f64(),
        dir_bytes(server.data.path()) as f64 / (1u64 << 30) as f64
    );
    super::add_admin(binary, &server)?;
    let session = super::login(&http, &server.url).await?;
    for (label, path) in [
        ("/issues (last seen)", "/issues"),
        ("/issues?sort=events", "/issues?sort=events"),
        ("/issues?query=customer:c7", "/issues?query=customer%3Ac7"),
        (
            "/issues?query=issue 4217 (a word of the titles)",
            "/issues?query=issue%204217",
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let page = http
                .get(format!("{}{path}", server.url))
                .header("cookie", &session)
                .send()
                .await?;
            if !page.status().is_success() {
                bail!("{path} answered {}", page.status());
            }
            page.bytes().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("  {label}: p50 {:.1} ms (20 loads)", median(&mut times));
    }
    Ok(())
}

/// Seeding event `n` of `events`: the first `issues` events open one issue each, the others
/// land on a hot 1 % of the issues; times run in order over the last 14 days, as events
/// arrive (a random order would make every index insert a random one, which ingest never sees).
fn seed_event(n: usize, events: usize, issues: usize, now: u64) -> String {
    let issue = if n < issues {
        n
    } else {
        // A multiplicative hash spreads consecutive events over the hot issues.
        (n.wrapping_mul(2_654_435_761) >> 7) % (issues / 100).max(1)
    };
    let age = ((events - 1 - n) as u64 * 14 * 24 * 3600) / events as u64;
    format!(
        "{{\"event_id\":\"{n:032x}\",\"message\":\"seeded issue {issue}\",\
         \"fingerprint\":[\"seed-{issue}\"],\"level\":\"error\",\"timestamp\":{},\
         \"tags\":{{\"customer\":\"c{}\"}}}}",
        now - age,
        issue % 100
    )
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn rss_kib(pid: u32) -> u64 {
    crate::rss_of(pid).unwrap_or(0)
}

/// The pids and their children (gunicorn's workers).
fn family(pids: &[u32]) -> Vec<u32> {
    let mut all = pids.to_vec();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if parent.is_some_and(|p| pids.contains(&p)) && !all.contains(&pid) {
                all.push(pid);
            }
        }
    }
    all
}

/// Bugsink's own count of events digested (its `events_event` table is trimmed to the
/// project's retention, so its row count is not a counter).
fn digested(db: &Path) -> Result<u64> {
    sqlite(db, "select sum(digested_event_count) from projects_project")?
        .parse()
        .context("Bugsink's database has no digested count")
}

fn sqlite(db: &Path, sql: &str) -> Result<String> {
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 10000"])
        .arg(db)
        .arg(sql)
        .output()
        .context("sqlite3 is needed to read Bugsink's database")?;
    if !out.status.success() {
        bail!("sqlite3: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

async fn bugsink(dsn: &str, opts: &Options) -> Result<()> {
    let (key, rest) = dsn
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .context("--bugsink-dsn is not a DSN")?;
    let (host, project) = rest
        .rsplit_once('/')
        .context("--bugsink-dsn has no project")?;
    let url = format!("http://{host}/api/{project}/envelope/");
    let db = opts
        .bugsink_db
        .as_deref()
        .context("--bugsink-db is needed")?;
    // Lifted like its quotas: by default Bugsink keeps 10,000 events per project and evicts
    // the oldest beyond, work Vigie (which keeps events by age) would not be doing here.
    sqlite(
        db,
        "update projects_project set retention_max_event_count = 1000000000",
    )?;
    let before = digested(db)?;
    let count = opts.events;
    let started = Instant::now();
    let accepted = send(
        std::slice::from_ref(&url),
        key,
        EXCEPTION,
        count,
        opts.concurrency,
        Encoding::Brotli,
        50_000_000,
    )
    .await?;
    println!("  bugsink errors (br): {accepted:.0} envelopes/s accepted");
    let mut rss = 0;
    loop {
        let done = digested(db)? - before;
        rss = rss.max(
            family(&opts.bugsink_pids)
                .iter()
                .map(|p| rss_kib(*p))
                .sum::<u64>(),
        );
        if done >= count as u64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            println!("  bugsink: only {done} of {count} digested after 30 min");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  bugsink digested: {:.0} events/s end to end; RSS {:.0} MiB (gunicorn, workers, task runner)",
        (digested(db)? - before) as f64 / secs,
        rss as f64 / 1024.0
    );
    Ok(())
}

/// The `process-events` scenario: Sentry ingest in process, as the server runs it, without
/// HTTP: the gzip body inflated (`http::ingest_body::inflate`), then parsed, scrubbed, grouped,
/// summarized and its body compressed (`sentry::process::envelope`), each stage's best of 7
/// passes in ns per event; then the prepared events stored on a fresh SQLite database
/// (`ErrorStore::write_errors`, [`STORED_TOGETHER`] envelopes per transaction as the sink
/// gathers those of the `sentry` scenario's senders, durable on return), in CPU µs per event
/// of this whole process (the writer thread's work; the fsyncs' waits are not CPU).
pub async fn process_only(events: usize) -> Result<()> {
    use vigie_server::sentry::process;
    let bodies: Vec<Vec<u8>> = (0..ISSUES)
        .map(|n| envelope(EXCEPTION, n, Encoding::Gzip))
        .collect();
    let settings = vigie_store::ErrorSettings::default();
    let ctx = process::Context {
        project: vigie_core::ProjectId(1),
        settings: &settings,
        received: vigie_core::Timestamp(1_800_000_000_000),
        max_attachment_bytes: 1 << 20,
        js: process::JsFrames::default(),
    };
    let (mut inflating, mut processing) = (f64::MAX, f64::MAX);
    for _ in 0..7 {
        let started = Instant::now();
        let inflated: Vec<Vec<u8>> = (0..events)
            .map(|n| inflate_gzip(&bodies[n % ISSUES]))
            .collect::<Result<_>>()?;
        inflating = inflating.min(started.elapsed().as_secs_f64() * 1e9 / events as f64);
        let started = Instant::now();
        let mut stored = 0;
        for body in &inflated {
            let prepared = process::envelope(body, &ctx).map_err(anyhow::Error::msg)?;
            if !prepared.problems.is_empty() {
                bail!("the fixture was refused: {:?}", prepared.problems);
            }
            stored += prepared.batch.events.len();
        }
        processing = processing.min(started.elapsed().as_secs_f64() * 1e9 / events as f64);
        if stored != events {
            bail!("{stored} events prepared from {events} envelopes");
        }
    }
    println!(
        "scenario process-events: {events} error events ({} bytes as JSON): inflate {inflating:.0} ns, \
         parse + scrub + group + compress {processing:.0} ns per event (best of 7)",
        EXCEPTION.len()
    );
    let transactions: Vec<Vec<u8>> = (0..events)
        .map(|n| inflate_gzip(&envelope(TRANSACTION, n, Encoding::Gzip)))
        .collect::<Result<_>>()?;
    let mut summarizing = f64::MAX;
    for _ in 0..7 {
        let started = Instant::now();
        let mut kept = 0;
        for body in &transactions {
            let prepared = process::envelope(body, &ctx).map_err(anyhow::Error::msg)?;
            kept += prepared.batch.transactions.len();
        }
        summarizing = summarizing.min(started.elapsed().as_secs_f64() * 1e9 / events as f64);
        if kept != events {
            bail!("{kept} transactions prepared from {events} envelopes");
        }
    }
    println!(
        "  {events} transactions ({} bytes as JSON): parse + scrub + summarize + spans \
         {summarizing:.0} ns per transaction (best of 7)",
        TRANSACTION.len()
    );
    let mut storing = Vec::new();
    for _ in 0..3 {
        storing.push(store_prepared(&bodies, events, &ctx).await?);
    }
    println!(
        "  stored ({STORED_TOGETHER} envelopes per transaction, SQLite, synchronous = FULL): \
         {:.1} µs of CPU per event (median of 3 fresh databases)",
        super::median(&mut storing)
    );
    Ok(())
}

/// A gzip envelope inflated as the server inflates a request's body.
fn inflate_gzip(body: &[u8]) -> Result<Vec<u8>> {
    vigie_server::http::ingest_body::inflate("gzip", body, 1 << 27, |_| Ok(()))
        .map_err(|e| anyhow::anyhow!("inflating: {e:?}"))
}

/// Envelopes stored in one transaction by [`process_only`]: the `sentry` scenario's senders
/// each wait for their answer, so the sink finds at most that many waiting.
const STORED_TOGETHER: usize = 32;

/// Writes `events` events prepared from `bodies` to a fresh SQLite database, as the sink does;
/// returns this process's CPU µs per event while writing.
async fn store_prepared(
    bodies: &[Vec<u8>],
    events: usize,
    ctx: &vigie_server::sentry::process::Context<'_>,
) -> Result<f64> {
    use vigie_server::sentry::process;
    let dir = tempfile::tempdir()?;
    let store =
        vigie_store::open(&vigie_store::Location::Sqlite(dir.path().join("vigie.db"))).await?;
    let project = store
        .create_project("bench", &vigie_core::ProjectKey::generate())
        .await?;
    let batches: Vec<vigie_store::ErrorBatch> = (0..events)
        .step_by(STORED_TOGETHER)
        .map(|first| {
            let mut batch = vigie_store::ErrorBatch::new(project.id);
            for n in first..(first + STORED_TOGETHER).min(events) {
                let body = inflate_gzip(&bodies[n % ISSUES])?;
                let mut prepared = process::envelope(&body, ctx).map_err(anyhow::Error::msg)?;
                prepared.batch.project = project.id;
                // Each event its own random ids, as SDKs send them (the fixture's 50 bodies
                // repeat theirs): their indexes are written at random places.
                for event in &mut prepared.batch.events {
                    event.event_id = format!("{:032x}", rand::random::<u128>());
                    if let Some(trace) = &mut event.trace_id {
                        *trace = format!("{:032x}", rand::random::<u128>());
                    }
                }
                batch.extend(prepared.batch);
            }
            Ok(batch)
        })
        .collect::<Result<_>>()?;
    let before = super::cpu_seconds(std::process::id())?;
    let mut stored = 0;
    for batch in batches {
        let written = store
            .write_errors(batch, vigie_core::Timestamp::now())
            .await?;
        stored += written.events.len();
    }
    let used = super::cpu_seconds(std::process::id())? - before;
    store.close().await;
    if stored != events {
        bail!("{stored} events stored of {events}");
    }
    Ok(used * 1e6 / events as f64)
}
