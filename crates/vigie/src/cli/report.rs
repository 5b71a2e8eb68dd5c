//! `vigie report incident`: what happened in a window of time, and why it probably happened,
//! read from a running Vigie (`/api/v1/reports/incident`, see the server's `reports`).

use super::logs::Server;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// One timeline over logs, errors, jobs and monitor runs in a window, with diagnosis hints
    /// (SMTP throttling, gateway timeouts, killed workers, …) and the lines that show them.
    Incident(IncidentArgs),
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
    /// Time zone of --from and --to [default: this machine's]
    #[arg(long)]
    tz: Option<String>,
    /// text, markdown or json
    #[arg(long, default_value = "text", value_parser = ["text", "markdown", "json"])]
    format: String,
}

pub async fn run(cmd: ReportCommand) -> anyhow::Result<()> {
    match cmd {
        ReportCommand::Incident(args) => incident(args).await,
    }
}

async fn incident(args: IncidentArgs) -> anyhow::Result<()> {
    let tz = args.tz.unwrap_or_else(|| {
        jiff::tz::TimeZone::system()
            .iana_name()
            .unwrap_or("UTC")
            .to_string()
    });
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
