-- Jobs, their items (trace rows) and their message feed. Shapes match sqlite/0002_jobs.sql
-- column for column: the statements in src/jobs.rs run on both.

-- Web origins (one per line) allowed to read the project's jobs from a browser (CORS).
ALTER TABLE projects ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';

CREATE TABLE jobs (
    pk                  BIGSERIAL PRIMARY KEY,
    project_id          BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    id                  TEXT NOT NULL,
    name                TEXT NOT NULL,
    kind                TEXT,
    application         TEXT,
    flow                TEXT,
    launched_by         TEXT,
    status              TEXT NOT NULL,
    total               BIGINT,
    processed           BIGINT NOT NULL DEFAULT 0,
    failed              BIGINT NOT NULL DEFAULT 0,
    skipped             BIGINT NOT NULL DEFAULT 0,
    message             TEXT,
    meta                TEXT,
    summary             TEXT,
    stall_after_ms      BIGINT NOT NULL,
    read_token_hash     TEXT NOT NULL UNIQUE,
    created_at          BIGINT NOT NULL,
    started_at          BIGINT,
    last_update         BIGINT NOT NULL,
    finished_at         BIGINT,
    stalled_since       BIGINT,
    stalled_ms          BIGINT NOT NULL DEFAULT 0,
    rate_old_at         BIGINT,
    rate_old_processed  BIGINT,
    rate_new_at         BIGINT NOT NULL,
    rate_new_processed  BIGINT NOT NULL,
    UNIQUE (project_id, id)
);
CREATE INDEX jobs_by_created ON jobs (project_id, created_at);
-- The stall sweep looks at running jobs only.
CREATE INDEX jobs_by_status ON jobs (status, last_update);

CREATE TABLE job_items (
    seq          BIGSERIAL PRIMARY KEY,
    job_pk       BIGINT NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
    project_id   BIGINT NOT NULL,
    item_key     TEXT,
    status       TEXT NOT NULL,
    name         TEXT,
    file         TEXT,
    target       TEXT,
    comment      TEXT,
    error        TEXT,
    duration_ms  DOUBLE PRECISION,
    at           BIGINT NOT NULL,
    fields       TEXT
);
-- A retried upload of the same item key is not counted twice (NULL keys never collide).
CREATE UNIQUE INDEX job_items_by_key ON job_items (job_pk, item_key);
-- A job's items newest first, and by status (the errors-only view and the counts).
CREATE INDEX job_items_by_job ON job_items (job_pk, seq);
CREATE INDEX job_items_by_status ON job_items (job_pk, status, seq);
CREATE INDEX job_items_by_time ON job_items (project_id, at);

CREATE TABLE job_messages (
    id      BIGSERIAL PRIMARY KEY,
    job_pk  BIGINT NOT NULL REFERENCES jobs(pk) ON DELETE CASCADE,
    at      BIGINT NOT NULL,
    text    TEXT NOT NULL
);
CREATE INDEX job_messages_by_job ON job_messages (job_pk, id);
