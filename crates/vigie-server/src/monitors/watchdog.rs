//! Vigie watches itself with its own monitors: each periodic task of the System page (the
//! stall sweep, alert evaluation, log upkeep, retention…) is a monitor `vigie-<task>` in the
//! project named by `[watchdog] project` (created if missing), and this loop checks each one
//! in after the task ran again.
//!
//! ```text
//! every REPORT_EVERY: for each task on the TaskBoard
//!   ran since the last report? ─► check-in ok (or error with the task's outcome)
//!   did not run               ─► nothing: the monitor misses its run, goes down, and the
//!                                project's "monitor down" rules alert
//! ```
//!
//! This loop and the monitor check run on their own tasks, apart from the maintenance loop,
//! so a maintenance task that hangs is noticed. The monitor check cannot watch itself: its
//! last run is on the System page.

use crate::config::Config;
use crate::state::AppState;
use std::collections::HashMap;
use std::time::Duration;
use vigie_core::monitor::{MonitorConfig, RunStatus};
use vigie_core::schedule::{IntervalUnit, Schedule};
use vigie_core::{Project, ProjectKey, Timestamp};
use vigie_store::{CheckInReport, StoreError};

/// How often the watchdog reports; tasks that run more often are reported this often.
pub const REPORT_EVERY: Duration = Duration::from_secs(300);
/// The first report, once every task had a chance to run.
const FIRST_REPORT: Duration = Duration::from_secs(30);

/// The monitor of a task: `vigie-stall-sweep`.
pub fn slug(task: &str) -> String {
    format!("vigie-{}", task.replace(' ', "-"))
}

/// A task's monitor: expected every `max(its period, REPORT_EVERY)`, missed after twice that.
fn config(every_seconds: u64) -> MonitorConfig {
    let minutes = every_seconds.max(REPORT_EVERY.as_secs()).div_ceil(60) as u32;
    MonitorConfig {
        checkin_margin_min: minutes,
        ..MonitorConfig::new(Schedule::Interval {
            every: minutes,
            unit: IntervalUnit::Minute,
        })
    }
}

/// Runs until shutdown; does nothing when `[watchdog] project` is empty.
pub async fn run(state: AppState) {
    let Some(name) = own_project_name(&state.config).map(str::to_string) else {
        return;
    };
    let mut reported: HashMap<&'static str, Timestamp> = HashMap::new();
    let mut wait = FIRST_REPORT;
    loop {
        tokio::select! {
            _ = state.hub.shutting_down() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = REPORT_EVERY;
        if let Err(err) = report(&state, &name, &mut reported).await {
            tracing::warn!(%err, "the watchdog could not report Vigie's tasks");
        }
    }
}

/// Checks in every task that ran since its last report.
pub async fn report(
    state: &AppState,
    project: &str,
    reported: &mut HashMap<&'static str, Timestamp>,
) -> Result<usize, StoreError> {
    let project = own_project(state, project).await?;
    let mut sent = 0;
    for task in state.tasks.records() {
        let Some(last_run) = task.last_run else {
            continue;
        };
        if reported.get(task.name).is_some_and(|at| *at >= last_run) {
            continue;
        }
        let ok = task.last_ok.unwrap_or(true);
        let report = CheckInReport {
            slug: slug(task.name),
            check_in_id: None,
            status: if ok { RunStatus::Ok } else { RunStatus::Error },
            duration_ms: task.last_duration_ms,
            environment: None,
            output: Some(format!(
                "{}: {} ({} runs, {} failed since start)",
                task.name, task.last_outcome, task.runs, task.failures
            )),
            config: Some(config(task.every_seconds)),
            at: Timestamp::now(),
        };
        super::record(state, project.id, report).await?;
        reported.insert(task.name, last_run);
        sent += 1;
    }
    Ok(sent)
}

/// The name of Vigie's own project, when the watchdog is on. The start makes it (see
/// `accounts::manage::bootstrap`), so the configuration file's alert rules can name it from
/// the first start.
pub fn own_project_name(config: &Config) -> Option<&str> {
    Some(config.watchdog.project.trim()).filter(|name| !name.is_empty())
}

/// The project Vigie's monitors live in, created the first time.
async fn own_project(state: &AppState, name: &str) -> Result<Project, StoreError> {
    let find = || async {
        Ok::<_, StoreError>(
            state
                .store
                .list_projects()
                .await?
                .into_iter()
                .find(|p| p.name == name),
        )
    };
    if let Some(project) = find().await? {
        return Ok(project);
    }
    match state
        .store
        .create_project(name, &ProjectKey::generate())
        .await
    {
        Ok(project) => Ok(project),
        // Another instance created it a moment ago.
        Err(StoreError::Conflict(_)) => find()
            .await?
            .ok_or_else(|| StoreError::database(format!("project {name} vanished"))),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_expected_at_its_pace_or_every_report() {
        assert_eq!(slug("stall sweep"), "vigie-stall-sweep");
        let fast = config(5);
        assert_eq!(
            fast.schedule,
            Schedule::parse("every 5 minutes", "UTC").unwrap()
        );
        assert_eq!(fast.checkin_margin_min, 5);
        assert_eq!(config(3600).checkin_margin_min, 60);
    }
}
