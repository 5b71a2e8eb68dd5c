//! OTLP requests posted as the OpenTelemetry exporters post them, for the `traces` and
//! `metrics` scenarios: gzipped protobuf from several writers, each request sent until it is
//! taken (429 and 503 retried after the server's `Retry-After`, else after an exponential
//! backoff — the SDKs' 1 s, 2 s, 4 s …, here from 100 ms, at most 5 s), and no item refused.

use super::client;
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What posting took.
pub struct Posted {
    /// Each request's time until it was taken, in milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
    /// Answers 429 or 503 that were retried.
    pub retries: usize,
}

/// Posts `bodies` to `url` (with the project key when given) from `concurrency` writers;
/// `refused` reads how many items an answer refused (its `partial_success`): any is an error.
pub async fn post_all(
    url: &str,
    key: Option<&str>,
    bodies: Vec<Vec<u8>>,
    concurrency: usize,
    refused: fn(&[u8]) -> i64,
) -> Result<Posted> {
    let http = client()?;
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..concurrency {
        let (http, bodies, next, retries) =
            (http.clone(), bodies.clone(), next.clone(), retries.clone());
        let (url, key) = (url.to_string(), key.map(str::to_string));
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let mut backoff = 0.1f64;
                loop {
                    let mut request = http.post(&url);
                    if let Some(key) = &key {
                        request = request.bearer_auth(key);
                    }
                    let answer = request
                        .header("content-type", "application/x-protobuf")
                        .header("content-encoding", "gzip")
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = answer.status();
                    if status.as_u16() == 429 || status.as_u16() == 503 {
                        let wait = answer
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse::<f64>().ok())
                            .unwrap_or(backoff);
                        backoff = (backoff * 2.0).min(5.0);
                        retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs_f64(wait.min(5.0))).await;
                        continue;
                    }
                    let bytes = answer.bytes().await?;
                    let refused = refused(&bytes);
                    if !status.is_success() || refused != 0 {
                        bail!("request {i}: {status} ({refused} items refused)");
                    }
                    break;
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies_ms = Vec::new();
    for w in writers {
        latencies_ms.extend(w.await??);
    }
    latencies_ms.sort_by(f64::total_cmp);
    Ok(Posted {
        latencies_ms,
        retries: retries.load(Ordering::Relaxed),
    })
}
