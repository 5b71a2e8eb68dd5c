-- Tail-based keep rules (src/traces.rs, `settle`): a block is settled once its traces were
-- judged whole (vigie_core::trace_keep); only settled blocks are final.
ALTER TABLE span_blocks ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
-- Blocks stored before the rules existed were kept whole: they are final.
UPDATE span_blocks SET settled = 1;
CREATE INDEX span_blocks_unsettled ON span_blocks (project_id, max_end) WHERE settled = 0;
-- Whether the block holds a failed span of the trace: the rules read it over all the trace's
-- blocks without opening them.
ALTER TABLE trace_blocks ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
-- A project's own span retention, in days (NULL: the server's errors.retention).
ALTER TABLE error_settings ADD COLUMN span_retention_days INTEGER;
-- Retention drops a project's blocks by end time.
CREATE INDEX span_blocks_by_project_end ON span_blocks (project_id, max_end);
