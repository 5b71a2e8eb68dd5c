//! The `celery` scenario: how fast Vigie takes a Celery event stream, what it holds in memory
//! as tasks pile up, and how fast the tasks page answers over a million tasks — beside Flower
//! fed the same stream when it is given.
//!
//! The stream is what a real Celery 5 cluster publishes on a Redis broker (the shapes of
//! `crates/vigie-protocol/tests/fixtures/celery`): each task's `task-sent` from the client as
//! its own message, the worker's `task-received`, `task-started` and `task-succeeded` /
//! `task-failed` batched 24 to a `task.multi` message, from 8 workers (no heartbeats: Flower
//! does not count them). Vigie reads
//! Redis db `vigie_db`, Flower db `flower_db`, so each gets the stream alone.
//!
//! 1. **100,000 tasks**, each tool fed as fast as it takes them (the publisher waits when
//!    20,000 events are not yet counted); the sustained rate and RSS of each afterwards.
//! 2. **Rate ladder**: each rate for `step_seconds`; an event counts when the tool has it
//!    (Vigie: `vigie_celery_stored_total`, durable; Flower: `flower_events_total`, in memory).
//!    A rate is kept up with when every event is counted within 2 s of the step's end.
//! 3. **A million tasks** stored in Vigie, as fast as it stores them (the publisher waits when
//!    40,000 events are unstored); RSS along the way; then tasks pages with filters, p50.
//!
//! `--tasks 0` skips the first phase, `--fill-tasks 0` the last.

use super::alerts::api;
use super::{client, median, percentile, Server};
use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(clap::Args)]
pub struct Options {
    /// Tasks of the first phase (RSS of both tools afterwards)
    #[arg(long, default_value_t = 100_000)]
    pub tasks: usize,
    /// Rates of the ladder, events per second
    #[arg(long, value_delimiter = ',', default_value = "10000,20000,40000,80000")]
    pub rates: Vec<usize>,
    #[arg(long, default_value_t = 5)]
    pub step_seconds: u64,
    /// Tasks stored in Vigie for the page figures (0 skips the phase)
    #[arg(long, default_value_t = 1_000_000)]
    pub fill_tasks: usize,
    /// Redis host:port of the broker
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub redis: String,
    #[arg(long, default_value_t = 12)]
    pub vigie_db: u32,
    /// Flower's API, from ../shared/peers/flower-up.sh DIR redis://127.0.0.1:6379/<flower_db>
    #[arg(long)]
    pub flower_url: Option<String>,
    #[arg(long)]
    pub flower_pid: Option<u32>,
    #[arg(long, default_value_t = 13)]
    pub flower_db: u32,
}

/// A tool fed the stream: how many events it has taken, its RSS.
enum Tool<'a> {
    Vigie(&'a Server),
    Flower { url: String, pid: u32 },
}

impl Tool<'_> {
    fn name(&self) -> &'static str {
        match self {
            Tool::Vigie(_) => "Vigie",
            Tool::Flower { .. } => "Flower",
        }
    }

    async fn events(&self, http: &reqwest::Client) -> Result<u64> {
        match self {
            Tool::Vigie(_) => self.counter(http, "vigie_celery_stored_total").await,
            Tool::Flower { .. } => self.counter(http, "flower_events_total").await,
        }
    }

    /// The sum of a counter's series in the tool's `/metrics`.
    async fn counter(&self, http: &reqwest::Client, metric: &str) -> Result<u64> {
        let url = match self {
            Tool::Vigie(s) => format!("{}/metrics", s.url),
            Tool::Flower { url, .. } => format!("{url}/metrics"),
        };
        let text = http.get(url).send().await?.text().await?;
        Ok(text
            .lines()
            .filter(|l| l.split([' ', '{']).next() == Some(metric))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }

    /// Where a step's events went, for Vigie: read from the broker (the rest never reached
    /// it: Redis drops a subscriber's messages past its output buffer), dropped when its
    /// queue was full, lost with a batch storage refused, and broker connections lost.
    async fn accounts(&self, http: &reqwest::Client) -> Result<Option<[u64; 4]>> {
        if !matches!(self, Tool::Vigie(_)) {
            return Ok(None);
        }
        Ok(Some([
            self.counter(http, "vigie_celery_events_total").await?,
            self.counter(http, "vigie_celery_dropped_total").await?,
            self.counter(http, "vigie_celery_store_failed_total")
                .await?,
            self.counter(http, "vigie_celery_reconnects_total").await?,
        ]))
    }

    fn rss_mib(&self) -> Result<f64> {
        let pid = match self {
            Tool::Vigie(s) => s.child.id(),
            Tool::Flower { pid, .. } => *pid,
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")?;
        Ok(kib / 1024.0)
    }

    fn db(&self, opts: &Options) -> u32 {
        match self {
            Tool::Vigie(_) => opts.vigie_db,
            Tool::Flower { .. } => opts.flower_db,
        }
    }

    /// Waits until `expected` events are counted or the count stands still for 3 s; answers
    /// the count and when it was reached.
    async fn settle(&self, http: &reqwest::Client, expected: u64) -> Result<(u64, Instant)> {
        let (mut last, mut moved) = (self.events(http).await?, Instant::now());
        loop {
            if last >= expected || moved.elapsed() > Duration::from_secs(3) {
                return Ok((last, moved));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.events(http).await?;
            if now != last {
                (last, moved) = (now, Instant::now());
            }
        }
    }
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario celery: {} ({} cores), broker redis {}",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        opts.redis
    );
    let broker = format!("redis://{}/{}", opts.redis, opts.vigie_db);
    let (server, _) = Server::start_with(binary, &[("VIGIE_CELERY_BROKERS", broker.as_str())])?;
    let http = client()?;
    let mut tools = vec![Tool::Vigie(&server)];
    if let Some(url) = &opts.flower_url {
        let pid = opts
            .flower_pid
            .context("--flower-pid is needed with --flower-url")?;
        tools.push(Tool::Flower {
            url: url.trim_end_matches('/').to_string(),
            pid,
        });
    }
    // Redis pub/sub keeps nothing for a subscriber still to come: events published before
    // Vigie has subscribed reach nobody, so wait for its subscription before the first.
    wait_for_subscriber(&opts.redis).await?;
    // The same stream for each tool: each its own copy, from task 0.
    let mut streams: Vec<Stream> = tools.iter().map(|_| Stream::default()).collect();

    println!(
        "\n1. {} tasks, each tool fed as fast as it takes them, then RSS",
        opts.tasks
    );
    let mut rss = Vec::new();
    for (tool, stream) in tools.iter().zip(&mut streams).filter(|_| opts.tasks > 0) {
        let (events, seconds) = feed(tool, &http, &opts, stream, opts.tasks, 20_000).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mib = tool.rss_mib()?;
        println!(
            "   {:6}: {events} events in {seconds:.1} s ({:.0} events/s), RSS {mib:.1} MiB",
            tool.name(),
            events as f64 / seconds
        );
        rss.push(mib);
    }
    if rss.len() == 2 {
        println!("   RSS Flower / Vigie: {:.1}×", rss[1] / rss[0]);
    }

    println!("\n2. rate ladder, {} s per step", opts.step_seconds);
    let mut kept = Vec::new();
    for (tool, stream) in tools.iter().zip(&mut streams) {
        let mut best = 0;
        for &rate in &opts.rates {
            let before = tool.events(&http).await?;
            let accounts_before = tool.accounts(&http).await?;
            let tasks = rate * opts.step_seconds as usize / 4;
            let messages = stream.tasks(tasks, tool.db(&opts));
            let started = Instant::now();
            let sent = publish(&opts.redis, &messages, rate).await?;
            let published = Instant::now();
            let (count, at) = tool.settle(&http, before + sent).await?;
            let taken = count - before;
            let lag = at.saturating_duration_since(published).as_secs_f64();
            let achieved = taken as f64 / at.duration_since(started).as_secs_f64();
            let ok = taken >= sent && lag <= 2.0;
            if ok {
                best = best.max(rate);
            }
            println!(
                "   {:6} at {rate:>6}/s: {taken} of {sent} events ({:.1} %), {achieved:.0} events/s, done {lag:.2} s after the last{}",
                tool.name(),
                100.0 * taken as f64 / sent as f64,
                if ok { "" } else { "  — not kept up" }
            );
            print_accounts(tool, &http, accounts_before, sent).await?;
        }
        println!("   {:6} keeps up with {best} events/s", tool.name());
        kept.push(best);
    }
    if kept.len() == 2 && kept[1] > 0 {
        println!(
            "   rate kept up with, Vigie / Flower: {:.1}×",
            kept[0] as f64 / kept[1] as f64
        );
    }

    if opts.fill_tasks > 0 {
        fill_and_read(binary, &server, &http, &opts, &mut streams[0]).await?;
    }
    Ok(())
}

/// Phase 3: Vigie filled to `fill_tasks`, then the tasks page and API timed.
async fn fill_and_read(
    binary: &Path,
    server: &Server,
    http: &reqwest::Client,
    opts: &Options,
    stream: &mut Stream,
) -> Result<()> {
    let vigie = Tool::Vigie(server);
    let stored_tasks = stream.next_task;
    println!(
        "\n3. Vigie filled to {} tasks",
        opts.fill_tasks.max(stored_tasks)
    );
    let mut marks = vec![250_000, 500_000, 1_000_000, 2_000_000];
    marks.retain(|m| *m > stored_tasks && *m <= opts.fill_tasks);
    marks.push(opts.fill_tasks);
    marks.dedup();
    let mut last = stored_tasks;
    for mark in marks {
        let (events, seconds) = feed(&vigie, http, opts, stream, mark - last, 40_000).await?;
        last = mark;
        println!(
            "   {mark:>9} tasks: the last {events} events in {seconds:.0} s ({:.0} events/s), RSS {:.1} MiB",
            events as f64 / seconds,
            vigie.rss_mib()?
        );
    }

    let api = api(binary, server)?;
    super::add_admin(binary, server)?;
    let session = super::login(http, &server.url).await?;
    let pages = [
        "/celery",
        "/celery?state=FAILURE",
        "/celery?name=shop.tasks.send_invoice",
        "/celery?worker=celery%40worker-3",
        "/celery?q=args%3ACUST-000777",
        "/celery?name=shop.tasks.resize_image&page=50",
        "/celery?sort=runtime",
        "/api/v1/celery/tasks?state=FAILURE&limit=50",
        "/api/v1/celery/tasks?name=shop.tasks.send_invoice&worker=celery%40worker-5&limit=50",
        "/api/tasks?limit=50&state=SUCCESS",
    ];
    println!("   page / API (20 requests each): p50, max");
    for page in pages {
        let mut ms = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let answer = if page.starts_with("/celery") {
                http.get(format!("{}{page}", server.url))
                    .header("cookie", session.as_str())
                    .send()
                    .await?
            } else {
                http.get(format!("{}{page}", server.url))
                    .bearer_auth(&api.key)
                    .send()
                    .await?
            };
            let status = answer.status();
            answer.bytes().await?;
            if !status.is_success() {
                bail!("{page}: {status}");
            }
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let p50 = median(&mut ms);
        println!("   {page:<80} {p50:7.1} ms {:7.1} ms", percentile(&ms, 1.0));
    }
    Ok(())
}

/// Publishes the next `tasks` tasks to `tool` as fast as it takes them: the publisher waits
/// whenever more than `window` events are not yet counted (Redis pub/sub drops a reader that
/// falls too far behind). Answers the events and the seconds until the last was counted.
async fn feed(
    tool: &Tool<'_>,
    http: &reqwest::Client,
    opts: &Options,
    stream: &mut Stream,
    tasks: usize,
    window: u64,
) -> Result<(u64, f64)> {
    let started = Instant::now();
    let before = tool.events(http).await?;
    let accounts_before = tool.accounts(http).await?;
    let (mut sent, mut left) = (0u64, tasks);
    while left > 0 {
        let n = left.min(1_000);
        left -= n;
        let messages = stream.tasks(n, tool.db(opts));
        sent += publish(&opts.redis, &messages, usize::MAX).await?;
        while tool.events(http).await? + window < before + sent {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (count, at) = tool.settle(http, before + sent).await?;
    if count < before + sent {
        // Not a failure of the bench: say where the missing events went, as a ladder step does.
        println!(
            "   {:6}: stored {} of {sent} events",
            tool.name(),
            count - before
        );
        print_accounts(tool, http, accounts_before, sent).await?;
    }
    Ok((count - before, at.duration_since(started).as_secs_f64()))
}

/// For Vigie: where a phase's `sent` events went since `before` ([`Tool::accounts`]).
async fn print_accounts(
    tool: &Tool<'_>,
    http: &reqwest::Client,
    before: Option<[u64; 4]>,
    sent: u64,
) -> Result<()> {
    if let (Some(b), Some(a)) = (before, tool.accounts(http).await?) {
        let [read, dropped, refused, reconnects] = [0, 1, 2, 3].map(|i| a[i].saturating_sub(b[i]));
        println!(
            "          read from the broker {read} (never reached Vigie: {}), dropped with a full queue {dropped} (vigie_celery_dropped_total), lost with a batch storage refused {refused} (vigie_celery_store_failed_total), reconnects {reconnects}",
            sent.saturating_sub(read)
        );
    }
    Ok(())
}

/// The generated cluster: tasks numbered on, 8 workers, a clock.
#[derive(Default)]
struct Stream {
    next_task: usize,
}

/// A message to publish: its channel and payload.
type Message = (String, String);

const NAMES: [&str; 5] = [
    "shop.tasks.send_invoice",
    "shop.tasks.resize_image",
    "shop.tasks.sync_stock",
    "shop.tasks.send_newsletter",
    "shop.tasks.compute_report",
];

impl Stream {
    /// The next `n` tasks' messages for Redis db `db`: 4 events a task, about 1 in 50 failing.
    fn tasks(&mut self, n: usize, db: u32) -> Vec<Message> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mut out = Vec::new();
        let mut batch = Vec::new();
        for i in self.next_task..self.next_task + n {
            let uuid = format!("{:08x}-bench-4000-8000-{i:012x}", i as u32 ^ 0x5bd1e995);
            let name = NAMES[i % NAMES.len()];
            let worker = format!("celery@worker-{}", i % 8);
            let args = format!("('CUST-{:06}', {})", i % 100_000, i);
            let t = now + i as f64 * 1e-6;
            let sent = json!({"hostname": "gen4242@web-1", "utcoffset": 0, "pid": 4242,
                "clock": i, "uuid": uuid, "root_id": uuid, "parent_id": null, "name": name,
                "args": args, "kwargs": "{'priority': 'normal'}", "retries": 0, "eta": null,
                "expires": null, "queue": "celery", "exchange": "", "routing_key": "celery",
                "timestamp": t, "type": "task-sent"});
            out.push(envelope(db, "task.sent", &sent, "gen4242@web-1"));
            batch.push(
                json!({"hostname": worker, "utcoffset": 0, "pid": 17, "clock": i,
                "uuid": uuid, "name": name, "args": args, "kwargs": "{'priority': 'normal'}",
                "root_id": uuid, "parent_id": null, "retries": 0, "eta": null, "expires": null,
                "timestamp": t + 0.001, "type": "task-received"}),
            );
            batch.push(
                json!({"hostname": worker, "utcoffset": 0, "pid": 17, "clock": i,
                "uuid": uuid, "timestamp": t + 0.002, "type": "task-started"}),
            );
            batch.push(if i % 50 == 7 {
                json!({"hostname": worker, "utcoffset": 0, "pid": 17, "clock": i, "uuid": uuid,
                    "exception": "SMTPRecipientsRefused('550 mailbox unavailable')",
                    "traceback": "Traceback (most recent call last):\n  File \"shop/tasks.py\", line 42, in send_invoice\n    smtp.send_message(msg)\nsmtplib.SMTPRecipientsRefused: 550",
                    "timestamp": t + 0.05, "type": "task-failed"})
            } else {
                json!({"hostname": worker, "utcoffset": 0, "pid": 17, "clock": i, "uuid": uuid,
                    "result": format!("'ok {i}'"), "runtime": 0.01 + (i % 100) as f64 / 1000.0,
                    "timestamp": t + 0.05, "type": "task-succeeded"})
            });
            if batch.len() >= 24 {
                out.push(multi(db, &mut batch));
            }
        }
        if !batch.is_empty() {
            out.push(multi(db, &mut batch));
        }
        self.next_task += n;
        out
    }
}

fn multi(db: u32, batch: &mut Vec<Value>) -> Message {
    let events = Value::Array(std::mem::take(batch));
    let host = events[0]["hostname"]
        .as_str()
        .unwrap_or("celery")
        .to_string();
    envelope(db, "task.multi", &events, &host)
}

/// A kombu message as the Redis transport publishes it on `/<db>.celeryev/<routing key>`.
fn envelope(db: u32, routing_key: &str, body: &Value, hostname: &str) -> Message {
    let body = base64::engine::general_purpose::STANDARD.encode(body.to_string());
    let payload = json!({"body": body, "content-encoding": "utf-8",
        "content-type": "application/json", "headers": {"hostname": hostname},
        "properties": {"delivery_mode": 1,
            "delivery_info": {"exchange": "celeryev", "routing_key": routing_key},
            "priority": 0, "body_encoding": "base64", "delivery_tag": "bench"}});
    (format!("/{db}.celeryev/{routing_key}"), payload.to_string())
}

/// Events in a message (a `task.multi` holds many).
fn events_in(message: &Message) -> u64 {
    if message.0.ends_with("task.multi") {
        let envelope: Value = serde_json::from_str(&message.1).unwrap_or_default();
        let body = envelope["body"].as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<Value>>(&b).ok())
            .map_or(1, |v| v.len() as u64)
    } else {
        1
    }
}

/// Waits until a client holds a pattern subscription on the broker (`PUBSUB NUMPAT`), as
/// Vigie's Celery reader does once it has connected.
async fn wait_for_subscriber(redis: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut stream = TcpStream::connect(redis).await.context("redis")?;
        stream.write_all(b"PUBSUB NUMPAT\r\n").await?;
        let mut reply = [0u8; 64];
        let n = stream.read(&mut reply).await?;
        let patterns = std::str::from_utf8(&reply[..n])
            .ok()
            .and_then(|r| r.strip_prefix(':')?.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if patterns > 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no client subscribed to the broker's events within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PUBLISHes `messages` at about `rate` events a second (`usize::MAX`: at once), pipelined on
/// one connection; answers the events sent.
async fn publish(redis: &str, messages: &[Message], rate: usize) -> Result<u64> {
    let counts: Vec<u64> = messages.iter().map(events_in).collect();
    let stream = TcpStream::connect(redis).await.context("redis")?;
    let (mut read, mut write) = stream.into_split();
    let replies = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let mut lines = 0usize;
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return lines,
                Ok(n) => lines += buf[..n].iter().filter(|b| **b == b'\n').count(),
            }
        }
    });
    let started = Instant::now();
    let (mut sent, mut buffer) = (0u64, Vec::with_capacity(1 << 20));
    for (message, events) in messages.iter().zip(&counts) {
        let (channel, payload) = message;
        buffer.extend_from_slice(
            format!(
                "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n",
                channel.len(),
                payload.len()
            )
            .as_bytes(),
        );
        buffer.extend_from_slice(payload.as_bytes());
        buffer.extend_from_slice(b"\r\n");
        sent += events;
        if buffer.len() > 256 << 10 {
            write.write_all(&buffer).await?;
            buffer.clear();
            if rate != usize::MAX {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    write.write_all(&buffer).await?;
    write.shutdown().await?;
    let lines = replies.await?;
    if lines < messages.len() {
        bail!("redis answered {lines} of {} PUBLISH", messages.len());
    }
    Ok(sent)
}
