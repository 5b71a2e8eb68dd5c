//! `vigie job`: run any command as a job, list jobs, follow one in the terminal.
//!
//! These talk to a running Vigie over the jobs API with the project DSN (`--dsn` or
//! `VIGIE_DSN`, as printed by `vigie serve` and shown on the dashboard), like any job process.
//! The DSN's key only *sends* (it is public: browser SDKs put it in pages), so `list` and
//! `show` read with an API token (`--token` / `VIGIE_TOKEN`, read scope) on the DSN's project.
//!
//! `vigie job run` never stands in the way of the command it wraps: if Vigie cannot be reached
//! it says so once on stderr and the command runs all the same, with its exit code passed
//! through. The wrapped command sees `VIGIE_DSN` and `VIGIE_JOB_ID`, so it can report items of
//! its own to the same job.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use vigie_protocol::Dsn;

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Run a command as a job: its output lines become job messages, its exit code decides
    /// completed or failed (and is passed through).
    Run(RunArgs),
    /// List the project's jobs, newest first.
    List(ListArgs),
    /// Show one job; --follow draws a live progress bar until it finishes.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub struct Target {
    /// The project DSN, e.g. http://KEY@127.0.0.1:8610/1 (shown by `vigie serve`)
    #[arg(long, env = "VIGIE_DSN", value_name = "DSN", hide_env_values = true)]
    dsn: String,
}

#[derive(Args, Debug)]
pub struct ReadTarget {
    #[command(flatten)]
    target: Target,
    /// An API token with read scope (Settings → API tokens, or `vigie token create`): the
    /// DSN's key only sends
    #[arg(long, env = "VIGIE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    target: Target,
    /// The job's name, as the UI shows it
    #[arg(long)]
    name: String,
    /// Task type, e.g. import
    #[arg(long)]
    kind: Option<String>,
    /// Silence after which the job is reported stalled, e.g. 90s, 5m
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    stall_after: Duration,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    target: ReadTarget,
    /// Only jobs with this status
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
        vigie_core::JobStatus::ALL.map(vigie_core::JobStatus::as_str)
    ))]
    status: Option<String>,
    /// Whose jobs: the ones your applications reported (the jobs API, `vigie job run`), the
    /// Celery tasks Vigie read, the runs of monitors, or all of them
    #[arg(long, default_value = "reported", value_parser = ["reported", "celery", "monitor", "all"])]
    origin: String,
    /// How many jobs to list
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print the API's JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    target: ReadTarget,
    /// The job's id
    id: String,
    /// Keep watching until the job finishes
    #[arg(long, short)]
    follow: bool,
    /// Print the API's JSON (one line per change with --follow)
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: JobCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        JobCommand::Run(args) => run_command(args).await,
        JobCommand::List(args) => list(args).await.map(|()| ExitCode::SUCCESS),
        JobCommand::Show(args) => show(args).await.map(|()| ExitCode::SUCCESS),
    }
}

/// The jobs API of one Vigie: writes with the project key, reads with an API token.
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    project_id: String,
    token: Option<String>,
}

impl Api {
    /// An API that reads: a token is required, the DSN names the server and the project.
    fn reader(target: &ReadTarget) -> anyhow::Result<Api> {
        let api = Api::new(&target.target)?;
        let Some(token) = target.token.clone() else {
            bail!(
                "reading jobs needs an API token: pass --token or set VIGIE_TOKEN (Settings → \
                 API tokens, or `vigie token create --name cli --scope read`); the DSN's key \
                 only sends"
            );
        };
        Ok(Api {
            token: Some(token),
            ..api
        })
    }

    fn new(target: &Target) -> anyhow::Result<Api> {
        let dsn = Dsn::parse(&target.dsn).map_err(|e| {
            anyhow!("--dsn / VIGIE_DSN: {e}; copy the DSN from the dashboard or `vigie serve`")
        })?;
        Ok(Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: dsn.server_url(),
            key: dsn.public_key.clone(),
            project_id: dsn.project_id.clone(),
            token: None,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/{path}", self.base);
        let mut req = match &self.token {
            Some(token) => {
                let join = if path.contains('?') { '&' } else { '?' };
                let url = format!("{url}{join}project={}", self.project_id);
                self.http.request(method, &url).bearer_auth(token)
            }
            None => self.http.request(method, &url).bearer_auth(&self.key),
        };
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach Vigie at {}; is `vigie serve` running?",
                self.base
            )
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or("no details");
            bail!("Vigie answered {status}: {message}");
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// What the wrapped command's pipes and the clock tell the reporter.
enum Report {
    Line(String),
    Tick,
}

async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.target)?;
    let mut body = json!({"name": args.name, "stall_after": args.stall_after.as_secs_f64()});
    if let Some(kind) = &args.kind {
        body["kind"] = json!(kind);
    }
    let job_id = match api.post("jobs", body).await {
        Ok(job) => {
            let id = job["id"].as_str().map(str::to_string);
            // On stderr, so the command's own output stays as it was.
            if let Some(id) = &id {
                eprintln!(
                    "vigie: job {id}: {}/jobs/{id}",
                    api.base.trim_end_matches('/')
                );
            }
            id
        }
        Err(err) => {
            eprintln!("vigie: cannot report this job ({err:#}); running the command anyway");
            None
        }
    };

    let (program, rest) = args
        .command
        .split_first()
        .context("no command given after --")?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(rest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("VIGIE_DSN", &args.target.dsn);
    if let Some(id) = &job_id {
        command.env("VIGIE_JOB_ID", id);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {program:?}"))?;

    let (tx, rx) = mpsc::channel(1024);
    let stdout = tokio::spawn(forward(child.stdout.take(), tx.clone(), false));
    let stderr = tokio::spawn(forward(child.stderr.take(), tx.clone(), true));
    // Heartbeats well inside stall_after, so a healthy but quiet command never looks stalled.
    let beat = (args.stall_after / 3).clamp(Duration::from_millis(500), Duration::from_secs(20));
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(beat.min(Duration::from_millis(500))).await;
            if tx.send(Report::Tick).await.is_err() {
                return;
            }
        }
    });
    let reporter = tokio::spawn(report(api, job_id.clone(), rx, beat));

    let status = child.wait().await.context("waiting for the command")?;
    let _ = tokio::join!(stdout, stderr);
    ticker.abort();
    let api = reporter.await.context("reporter")?;

    let code = status.code();
    if let (Some(api), Some(id)) = (api, job_id) {
        let finish = match code {
            Some(0) => json!({"status": "completed"}),
            Some(n) => json!({"status": "failed", "message": format!("exit code {n}")}),
            None => json!({"status": "cancelled", "message": "killed by a signal"}),
        };
        if let Err(err) = api.post(&format!("jobs/{id}/finish"), finish).await {
            eprintln!("vigie: could not report the end of the job: {err:#}");
        }
    }
    Ok(ExitCode::from(code.unwrap_or(1).clamp(0, 255) as u8))
}

/// Copies a pipe of the child to ours, line by line, and hands each line to the reporter.
async fn forward(pipe: Option<impl AsyncRead + Unpin>, tx: mpsc::Sender<Report>, err: bool) {
    let Some(pipe) = pipe else { return };
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if err {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        // A full queue means Vigie is slow: drop the message, never block the command.
        let _ = tx.try_send(Report::Line(line));
    }
}

/// Sends output lines as job messages in batches (at most every 500 ms) and heartbeats when
/// quiet. Returns the API if Vigie stayed reachable, for the final report.
async fn report(
    api: Api,
    job_id: Option<String>,
    mut rx: mpsc::Receiver<Report>,
    beat: Duration,
) -> Option<Api> {
    let id = job_id?;
    let mut lines: Vec<String> = Vec::new();
    let mut last_sent = std::time::Instant::now();
    let mut warned = false;
    let mut open = true;
    while open {
        match rx.recv().await {
            Some(Report::Line(line)) => {
                lines.push(line);
                if last_sent.elapsed() < Duration::from_millis(500) {
                    continue;
                }
            }
            Some(Report::Tick) => {
                if lines.is_empty() && last_sent.elapsed() < beat {
                    continue;
                }
            }
            None => open = false,
        }
        let (path, body) = if lines.is_empty() {
            (format!("jobs/{id}/heartbeat"), json!({}))
        } else {
            let messages = std::mem::take(&mut lines);
            (
                format!("jobs/{id}/progress"),
                json!({ "messages": messages }),
            )
        };
        if !open && path.ends_with("heartbeat") {
            break;
        }
        match api.post(&path, body).await {
            Ok(_) => warned = false,
            Err(err) if !warned => {
                eprintln!("vigie: {err:#}; the command goes on");
                warned = true;
            }
            Err(_) => {}
        }
        last_sent = std::time::Instant::now();
    }
    Some(api)
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let api = Api::reader(&args.target)?;
    let mut path = format!("jobs?limit={}&origin={}", args.limit, args.origin);
    if let Some(status) = &args.status {
        path.push_str(&format!("&status={status}"));
    }
    let answer = api.get(&path).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let jobs = answer["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        match args.origin.as_str() {
            "reported" => println!(
                "No job reported yet. Report one with `vigie job run --name NAME -- COMMAND` \
                 (Celery tasks and monitor runs: --origin celery, --origin monitor, --origin all)."
            ),
            origin => println!("No job of origin {origin}."),
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                text(&j["id"]),
                text(&j["status"]),
                text(&j["name"]),
                text(&j["kind"]),
                counts(j),
                text(&j["failed"]),
                text(&j["elapsed"]),
                text(&j["created_at"]),
            ]
        })
        .collect();
    super::print_table(
        &[
            "ID", "STATUS", "NAME", "KIND", "PROGRESS", "ERRORS", "ELAPSED", "CREATED",
        ],
        &rows,
    );
    println!("{} of {} jobs", jobs.len(), answer["total"]);
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn counts(job: &Value) -> String {
    match (job["total"].as_i64(), job["percent"].as_f64()) {
        (Some(total), Some(p)) => format!("{}/{total} ({p:.1}%)", job["processed"]),
        _ => format!("{}", job["processed"]),
    }
}

/// `[██████████░░░░░░░░░░]` for a percentage.
pub fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("[{}{}]", "█".repeat(filled), "░".repeat(width - filled))
}

fn progress_line(job: &Value) -> String {
    let percent = job["percent"].as_f64();
    let eta = job["eta_seconds"]
        .as_f64()
        .map(|s| {
            format!(
                " · ETA {}",
                vigie_core::job::human_duration((s * 1000.0) as i64)
            )
        })
        .unwrap_or_default();
    format!(
        "{} {} {} · {} errors · {:.1}/s · {}{eta}",
        bar(percent.unwrap_or(0.0), 30),
        percent.map_or("-".into(), |p| format!("{p:.1}%")),
        counts(job),
        job["failed"],
        job["speed"].as_f64().unwrap_or(0.0),
        text(&job["status"]),
    )
}

const FINISHED: [&str; 3] = ["completed", "failed", "cancelled"];

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let api = Api::reader(&args.target)?;
    let path = format!("jobs/{}", urlencode(&args.id));
    let mut job = api.get(&path).await?;
    if args.json {
        println!("{job}");
    } else {
        println!(
            "{}  {}  [{}]",
            text(&job["name"]),
            text(&job["id"]),
            text(&job["status"])
        );
        for (label, key) in [
            ("kind", "kind"),
            ("application", "application"),
            ("launched by", "launched_by"),
            ("created", "created_at"),
            ("last sign of life", "last_update"),
        ] {
            if !job[key].is_null() {
                println!("  {label:<18} {}", text(&job[key]));
            }
        }
        if let Some(m) = job["message"].as_str() {
            println!("  {:<18} {m}", "message");
        }
    }
    // Redrawn in place on a terminal; a file or a pipe gets a line per change instead of
    // carriage returns and escape codes.
    let redraw = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last = String::new();
    loop {
        let done = FINISHED.contains(&job["status"].as_str().unwrap_or(""));
        if !args.json {
            let line = progress_line(&job);
            if args.follow && redraw {
                print!("\r\x1b[2K{line}");
                std::io::stdout().flush()?;
            } else if line != last {
                println!("{line}");
                last = line;
            }
        } else if args.follow {
            let now = job.to_string();
            if now != last {
                println!("{now}");
                last = now;
            }
        }
        if done || !args.follow {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        job = api.get(&path).await?;
    }
    if !args.json {
        if args.follow && redraw {
            println!();
        }
        if let Some(line) = job["summary"]["line"].as_str() {
            println!("{line}");
        }
    }
    Ok(())
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_in_proportion() {
        assert_eq!(bar(0.0, 4), "[░░░░]");
        assert_eq!(bar(50.0, 4), "[██░░]");
        assert_eq!(bar(140.0, 4), "[████]");
    }
}
