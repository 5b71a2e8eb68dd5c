//! Periodic tasks, seen from outside: Celery's events do not say that beat sent a task, so a
//! task name whose runs come at a steady interval is taken as periodic, and its next run is
//! expected one interval after the last.
//!
//! Steady means: at least [`MIN_RUNS`] runs, and every gap between the recent runs within
//! 10 % (or 2 s, for short intervals) of their median — beat keeps time to well under that,
//! while tasks sent by users or by other tasks come irregularly.

use super::Task;
use crate::Timestamp;
use serde::Serialize;

/// Runs needed before a name is called periodic.
pub const MIN_RUNS: usize = 3;

/// What is known of a periodic task.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Periodic {
    pub name: String,
    /// The steady gap between runs, in milliseconds.
    pub interval_ms: i64,
    /// The last run seen (the task itself: its state, runtime, result).
    pub last: Task,
    pub expected_next: Timestamp,
    /// Runs looked at.
    pub runs: usize,
}

impl Periodic {
    /// Whether the next run is overdue at `now`: half an interval (at least 10 s) past when
    /// it was expected.
    pub fn late(&self, now: Timestamp) -> bool {
        now.millis() > self.expected_next.millis() + (self.interval_ms / 2).max(10_000)
    }
}

/// When a task was sent (or, failing that, first seen).
fn sent(task: &Task) -> Timestamp {
    task.sent_at
        .or(task.received_at)
        .or(task.started_at)
        .unwrap_or(task.updated_at)
}

/// The periodic schedule of `name` from its recent tasks (any order), if they are steady.
pub fn infer(name: &str, recent: &[Task]) -> Option<Periodic> {
    if recent.len() < MIN_RUNS {
        return None;
    }
    let mut runs: Vec<&Task> = recent.iter().collect();
    runs.sort_by_key(|t| sent(t));
    let gaps: Vec<i64> = runs
        .windows(2)
        .map(|w| sent(w[1]).millis() - sent(w[0]).millis())
        .collect();
    let mut sorted = gaps.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    if median < 1_000 {
        return None;
    }
    let slack = (median / 10).max(2_000);
    if gaps.iter().any(|g| (g - median).abs() > slack) {
        return None;
    }
    let last = runs.last().copied()?.clone();
    Some(Periodic {
        name: name.to_string(),
        interval_ms: median,
        expected_next: Timestamp(sent(&last).millis() + median),
        last,
        runs: runs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProjectId;

    fn run(i: usize, at: i64) -> Task {
        let mut t = Task::new(ProjectId(1), &format!("t{i}"), Timestamp(at));
        t.sent_at = Some(Timestamp(at));
        t
    }

    #[test]
    fn steady_runs_are_periodic_and_expect_the_next() {
        // Every 5 minutes, a little jitter, given newest first.
        let runs: Vec<Task> = [0, 300_400, 600_100, 899_900]
            .iter()
            .enumerate()
            .rev()
            .map(|(i, at)| run(i, *at))
            .collect();
        let p = infer("shop.nightly", &runs).unwrap();
        assert_eq!(p.interval_ms, 299_800, "the median gap");
        assert_eq!(p.last.uuid, "t3");
        assert_eq!(p.expected_next, Timestamp(1_199_700));
        assert!(!p.late(Timestamp(1_300_000)));
        assert!(p.late(Timestamp(1_400_000)));
    }

    #[test]
    fn irregular_or_few_runs_are_not() {
        let irregular: Vec<Task> = [0, 1_000, 60_000, 61_000]
            .iter()
            .enumerate()
            .map(|(i, at)| run(i, *at))
            .collect();
        assert!(infer("shop.send", &irregular).is_none());
        let few: Vec<Task> = [0, 60_000]
            .iter()
            .enumerate()
            .map(|(i, at)| run(i, *at))
            .collect();
        assert!(infer("shop.send", &few).is_none());
        let burst: Vec<Task> = (0..5).map(|i| run(i, i as i64 * 10)).collect();
        assert!(
            infer("shop.send", &burst).is_none(),
            "a burst is not a schedule"
        );
    }
}
