-- Where Vigie read each followed log file to (`[[logs.follow]]`, `vigie import --follow`),
-- written in the same transaction as the records read before that point, so a restart
-- resumes exactly there: nothing lost, nothing stored twice. One row per host and path: the
-- same path on two machines is two files.
CREATE TABLE followed_files (
    host        TEXT NOT NULL,
    path        TEXT NOT NULL,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- The file's identity when it was read ("device:inode"): another file at the same path
    -- (rotation while Vigie was stopped) is told apart by it.
    file_id     TEXT NOT NULL,
    -- The SHA-1 of the file's first head_len bytes (at most 1 KiB): an inode given again to
    -- a new file is told apart by it.
    head_len    INTEGER NOT NULL,
    head_sha1   TEXT NOT NULL,
    -- Bytes read and stored: the next record starts here.
    read_to     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (host, path)
);
