//! The Celery consumer: one reader per broker, one writer for all of them.
//!
//! ```text
//! reader (per broker): connect ─► Redis: PSUBSCRIBE <prefix>celeryev/* celery-task-meta-*
//!                                 RabbitMQ: a queue of Vigie's own bound to exchange celeryev
//!   ─► each message decoded (vigie_protocol::celery) into CeleryNews ─► the queue
//!   connection lost ─► retried after 1 s, 2 s, 4 s … 30 s; the broker's state on the System page
//! writer: the first waiting news plus all queued behind it (up to BATCH)
//!   ─► Store::apply_celery (one transaction: tasks, events, workers, and each task's Job)
//!   ─► the changed Jobs and the Celery pages told through the hub; metrics
//!   ─► failed tasks to `issues::hold`, which makes issues of them unless the app's SDK did
//! enabler (with [celery] enable_events): `enable_events` broadcast to the workers every 10 s
//! ```
//!
//! Each task gets only what it uses ([`start`] builds it from the server's state): a reader
//! the hub, the broker board, the counters and its end of the queue; the writer the store,
//! the hub, the counters and, when failed tasks become issues, the sender to the failures
//! holder (`issues::hold`); an enabler
//! the hub.
//!
//! At shutdown ([`Consumer::stop`]) the readers stop first, then the writer stores what they
//! had queued before the store closes.
//!
//! A message in another serializer (pickle, msgpack) or that is not a Celery message is
//! counted in `/metrics` and skipped, with one log line per kind; nothing stops the reader. When
//! storage falls behind, the queue is full and messages are dropped (counted), never piling up
//! in memory: Redis pub/sub does not wait for slow readers either.

use super::broker::{Broker, RedisBroker};
use super::{amqp, redis};
use crate::hub::{Change, Hub, JobNews, OutcomeKind, TaskOutcome};
use crate::metrics::{Brokers, Metrics};
use crate::sentry::ErrorIngest;
use crate::state::AppState;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use vigie_core::{ProjectId, Timestamp};
use vigie_protocol::celery::control::{Command, PIDBOX_EXCHANGE};
use vigie_protocol::celery::{self as wire, CeleryError, Event, TaskMeta};
use vigie_store::{CeleryNews, Store};

/// News waiting for the writer; beyond it, messages are dropped (and counted). Two seconds of
/// the fastest stream Vigie stores, for bursts (a bulk enqueue of 10,000 tasks is 40,000
/// events); events are held without their redundant fields, under 1 KiB each.
const QUEUE: usize = 50_000;
/// Most news stored in one transaction.
const BATCH: usize = 5_000;
/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often `enable_events` is broadcast when asked (Flower: every 5 s).
const ENABLE_EVENTS_EVERY: Duration = Duration::from_secs(10);

/// The running consumer: its readers (and enablers), and the one writer they feed.
#[derive(Default)]
pub struct Consumer {
    readers: Vec<tokio::task::JoinHandle<()>>,
    writer: Option<tokio::task::JoinHandle<()>>,
    /// Records the failures the writer hands it once their SDK window passed.
    failures: Option<tokio::task::JoinHandle<()>>,
}

impl Consumer {
    /// Stops reading and stores what was read: the readers end (dropping their ends of the
    /// queue), then the writer stores everything still queued and ends by itself.
    pub async fn stop(self) {
        for reader in &self.readers {
            reader.abort();
        }
        for reader in self.readers {
            let _ = reader.await;
        }
        if let Some(writer) = self.writer {
            let _ = writer.await;
        }
        // The writer held the last sender: what is held is recorded now.
        if let Some(failures) = self.failures {
            let _ = failures.await;
        }
    }
}

/// Starts a reader per configured broker and the writer (and the enablers when asked); none
/// when no broker is configured. The project is named by `celery.project` and must exist.
pub async fn start(state: &AppState, errors: &ErrorIngest) -> Result<Consumer, String> {
    let brokers = state.config.celery.brokers().map_err(|e| e.to_string())?;
    if brokers.is_empty() {
        return Ok(Consumer::default());
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
    let holding = state.config.celery.failures_as_issues.then(|| {
        super::issues::hold(
            state.store.clone(),
            errors.clone(),
            state.metrics.clone(),
            project.id,
        )
    });
    let (failures, failures_task) = match holding {
        Some(h) => (Some(h.failures), Some(h.task)),
        None => (None, None),
    };
    let writing = Writing {
        store: state.store.clone(),
        hub: state.hub.clone(),
        metrics: state.metrics.clone(),
        failures,
        project: project.id,
    };
    let writer = crate::tasks::spawn("celery writer", writer(writing, news));
    let mut readers = Vec::new();
    for broker in brokers {
        if state.config.celery.enable_events {
            readers.push(crate::tasks::spawn(
                "celery enabler",
                enabler(state.hub.clone(), broker.clone()),
            ));
        }
        let reading = Reading {
            hub: state.hub.clone(),
            brokers: state.brokers.clone(),
            metrics: state.metrics.clone(),
            queue: queue.clone(),
            unreadable: HashSet::new(),
        };
        readers.push(crate::tasks::spawn(
            "celery reader",
            reader(reading, broker),
        ));
    }
    Ok(Consumer {
        readers,
        writer: Some(writer),
        failures: failures_task,
    })
}

async fn reader(mut reading: Reading, broker: Broker) {
    let mut backoff = Duration::from_secs(1);
    let hub = reading.hub.clone();
    loop {
        let outcome = tokio::select! {
            _ = hub.shutting_down() => return,
            outcome = listen(&broker, &mut reading, &mut backoff) => outcome,
        };
        let error = match outcome {
            Ok(()) => return,
            Err(err) => err.to_string(),
        };
        tracing::warn!(broker = %broker.describe(), %error, retry_in = ?backoff, "celery broker unreachable");
        reading.brokers.set(broker.describe(), false, Some(error));
        reading
            .metrics
            .celery
            .reconnects
            .fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = hub.shutting_down() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Reads one connection until it fails; `Ok` when the queue closed (shutdown).
async fn listen(
    broker: &Broker,
    reading: &mut Reading,
    backoff: &mut Duration,
) -> std::io::Result<()> {
    match broker {
        Broker::Redis(redis) => {
            let mut connection = redis::Connection::open(&redis.url).await?;
            // Pub/sub ignores the database: a result-backend state is this app's only when
            // its key is in this database (the backend sets it before publishing, in one
            // MULTI). Asked on a second connection: the first is subscribed.
            let mut keys = redis::Connection::open(&redis.backend).await?;
            connection
                .psubscribe(&[redis.events_pattern(), redis.meta_pattern()])
                .await?;
            reading.connected(broker, backoff);
            loop {
                let message = connection.next_message().await?;
                let decoded = if message.channel.contains("celery-task-meta-") {
                    let exists = keys
                        .command(&["EXISTS".into(), message.channel.clone()])
                        .await?;
                    if exists == redis::Reply::Integer(0) {
                        reading
                            .metrics
                            .celery
                            .foreign
                            .fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Decoded::Meta(wire::decode_task_meta(&message.payload))
                } else {
                    Decoded::Events(wire::decode_message(&message.payload))
                };
                if !reading.take(&message.channel, decoded) {
                    return Ok(());
                }
            }
        }
        Broker::Amqp(url) => {
            let mut connection = amqp::Connection::open(url).await?;
            connection.consume_events().await?;
            reading.connected(broker, backoff);
            loop {
                let message = connection.next_delivery().await?;
                let events = wire::decode_body(&message.content_type, &message.body);
                if !reading.take(&message.routing_key, Decoded::Events(events)) {
                    return Ok(());
                }
            }
        }
    }
}

/// A broker message, decoded.
enum Decoded {
    Events(Result<Vec<Event>, CeleryError>),
    Meta(Result<TaskMeta, CeleryError>),
}

/// What a reader uses and keeps across its connections: the hub (to stop at shutdown), the
/// broker board, the counters, and its end of the writer's queue.
struct Reading {
    hub: Hub,
    brokers: Brokers,
    metrics: Arc<Metrics>,
    queue: mpsc::Sender<CeleryNews>,
    /// The kinds of unreadable messages already logged once.
    unreadable: HashSet<String>,
}

impl Reading {
    fn connected(&self, broker: &Broker, backoff: &mut Duration) {
        tracing::info!(broker = %broker.describe(), "reading celery events");
        self.brokers.set(broker.describe(), true, None);
        *backoff = Duration::from_secs(1);
    }

    /// Queues what a message says; `false` when the queue is closed (shutdown).
    fn take(&mut self, channel: &str, message: Decoded) -> bool {
        let counters = &self.metrics.celery;
        let news = match message {
            Decoded::Meta(meta) => meta.map(|meta| {
                vec![CeleryNews::Backend {
                    uuid: meta.task_id,
                    status: meta.status,
                    progress: meta.progress,
                    description: meta.description,
                    at: Timestamp::now(),
                }]
            }),
            Decoded::Events(events) => events.map(|events| {
                counters
                    .events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                events.into_iter().filter_map(news_of).collect()
            }),
        };
        match news {
            Ok(news) => {
                for item in news {
                    match self.queue.try_send(item) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return false,
                    }
                }
            }
            Err(err) => {
                counters.undecodable.fetch_add(1, Ordering::Relaxed);
                let kind = match &err {
                    CeleryError::Undecodable { content_type } => content_type.clone(),
                    other => format!("{:?}", std::mem::discriminant(other)),
                };
                if self.unreadable.insert(kind) {
                    tracing::warn!(%channel, error = %err, "celery message skipped (further ones like it are only counted)");
                }
            }
        }
        true
    }
}

/// Broadcasts `enable_events` to the broker's workers every [`ENABLE_EVENTS_EVERY`], on a
/// connection of its own; a failure is retried at the next tick (the reader reports the
/// broker's health).
async fn enabler(hub: Hub, broker: Broker) {
    let mut tick = tokio::time::interval(ENABLE_EVENTS_EVERY);
    let mut redis_connection: Option<redis::Connection> = None;
    let mut amqp_connection: Option<amqp::Connection> = None;
    loop {
        tokio::select! {
            _ = hub.shutting_down() => return,
            _ = tick.tick() => {}
        }
        let now = Timestamp::now().millis() as f64 / 1000.0;
        let sent = match &broker {
            Broker::Redis(redis) => broadcast_redis(redis, &mut redis_connection, now).await,
            Broker::Amqp(url) => {
                if amqp_connection.is_none() {
                    amqp_connection = amqp::Connection::open(url).await.ok();
                }
                match amqp_connection.as_mut() {
                    Some(c) => {
                        let body = enable_events().body(None).to_string();
                        let headers = [
                            ("clock", amqp::Field::Int(1)),
                            ("expires", amqp::Field::Double(now + 10.0)),
                        ];
                        c.publish(PIDBOX_EXCHANGE, "", body.as_bytes(), &headers)
                            .await
                    }
                    None => Err(std::io::Error::other("not connected")),
                }
            }
        };
        match sent {
            Ok(()) => {}
            // RabbitMQ before any worker started: no `celery.pidbox` exchange yet. The
            // connection stays good (only the broadcast channel was closed).
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(broker = %broker.describe(), %err, "no workers to enable events on yet");
            }
            Err(err) => {
                tracing::debug!(broker = %broker.describe(), %err, "enable_events not sent");
                (redis_connection, amqp_connection) = (None, None);
            }
        }
    }
}

async fn broadcast_redis(
    broker: &RedisBroker,
    connection: &mut Option<redis::Connection>,
    now: f64,
) -> std::io::Result<()> {
    if connection.is_none() {
        *connection = Some(redis::Connection::open(&broker.url).await?);
    }
    let c = connection.as_mut().expect("just opened");
    let message = enable_events().redis_envelope(None, now, 10.0);
    c.command(&[
        "PUBLISH".into(),
        broker.pidbox_channel(),
        String::from_utf8_lossy(&message).into_owned(),
    ])
    .await
    .map(drop)
}

fn enable_events() -> Command {
    Command::new("enable_events", serde_json::json!({}))
}

/// The event's time, or `now` when the worker's is implausible (see
/// `vigie_core::time::plausible_ns`: a clock gone wrong, `1e300`); the time sent is then kept
/// in the event's `original_timestamp` field.
fn event_time(event: &mut vigie_protocol::celery::Event, now: Timestamp) -> Timestamp {
    // Float to integer casts saturate (and NaN becomes 0): no wrapping here.
    let at_ns = (event.timestamp * 1e9) as i64;
    if vigie_core::time::plausible_ns(at_ns, now.millis().saturating_mul(1_000_000)) {
        return Timestamp(at_ns.div_euclid(1_000_000));
    }
    let sent = event
        .fields
        .get("timestamp")
        .map(|v| v.to_string())
        .unwrap_or_else(|| "none".into());
    event
        .fields
        .insert("original_timestamp".into(), serde_json::Value::String(sent));
    now
}

/// What an event means for storage: task and worker events; others (custom application
/// events without a task id) are not kept.
fn news_of(mut event: vigie_protocol::celery::Event) -> Option<CeleryNews> {
    let at = event_time(&mut event, Timestamp::now());
    if event.is_task() {
        let uuid = event.uuid()?.to_string();
        vigie_core::celery::cap_fields(&mut event.fields);
        vigie_core::celery::scrub_fields(&mut event.fields);
        // Less to hold while the event waits for the writer.
        event
            .fields
            .retain(|k, _| !vigie_core::celery::REDUNDANT_FIELDS.contains(&k.as_str()));
        Some(CeleryNews::Task {
            uuid,
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

/// What the writer uses: the store, the hub, the counters, and the error pipeline when failed
/// tasks become issues (`[celery] failures_as_issues`).
struct Writing {
    store: Arc<dyn Store>,
    hub: Hub,
    metrics: Arc<Metrics>,
    /// Failed tasks go here to become issues (`[celery] failures_as_issues`).
    failures: Option<mpsc::UnboundedSender<vigie_core::celery::Task>>,
    project: ProjectId,
}

async fn writer(state: Writing, mut news: mpsc::Receiver<CeleryNews>) {
    let project = state.project;
    let counters = &state.metrics.celery;
    while let Some(batch) = crate::batch::gather(&mut news, BATCH, |_| 1).await {
        let n = batch.len() as u64;
        let (mut newest, mut outcomes, mut kinds) = (None, Vec::new(), HashMap::new());
        for item in &batch {
            match item {
                CeleryNews::Task {
                    kind,
                    at,
                    uuid,
                    fields,
                    ..
                } => {
                    *kinds.entry(kind.as_str()).or_insert(0u64) += 1;
                    newest = newest.max(Some(*at));
                    if let Some(outcome) = OutcomeKind::of_event(kind, fields) {
                        outcomes.push(TaskOutcome {
                            uuid: uuid.clone(),
                            name: None,
                            at: *at,
                            kind: outcome,
                        });
                    }
                }
                CeleryNews::Worker { kind, at, .. } => {
                    *kinds.entry(kind.as_str()).or_insert(0u64) += 1;
                    newest = newest.max(Some(*at));
                }
                CeleryNews::Backend { .. } => {}
            }
        }
        let kinds: Vec<(String, u64)> =
            kinds.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        match state.store.apply_celery(project, batch).await {
            Ok(applied) => {
                counters.stored.fetch_add(n, Ordering::Relaxed);
                counters.saw_events(kinds);
                if let Some(at) = newest {
                    counters
                        .lag_ms
                        .store(Timestamp::now().millis() - at.millis(), Ordering::Relaxed);
                }
                for change in applied.jobs {
                    state
                        .hub
                        .publish_job(JobNews::new(change.job, vec![], change.messages));
                }
                let names: HashMap<&str, &str> = applied
                    .tasks
                    .iter()
                    .filter_map(|t| Some((t.uuid.as_str(), t.name.as_deref()?)))
                    .collect();
                for outcome in &mut outcomes {
                    outcome.name = names.get(outcome.uuid.as_str()).map(|n| n.to_string());
                    if let OutcomeKind::Succeeded { runtime: Some(r) }
                    | OutcomeKind::Failed { runtime: Some(r) } = outcome.kind
                    {
                        counters.saw_runtime(outcome.name.as_deref().unwrap_or("unknown"), r);
                    }
                }
                if let Some(failures) = &state.failures {
                    let failed: HashSet<&str> = outcomes
                        .iter()
                        .filter(|o| matches!(o.kind, OutcomeKind::Failed { .. }))
                        .map(|o| o.uuid.as_str())
                        .collect();
                    for task in applied
                        .tasks
                        .iter()
                        .filter(|t| failed.contains(t.uuid.as_str()))
                    {
                        // Only fails once the holder ended, which is after this writer.
                        let _ = failures.send(task.clone());
                    }
                }
                state
                    .hub
                    .publish(Change::Celery(project, Arc::new(outcomes)));
            }
            Err(err) => {
                // The broker does not resend events: these are lost, so they are counted,
                // apart from those a full queue dropped (the cause differs: see the log).
                counters.store_failed.fetch_add(n, Ordering::Relaxed);
                state.metrics.storage.note(&Err::<(), _>(err.clone()));
                tracing::error!(%err, events = n, "storing celery events failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch storage refuses is lost (the broker does not send it again): it is counted as
    /// such, apart from what a full queue drops, and the writer goes on with the next one.
    #[tokio::test]
    async fn a_batch_storage_refuses_is_counted_apart_from_a_full_queue() {
        let dir = tempfile::tempdir().unwrap();
        let location = vigie_store::Location::Sqlite(dir.path().join("v.db"));
        let store = vigie_store::open(&location).await.unwrap();
        store.close().await;
        let metrics = Arc::new(Metrics::default());
        let (hub, _stop) = Hub::new();
        let writing = Writing {
            store,
            hub,
            metrics: metrics.clone(),
            failures: None,
            project: ProjectId(1),
        };
        let (queue, news) = mpsc::channel(8);
        for uuid in ["a", "b", "c"] {
            queue
                .send(CeleryNews::Task {
                    uuid: uuid.into(),
                    kind: "task-started".into(),
                    hostname: "celery@w1".into(),
                    at: Timestamp(1_800_000_000_000),
                    fields: Default::default(),
                })
                .await
                .unwrap();
        }
        drop(queue);
        writer(writing, news).await;
        let counters = &metrics.celery;
        assert_eq!(counters.store_failed.load(Ordering::Relaxed), 3);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(counters.stored.load(Ordering::Relaxed), 0);
    }

    fn event(timestamp: &str) -> vigie_protocol::celery::Event {
        let body = format!(
            r#"{{"type": "task-started", "uuid": "u1", "hostname": "celery@a", "timestamp": {timestamp}, "args": "{}"}}"#,
            "x".repeat(200_000)
        );
        vigie_protocol::celery::decode_body("application/json", body.as_bytes())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn implausible_times_become_now_with_the_original_kept() {
        let now = Timestamp(1_795_300_000_000);
        let mut fine = event("1795299990.5");
        assert_eq!(event_time(&mut fine, now), Timestamp(1_795_299_990_500));
        assert!(!fine.fields.contains_key("original_timestamp"));
        for sent in ["1e300", "-5", "0"] {
            let mut odd = event(sent);
            assert_eq!(event_time(&mut odd, now), now, "{sent}");
            let kept = odd.fields["original_timestamp"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(!kept.contains("9223372036854775807"), "{kept}");
        }
        let mut huge = event("1e300");
        event_time(&mut huge, now);
        assert_eq!(huge.fields["original_timestamp"], "1e+300");
    }

    #[test]
    fn task_fields_are_capped_before_they_wait_for_the_writer() {
        let Some(CeleryNews::Task { fields, .. }) = news_of(event("1795299990.5")) else {
            panic!("a task event");
        };
        assert!(fields["args"].as_str().unwrap().len() <= vigie_core::celery::MAX_FIELD_BYTES);
        assert_eq!(fields["truncated"], serde_json::json!(["args"]));
    }
}
