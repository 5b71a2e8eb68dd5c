//! The error sink: envelopes of many concurrent requests stored in shared transactions.
//!
//! Sentry SDKs send one envelope per event, so under load thousands of tiny requests arrive
//! per second. One task takes the first waiting batch plus every batch queued behind it (up to
//! [`GATHER`] items), merges them per project, stores each project's share with one
//! `write_errors` call (one transaction), and only then answers each request. After the commit
//! it tells the hub, so open issue lists refresh, and counts in `/metrics` what storage chose
//! not to keep (spans past a segment's cap, see `vigie_store::errors::STRAY_SPANS_PER_SEGMENT`).
//!
//! The queue is bounded: callers wait for room and get 503 after [`WAIT`].

use crate::http::AppError;
use crate::hub::{Change, Hub};
use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vigie_core::{ProjectId, Timestamp};
use vigie_store::errors::EventWritten;
use vigie_store::{ErrorBatch, Store, StoreError};

const QUEUE: usize = 1024;
/// Most events and transactions stored in one transaction.
const GATHER: usize = 2000;
const WAIT: Duration = Duration::from_secs(10);

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// What the hub carries after a write: the events stored and what they did to their issues.
#[derive(Debug)]
pub struct IssueNews {
    pub project: ProjectId,
    pub events: Vec<EventWritten>,
}

/// Transactions just stored, for threshold alerts (p95, failure rate).
#[derive(Debug)]
pub struct TransactionNews {
    pub project: ProjectId,
    pub samples: Vec<TransactionSample>,
}

/// What a threshold needs of a transaction.
#[derive(Debug)]
pub struct TransactionSample {
    pub name: String,
    pub time: Timestamp,
    pub duration_ms: f64,
    pub failed: bool,
}

#[derive(Clone)]
pub struct ErrorSink {
    queue: mpsc::Sender<(ErrorBatch, Waiter)>,
}

impl ErrorSink {
    pub fn start(store: Arc<dyn Store>, hub: Hub, metrics: Arc<Metrics>) -> ErrorSink {
        let (queue, rx) = mpsc::channel(QUEUE);
        crate::tasks::spawn("sentry sink", run(rx, store, hub, metrics));
        ErrorSink { queue }
    }

    /// Stores `batch`; returns once it is durable.
    pub async fn write(&self, batch: ErrorBatch) -> Result<(), AppError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (done, stored) = oneshot::channel();
        match tokio::time::timeout(WAIT, self.queue.send((batch, done))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(AppError::Unavailable("the server is shutting down".into())),
            Err(_) => {
                return Err(AppError::Overloaded {
                    retry_after: 2,
                    message: "event storage is saturated; retry in a few seconds".into(),
                })
            }
        }
        match stored.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err.into()),
            Err(_) => Err(AppError::Unavailable("the server is shutting down".into())),
        }
    }
}

fn size(batch: &ErrorBatch) -> usize {
    batch.events.len() + batch.transactions.len() + 1
}

async fn run(
    mut queue: mpsc::Receiver<(ErrorBatch, Waiter)>,
    store: Arc<dyn Store>,
    hub: Hub,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = queue.recv().await {
        let mut gathered = size(&first.0);
        let mut waiting = vec![first];
        while gathered < GATHER {
            match queue.try_recv() {
                Ok(next) => {
                    gathered += size(&next.0);
                    waiting.push(next);
                }
                Err(_) => break,
            }
        }
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
