//! Versioned schema migrations, one ordered list per backend.
//!
//! Each migration is a SQL file applied once, inside a transaction, and recorded in
//! `schema_migrations`. A database newer than this binary (a version we do not know) is refused
//! rather than silently used.

/// One schema step: its version number and the SQL that performs it.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts and projects",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "jobs",
        sql: include_str!("../migrations/sqlite/0002_jobs.sql"),
    },
    Migration {
        version: 3,
        name: "logs",
        sql: include_str!("../migrations/sqlite/0003_logs.sql"),
    },
    Migration {
        version: 4,
        name: "errors and performance",
        sql: include_str!("../migrations/sqlite/0004_errors.sql"),
    },
    Migration {
        version: 5,
        name: "issue list indexes",
        sql: include_str!("../migrations/sqlite/0005_issue_list.sql"),
    },
    Migration {
        version: 6,
        name: "monitors",
        sql: include_str!("../migrations/sqlite/0006_monitors.sql"),
    },
    Migration {
        version: 7,
        name: "alerts",
        sql: include_str!("../migrations/sqlite/0007_alerts.sql"),
    },
    Migration {
        version: 8,
        name: "alert thresholds",
        sql: include_str!("../migrations/sqlite/0008_alert_thresholds.sql"),
    },
    Migration {
        version: 9,
        name: "celery",
        sql: include_str!("../migrations/sqlite/0009_celery.sql"),
    },
    Migration {
        version: 10,
        name: "celery history",
        sql: include_str!("../migrations/sqlite/0010_celery_history.sql"),
    },
    Migration {
        version: 11,
        name: "feedback",
        sql: include_str!("../migrations/sqlite/0011_feedback.sql"),
    },
    Migration {
        version: 12,
        name: "stray spans",
        sql: include_str!("../migrations/sqlite/0012_stray_spans.sql"),
    },
    Migration {
        version: 13,
        name: "alert repeats",
        sql: include_str!("../migrations/sqlite/0013_alert_repeats.sql"),
    },
    Migration {
        version: 14,
        name: "samples by trace",
        sql: include_str!("../migrations/sqlite/0014_samples_by_trace.sql"),
    },
    Migration {
        version: 15,
        name: "change feed and instances",
        sql: include_str!("../migrations/sqlite/0015_cluster.sql"),
    },
    Migration {
        version: 16,
        name: "login failures",
        sql: include_str!("../migrations/sqlite/0016_login_failures.sql"),
    },
    Migration {
        version: 17,
        name: "shared counts",
        sql: include_str!("../migrations/sqlite/0017_shared_counts.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts and projects",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "jobs",
        sql: include_str!("../migrations/postgres/0002_jobs.sql"),
    },
    Migration {
        version: 3,
        name: "logs",
        sql: include_str!("../migrations/postgres/0003_logs.sql"),
    },
    Migration {
        version: 4,
        name: "errors and performance",
        sql: include_str!("../migrations/postgres/0004_errors.sql"),
    },
    Migration {
        version: 5,
        name: "issue list indexes",
        sql: include_str!("../migrations/postgres/0005_issue_list.sql"),
    },
    Migration {
        version: 6,
        name: "monitors",
        sql: include_str!("../migrations/postgres/0006_monitors.sql"),
    },
    Migration {
        version: 7,
        name: "alerts",
        sql: include_str!("../migrations/postgres/0007_alerts.sql"),
    },
    Migration {
        version: 8,
        name: "alert thresholds",
        sql: include_str!("../migrations/postgres/0008_alert_thresholds.sql"),
    },
    Migration {
        version: 9,
        name: "celery",
        sql: include_str!("../migrations/postgres/0009_celery.sql"),
    },
    Migration {
        version: 10,
        name: "celery history",
        sql: include_str!("../migrations/postgres/0010_celery_history.sql"),
    },
    Migration {
        version: 11,
        name: "feedback",
        sql: include_str!("../migrations/postgres/0011_feedback.sql"),
    },
    Migration {
        version: 12,
        name: "stray spans",
        sql: include_str!("../migrations/postgres/0012_stray_spans.sql"),
    },
    Migration {
        version: 13,
        name: "alert repeats",
        sql: include_str!("../migrations/postgres/0013_alert_repeats.sql"),
    },
    Migration {
        version: 14,
        name: "samples by trace",
        sql: include_str!("../migrations/postgres/0014_samples_by_trace.sql"),
    },
    Migration {
        version: 15,
        name: "change feed and instances",
        sql: include_str!("../migrations/postgres/0015_cluster.sql"),
    },
    Migration {
        version: 16,
        name: "login failures",
        sql: include_str!("../migrations/postgres/0016_login_failures.sql"),
    },
    Migration {
        version: 17,
        name: "shared counts",
        sql: include_str!("../migrations/postgres/0017_shared_counts.sql"),
    },
];

/// The error when the database was migrated by a newer Vigie.
pub fn too_new(found: u32, known: u32) -> crate::StoreError {
    crate::StoreError::Migrate {
        version: found,
        reason: format!(
            "the database is at schema version {found} but this Vigie knows only up to {known}; \
             run a newer Vigie"
        ),
    }
}
