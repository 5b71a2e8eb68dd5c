//! `vigie issues list` and `vigie issues show`: errors in a terminal.
//!
//! Both read a running Vigie over the JSON API (`/api/v1/issues`), with an API token of read
//! scope, like `vigie search`. `--json` prints the API's answer for scripts.

use super::logs::{colour, Server};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum IssuesCommand {
    /// List issues, most recently seen first.
    List(ListArgs),
    /// Show one issue: counts, releases, tags and the latest event's stack trace.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    server: Server,
    /// Words in the title, and tag filters like customer:acme or environment:production
    query: Vec<String>,
    /// unresolved, resolved, resolved_next, ignored or all
    #[arg(long, default_value = "unresolved")]
    status: String,
    /// last_seen, first_seen, events or users
    #[arg(long, default_value = "last_seen")]
    sort: String,
    /// Only issues seen within this period, e.g. 24h or 14d
    #[arg(long)]
    period: Option<String>,
    /// Most issues shown
    #[arg(short = 'n', long, default_value_t = 25)]
    limit: u32,
    /// The API's JSON answer
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    server: Server,
    /// The issue's number (the first column of `vigie issues list`)
    id: i64,
    /// The API's JSON answer
    #[arg(long)]
    json: bool,
}

pub async fn run(cmd: IssuesCommand) -> anyhow::Result<()> {
    match cmd {
        IssuesCommand::List(args) => list(args).await,
        IssuesCommand::Show(args) => show(args).await,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `2026-11-21T10:40:12.345Z` → `2026-11-21 10:40`.
fn minute(v: &Value) -> String {
    text(v).get(..16).unwrap_or("").replace('T', " ")
}

fn paint(code: &str, s: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn level_code(level: &str) -> &'static str {
    match level {
        "fatal" | "error" => "31",
        "warning" => "33",
        _ => "34",
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let mut params = vec![
        ("query", args.query.join(" ")),
        ("status", args.status.clone()),
        ("sort", args.sort.clone()),
        ("limit", args.limit.to_string()),
    ];
    if let Some(p) = &args.period {
        params.push(("period", p.clone()));
    }
    let page = args.server.get("/api/v1/issues", &params).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{page}")?;
        return Ok(());
    }
    let issues = page["issues"].as_array().cloned().unwrap_or_default();
    if issues.is_empty() {
        writeln!(out, "No {} issue matches.", args.status.replace("all", ""))?;
        return Ok(());
    }
    let on = colour();
    writeln!(
        out,
        "{:>6}  {:<8} {:>8} {:>6}  {:<16}  TITLE",
        "ID", "LEVEL", "EVENTS", "USERS", "LAST SEEN"
    )?;
    for i in &issues {
        let level = text(&i["level"]);
        let mut title = text(&i["title"]);
        if i["regressed"].as_bool() == Some(true) {
            title.push_str(" [regression]");
        }
        writeln!(
            out,
            "{:>6}  {} {:>8} {:>6}  {:<16}  {title}",
            text(&i["id"]),
            paint(level_code(&level), &format!("{level:<8}"), on),
            text(&i["events"]),
            text(&i["users"]),
            minute(&i["last_seen"]),
        )?;
    }
    let total = page["total"].as_u64().unwrap_or(0);
    if total > issues.len() as u64 {
        writeln!(out, "({} of {total} shown; -n for more)", issues.len())?;
    }
    Ok(())
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let detail = args
        .server
        .get(&format!("/api/v1/issues/{}", args.id), &[])
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{detail}")?;
        return Ok(());
    }
    let on = colour();
    let i = &detail["issue"];
    let level = text(&i["level"]);
    writeln!(out, "{}", paint("1", &text(&i["title"]), on))?;
    writeln!(out, "{}", text(&i["culprit"]))?;
    writeln!(out)?;
    let status = text(&i["status"]).replace('_', " ");
    let regressed = if i["regressed"].as_bool() == Some(true) {
        " (regression)"
    } else {
        ""
    };
    writeln!(out, "  status      {status}{regressed}")?;
    writeln!(
        out,
        "  level       {}",
        paint(level_code(&level), &level, on)
    )?;
    writeln!(out, "  events      {}", text(&i["events"]))?;
    writeln!(out, "  users       {}", text(&i["users"]))?;
    writeln!(
        out,
        "  first seen  {} UTC  {}",
        minute(&i["first_seen"]),
        text(&i["first_release"])
    )?;
    writeln!(
        out,
        "  last seen   {} UTC  {}",
        minute(&i["last_seen"]),
        text(&i["last_release"])
    )?;
    let tags = detail["tags"].as_array().cloned().unwrap_or_default();
    if !tags.is_empty() {
        writeln!(out, "\nTags")?;
        let mut key = String::new();
        for t in &tags {
            let k = text(&t["key"]);
            if k != key {
                write!(out, "\n  {k:<14}")?;
                key = k;
            }
            write!(out, " {} ({})", text(&t["value"]), text(&t["count"]))?;
        }
        writeln!(out)?;
    }
    let event = &detail["latest_event"];
    let exceptions = event
        .pointer("/exception/values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !exceptions.is_empty() {
        writeln!(out, "\nLatest event {}", text(&event["event_id"]))?;
    }
    for e in &exceptions {
        writeln!(out, "\n  {}: {}", text(&e["type"]), text(&e["value"]))?;
        let frames = e
            .pointer("/stacktrace/frames")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for f in &frames {
            if f["in_app"].as_bool() == Some(false) {
                continue;
            }
            let place = [&f["module"], &f["filename"]]
                .into_iter()
                .map(text)
                .find(|s| !s.is_empty())
                .unwrap_or_default();
            writeln!(
                out,
                "    {place}:{} in {}",
                text(&f["lineno"]),
                text(&f["function"])
            )?;
            let line = text(&f["context_line"]);
            if !line.trim().is_empty() {
                writeln!(out, "        {}", paint("2", line.trim(), on))?;
            }
        }
    }
    Ok(())
}
