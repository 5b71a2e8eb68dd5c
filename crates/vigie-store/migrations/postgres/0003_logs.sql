-- Log storage: sources, and blocks of compressed records with their summaries (see
-- src/logs/mod.rs). Shapes match sqlite/0003_logs.sql column for column.

CREATE TABLE log_sources (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE log_blocks (
    id            BIGSERIAL PRIMARY KEY,
    project_id    BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    source_id     BIGINT NOT NULL REFERENCES log_sources(id) ON DELETE CASCADE,
    min_time      BIGINT NOT NULL,
    max_time      BIGINT NOT NULL,
    records       BIGINT NOT NULL,
    level_mask    BIGINT NOT NULL,
    level_counts  TEXT NOT NULL,
    raw_bytes     BIGINT NOT NULL,
    stored_bytes  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    bloom         BYTEA NOT NULL,
    data          BYTEA NOT NULL
);
-- Blocks are written once and never updated; compressed blobs gain nothing from TOAST's pglz.
ALTER TABLE log_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE log_blocks ALTER COLUMN bloom SET STORAGE EXTERNAL;
CREATE INDEX log_blocks_by_time ON log_blocks (project_id, max_time);
CREATE INDEX log_blocks_by_source ON log_blocks (source_id, max_time);
