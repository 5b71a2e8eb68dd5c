//! A small pool of read-only SQLite connections.
//!
//! In WAL mode readers never block the writer nor each other, so reads run in parallel on
//! blocking threads, each on a connection of its own. The pool is a stack behind a semaphore:
//! at most `size` reads run at once and the rest wait their turn.
//!
//! A connection reads the whole schema when it opens (a millisecond or two of parsing), so
//! it opens on the blocking thread of the read that needs it, never on the async runtime.
//! (Opening the first one at start, beside the writer's work, was tried: the start was no
//! faster within this machine's noise.)

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Semaphore;

pub struct Readers {
    path: PathBuf,
    /// The connections not in use; `None` once the pool is closed, so a read that ends
    /// after [`Readers::close`] drops its connection instead of keeping it open.
    idle: Mutex<Option<Vec<Connection>>>,
    permits: Semaphore,
}

impl Readers {
    pub fn new(path: &Path, size: usize) -> Readers {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Some(Vec::with_capacity(size))),
            permits: Semaphore::new(size),
        }
    }

    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        // Connections open lazily, and a read that panicked loses its connection: both cases
        // open a fresh one, on the read's own thread.
        let idle = lock(&self.idle).as_mut().and_then(Vec::pop);
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let mut conn = match idle {
                Some(conn) => conn,
                None => super::open_reader(&path)?,
            };
            let result = work(&mut conn);
            Ok::<_, StoreError>((conn, result))
        })
        .await
        .map_err(|_| StoreError::database("a read operation panicked"))??;
        give_back(&self.idle, conn);
        result
    }

    /// Closes the idle connections and refuses further reads.
    pub fn close(&self) {
        self.permits.close();
        *lock(&self.idle) = None;
    }
}

fn give_back(idle: &Mutex<Option<Vec<Connection>>>, conn: Connection) {
    if let Some(idle) = lock(idle).as_mut() {
        idle.push(conn);
    }
}

/// The idle connections. The lock is held only to push or pop, never across a read, so a
/// poisoned lock still guards a sound list.
fn lock(idle: &Mutex<Option<Vec<Connection>>>) -> MutexGuard<'_, Option<Vec<Connection>>> {
    idle.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read still running when the pool closes ends normally, and its connection is closed
    /// rather than kept; later reads are refused.
    #[tokio::test]
    async fn a_read_ending_after_close_does_not_keep_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
            .unwrap();
        let readers = std::sync::Arc::new(Readers::new(&path, 2));
        let (started, wait_started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let readers = readers.clone();
            async move {
                readers
                    .read(move |conn| {
                        started.send(()).unwrap();
                        released.recv().unwrap();
                        Ok(conn.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0))?)
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || wait_started.recv().unwrap())
            .await
            .unwrap();
        readers.close();
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), 7);
        assert!(lock(&readers.idle).is_none(), "the connection was kept");
        let refused = readers.read(|_| Ok(())).await;
        assert!(
            matches!(refused, Err(StoreError::WriterStopped)),
            "{refused:?}"
        );
    }
}
