-- What people did to Celery from Vigie (src/celery/actions.rs): revoke, rate limits, pool
-- changes, purges… one row each, with who, when, the arguments sent and what the workers
-- answered. Shown on the task, worker and queue pages and in the API; kept with the project.
CREATE TABLE celery_actions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    -- A user name, or "token <name>".
    actor       TEXT NOT NULL,
    -- `revoke`, `terminate`, `rate_limit`, … (vigie_core::celery::control::Action::name).
    action      TEXT NOT NULL,
    -- The task id, task name or queue it acted on; NULL for worker-wide actions.
    target      TEXT,
    -- The workers it was sent to, as a JSON array (empty: all).
    workers     TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    -- What came back, for people: "2 workers: ok", "purged 12 messages", the error.
    outcome     TEXT NOT NULL,
    ok          INTEGER NOT NULL
);
CREATE INDEX celery_actions_by_time ON celery_actions (project_id, at);
CREATE INDEX celery_actions_by_target ON celery_actions (project_id, target, at);

-- What a running task last said it was doing (celery-progress's `description`).
ALTER TABLE celery_tasks ADD COLUMN progress_description TEXT;
