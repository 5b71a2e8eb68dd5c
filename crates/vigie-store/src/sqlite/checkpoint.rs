//! WAL checkpoints off the writer's path.
//!
//! SQLite normally checkpoints (copies the write-ahead log back into the database file, with
//! fsyncs) inside whichever commit crosses the threshold, so now and then one commit takes
//! hundreds of milliseconds and every write queued behind it waits: a live progress update
//! arrives late. Vigie turns automatic checkpoints off on the writer and runs a PASSIVE
//! checkpoint here, on a connection of its own, once a second. PASSIVE never blocks the writer
//! or readers; it copies what it can, and the next round copies the rest.
//!
//! Under sustained writes (a log flood) PASSIVE alone never lets SQLite start the log over: the
//! writer always adds frames after the last one copied, and the WAL file grows for as long as
//! the flood lasts. So once the file passes `WAL_LIMIT`, the round ends with a TRUNCATE
//! checkpoint: it briefly holds writers back (most frames were just copied by the PASSIVE one,
//! so only the tail is left to copy) and cuts the file back to zero.

use crate::Result;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(1);
/// WAL size past which a round truncates the log file.
const WAL_LIMIT: u64 = 64 << 20;

pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;")?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vigie-sqlite-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EVERY);
                    if let Err(err) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::warn!(%err, "wal checkpoint failed");
                    }
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    if size > WAL_LIMIT {
                        if let Err(err) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                            tracing::warn!(%err, size, "wal truncation failed");
                        }
                    }
                }
            })
            .map_err(|e| {
                crate::StoreError::database(format!("cannot start the checkpointer: {e}"))
            })?;
        Ok(Checkpointer {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs a last checkpoint and stops.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
