-- Spans (OTLP traces) in compressed blocks, and which blocks hold each trace (src/traces.rs).
-- A block's data is zstd over lines "<trace id>\t<span as JSON>", sorted by trace id.
CREATE TABLE span_blocks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- Nanoseconds since the epoch: the earliest start and the latest end of its spans.
    min_start   INTEGER NOT NULL,
    max_end     INTEGER NOT NULL,
    spans       INTEGER NOT NULL,
    raw_bytes   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    data        BLOB NOT NULL
);
-- Retention drops the blocks whose spans all ended before a time.
CREATE INDEX span_blocks_by_end ON span_blocks (max_end);
-- postgres only:
-- Written once, read in part never: compressed blobs gain nothing from TOAST's pglz.
ALTER TABLE span_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
-- end

-- One row per trace and block holding some of its spans: opening a trace is an index lookup
-- however many spans are stored.
CREATE TABLE trace_blocks (
    project_id  INTEGER NOT NULL,
    trace_id    TEXT NOT NULL,
    block_id    INTEGER NOT NULL REFERENCES span_blocks(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, trace_id, block_id)
);
CREATE INDEX trace_blocks_by_block ON trace_blocks (block_id);
