//! The SQLite writer: one thread, one connection, group commit.
//!
//! SQLite allows one writer at a time, so Vigie gives it exactly one. Callers send a write
//! operation over a bounded channel and wait for its reply. The thread takes the first queued
//! operation plus everything else already waiting (up to [`MAX_BATCH`]), runs them all inside
//! one transaction — each after the first under its own savepoint, so a failing operation
//! rolls back alone — commits once, and only then replies to every caller. Under load,
//! hundreds of writes share one commit and one fsync; when idle, a single write commits on its
//! own with no added delay.
//!
//! The channel is bounded ([`QUEUE_CAPACITY`]): when the disk cannot keep up, callers wait
//! (and ingest endpoints can answer 503) instead of memory growing without limit.

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Most operations committed together. Bounds how long one commit holds the write lock.
pub const MAX_BATCH: usize = 512;
/// Operations that may wait for the writer before callers are held back.
pub const QUEUE_CAPACITY: usize = 4096;

/// A queued write: applied inside the batch transaction, then told whether the batch committed.
trait WriteOp: Send {
    /// Runs the operation; returns whether it succeeded. Under [`Undo::Transaction`] a failed
    /// operation's writes are still in the transaction: the caller must roll it back.
    fn apply(&mut self, conn: &mut Connection, undo: Undo) -> bool;
    fn finish(self: Box<Self>, commit: Result<()>);
}

/// How a failed operation's writes are taken back.
#[derive(Clone, Copy)]
enum Undo {
    /// Under a savepoint of its own, rolled back alone.
    Savepoint,
    /// With the whole transaction: for the batch's first operation, before which it holds
    /// nothing. A savepoint costs a copy of every page the operation changes (SQLite's
    /// statement journal): with the copy still going to a temporary file past 64 KiB, a fifth
    /// of the writer's time under Sentry ingest, where each batch is one operation
    /// (BENCHMARKS.md).
    Transaction,
}

struct Op<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send,
    F: FnOnce(&mut Connection) -> Result<T> + Send,
{
    fn apply(&mut self, conn: &mut Connection, undo: Undo) -> bool {
        let Some(work) = self.work.take() else {
            return true;
        };
        let outcome = match undo {
            Undo::Savepoint => within_savepoint(conn, work),
            Undo::Transaction => run_caught(conn, work),
        };
        let applied = outcome.is_ok();
        self.outcome = Some(outcome);
        applied
    }

    fn finish(self: Box<Self>, commit: Result<()>) {
        let result = match commit {
            Ok(()) => self
                .outcome
                .unwrap_or_else(|| Err(StoreError::database("write was not applied"))),
            // Keeps the failure's kind (a full disk is not a bug) for every caller of the batch.
            Err(err) => Err(err),
        };
        // The caller may have gone away (request cancelled); its data is committed all the same.
        let _ = self.reply.send(result);
    }
}

/// Runs `work` under a savepoint: released on success, rolled back on error or panic.
fn within_savepoint<T>(
    conn: &mut Connection,
    work: impl FnOnce(&mut Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("SAVEPOINT op")?;
    let outcome = run_caught(conn, work);
    if outcome.is_err() {
        conn.execute_batch("ROLLBACK TO op")?;
    }
    conn.execute_batch("RELEASE op")?;
    outcome
}

/// Runs `work`, a panic in it turned into an error.
fn run_caught<T>(
    conn: &mut Connection,
    work: impl FnOnce(&mut Connection) -> Result<T>,
) -> Result<T> {
    catch_unwind(AssertUnwindSafe(|| work(&mut *conn)))
        .unwrap_or_else(|_| Err(StoreError::database("a write operation panicked")))
}

pub struct Writer {
    queue: Mutex<Option<mpsc::Sender<Box<dyn WriteOp>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread owning `conn`.
    pub fn start(conn: Connection) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("vigie-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::database(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `work` and waits until the transaction that holds it has committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let sender = self.sender()?;
        let (reply, answer) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(Op {
            work: Some(work),
            outcome: None,
            reply,
        });
        sender
            .send(op)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    fn sender(&self) -> Result<mpsc::Sender<Box<dyn WriteOp>>> {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.clone().ok_or(StoreError::WriterStopped)
    }

    pub fn queue_depth(&self) -> usize {
        match self.sender() {
            Ok(sender) => sender.max_capacity() - sender.capacity(),
            Err(_) => 0,
        }
    }

    /// Stops taking writes, lets the thread commit everything already queued, and waits for it.
    pub async fn close(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn run(mut conn: Connection, mut queue: mpsc::Receiver<Box<dyn WriteOp>>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
    tracing::debug!("sqlite writer drained and stopped");
}

fn commit_batch(conn: &mut Connection, mut batch: Vec<Box<dyn WriteOp>>) {
    // IMMEDIATE takes the write lock up front, so another process (an offline `vigie user add`)
    // makes us wait at BEGIN (busy_timeout) rather than fail half-way through the batch.
    let commit: Result<()> = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(StoreError::from)
        .and_then(|()| {
            let mut ops = batch.iter_mut();
            if let Some(first) = ops.next() {
                if !first.apply(conn, Undo::Transaction) {
                    begin_again(conn)?;
                }
            }
            for op in ops {
                op.apply(conn, Undo::Savepoint);
            }
            conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                StoreError::from(e)
            })
        });
    if let Err(reason) = &commit {
        tracing::error!(%reason, operations = batch.len(), "sqlite batch commit failed");
    }
    for op in batch {
        op.finish(commit.clone());
    }
}

/// Rolls back what the batch's failed first operation wrote and opens the transaction anew
/// for the others. SQLite may already have rolled back on its own (a full disk does).
fn begin_again(conn: &mut Connection) -> Result<()> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    Ok(conn.execute_batch("BEGIN IMMEDIATE")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn writer() -> (tempfile::TempDir, Arc<Writer>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v INTEGER UNIQUE)")
            .unwrap();
        (dir, Arc::new(Writer::start(conn).unwrap()))
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_alone() {
        let (_dir, writer) = writer();
        let mut tasks = Vec::new();
        for v in [1, 2, 1, 3] {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .write(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [v])?))
                    .await
            }));
        }
        let mut failures = 0;
        for task in tasks {
            failures += task.await.unwrap().is_err() as usize;
        }
        assert_eq!(failures, 1, "only the duplicate fails");
        let count: i64 = writer
            .write(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(count, 3);
    }

    /// A batch's first operation runs without a savepoint: when it fails, what it wrote
    /// before failing goes, and the operations queued behind it in the same batch commit.
    #[tokio::test]
    async fn a_failing_first_write_of_a_batch_takes_back_only_its_own_rows() {
        let (_dir, writer) = writer();
        // Holds the writer so that the next operations queue up and form one batch.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(move |c| {
                        held.recv().ok();
                        Ok(c.execute("INSERT INTO t VALUES (1)", [])?)
                    })
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut tasks = Vec::new();
        for (written, failure) in [(100, "duplicate"), (2, ""), (200, "panic"), (3, "")] {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .write(move |c| {
                        let seen: i64 =
                            c.query_row("SELECT count(*) FROM t WHERE v >= 100", [], |r| r.get(0))?;
                        assert_eq!(seen, 0, "a failed operation's rows are gone");
                        c.execute("INSERT INTO t VALUES (?1)", [written])?;
                        match failure {
                            "duplicate" => Ok(c.execute("INSERT INTO t VALUES (1)", [])?),
                            "panic" => panic!("bug in a write"),
                            _ => Ok(1),
                        }
                    })
                    .await
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let outcomes: Vec<bool> = succeeded(tasks).await;
        assert_eq!(outcomes, [false, true, false, true]);
        let stored: Vec<i64> = writer
            .write(|c| {
                let mut select = c.prepare("SELECT v FROM t ORDER BY v")?;
                let rows = select.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, [1, 2, 3]);
    }

    async fn succeeded<T>(tasks: Vec<tokio::task::JoinHandle<Result<T>>>) -> Vec<bool> {
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().is_ok());
        }
        outcomes
    }

    #[tokio::test]
    async fn a_panicking_write_does_not_kill_the_writer() {
        let (_dir, writer) = writer();
        let err = writer
            .write(|_c| -> Result<()> { panic!("bug in a write") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"));
        writer
            .write(|c| Ok(c.execute("INSERT INTO t VALUES (7)", [])?))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn close_commits_what_was_queued_then_refuses() {
        let (dir, writer) = writer();
        let mut tasks = Vec::new();
        for v in 0..200 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .write(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [v])?))
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        writer.close().await;
        assert!(matches!(
            writer.write(|_| Ok(())).await,
            Err(StoreError::WriterStopped)
        ));
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 200);
    }
}
