-- The spans that begin a unit of work (a request served, a task run, a trace's root), one row
-- each (src/traces.rs): trace search, "slowest traces of an endpoint" and a job's traces read
-- these rows, never the span blocks.
CREATE TABLE trace_entries (
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    trace_id     TEXT NOT NULL,
    span_id      TEXT NOT NULL,
    service      TEXT NOT NULL,
    -- The endpoint ("GET /invoices/{id}"), the task, or the root span's name.
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    -- Nanoseconds since the epoch, and how long it lasted.
    start        INTEGER NOT NULL,
    duration_ns  INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    job_id       TEXT,
    -- The span's attributes as a JSON list of [key, value] pairs (searched with LIKE).
    attributes   TEXT NOT NULL,
    PRIMARY KEY (project_id, trace_id, span_id)
);
CREATE INDEX trace_entries_by_start ON trace_entries (project_id, start);
CREATE INDEX trace_entries_by_name ON trace_entries (project_id, name, start);
CREATE INDEX trace_entries_by_job ON trace_entries (project_id, job_id) WHERE job_id IS NOT NULL;

-- Whether span exceptions (OpenTelemetry span events "exception") become error events.
ALTER TABLE error_settings ADD COLUMN span_exceptions INTEGER NOT NULL DEFAULT 1;
