//! The Celery consumer: one reader per broker, one writer for all of them.
//!
//! ```text
//! reader (per broker): connect ─► PSUBSCRIBE /<db>.celeryev/* celery-task-meta-*
//!   ─► each message decoded (vigie_protocol::celery) into CeleryNews ─► the queue
//!   connection lost ─► retried after 1 s, 2 s, 4 s … 30 s; the broker's state on the System page
//! writer: the first waiting news plus all queued behind it (up to BATCH)
//!   ─► Store::apply_celery (one transaction: tasks, events, workers, and each task's Job)
//!   ─► the changed Jobs and the Celery pages told through the hub
//! ```
//!
//! A message in another serializer (pickle, msgpack) or that is not a Celery message is
//! counted in `/metrics` and skipped, with one log line per kind; nothing stops the reader. When
//! storage falls behind, the queue is full and messages are dropped (counted), never piling up
//! in memory: Redis pub/sub does not wait for slow readers either.

use super::redis::{Connection, RedisUrl};
use crate::hub::JobNews;
use crate::state::AppState;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::celery::{decode_message, decode_task_meta, CeleryError};
use vigie_store::CeleryNews;

/// News waiting for the writer; beyond it, messages are dropped.
const QUEUE: usize = 50_000;
/// Most news stored in one transaction.
const BATCH: usize = 5_000;
/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How each broker is doing, for the System page.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BrokerStatus {
    pub url: String,
    pub connected: bool,
    pub since: Timestamp,
    pub last_error: Option<String>,
}

/// Every configured broker's status.
#[derive(Clone, Default)]
pub struct Brokers(Arc<Mutex<Vec<BrokerStatus>>>);

impl Brokers {
    pub fn list(&self) -> Vec<BrokerStatus> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, url: &RedisUrl, connected: bool, error: Option<String>) {
        let url = url.describe();
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let status = BrokerStatus {
            url: url.clone(),
            connected,
            since: Timestamp::now(),
            last_error: error,
        };
        match list.iter_mut().find(|b| b.url == url) {
            Some(b) if b.connected == connected => b.last_error = status.last_error,
            Some(b) => *b = status,
            None => list.push(status),
        }
    }
}

/// Starts a reader per configured broker and the writer; none when no broker is configured.
/// The project is named by `celery.project` and must exist.
pub async fn start(state: &AppState) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let urls = state
        .config
        .celery
        .broker_urls()
        .map_err(|e| e.to_string())?;
    if urls.is_empty() {
        return Ok(Vec::new());
    }
    let name = &state.config.celery.project;
    let project = state
        .store
        .list_projects()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|p| &p.name == name)
        .ok_or_else(|| format!("celery.project: no project named {name:?}"))?;
    let (queue, news) = mpsc::channel(QUEUE);
    let mut tasks = vec![tokio::spawn(writer(state.clone(), project.id, news))];
    for url in urls {
        tasks.push(tokio::spawn(reader(state.clone(), url, queue.clone())));
    }
    Ok(tasks)
}

async fn reader(state: AppState, url: RedisUrl, queue: mpsc::Sender<CeleryNews>) {
    let mut backoff = Duration::from_secs(1);
    let mut unreadable: HashSet<String> = HashSet::new();
    loop {
        let outcome = tokio::select! {
            _ = state.hub.shutting_down() => return,
            outcome = listen(&state, &url, &queue, &mut backoff, &mut unreadable) => outcome,
        };
        let error = match outcome {
            Ok(()) => return,
            Err(err) => err.to_string(),
        };
        tracing::warn!(broker = %url.describe(), %error, retry_in = ?backoff, "celery broker unreachable");
        state.brokers.set(&url, false, Some(error));
        state
            .metrics
            .celery
            .reconnects
            .fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Reads one connection until it fails; `Ok` when the queue closed (shutdown).
async fn listen(
    state: &AppState,
    url: &RedisUrl,
    queue: &mpsc::Sender<CeleryNews>,
    backoff: &mut Duration,
    unreadable: &mut HashSet<String>,
) -> std::io::Result<()> {
    let mut connection = Connection::open(url).await?;
    connection
        .psubscribe(&[
            format!("/{}.celeryev/*", url.db),
            "celery-task-meta-*".to_string(),
        ])
        .await?;
    tracing::info!(broker = %url.describe(), "reading celery events");
    state.brokers.set(url, true, None);
    *backoff = Duration::from_secs(1);
    let counters = &state.metrics.celery;
    loop {
        let message = connection.next_message().await?;
        let news = if message.channel.starts_with("celery-task-meta-") {
            decode_task_meta(&message.payload).map(|meta| {
                vec![CeleryNews::Backend {
                    uuid: meta.task_id,
                    status: meta.status,
                    progress: meta.progress,
                    at: Timestamp::now(),
                }]
            })
        } else {
            decode_message(&message.payload).map(|events| {
                counters
                    .events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                events.into_iter().filter_map(news_of).collect()
            })
        };
        match news {
            Ok(news) => {
                for item in news {
                    match queue.try_send(item) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
                    }
                }
            }
            Err(err) => {
                counters.undecodable.fetch_add(1, Ordering::Relaxed);
                let kind = match &err {
                    CeleryError::Undecodable { content_type } => content_type.clone(),
                    other => format!("{:?}", std::mem::discriminant(other)),
                };
                if unreadable.insert(kind) {
                    tracing::warn!(channel = %message.channel, error = %err, "celery message skipped (further ones like it are only counted)");
                }
            }
        }
    }
}

/// What an event means for storage: task and worker events; others (custom application
/// events without a task id) are not kept.
fn news_of(event: vigie_protocol::celery::Event) -> Option<CeleryNews> {
    let at = Timestamp((event.timestamp * 1000.0) as i64);
    if event.is_task() {
        Some(CeleryNews::Task {
            uuid: event.uuid()?.to_string(),
            kind: event.kind,
            hostname: event.hostname,
            at,
            fields: event.fields,
        })
    } else if event.is_worker() {
        Some(CeleryNews::Worker {
            hostname: event.hostname,
            kind: event.kind,
            at,
            fields: event.fields,
        })
    } else {
        None
    }
}

async fn writer(state: AppState, project: ProjectId, mut news: mpsc::Receiver<CeleryNews>) {
    while let Some(first) = news.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match news.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        match state.store.apply_celery(project, batch).await {
            Ok(applied) => {
                state.metrics.celery.stored.fetch_add(n, Ordering::Relaxed);
                for change in applied.jobs {
                    state
                        .hub
                        .publish_job(JobNews::new(change.job, vec![], change.messages));
                }
                state.hub.publish(crate::hub::Change::Celery(project));
            }
            Err(err) => tracing::error!(%err, events = n, "storing celery events failed"),
        }
    }
}
