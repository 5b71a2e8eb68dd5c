//! The `search` scenario: every kind of log query, beside `rg` on the same lines, and beside
//! another build of Vigie on the same stored data.
//!
//! 1. The `logs` scenario's lines (structlog's JSON shape over the last 7 days, ten holding a
//!    rare word) are written to a file and ingested by `--binary` and by `--baseline` (when
//!    given), each into a data directory of its own; each server is stopped (kill -9).
//! 2. Both builds are started again on their data, side by side.
//! 3. Each query runs `runs` times against each server in turn (new, baseline, new, …), after
//!    one unmeasured run; the p50 of the request's wall time and the server's CPU time per
//!    query (user + system, from `/proc`) are printed for both, with the answers checked to be
//!    the same. Beside each, what `rg` takes to answer the same question from the file, warm
//!    (median of 5): a count over all lines for all-time queries, `tac | rg -m100` for a
//!    newest-100 page.

use super::logs::{self, generate, ingest, now_ns, rfc3339, url};
use super::{add_admin, client, login, percentile, Server};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Options {
    /// Another build to search the same data with, side by side (e.g. the previous release)
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Lines generated and stored
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: usize,
    /// Measured runs of each query on each server
    #[arg(long, default_value_t = 11)]
    pub runs: usize,
    /// Keep each build's data directory at the end (their paths are printed), to search or
    /// profile the same history again with `vigie serve --data`
    #[arg(long)]
    pub keep: bool,
}

/// One query: what Vigie is asked, and the shell command that answers it from the file with
/// `rg` (`FILE` stands for the file), if any.
pub(crate) struct Query {
    pub(crate) kind: &'static str,
    pub(crate) q: String,
    pub(crate) rg: Option<String>,
}

/// The query kinds compared, over the `logs` scenario's lines generated at `now`.
pub(crate) fn queries(now: i64) -> Vec<Query> {
    let hour = 3_600_000_000_000;
    let from = (now - 3 * 86_400 * 1_000_000_000) / hour * hour;
    let (from_text, to_text) = (rfc3339(from), rfc3339(from + hour - 1));
    let prefix = &from_text[..13];
    let newest = |pattern: &str| Some(format!("tac FILE | rg -m100 {pattern}"));
    vec![
        Query {
            kind: "regex, all time",
            q: r"/INV-00012\d/".into(),
            rg: Some(r"rg -c 'INV-00012\d' FILE".into()),
        },
        Query {
            kind: "rare word, all time",
            q: "quasar7731".into(),
            rg: Some("rg -c -w quasar7731 FILE".into()),
        },
        Query {
            kind: "common word, newest 100",
            q: "invoice".into(),
            rg: newest("-w -i invoice"),
        },
        Query {
            kind: "phrase, newest 100",
            q: "\"too many messages\"".into(),
            rg: newest("-i -F 'too many messages'"),
        },
        Query {
            kind: "field, newest 100",
            q: "field.pid:4003".into(),
            rg: newest("-F '\"pid\":4003'"),
        },
        Query {
            kind: "source, newest 100",
            q: "source:mailer".into(),
            // The file does not say which source a line was sent as: the nearest question
            // rg answers is the newest 100 lines.
            rg: Some("tac FILE | head -100".into()),
        },
        Query {
            kind: "one hour 3 days back, first 100",
            q: format!("from:{from_text} to:{to_text}"),
            rg: Some(format!("rg -m100 '\"timestamp\":\"{prefix}' FILE")),
        },
        Query {
            kind: "level:error and a word, newest 100",
            q: "level:error vat_rate".into(),
            rg: newest("-F '\"level\":\"error\"' | rg -m100 -w vat_rate"),
        },
    ]
}

/// A server searched in the comparison, with its session.
struct Searched {
    name: &'static str,
    server: Server,
    session: String,
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    println!(
        "scenario search: {} lines; {} against {} ({} cores)",
        opts.lines,
        binary.display(),
        opts.baseline
            .as_ref()
            .map_or("nothing".into(), |b| b.display().to_string()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if Command::new("rg").arg("--version").output().is_err() {
        println!("  rg is not installed (apt-get install ripgrep): its column stays empty");
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("lines.jsonl");
    let now = now_ns();
    generate(&file, opts.lines, now)?;
    let mut builds = vec![("new", binary.to_path_buf())];
    if let Some(baseline) = &opts.baseline {
        builds.push(("baseline", baseline.clone()));
    }
    let http = client()?;
    let mut searched = Vec::new();
    for (name, build) in builds {
        // Each build stores the lines itself, in its own format (a newer build's data
        // directory may be at a schema an older one refuses).
        let (server, _) = Server::start(&build)?;
        let key = server.key.clone().context("no DSN in the banner")?;
        let ingest_opts = logs::Options {
            lines: opts.lines,
            batch: 4096,
            concurrency: 4,
            udp_rates: Vec::new(),
            file: Some(file.clone()),
        };
        println!("  {name}: ingest");
        ingest(&server.url, &key, &file, &ingest_opts).await?;
        // Stopped (kill -9, as the server's own durability tests do) and started again on
        // the same files: every acknowledged line is in SQLite's database and WAL.
        let mut server = server;
        let data = std::mem::replace(&mut server.data, tempfile::tempdir()?);
        drop(server);
        let (server, _) = Server::start_in(&build, data, &[])?;
        add_admin(&build, &server)?;
        let session = login(&http, &server.url).await?;
        searched.push(Searched {
            name,
            server,
            session,
        });
    }

    println!(
        "  {:<36} {:>22} {:>22} {:>12}",
        "query (p50 of the request; server CPU per query)",
        searched[0].name,
        searched.get(1).map_or("", |s| s.name),
        "rg"
    );
    for query in queries(now) {
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); searched.len()];
        let mut cpu = vec![0.0; searched.len()];
        let mut answers: Vec<Value> = vec![Value::Null; searched.len()];
        for round in 0..=opts.runs {
            for (i, s) in searched.iter().enumerate() {
                let address = url(
                    &s.server.url,
                    "/api/v1/logs/search",
                    &[("limit", "100"), ("q", &query.q)],
                )?;
                let before = s.server.cpu_seconds()?;
                let t = Instant::now();
                let response = http
                    .get(&address)
                    .header("cookie", &s.session)
                    .send()
                    .await?;
                let status = response.status();
                let body: Value = response.json().await?;
                let wall = t.elapsed().as_secs_f64() * 1000.0;
                if !status.is_success() {
                    bail!("{}: {} {status} {body}", s.name, query.q);
                }
                if round > 0 {
                    times[i].push(wall);
                    cpu[i] += s.server.cpu_seconds()? - before;
                }
                answers[i] = body;
            }
        }
        let found = |answer: &Value| -> Vec<String> {
            answer["hits"]
                .as_array()
                .map(|hits| hits.iter().map(|h| h["message"].to_string()).collect())
                .unwrap_or_default()
        };
        let hits = found(&answers[0]);
        if let Some(other) = answers.get(1) {
            if found(other) != hits {
                bail!("{}: the two builds found different records", query.q);
            }
        }
        let cell = |i: usize| -> String {
            let Some(t) = times.get(i) else {
                return String::new();
            };
            let mut t = t.clone();
            t.sort_by(f64::total_cmp);
            format!(
                "{:.1} ms; {:.1} ms CPU",
                percentile(&t, 0.5),
                cpu[i] * 1000.0 / opts.runs as f64
            )
        };
        let rg = query
            .rg
            .as_deref()
            .and_then(|command| shell_median(&command.replace("FILE", &file.display().to_string())))
            .map_or("—".into(), |ms| format!("{ms:.1} ms"));
        println!(
            "  {:<36} {:>22} {:>22} {:>12}   ({} hits) {}",
            query.kind,
            cell(0),
            cell(1),
            rg,
            hits.len(),
            query.q
        );
    }
    if opts.keep {
        for mut s in searched {
            let data = std::mem::replace(&mut s.server.data, tempfile::tempdir()?);
            println!(
                "  {}'s data directory kept: {}",
                s.name,
                data.keep().display()
            );
        }
    }
    Ok(())
}

/// The median wall time of 5 runs of `command` in `sh`, after one unmeasured run.
fn shell_median(command: &str) -> Option<f64> {
    let quiet = format!("{command} > /dev/null");
    logs::warm_median(Command::new("sh").args(["-c", &quiet])).map(|(ms, _)| ms)
}
