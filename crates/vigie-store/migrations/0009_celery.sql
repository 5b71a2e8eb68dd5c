-- Celery (see vigie_core::celery): each task as its events describe it, every event for the
-- task's timeline, and the workers with their last heartbeat.
CREATE TABLE celery_tasks (
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    uuid          TEXT NOT NULL,
    name          TEXT,
    state         TEXT NOT NULL,
    args          TEXT,
    kwargs        TEXT,
    result        TEXT,
    exception     TEXT,
    traceback     TEXT,
    worker        TEXT,
    queue         TEXT,
    routing_key   TEXT,
    retries       INTEGER NOT NULL,
    eta           TEXT,
    expires       TEXT,
    parent_id     TEXT,
    root_id       TEXT,
    sent_at       INTEGER,
    received_at   INTEGER,
    started_at    INTEGER,
    finished_at   INTEGER,
    runtime       REAL,
    progress_current INTEGER,
    progress_total   INTEGER,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (project_id, uuid)
);
-- The tasks list: newest first, optionally one name, state or worker.
CREATE INDEX celery_tasks_recent ON celery_tasks (project_id, updated_at);
CREATE INDEX celery_tasks_by_name ON celery_tasks (project_id, name, updated_at);
CREATE INDEX celery_tasks_by_state ON celery_tasks (project_id, state, updated_at);
CREATE INDEX celery_tasks_by_worker ON celery_tasks (project_id, worker, updated_at);

CREATE TABLE celery_task_events (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    uuid        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    hostname    TEXT NOT NULL,
    -- The event's fields as JSON.
    fields      TEXT NOT NULL
);
CREATE INDEX celery_task_events_by_task ON celery_task_events (project_id, uuid, at);

CREATE TABLE celery_workers (
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hostname        TEXT NOT NULL,
    freq            REAL NOT NULL,
    last_heartbeat  INTEGER NOT NULL,
    active          INTEGER NOT NULL,
    processed       INTEGER NOT NULL,
    -- JSON array of the three load averages.
    loadavg         TEXT NOT NULL,
    sw_ident        TEXT,
    sw_ver          TEXT,
    sw_sys          TEXT,
    online_since    INTEGER NOT NULL,
    offline_at      INTEGER,
    PRIMARY KEY (project_id, hostname)
);
