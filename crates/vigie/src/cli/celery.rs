//! `vigie celery inspect …`, `vigie celery revoke …` and the other worker actions, from a
//! terminal, through a running Vigie (it holds the broker connection; `/api/v1/celery/…`).
//!
//! Inspecting needs a read token; acting needs an admin token, and each action lands in
//! Vigie's audit list under the token's name. `--json` prints the API's answer.

use super::logs::Server;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum CeleryCommand {
    /// Ask the workers: active, reserved, scheduled, registered, stats, active_queues, conf,
    /// ping or revoked.
    Inspect(InspectArgs),
    /// Revoke a task: workers drop it if it has not run (--terminate stops it running).
    Revoke(RevokeArgs),
    /// Send a failed or revoked task again with its arguments, as a new task.
    Retry(RetryArgs),
    /// Limit how often a task type runs per worker: 10/m, 2/s, 100/h; 0 lifts it.
    RateLimit(RateLimitArgs),
    /// Soft and hard time limits of a task type, in seconds.
    TimeLimit(TimeLimitArgs),
    /// Grow, shrink or restart a worker's pool, or set its autoscale bounds.
    Pool(PoolArgs),
    /// Start or stop consuming a queue.
    Consumer(ConsumerArgs),
    /// Stop a worker (running tasks finish first). Asks for the worker's name.
    Shutdown(ShutdownArgs),
    /// Drop every message waiting in a queue. Says how many first; --yes to go on.
    Purge(PurgeArgs),
}

#[derive(Args, Debug)]
pub struct Common {
    #[command(flatten)]
    server: Server,
    /// Only these workers (repeat, or separate with commas); every worker when absent
    #[arg(short = 'w', long = "worker", value_delimiter = ',')]
    workers: Vec<String>,
    /// Seconds to wait for replies
    #[arg(long, default_value_t = 1.0)]
    timeout: f64,
    /// The API's JSON answer
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    common: Common,
    /// What to ask
    #[arg(value_parser = ["active", "reserved", "scheduled", "registered", "stats", "active_queues", "conf", "ping", "revoked"])]
    command: String,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    common: Common,
    /// The task's id
    task_id: String,
    /// Also stop it if it is running, with --signal
    #[arg(long)]
    terminate: bool,
    #[arg(long, default_value = "SIGTERM", requires = "terminate")]
    signal: String,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    #[command(flatten)]
    common: Common,
    /// The failed task's id
    task_id: String,
}

#[derive(Args, Debug)]
pub struct RateLimitArgs {
    #[command(flatten)]
    common: Common,
    /// The task's name, e.g. shop.tasks.send_invoice
    task_name: String,
    /// 10/m, 2/s, 100/h, a number per second; 0 lifts the limit
    rate: String,
}

#[derive(Args, Debug)]
pub struct TimeLimitArgs {
    #[command(flatten)]
    common: Common,
    task_name: String,
    #[arg(long)]
    soft: Option<f64>,
    #[arg(long)]
    hard: Option<f64>,
}

#[derive(Args, Debug)]
pub struct PoolArgs {
    #[command(flatten)]
    common: Common,
    #[arg(value_parser = ["grow", "shrink", "restart", "autoscale"])]
    change: String,
    /// Processes to add or remove (grow, shrink)
    #[arg(short, long, default_value_t = 1)]
    n: u32,
    /// autoscale bounds
    #[arg(long)]
    max: Option<u32>,
    #[arg(long, default_value_t = 0)]
    min: u32,
}

#[derive(Args, Debug)]
pub struct ConsumerArgs {
    #[command(flatten)]
    common: Common,
    #[arg(value_parser = ["add", "cancel"])]
    change: String,
    queue: String,
}

#[derive(Args, Debug)]
pub struct ShutdownArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
pub struct PurgeArgs {
    #[command(flatten)]
    common: Common,
    queue: String,
    /// Purge without asking
    #[arg(long)]
    yes: bool,
}

pub async fn run(cmd: CeleryCommand) -> anyhow::Result<()> {
    match cmd {
        CeleryCommand::Inspect(a) => inspect(a).await,
        CeleryCommand::Revoke(a) => {
            let name = if a.terminate { "terminate" } else { "revoke" };
            let body = json!({"task_id": a.task_id, "signal": a.signal});
            act(&a.common, name, body).await
        }
        CeleryCommand::Retry(a) => act(&a.common, "retry", json!({"task_id": a.task_id})).await,
        CeleryCommand::RateLimit(a) => {
            let body = json!({"task_name": a.task_name, "rate": a.rate});
            act(&a.common, "rate_limit", body).await
        }
        CeleryCommand::TimeLimit(a) => {
            let body = json!({"task_name": a.task_name, "soft": a.soft, "hard": a.hard});
            act(&a.common, "time_limit", body).await
        }
        CeleryCommand::Pool(a) => {
            let body = json!({"n": a.n, "max": a.max, "min": a.min});
            act(&a.common, &format!("pool_{}", a.change), body).await
        }
        CeleryCommand::Consumer(a) => {
            let body = json!({"queue": a.queue});
            act(&a.common, &format!("{}_consumer", a.change), body).await
        }
        CeleryCommand::Shutdown(a) => {
            if a.common.workers.is_empty() {
                anyhow::bail!(
                    "name the worker to stop with --worker NAME (see `vigie celery inspect ping`)"
                );
            }
            act(&a.common, "shutdown", json!({})).await
        }
        CeleryCommand::Purge(a) => purge(a).await,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

async fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let mut params = vec![("timeout", a.common.timeout.to_string())];
    if !a.common.workers.is_empty() {
        params.push(("worker", a.common.workers.join(",")));
    }
    let answer = a
        .common
        .server
        .get(&format!("/api/v1/celery/inspect/{}", a.command), &params)
        .await?;
    let mut out = std::io::stdout().lock();
    if a.common.json {
        writeln!(out, "{answer}")?;
        return Ok(());
    }
    let replies = answer["replies"].as_object().cloned().unwrap_or_default();
    if replies.is_empty() {
        writeln!(out, "No worker answered within {} s.", a.common.timeout)?;
    }
    for (worker, reply) in &replies {
        writeln!(out, "-> {worker}: {}", summary(&a.command, reply))?;
        for line in details(&a.command, reply) {
            writeln!(out, "    * {line}")?;
        }
    }
    for worker in answer["silent"].as_array().into_iter().flatten() {
        writeln!(out, "-> {}: no answer", text(worker))?;
    }
    Ok(())
}

/// One line per worker, as `celery inspect` prints it.
fn summary(command: &str, reply: &Value) -> String {
    match (command, reply) {
        (_, Value::Object(m)) if m.contains_key("ok") => text(&m["ok"]),
        (_, Value::Object(m)) if m.contains_key("error") => format!("error: {}", text(&m["error"])),
        (_, Value::Array(items)) if items.is_empty() => "- empty -".into(),
        (_, Value::Array(items)) => format!("{} item(s)", items.len()),
        ("stats", v) => format!(
            "pool {} ({} processes), prefetch {}",
            text(&v["pool"]["implementation"]),
            v["pool"]["processes"].as_array().map_or(0, Vec::len),
            text(&v["prefetch_count"])
        ),
        _ => "OK".into(),
    }
}

/// The items under a worker's line: tasks, names, queues, settings.
fn details(command: &str, reply: &Value) -> Vec<String> {
    match reply {
        Value::Array(items) => items
            .iter()
            .map(|item| match command {
                "active_queues" => text(&item["name"]),
                "scheduled" => format!(
                    "{} {} eta {}",
                    text(&item["request"]["name"]),
                    text(&item["request"]["id"]),
                    text(&item["eta"])
                ),
                _ if item.is_object() => format!(
                    "{} {} {}",
                    text(&item["name"]),
                    text(&item["id"]),
                    text(&item["args"])
                ),
                _ => text(item),
            })
            .collect(),
        Value::Object(m) if command == "conf" => {
            m.iter().map(|(k, v)| format!("{k}: {v}")).collect()
        }
        _ => Vec::new(),
    }
}

async fn act(common: &Common, name: &str, mut body: Value) -> anyhow::Result<()> {
    body["workers"] = json!(common.workers);
    body["timeout"] = json!(common.timeout);
    if let Value::Object(m) = &mut body {
        m.retain(|_, v| !v.is_null());
    }
    let answer = common
        .server
        .post(&format!("/api/v1/celery/control/{name}"), &body)
        .await?;
    let mut out = std::io::stdout().lock();
    if common.json {
        writeln!(out, "{answer}")?;
    } else {
        writeln!(
            out,
            "{}: {}",
            text(&answer["description"]),
            text(&answer["outcome"])
        )?;
    }
    if answer["ok"] != json!(true) {
        anyhow::bail!("not done everywhere: {}", text(&answer["outcome"]));
    }
    Ok(())
}

async fn purge(a: PurgeArgs) -> anyhow::Result<()> {
    let queues = a.common.server.get("/api/v1/celery/queues", &[]).await?;
    let waiting = queues
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["name"] == a.queue.as_str())
        .map(|q| text(&q["messages"]))
        .unwrap_or_else(|| "an unknown number of".into());
    if !a.yes {
        anyhow::bail!(
            "{waiting} message(s) wait in {:?}; run again with --yes to drop them",
            a.queue
        );
    }
    act(&a.common, "purge", json!({"queue": a.queue})).await
}
