//! The error sink: envelopes of many concurrent requests stored in shared transactions.
//!
//! Sentry SDKs send one envelope per event, so under load thousands of tiny requests arrive
//! per second. One task takes the first waiting batch plus every batch queued behind it (up to
//! [`GATHER`] items), merges them per project, stores each project's share with one
//! `write_errors` call (one transaction), and only then answers each request. After the commit
//! it tells the hub, so open issue lists refresh, and counts in `/metrics` what storage chose
//! not to keep (spans past a segment's cap, see `vigie_store::errors::STRAY_SPANS_PER_SEGMENT`).
//!
//! The queue is bounded: callers wait for room and get 503 after [`WAIT`] (see
//! [`crate::batch`], whose gather and submit this sink uses).

use crate::batch::{self, SubmitError, Waiter};
use crate::hub::{Change, Hub, IssueNews, TransactionNews, TransactionSample};
use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use vigie_core::{ProjectId, Timestamp};
use vigie_store::{ErrorBatch, Store};

const QUEUE: usize = 1024;
/// Most events and transactions stored in one transaction.
const GATHER: usize = 2000;
const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct ErrorSink {
    queue: mpsc::Sender<(ErrorBatch, Waiter)>,
    metrics: Arc<Metrics>,
}

impl ErrorSink {
    pub fn start(store: Arc<dyn Store>, hub: Hub, metrics: Arc<Metrics>) -> ErrorSink {
        let (queue, rx) = mpsc::channel(QUEUE);
        crate::tasks::spawn("sentry sink", run(rx, store, hub, metrics.clone()));
        ErrorSink { queue, metrics }
    }

    /// Stores `batch`; returns once it is durable. Spans with an implausible start are
    /// placed at their receive time first (whichever protocol brought them), and counted.
    pub async fn write(&self, mut batch: ErrorBatch) -> Result<(), SubmitError> {
        if batch.is_empty() {
            return Ok(());
        }
        let moved = vigie_core::span::place_in_time(&mut batch.spans, vigie_core::time::now_ns());
        self.metrics
            .spans_time_replaced
            .fetch_add(moved as u64, std::sync::atomic::Ordering::Relaxed);
        batch::submit(&self.queue, |done| (batch, done), WAIT, "event").await
    }
}

/// A batch's weight against [`GATHER`]: its events and transactions, and its spans for the
/// trace store, which cost a sixteenth of an event each (they are written in compressed
/// blocks).
fn size(batch: &ErrorBatch) -> usize {
    batch.events.len() + batch.transactions.len() + batch.spans.len() / 16 + 1
}

async fn run(
    mut queue: mpsc::Receiver<(ErrorBatch, Waiter)>,
    store: Arc<dyn Store>,
    hub: Hub,
    metrics: Arc<Metrics>,
) {
    while let Some(waiting) = batch::gather(&mut queue, GATHER, |(b, _)| size(b)).await {
        let mut by_project: BTreeMap<ProjectId, (ErrorBatch, Vec<Waiter>)> = BTreeMap::new();
        for (batch, done) in waiting {
            let project = batch.project;
            let entry = by_project
                .entry(project)
                .or_insert_with(|| (ErrorBatch::new(project), Vec::new()));
            entry.0.extend(batch);
            entry.1.push(done);
        }
        for (project, (batch, waiters)) in by_project {
            let samples: Vec<TransactionSample> = batch
                .transactions
                .iter()
                .map(|t| TransactionSample {
                    name: t.name.clone(),
                    time: t.time,
                    duration_ms: t.duration_ms,
                    failed: t.failed(),
                })
                .collect();
            let outcome = store.write_errors(batch, Timestamp::now()).await;
            let reply = match &outcome {
                Ok(_) => Ok(()),
                Err(err) => {
                    tracing::error!(%err, "storing events failed");
                    Err(err.clone())
                }
            };
            for done in waiters {
                let _ = done.send(reply.clone());
            }
            if let Ok(written) = outcome {
                if written.stray_spans_dropped > 0 {
                    metrics.sentry_dropped(
                        "span",
                        vigie_store::errors::SEGMENT_FULL,
                        written.stray_spans_dropped as u64,
                    );
                }
                if !written.events.is_empty() {
                    hub.publish(Change::Issues(Arc::new(IssueNews {
                        project,
                        events: written.events,
                    })));
                }
                if !samples.is_empty() {
                    hub.publish(Change::Transactions(Arc::new(TransactionNews {
                        project,
                        samples,
                    })));
                }
            }
        }
    }
    tracing::debug!("error sink drained and stopped");
}
