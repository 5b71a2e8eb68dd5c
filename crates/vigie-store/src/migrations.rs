//! Versioned schema migrations, written once for both databases.
//!
//! Each migration is a SQL file under `migrations/`, applied once, inside a transaction, and
//! recorded in `schema_migrations`. A database newer than this binary (a version we do not know)
//! is refused rather than silently used. An empty SQLite database takes the schema all of them
//! make in one step instead (`sqlite::schema`): same result, a fraction of the start time.
//!
//! The files are SQLite's dialect, which [`Migration::sql`] writes out for PostgreSQL by a few
//! fixed rules, so a table's shape is stated once and cannot drift between the backends:
//!
//! ```text
//!   migrations/0004_errors.sql ──┬─ as written ─────────────────────────────▶ SQLite
//!                                └─ INTEGER → BIGINT, REAL → DOUBLE PRECISION,
//!                                   BLOB → BYTEA, … AUTOINCREMENT → BIGSERIAL ─▶ PostgreSQL
//! ```
//!
//! What truly differs (an FTS5 table, TOAST storage, an index shaped for one planner) sits in a
//! block that only one backend runs:
//!
//! ```sql
//! -- sqlite only:
//! CREATE VIRTUAL TABLE … USING fts5(…);
//! -- postgres only:
//! ALTER TABLE … SET STORAGE EXTERNAL;
//! -- end
//! ```
//!
//! Lines inside such a block are taken as written, with no translation.

use crate::{Backend, StoreError};

/// One schema step: its version number, its name, and its SQL as written (SQLite's dialect).
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    source: &'static str,
}

const fn step(version: u32, name: &'static str, source: &'static str) -> Migration {
    Migration {
        version,
        name,
        source,
    }
}

/// Every migration, in the order they apply.
pub const ALL: &[Migration] = &[
    step(
        1,
        "accounts and projects",
        include_str!("../migrations/0001_init.sql"),
    ),
    step(2, "jobs", include_str!("../migrations/0002_jobs.sql")),
    step(3, "logs", include_str!("../migrations/0003_logs.sql")),
    step(
        4,
        "errors and performance",
        include_str!("../migrations/0004_errors.sql"),
    ),
    step(
        5,
        "issue list indexes",
        include_str!("../migrations/0005_issue_list.sql"),
    ),
    step(
        6,
        "monitors",
        include_str!("../migrations/0006_monitors.sql"),
    ),
    step(7, "alerts", include_str!("../migrations/0007_alerts.sql")),
    step(
        8,
        "alert thresholds",
        include_str!("../migrations/0008_alert_thresholds.sql"),
    ),
    step(9, "celery", include_str!("../migrations/0009_celery.sql")),
    step(
        10,
        "celery history",
        include_str!("../migrations/0010_celery_history.sql"),
    ),
    step(
        11,
        "feedback",
        include_str!("../migrations/0011_feedback.sql"),
    ),
    step(
        12,
        "stray spans",
        include_str!("../migrations/0012_stray_spans.sql"),
    ),
    step(
        13,
        "alert repeats",
        include_str!("../migrations/0013_alert_repeats.sql"),
    ),
    step(
        14,
        "samples by trace",
        include_str!("../migrations/0014_samples_by_trace.sql"),
    ),
    step(
        15,
        "change feed and instances",
        include_str!("../migrations/0015_cluster.sql"),
    ),
    step(
        16,
        "login failures",
        include_str!("../migrations/0016_login_failures.sql"),
    ),
    step(
        17,
        "shared counts",
        include_str!("../migrations/0017_shared_counts.sql"),
    ),
    step(
        18,
        "log block heads",
        include_str!("../migrations/0018_log_block_heads.sql"),
    ),
    step(19, "spans", include_str!("../migrations/0019_spans.sql")),
    step(
        20,
        "trace entries",
        include_str!("../migrations/0020_trace_entries.sql"),
    ),
    step(
        21,
        "metrics",
        include_str!("../migrations/0021_metrics.sql"),
    ),
    step(
        22,
        "trace keep rules",
        include_str!("../migrations/0022_trace_keep.sql"),
    ),
    step(
        23,
        "artifact bundles",
        include_str!("../migrations/0023_artifacts.sql"),
    ),
    step(
        24,
        "releases",
        include_str!("../migrations/0024_releases.sql"),
    ),
    step(
        25,
        "release users and issue regressions",
        include_str!("../migrations/0025_release_users.sql"),
    ),
    step(
        26,
        "celery actions and progress descriptions",
        include_str!("../migrations/0026_celery_actions.sql"),
    ),
    step(
        27,
        "followed log files",
        include_str!("../migrations/0027_followed_files.sql"),
    ),
    step(
        28,
        "event bodies kept in their rows (PostgreSQL)",
        include_str!("../migrations/0028_inline_bodies.sql"),
    ),
    step(
        29,
        "log block groups and their word filters",
        include_str!("../migrations/0029_log_block_groups.sql"),
    ),
    step(
        30,
        "beginnings of words in log word filters",
        include_str!("../migrations/0030_log_word_starts.sql"),
    ),
];

impl Migration {
    /// The statements this migration runs on `backend`.
    pub fn sql(&self, backend: Backend) -> String {
        for_backend(self.source, backend)
    }
}

/// The migrations a database at schema version `current` still needs. A database migrated by a
/// newer Vigie is refused: this binary would misread what it does not know.
pub fn pending(current: u32) -> Result<impl Iterator<Item = &'static Migration>, StoreError> {
    let known = ALL.last().map_or(0, |m| m.version);
    if current > known {
        return Err(too_new(current, known));
    }
    Ok(ALL.iter().filter(move |m| m.version > current))
}

/// Keeps the lines meant for `backend` and, for PostgreSQL, translates the shared ones.
fn for_backend(source: &str, backend: Backend) -> String {
    let mut out = String::with_capacity(source.len() + source.len() / 8);
    let mut only: Option<Backend> = None;
    for line in source.lines() {
        match line.trim_end() {
            "-- sqlite only:" => only = Some(Backend::Sqlite),
            "-- postgres only:" => only = Some(Backend::Postgres),
            "-- end" => only = None,
            _ => {
                match only {
                    Some(other) if other != backend => continue,
                    None if backend == Backend::Postgres => out.push_str(&postgres_types(line)),
                    _ => out.push_str(line),
                }
                out.push('\n');
            }
        }
    }
    out
}

/// SQLite's column types as PostgreSQL's: every integer is 64-bit (SQLite's always are), an
/// `AUTOINCREMENT` key is a sequence. Comments are left as written.
fn postgres_types(line: &str) -> String {
    let (code, comment) = match line.find("--") {
        Some(at) => line.split_at(at),
        None => (line, ""),
    };
    let code = code.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY");
    let mut out = String::with_capacity(line.len() + 8);
    let mut rest = code.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic()) {
        let (before, word_on) = rest.split_at(start);
        let end = word_on
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word_on.len());
        let (word, after) = word_on.split_at(end);
        out.push_str(before);
        out.push_str(match word {
            "INTEGER" => "BIGINT",
            "REAL" => "DOUBLE PRECISION",
            "BLOB" => "BYTEA",
            other => other,
        });
        rest = after;
    }
    out.push_str(rest);
    out.push_str(comment);
    out
}

/// The error when the database was migrated by a newer Vigie.
fn too_new(found: u32, known: u32) -> StoreError {
    StoreError::Migrate {
        version: found,
        reason: format!(
            "the database is at schema version {found} but this Vigie knows only up to {known}; \
             run a newer Vigie"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_lines_are_translated_for_postgres_only() {
        let source = "CREATE TABLE t (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n    \
                      n INTEGER NOT NULL, -- INTEGER in a comment stays\n    x REAL,\n    \
                      b BLOB, integer_count TEXT\n);\n";
        assert_eq!(for_backend(source, Backend::Sqlite), source);
        assert_eq!(
            for_backend(source, Backend::Postgres),
            "CREATE TABLE t (\n    id BIGSERIAL PRIMARY KEY,\n    \
             n BIGINT NOT NULL, -- INTEGER in a comment stays\n    x DOUBLE PRECISION,\n    \
             b BYTEA, integer_count TEXT\n);\n"
        );
    }

    #[test]
    fn a_block_runs_on_its_backend_only_and_as_written() {
        let source = "A INTEGER;\n-- sqlite only:\nS INTEGER;\n-- postgres only:\nP INTEGER;\n\
                      -- end\nB BLOB;\n";
        assert_eq!(
            for_backend(source, Backend::Sqlite),
            "A INTEGER;\nS INTEGER;\nB BLOB;\n"
        );
        assert_eq!(
            for_backend(source, Backend::Postgres),
            "A BIGINT;\nP INTEGER;\nB BYTEA;\n"
        );
    }

    #[test]
    fn versions_follow_each_other_and_blocks_close() {
        for (i, m) in ALL.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
            let mut open = false;
            for line in m.source.lines() {
                if line.starts_with("-- ") && line.ends_with(" only:") {
                    open = true;
                } else if line == "-- end" {
                    assert!(open, "{}: an end without a block", m.name);
                    open = false;
                }
            }
            assert!(!open, "{}: a block is not closed", m.name);
        }
    }
}
