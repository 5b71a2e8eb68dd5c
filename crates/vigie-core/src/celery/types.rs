//! Figures per task type over a time range — what Flower's dashboard graphs and what Sidekiq
//! users look at first: how many ran, succeeded, failed, were retried, how long they ran
//! (p50/p95/p99) and how long they waited in the queue (received → started), and the
//! throughput over the range.
//!
//! ```text
//! the tasks that moved in [since, until) (store) ─► figures(tasks, range, buckets)
//!   ─► one TypeFigures per task name (busiest first) + the throughput of all of them
//! ```
//!
//! A task counts in the bucket of its end (or its last move while running). Durations go
//! into [`Sketch`]es (1 % relative error), so any number of tasks costs the same memory.

use super::{Task, TaskState};
use crate::sketch::Sketch;
use crate::Timestamp;

/// One task type over the range.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypeFigures {
    pub name: String,
    /// Tasks seen in the range (running ones too).
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub revoked: u64,
    /// Retries, summed (a task retried twice counts 2).
    pub retries: u64,
    /// Run times of finished tasks, ms.
    pub runtime: Sketch,
    /// From received by a worker to started, ms.
    pub wait: Sketch,
    /// Per bucket: finished tasks, and of them failed.
    pub throughput: Vec<(u64, u64)>,
}

impl TypeFigures {
    /// Failed among finished, `None` before any finished.
    pub fn failure_rate(&self) -> Option<f64> {
        let done = self.succeeded + self.failed;
        (done > 0).then(|| self.failed as f64 / done as f64)
    }
}

/// The range, cut into `buckets` equal parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub since: Timestamp,
    pub until: Timestamp,
    pub buckets: usize,
}

impl Range {
    /// The bucket of a time, `None` outside the range.
    pub fn bucket(&self, at: Timestamp) -> Option<usize> {
        let span = (self.until.millis() - self.since.millis()).max(1);
        let offset = at.millis() - self.since.millis();
        (0..span)
            .contains(&offset)
            .then(|| (offset as i128 * self.buckets as i128 / span as i128) as usize)
    }

    /// When bucket `i` starts.
    pub fn start_of(&self, i: usize) -> Timestamp {
        let span = self.until.millis() - self.since.millis();
        Timestamp(self.since.millis() + span * i as i64 / self.buckets.max(1) as i64)
    }
}

/// Figures per task name (busiest first), and the same for all tasks together (named `""`).
pub fn figures(tasks: &[Task], range: Range) -> (Vec<TypeFigures>, TypeFigures) {
    let mut by_name: std::collections::HashMap<&str, TypeFigures> = Default::default();
    let mut all = TypeFigures {
        throughput: vec![(0, 0); range.buckets],
        ..TypeFigures::default()
    };
    for task in tasks {
        let name = task.name.as_deref().unwrap_or("(unnamed)");
        let one = by_name.entry(name).or_insert_with(|| TypeFigures {
            name: name.to_string(),
            throughput: vec![(0, 0); range.buckets],
            ..TypeFigures::default()
        });
        for figures in [&mut *one, &mut all] {
            add(figures, task, range);
        }
    }
    let mut list: Vec<TypeFigures> = by_name.into_values().collect();
    list.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.name.cmp(&b.name)));
    (list, all)
}

fn add(figures: &mut TypeFigures, task: &Task, range: Range) {
    figures.runs += 1;
    figures.retries += task.retries.max(0) as u64;
    match task.state {
        TaskState::Success => figures.succeeded += 1,
        TaskState::Failure => figures.failed += 1,
        TaskState::Revoked => figures.revoked += 1,
        _ => {}
    }
    if let (Some(runtime), true) = (task.runtime, task.state.is_ready()) {
        if runtime.is_finite() && runtime >= 0.0 {
            figures.runtime.add(runtime * 1000.0);
        }
    }
    if let (Some(received), Some(started)) = (task.received_at, task.started_at) {
        figures
            .wait
            .add((started.millis() - received.millis()).max(0) as f64);
    }
    let finished = matches!(task.state, TaskState::Success | TaskState::Failure);
    if let (true, Some(at)) = (finished, task.finished_at.or(Some(task.updated_at))) {
        if let Some(i) = range.bucket(at) {
            figures.throughput[i].0 += 1;
            if task.state == TaskState::Failure {
                figures.throughput[i].1 += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProjectId;

    fn task(name: &str, state: TaskState, end_ms: i64, runtime: f64, wait_ms: i64) -> Task {
        let mut t = Task::new(ProjectId(1), &format!("{name}-{end_ms}"), Timestamp(end_ms));
        t.name = Some(name.into());
        t.state = state;
        t.runtime = Some(runtime);
        t.received_at = Some(Timestamp(end_ms - 5_000 - wait_ms));
        t.started_at = Some(Timestamp(end_ms - 5_000));
        t.finished_at = Some(Timestamp(end_ms));
        t
    }

    #[test]
    fn each_type_counts_its_runs_times_and_waits() {
        let range = Range {
            since: Timestamp(0),
            until: Timestamp(60_000),
            buckets: 6,
        };
        let mut retried = task("mail.send", TaskState::Success, 15_000, 2.0, 100);
        retried.retries = 2;
        let tasks = vec![
            task("mail.send", TaskState::Success, 5_000, 1.0, 10),
            retried,
            task("mail.send", TaskState::Failure, 15_500, 4.0, 1_000),
            task("report", TaskState::Success, 55_000, 0.5, 0),
            task("report", TaskState::Revoked, 30_000, 0.1, 0),
            {
                let mut running = task("report", TaskState::Started, 59_000, 0.0, 0);
                running.finished_at = None;
                running.runtime = None;
                running
            },
            task("mail.send", TaskState::Success, 61_000, 1.0, 10), // after the range
        ];
        let (types, all) = figures(&tasks, range);
        assert_eq!(
            types.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["mail.send", "report"],
            "busiest first"
        );
        let mail = &types[0];
        assert_eq!(
            (mail.runs, mail.succeeded, mail.failed, mail.retries),
            (4, 3, 1, 2)
        );
        assert_eq!(mail.failure_rate(), Some(0.25));
        assert_eq!(
            mail.throughput,
            [(1, 0), (2, 1), (0, 0), (0, 0), (0, 0), (0, 0)]
        );
        let p50 = mail.runtime.quantile(0.5).unwrap();
        assert!((990.0..=2_020.0).contains(&p50), "{p50}");
        assert!(mail.wait.quantile(0.99).unwrap() > 900.0);
        let report = &types[1];
        assert_eq!(
            (report.runs, report.revoked, report.runtime.count()),
            (3, 1, 2)
        );
        assert_eq!(report.failure_rate(), Some(0.0));
        assert_eq!(all.runs, 7);
        assert_eq!(all.throughput.iter().map(|b| b.0).sum::<u64>(), 4);
        assert_eq!(range.start_of(3), Timestamp(30_000));
        assert_eq!(range.bucket(Timestamp(60_000)), None);
    }
}
