//! Jobs: the unit of background work, and the rules by which one moves.
//!
//! A [`Job`] is a bulk send, an import, a `vigie job run` command: something with a name, a
//! status, and counters (`total`, `processed`, `failed`, `skipped`). Clients report it through
//! the jobs API; each processed thing may also be recorded as an [`Item`] (a "trace row": the
//! invoice e-mail, its recipient, how long it took, the error if any).
//!
//! Every change to a job is a pure function here — [`Job::apply`] for API updates,
//! [`Job::record_items`] for items, [`Job::mark_stalled`] for the sweep — and the store only
//! loads the row, calls it, and writes the row back in the same transaction. Both backends
//! therefore move jobs by exactly the same rules, and the rules are tested without a database.
//!
//! ```text
//!  pending ──start/progress/items──▶ running ──finish──▶ completed | failed | cancelled
//!                                      │  ▲
//!               no sign of life for    │  │ any later update ("revived", gap recorded)
//!               stall_after            ▼  │
//!                                     stalled ──finish──▶ …
//! ```

use crate::{ProjectId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// How long a running job may stay silent before it turns stalled, unless it says otherwise.
pub const DEFAULT_STALL_AFTER_MS: i64 = 60_000;
/// The speed shown is measured over the last 10–20 s, not since the start: a job that slowed
/// down (an SMTP server throttling) shows it at once.
pub const RATE_WINDOW_MS: i64 = 10_000;

/// Where a job came from. Users list the work they reported (the jobs API, `vigie job run`)
/// by default; the Jobs Vigie makes for Celery tasks and monitor runs are one filter away, so
/// a busy Celery queue or a down one-minute monitor does not push a bulk send off the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobOrigin {
    /// Reported by the application: any kind but Vigie's own two.
    Reported,
    /// A Celery task (kind `celery`).
    Celery,
    /// A monitor's run (kind `monitor`).
    Monitor,
}

impl JobOrigin {
    pub const ALL: [JobOrigin; 3] = [JobOrigin::Reported, JobOrigin::Celery, JobOrigin::Monitor];
    /// The job kind Vigie gives a monitor's runs.
    pub const MONITOR_KIND: &'static str = "monitor";

    /// The origin of a job of this kind.
    pub fn of(kind: Option<&str>) -> JobOrigin {
        match kind {
            Some(crate::celery::JOB_KIND) => JobOrigin::Celery,
            Some(JobOrigin::MONITOR_KIND) => JobOrigin::Monitor,
            _ => JobOrigin::Reported,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobOrigin::Reported => "reported",
            JobOrigin::Celery => "celery",
            JobOrigin::Monitor => "monitor",
        }
    }

    /// The origin a `?origin=` asks for: one of [`JobOrigin::ALL`], or `all` (`None`).
    pub fn parse_filter(text: &str) -> Result<Option<JobOrigin>, String> {
        match text {
            "all" => Ok(None),
            _ => JobOrigin::ALL
                .into_iter()
                .find(|o| o.as_str() == text)
                .map(Some)
                .ok_or_else(|| format!("origin is reported, celery, monitor or all, not {text:?}")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Stalled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Stalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Stalled => "stalled",
        }
    }

    /// Completed, failed and cancelled jobs take no more updates.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Ok,
    Error,
    Skipped,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Ok => "ok",
            ItemStatus::Error => "error",
            ItemStatus::Skipped => "skipped",
        }
    }
}

/// `"running".parse::<JobStatus>()`, with an error that lists the accepted words.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown {what} {given:?}: expected one of {expected}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub given: String,
    pub expected: &'static str,
}

impl FromStr for JobStatus {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownWord {
                what: "job status",
                given: s.to_string(),
                expected: "pending, running, completed, failed, cancelled, stalled",
            })
    }
}

impl FromStr for ItemStatus {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ok" => Ok(ItemStatus::Ok),
            "error" => Ok(ItemStatus::Error),
            "skipped" => Ok(ItemStatus::Skipped),
            _ => Err(UnknownWord {
                what: "item status",
                given: s.to_string(),
                expected: "ok, error, skipped",
            }),
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The processed count at one moment: two of these bound the window the speed is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSample {
    pub at: Timestamp,
    pub processed: i64,
}

/// What a client asks for when it creates a job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewJob {
    pub project: ProjectId,
    /// The client's own id; `None` lets the server make a UUID.
    pub id: Option<String>,
    pub name: String,
    pub kind: Option<String>,
    pub application: Option<String>,
    pub flow: Option<String>,
    pub launched_by: Option<String>,
    pub total: Option<i64>,
    pub stall_after_ms: Option<i64>,
    /// Free JSON object, stored as given.
    pub meta: Option<String>,
    /// Create it already running (the usual case) rather than pending.
    pub start: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The store's row id; not shown to clients.
    pub pk: i64,
    pub project: ProjectId,
    pub id: String,
    pub name: String,
    pub kind: Option<String>,
    pub application: Option<String>,
    pub flow: Option<String>,
    pub launched_by: Option<String>,
    pub status: JobStatus,
    pub total: Option<i64>,
    pub processed: i64,
    pub failed: i64,
    pub skipped: i64,
    pub message: Option<String>,
    pub meta: Option<String>,
    pub stall_after_ms: i64,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    /// The last sign of life: any update, item or heartbeat.
    pub last_update: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// When the sweep found it silent (`None` unless stalled now).
    pub stalled_since: Option<Timestamp>,
    /// Silence accumulated by stalls the job came back from.
    pub stalled_ms: i64,
    pub rate_old: Option<RateSample>,
    pub rate_new: RateSample,
    pub summary: Option<Summary>,
}

/// A change a client reports through the API.
#[derive(Clone, Debug, PartialEq)]
pub enum JobUpdate {
    Start,
    Progress(Progress),
    Heartbeat {
        messages: Vec<String>,
    },
    Finish {
        status: JobStatus,
        messages: Vec<String>,
    },
}

/// A counter given as a new value or as an amount to add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    Set(i64),
    Add(i64),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub processed: Option<Count>,
    pub failed: Option<Count>,
    pub total: Option<i64>,
    /// Lines for the message feed; the last becomes the job's message.
    pub messages: Vec<String>,
}

/// Items just stored for a job, by status (duplicates already left out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemCounts {
    pub ok: i64,
    pub error: i64,
    pub skipped: i64,
}

impl ItemCounts {
    pub fn add(&mut self, status: ItemStatus) {
        match status {
            ItemStatus::Ok => self.ok += 1,
            ItemStatus::Error => self.error += 1,
            ItemStatus::Skipped => self.skipped += 1,
        }
    }

    pub fn total(&self) -> i64 {
        self.ok + self.error + self.skipped
    }
}

/// Why an update was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JobError {
    #[error("job {id} is {status}: a finished job takes no more updates")]
    Finished { id: String, status: JobStatus },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> JobError {
    JobError::Invalid {
        field,
        message: message.into(),
    }
}

/// What an accepted change did beyond the row itself, for the job's message feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The job was stalled and this update revived it after that much silence.
    pub revived_after_ms: Option<i64>,
}

impl Job {
    /// Its counters in words: "212 of 500 processed, 3 failed" (alerts, reports).
    pub fn progress_words(&self) -> String {
        match self.total {
            Some(total) => format!(
                "{} of {total} processed, {} failed",
                self.processed, self.failed
            ),
            None => format!("{} processed, {} failed", self.processed, self.failed),
        }
    }

    /// The job as created from `new` at `now`, with the given id.
    pub fn create(new: &NewJob, id: String, now: Timestamp) -> Result<Job, JobError> {
        if let Some(total) = new.total {
            non_negative("total", total)?;
        }
        let stall_after_ms = new.stall_after_ms.unwrap_or(DEFAULT_STALL_AFTER_MS);
        if stall_after_ms < 1000 {
            return Err(invalid("stall_after", "must be at least 1 second"));
        }
        Ok(Job {
            pk: 0,
            project: new.project,
            id,
            name: new.name.clone(),
            kind: new.kind.clone(),
            application: new.application.clone(),
            flow: new.flow.clone(),
            launched_by: new.launched_by.clone(),
            status: if new.start {
                JobStatus::Running
            } else {
                JobStatus::Pending
            },
            total: new.total,
            processed: 0,
            failed: 0,
            skipped: 0,
            message: None,
            meta: new.meta.clone(),
            stall_after_ms,
            created_at: now,
            started_at: new.start.then_some(now),
            last_update: now,
            finished_at: None,
            stalled_since: None,
            stalled_ms: 0,
            rate_old: None,
            rate_new: RateSample {
                at: now,
                processed: 0,
            },
            summary: None,
        })
    }

    /// Applies a client's update at `now`.
    pub fn apply(&mut self, update: &JobUpdate, now: Timestamp) -> Result<Applied, JobError> {
        self.ensure_open()?;
        if let JobUpdate::Progress(p) = update {
            self.check_progress(p)?;
        }
        let applied = self.sign_of_life(now, !matches!(update, JobUpdate::Heartbeat { .. }));
        match update {
            JobUpdate::Start => {}
            JobUpdate::Progress(p) => {
                // check_progress has made sure neither count overflows.
                self.processed = count("processed", self.processed, p.processed)?;
                self.failed = count("failed", self.failed, p.failed)?;
                if p.total.is_some() {
                    self.total = p.total;
                }
                self.set_message(&p.messages);
            }
            JobUpdate::Heartbeat { messages } => self.set_message(messages),
            JobUpdate::Finish { status, messages } => {
                if !status.is_finished() {
                    return Err(invalid(
                        "status",
                        "a job finishes as completed, failed or cancelled",
                    ));
                }
                self.set_message(messages);
                self.status = *status;
                self.finished_at = Some(now);
                self.stalled_since = None;
                self.summary = Some(Summary::of(self, now));
            }
        }
        self.advance_rate(now);
        Ok(applied)
    }

    /// Counts items just stored for this job.
    pub fn record_items(
        &mut self,
        counts: ItemCounts,
        now: Timestamp,
    ) -> Result<Applied, JobError> {
        self.ensure_open()?;
        let add = |field: &'static str, current: i64, n: i64| {
            current
                .checked_add(n)
                .ok_or_else(|| invalid(field, overflow_words(current, n)))
        };
        let (processed, failed, skipped) = (
            add("processed", self.processed, counts.total())?,
            add("failed", self.failed, counts.error)?,
            add("skipped", self.skipped, counts.skipped)?,
        );
        let applied = self.sign_of_life(now, counts.total() > 0);
        (self.processed, self.failed, self.skipped) = (processed, failed, skipped);
        self.advance_rate(now);
        Ok(applied)
    }

    /// The sweep: a running job silent past its `stall_after` turns stalled. Returns whether it did.
    pub fn mark_stalled(&mut self, now: Timestamp) -> bool {
        if self.status != JobStatus::Running || now < self.stall_deadline() {
            return false;
        }
        self.status = JobStatus::Stalled;
        self.stalled_since = Some(now);
        true
    }

    /// When this job turns stalled if nothing more is heard from it.
    pub fn stall_deadline(&self) -> Timestamp {
        Timestamp(self.last_update.0.saturating_add(self.stall_after_ms))
    }

    pub fn ok(&self) -> i64 {
        (self.processed - self.failed - self.skipped).max(0)
    }

    /// Percent, speed, ETA and elapsed time as of `now`.
    pub fn stats(&self, now: Timestamp) -> Stats {
        // A stalled job's clock stopped at its last sign of life: neither its elapsed time
        // nor its speed goes on as if it were working.
        let end = match self.status {
            JobStatus::Stalled => self.last_update,
            _ => self.finished_at.unwrap_or(now),
        };
        let elapsed_ms = (end.0 - self.started_at.unwrap_or(self.created_at).0).max(0);
        let speed = match (&self.summary, self.status) {
            (Some(summary), _) => summary.rate_per_sec,
            (None, JobStatus::Pending | JobStatus::Stalled) => 0.0,
            (None, _) => {
                let base = self.rate_old.unwrap_or(self.rate_new);
                per_second(self.processed - base.processed, now.0 - base.at.0)
            }
        };
        let remaining = self.total.map(|t| (t - self.processed).max(0));
        let moving = self.status == JobStatus::Running;
        let eta_ms = match (remaining, moving) {
            (Some(0), _) | (_, false) => None,
            (Some(r), true) if speed > 0.0 => Some((r as f64 / speed * 1000.0).round() as i64),
            _ => None,
        };
        Stats {
            ok: self.ok(),
            remaining,
            percent: self.total.map(|t| percent(self.processed, t)),
            speed,
            eta_ms,
            elapsed_ms,
        }
    }

    /// `Finished` if the job takes no more updates.
    pub fn ensure_open(&self) -> Result<(), JobError> {
        if self.status.is_finished() {
            return Err(JobError::Finished {
                id: self.id.clone(),
                status: self.status,
            });
        }
        Ok(())
    }

    fn check_progress(&self, p: &Progress) -> Result<(), JobError> {
        for (field, c) in [("processed", p.processed), ("failed", p.failed)] {
            if let Some(Count::Set(n) | Count::Add(n)) = c {
                non_negative(field, n)?;
            }
        }
        if let Some(total) = p.total {
            non_negative("total", total)?;
        }
        let (processed, failed) = (
            count("processed", self.processed, p.processed)?,
            count("failed", self.failed, p.failed)?,
        );
        if failed > processed {
            return Err(invalid(
                "failed",
                format!("{failed} failed cannot exceed {processed} processed"),
            ));
        }
        Ok(())
    }

    /// Records that the job spoke at `now`: revives a stalled job, and a job that reports work
    /// (`working`) is running even if nobody called start.
    fn sign_of_life(&mut self, now: Timestamp, working: bool) -> Applied {
        let mut applied = Applied::default();
        if self.status == JobStatus::Stalled {
            let gap = (now.0 - self.last_update.0).max(0);
            self.stalled_ms += gap;
            self.stalled_since = None;
            self.status = JobStatus::Running;
            applied.revived_after_ms = Some(gap);
        }
        if self.status == JobStatus::Pending && working {
            self.status = JobStatus::Running;
        }
        if self.status == JobStatus::Running && self.started_at.is_none() {
            self.started_at = Some(now);
            self.rate_new = RateSample {
                at: now,
                processed: self.processed,
            };
        }
        self.last_update = self.last_update.max(now);
        applied
    }

    fn set_message(&mut self, messages: &[String]) {
        if let Some(m) = messages.last() {
            self.message = Some(m.clone());
        }
    }

    /// Keeps two samples at least [`RATE_WINDOW_MS`] apart; the speed is measured from the older.
    fn advance_rate(&mut self, now: Timestamp) {
        if now.0 - self.rate_new.at.0 >= RATE_WINDOW_MS {
            self.rate_old = Some(self.rate_new);
            self.rate_new = RateSample {
                at: now,
                processed: self.processed,
            };
        }
    }
}

/// The lines an accepted update adds to the job's message feed: the client's own messages, then
/// what Vigie noticed (a revival, the end of the run with its summary).
pub fn feed(update: &JobUpdate, applied: &Applied, job: &Job) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(gap) = applied.revived_after_ms {
        lines.push(format!(
            "resumed after {} without a sign of life",
            human_duration(gap)
        ));
    }
    match update {
        JobUpdate::Start => lines.push("started".into()),
        JobUpdate::Progress(Progress { messages, .. }) | JobUpdate::Heartbeat { messages } => {
            lines.extend(messages.iter().cloned())
        }
        JobUpdate::Finish { status, messages } => {
            lines.extend(messages.iter().cloned());
            let summary = job.summary.as_ref().map(Summary::line).unwrap_or_default();
            lines.push(format!("{status}: {summary}"));
        }
    }
    lines
}

/// The feed line the sweep adds when it finds a job silent.
pub fn stalled_line(job: &Job) -> String {
    format!(
        "stalled: no sign of life for {} (last at {})",
        human_duration(job.stall_after_ms),
        job.last_update
    )
}

/// The count after a change; an increment that would pass the largest count is refused,
/// naming the field, rather than wrapping negative (or sticking at the maximum).
fn count(field: &'static str, current: i64, change: Option<Count>) -> Result<i64, JobError> {
    match change {
        None => Ok(current),
        Some(Count::Set(n)) => Ok(n),
        Some(Count::Add(n)) => current
            .checked_add(n)
            .ok_or_else(|| invalid(field, overflow_words(current, n))),
    }
}

fn overflow_words(current: i64, n: i64) -> String {
    format!(
        "adding {n} to {current} would pass the largest count ({})",
        i64::MAX
    )
}

fn non_negative(field: &'static str, n: i64) -> Result<(), JobError> {
    if n < 0 {
        return Err(invalid(field, format!("must not be negative (got {n})")));
    }
    Ok(())
}

fn per_second(amount: i64, ms: i64) -> f64 {
    if ms <= 0 || amount <= 0 {
        0.0
    } else {
        amount as f64 * 1000.0 / ms as f64
    }
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        return if part > 0 { 100.0 } else { 0.0 };
    }
    (part as f64 * 100.0 / whole as f64).clamp(0.0, 100.0)
}

/// How far along a job is, as of a moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub ok: i64,
    pub remaining: Option<i64>,
    pub percent: Option<f64>,
    /// Items per second over the recent window (the whole run once finished).
    pub speed: f64,
    pub eta_ms: Option<i64>,
    pub elapsed_ms: i64,
}

/// The end-of-run block: "498 ok, 2 errors of 500 (99.6 %), 207.3 s, 2.4 items/s".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub total: i64,
    pub ok: i64,
    pub errors: i64,
    pub skipped: i64,
    pub ok_percent: f64,
    pub error_percent: f64,
    pub duration_ms: i64,
    /// Average items per second over the whole run.
    pub rate_per_sec: f64,
}

impl Summary {
    pub fn of(job: &Job, finished_at: Timestamp) -> Summary {
        let duration_ms = (finished_at.0 - job.started_at.unwrap_or(job.created_at).0).max(0);
        Summary {
            total: job.processed,
            ok: job.ok(),
            errors: job.failed,
            skipped: job.skipped,
            ok_percent: percent(job.ok(), job.processed),
            error_percent: percent(job.failed, job.processed),
            duration_ms,
            rate_per_sec: per_second(job.processed, duration_ms),
        }
    }

    /// One line, as people print it at the end of a run.
    pub fn line(&self) -> String {
        let seconds = self.duration_ms as f64 / 1000.0;
        if self.total == 0 {
            // A job that counted nothing (a wrapped command, a sync): no shares of nothing.
            return format!("no item counted; total time {seconds:.1} s");
        }
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        format!(
            "{} ok ({:.1} %), {} error{} ({:.1} %){skipped} of {}; total time {:.1} s, average {:.1} items/s",
            self.ok,
            self.ok_percent,
            self.errors,
            if self.errors == 1 { "" } else { "s" },
            self.error_percent,
            self.total,
            seconds,
            self.rate_per_sec
        )
    }
}

/// A trace row as a client sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    /// The client's id for the item (or its sequence number as text): a retried upload with the
    /// same key is not counted twice.
    pub key: Option<String>,
    pub status: ItemStatus,
    pub name: Option<String>,
    pub file: Option<String>,
    pub target: Option<String>,
    pub comment: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<f64>,
    pub at: Option<Timestamp>,
    /// Free JSON object, stored as given.
    pub fields: Option<String>,
}

/// A stored trace row.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Order of arrival, unique across all items.
    pub seq: i64,
    pub job_id: String,
    pub key: Option<String>,
    pub status: ItemStatus,
    pub name: Option<String>,
    pub file: Option<String>,
    pub target: Option<String>,
    pub comment: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<f64>,
    pub at: Timestamp,
    pub fields: Option<String>,
}

/// One line of a job's message feed: a progress message, a line of a wrapped command's output,
/// or a note Vigie adds itself ("stalled", "revived after 2 min").
#[derive(Clone, Debug, PartialEq)]
pub struct JobMessage {
    pub id: i64,
    pub at: Timestamp,
    pub text: String,
}

/// A new server-made job id: a random (version 4) UUID.
pub fn new_job_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `207300` → `3m 27s`; `4200` → `4.2s`: durations as the UI and the CLI print them.
pub fn human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    match s {
        0..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_origin_is_read_from_its_kind() {
        assert_eq!(JobOrigin::of(None), JobOrigin::Reported);
        assert_eq!(JobOrigin::of(Some("email")), JobOrigin::Reported);
        assert_eq!(JobOrigin::of(Some("celery")), JobOrigin::Celery);
        assert_eq!(JobOrigin::of(Some("monitor")), JobOrigin::Monitor);
        assert_eq!(JobOrigin::parse_filter("all"), Ok(None));
        assert_eq!(
            JobOrigin::parse_filter("celery"),
            Ok(Some(JobOrigin::Celery))
        );
        assert!(JobOrigin::parse_filter("Celery").is_err());
    }

    fn job_at(start: i64, total: Option<i64>) -> Job {
        let new = NewJob {
            project: ProjectId(1),
            name: "Send invoices".into(),
            total,
            start: true,
            ..Default::default()
        };
        Job::create(&new, "j1".into(), Timestamp(start)).unwrap()
    }

    fn items(ok: i64, error: i64) -> ItemCounts {
        ItemCounts {
            ok,
            error,
            skipped: 0,
        }
    }

    #[test]
    fn items_move_the_counters() {
        let mut job = job_at(0, Some(500));
        job.record_items(items(98, 2), Timestamp(1_000)).unwrap();
        assert_eq!((job.processed, job.failed, job.ok()), (100, 2, 98));
        let stats = job.stats(Timestamp(1_000));
        assert_eq!(stats.percent, Some(20.0));
        assert_eq!(stats.remaining, Some(400));
        assert_eq!(stats.elapsed_ms, 1_000);
    }

    #[test]
    fn counts_that_would_overflow_are_refused_naming_the_field() {
        let mut job = job_at(0, None);
        let add = |n| {
            JobUpdate::Progress(Progress {
                processed: Some(Count::Add(n)),
                ..Default::default()
            })
        };
        job.apply(&add(i64::MAX), Timestamp(10)).unwrap();
        let err = job.apply(&add(1), Timestamp(20)).unwrap_err();
        assert!(
            matches!(&err, JobError::Invalid { field: "processed", message } if message.contains("largest count")),
            "{err:?}"
        );
        assert_eq!(job.processed, i64::MAX, "unchanged, not wrapped");
        let err = job.record_items(items(1, 0), Timestamp(30)).unwrap_err();
        assert!(
            matches!(
                err,
                JobError::Invalid {
                    field: "processed",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!((job.processed, job.last_update), (i64::MAX, Timestamp(10)));
    }

    #[test]
    fn progress_sets_or_adds_and_refuses_bad_counts() {
        let mut job = job_at(0, None);
        let set = |processed, failed| {
            JobUpdate::Progress(Progress {
                processed,
                failed,
                messages: vec!["working".into()],
                ..Default::default()
            })
        };
        job.apply(&set(Some(Count::Set(10)), None), Timestamp(10))
            .unwrap();
        job.apply(
            &set(Some(Count::Add(5)), Some(Count::Add(1))),
            Timestamp(20),
        )
        .unwrap();
        assert_eq!((job.processed, job.failed), (15, 1));
        assert_eq!(job.message.as_deref(), Some("working"));

        let err = job
            .apply(&set(Some(Count::Set(-1)), None), Timestamp(30))
            .unwrap_err();
        assert!(
            matches!(
                err,
                JobError::Invalid {
                    field: "processed",
                    ..
                }
            ),
            "{err}"
        );
        let err = job
            .apply(&set(None, Some(Count::Set(16))), Timestamp(30))
            .unwrap_err();
        assert!(
            matches!(
                err,
                JobError::Invalid {
                    field: "failed",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            (job.processed, job.failed),
            (15, 1),
            "refused updates change nothing"
        );
    }

    #[test]
    fn speed_is_measured_over_the_recent_window() {
        let mut job = job_at(0, Some(10_000));
        // Fast for a minute (100 items/s), then slow (5 items/s).
        for s in 1..=60 {
            job.record_items(items(100, 0), Timestamp(s * 1000))
                .unwrap();
        }
        for s in 61..=90 {
            job.record_items(items(5, 0), Timestamp(s * 1000)).unwrap();
        }
        let stats = job.stats(Timestamp(90_000));
        assert!((stats.speed - 5.0).abs() < 0.01, "speed {}", stats.speed);
        let remaining = 10_000 - 6_150;
        assert_eq!(stats.eta_ms, Some(remaining * 1000 / 5));
    }

    #[test]
    fn silence_slows_the_speed_down() {
        let mut job = job_at(0, Some(100));
        job.record_items(items(50, 0), Timestamp(10_000)).unwrap();
        let busy = job.stats(Timestamp(10_000)).speed;
        let quiet = job.stats(Timestamp(60_000)).speed;
        assert!(quiet < busy / 4.0, "{quiet} vs {busy}");
    }

    #[test]
    fn a_silent_running_job_stalls_and_an_update_revives_it() {
        let mut job = job_at(0, Some(10));
        job.record_items(items(1, 0), Timestamp(5_000)).unwrap();
        assert!(!job.mark_stalled(Timestamp(64_999)));
        assert!(job.mark_stalled(Timestamp(65_000)));
        assert_eq!(job.status, JobStatus::Stalled);
        assert_eq!(job.stalled_since, Some(Timestamp(65_000)));
        assert_eq!(
            job.last_update,
            Timestamp(5_000),
            "the last sign of life is kept"
        );
        let stalled = job.stats(Timestamp(300_000));
        assert_eq!(stalled.speed, 0.0, "a stalled job is not moving");
        assert_eq!(
            stalled.elapsed_ms, 5_000,
            "its clock stopped at its last sign of life"
        );

        let applied = job
            .apply(
                &JobUpdate::Heartbeat { messages: vec![] },
                Timestamp(95_000),
            )
            .unwrap();
        assert_eq!(applied.revived_after_ms, Some(90_000));
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.stalled_ms, 90_000);
        assert!(!job.mark_stalled(Timestamp(95_001)));
    }

    #[test]
    fn a_job_that_counted_nothing_says_so_rather_than_zero_percent_of_zero() {
        let job = job_at(0, None);
        let summary = Summary::of(&job, Timestamp(12_300));
        assert_eq!(summary.line(), "no item counted; total time 12.3 s");
    }

    #[test]
    fn finished_jobs_refuse_updates_and_carry_a_summary() {
        let mut job = job_at(1_000, Some(500));
        job.record_items(items(498, 2), Timestamp(208_300)).unwrap();
        let finish = JobUpdate::Finish {
            status: JobStatus::Completed,
            messages: vec!["done".into()],
        };
        job.apply(&finish, Timestamp(208_300)).unwrap();
        let summary = job.summary.clone().unwrap();
        assert_eq!((summary.total, summary.ok, summary.errors), (500, 498, 2));
        assert_eq!(summary.duration_ms, 207_300);
        assert_eq!(
            summary.line(),
            "498 ok (99.6 %), 2 errors (0.4 %) of 500; total time 207.3 s, average 2.4 items/s"
        );
        assert!(matches!(
            job.record_items(items(1, 0), Timestamp(209_000)),
            Err(JobError::Finished {
                status: JobStatus::Completed,
                ..
            })
        ));
        assert!(job.apply(&finish, Timestamp(209_000)).is_err());
        assert!(!job.mark_stalled(Timestamp(10_000_000)));
        assert_eq!(job.stats(Timestamp(10_000_000)).eta_ms, None);
    }

    #[test]
    fn pending_jobs_start_on_first_work() {
        let new = NewJob {
            name: "later".into(),
            ..Default::default()
        };
        let mut job = Job::create(&new, "j".into(), Timestamp(0)).unwrap();
        assert_eq!(job.status, JobStatus::Pending);
        job.apply(&JobUpdate::Heartbeat { messages: vec![] }, Timestamp(5))
            .unwrap();
        assert_eq!(job.status, JobStatus::Pending, "a heartbeat is not work");
        job.record_items(items(1, 0), Timestamp(10)).unwrap();
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.started_at, Some(Timestamp(10)));
        let err = Job::create(
            &NewJob {
                stall_after_ms: Some(10),
                ..new
            },
            "k".into(),
            Timestamp(0),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("stall_after"), "{err}");
    }

    #[test]
    fn words_parse() {
        assert_eq!("Stalled".parse::<JobStatus>(), Ok(JobStatus::Stalled));
        assert_eq!("error".parse::<ItemStatus>(), Ok(ItemStatus::Error));
        assert!("done"
            .parse::<JobStatus>()
            .unwrap_err()
            .to_string()
            .contains("expected one of"));
    }

    #[test]
    fn ids_look_like_uuids() {
        let id = new_job_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_job_id());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(4_200), "4.2s");
        assert_eq!(human_duration(207_300), "3m 27s");
        assert_eq!(human_duration(7_500_000), "2h 5m");
    }
}
