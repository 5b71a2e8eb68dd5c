//! Remote control of Celery workers over their broker: questions ([`inspect`]), actions
//! ([`act`]) and queue purges, each on every configured broker, each on a connection of its
//! own that lives as long as the call.
//!
//! ```text
//! inspect(stats) ─► per broker, at once:
//!   Redis:    SADD _kombu.binding.reply.celery.pidbox <oid>␆␖␆␖<oid>.reply.celery.pidbox
//!             PUBLISH /<db>.celery.pidbox <command with reply_to, ticket>
//!             BRPOP <oid>.reply.celery.pidbox … until every expected worker answered or the
//!             timeout ─► SREM the binding, DEL the list
//!   RabbitMQ: declare reply.celery.pidbox, a queue of the call's own bound with <oid>,
//!             publish on celery.pidbox, read deliveries until answered or the timeout
//!   ─► {hostname: reply} merged, and the expected workers that stayed silent named
//! act(revoke …) ─► the same with Action::command; the replies say ok or error per worker
//! act(purge q)   ─► Redis: LLEN + DEL q and its priority lists; RabbitMQ: Queue.Purge
//! ```
//!
//! Nothing here is a background task: a call that times out leaves nothing behind but the
//! reply list, which is deleted, and a binding, which is removed.

use super::broker::{Broker, RedisBroker};
use super::{amqp, redis};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};
use vigie_core::celery::control::Action;
use vigie_protocol::celery::control::{
    reply_of_body, reply_of_redis, Command, ReplyTo, PIDBOX_EXCHANGE, REDIS_PRIORITY_STEPS,
    REDIS_SEP, REPLY_EXCHANGE,
};
use vigie_protocol::celery::task::TaskMessage;

/// How long a call waits for replies unless told (Celery's own default is 1 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest wait a caller may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no Celery broker is configured: set [celery] brokers (or --celery-broker)")]
    NoBroker,
    #[error("broker {broker}: {source}")]
    Broker {
        broker: String,
        #[source]
        source: io::Error,
    },
    #[error("no queue {0:?} on the broker")]
    NoQueue(String),
    #[error("aborting needs a Redis result backend (AbortableTask reads its state there)")]
    NoBackend,
}

/// What the workers answered.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Gathered {
    /// Each answering worker's reply.
    pub replies: BTreeMap<String, Value>,
    /// Workers expected to answer (named, or online by their heartbeats) that did not.
    pub silent: Vec<String>,
}

/// Sends `command` to the workers of every broker and gathers their replies: until each of
/// `expected` answered (then at once), else until `timeout`.
pub async fn call(
    brokers: &[Broker],
    command: &Command,
    expected: &[String],
    timeout: Duration,
) -> Result<Gathered, ControlError> {
    if brokers.is_empty() {
        return Err(ControlError::NoBroker);
    }
    let deadline = Instant::now() + timeout.min(MAX_TIMEOUT);
    let calls = brokers.iter().map(|broker| async move {
        let reply = ReplyTo {
            routing_key: uuid(),
            ticket: uuid(),
        };
        let replies = match broker {
            Broker::Redis(redis) => {
                call_redis(redis, command, Some(&reply), expected, deadline).await
            }
            Broker::Amqp(url) => call_amqp(url, command, Some(&reply), expected, deadline).await,
        };
        replies.map_err(|source| ControlError::Broker {
            broker: broker.describe(),
            source,
        })
    });
    let mut gathered = Gathered::default();
    let mut failure = None;
    let mut answered_once = false;
    for outcome in futures_util::future::join_all(calls).await {
        match outcome {
            Ok(replies) => {
                answered_once = true;
                gathered.replies.extend(replies);
            }
            Err(err) => {
                tracing::warn!(%err, "celery remote control failed on a broker");
                failure = Some(err);
            }
        }
    }
    if let (false, Some(err)) = (answered_once, failure) {
        return Err(err);
    }
    gathered.silent = expected
        .iter()
        .filter(|w| !gathered.replies.contains_key(*w))
        .cloned()
        .collect();
    Ok(gathered)
}

/// Sends `command` without asking for replies (a cast).
pub async fn cast(brokers: &[Broker], command: &Command) -> Result<(), ControlError> {
    if brokers.is_empty() {
        return Err(ControlError::NoBroker);
    }
    for broker in brokers {
        let sent = match broker {
            Broker::Redis(redis) => call_redis(redis, command, None, &[], Instant::now()).await,
            Broker::Amqp(url) => call_amqp(url, command, None, &[], Instant::now()).await,
        };
        sent.map_err(|source| ControlError::Broker {
            broker: broker.describe(),
            source,
        })?;
    }
    Ok(())
}

/// Drops every message waiting in `queue` on every broker; how many were dropped.
pub async fn purge(brokers: &[Broker], queue: &str) -> Result<u64, ControlError> {
    if brokers.is_empty() {
        return Err(ControlError::NoBroker);
    }
    let mut dropped = 0;
    let mut found = false;
    for broker in brokers {
        let purged = match broker {
            Broker::Redis(redis) => purge_redis(redis, queue).await.map(Some),
            Broker::Amqp(url) => match amqp::Connection::open(url).await {
                Ok(mut c) => c.purge(queue).await,
                Err(e) => Err(e),
            },
        }
        .map_err(|source| ControlError::Broker {
            broker: broker.describe(),
            source,
        })?;
        if let Some(n) = purged {
            found = true;
            dropped += n;
        }
    }
    if !found {
        return Err(ControlError::NoQueue(queue.to_string()));
    }
    Ok(dropped)
}

/// How many messages wait in `queue` on every broker (what a purge would drop).
pub async fn waiting(brokers: &[Broker], queue: &str) -> Result<u64, ControlError> {
    let mut total = 0;
    for broker in brokers {
        let n = match broker {
            Broker::Redis(redis) => {
                async {
                    let mut c = redis::Connection::open(&redis.url).await?;
                    Ok(redis_lengths(&mut c, redis, queue).await?.iter().sum())
                }
                .await
            }
            Broker::Amqp(url) => match amqp::Connection::open(url).await {
                Ok(mut c) => c
                    .queue_length(queue)
                    .await
                    .map(|n| n.unwrap_or(0).max(0) as u64),
                Err(e) => Err(e),
            },
        }
        .map_err(|source| ControlError::Broker {
            broker: broker.describe(),
            source,
        })?;
        total += n;
    }
    Ok(total)
}

/// Sends a task to its queue, on the first configured broker (an app has one broker; with
/// several, the first is the app's). RabbitMQ drops a message for a queue it does not have,
/// as it does for Celery's own clients.
pub async fn send_task(brokers: &[Broker], task: &TaskMessage) -> Result<(), ControlError> {
    let broker = brokers.first().ok_or(ControlError::NoBroker)?;
    let sent = match broker {
        Broker::Redis(redis) => {
            async {
                let mut c = redis::Connection::open(&redis.url).await?;
                let envelope = task.redis_envelope(&uuid());
                c.command(&[
                    "LPUSH".into(),
                    redis.key(&task.queue),
                    String::from_utf8_lossy(&envelope).into_owned(),
                ])
                .await
                .map(drop)
            }
            .await
        }
        Broker::Amqp(url) => {
            async {
                let mut c = amqp::Connection::open(url).await?;
                let amqp::Field::Table(headers) = amqp::Field::from_json(&task.headers()) else {
                    unreachable!("task headers are an object")
                };
                let headers: Vec<(&str, amqp::Field)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                c.publish(
                    "",
                    &task.queue,
                    task.body().to_string().as_bytes(),
                    &headers,
                )
                .await
            }
            .await
        }
    };
    sent.map_err(|source| ControlError::Broker {
        broker: broker.describe(),
        source,
    })
}

/// Marks a task ABORTED in the result backend, as `AbortableAsyncResult.abort()` does: the
/// state set (kept a day, Celery's `result_expires` default) and published. Only a Redis
/// broker's result backend (the broker's database, or `[celery] result_backend`) is reached.
pub async fn abort(brokers: &[Broker], task_id: &str) -> Result<(), ControlError> {
    if brokers.is_empty() {
        return Err(ControlError::NoBroker);
    }
    let Some(redis) = brokers.iter().find_map(|b| match b {
        Broker::Redis(r) => Some(r),
        Broker::Amqp(_) => None,
    }) else {
        return Err(ControlError::NoBackend);
    };
    let state = serde_json::json!({
        "status": "ABORTED",
        "result": null,
        "traceback": null,
        "children": [],
        "date_done": vigie_core::Timestamp::now().to_rfc3339(),
        "task_id": task_id,
    })
    .to_string();
    let key = redis.key(&format!("celery-task-meta-{task_id}"));
    async {
        let mut c = redis::Connection::open(&redis.backend).await?;
        c.command(&[
            "SET".into(),
            key.clone(),
            state.clone(),
            "EX".into(),
            "86400".into(),
        ])
        .await?;
        c.command(&["PUBLISH".into(), key.clone(), state.clone()])
            .await
            .map(drop)
    }
    .await
    .map_err(|source| ControlError::Broker {
        broker: redis.url.describe(),
        source,
    })
}

/// A new task id, as Celery makes them (a UUID 4 in text).
pub fn new_task_id() -> String {
    uuid()
}

/// The command an action sends (`None` for a purge), addressed to `workers`.
pub fn command_of(action: &Action, workers: &[String]) -> Option<Command> {
    let (method, arguments) = action.command()?;
    Some(Command::new(method, arguments).to(workers))
}

/// A random UUID (version 4), as kombu and Celery make ids.
fn uuid() -> String {
    let hex = vigie_core::secret::random_hex(16);
    let variant = ["8", "9", "a", "b"][usize::from(hex.as_bytes()[16] % 4)];
    format!(
        "{}-{}-4{}-{variant}{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..]
    )
}

fn seconds_since_epoch() -> f64 {
    vigie_core::Timestamp::now().millis() as f64 / 1000.0
}

/// Whether every expected worker answered.
fn all_answered(replies: &BTreeMap<String, Value>, expected: &[String]) -> bool {
    !expected.is_empty() && expected.iter().all(|w| replies.contains_key(w))
}

async fn call_redis(
    broker: &RedisBroker,
    command: &Command,
    reply: Option<&ReplyTo>,
    expected: &[String],
    deadline: Instant,
) -> io::Result<BTreeMap<String, Value>> {
    let mut c = redis::Connection::open(&broker.url).await?;
    let ttl = deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f64()
        .max(1.0);
    let envelope = command.redis_envelope(reply, seconds_since_epoch(), ttl);
    let Some(reply) = reply else {
        publish_redis(&mut c, broker, &envelope).await?;
        return Ok(BTreeMap::new());
    };
    // Workers find the reply list through this binding; the permanent set keeps kombu's
    // binding sweep (5.6+) from dropping the table while the call waits.
    let bindings = [
        broker.key(&format!("_kombu.binding.{REPLY_EXCHANGE}")),
        broker.key(&format!("_kombu.binding_permanent.{REPLY_EXCHANGE}")),
    ];
    for key in &bindings {
        c.command(&["SADD".into(), key.clone(), reply.redis_binding()])
            .await?;
    }
    let list = broker.key(&reply.queue());
    let gathered = async {
        publish_redis(&mut c, broker, &envelope).await?;
        let mut replies = BTreeMap::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || all_answered(&replies, expected) {
                break;
            }
            let wait = format!("{:.3}", left.as_secs_f64().max(0.01));
            let popped = c.command(&["BRPOP".into(), list.clone(), wait]).await?;
            let redis::Reply::Array(Some(mut pair)) = popped else {
                break; // timed out
            };
            let Some(redis::Reply::Bulk(Some(raw))) = pair.pop() else {
                continue;
            };
            match reply_of_redis(&raw, &reply.ticket) {
                Ok(Some(r)) => {
                    replies.insert(r.hostname, r.value);
                }
                Ok(None) => {}
                Err(err) => tracing::debug!(%err, "unreadable celery reply skipped"),
            }
        }
        Ok::<_, io::Error>(replies)
    }
    .await;
    for key in &bindings {
        let _ = c
            .command(&["SREM".into(), key.clone(), reply.redis_binding()])
            .await;
    }
    let _ = c.command(&["DEL".into(), list]).await;
    gathered
}

async fn publish_redis(
    c: &mut redis::Connection,
    broker: &RedisBroker,
    envelope: &[u8],
) -> io::Result<()> {
    c.command(&[
        "PUBLISH".into(),
        broker.pidbox_channel(),
        String::from_utf8_lossy(envelope).into_owned(),
    ])
    .await
    .map(drop)
}

/// The names kombu's Redis transport keeps `queue` under: one list per priority step.
fn redis_queue_keys(broker: &RedisBroker, queue: &str) -> Vec<String> {
    REDIS_PRIORITY_STEPS
        .iter()
        .map(|&step| match step {
            0 => broker.key(queue),
            n => broker.key(&format!("{queue}{REDIS_SEP}{n}")),
        })
        .collect()
}

async fn redis_lengths(
    c: &mut redis::Connection,
    broker: &RedisBroker,
    queue: &str,
) -> io::Result<Vec<u64>> {
    let mut lengths = Vec::new();
    for key in redis_queue_keys(broker, queue) {
        let n = match c.command(&["LLEN".into(), key]).await? {
            redis::Reply::Integer(n) => n.max(0) as u64,
            _ => 0,
        };
        lengths.push(n);
    }
    Ok(lengths)
}

async fn purge_redis(broker: &RedisBroker, queue: &str) -> io::Result<u64> {
    let mut c = redis::Connection::open(&broker.url).await?;
    // LLEN then DEL in one MULTI, so a message pushed in between is not dropped uncounted.
    c.command(&["MULTI".into()]).await?;
    let keys = redis_queue_keys(broker, queue);
    for key in &keys {
        c.command(&["LLEN".into(), key.clone()]).await?;
        c.command(&["DEL".into(), key.clone()]).await?;
    }
    let redis::Reply::Array(Some(results)) = c.command(&["EXEC".into()]).await? else {
        return Err(io::Error::other("redis: the purge transaction was aborted"));
    };
    Ok(results
        .iter()
        .step_by(2)
        .map(|r| match r {
            redis::Reply::Integer(n) => (*n).max(0) as u64,
            _ => 0,
        })
        .sum())
}

async fn call_amqp(
    url: &amqp::AmqpUrl,
    command: &Command,
    reply: Option<&ReplyTo>,
    expected: &[String],
    deadline: Instant,
) -> io::Result<BTreeMap<String, Value>> {
    let mut c = amqp::Connection::open(url).await?;
    if let Some(reply) = reply {
        c.consume_replies(reply).await?;
    }
    let ttl = deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f64()
        .max(1.0);
    let headers = [
        ("clock", amqp::Field::Int(1)),
        ("expires", amqp::Field::Double(seconds_since_epoch() + ttl)),
    ];
    let body = command.body(reply).to_string();
    match c
        .publish(PIDBOX_EXCHANGE, "", body.as_bytes(), &headers)
        .await
    {
        Ok(()) => {}
        // No `celery.pidbox` exchange: no worker ever started on this broker.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(err),
    }
    let mut replies = BTreeMap::new();
    if reply.is_none() {
        return Ok(replies);
    }
    while !all_answered(&replies, expected) {
        let left = deadline.saturating_duration_since(Instant::now());
        // A cut-off read leaves the connection mid-frame; it is dropped right after.
        let Ok(delivery) = tokio::time::timeout(left, c.next_delivery()).await else {
            break;
        };
        let delivery = delivery?;
        let parsed = serde_json::from_slice(&delivery.body)
            .map_err(|e| vigie_protocol::celery::CeleryError::BadBody(e.to_string()))
            .and_then(reply_of_body);
        match parsed {
            Ok(r) => {
                replies.insert(r.hostname, r.value);
            }
            Err(err) => tracing::debug!(%err, "unreadable celery reply skipped"),
        }
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_follow_kombu_s_priorities_and_prefix() {
        let Broker::Redis(broker) = Broker::parse("redis://h/3", "shop:", "/{db}.").unwrap() else {
            panic!("a redis broker")
        };
        assert_eq!(
            redis_queue_keys(&broker, "mail"),
            [
                "shop:mail",
                "shop:mail\x06\x163",
                "shop:mail\x06\x166",
                "shop:mail\x06\x169"
            ]
        );
    }

    #[test]
    fn ids_look_like_uuids() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(&id[14..15], "4", "version 4: {id}");
        assert!("89ab".contains(&id[19..20]), "the RFC 4122 variant: {id}");
        assert_ne!(uuid(), id);
    }
}
