//! The "gather, write, answer" mechanics every write queue of the server shares.
//!
//! ```text
//!   request ─ submit(item) ─▶ bounded queue ─▶ writer task: gather(first + what waits, ≤ limit)
//!      ▲                                              │ one store call per project
//!      └──────── the batch's outcome (oneshot) ◀──────┘ answered after the commit
//! ```
//!
//! Many small requests share one transaction; the queue is bounded, so under overload a
//! caller waits for room and then gets [`SubmitError::Saturated`] (503 with `Retry-After`)
//! instead of memory growing. The log sink, the Sentry sink and the Celery writer gather with
//! [`gather`]; the log and Sentry sinks answer their callers through [`submit`]. (SQLite's own
//! writer thread in `vigie-store` batches the same way on a blocking thread.)

use crate::http::AppError;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vigie_store::StoreError;

/// Told once the batch holding a caller's item is stored, or why it is not.
pub type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// Why an item handed to a write queue was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue stayed full for the whole wait: the writer cannot keep up.
    #[error("{what} storage is saturated; retry in a few seconds")]
    Saturated { what: &'static str },
    /// The writer has stopped: the server is shutting down.
    #[error("the server is shutting down")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SubmitError> for AppError {
    fn from(err: SubmitError) -> Self {
        match err {
            SubmitError::Saturated { .. } => AppError::Overloaded {
                retry_after: 2,
                message: err.to_string(),
            },
            SubmitError::Stopped => AppError::Unavailable(err.to_string()),
            SubmitError::Store(err) => err.into(),
        }
    }
}

/// Queues the item `pack` makes around a waiter, waiting at most `wait` for room, and returns
/// once the batch holding it is stored. `what` names the data in the saturation message.
pub async fn submit<T>(
    queue: &mpsc::Sender<T>,
    pack: impl FnOnce(Waiter) -> T,
    wait: Duration,
    what: &'static str,
) -> Result<(), SubmitError> {
    let (done, stored) = oneshot::channel();
    match tokio::time::timeout(wait, queue.send(pack(done))).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err(SubmitError::Stopped),
        Err(_) => return Err(SubmitError::Saturated { what }),
    }
    match stored.await {
        Ok(outcome) => Ok(outcome?),
        Err(_) => Err(SubmitError::Stopped),
    }
}

/// Waits for the next item, then takes every item already queued behind it while their
/// `weight` adds up to less than `limit`. `None` once the queue is closed and empty.
pub async fn gather<T>(
    queue: &mut mpsc::Receiver<T>,
    limit: usize,
    weight: impl Fn(&T) -> usize,
) -> Option<Vec<T>> {
    let first = queue.recv().await?;
    let mut gathered = weight(&first);
    let mut batch = vec![first];
    while gathered < limit {
        match queue.try_recv() {
            Ok(next) => {
                gathered += weight(&next);
                batch.push(next);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gather_takes_what_waits_up_to_the_limit() {
        let (tx, mut rx) = mpsc::channel(16);
        for n in [3, 4, 5, 6] {
            tx.send(n).await.unwrap();
        }
        // 3 + 4 = 7 < 8, then 5 makes 12: the batch stops once the limit is reached.
        assert_eq!(gather(&mut rx, 8, |n| *n).await, Some(vec![3, 4, 5]));
        assert_eq!(gather(&mut rx, 8, |n| *n).await, Some(vec![6]));
        drop(tx);
        assert_eq!(gather(&mut rx, 8, |n| *n).await, None);
    }

    #[tokio::test]
    async fn submit_answers_the_batch_outcome_or_why_not() {
        let (tx, mut rx) = mpsc::channel::<(u32, Waiter)>(1);
        let writer = tokio::spawn(async move {
            let (_, done) = rx.recv().await.unwrap();
            done.send(Ok(())).unwrap();
            let (_, done) = rx.recv().await.unwrap();
            done.send(Err(StoreError::DiskFull("no space".into())))
                .unwrap();
            // The third is dropped unanswered: the writer stopped with it queued.
            let _ = rx.recv().await.unwrap();
        });
        let wait = Duration::from_secs(1);
        submit(&tx, |done| (1, done), wait, "test").await.unwrap();
        let refused = submit(&tx, |done| (2, done), wait, "test")
            .await
            .unwrap_err();
        assert!(matches!(
            refused,
            SubmitError::Store(StoreError::DiskFull(_))
        ));
        let stopped = submit(&tx, |done| (3, done), wait, "test")
            .await
            .unwrap_err();
        assert!(matches!(stopped, SubmitError::Stopped), "{stopped}");
        writer.await.unwrap();
        assert!(matches!(
            submit(&tx, |done| (4, done), wait, "test")
                .await
                .unwrap_err(),
            SubmitError::Stopped
        ));
    }

    #[tokio::test]
    async fn a_queue_full_for_the_whole_wait_is_saturated() {
        let (tx, _rx) = mpsc::channel::<(u32, Waiter)>(1);
        let (done, _kept) = oneshot::channel();
        tx.send((0, done)).await.unwrap();
        let err = submit(&tx, |done| (1, done), Duration::from_millis(20), "event")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "event storage is saturated; retry in a few seconds"
        );
        assert_eq!(
            AppError::from(err).status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
