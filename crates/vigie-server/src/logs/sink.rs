//! The log sink: every ingest path hands its records here and waits until they are durable.
//!
//! One task owns the appends. It takes the first waiting batch plus every batch queued behind
//! it (up to [`GATHER`] records), stores them as one append per project — so a hundred
//! concurrent requests of ten lines make full blocks, not a hundred tiny ones — and only then
//! tells each caller its records are stored. After the commit it publishes the records to the
//! hub (live tails) and to the rotating files.
//!
//! The queue is bounded. HTTP callers wait for room (and get 503 after [`WAIT`]); syslog never
//! waits on the shared queue: it holds at most [`SYSLOG_IN_FLIGHT`] batches, so a syslog
//! flood leaves room for HTTP ingest and drops (and counts) what storage cannot take.

use super::files::FileRoutes;
use crate::batch::{self, SubmitError, Waiter};
use crate::hub::{Hub, LogNews};
use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use vigie_core::{LogRecord, ProjectId};
use vigie_store::logs::FilePosition;
use vigie_store::{logs, Store};

/// Batches waiting for the sink.
const QUEUE: usize = 1024;
/// Most records stored in one append.
const GATHER: usize = 64 * 1024;
/// How long an HTTP caller waits for room before 503.
const WAIT: Duration = Duration::from_secs(10);
/// Syslog batches allowed in the queue at once.
const SYSLOG_IN_FLIGHT: usize = 8;

struct Batch {
    project: ProjectId,
    records: Vec<LogRecord>,
    /// How far the followed files these records came from were read (stored with them).
    positions: Vec<FilePosition>,
    done: Option<Waiter>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// One project's records gathered for one append.
#[derive(Default)]
struct Gathered {
    records: Vec<LogRecord>,
    positions: Vec<FilePosition>,
    waiting: Vec<Waiter>,
    /// How many of `records` came from syslog.
    syslog: u64,
}

#[derive(Clone)]
pub struct LogSink {
    queue: mpsc::Sender<Batch>,
    syslog_room: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl LogSink {
    /// Starts the sink task.
    pub fn start(
        store: Arc<dyn Store>,
        hub: Hub,
        metrics: Arc<Metrics>,
        files: Option<FileRoutes>,
    ) -> LogSink {
        let (queue, rx) = mpsc::channel(QUEUE);
        crate::tasks::spawn("log sink", run(rx, store, hub, metrics.clone(), files));
        LogSink {
            queue,
            syslog_room: Arc::new(Semaphore::new(SYSLOG_IN_FLIGHT)),
            metrics,
        }
    }

    /// Stores `records`; returns once they are durable.
    pub async fn append(
        &self,
        project: ProjectId,
        records: Vec<LogRecord>,
    ) -> Result<(), SubmitError> {
        if records.is_empty() {
            return Ok(());
        }
        self.append_followed(project, records, Vec::new()).await
    }

    /// Stores `records` and, in the same transaction, how far the followed files they were
    /// read from were read (see `follow`); returns once both are durable.
    pub async fn append_followed(
        &self,
        project: ProjectId,
        records: Vec<LogRecord>,
        positions: Vec<FilePosition>,
    ) -> Result<(), SubmitError> {
        if records.is_empty() && positions.is_empty() {
            return Ok(());
        }
        let pack = |done| Batch {
            project,
            records,
            positions,
            done: Some(done),
            _permit: None,
        };
        batch::submit(&self.queue, pack, WAIT, "log").await
    }

    /// Returns once every batch queued before it is stored (or refused): the drain at
    /// shutdown, after the syslog listeners have stopped and before the store closes, so
    /// records syslog handed over are not lost with the queue.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        let marker = Batch {
            project: ProjectId(0),
            records: Vec::new(),
            positions: Vec::new(),
            done: Some(done),
            _permit: None,
        };
        if self.queue.send(marker).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Syslog's way in: stores `records` without waiting on HTTP's queue room. When syslog
    /// already has its share in flight, `wait` decides: TCP waits (pushing back on its
    /// sender), UDP drops and counts.
    pub async fn offer(&self, project: ProjectId, records: Vec<LogRecord>, wait: bool) {
        if records.is_empty() {
            return;
        }
        let permit = if wait {
            self.syslog_room.clone().acquire_owned().await.ok()
        } else {
            self.syslog_room.clone().try_acquire_owned().ok()
        };
        let dropped = records.len() as u64;
        let Some(permit) = permit else {
            self.metrics
                .logs
                .dropped
                .fetch_add(dropped, Ordering::Relaxed);
            return;
        };
        let batch = Batch {
            project,
            records,
            positions: Vec::new(),
            done: None,
            _permit: Some(permit),
        };
        if self.queue.try_send(batch).is_err() {
            self.metrics
                .logs
                .dropped
                .fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

async fn run(
    mut queue: mpsc::Receiver<Batch>,
    store: Arc<dyn Store>,
    hub: Hub,
    metrics: Arc<Metrics>,
    files: Option<FileRoutes>,
) {
    // Grouping runs beside the appends, woken by them, so it never holds an ingest back.
    let (wake_grouping, woken) = mpsc::channel(QUEUE);
    let grouping = crate::tasks::spawn("log grouping", group_blocks(store.clone(), woken));
    while let Some(batches) = batch::gather(&mut queue, GATHER, |b| b.records.len()).await {
        let mut by_project: BTreeMap<ProjectId, Gathered> = BTreeMap::new();
        // Flush markers are answered after every batch gathered with them is written.
        let mut flushes = Vec::new();
        for batch in batches {
            if batch.records.is_empty() && batch.positions.is_empty() {
                flushes.extend(batch.done);
                continue;
            }
            let entry = by_project.entry(batch.project).or_default();
            // A batch nobody waits for is syslog's: HTTP ingest counts its own once answered.
            if batch.done.is_none() {
                entry.syslog += batch.records.len() as u64;
            }
            if entry.records.is_empty() {
                // The first batch's vector becomes the append's: records are large, and a
                // request's four thousand of them are not copied once more.
                entry.records = batch.records;
            } else {
                entry.records.extend(batch.records);
            }
            entry.positions.extend(batch.positions);
            entry.waiting.extend(batch.done);
        }
        for (project, gathered) in by_project {
            let Gathered {
                mut records,
                positions,
                waiting,
                syslog,
            } = gathered;
            metrics.logs.admit(&mut records);
            let records = Arc::new(records);
            let appended =
                logs::append_at(store.as_ref(), project, records.clone(), positions).await;
            let (outcome, blocks) = match appended {
                Ok(appended) => (Ok(()), appended.blocks),
                Err(err) => (Err(err), Vec::new()),
            };
            if outcome.is_ok() {
                metrics
                    .logs
                    .stored
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                metrics.ingested("syslog", "log", syslog);
            } else if let Err(reason) = &outcome {
                // Syslog's records have no HTTP answer to say it: the health check does.
                metrics.storage.note(&outcome);
                tracing::error!(%reason, records = records.len(), "storing logs failed");
            }
            for done in waiting {
                let _ = done.send(outcome.clone());
            }
            if outcome.is_ok() && !records.is_empty() {
                if let Some(files) = &files {
                    files.write(project, records.clone()).await;
                }
                if !blocks.is_empty() {
                    // Full: a pass is already due.
                    let _ = wake_grouping.try_send(project);
                }
                hub.publish_logs(LogNews {
                    project,
                    records,
                    blocks,
                });
            }
        }
        for done in flushes {
            let _ = done.send(Ok(()));
        }
    }
    drop(wake_grouping);
    let _ = grouping.await;
    tracing::debug!("log sink drained and stopped");
}

/// Gathers the blocks of the projects appended to into groups (see
/// [`vigie_store::logs::groups`]) once they make a full one; ends when the sink does.
async fn group_blocks(store: Arc<dyn Store>, mut woken: mpsc::Receiver<ProjectId>) {
    while let Some(first) = woken.recv().await {
        let mut projects = std::collections::BTreeSet::from([first]);
        while let Ok(more) = woken.try_recv() {
            projects.insert(more);
        }
        for project in projects {
            let settled_before = vigie_core::Timestamp::now().millis() - logs::groups::SETTLE_MS;
            match logs::groups::group(store.as_ref(), project, settled_before).await {
                Ok(0) => {}
                Ok(groups) => tracing::debug!(groups, %project, "log blocks grouped"),
                Err(err) => tracing::warn!(%err, %project, "grouping log blocks failed"),
            }
        }
    }
}
