//! Queue lengths: how many messages wait in each queue tasks were sent to, read from the
//! first broker as Flower reads them. On Redis kombu keeps a queue as a list named after it,
//! plus one list per priority step (`<queue>\x06\x16<priority>` for 3, 6 and 9), and the length
//! is their sum; RabbitMQ tells a queue's count when asked about it (a passive declare).

use super::amqp;
use super::broker::{Broker, RedisBroker};
use super::redis::{Connection, Reply};
use crate::http::AppError;
use crate::state::AppState;
use serde::Serialize;
use vigie_core::ProjectId;

/// kombu's default priority steps beyond 0, and its separator.
const PRIORITY_STEPS: [u8; 3] = [3, 6, 9];
const SEPARATOR: &str = "\x06\x16";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueLength {
    pub name: String,
    /// `None` when the broker could not be asked.
    pub messages: Option<i64>,
}

/// The length of every queue the project's tasks were sent to, from the first broker.
pub async fn lengths(state: &AppState, project: ProjectId) -> Result<Vec<QueueLength>, AppError> {
    let names = state.store.celery_queues(project).await?;
    let broker = state
        .config
        .celery
        .brokers()
        .map_err(|e| AppError::Internal(e.to_string()))?
        .into_iter()
        .next();
    let mut out = Vec::with_capacity(names.len());
    match &broker {
        Some(Broker::Redis(redis)) => {
            let mut connection = Connection::open(&redis.url).await.ok();
            for name in names {
                let messages = match connection.as_mut() {
                    Some(c) => length(c, redis, &name).await,
                    None => None,
                };
                out.push(QueueLength { name, messages });
            }
        }
        Some(Broker::Amqp(url)) => {
            let mut connection = amqp::Connection::open(url).await.ok();
            for name in names {
                let messages = match connection.as_mut() {
                    Some(c) => c.queue_length(&name).await.ok().flatten(),
                    None => None,
                };
                out.push(QueueLength { name, messages });
            }
        }
        None => out.extend(names.into_iter().map(|name| QueueLength {
            name,
            messages: None,
        })),
    }
    Ok(out)
}

async fn length(connection: &mut Connection, broker: &RedisBroker, queue: &str) -> Option<i64> {
    let keys = std::iter::once(broker.key(queue)).chain(
        PRIORITY_STEPS
            .iter()
            .map(|p| broker.key(&format!("{queue}{SEPARATOR}{p}"))),
    );
    let mut total = 0;
    for key in keys {
        match connection.command(&["LLEN".to_string(), key]).await.ok()? {
            Reply::Integer(n) => total += n,
            _ => return None,
        }
    }
    Some(total)
}
