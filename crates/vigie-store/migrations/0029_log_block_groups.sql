-- Log blocks gathered into groups of 64, oldest first, each with its members' word filters
-- side by side (see src/logs/group_filter.rs): a search for a word reads a few 512-byte
-- chunks per group instead of every block's own filter, so its cost stops growing with
-- history. A project's blocks up to its newest group's last_block all belong to groups; the
-- blocks after it are checked by their own filters, as before.
CREATE TABLE log_block_groups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    first_block  INTEGER NOT NULL,
    last_block   INTEGER NOT NULL,
    -- The members' time range, so a search in a window reads only the groups it meets.
    min_time     INTEGER NOT NULL,
    max_time     INTEGER NOT NULL,
    -- Rows of the transposed filter (a power of two) and probes per word.
    filter_bits  INTEGER NOT NULL,
    hashes       INTEGER NOT NULL,
    -- The members' block ids, 8 bytes each (little-endian), member i at bit i of a row.
    members      BLOB NOT NULL,
    UNIQUE (project_id, first_block)
);
CREATE INDEX log_block_groups_by_last ON log_block_groups (project_id, last_block);

CREATE TABLE log_group_chunks (
    group_id  INTEGER NOT NULL REFERENCES log_block_groups(id) ON DELETE CASCADE,
    chunk     INTEGER NOT NULL,
    bits      BLOB NOT NULL,
    PRIMARY KEY (group_id, chunk)
);
