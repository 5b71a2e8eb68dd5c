-- Cron and heartbeat monitors (see vigie_core::monitor) and their runs. Check-ins now land
-- here as runs, so the raw check-in table of 0004 goes.
DROP TABLE check_ins;

CREATE TABLE monitors (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    slug                TEXT NOT NULL,
    -- crontab | interval, or NULL until an SDK sends a monitor_config.
    schedule_kind       TEXT,
    -- The crontab expression, or the interval's count.
    schedule_value      TEXT,
    schedule_unit       TEXT,
    timezone            TEXT NOT NULL,
    checkin_margin_min  INTEGER NOT NULL,
    max_runtime_min     INTEGER NOT NULL,
    -- new | up | down (late and paused are derived when shown).
    state               TEXT NOT NULL,
    paused              INTEGER NOT NULL,
    next_expected       INTEGER,
    last_check_in       INTEGER,
    created_at          INTEGER NOT NULL,
    UNIQUE (project_id, slug)
);
CREATE INDEX monitors_by_next_expected ON monitors (next_expected);

CREATE TABLE monitor_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor_id   INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
    check_in_id  TEXT NOT NULL,
    -- in_progress | ok | error | missed | timed_out
    status       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    duration_ms  REAL,
    environment  TEXT,
    -- What a ping sent in its body (the script's output), truncated.
    output       TEXT,
    -- The Job this run is shown as.
    job_id       TEXT,
    UNIQUE (monitor_id, check_in_id)
);
CREATE INDEX monitor_runs_by_monitor ON monitor_runs (monitor_id, started_at);
CREATE INDEX monitor_runs_open ON monitor_runs (status, started_at);
