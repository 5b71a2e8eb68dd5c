//! What each online worker says of itself right now, for the Workers page: its pool, how many
//! processes it runs, its prefetch, the queues it consumes, the tasks it knows and what it is
//! running — four `inspect` questions asked at once, answered within a second.
//!
//! ```text
//! Workers page ─► ask(stats, active_queues, registered, active) for the online workers
//!   ─► WorkerNow::read(hostname, replies): the fields people look at, from Celery's shapes
//! ```

use super::control::Gathered;
use super::control_api::ask;
use crate::state::AppState;
use serde_json::Value;
use vigie_core::celery::control::Inspect;
use vigie_core::{ProjectId, Timestamp};

/// One worker, as it answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerNow {
    /// `prefork`, `threads`, `solo`, `gevent`, … (the last part of Celery's class path).
    pub pool: String,
    /// Pool processes (or threads) now.
    pub processes: usize,
    pub max_concurrency: Option<i64>,
    pub prefetch: Option<i64>,
    pub queues: Vec<String>,
    /// Task names, with Celery's notes (`[rate_limit=10/m]`).
    pub registered: Vec<String>,
    pub running: Vec<Running>,
}

/// A task the worker runs now.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    pub id: String,
    pub name: String,
    pub args: String,
    pub started: Option<Timestamp>,
}

const ASKED: [Inspect; 4] = [
    Inspect::Stats,
    Inspect::ActiveQueues,
    Inspect::Registered,
    Inspect::Active,
];

/// Asks the online workers; those that did not answer (or no broker) are left out.
pub async fn now(
    state: &AppState,
    project: ProjectId,
    online: &[String],
) -> Vec<(String, WorkerNow)> {
    if online.is_empty() || state.config.celery.brokers.trim().is_empty() {
        return Vec::new();
    }
    let asks = ASKED.map(|q| ask(state, project, q, online, super::control::DEFAULT_TIMEOUT));
    let answers: Vec<Gathered> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|err| {
                tracing::debug!(%err, "workers page: inspect failed");
                Gathered::default()
            })
        })
        .collect();
    online
        .iter()
        .filter(|w| answers[0].replies.contains_key(*w))
        .map(|w| {
            let reply = |i: usize| answers[i].replies.get(w).cloned().unwrap_or_default();
            let now = WorkerNow::read(&reply(0), &reply(1), &reply(2), &reply(3));
            (w.clone(), now)
        })
        .collect()
}

impl WorkerNow {
    /// From the replies to `stats`, `active_queues`, `registered` and `active`.
    pub fn read(stats: &Value, queues: &Value, registered: &Value, active: &Value) -> WorkerNow {
        let pool = &stats["pool"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
        WorkerNow {
            pool: pool["implementation"]
                .as_str()
                .map(|p| {
                    let class = p.rsplit(':').next().unwrap_or(p);
                    let module = p.split(':').next().unwrap_or(p);
                    let short = module.rsplit('.').next().unwrap_or(class);
                    short.to_string()
                })
                .unwrap_or_default(),
            processes: pool["processes"].as_array().map_or(0, Vec::len),
            max_concurrency: pool["max-concurrency"].as_i64(),
            prefetch: stats["prefetch_count"].as_i64(),
            queues: list(queues).iter().map(|q| text(&q["name"])).collect(),
            registered: list(registered).iter().map(text).collect(),
            running: list(active)
                .iter()
                .map(|t| Running {
                    id: text(&t["id"]),
                    name: text(&t["name"]),
                    args: match &t["args"] {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    },
                    started: t["time_start"]
                        .as_f64()
                        .map(|s| Timestamp((s * 1000.0) as i64)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_worker_reads_as_people_look_at_it() {
        let stats = json!({"pool": {"implementation": "celery.concurrency.prefork:TaskPool",
                          "max-concurrency": 4, "processes": [11, 12, 13]}, "prefetch_count": 16});
        let queues = json!([{"name": "celery"}, {"name": "mail"}]);
        let registered = json!(["shop.add", "shop.send [rate_limit=10/m]"]);
        let active =
            json!([{"id": "5f1c", "name": "shop.send", "args": [7], "time_start": 1795596627.5}]);
        let now = WorkerNow::read(&stats, &queues, &registered, &active);
        assert_eq!(
            (
                now.pool.as_str(),
                now.processes,
                now.max_concurrency,
                now.prefetch
            ),
            ("prefork", 3, Some(4), Some(16))
        );
        assert_eq!(now.queues, ["celery", "mail"]);
        assert_eq!(now.registered[1], "shop.send [rate_limit=10/m]");
        assert_eq!(
            now.running,
            [Running {
                id: "5f1c".into(),
                name: "shop.send".into(),
                args: "[7]".into(),
                started: Some(Timestamp(1_795_596_627_500)),
            }]
        );
        assert_eq!(
            WorkerNow::read(&Value::Null, &Value::Null, &Value::Null, &Value::Null),
            WorkerNow::default(),
            "a worker that sent nothing usable reads empty, without panicking"
        );
    }
}
