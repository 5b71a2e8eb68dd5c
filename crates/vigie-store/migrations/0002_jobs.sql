-- Jobs, their items (trace rows) and their message feed; the statements in src/jobs.rs run on
-- both databases.

-- Web origins (one per line) allowed to read the project's jobs from a browser (CORS).
ALTER TABLE projects ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';

CREATE TABLE jobs (
    pk                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    id                  TEXT NOT NULL,
    name                TEXT NOT NULL,
    kind                TEXT,
    application         TEXT,
    flow                TEXT,
    launched_by         TEXT,
    status              TEXT NOT NULL,
    total               INTEGER,
    processed           INTEGER NOT NULL DEFAULT 0,
    failed              INTEGER NOT NULL DEFAULT 0,
    skipped             INTEGER NOT NULL DEFAULT 0,
    message             TEXT,
    meta                TEXT,
    summary             TEXT,
    stall_after_ms      INTEGER NOT NULL,
    read_token_hash     TEXT NOT NULL UNIQUE,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    last_update         INTEGER NOT NULL,
    finished_at         INTEGER,
    stalled_since       INTEGER,
    stalled_ms          INTEGER NOT NULL DEFAULT 0,
    rate_old_at         INTEGER,
    rate_old_processed  INTEGER,
    rate_new_at         INTEGER NOT NULL,
    rate_new_processed  INTEGER NOT NULL,
    UNIQUE (project_id, id)
);
CREATE INDEX jobs_by_created ON jobs (project_id, created_at);
-- The stall sweep looks at running jobs only.
CREATE INDEX jobs_by_status ON jobs (status, last_update);

CREATE TABLE job_items (
-- sqlite only:
    -- seq is the rowid: arrival order, and the cheapest key SQLite has.
    seq          INTEGER PRIMARY KEY,
-- postgres only:
    seq          BIGSERIAL PRIMARY KEY,
-- end
    job_pk       INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
    project_id   INTEGER NOT NULL,
    item_key     TEXT,
    status       TEXT NOT NULL,
    name         TEXT,
    file         TEXT,
    target       TEXT,
    comment      TEXT,
    error        TEXT,
    duration_ms  REAL,
    at           INTEGER NOT NULL,
    fields       TEXT
);
-- A retried upload of the same item key is not counted twice (NULL keys never collide).
CREATE UNIQUE INDEX job_items_by_key ON job_items (job_pk, item_key);
-- sqlite only:
-- A job's items newest first (an index on job_pk alone is ordered by rowid, i.e. seq) …
CREATE INDEX job_items_by_job ON job_items (job_pk);
-- … and by status: the errors-only view and the counts, without touching the table.
CREATE INDEX job_items_by_status ON job_items (job_pk, status);
-- postgres only:
-- A job's items newest first, and by status (the errors-only view and the counts).
CREATE INDEX job_items_by_job ON job_items (job_pk, seq);
CREATE INDEX job_items_by_status ON job_items (job_pk, status, seq);
-- end
CREATE INDEX job_items_by_time ON job_items (project_id, at);

CREATE TABLE job_messages (
-- sqlite only:
    id      INTEGER PRIMARY KEY,
-- postgres only:
    id      BIGSERIAL PRIMARY KEY,
-- end
    job_pk  INTEGER NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    text    TEXT NOT NULL
);
CREATE INDEX job_messages_by_job ON job_messages (job_pk, id);
