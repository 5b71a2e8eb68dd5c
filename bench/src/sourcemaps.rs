//! Source maps: what resolving a minified stack trace costs, in the function alone and
//! through the whole server, beside the same events on a project without maps.
//!
//! ```text
//!   a build: --modules files of --lines lines each (sourcesContent included), minified to
//!            one line, its map (about 5 MB at the defaults) ─ an artifact bundle
//!   in process: SourceMapFile::parse (cold), then symbolicate a 50-frame event (warm), runs
//!   server:  the bundle uploaded as sentry-cli does (assemble, chunks, assemble)
//!            then --events events of 50 frames, one at a time: to the project with the
//!            maps, and the same events to a project without any, alternating
//!            ─▶ request latency p50 / p99 each way, the first (cold) request, RSS
//! ```

use crate::{client, median, percentile, Server};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use vigie_protocol::sentry::symbolicate::{symbolicate, SourceMapFile, SourceMaps};

const DEBUG_ID: &str = "c0ffee00-1234-4abc-8def-0123456789ab";
const FRAMES: usize = 50;

#[derive(Args)]
pub struct Options {
    /// Source files in the build
    #[arg(long, default_value_t = 250)]
    modules: usize,
    /// Lines (and functions) per source file
    #[arg(long, default_value_t = 200)]
    lines: usize,
    /// Events sent to each project
    #[arg(long, default_value_t = 200)]
    events: usize,
}

/// The minified file, its map, and where each function's body starts (column) with the
/// function's minified name.
struct Build {
    minified: String,
    map: Vec<u8>,
    positions: Vec<(u32, String)>,
}

fn build(opts: &Options) -> Result<Build> {
    let mut builder = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
    let mut minified = String::new();
    let mut positions = Vec::new();
    for m in 0..opts.modules {
        let path = format!("webpack://shop/./src/module{m}.js");
        let src = builder.add_source(&path);
        let mut source = String::new();
        for l in 0..opts.lines {
            source.push_str(&format!(
                "export function handleOrder{m}x{l}(order) {{ return order.total * {l} + checkTax(order, {m}); }}\n"
            ));
        }
        builder.set_source_contents(src, Some(&source));
        for l in 0..opts.lines {
            let name = format!("handleOrder{m}x{l}");
            let at = minified.len() as u32;
            minified.push_str(&format!("function a{m}_{l}(o){{return o.t*{l}+c(o,{m})}}"));
            builder.add(0, at, l as u32, 0, Some(&path), Some("function"), false);
            builder.add(0, at + 9, l as u32, 16, Some(&path), Some(&name), false);
            builder.add(0, at + 16, l as u32, 44, Some(&path), None, false);
            positions.push((at + 16, format!("a{m}_{l}")));
        }
    }
    minified.push_str(&format!("\n//# debugId={DEBUG_ID}\n"));
    let mut map = Vec::new();
    builder.into_sourcemap().to_writer(&mut map)?;
    Ok(Build {
        minified,
        map,
        positions,
    })
}

fn event(build: &Build, n: usize, with_image: bool) -> Value {
    let frames: Vec<Value> = (0..FRAMES)
        .map(|f| {
            let (at, name) = &build.positions[(n * 7919 + f * 104_729) % build.positions.len()];
            json!({"filename": "https://shop.example/assets/app.min.js", "lineno": 1,
                   "colno": at + 1, "function": name, "in_app": true})
        })
        .collect();
    let mut event = json!({
        "event_id": format!("{n:032x}"),
        "platform": "javascript",
        "exception": {"values": [{"type": "Error", "value": format!("order {n} failed"),
            "stacktrace": {"frames": frames}}]},
    });
    if with_image {
        event["debug_meta"] = json!({"images": [{"type": "sourcemap",
            "code_file": "https://shop.example/assets/app.min.js", "debug_id": DEBUG_ID}]});
    }
    event
}

struct OneMap(SourceMapFile);

impl SourceMaps for OneMap {
    fn by_debug_id(&self, _: &str) -> Option<&SourceMapFile> {
        Some(&self.0)
    }
    fn by_url(&self, _: &str) -> Option<&SourceMapFile> {
        None
    }
}

fn bundle(build: &Build) -> Result<Vec<u8>> {
    let headers = json!({"debug-id": DEBUG_ID, "sourcemap": "app.min.js.map"});
    let manifest = json!({"files": {
        "files/_/_/assets/app.min.js": {"type": "minified_source", "url": "~/assets/app.min.js", "headers": headers},
        "files/_/_/assets/app.min.js.map": {"type": "source_map", "url": "~/assets/app.min.js.map", "headers": {"debug-id": DEBUG_ID}},
    }});
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in [
        ("manifest.json", manifest.to_string().into_bytes()),
        (
            "files/_/_/assets/app.min.js",
            build.minified.clone().into_bytes(),
        ),
        ("files/_/_/assets/app.min.js.map", build.map.clone()),
    ] {
        zip.start_file(name, options)?;
        zip.write_all(&data)?;
    }
    Ok(zip.finish()?.into_inner())
}

fn sha1(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// Uploads `bundle` as sentry-cli does: assemble, the chunks, assemble until ok.
async fn upload(http: &reqwest::Client, base: &str, token: &str, bundle: &[u8]) -> Result<()> {
    let chunks: Vec<&[u8]> = bundle.chunks(8 << 20).collect();
    let request = json!({"checksum": sha1(bundle),
        "chunks": chunks.iter().map(|c| sha1(c)).collect::<Vec<_>>(), "projects": ["default"]});
    let assemble = format!("{base}/api/0/organizations/bench/artifactbundle/assemble/");
    let first: Value = http
        .post(&assemble)
        .bearer_auth(token)
        .json(&request)
        .send()
        .await?
        .json()
        .await?;
    if first["state"] == "not_found" {
        let boundary = "vigie-bench-boundary";
        let mut body = Vec::new();
        for chunk in &chunks {
            write!(body, "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\r\n", sha1(chunk))?;
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        write!(body, "--{boundary}--\r\n")?;
        let sent = http
            .post(format!("{base}/api/0/organizations/bench/chunk-upload/"))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await?;
        if !sent.status().is_success() {
            bail!("chunk upload: {} {}", sent.status(), sent.text().await?);
        }
    }
    let done: Value = http
        .post(&assemble)
        .bearer_auth(token)
        .json(&request)
        .send()
        .await?
        .json()
        .await?;
    if done["state"] != "ok" {
        bail!("assemble: {done}");
    }
    Ok(())
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    project: i64,
    event: &Value,
) -> Result<f64> {
    let body = format!("{{}}\n{{\"type\":\"event\"}}\n{event}\n");
    let started = Instant::now();
    let answer = http
        .post(format!("{base}/api/{project}/envelope/"))
        .header(
            "x-sentry-auth",
            format!("Sentry sentry_version=7, sentry_key={key}"),
        )
        .body(body)
        .send()
        .await?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !answer.status().is_success() {
        bail!("event: {} {}", answer.status(), answer.text().await?);
    }
    Ok(ms)
}

pub async fn run(binary: &Path, opts: Options) -> Result<()> {
    let build = build(&opts)?;
    println!(
        "build: {} modules × {} lines: minified {:.1} MB, map {:.1} MB, {} functions",
        opts.modules,
        opts.lines,
        build.minified.len() as f64 / 1e6,
        build.map.len() as f64 / 1e6,
        build.positions.len()
    );

    // In process: parse once, then resolve 50 frames again and again.
    let started = Instant::now();
    let file = SourceMapFile::parse(
        &build.map,
        Some(build.minified.as_bytes()),
        "~/app.min.js.map",
    )
    .map_err(anyhow::Error::msg)?;
    let parse_ms = started.elapsed().as_secs_f64() * 1e3;
    let maps = OneMap(file);
    let mut warm = Vec::new();
    for n in 0..opts.events.max(50) {
        let mut e = event(&build, n, true);
        let started = Instant::now();
        let outcome = symbolicate(&mut e, &maps);
        warm.push(started.elapsed().as_secs_f64() * 1e3);
        if outcome.resolved != FRAMES {
            bail!("{} of {FRAMES} frames resolved", outcome.resolved);
        }
        let named = e["exception"]["values"][0]["stacktrace"]["frames"]
            .as_array()
            .map_or(0, |f| {
                f.iter()
                    .filter(|f| {
                        f["function"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("handleOrder"))
                    })
                    .count()
            });
        if named != FRAMES {
            bail!("{named} of {FRAMES} frames got their original function name");
        }
    }
    warm.sort_by(f64::total_cmp);
    println!(
        "in process: parse {parse_ms:.1} ms (cold); symbolicate {FRAMES} frames p50 {:.3} ms, p99 {:.3} ms (warm, {} runs)",
        percentile(&warm, 0.5),
        percentile(&warm, 0.99),
        warm.len()
    );

    // Through the server, beside a project without maps.
    let (server, _) = Server::start(binary)?;
    let http = client()?;
    let token = crate::alerts::api(binary, &server)?.key.clone();
    let key = server.key.clone().context("no DSN in the banner")?;
    let other: Value = http
        .post(format!("{}/api/v1/projects", server.url))
        .bearer_auth(&token)
        .json(&json!({"name": "no-maps"}))
        .send()
        .await?
        .json()
        .await?;
    let other_id = other["id"].as_i64().context("no project id")?;
    let other_key = other["public_key"]
        .as_str()
        .context("no project key")?
        .to_string();
    let started = Instant::now();
    upload(&http, &server.url, &token, &bundle(&build)?).await?;
    let upload_ms = started.elapsed().as_secs_f64() * 1e3;
    let cold = send(&http, &server.url, &key, 1, &event(&build, 1_000_000, true)).await?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for n in 0..opts.events {
        with.push(send(&http, &server.url, &key, 1, &event(&build, n, true)).await?);
        without.push(
            send(
                &http,
                &server.url,
                &other_key,
                other_id,
                &event(&build, n, true),
            )
            .await?,
        );
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    let check: Value = http
        .get(format!("{}/api/v1/events/{:032x}?project=1", server.url, 5))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let resolved = check["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .map_or(0, |f| {
            f.iter()
                .filter(|f| f["data"]["symbolicated"] == true)
                .count()
        });
    if resolved != FRAMES {
        bail!("the server resolved {resolved} of {FRAMES} frames: {check}");
    }
    println!("server: upload {upload_ms:.0} ms; first event (parse) {cold:.1} ms");
    println!(
        "server: event of {FRAMES} frames, p50 (p99): with maps {:.2} ({:.2}) ms, without {:.2} ({:.2}) ms, {} each",
        median(&mut with.clone()),
        percentile(&with, 0.99),
        median(&mut without.clone()),
        percentile(&without, 0.99),
        opts.events
    );
    println!("server: RSS {:.1} MiB", server.rss_kib()? as f64 / 1024.0);
    Ok(())
}
