//! `vigie report incident` (what happened in a window of time, and why it probably happened)
//! and `vigie report daily` (the day's work), read from a running Vigie (`/api/v1/reports/…`,
//! see the server's `reports`).

use super::logs::Server;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// One timeline over logs, errors, jobs and monitor runs in a window, with diagnosis hints
    /// (SMTP throttling, gateway timeouts, killed workers, …) and the lines that show them.
    Incident(IncidentArgs),
    /// The day's work per job kind (ok, failed, success rate), the last errors, new issues and
    /// jobs running now.
    Daily(DailyArgs),
}

#[derive(Args, Debug)]
pub struct DailyArgs {
    #[command(flatten)]
    server: Server,
    /// The day, e.g. 2025-01-10 [default: today]
    #[arg(long)]
    date: Option<String>,
    /// Time zone of the day [default: this machine's]
    #[arg(long)]
    tz: Option<String>,
    /// text, markdown or json
    #[arg(long, default_value = "text", value_parser = ["text", "markdown", "json"])]
    format: String,
}

#[derive(Args, Debug)]
pub struct IncidentArgs {
    #[command(flatten)]
    server: Server,
    /// Start of the window: "2025-01-10 22:15", or RFC 3339
    #[arg(long)]
    from: String,
    /// End of the window: "2025-01-10 22:30", or a time of day on the day of --from ("22:30")
    #[arg(long)]
    to: String,
    /// Time zone of --from, --to and the times shown [default: this machine's]
    #[arg(long)]
    tz: Option<String>,
    /// text, markdown, html (one self-contained page) or json
    #[arg(long, default_value = "text", value_parser = ["text", "markdown", "html", "json"])]
    format: String,
}

pub async fn run(cmd: ReportCommand) -> anyhow::Result<()> {
    match cmd {
        ReportCommand::Incident(args) => incident(args).await,
        ReportCommand::Daily(args) => daily(args).await,
    }
}

fn local_zone(tz: Option<String>) -> String {
    tz.unwrap_or_else(|| {
        jiff::tz::TimeZone::system()
            .iana_name()
            .unwrap_or("UTC")
            .to_string()
    })
}

async fn daily(args: DailyArgs) -> anyhow::Result<()> {
    let params = [
        ("date", args.date.unwrap_or_default()),
        ("tz", local_zone(args.tz)),
        ("format", args.format.clone()),
    ];
    let text = args
        .server
        .get_text("/api/v1/reports/daily", &params)
        .await?;
    print!("{text}");
    if args.format == "json" {
        println!();
    }
    Ok(())
}

async fn incident(args: IncidentArgs) -> anyhow::Result<()> {
    let tz = local_zone(args.tz);
    let params = [
        ("from", args.from),
        ("to", args.to),
        ("tz", tz),
        ("format", args.format.clone()),
    ];
    let text = args
        .server
        .get_text("/api/v1/reports/incident", &params)
        .await?;
    print!("{text}");
    if args.format == "json" {
        println!();
    }
    Ok(())
}
