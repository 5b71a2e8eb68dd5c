//! Celery tasks and workers as Vigie understands them: the states a task goes through, how
//! out-of-order events merge, and when a worker counts as gone.
//!
//! Events reach Vigie out of order (a worker batches task events, clients and workers send on
//! their own connections), so a state only replaces the current one when it does not
//! logically happen before it — Celery's own precedence: a `task-received` arriving after
//! `task-succeeded` adds its fields (args, retries) but leaves the task succeeded. `RETRY`
//! always applies, since a retried task starts its life again.
//!
//! Each task is shown as a Job of kind `celery` ([`TaskState::job_status`]).

pub mod control;
mod job;
pub mod periodic;
pub mod pyrepr;
mod search;
pub mod types;

pub use job::{JOB_KIND, STALL_AFTER_MS};
pub use search::{SortKey, TaskSearch, TaskSort};

use crate::{JobStatus, ProjectId, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// A task's state, as Celery names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    Pending,
    Received,
    Started,
    Success,
    Failure,
    Retry,
    Revoked,
    Rejected,
    /// A state the application defined (`update_state(state="SENDING")`).
    Custom(String),
}

/// Celery's precedence (`celery.states.PRECEDENCE`): a lower index wins; unknown states sit
/// where `None` does.
const PRECEDENCE: [&str; 9] = [
    "SUCCESS", "FAILURE", "", "REVOKED", "STARTED", "RECEIVED", "REJECTED", "RETRY", "PENDING",
];

impl TaskState {
    /// The state a task event moves to; `None` for events that carry no state (`task-progress`
    /// and other custom events).
    pub fn of_event(kind: &str) -> Option<TaskState> {
        Some(match kind {
            "task-sent" => TaskState::Pending,
            "task-received" => TaskState::Received,
            "task-started" => TaskState::Started,
            "task-succeeded" => TaskState::Success,
            "task-failed" => TaskState::Failure,
            "task-retried" => TaskState::Retry,
            "task-revoked" => TaskState::Revoked,
            "task-rejected" => TaskState::Rejected,
            _ => return None,
        })
    }

    pub fn parse(text: &str) -> TaskState {
        match text {
            "PENDING" => TaskState::Pending,
            "RECEIVED" => TaskState::Received,
            "STARTED" => TaskState::Started,
            "SUCCESS" => TaskState::Success,
            "FAILURE" => TaskState::Failure,
            "RETRY" => TaskState::Retry,
            "REVOKED" => TaskState::Revoked,
            "REJECTED" => TaskState::Rejected,
            other => TaskState::Custom(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Received => "RECEIVED",
            TaskState::Started => "STARTED",
            TaskState::Success => "SUCCESS",
            TaskState::Failure => "FAILURE",
            TaskState::Retry => "RETRY",
            TaskState::Revoked => "REVOKED",
            TaskState::Rejected => "REJECTED",
            TaskState::Custom(name) => name,
        }
    }

    fn precedence(&self) -> usize {
        let name = match self {
            TaskState::Custom(_) => "",
            other => other.as_str(),
        };
        PRECEDENCE.iter().position(|p| *p == name).unwrap_or(2)
    }

    /// Finished: nothing more will happen to the task (`celery.states.READY_STATES`).
    pub fn is_ready(&self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Failure | TaskState::Revoked
        )
    }

    /// Whether `next`, arriving now, becomes the task's state (see the module docs); when not,
    /// the event's fields are still merged.
    pub fn replaced_by(&self, next: &TaskState) -> bool {
        *next == TaskState::Retry
            || *self == TaskState::Retry
            || next.precedence() <= self.precedence()
    }

    /// How the task shows as a Job.
    pub fn job_status(&self) -> JobStatus {
        match self {
            TaskState::Pending | TaskState::Received => JobStatus::Pending,
            TaskState::Started | TaskState::Retry | TaskState::Custom(_) => JobStatus::Running,
            TaskState::Success => JobStatus::Completed,
            TaskState::Failure | TaskState::Rejected => JobStatus::Failed,
            TaskState::Revoked => JobStatus::Cancelled,
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task as its events describe it (what Flower shows of a task).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Task {
    pub project: ProjectId,
    pub uuid: String,
    /// `shop.tasks.send_invoices`; unknown until the `task-sent` or `task-received` event.
    pub name: Option<String>,
    #[serde(serialize_with = "state_text")]
    pub state: TaskState,
    /// Positional and keyword arguments as the worker printed them (Python reprs).
    pub args: Option<String>,
    pub kwargs: Option<String>,
    pub result: Option<String>,
    pub exception: Option<String>,
    pub traceback: Option<String>,
    /// The worker that received it (`celery@web-1`).
    pub worker: Option<String>,
    pub queue: Option<String>,
    pub routing_key: Option<String>,
    pub retries: i64,
    pub eta: Option<String>,
    pub expires: Option<String>,
    pub parent_id: Option<String>,
    pub root_id: Option<String>,
    pub sent_at: Option<Timestamp>,
    pub received_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    /// When it succeeded, failed, was revoked or rejected.
    pub finished_at: Option<Timestamp>,
    /// Seconds, as the worker measured it.
    pub runtime: Option<f64>,
    /// `current` and `total` of its last progress report.
    pub progress: Option<(i64, Option<i64>)>,
    /// What its last progress report said it was doing (celery-progress's `description`).
    pub progress_description: Option<String>,
    /// The time of the last event applied.
    pub updated_at: Timestamp,
}

fn state_text<S: serde::Serializer>(state: &TaskState, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

impl Task {
    /// A task known only by its id, before any event.
    pub fn new(project: ProjectId, uuid: &str, at: Timestamp) -> Task {
        Task {
            project,
            uuid: uuid.to_string(),
            name: None,
            state: TaskState::Pending,
            args: None,
            kwargs: None,
            result: None,
            exception: None,
            traceback: None,
            worker: None,
            queue: None,
            routing_key: None,
            retries: 0,
            eta: None,
            expires: None,
            parent_id: None,
            root_id: None,
            sent_at: None,
            received_at: None,
            started_at: None,
            finished_at: None,
            runtime: None,
            progress: None,
            progress_description: None,
            updated_at: at,
        }
    }

    /// Applies one task event (`kind` `task-…`, sent by `hostname` at `at`, with its fields).
    /// The state moves only when the new one does not logically come before it; the fields
    /// the event carries are kept either way.
    pub fn apply(
        &mut self,
        kind: &str,
        hostname: &str,
        at: Timestamp,
        fields: &Map<String, Value>,
    ) {
        let text = |name: &str| -> Option<String> {
            match fields.get(name)? {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }
        };
        let set = |slot: &mut Option<String>, name: &str| {
            if let Some(value) = text(name) {
                *slot = Some(value);
            }
        };
        set(&mut self.name, "name");
        set(&mut self.args, "args");
        set(&mut self.kwargs, "kwargs");
        set(&mut self.result, "result");
        set(&mut self.exception, "exception");
        set(&mut self.traceback, "traceback");
        set(&mut self.queue, "queue");
        set(&mut self.routing_key, "routing_key");
        set(&mut self.eta, "eta");
        set(&mut self.expires, "expires");
        set(&mut self.parent_id, "parent_id");
        set(&mut self.root_id, "root_id");
        // A retry is the same task sent again from within itself: Celery names the task its
        // own parent then. It has none but the one it had.
        if self.parent_id.as_deref() == Some(self.uuid.as_str()) {
            self.parent_id = None;
        }
        if let Some(n) = fields.get("retries").and_then(Value::as_i64) {
            self.retries = self.retries.max(n);
        }
        if let Some(runtime) = fields.get("runtime").and_then(Value::as_f64) {
            self.runtime = Some(runtime);
        }
        let count = |name: &str| {
            fields
                .get(name)
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        };
        if let Some(current) = count("current") {
            self.progress = Some((current, count("total")));
        }
        // Events from workers name the worker; `task-sent` comes from the client.
        if kind != "task-sent" && !hostname.is_empty() {
            self.worker = Some(hostname.to_string());
        }
        match kind {
            "task-sent" => self.sent_at = Some(at),
            "task-received" => self.received_at = Some(at),
            "task-started" => self.started_at = Some(at),
            "task-succeeded" | "task-failed" | "task-revoked" | "task-rejected" => {
                self.finished_at = Some(at)
            }
            _ => {}
        }
        // The exception of an earlier try (a retry) is not this task's outcome once it
        // succeeded; each try's exception stays in the events.
        if kind == "task-succeeded" {
            if fields.get("exception").is_none() {
                self.exception = None;
            }
            if fields.get("traceback").is_none() {
                self.traceback = None;
            }
        }
        // `task-failed` carries no runtime: what the worker took is from start to end.
        if self.runtime.is_none() {
            if let (Some(started), Some(finished)) = (self.started_at, self.finished_at) {
                if finished >= started {
                    self.runtime = Some((finished.0 - started.0) as f64 / 1000.0);
                }
            }
        }
        if let Some(state) = TaskState::of_event(kind) {
            if self.state.replaced_by(&state) {
                self.state = state;
            }
        }
        self.updated_at = self.updated_at.max(at);
    }

    /// A state the result backend reported (`PROGRESS`, or an application's own), with its
    /// progress when it carries one.
    pub fn apply_backend_state(
        &mut self,
        status: &str,
        progress: Option<(i64, Option<i64>)>,
        description: Option<&str>,
        at: Timestamp,
    ) {
        if progress.is_some() {
            self.progress = progress;
            self.progress_description = description.map(str::to_string);
        }
        let state = TaskState::parse(status);
        // PROGRESS is how celery-progress names a running task: it stays STARTED. How a task
        // ended comes with the worker's event, with its result or exception (the backend
        // often publishes first).
        if status != "PROGRESS" && !state.is_ready() && self.state.replaced_by(&state) {
            self.state = state;
        }
        self.updated_at = self.updated_at.max(at);
    }
}

/// A Celery worker, from its heartbeats.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Worker {
    pub project: ProjectId,
    pub hostname: String,
    /// Seconds between heartbeats.
    pub freq: f64,
    pub last_heartbeat: Timestamp,
    /// Tasks running at the last heartbeat, and processed since the worker started.
    pub active: i64,
    pub processed: i64,
    pub loadavg: Vec<f64>,
    pub sw_ident: Option<String>,
    pub sw_ver: Option<String>,
    pub sw_sys: Option<String>,
    /// When it came online (its first event after being offline).
    pub online_since: Timestamp,
    /// Set when it said goodbye (`worker-offline`) or its heartbeats stopped.
    pub offline_at: Option<Timestamp>,
}

impl Worker {
    pub fn new(project: ProjectId, hostname: &str, at: Timestamp) -> Worker {
        Worker {
            project,
            hostname: hostname.to_string(),
            freq: 2.0,
            last_heartbeat: at,
            active: 0,
            processed: 0,
            loadavg: Vec::new(),
            sw_ident: None,
            sw_ver: None,
            sw_sys: None,
            online_since: at,
            offline_at: None,
        }
    }

    /// Applies a `worker-…` event.
    pub fn apply(&mut self, kind: &str, at: Timestamp, fields: &Map<String, Value>) {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_string);
        if let Some(freq) = fields.get("freq").and_then(Value::as_f64) {
            self.freq = freq;
        }
        if let Some(n) = fields.get("active").and_then(Value::as_i64) {
            self.active = n;
        }
        if let Some(n) = fields.get("processed").and_then(Value::as_i64) {
            self.processed = n;
        }
        if let Some(load) = fields.get("loadavg").and_then(Value::as_array) {
            self.loadavg = load.iter().filter_map(Value::as_f64).collect();
        }
        self.sw_ident = text("sw_ident").or(self.sw_ident.take());
        self.sw_ver = text("sw_ver").or(self.sw_ver.take());
        self.sw_sys = text("sw_sys").or(self.sw_sys.take());
        if kind == "worker-offline" {
            self.offline_at = Some(at);
            return;
        }
        if at >= self.last_heartbeat {
            let silent = !worker_alive(self.last_heartbeat.millis(), self.freq, at.millis());
            if self.offline_at.is_some() || silent {
                // Back after saying goodbye or going silent: a new online period.
                self.online_since = at;
                self.offline_at = None;
            }
            self.last_heartbeat = at;
        }
    }

    /// Online at `now`: not said goodbye, and a heartbeat within twice its interval.
    pub fn online(&self, now: Timestamp) -> bool {
        self.offline_at.is_none()
            && worker_alive(self.last_heartbeat.millis(), self.freq, now.millis())
    }
}

/// Fields every event has that Vigie keeps elsewhere (the event's kind, task, sender and time
/// have their own columns) or never shows: dropped from the fields as soon as an event is read.
pub const REDUNDANT_FIELDS: [&str; 7] = [
    "type",
    "uuid",
    "hostname",
    "timestamp",
    "utcoffset",
    "pid",
    "clock",
];

/// The fields of a task event that hold the application's data (Python reprs), scrubbed like
/// error events before anything is stored: sensitive assignments (`'password': '…'`,
/// `token=…`), card numbers and IBANs become `[Filtered]`.
pub const SCRUBBED_FIELDS: [&str; 5] = ["args", "kwargs", "result", "exception", "traceback"];

/// Scrubs an event's [`SCRUBBED_FIELDS`] in place; answers how many values were replaced.
pub fn scrub_fields(fields: &mut Map<String, Value>) -> usize {
    let mut replaced = 0;
    for name in SCRUBBED_FIELDS {
        if let Some(Value::String(text)) = fields.get_mut(name) {
            if let Some((clean, n)) = crate::scrub::scrub_text(text) {
                *text = clean;
                replaced += n;
            }
        }
    }
    replaced
}

/// Longest value of a [`SCRUBBED_FIELDS`] field kept, in bytes: a task's arguments or result
/// can be megabytes (a whole CSV passed by value), and every event of the task carries them.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// The field naming the fields cut to [`MAX_FIELD_BYTES`] (`["args", "result"]`).
pub const TRUNCATED_FIELD: &str = "truncated";

/// Cuts an event's [`SCRUBBED_FIELDS`] to [`MAX_FIELD_BYTES`] (ending with the log message's
/// truncation marker; values that are not text are cut as their JSON text) and lists the cut
/// ones in [`TRUNCATED_FIELD`]; answers how many were cut. Run before scrubbing, so a 10 MB
/// argument is not scanned whole.
pub fn cap_fields(fields: &mut Map<String, Value>) -> usize {
    let mut cut = Vec::new();
    for name in SCRUBBED_FIELDS {
        let Some(value) = fields.get_mut(name) else {
            continue;
        };
        let text = match &mut *value {
            Value::String(text) if text.len() > MAX_FIELD_BYTES => std::mem::take(text),
            Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => continue,
            other => {
                let text = other.to_string();
                if text.len() <= MAX_FIELD_BYTES {
                    continue;
                }
                text
            }
        };
        *value = Value::String(crate::log::truncate_text(text, MAX_FIELD_BYTES));
        cut.push(Value::String(name.to_string()));
    }
    let n = cut.len();
    if n > 0 {
        fields.insert(TRUNCATED_FIELD.into(), Value::Array(cut));
    }
    n
}

/// A worker is offline when no heartbeat came for twice its heartbeat interval (Flower and
/// Celery's own event state use the same rule).
pub fn worker_alive(last_heartbeat_ms: i64, freq_s: f64, now_ms: i64) -> bool {
    let freq_ms = (freq_s.max(0.5) * 1000.0) as i64;
    now_ms - last_heartbeat_ms <= 2 * freq_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_cut_and_named() {
        let mut fields = Map::new();
        fields.insert("args".into(), Value::String("a".repeat(10 << 20)));
        fields.insert(
            "kwargs".into(),
            serde_json::json!({"rows": vec!["é"; 100_000]}),
        );
        fields.insert("result".into(), Value::String("short".into()));
        fields.insert("name".into(), Value::String("x".repeat(100_000)));
        assert_eq!(cap_fields(&mut fields), 2);
        for name in ["args", "kwargs"] {
            let text = fields[name].as_str().unwrap();
            assert!(text.len() <= MAX_FIELD_BYTES, "{name}");
            assert!(text.ends_with(crate::log::TRUNCATION_MARKER), "{name}");
        }
        assert_eq!(fields["result"], "short");
        assert_eq!(
            fields["name"].as_str().unwrap().len(),
            100_000,
            "not a capped field"
        );
        assert_eq!(
            fields[TRUNCATED_FIELD],
            serde_json::json!(["args", "kwargs"])
        );
    }

    #[test]
    fn states_merge_in_celery_s_order() {
        use TaskState::*;
        let ev = |k| TaskState::of_event(k).unwrap();
        // In order.
        assert!(Pending.replaced_by(&ev("task-received")));
        assert!(Received.replaced_by(&ev("task-started")));
        assert!(Started.replaced_by(&ev("task-succeeded")));
        // Late arrivals do not undo a finished or later state.
        assert!(!Success.replaced_by(&ev("task-started")));
        assert!(!Started.replaced_by(&ev("task-received")));
        assert!(!Failure.replaced_by(&ev("task-sent")));
        // A retry starts again, and anything follows a retry.
        assert!(Started.replaced_by(&Retry));
        assert!(Retry.replaced_by(&ev("task-received")));
        // Custom states sit between finished and revoked.
        assert!(Started.replaced_by(&TaskState::parse("SENDING")));
        assert!(!Success.replaced_by(&TaskState::parse("SENDING")));
        assert_eq!(TaskState::of_event("task-progress"), None);
        assert_eq!(TaskState::parse("SENDING").as_str(), "SENDING");
        assert!(Revoked.is_ready() && !Retry.is_ready());
        assert_eq!(Failure.job_status(), JobStatus::Failed);
        assert_eq!(Received.job_status(), JobStatus::Pending);
    }

    fn fields(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_task_s_events_in_any_order_tell_the_same_story() {
        let events = [
            (
                "task-sent",
                "gen1@web",
                1_000,
                r#"{"name": "shop.send", "args": "(5,)", "kwargs": "{}", "queue": "mail", "root_id": "t1"}"#,
            ),
            (
                "task-received",
                "celery@w1",
                1_010,
                r#"{"name": "shop.send", "args": "(5,)", "retries": 0}"#,
            ),
            ("task-started", "celery@w1", 1_020, "{}"),
            (
                "task-progress",
                "celery@w1",
                1_030,
                r#"{"current": 3, "total": 5}"#,
            ),
            (
                "task-succeeded",
                "celery@w1",
                1_090,
                r#"{"result": "5", "runtime": 0.07}"#,
            ),
        ];
        let play = |order: &[usize]| {
            let mut task = Task::new(ProjectId(1), "t1", Timestamp(0));
            for &i in order {
                let (kind, host, at, json) = events[i];
                task.apply(kind, host, Timestamp(at), &fields(json));
            }
            task
        };
        let in_order = play(&[0, 1, 2, 3, 4]);
        assert_eq!(in_order.state, TaskState::Success);
        assert_eq!(in_order.name.as_deref(), Some("shop.send"));
        assert_eq!(in_order.worker.as_deref(), Some("celery@w1"));
        assert_eq!(in_order.queue.as_deref(), Some("mail"));
        assert_eq!(in_order.result.as_deref(), Some("5"));
        assert_eq!(in_order.progress, Some((3, Some(5))));
        assert_eq!(in_order.runtime, Some(0.07));
        assert_eq!(
            (in_order.sent_at, in_order.started_at, in_order.finished_at),
            (
                Some(Timestamp(1_000)),
                Some(Timestamp(1_020)),
                Some(Timestamp(1_090))
            )
        );
        let shuffled = play(&[4, 2, 0, 3, 1]);
        assert_eq!(shuffled, in_order);
        // A retry starts the task again; a failure after it finishes it.
        let mut retried = play(&[0, 1, 2]);
        retried.apply(
            "task-retried",
            "celery@w1",
            Timestamp(1_100),
            &fields(r#"{"exception": "SMTPServerDisconnected()"}"#),
        );
        assert_eq!(retried.state, TaskState::Retry);
        retried.apply(
            "task-received",
            "celery@w2",
            Timestamp(1_200),
            &fields(r#"{"retries": 1}"#),
        );
        retried.apply(
            "task-failed",
            "celery@w2",
            Timestamp(1_300),
            &fields(r#"{"exception": "KeyError('BE')"}"#),
        );
        assert_eq!(
            (retried.state.clone(), retried.retries),
            (TaskState::Failure, 1)
        );
        assert_eq!(retried.worker.as_deref(), Some("celery@w2"));
        assert_eq!(retried.state.job_status(), JobStatus::Failed);
        // The result backend's PROGRESS moves the bar, not the state.
        let mut running = play(&[0, 1, 2]);
        running.apply_backend_state(
            "PROGRESS",
            Some((40, Some(100))),
            Some("invoice 40"),
            Timestamp(1_500),
        );
        assert_eq!(running.progress_description.as_deref(), Some("invoice 40"));
        assert_eq!(
            (running.state.clone(), running.progress),
            (TaskState::Started, Some((40, Some(100))))
        );
    }

    #[test]
    fn a_failed_task_has_a_runtime_and_a_retried_one_is_not_its_own_parent() {
        let mut t = Task::new(ProjectId(1), "t-1", Timestamp(0));
        t.apply(
            "task-received",
            "w1",
            Timestamp(1_000),
            &fields(r#"{"name": "send", "parent_id": "t-1", "root_id": "t-1"}"#),
        );
        t.apply("task-started", "w1", Timestamp(2_000), &Map::new());
        t.apply(
            "task-retried",
            "w1",
            Timestamp(2_500),
            &fields(r#"{"exception": "SMTPServerDisconnected()", "traceback": "Traceback…"}"#),
        );
        assert_eq!(
            t.parent_id, None,
            "a retry names the task itself as its parent"
        );
        t.apply("task-started", "w1", Timestamp(7_000), &Map::new());
        t.apply(
            "task-succeeded",
            "w1",
            Timestamp(7_400),
            &fields(r#"{"result": "'sent'", "runtime": 0.4}"#),
        );
        assert_eq!(t.state, TaskState::Success);
        assert_eq!(
            (t.exception.as_deref(), t.traceback.as_deref()),
            (None, None)
        );
        assert_eq!(t.runtime, Some(0.4));

        let mut failed = Task::new(ProjectId(1), "t-2", Timestamp(0));
        failed.apply("task-started", "w1", Timestamp(2_000), &Map::new());
        failed.apply(
            "task-failed",
            "w1",
            Timestamp(3_250),
            &fields(r#"{"exception": "KeyError('x')"}"#),
        );
        assert_eq!(failed.runtime, Some(1.25), "from start to end");
        assert_eq!(failed.exception.as_deref(), Some("KeyError('x')"));
    }

    #[test]
    fn the_search_box() {
        let s =
            TaskSearch::parse(r#"name:shop.send state:failure args:"INV 7" smtp timeout"#).unwrap();
        assert_eq!(s.name.as_deref(), Some("shop.send"));
        assert_eq!(s.state.as_deref(), Some("FAILURE"));
        assert_eq!(s.args.as_deref(), Some("INV 7"));
        assert_eq!(s.words, ["smtp", "timeout"]);
        assert_eq!(TaskSearch::parse("").unwrap(), TaskSearch::default());
        assert!(TaskSearch::parse("queue:mail")
            .unwrap_err()
            .contains("not a filter"));
        // A colon inside a value or a URL-like word is not a filter.
        assert_eq!(TaskSearch::parse("http://x").unwrap().words, ["http://x"]);
    }

    #[test]
    fn workers_come_and_go() {
        let beat = fields(
            r#"{"freq": 2.0, "active": 1, "processed": 7, "loadavg": [0.5, 0.4, 0.3], "sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux"}"#,
        );
        let mut w = Worker::new(ProjectId(1), "celery@w1", Timestamp(0));
        w.apply("worker-heartbeat", Timestamp(10_000), &beat);
        assert!(w.online(Timestamp(14_000)) && !w.online(Timestamp(14_001)));
        assert_eq!(
            (w.processed, w.loadavg.len(), w.sw_ver.as_deref()),
            (7, 3, Some("5.7.0"))
        );
        w.apply("worker-offline", Timestamp(15_000), &Map::new());
        assert!(!w.online(Timestamp(15_000)));
        w.apply("worker-online", Timestamp(20_000), &Map::new());
        assert!(w.online(Timestamp(20_000)));
        assert_eq!(w.online_since, Timestamp(20_000));
        w.apply("worker-heartbeat", Timestamp(22_000), &beat);
        assert_eq!(
            w.online_since,
            Timestamp(20_000),
            "on time: the same period"
        );
        w.apply("worker-heartbeat", Timestamp(30_000), &beat);
        assert_eq!(
            w.online_since,
            Timestamp(30_000),
            "silent 8 s: a new period"
        );
    }

    #[test]
    fn arguments_are_scrubbed_like_events() {
        let mut f = fields(
            r#"{"args": "('alice', 4111 1111 1111 1111)", "kwargs": "{'password': 'hunter2', 'to': 'bob'}", "name": "password_reset"}"#,
        );
        assert_eq!(scrub_fields(&mut f), 2);
        assert_eq!(f["args"], "('alice', [Filtered])");
        assert_eq!(f["kwargs"], "{'password': '[Filtered]', 'to': 'bob'}");
        assert_eq!(f["name"], "password_reset", "names are not data");
    }

    #[test]
    fn workers_go_offline_after_two_missed_heartbeats() {
        assert!(worker_alive(0, 2.0, 4_000));
        assert!(!worker_alive(0, 2.0, 4_001));
        assert!(
            worker_alive(0, 0.0, 1_000),
            "a zero interval counts as half a second"
        );
    }
}
