//! Each Celery task shown as a Job: kind `celery`, the task id as the job id, the task name as
//! its name, its queue as the application and its worker as who launched it. The job is
//! created once the task's name is known (`task-sent` or `task-received`; progress reported
//! before is applied then), started when the task starts, moved by its progress
//! (`task-progress` events or the result backend's PROGRESS), and finished with its end —
//! so the Jobs page, live progress bars and job alerts work for Celery tasks unchanged.

use crate::http::AppError;
use crate::hub::JobNews;
use crate::state::AppState;
use vigie_core::celery::{Task, TaskState};
use vigie_core::job::{Count, JobUpdate, NewJob, Progress};
use vigie_core::secret::{random_hex, token_hash};
use vigie_core::{Job, JobStatus, Timestamp};

/// A running task is not called stalled by the job sweep: Celery tasks report no heartbeat of
/// their own (their worker does), and long tasks are normal.
const STALL_AFTER_MS: i64 = 24 * 3_600_000;

/// Brings the task's Job up to date; a failure is logged, the task itself is stored.
pub async fn mirror(state: &AppState, task: &Task) {
    if let Err(err) = mirror_task(state, task).await {
        tracing::warn!(%err, task = %task.uuid, "could not update the celery task's job");
    }
}

async fn mirror_task(state: &AppState, task: &Task) -> Result<(), AppError> {
    let (project, id) = (task.project, task.uuid.as_str());
    let status = task.state.job_status();
    let job = match state.store.job(project, id).await? {
        Some(job) => job,
        None => {
            let Some(name) = task.name.clone() else {
                return Ok(());
            };
            let new = NewJob {
                project,
                id: Some(id.to_string()),
                name,
                kind: Some("celery".into()),
                application: task.queue.clone(),
                flow: None,
                launched_by: task.worker.clone(),
                total: task.progress.and_then(|p| p.1),
                stall_after_ms: Some(STALL_AFTER_MS),
                meta: None,
                start: status != JobStatus::Pending,
            };
            let first_seen = task
                .sent_at
                .or(task.received_at)
                .or(task.started_at)
                .unwrap_or(task.updated_at);
            let job = Job::create(&new, id.to_string(), first_seen)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            // Nobody reads a task through a read token: a random one nobody knows.
            let job = state
                .store
                .create_job(&job, &token_hash(&random_hex(20)))
                .await?;
            state
                .hub
                .publish_job(JobNews::new(job.clone(), vec![], vec![]));
            job
        }
    };
    if job.finished_at.is_some() {
        return Ok(());
    }
    let mut updates = Vec::new();
    if job.status == JobStatus::Pending && status != JobStatus::Pending {
        updates.push(JobUpdate::Start);
    }
    if let Some((current, total)) = task.progress {
        if current != job.processed || (total.is_some() && total != job.total) {
            updates.push(JobUpdate::Progress(Progress {
                processed: Some(Count::Set(current)),
                failed: None,
                total,
                messages: Vec::new(),
            }));
        }
    }
    if task.state.is_ready() || task.state == TaskState::Rejected {
        updates.push(JobUpdate::Finish {
            status,
            messages: vec![ending(task)],
        });
    }
    for update in updates {
        let moved = state
            .store
            .update_job(project, id, &update, Timestamp::now())
            .await?;
        state
            .hub
            .publish_job(JobNews::new(moved.job, vec![], moved.messages));
    }
    Ok(())
}

/// The job's last message: how the task ended.
fn ending(task: &Task) -> String {
    let runtime = task
        .runtime
        .map(|s| format!(" in {s:.2} s"))
        .unwrap_or_default();
    match (&task.state, &task.exception, &task.result) {
        (TaskState::Failure, Some(exception), _) => format!("FAILURE{runtime}: {exception}"),
        (TaskState::Success, _, Some(result)) => {
            let result: String = result.chars().take(200).collect();
            format!("SUCCESS{runtime}: {result}")
        }
        (state, _, _) => format!("{state}{runtime}"),
    }
}
