//! What Vigie may ask of Celery workers, as pure rules: the read-only questions
//! ([`Inspect`], `celery inspect …`) and the actions that change a worker or a task
//! ([`Action`], `celery control …`, and a queue purge).
//!
//! ```text
//! API / page / CLI ─► Action::validate (a clear 422 before anything is sent)
//!   ─► Action::command: Celery's method and arguments ─► the broker's pidbox (server side)
//!   ─► Action::describe: one line in the audit list, with who and when
//! ```
//!
//! The methods and argument names are Celery's own (`celery.worker.control`), so a worker of
//! any Celery 5 version understands them.

use serde_json::{json, Map, Value};
use std::fmt;

/// A question every worker answers from its own state (`celery inspect <name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inspect {
    /// Tasks running now.
    Active,
    /// Tasks taken from the queue, waiting for a pool process.
    Reserved,
    /// Tasks with an ETA or countdown, held until then.
    Scheduled,
    /// Task names the worker knows.
    Registered,
    /// Pool, concurrency, prefetch, counts per task, rusage.
    Stats,
    /// Queues the worker consumes.
    ActiveQueues,
    /// The worker's configuration (Celery hides secrets in it).
    Conf,
    /// Whether it answers at all.
    Ping,
    /// Task ids the worker holds as revoked.
    Revoked,
}

impl Inspect {
    pub const ALL: [Inspect; 9] = [
        Inspect::Active,
        Inspect::Reserved,
        Inspect::Scheduled,
        Inspect::Registered,
        Inspect::Stats,
        Inspect::ActiveQueues,
        Inspect::Conf,
        Inspect::Ping,
        Inspect::Revoked,
    ];

    /// Its name in the API and the CLI, which is Celery's (`active_queues`).
    pub fn name(self) -> &'static str {
        match self {
            Inspect::Active => "active",
            Inspect::Reserved => "reserved",
            Inspect::Scheduled => "scheduled",
            Inspect::Registered => "registered",
            Inspect::Stats => "stats",
            Inspect::ActiveQueues => "active_queues",
            Inspect::Conf => "conf",
            Inspect::Ping => "ping",
            Inspect::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Result<Inspect, String> {
        Inspect::ALL
            .into_iter()
            .find(|i| i.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Inspect::ALL.iter().map(|i| i.name()).collect();
                format!("no inspect command {text:?}: one of {}", names.join(", "))
            })
    }

    /// Celery's method and arguments.
    pub fn command(self) -> (&'static str, Value) {
        match self {
            // `safe` asks for arguments as JSON-safe values, not reprs; Celery 5 takes it.
            Inspect::Active => ("active", json!({"safe": true})),
            Inspect::Conf => ("conf", json!({"with_defaults": false})),
            Inspect::Registered => ("registered", json!({"taskinfoitems": []})),
            other => (other.name(), json!({})),
        }
    }
}

impl fmt::Display for Inspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Signals a terminated task may be sent (those Celery's `revoke` takes by name).
pub const SIGNALS: [&str; 6] = [
    "SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGHUP",
];

/// The most processes a pool may grow or shrink by in one action.
pub const MAX_POOL_STEP: u32 = 1_000;

/// Something done to a task, a task type, a worker or a queue.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Workers drop the task if it has not run; with `terminate`, the process running it gets
    /// `signal`.
    Revoke {
        task_id: String,
        terminate: bool,
        signal: String,
    },
    /// At most `rate` runs of a task type per worker (`10/m`, `2/s`, `100/h`, `5`); `0` or
    /// empty lifts the limit.
    RateLimit {
        task_name: String,
        rate: String,
    },
    /// Soft and hard time limits of a task type, in seconds; `None` lifts one.
    TimeLimit {
        task_name: String,
        soft: Option<f64>,
        hard: Option<f64>,
    },
    PoolGrow {
        n: u32,
    },
    PoolShrink {
        n: u32,
    },
    /// Restarts the pool's processes (reloading modules is off: it needs the worker's
    /// `worker_pool_restarts` and is rarely what one wants).
    PoolRestart,
    Autoscale {
        max: u32,
        min: u32,
    },
    AddConsumer {
        queue: String,
    },
    CancelConsumer {
        queue: String,
    },
    /// Stops the worker (warm shutdown: running tasks finish first).
    Shutdown,
    /// Drops every message waiting in a queue. Done on the broker, not by a worker.
    Purge {
        queue: String,
    },
    /// Sends a failed (or revoked) task again, as a new task with the same name, arguments
    /// and queue, whose parent is the old one. Done on the broker, not by a worker.
    Retry {
        task_id: String,
    },
    /// Marks a task ABORTED in the Redis result backend, which an `AbortableTask` reads
    /// (`self.is_aborted()`) to stop itself. Done on the backend, not by a worker.
    Abort {
        task_id: String,
    },
}

/// A queue or task name is what Celery would accept: printable, without spaces, bounded.
fn valid_name(field: &str, text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 200 || text.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!(
            "{field} {text:?} is not a name: 1 to 200 characters, no spaces"
        ));
    }
    Ok(())
}

/// `10/m`, `2/s`, `100/h` or a plain number (per second); `0` and empty lift the limit.
pub fn valid_rate(rate: &str) -> Result<(), String> {
    if rate.is_empty() {
        return Ok(());
    }
    let (count, unit) = rate.split_once('/').unwrap_or((rate, "s"));
    let count_ok = count
        .parse::<f64>()
        .is_ok_and(|n| n.is_finite() && n >= 0.0);
    if !count_ok || !matches!(unit, "s" | "m" | "h") {
        return Err(format!(
            "rate limit {rate:?} is not Celery's form: a number per second, or N/s, N/m, N/h"
        ));
    }
    Ok(())
}

impl Action {
    /// Its name in the API, the CLI and the audit list.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Revoke {
                terminate: true, ..
            } => "terminate",
            Action::Revoke { .. } => "revoke",
            Action::RateLimit { .. } => "rate_limit",
            Action::TimeLimit { .. } => "time_limit",
            Action::PoolGrow { .. } => "pool_grow",
            Action::PoolShrink { .. } => "pool_shrink",
            Action::PoolRestart => "pool_restart",
            Action::Autoscale { .. } => "autoscale",
            Action::AddConsumer { .. } => "add_consumer",
            Action::CancelConsumer { .. } => "cancel_consumer",
            Action::Shutdown => "shutdown",
            Action::Purge { .. } => "purge",
            Action::Retry { .. } => "retry",
            Action::Abort { .. } => "abort",
        }
    }

    /// The reason it cannot be sent as asked.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Action::Retry { task_id } | Action::Abort { task_id } => valid_name("task id", task_id),
            Action::Revoke {
                task_id, signal, ..
            } => {
                valid_name("task id", task_id)?;
                if !SIGNALS.contains(&signal.as_str()) {
                    return Err(format!(
                        "signal {signal:?} is not one of {}",
                        SIGNALS.join(", ")
                    ));
                }
                Ok(())
            }
            Action::RateLimit { task_name, rate } => {
                valid_name("task name", task_name)?;
                valid_rate(rate)
            }
            Action::TimeLimit {
                task_name,
                soft,
                hard,
            } => {
                valid_name("task name", task_name)?;
                for (field, limit) in [("soft", soft), ("hard", hard)] {
                    if limit.is_some_and(|s| !s.is_finite() || s <= 0.0) {
                        return Err(format!("{field} must be a number of seconds above 0"));
                    }
                }
                if let (Some(soft), Some(hard)) = (soft, hard) {
                    if soft > hard {
                        return Err(format!(
                            "the soft limit ({soft} s) must not pass the hard one ({hard} s)"
                        ));
                    }
                }
                Ok(())
            }
            Action::PoolGrow { n } | Action::PoolShrink { n } => {
                if *n == 0 || *n > MAX_POOL_STEP {
                    return Err(format!("n must be 1 to {MAX_POOL_STEP}"));
                }
                Ok(())
            }
            Action::Autoscale { max, min } => {
                if *max == 0 || min > max || *max > MAX_POOL_STEP {
                    return Err(format!(
                        "autoscale wants 0 ≤ min ≤ max, max 1 to {MAX_POOL_STEP}"
                    ));
                }
                Ok(())
            }
            Action::AddConsumer { queue }
            | Action::CancelConsumer { queue }
            | Action::Purge { queue } => valid_name("queue", queue),
            Action::PoolRestart | Action::Shutdown => Ok(()),
        }
    }

    /// Whether it acts on every worker when none is named. Shutdown never does: stopping all
    /// workers by leaving out a name is too easy a mistake.
    pub fn needs_a_worker(&self) -> bool {
        matches!(self, Action::Shutdown)
    }

    /// Celery's method and arguments; `None` for a purge or a retry, which the broker does.
    pub fn command(&self) -> Option<(&'static str, Value)> {
        let (method, arguments) = match self {
            Action::Revoke {
                task_id,
                terminate,
                signal,
            } => (
                "revoke",
                json!({"task_id": task_id, "terminate": terminate, "signal": signal}),
            ),
            Action::RateLimit { task_name, rate } => (
                "rate_limit",
                json!({"task_name": task_name, "rate_limit": if rate.is_empty() { "0" } else { rate }}),
            ),
            Action::TimeLimit {
                task_name,
                soft,
                hard,
            } => (
                "time_limit",
                json!({"task_name": task_name, "soft": soft, "hard": hard}),
            ),
            Action::PoolGrow { n } => ("pool_grow", json!({ "n": n })),
            Action::PoolShrink { n } => ("pool_shrink", json!({ "n": n })),
            Action::PoolRestart => ("pool_restart", json!({"reload": false})),
            Action::Autoscale { max, min } => ("autoscale", json!({"max": max, "min": min})),
            Action::AddConsumer { queue } => ("add_consumer", json!({ "queue": queue })),
            Action::CancelConsumer { queue } => ("cancel_consumer", json!({ "queue": queue })),
            Action::Shutdown => ("shutdown", json!({})),
            Action::Purge { .. } | Action::Retry { .. } | Action::Abort { .. } => return None,
        };
        Some((method, arguments))
    }

    /// What it acts on, for the audit list and the pages that show it: a task id, a task
    /// name, a queue; `None` when it acts on workers only.
    pub fn target(&self) -> Option<&str> {
        match self {
            Action::Revoke { task_id, .. }
            | Action::Retry { task_id }
            | Action::Abort { task_id } => Some(task_id),
            Action::RateLimit { task_name, .. } | Action::TimeLimit { task_name, .. } => {
                Some(task_name)
            }
            Action::AddConsumer { queue }
            | Action::CancelConsumer { queue }
            | Action::Purge { queue } => Some(queue),
            _ => None,
        }
    }

    /// One line for people: `terminate 5f1… (SIGKILL)`, `rate_limit mail.send 10/m`.
    pub fn describe(&self) -> String {
        match self {
            Action::Revoke {
                task_id,
                terminate: true,
                signal,
            } => format!("terminate {task_id} ({signal})"),
            Action::Revoke { task_id, .. } => format!("revoke {task_id}"),
            Action::RateLimit { task_name, rate } if rate.is_empty() || rate == "0" => {
                format!("rate_limit {task_name} lifted")
            }
            Action::RateLimit { task_name, rate } => format!("rate_limit {task_name} {rate}"),
            Action::TimeLimit {
                task_name,
                soft,
                hard,
            } => {
                let s = |l: &Option<f64>| l.map_or("none".to_string(), |l| format!("{l} s"));
                format!("time_limit {task_name} soft {} hard {}", s(soft), s(hard))
            }
            Action::PoolGrow { n } => format!("pool_grow by {n}"),
            Action::PoolShrink { n } => format!("pool_shrink by {n}"),
            Action::Autoscale { max, min } => format!("autoscale {min}–{max}"),
            Action::AddConsumer { queue } => format!("add_consumer {queue}"),
            Action::CancelConsumer { queue } => format!("cancel_consumer {queue}"),
            Action::Purge { queue } => format!("purge {queue}"),
            Action::Retry { task_id } => format!("retry {task_id}"),
            Action::Abort { task_id } => format!("abort {task_id}"),
            Action::PoolRestart | Action::Shutdown => self.name().to_string(),
        }
    }
}

/// Whether a task in this state may be sent again: one that failed or was revoked. A running,
/// waiting or succeeded task is not (twice the same side effects).
pub fn retryable(state: &super::TaskState) -> bool {
    matches!(state, super::TaskState::Failure | super::TaskState::Revoked)
}

/// What one worker's reply says: Celery answers `{"ok": "…"}` or `{"error": "…"}` to a
/// control command; anything else is taken as done.
pub fn reply_outcome(reply: &Value) -> Result<String, String> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    match reply {
        Value::Object(map) if map.contains_key("error") => Err(text(&map["error"])),
        Value::Object(map) if map.contains_key("ok") => Ok(text(&map["ok"])),
        other => Ok(text(other)),
    }
}

/// The arguments as an object (for the audit list).
pub fn arguments_of(action: &Action) -> Map<String, Value> {
    match action.command() {
        Some((_, Value::Object(map))) => map,
        _ => {
            let mut map = Map::new();
            match action {
                Action::Purge { queue } => {
                    map.insert("queue".into(), queue.clone().into());
                }
                Action::Retry { task_id } | Action::Abort { task_id } => {
                    map.insert("task_id".into(), task_id.clone().into());
                }
                _ => {}
            }
            map
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_names_are_celery_s() {
        for i in Inspect::ALL {
            assert_eq!(Inspect::parse(i.name()), Ok(i));
        }
        assert!(Inspect::parse("Active")
            .unwrap_err()
            .contains("active_queues"));
        assert_eq!(Inspect::Active.command().1, json!({"safe": true}));
    }

    #[test]
    fn actions_refuse_what_celery_would_not_take() {
        let revoke = |signal: &str| Action::Revoke {
            task_id: "5f1c".into(),
            terminate: true,
            signal: signal.into(),
        };
        assert_eq!(revoke("SIGKILL").validate(), Ok(()));
        assert!(revoke("KILL").validate().unwrap_err().contains("SIGTERM"));
        let rate = |r: &str| Action::RateLimit {
            task_name: "mail.send".into(),
            rate: r.into(),
        };
        for fine in ["10/m", "2/s", "100/h", "5", "0", "", "0.5/s"] {
            assert_eq!(rate(fine).validate(), Ok(()), "{fine}");
        }
        for bad in ["10/d", "ten/m", "-1/s", "NaN", "inf"] {
            assert!(rate(bad).validate().is_err(), "{bad}");
        }
        assert!(Action::PoolGrow { n: 0 }.validate().is_err());
        assert!(Action::PoolShrink { n: 1001 }.validate().is_err());
        assert!(Action::Autoscale { max: 2, min: 3 }.validate().is_err());
        let limits = |soft, hard| Action::TimeLimit {
            task_name: "t".into(),
            soft,
            hard,
        };
        assert!(limits(Some(10.0), Some(5.0)).validate().is_err());
        assert!(limits(Some(-1.0), None).validate().is_err());
        assert_eq!(limits(Some(5.0), None).validate(), Ok(()));
        for bad in ["", "two words", "a\nb"] {
            assert!(Action::Purge { queue: bad.into() }.validate().is_err());
        }
    }

    #[test]
    fn commands_and_descriptions() {
        let terminate = Action::Revoke {
            task_id: "5f1c".into(),
            terminate: true,
            signal: "SIGKILL".into(),
        };
        assert_eq!(
            terminate.command(),
            Some((
                "revoke",
                json!({"task_id": "5f1c", "terminate": true, "signal": "SIGKILL"})
            ))
        );
        assert_eq!(
            (terminate.name(), terminate.describe().as_str()),
            ("terminate", "terminate 5f1c (SIGKILL)")
        );
        let lifted = Action::RateLimit {
            task_name: "mail.send".into(),
            rate: String::new(),
        };
        assert_eq!(lifted.command().unwrap().1["rate_limit"], "0");
        assert_eq!(lifted.describe(), "rate_limit mail.send lifted");
        let purge = Action::Purge {
            queue: "mail".into(),
        };
        assert_eq!((purge.command(), purge.target()), (None, Some("mail")));
        assert_eq!(arguments_of(&purge)["queue"], "mail");
        assert!(Action::Shutdown.needs_a_worker() && !Action::PoolRestart.needs_a_worker());
    }

    #[test]
    fn replies_say_ok_or_error() {
        assert_eq!(
            reply_outcome(&json!({"ok": "pool will grow"})),
            Ok("pool will grow".into())
        );
        assert_eq!(
            reply_outcome(&json!({"error": "Unknown task"})),
            Err("Unknown task".into())
        );
        assert_eq!(reply_outcome(&json!("pong")), Ok("pong".into()));
    }
}
