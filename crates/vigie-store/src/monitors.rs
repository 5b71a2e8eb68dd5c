//! Cron and heartbeat monitors and their runs, written once for both backends (see
//! [`crate::tx::Tx`]); the rules (schedules, margins, states) are `vigie_core::monitor`'s.
//!
//! ```text
//! check-in (SDK item or ping URL)
//!   -> monitor upserted by (project, slug); a monitor_config replaces its configuration
//!   -> run opened (in_progress), closed (same check-in id, or a ping's latest open run),
//!      or recorded whole (a lone ok / error)
//!   -> state (up / down), last check-in, next expected time
//! periodic check (Store::check_monitors)
//!   -> monitors past next_expected + margin: a `missed` run, state down, next expected moved on
//!   -> runs in progress past max_runtime: `timed_out`, state down
//! ```
//!
//! Every change comes back as a [`RunChange`] so the server can mirror the run as a Job, tell
//! live pages and evaluate alerts.

use crate::feed::{self, FeedChange};
use crate::sql::{Columns, Value};
use crate::tx::Tx;
use crate::{Result, StoreError};
use serde::Serialize;
use vigie_core::monitor::{self, Finding, MonitorConfig, MonitorState, RunStatus};
use vigie_core::schedule::{IntervalUnit, Schedule};
use vigie_core::{ProjectId, Timestamp};

/// Longest ping output kept (a script's last words, not its whole log).
pub const MAX_OUTPUT_BYTES: usize = 10_000;

/// A monitor as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    pub id: i64,
    pub project: ProjectId,
    pub slug: String,
    /// `None` until an SDK sends a `monitor_config` (or someone sets one): such a monitor
    /// records runs but is never missed.
    pub config: Option<MonitorConfig>,
    /// The stored state: new, up or down.
    pub state: MonitorState,
    pub paused: bool,
    pub next_expected: Option<Timestamp>,
    pub last_check_in: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl Monitor {
    /// The state to show at `now` (late and paused derived).
    pub fn state_at(&self, now: Timestamp) -> MonitorState {
        let expected = self.config.as_ref().and(self.next_expected);
        monitor::shown_state(self.state, self.paused, expected, now)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonitorRun {
    pub id: i64,
    pub monitor_id: i64,
    pub check_in_id: String,
    pub status: RunStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub duration_ms: Option<f64>,
    pub environment: Option<String>,
    pub output: Option<String>,
    pub job_id: Option<String>,
}

/// A check-in, from an SDK or a ping.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckInReport {
    pub slug: String,
    /// The SDK's check-in id; pings have none (a finishing ping closes the latest open run).
    pub check_in_id: Option<String>,
    /// `InProgress`, `Ok` or `Error`.
    pub status: RunStatus,
    pub duration_ms: Option<f64>,
    pub environment: Option<String>,
    pub output: Option<String>,
    pub config: Option<MonitorConfig>,
    pub at: Timestamp,
}

/// A run that changed, with its monitor after the change and the state shown before it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunChange {
    pub monitor: Monitor,
    pub run: MonitorRun,
    pub previous_state: MonitorState,
}

const MONITOR_COLS: &str = "id, project_id, slug, schedule_kind, schedule_value, schedule_unit, \
     timezone, checkin_margin_min, max_runtime_min, state, paused, next_expected, last_check_in, \
     created_at";

const RUN_COLS: &str = "id, monitor_id, check_in_id, status, started_at, finished_at, \
     duration_ms, environment, output, job_id";

fn state_from(text: &str) -> MonitorState {
    match text {
        "up" => MonitorState::Up,
        "down" => MonitorState::Down,
        _ => MonitorState::New,
    }
}

fn monitor_from(row: &Vec<Value>) -> Result<Monitor> {
    let kind = row.text(3)?;
    let value = row.text(4)?.unwrap_or_default();
    let timezone = row.req_text(6)?;
    let schedule = match kind.as_deref() {
        Some("crontab") => Some(Schedule::crontab(&value, &timezone)),
        Some("interval") => Some(
            IntervalUnit::parse(&row.text(5)?.unwrap_or_default())
                .and_then(|unit| Schedule::interval(value.parse().unwrap_or(0), unit)),
        ),
        _ => None,
    }
    .transpose()
    .map_err(|e| StoreError::database(format!("unreadable monitor schedule: {e}")))?;
    Ok(Monitor {
        id: row.req_int(0)?,
        project: ProjectId(row.req_int(1)?),
        slug: row.req_text(2)?,
        config: schedule.map(|schedule| MonitorConfig {
            schedule,
            checkin_margin_min: row.req_int(7).unwrap_or(1) as u32,
            max_runtime_min: row.req_int(8).unwrap_or(30) as u32,
        }),
        state: state_from(&row.req_text(9)?),
        paused: row.req_int(10)? != 0,
        next_expected: row.int(11)?.map(Timestamp),
        last_check_in: row.int(12)?.map(Timestamp),
        created_at: Timestamp(row.req_int(13)?),
    })
}

fn run_from(row: &Vec<Value>) -> Result<MonitorRun> {
    let status = row.req_text(3)?;
    Ok(MonitorRun {
        id: row.req_int(0)?,
        monitor_id: row.req_int(1)?,
        check_in_id: row.req_text(2)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::database(format!("unknown run status {status:?}")))?,
        started_at: Timestamp(row.req_int(4)?),
        finished_at: row.int(5)?.map(Timestamp),
        duration_ms: row.real(6)?,
        environment: row.text(7)?,
        output: row.text(8)?,
        job_id: row.text(9)?,
    })
}

/// The stored columns of a schedule: kind, value, unit, time zone.
fn schedule_columns(schedule: &Schedule) -> (&'static str, String, Option<&'static str>, String) {
    match schedule {
        Schedule::Crontab { cron, timezone } => {
            ("crontab", cron.to_string(), None, timezone.clone())
        }
        Schedule::Interval { every, unit } => (
            "interval",
            every.to_string(),
            Some(unit.as_str()),
            "UTC".into(),
        ),
    }
}

async fn monitor_by_slug(
    tx: &mut dyn Tx,
    project: ProjectId,
    slug: &str,
    lock: bool,
) -> Result<Option<Monitor>> {
    let sql = format!(
        "SELECT {MONITOR_COLS} FROM monitors WHERE project_id = $1 AND slug = $2 {}",
        if lock { tx.lock_rows() } else { "" }
    );
    tx.first_as(&sql, &[project.0.into(), slug.into()], monitor_from)
        .await
}

async fn monitor_by_id(tx: &mut dyn Tx, id: i64) -> Result<Monitor> {
    tx.first_as(
        &format!("SELECT {MONITOR_COLS} FROM monitors WHERE id = $1"),
        &[id.into()],
        monitor_from,
    )
    .await?
    .ok_or_else(|| StoreError::database(format!("monitor {id} vanished")))
}

async fn run_by_id(tx: &mut dyn Tx, id: i64) -> Result<MonitorRun> {
    tx.first_as(
        &format!("SELECT {RUN_COLS} FROM monitor_runs WHERE id = $1"),
        &[id.into()],
        run_from,
    )
    .await?
    .ok_or_else(|| StoreError::database(format!("monitor run {id} vanished")))
}

/// Sets a monitor's configuration (creating the monitor when `slug` is new).
pub(crate) async fn configure_monitor(
    tx: &mut dyn Tx,
    project: ProjectId,
    slug: &str,
    config: &MonitorConfig,
    now: Timestamp,
) -> Result<Monitor> {
    validate_slug(slug)?;
    let monitor = upsert(tx, project, slug, Some(config), now).await?;
    Ok(monitor)
}

fn validate_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: "slug",
            message: format!(
                "\"{slug}\" is not a monitor slug: 1 to 64 letters, digits, '-', '_' or '.'"
            ),
        })
    }
}

/// The monitor `slug` of `project`, created if new; its configuration replaced when `config`
/// is given (the next expected time then follows the new schedule).
async fn upsert(
    tx: &mut dyn Tx,
    project: ProjectId,
    slug: &str,
    config: Option<&MonitorConfig>,
    now: Timestamp,
) -> Result<Monitor> {
    let existing = monitor_by_slug(tx, project, slug, true).await?;
    let id = match existing {
        Some(m) => m.id,
        None => tx
            .query(
                "INSERT INTO monitors (project_id, slug, timezone, checkin_margin_min, \
                 max_runtime_min, state, paused, created_at) \
                 VALUES ($1, $2, 'UTC', $3, $4, 'new', 0, $5) RETURNING id",
                &[
                    project.0.into(),
                    slug.into(),
                    i64::from(MonitorConfig::DEFAULT_MARGIN_MIN).into(),
                    i64::from(MonitorConfig::DEFAULT_MAX_RUNTIME_MIN).into(),
                    now.millis().into(),
                ],
            )
            .await?
            .first()
            .ok_or_else(|| StoreError::database("the monitor insert returned no row"))?
            .req_int(0)?,
    };
    if let Some(config) = config {
        let before = monitor_by_id(tx, id).await?;
        let (kind, value, unit, timezone) = schedule_columns(&config.schedule);
        // A new schedule: expect the next run from the last check-in (or from now).
        let changed = before.config.as_ref() != Some(config);
        let next = if changed {
            config
                .schedule
                .next_after(before.last_check_in.unwrap_or(now))
                .map(Timestamp::millis)
        } else {
            before.next_expected.map(Timestamp::millis)
        };
        tx.execute(
            "UPDATE monitors SET schedule_kind = $1, schedule_value = $2, schedule_unit = $3, \
             timezone = $4, checkin_margin_min = $5, max_runtime_min = $6, next_expected = $7 \
             WHERE id = $8",
            &[
                kind.into(),
                value.as_str().into(),
                unit.into(),
                timezone.as_str().into(),
                i64::from(config.checkin_margin_min).into(),
                i64::from(config.max_runtime_min).into(),
                next.into(),
                id.into(),
            ],
        )
        .await?;
    }
    monitor_by_id(tx, id).await
}

/// Records a check-in: the monitor upserted, the run opened, closed or recorded whole, the
/// monitor's state and next expected time updated.
pub(crate) async fn record_check_in(
    tx: &mut dyn Tx,
    project: ProjectId,
    report: &CheckInReport,
) -> Result<RunChange> {
    validate_slug(&report.slug)?;
    let at = report.at;
    let before = upsert(tx, project, &report.slug, report.config.as_ref(), at).await?;
    let previous_state = before.state_at(at);
    let open = match &report.check_in_id {
        Some(id) => {
            tx.first_as(
                &format!(
                    "SELECT {RUN_COLS} FROM monitor_runs WHERE monitor_id = $1 \
                     AND check_in_id = $2"
                ),
                &[before.id.into(), id.as_str().into()],
                run_from,
            )
            .await?
        }
        // A ping that finishes closes the run its `/start` opened.
        None if report.status != RunStatus::InProgress => {
            tx.first_as(
                &format!(
                    "SELECT {RUN_COLS} FROM monitor_runs WHERE monitor_id = $1 \
                     AND status = 'in_progress' ORDER BY started_at DESC LIMIT 1"
                ),
                &[before.id.into()],
                run_from,
            )
            .await?
        }
        None => None,
    };
    let output = report.output.as_deref().map(truncate_output);
    let run_id = match open {
        Some(run) if run.status == RunStatus::InProgress => {
            let duration = report
                .duration_ms
                .or(Some((at.millis() - run.started_at.millis()).max(0) as f64))
                .filter(|_| report.status != RunStatus::InProgress);
            tx.execute(
                "UPDATE monitor_runs SET status = $1, finished_at = $2, duration_ms = $3, \
                 environment = COALESCE($4, environment), output = COALESCE($5, output) \
                 WHERE id = $6",
                &[
                    report.status.as_str().into(),
                    (report.status != RunStatus::InProgress)
                        .then_some(at)
                        .into(),
                    duration.into(),
                    report.environment.as_deref().into(),
                    output.as_deref().into(),
                    run.id.into(),
                ],
            )
            .await?;
            run.id
        }
        // The same check-in id again after its run ended: a retried request, nothing new.
        Some(run) => {
            return Ok(RunChange {
                run,
                monitor: before,
                previous_state,
            })
        }
        None => {
            let finished = report.status != RunStatus::InProgress;
            let started = match (finished, report.duration_ms) {
                (true, Some(ms)) => Timestamp(at.millis() - ms as i64),
                _ => at,
            };
            let check_in_id = report
                .check_in_id
                .clone()
                .unwrap_or_else(|| format!("ping-{}", at.millis()));
            tx.query(
                "INSERT INTO monitor_runs (monitor_id, check_in_id, status, started_at, \
                 finished_at, duration_ms, environment, output) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (monitor_id, check_in_id) DO NOTHING RETURNING id",
                &[
                    before.id.into(),
                    check_in_id.as_str().into(),
                    report.status.as_str().into(),
                    started.millis().into(),
                    finished.then_some(at).into(),
                    (if finished {
                        report.duration_ms.or(Some(0.0))
                    } else {
                        None
                    })
                    .into(),
                    report.environment.as_deref().into(),
                    output.as_deref().into(),
                ],
            )
            .await?
            .first()
            .ok_or_else(|| StoreError::Invalid {
                field: "check_in_id",
                message: format!("check-in {check_in_id} was recorded at the same moment"),
            })?
            .req_int(0)?
        }
    };
    let state = if report.status == RunStatus::InProgress {
        before.state
    } else {
        report.status.state_after()
    };
    let next = before
        .config
        .as_ref()
        .and_then(|c| monitor::next_expected(c, at));
    tx.execute(
        "UPDATE monitors SET state = $1, last_check_in = $2, next_expected = $3 WHERE id = $4",
        &[
            state.as_str().into(),
            at.millis().into(),
            next.into(),
            before.id.into(),
        ],
    )
    .await?;
    let change = RunChange {
        monitor: monitor_by_id(tx, before.id).await?,
        run: run_by_id(tx, run_id).await?,
        previous_state,
    };
    to_feed(tx, &change, at).await?;
    Ok(change)
}

/// Records on the change feed a run that alerts can be about: one that ended badly, or well
/// after the monitor was down.
async fn to_feed(tx: &mut dyn Tx, change: &RunChange, at: Timestamp) -> Result<()> {
    let run = &change.run;
    let worth = match run.status {
        RunStatus::Error | RunStatus::Missed | RunStatus::TimedOut => true,
        RunStatus::Ok => change.previous_state == MonitorState::Down,
        RunStatus::InProgress => false,
    };
    if !worth {
        return Ok(());
    }
    let entry = FeedChange::MonitorRun {
        slug: change.monitor.slug.clone(),
        run: run.id,
        status: run.status,
        previous: change.previous_state,
        started_at: run.started_at,
        environment: run.environment.clone(),
        output: run.output.clone(),
    };
    feed::record(tx, change.monitor.project, &entry, at).await
}

fn truncate_output(text: &str) -> String {
    if text.len() <= MAX_OUTPUT_BYTES {
        return text.to_string();
    }
    // Keep the end: a script's last lines say why it stopped.
    let mut start = text.len() - MAX_OUTPUT_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// The periodic check: missed runs and runs past their maximum runtime, as of `now`.
pub(crate) async fn check_monitors(tx: &mut dyn Tx, now: Timestamp) -> Result<Vec<RunChange>> {
    let mut changes = Vec::new();
    // Margins are at least a minute, so nothing expected in the last minute can be missed.
    let due = tx
        .all(
            &format!(
                "SELECT {MONITOR_COLS} FROM monitors WHERE paused = 0 \
                 AND next_expected < $1 ORDER BY id {}",
                tx.lock_rows()
            ),
            &[(now.millis() - 60_000).into()],
            monitor_from,
        )
        .await?;
    for m in due {
        let Some(config) = &m.config else { continue };
        let Some(Finding::Missed { expected_at, next }) =
            monitor::check_missed(config, m.next_expected, now)
        else {
            continue;
        };
        let previous_state = m.state_at(now);
        let id = tx
            .query(
                "INSERT INTO monitor_runs (monitor_id, check_in_id, status, started_at, \
                 finished_at) VALUES ($1, $2, 'missed', $3, $4) \
                 ON CONFLICT (monitor_id, check_in_id) DO NOTHING RETURNING id",
                &[
                    m.id.into(),
                    format!("missed-{}", expected_at.millis()).as_str().into(),
                    expected_at.millis().into(),
                    now.millis().into(),
                ],
            )
            .await?
            .first()
            .map(|r| r.req_int(0))
            .transpose()?;
        tx.execute(
            "UPDATE monitors SET state = 'down', next_expected = $1 WHERE id = $2",
            &[next.into(), m.id.into()],
        )
        .await?;
        if let Some(id) = id {
            let change = RunChange {
                monitor: monitor_by_id(tx, m.id).await?,
                run: run_by_id(tx, id).await?,
                previous_state,
            };
            to_feed(tx, &change, now).await?;
            changes.push(change);
        }
    }
    let open = tx
        .query(
            "SELECT r.id, r.started_at, r.monitor_id FROM monitor_runs r \
                 JOIN monitors m ON m.id = r.monitor_id \
                 WHERE r.status = 'in_progress' AND r.started_at < $1 AND m.paused = 0 \
                 ORDER BY r.id",
            &[(now.millis() - 60_000).into()],
        )
        .await?;
    for row in open {
        let (run_id, started, monitor_id) =
            (row.req_int(0)?, Timestamp(row.req_int(1)?), row.req_int(2)?);
        let m = monitor_by_id(tx, monitor_id).await?;
        if !monitor::timed_out(monitor::max_runtime_ms(m.config.as_ref()), started, now) {
            continue;
        }
        let previous_state = m.state_at(now);
        tx.execute(
            "UPDATE monitor_runs SET status = 'timed_out', finished_at = $1, duration_ms = $2 \
             WHERE id = $3 AND status = 'in_progress'",
            &[
                now.millis().into(),
                Some((now.millis() - started.millis()) as f64).into(),
                run_id.into(),
            ],
        )
        .await?;
        tx.execute(
            "UPDATE monitors SET state = 'down' WHERE id = $1",
            &[monitor_id.into()],
        )
        .await?;
        let change = RunChange {
            monitor: monitor_by_id(tx, monitor_id).await?,
            run: run_by_id(tx, run_id).await?,
            previous_state,
        };
        to_feed(tx, &change, now).await?;
        changes.push(change);
    }
    Ok(changes)
}

pub(crate) async fn list_monitors(tx: &mut dyn Tx, project: ProjectId) -> Result<Vec<Monitor>> {
    tx.all(
        &format!("SELECT {MONITOR_COLS} FROM monitors WHERE project_id = $1 ORDER BY slug"),
        &[project.0.into()],
        monitor_from,
    )
    .await
}

pub(crate) async fn monitor(
    tx: &mut dyn Tx,
    project: ProjectId,
    slug: &str,
) -> Result<Option<Monitor>> {
    monitor_by_slug(tx, project, slug, false).await
}

/// The latest `limit` runs of each monitor in `ids`, newest first.
pub(crate) async fn monitor_runs(
    tx: &mut dyn Tx,
    ids: &[i64],
    limit: u32,
) -> Result<Vec<MonitorRun>> {
    let mut runs = Vec::new();
    for id in ids {
        let rows = tx
            .query(
                &format!(
                    "SELECT {RUN_COLS} FROM monitor_runs WHERE monitor_id = $1 \
                     ORDER BY started_at DESC, id DESC LIMIT {}",
                    limit.clamp(1, 1000)
                ),
                &[(*id).into()],
            )
            .await?;
        for row in &rows {
            runs.push(run_from(row)?);
        }
    }
    Ok(runs)
}

pub(crate) async fn set_run_job(tx: &mut dyn Tx, run: i64, job_id: &str) -> Result<()> {
    tx.execute(
        "UPDATE monitor_runs SET job_id = $1 WHERE id = $2",
        &[job_id.into(), run.into()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_monitor_paused(
    tx: &mut dyn Tx,
    project: ProjectId,
    slug: &str,
    paused: bool,
    now: Timestamp,
) -> Result<Monitor> {
    let m = monitor_by_slug(tx, project, slug, true)
        .await?
        .ok_or(StoreError::NotFound("monitor"))?;
    // Resuming starts the schedule afresh: the time paused is not a string of missed runs.
    let next = if paused {
        m.next_expected
    } else {
        m.config.as_ref().and_then(|c| c.schedule.next_after(now))
    };
    tx.execute(
        "UPDATE monitors SET paused = $1, next_expected = $2 WHERE id = $3",
        &[i64::from(paused).into(), next.into(), m.id.into()],
    )
    .await?;
    monitor_by_id(tx, m.id).await
}

pub(crate) async fn delete_monitor(tx: &mut dyn Tx, project: ProjectId, slug: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM monitor_runs WHERE monitor_id IN \
         (SELECT id FROM monitors WHERE project_id = $1 AND slug = $2)",
        &[project.0.into(), slug.into()],
    )
    .await?;
    let gone = tx
        .execute(
            "DELETE FROM monitors WHERE project_id = $1 AND slug = $2",
            &[project.0.into(), slug.into()],
        )
        .await?;
    crate::sql::found(gone, "monitor")?;
    Ok(())
}

/// Cron monitors and their runs.
#[async_trait::async_trait]
pub trait MonitorStore: Send + Sync {
    /// Sets a monitor's schedule, margin and runtime (creating it if new).
    async fn configure_monitor(
        &self,
        project: ProjectId,
        slug: &str,
        config: &MonitorConfig,
        now: Timestamp,
    ) -> Result<Monitor>;
    /// Records a check-in as a run (see `monitors`).
    async fn record_check_in(
        &self,
        project: ProjectId,
        report: &CheckInReport,
    ) -> Result<RunChange>;
    /// The periodic check: missed and timed-out runs as of `now`.
    async fn check_monitors(&self, now: Timestamp) -> Result<Vec<RunChange>>;
    async fn list_monitors(&self, project: ProjectId) -> Result<Vec<Monitor>>;
    async fn monitor(&self, project: ProjectId, slug: &str) -> Result<Option<Monitor>>;
    /// The latest `limit` runs of each monitor in `ids`, newest first.
    async fn monitor_runs(&self, ids: Vec<i64>, limit: u32) -> Result<Vec<MonitorRun>>;
    /// Remembers the Job a run is shown as.
    async fn set_run_job(&self, run: i64, job_id: &str) -> Result<()>;
    async fn set_monitor_paused(
        &self,
        project: ProjectId,
        slug: &str,
        paused: bool,
        now: Timestamp,
    ) -> Result<Monitor>;
    async fn delete_monitor(&self, project: ProjectId, slug: &str) -> Result<()>;
}

#[async_trait::async_trait]
impl<E: crate::engine::Engine> MonitorStore for crate::engine::Db<E> {
    async fn configure_monitor(
        &self,
        project: ProjectId,
        slug: &str,
        config: &MonitorConfig,
        now: Timestamp,
    ) -> Result<Monitor> {
        let slug = slug.to_string();
        let config = config.clone();
        self.write("configure_monitor", move |tx| {
            Box::pin(async move { configure_monitor(tx, project, &slug, &config, now).await })
        })
        .await
    }

    async fn record_check_in(
        &self,
        project: ProjectId,
        report: &CheckInReport,
    ) -> Result<RunChange> {
        let report = report.clone();
        self.write("record_check_in", move |tx| {
            Box::pin(async move { record_check_in(tx, project, &report).await })
        })
        .await
    }

    async fn check_monitors(&self, now: Timestamp) -> Result<Vec<RunChange>> {
        self.write("check_monitors", move |tx| {
            Box::pin(check_monitors(tx, now))
        })
        .await
    }

    async fn list_monitors(&self, project: ProjectId) -> Result<Vec<Monitor>> {
        self.read("list_monitors", move |tx| {
            Box::pin(list_monitors(tx, project))
        })
        .await
    }

    async fn monitor(&self, project: ProjectId, slug: &str) -> Result<Option<Monitor>> {
        let slug = slug.to_string();
        self.read("monitor", move |tx| {
            Box::pin(async move { monitor(tx, project, &slug).await })
        })
        .await
    }

    async fn monitor_runs(&self, ids: Vec<i64>, limit: u32) -> Result<Vec<MonitorRun>> {
        self.read("monitor_runs", move |tx| {
            Box::pin(async move { monitor_runs(tx, &ids, limit).await })
        })
        .await
    }

    async fn set_run_job(&self, run: i64, job_id: &str) -> Result<()> {
        let job_id = job_id.to_string();
        self.write("set_run_job", move |tx| {
            Box::pin(async move { set_run_job(tx, run, &job_id).await })
        })
        .await
    }

    async fn set_monitor_paused(
        &self,
        project: ProjectId,
        slug: &str,
        paused: bool,
        now: Timestamp,
    ) -> Result<Monitor> {
        let slug = slug.to_string();
        self.write("set_monitor_paused", move |tx| {
            Box::pin(async move { set_monitor_paused(tx, project, &slug, paused, now).await })
        })
        .await
    }

    async fn delete_monitor(&self, project: ProjectId, slug: &str) -> Result<()> {
        let slug = slug.to_string();
        self.write("delete_monitor", move |tx| {
            Box::pin(async move { delete_monitor(tx, project, &slug).await })
        })
        .await
    }
}
