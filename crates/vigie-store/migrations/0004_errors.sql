-- Errors and performance (Sentry ingest): issues and their events, transaction aggregates,
-- release health, client reports, cron check-ins, attachments (see src/errors/mod.rs).

-- Per-project settings of error ingest; a project without a row uses the defaults.
CREATE TABLE error_settings (
    project_id         INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    apdex_ms           INTEGER NOT NULL,
    events_per_minute  INTEGER,
    keep_user_contact  INTEGER NOT NULL,
    scrub_keys         TEXT NOT NULL
);

CREATE TABLE issues (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    grouping_key        TEXT NOT NULL,
    title               TEXT NOT NULL,
    culprit             TEXT NOT NULL,
    level               TEXT NOT NULL,
    status              TEXT NOT NULL,
    regressed_at        INTEGER,
    resolved_release    TEXT,
    ignore_until_count  INTEGER,
    ignore_until        INTEGER,
    first_seen          INTEGER NOT NULL,
    last_seen           INTEGER NOT NULL,
    event_count         INTEGER NOT NULL,
    user_count          INTEGER NOT NULL,
    first_release       TEXT,
    last_release        TEXT,
    UNIQUE (project_id, grouping_key)
);
CREATE INDEX issues_by_last_seen ON issues (project_id, last_seen);

-- Tag values per issue (environment, release, level, the SDK's tags): the distribution on the
-- issue page and the `tag:value` filter of the list.
CREATE TABLE issue_tags (
    issue_id   INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    count      INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (issue_id, key, value)
);
CREATE INDEX issue_tags_by_value ON issue_tags (key, value);

-- Distinct users per issue, so "users affected" counts each user once.
CREATE TABLE issue_users (
    issue_id  INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    user_key  TEXT NOT NULL,
    PRIMARY KEY (issue_id, user_key)
);

-- Events per issue per hour: sparklines and counts over a period.
CREATE TABLE issue_hours (
    issue_id  INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    hour      INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (issue_id, hour)
);

-- Summary columns first, the zstd-compressed JSON body last (see 0003_logs.sql for why).
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    issue_id     INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    time         INTEGER NOT NULL,
    received     INTEGER NOT NULL,
    level        TEXT NOT NULL,
    title        TEXT NOT NULL,
    environment  TEXT,
    release      TEXT,
    trace_id     TEXT,
    job_id       TEXT,
    user_label   TEXT,
    body         BLOB NOT NULL,
    UNIQUE (project_id, event_id)
);
CREATE INDEX events_by_issue ON events (issue_id, time);
CREATE INDEX events_by_time ON events (project_id, time);
CREATE INDEX events_by_trace ON events (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX events_by_job ON events (project_id, job_id) WHERE job_id IS NOT NULL;

-- Transactions per (name, op, minute): counts, Apdex classes and a duration sketch.
CREATE TABLE transaction_minutes (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    op          TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    satisfied   INTEGER NOT NULL,
    tolerated   INTEGER NOT NULL,
    sketch      BLOB NOT NULL,
    PRIMARY KEY (project_id, minute, name, op)
);
CREATE INDEX transaction_minutes_by_name ON transaction_minutes (project_id, name, minute);

-- A few whole transactions per name and minute (the first, the slowest, the first failure),
-- for the span waterfall.
CREATE TABLE transaction_samples (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    op           TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    time         INTEGER NOT NULL,
    duration_ms  REAL NOT NULL,
    status       TEXT NOT NULL,
    trace_id     TEXT,
    job_id       TEXT,
    body         BLOB NOT NULL,
    UNIQUE (project_id, event_id)
);
CREATE INDEX transaction_samples_by_name ON transaction_samples (project_id, name, time);

-- Spans per transaction name, op and normalized description, per hour: "slow spans".
CREATE TABLE span_hours (
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    op           TEXT NOT NULL,
    description  TEXT NOT NULL,
    hour         INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    total_ms     REAL NOT NULL,
    max_ms       REAL NOT NULL,
    PRIMARY KEY (project_id, name, hour, op, description)
);

-- Release health: sessions per release, environment and hour.
CREATE TABLE release_hours (
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    hour         INTEGER NOT NULL,
    started      INTEGER NOT NULL,
    errored      INTEGER NOT NULL,
    crashed      INTEGER NOT NULL,
    abnormal     INTEGER NOT NULL,
    PRIMARY KEY (project_id, release, environment, hour)
);

-- What SDKs report they dropped (client reports), and what Vigie refused (quotas), per hour.
CREATE TABLE dropped_hours (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hour        INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    category    TEXT NOT NULL,
    quantity    INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, reason, category)
);

-- Cron check-ins as sent; monitors are built on them.
CREATE TABLE check_ins (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    check_in_id   TEXT NOT NULL,
    monitor_slug  TEXT NOT NULL,
    status        TEXT NOT NULL,
    duration_ms   REAL,
    environment   TEXT,
    received      INTEGER NOT NULL,
    body          TEXT NOT NULL
);
CREATE INDEX check_ins_by_monitor ON check_ins (project_id, monitor_slug, received);

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    received      INTEGER NOT NULL,
    data          BLOB NOT NULL
);
CREATE INDEX attachments_by_event ON attachments (project_id, event_id);
