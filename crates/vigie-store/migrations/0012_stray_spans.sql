-- Streamed spans that came before (or after) their segment: the SDK flushes a trace's spans
-- 5 s after the first ended, so a longer segment arrives after some of its children. Each is
-- kept under its trace and segment and joined to the segment's sample when that is read.
CREATE TABLE stray_spans (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    trace_id    TEXT NOT NULL,
    segment_id  TEXT NOT NULL,
    time        INTEGER NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX stray_spans_by_segment ON stray_spans (project_id, trace_id, segment_id);
CREATE INDEX stray_spans_by_time ON stray_spans (time);
