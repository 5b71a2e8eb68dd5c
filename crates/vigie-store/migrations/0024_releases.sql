-- Releases and their deploys, as `sentry-cli releases` and the bundler plugins declare them
-- (src/releases.rs). A release also exists without a row here when events or sessions name
-- it; the row holds what only the tools say: when it was created and finalized, its deploys.
CREATE TABLE releases (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version      TEXT NOT NULL,
    url          TEXT,
    created_at   INTEGER NOT NULL,
    -- When it was finalized (`sentry-cli releases finalize`): released to users.
    released_at  INTEGER,
    UNIQUE (project_id, version)
);

CREATE TABLE deploys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id   INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    environment  TEXT NOT NULL,
    name         TEXT,
    url          TEXT,
    started_at   INTEGER,
    finished_at  INTEGER NOT NULL
);
CREATE INDEX deploys_by_release ON deploys (release_id, finished_at);
