//! Rotating log files written from the records Vigie stores, for people and tools that read
//! files (`tail -f errors.log`, a `/logs/` page, logrotate habits).
//!
//! Each configured route (`[[logs.files]]`) names a file under `<data>/files/`, a query that
//! picks its records, a size at which it rotates (`name` → `name.1` → … → `name.N`, oldest
//! dropped; optionally gzipped) and optionally a daily rotation. Writes happen on one thread
//! of their own after the records are stored, so a slow disk never holds up ingest. Each batch
//! is written with plain `write` calls and no user-space buffer left behind: what a crash of
//! Vigie leaves in the file is every line of every batch written before it.

use crate::config::FileRouteConfig;
use flate2::write::GzEncoder;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;
use vigie_core::{LogQuery, LogRecord, ProjectId};

/// Batches waiting for the file writer; beyond this the sink waits.
const QUEUE: usize = 256;

struct Route {
    name: String,
    query: LogQuery,
    path: PathBuf,
    max_bytes: u64,
    backups: u32,
    compress: bool,
    daily: bool,
    json: bool,
    file: Option<File>,
    size: u64,
    day: i64,
}

#[derive(Clone)]
pub struct FileRoutes {
    queue: mpsc::Sender<Arc<Vec<LogRecord>>>,
}

/// A route that cannot be set up, named for the user.
pub fn check(config: &FileRouteConfig) -> Result<LogQuery, String> {
    let query = LogQuery::parse(&config.query, 0)
        .map_err(|e| format!("logs.files {:?}: query: {e}", config.name))?;
    if query.from.is_some() || query.to.is_some() {
        return Err(format!(
            "logs.files {:?}: a file's query cannot have time filters",
            config.name
        ));
    }
    Ok(query)
}

impl FileRoutes {
    /// Opens the routes' files under `dir` and starts the writer thread; `None` without routes.
    pub fn start(dir: &Path, configs: &[FileRouteConfig]) -> Result<Option<FileRoutes>, String> {
        if configs.is_empty() {
            return Ok(None);
        }
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut routes = Vec::new();
        for config in configs {
            let query = check(config)?;
            let path = dir.join(&config.name);
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            routes.push(Route {
                name: config.name.clone(),
                query,
                path,
                max_bytes: config.max_size_mib.max(1) << 20,
                backups: config.backups,
                compress: config.compress,
                daily: config.daily,
                json: config.format == "json",
                file: None,
                size,
                day: today(),
            });
        }
        let (queue, mut rx) = mpsc::channel::<Arc<Vec<LogRecord>>>(QUEUE);
        std::thread::Builder::new()
            .name("vigie-log-files".into())
            .spawn(move || {
                while let Some(records) = rx.blocking_recv() {
                    for route in routes.iter_mut() {
                        if let Err(err) = route.write(&records) {
                            tracing::error!(file = %route.name, %err, "cannot write log file");
                            route.file = None;
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the log file writer: {e}"))?;
        Ok(Some(FileRoutes { queue }))
    }

    /// Hands stored records to the writer (any project: routes are server-wide).
    pub async fn write(&self, _project: ProjectId, records: Arc<Vec<LogRecord>>) {
        let _ = self.queue.send(records).await;
    }
}

fn today() -> i64 {
    vigie_core::Timestamp::now().millis() / 86_400_000
}

impl Route {
    fn write(&mut self, records: &[LogRecord]) -> io::Result<()> {
        let mut chunk = String::new();
        for record in records {
            if !self.query.matches(record) {
                continue;
            }
            let line = if self.json {
                serde_json::to_string(&super::view::RecordView::new(record, None))
                    .unwrap_or_default()
            } else {
                record.text_line()
            };
            let day = today();
            let over = self.size + (chunk.len() + line.len() + 1) as u64 > self.max_bytes;
            if (over && self.size + chunk.len() as u64 > 0) || (self.daily && day != self.day) {
                self.flush(&mut chunk)?;
                self.rotate()?;
                self.day = day;
            }
            chunk.push_str(&line);
            chunk.push('\n');
        }
        self.flush(&mut chunk)
    }

    fn flush(&mut self, chunk: &mut String) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(chunk.as_bytes())?;
        }
        self.size += chunk.len() as u64;
        chunk.clear();
        Ok(())
    }

    fn backup(&self, n: u32) -> PathBuf {
        let ext = if self.compress { ".gz" } else { "" };
        PathBuf::from(format!("{}.{n}{ext}", self.path.display()))
    }

    /// `name.N-1` → `name.N` … `name` → `name.1` (gzipped when asked); the oldest goes.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.backups == 0 {
            fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            fs::remove_file(self.backup(self.backups)).or_else(ignore_missing)?;
            for n in (1..self.backups).rev() {
                fs::rename(self.backup(n), self.backup(n + 1)).or_else(ignore_missing)?;
            }
            if self.compress {
                let mut input = File::open(&self.path)?;
                let output = File::create(self.backup(1))?;
                let mut gz = GzEncoder::new(output, flate2::Compression::default());
                io::copy(&mut input, &mut gz)?;
                gz.finish()?.sync_all()?;
                fs::remove_file(&self.path)?;
            } else {
                fs::rename(&self.path, self.backup(1))?;
            }
        }
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(err: io::Error) -> io::Result<()> {
    match err.kind() {
        io::ErrorKind::NotFound => Ok(()),
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn config(name: &str, query: &str, compress: bool) -> FileRouteConfig {
        FileRouteConfig {
            name: name.into(),
            query: query.into(),
            max_size_mib: 1,
            backups: 2,
            compress,
            daily: false,
            format: "text".into(),
        }
    }

    fn record(i: usize, level: vigie_core::Level) -> LogRecord {
        LogRecord {
            time: 1_795_295_700_000_000_000,
            source: "worker".into(),
            level,
            logger: "invoices".into(),
            message: format!("line {i} {}", "x".repeat(200)).into(),
            ..LogRecord::default()
        }
    }

    #[tokio::test]
    async fn routes_pick_rotate_and_compress() {
        let dir = tempfile::tempdir().unwrap();
        let routes = FileRoutes::start(
            dir.path(),
            &[
                config("errors.log", "level:>=error", true),
                config("all.log", "", false),
            ],
        )
        .unwrap()
        .unwrap();
        // ~6 MiB in all: all.log rotates several times and keeps two backups.
        for batch in 0..30 {
            let records: Vec<_> = (0..1000)
                .map(|i| {
                    let level = if i % 100 == 0 {
                        vigie_core::Level::Error
                    } else {
                        vigie_core::Level::Info
                    };
                    record(batch * 1000 + i, level)
                })
                .collect();
            routes.write(ProjectId(1), Arc::new(records)).await;
        }
        drop(routes);
        // The writer drains its queue before the files are read.
        let errors = dir.path().join("errors.log");
        for _ in 0..100 {
            let done = fs::read_to_string(dir.path().join("all.log"))
                .is_ok_and(|t| t.contains("line 29999 "));
            if done {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let text = fs::read_to_string(&errors).unwrap();
        assert_eq!(text.lines().count(), 300);
        assert!(text.starts_with("2026-11-21 21:15:00,000 ERROR    worker invoices: line 0 "));
        let all = dir.path().join("all.log");
        assert!(fs::metadata(&all).unwrap().len() <= 1 << 20);
        assert!(dir.path().join("all.log.1").exists());
        assert!(dir.path().join("all.log.2").exists());
        assert!(!dir.path().join("all.log.3").exists(), "only two backups");
        assert!(
            !dir.path().join("errors.log.1.gz").exists(),
            "errors.log is small"
        );
    }

    #[test]
    fn rotated_files_are_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut route = Route {
            name: "a.log".into(),
            query: LogQuery::default(),
            path: dir.path().join("a.log"),
            max_bytes: 1000,
            backups: 1,
            compress: true,
            daily: false,
            json: false,
            file: None,
            size: 0,
            day: today(),
        };
        route
            .write(
                &(0..10)
                    .map(|i| record(i, vigie_core::Level::Info))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(dir.path().join("a.log.1.gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.contains("line 7 "), "{text}");
        assert!(fs::read_to_string(dir.path().join("a.log"))
            .unwrap()
            .contains("line 9 "));
    }

    #[test]
    fn bad_routes_are_named() {
        let err = check(&config("x.log", "since:1h", false)).unwrap_err();
        assert!(err.contains("time filters"), "{err}");
        let err = check(&config("x.log", "levl:error", false)).unwrap_err();
        assert!(err.contains("x.log"), "{err}");
    }
}
