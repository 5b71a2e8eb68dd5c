//! Each Celery task shown as a Job: kind `celery`, the task id as the job id, the task name as
//! its name, its queue as the application and its worker as who launched it.
//!
//! The job is created once the task's name is known (`task-sent` or `task-received`; progress
//! reported before is applied then), started when the task starts, moved by its progress
//! (`task-progress` events or the result backend's PROGRESS), and finished with its end — so
//! the Jobs page, live progress bars and job alerts work for Celery tasks unchanged. The store
//! applies these updates in the same transaction as the events.

use super::{Task, TaskState};
use crate::job::{Count, Job, JobError, JobUpdate, NewJob, Progress};
use crate::JobStatus;

/// A running task is not called stalled by the job sweep: Celery tasks report no heartbeat of
/// their own (their worker does), and long tasks are normal.
pub const STALL_AFTER_MS: i64 = 24 * 3_600_000;

/// The job kind of Celery tasks.
pub const JOB_KIND: &str = "celery";

impl Task {
    /// The task's new Job; `None` while its name is unknown.
    pub fn new_job(&self) -> Option<Result<Job, JobError>> {
        let name = self.name.clone()?;
        let new = NewJob {
            project: self.project,
            id: Some(self.uuid.clone()),
            name,
            kind: Some(JOB_KIND.into()),
            application: self.queue.clone(),
            flow: None,
            launched_by: self.worker.clone(),
            total: self.progress.and_then(|p| p.1),
            stall_after_ms: Some(STALL_AFTER_MS),
            meta: None,
            start: self.state.job_status() != JobStatus::Pending,
        };
        let first_seen = self
            .sent_at
            .or(self.received_at)
            .or(self.started_at)
            .unwrap_or(self.updated_at);
        Some(Job::create(&new, self.uuid.clone(), first_seen))
    }

    /// What brings `job` up to date with the task; nothing once the job is finished.
    pub fn job_updates(&self, job: &Job) -> Vec<JobUpdate> {
        let mut updates = Vec::new();
        if job.finished_at.is_some() {
            return updates;
        }
        let status = self.state.job_status();
        if job.status == JobStatus::Pending && status != JobStatus::Pending {
            updates.push(JobUpdate::Start);
        }
        if let Some((current, total)) = self.progress {
            // A total below what is done reads as a finished bar: the count wins.
            let total = total.map(|t| t.max(current));
            // What the task says it is doing becomes the job's message, once per change.
            let said = self
                .progress_description
                .as_ref()
                .filter(|d| job.message.as_ref() != Some(*d));
            if current != job.processed || (total.is_some() && total != job.total) || said.is_some()
            {
                updates.push(JobUpdate::Progress(Progress {
                    processed: Some(Count::Set(current)),
                    failed: None,
                    total,
                    messages: said.into_iter().cloned().collect(),
                }));
            }
        }
        if self.state.is_ready() || self.state == TaskState::Rejected {
            updates.push(JobUpdate::Finish {
                status,
                messages: vec![self.ending()],
            });
        }
        updates
    }

    /// The job's last message: how the task ended.
    fn ending(&self) -> String {
        let runtime = self
            .runtime
            .map(|s| format!(" in {s:.2} s"))
            .unwrap_or_default();
        match (&self.state, &self.exception, &self.result) {
            (TaskState::Failure, Some(exception), _) => format!("FAILURE{runtime}: {exception}"),
            (TaskState::Success, _, Some(result)) => {
                let result: String = result.chars().take(200).collect();
                format!("SUCCESS{runtime}: {result}")
            }
            (state, _, _) => format!("{state}{runtime}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProjectId, Timestamp};

    fn task(state: TaskState) -> Task {
        let mut t = Task::new(ProjectId(1), "u-1", Timestamp(1_000));
        t.state = state;
        t
    }

    #[test]
    fn no_job_until_the_name_is_known() {
        let mut t = task(TaskState::Started);
        assert!(t.new_job().is_none());
        t.name = Some("shop.send".into());
        t.queue = Some("mail".into());
        t.progress = Some((3, Some(10)));
        let job = t.new_job().unwrap().unwrap();
        assert_eq!(job.id, "u-1");
        assert_eq!(job.kind.as_deref(), Some(JOB_KIND));
        assert_eq!(job.application.as_deref(), Some("mail"));
        assert_eq!(job.total, Some(10));
        assert_eq!(job.status, JobStatus::Running);
    }

    #[test]
    fn updates_start_move_and_finish_the_job_once() {
        let mut t = task(TaskState::Received);
        t.name = Some("shop.send".into());
        let mut job = t.new_job().unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Pending);
        assert!(t.job_updates(&job).is_empty());

        t.state = TaskState::Started;
        t.progress = Some((5, Some(3)));
        let updates = t.job_updates(&job);
        assert_eq!(updates[0], JobUpdate::Start);
        for u in &updates {
            job.apply(u, Timestamp(2_000)).unwrap();
        }
        assert_eq!(
            (job.processed, job.total),
            (5, Some(5)),
            "total raised to the count"
        );

        // What celery-progress says it is doing is the job's message, once per change.
        t.progress_description = Some("invoice 5 of 5".into());
        let updates = t.job_updates(&job);
        assert!(
            matches!(&updates[..], [JobUpdate::Progress(p)] if p.messages == ["invoice 5 of 5"]),
            "{updates:?}"
        );
        for u in &updates {
            job.apply(u, Timestamp(2_500)).unwrap();
        }
        assert_eq!(job.message.as_deref(), Some("invoice 5 of 5"));
        assert!(t.job_updates(&job).is_empty(), "said once");

        t.state = TaskState::Failure;
        t.exception = Some("ValueError('x')".into());
        t.runtime = Some(1.5);
        let updates = t.job_updates(&job);
        assert_eq!(
            updates,
            vec![JobUpdate::Finish {
                status: JobStatus::Failed,
                messages: vec!["FAILURE in 1.50 s: ValueError('x')".into()]
            }]
        );
        job.apply(&updates[0], Timestamp(3_000)).unwrap();
        assert!(
            t.job_updates(&job).is_empty(),
            "a finished job takes nothing"
        );
    }
}
