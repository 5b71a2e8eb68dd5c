//! `vigie search`, `vigie tail` and `vigie import`: logs in a terminal.
//!
//! `search` and `tail` read from a running Vigie over the JSON API with an API token
//! (`--url`/`VIGIE_URL`, `--token`/`VIGIE_TOKEN`, read scope is enough). `search` exits 1 when
//! nothing matches, like grep. Lines are coloured by level unless `NO_COLOR` is set or the
//! output is not a terminal.
//!
//! `import` reads existing log files, detecting each file's format from its first lines,
//! joining multi-line records, and keeping every line it cannot read as a raw record; then
//! stores them directly (offline, in the data directory or database, like the admin commands)
//! or sends them to a running Vigie (`--url` with a token, or `--dsn`) as JSON lines in
//! Vigie's own record shape, which it reads back exactly. `--follow` goes on reading the
//! files as they grow and rotate (`vigie_server::logs::follow`, as `[[logs.follow]]` does).

use super::StorageArgs;
use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use vigie_protocol::logs::files::{Format, Importer, Zone};

#[derive(Args, Debug)]
pub struct Server {
    /// Vigie's address
    #[arg(long, env = "VIGIE_URL", default_value = "http://127.0.0.1:8610")]
    url: String,
    /// An API token (Settings → API tokens, or `vigie token create`)
    #[arg(long, env = "VIGIE_TOKEN", hide_env_values = true)]
    token: String,
    /// Project id or name [default: the only project]
    #[arg(long)]
    project: Option<String>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    server: Server,
    /// The query, e.g. 'smtp level:>=warning source:worker' (see the README's search language)
    query: Vec<String>,
    /// Only records newer than this, e.g. 15m, 1h, 2d
    #[arg(long)]
    since: Option<String>,
    /// Most records shown (the newest)
    #[arg(short = 'n', long, default_value_t = 100)]
    limit: usize,
    /// One JSON object per record
    #[arg(long, conflicts_with = "raw")]
    json: bool,
    /// Messages only, as they were logged
    #[arg(long)]
    raw: bool,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    server: Server,
    /// Only records matching this query
    query: Vec<String>,
    /// Keep printing records as they arrive
    #[arg(short, long)]
    follow: bool,
    /// Records shown first
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: usize,
    /// One JSON object per record
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Send to the running Vigie at this address (with --token) instead of storing offline
    #[arg(long, env = "VIGIE_URL")]
    url: Option<String>,
    /// An admin API token for --url (Settings → API tokens, or `vigie token create`)
    #[arg(long, env = "VIGIE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Send to the running Vigie this project DSN names (http://KEY@host:8610/1)
    #[arg(
        long,
        env = "VIGIE_DSN",
        hide_env_values = true,
        conflicts_with = "url"
    )]
    dsn: Option<String>,
    /// Files to import (with --follow, globs like '/srv/app/logs/*.log' too)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Keep reading the files as they grow and rotate, until Ctrl-C
    #[arg(long)]
    follow: bool,
    /// With --follow: start at the files' end (only what is written from now on)
    #[arg(long, requires = "follow")]
    from_end: bool,
    /// auto, or one of: nginx-access (also Apache's), nginx-error, apache-error, syslog,
    /// journald-json, journald-export, postgres, postfix, python, celery, gunicorn, redis,
    /// logfmt, jsonl
    #[arg(long, default_value = "auto")]
    format: String,
    /// Source name for the records [default: the file's name]
    #[arg(long)]
    source: Option<String>,
    /// Time zone of times written without one: UTC, +01:00, or a name like Europe/Paris
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// Project to import into (with --dsn: the DSN's)
    #[arg(long, default_value = "default")]
    project: String,
}

/// Where imported records go.
enum Target {
    /// Straight into the store (offline).
    Store {
        store: Arc<dyn vigie_store::Store>,
        project: vigie_core::ProjectId,
    },
    /// `POST /api/v1/logs` of a running Vigie.
    Remote {
        client: reqwest::Client,
        endpoint: reqwest::Url,
        credential: String,
    },
}

/// Records sent in one request to a remote Vigie (under its default
/// `limits.max_records_per_request`, and a few MiB of JSON).
const REMOTE_BATCH: usize = 5_000;

impl Target {
    async fn open(args: &ImportArgs) -> anyhow::Result<Target> {
        let offline = args.storage.names_a_store();
        let remote = match (&args.dsn, &args.url, &args.token) {
            _ if offline => None,
            (Some(dsn), _, _) => {
                let dsn = vigie_protocol::Dsn::parse(dsn)
                    .map_err(|e| anyhow::anyhow!("--dsn {dsn:?}: {e}"))?;
                Some((dsn.server_url(), dsn.public_key.clone(), None))
            }
            (None, Some(url), Some(token)) => {
                Some((url.clone(), token.clone(), Some(args.project.clone())))
            }
            (None, Some(url), None) => bail!(
                "--url {url}: an admin API token is needed too (--token or VIGIE_TOKEN), or \
                 give the project's DSN instead (--dsn)"
            ),
            (None, None, _) => None,
        };
        let Some((base, credential, project)) = remote else {
            let (_, store) = args.storage.open().await?;
            let project = store
                .list_projects()
                .await?
                .into_iter()
                .find(|p| p.name == args.project || p.id.0.to_string() == args.project)
                .with_context(|| {
                    format!("no project {:?} (see `vigie project list`)", args.project)
                })?;
            return Ok(Target::Store {
                store,
                project: project.id,
            });
        };
        let mut endpoint = reqwest::Url::parse(base.trim_end_matches('/'))
            .with_context(|| format!("{base:?} is not a URL"))?
            .join("/api/v1/logs")?;
        if let Some(project) = project {
            endpoint.query_pairs_mut().append_pair("project", &project);
        }
        Ok(Target::Remote {
            client: client()?,
            endpoint,
            credential,
        })
    }

    /// Stores `records` (and where the files were read to, offline); returns once they are
    /// durable. A remote Vigie that is busy (429, 503) is asked again after its `Retry-After`.
    async fn send(
        &self,
        records: Vec<vigie_core::LogRecord>,
        positions: Vec<vigie_store::logs::FilePosition>,
    ) -> anyhow::Result<()> {
        match self {
            Target::Store { store, project } => {
                vigie_store::logs::append_at(
                    store.as_ref(),
                    *project,
                    Arc::new(records),
                    positions,
                )
                .await?;
                Ok(())
            }
            Target::Remote {
                client,
                endpoint,
                credential,
            } => {
                for chunk in records.chunks(REMOTE_BATCH) {
                    let mut body = Vec::new();
                    for record in chunk {
                        let view = vigie_server::logs::view::RecordView::new(record, None);
                        serde_json::to_writer(&mut body, &view)?;
                        body.push(b'\n');
                    }

                    loop {
                        let response = client
                            .post(endpoint.clone())
                            .bearer_auth(credential)
                            .header("content-type", "application/x-ndjson")
                            .body(body.clone())
                            .send()
                            .await
                            .with_context(|| format!("cannot reach Vigie at {endpoint}"))?;
                        let status = response.status().as_u16();
                        if status == 429 || status == 503 {
                            let wait = response
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(1)
                                .clamp(1, 60);
                            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                            continue;
                        }
                        answer(response).await?;
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    async fn close(self) {
        if let Target::Store { store, .. } = self {
            store.close().await;
        }
    }
}

impl Server {
    /// `GET path?params` with the token; the JSON answer, or an error saying what went wrong.
    pub(super) async fn get(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<Value> {
        Ok(self.fetch(path, params).await?.json().await?)
    }

    /// `POST path` with a JSON body and the token; the JSON answer, or an error saying what
    /// went wrong.
    pub(super) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = client()?
            .post(endpoint(self, path, &[])?)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach Vigie at {}", self.url))?;
        Ok(answer(response).await?.json().await?)
    }

    /// `GET path?params` with the token; the answer's text (for rendered formats).
    pub(super) async fn get_text(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> anyhow::Result<String> {
        Ok(self.fetch(path, params).await?.text().await?)
    }

    /// `GET path?params` with the token; the answer once its status says it succeeded.
    async fn fetch(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let response = client()?
            .get(endpoint(self, path, params)?)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach Vigie at {}", self.url))?;
        answer(response).await
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().build()?)
}

fn endpoint(
    server: &Server,
    path: &str,
    params: &[(&str, String)],
) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(server.url.trim_end_matches('/'))
        .with_context(|| format!("--url {:?} is not a URL", server.url))?
        .join(path)?;
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
        if let Some(p) = &server.project {
            query.append_pair("project", p);
        }
    }
    Ok(url)
}

async fn answer(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["error"]["message"].as_str().unwrap_or("no details");
    bail!("vigie answered {status}: {message}")
}

/// Colours by level, unless NO_COLOR is set or stdout is not a terminal.
pub(super) fn colour() -> bool {
    super::colour_on(std::io::stdout().is_terminal())
}

fn print_record(out: &mut impl Write, r: &Value, json: bool, raw: bool, colour: bool) {
    let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
    if json {
        let _ = writeln!(out, "{r}");
        return;
    }
    if raw {
        let _ = writeln!(out, "{}", text("message"));
        return;
    }
    let level = text("level");
    let code = match level.as_str() {
        "critical" => "1;31",
        "error" => "31",
        "warning" => "33",
        "notice" | "info" => "34",
        _ => "2",
    };
    let time = text("time");
    let clock = time.get(..23).unwrap_or(&time).replace('T', " ");
    let level_text = format!("{:<8}", level.to_uppercase());
    let level_text = if colour {
        format!("\x1b[{code}m{level_text}\x1b[0m")
    } else {
        level_text
    };
    let logger = text("logger");
    let _ = writeln!(
        out,
        "{clock} {level_text} {} {}{}",
        text("source"),
        if logger.is_empty() {
            String::new()
        } else {
            format!("{logger}: ")
        },
        text("message")
    );
}

pub async fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let mut query = args.query.join(" ");
    if let Some(since) = &args.since {
        query.push_str(&format!(" since:{since}"));
    }
    let page = args
        .server
        .get(
            "/api/v1/logs/search",
            &[("q", query), ("limit", args.limit.to_string())],
        )
        .await?;
    let hits = page["hits"].as_array().cloned().unwrap_or_default();
    let colour = colour();
    let mut out = std::io::stdout().lock();
    // Newest were fetched; print oldest first, as a log reads.
    for hit in hits.iter().rev() {
        print_record(&mut out, hit, args.json, args.raw, colour);
    }
    Ok(if hits.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let url = endpoint(
        &args.server,
        "/api/v1/logs/tail",
        &[
            ("q", args.query.join(" ")),
            ("backlog", args.lines.to_string()),
        ],
    )?;
    let accept = if args.follow {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut response = answer(
        client()?
            .get(url)
            .bearer_auth(&args.server.token)
            .header("accept", accept)
            .send()
            .await
            .with_context(|| format!("cannot reach Vigie at {}", args.server.url))?,
    )
    .await?;
    let colour = colour();
    if !args.follow {
        let records: Value = response.json().await?;
        let mut out = std::io::stdout().lock();
        for r in records.as_array().into_iter().flatten() {
            print_record(&mut out, r, args.json, false, colour);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut pending = String::new();
    while let Some(chunk) = response.chunk().await? {
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            let mut name = "message";
            let mut data = String::new();
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = if n.trim() == "lagged" {
                        "lagged"
                    } else {
                        "message"
                    };
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if name == "lagged" {
                eprintln!("vigie: {data}");
                continue;
            }
            if let Ok(Value::Array(records)) = serde_json::from_str::<Value>(&data) {
                let mut out = std::io::stdout().lock();
                for r in &records {
                    print_record(&mut out, r, args.json, false, colour);
                }
                let _ = out.flush();
            }
        }
    }
    eprintln!("vigie: the server closed the stream");
    Ok(ExitCode::SUCCESS)
}

/// `--tz`: UTC, a fixed offset, or an IANA name.
fn zone(name: &str) -> anyhow::Result<Zone> {
    Zone::named(name).map_err(|e| anyhow::anyhow!("--tz {e}"))
}

/// Records appended to the store at once.
const IMPORT_BATCH: usize = 20_000;

pub async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let forced = match args.format.as_str() {
        "auto" => None,
        name => Some(Format::from_name(name).with_context(|| {
            let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("--format {name:?}: use auto or one of {}", names.join(", "))
        })?),
    };
    zone(&args.tz)?;
    let target = Target::open(&args).await?;
    if args.follow {
        let done = follow(&args, forced, &target).await;
        target.close().await;
        return done;
    }
    let received = vigie_core::time::now_ns();
    let (mut read_total, mut imported_total, mut unparsed_total) = (0u64, 0u64, 0u64);
    for path in &args.files {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let sample: Vec<Vec<u8>> = {
            let buf = reader.fill_buf()?;
            buf.split(|b| *b == b'\n')
                .take(50)
                .map(<[u8]>::to_vec)
                .collect()
        };
        let format = match forced {
            Some(f) => f,
            None => {
                let lines: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
                Format::detect(&lines).unwrap_or(Format::Python)
            }
        };
        let source = args.source.clone().unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "import".into())
        });
        eprintln!("{}: {} → source {source:?}", path.display(), format.name());
        let mut importer = Importer::new(format, &source, zone(&args.tz)?, received);
        let bar = super::progress::Bar::new(&source);
        let (mut read, mut done_bytes, mut batch) = (0u64, 0u64, Vec::new());
        let (mut imported, mut unparsed) = (0u64, 0u64);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            let finished = if n == 0 {
                importer.finish()
            } else {
                read += 1;
                done_bytes += n as u64;
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                importer.line(text)
            };
            if let Some(mut record) = finished {
                record.place_in_time();
                unparsed += u64::from(record.flags & vigie_core::LogRecord::UNPARSED != 0);
                batch.push(record);
            }
            if batch.len() >= IMPORT_BATCH || (n == 0 && !batch.is_empty()) {
                imported += batch.len() as u64;
                target.send(std::mem::take(&mut batch), Vec::new()).await?;
                bar.draw(done_bytes, size, &format!("{read} lines"));
            }
            if n == 0 {
                break;
            }
        }
        bar.finish();
        println!(
            "{}: {read} lines read, {imported} records imported, {unparsed} unparsed (kept raw)",
            path.display()
        );
        read_total += read;
        imported_total += imported;
        unparsed_total += unparsed;
    }
    if args.files.len() > 1 {
        println!("total: {read_total} lines read, {imported_total} records imported, {unparsed_total} unparsed (kept raw)");
    }
    target.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `vigie import --follow`: each file (or glob) followed as `[[logs.follow]]` follows it,
/// until Ctrl-C; offline, where each file was read to is stored with its records, so the next
/// run goes on from there.
async fn follow(
    args: &ImportArgs,
    format: Option<Format>,
    target: &Target,
) -> anyhow::Result<ExitCode> {
    use vigie_server::logs::follow::{self, FollowSpec, Follower};
    let (host, known, project) = match target {
        Target::Store { store, project } => {
            let host = vigie_server::state::host_name();
            let known = store.followed_files(&host).await?;
            (host, known, *project)
        }
        // A remote Vigie keeps no positions for a shell: each run starts the files afresh.
        Target::Remote { .. } => (
            vigie_server::state::host_name(),
            Vec::new(),
            vigie_core::ProjectId(0),
        ),
    };
    let imported = std::sync::atomic::AtomicU64::new(0);
    let followers = args.files.iter().map(|pattern| {
        let pattern = pattern.to_string_lossy().into_owned();
        let absolute = if std::path::Path::new(&pattern).is_absolute() {
            pattern.clone()
        } else {
            std::env::current_dir()
                .map(|d| d.join(&pattern).to_string_lossy().into_owned())
                .unwrap_or(pattern.clone())
        };
        eprintln!("following {absolute} (Ctrl-C stops)");
        let spec = FollowSpec {
            pattern: absolute,
            format,
            source: args.source.clone(),
            project,
            zone: zone(&args.tz).unwrap_or_else(|_| Zone::utc()),
            from_end: args.from_end,
        };
        let imported = &imported;
        follow::run(
            Follower::new(spec, &host, known.clone()),
            move |_, records, positions| async move {
                let count = records.len() as u64;
                target
                    .send(records, positions)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                imported.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            },
        )
    });
    let all = futures_util::future::join_all(followers);
    tokio::select! {
        _ = all => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!(
        "{} records imported",
        imported.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(ExitCode::SUCCESS)
}
