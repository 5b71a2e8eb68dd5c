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

use crate::JobStatus;
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
