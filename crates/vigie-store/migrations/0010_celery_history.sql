-- Celery, second part: the tasks list sorted by runtime or times, and each worker's online
-- periods (one row per period, keyed by when it began; its end is the offline event or, when
-- the worker just went silent, its last heartbeat).
CREATE INDEX celery_tasks_by_runtime ON celery_tasks (project_id, runtime);
CREATE INDEX celery_tasks_by_received ON celery_tasks (project_id, received_at);
CREATE INDEX celery_tasks_by_started ON celery_tasks (project_id, started_at);

CREATE TABLE celery_worker_periods (
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hostname        TEXT NOT NULL,
    online_since    INTEGER NOT NULL,
    last_heartbeat  INTEGER NOT NULL,
    offline_at      INTEGER,
    PRIMARY KEY (project_id, hostname, online_since)
);

-- The task names and queues seen, for the filters and queue lengths: read on every tasks page,
-- where a DISTINCT over millions of tasks would cost more than the page itself.
CREATE TABLE celery_names (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- 'task' or 'queue'.
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (project_id, kind, name)
);
INSERT INTO celery_names (project_id, kind, name)
    SELECT DISTINCT project_id, 'task', name FROM celery_tasks WHERE name IS NOT NULL;
INSERT INTO celery_names (project_id, kind, name)
    SELECT DISTINCT project_id, 'queue', queue FROM celery_tasks WHERE queue IS NOT NULL;

-- sqlite only:
-- The tasks search (args:, kwargs:, result:, words) over millions of tasks: each task's name,
-- arguments, result and exception as trigrams (SQLite's FTS5), keyed by the task's rowid.
-- A search asks it for the tasks holding every trigram of each term, then checks the real
-- columns; contentless (the text lives in celery_tasks) and without positions, to stay small.
CREATE VIRTUAL TABLE celery_search USING fts5(
    body, tokenize = 'trigram', content = '', contentless_delete = 1, detail = 'none'
);
INSERT INTO celery_search (rowid, body)
    SELECT rowid, concat_ws(' ', name, args, kwargs, result, exception) FROM celery_tasks;
-- end
-- PostgreSQL scans celery_tasks for the tasks search (in parallel) and needs no index for it.
