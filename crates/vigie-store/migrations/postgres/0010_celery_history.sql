-- Celery, second part: the tasks list sorted by runtime or times, and each worker's online
-- periods (one row per period, keyed by when it began; its end is the offline event or, when
-- the worker just went silent, its last heartbeat).
CREATE INDEX celery_tasks_by_runtime ON celery_tasks (project_id, runtime);
CREATE INDEX celery_tasks_by_received ON celery_tasks (project_id, received_at);
CREATE INDEX celery_tasks_by_started ON celery_tasks (project_id, started_at);

CREATE TABLE celery_worker_periods (
    project_id      BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    hostname        TEXT NOT NULL,
    online_since    BIGINT NOT NULL,
    last_heartbeat  BIGINT NOT NULL,
    offline_at      BIGINT,
    PRIMARY KEY (project_id, hostname, online_since)
);

-- The task names and queues seen, for the filters and queue lengths: read on every tasks page,
-- where a DISTINCT over millions of tasks would cost more than the page itself.
CREATE TABLE celery_names (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    -- 'task' or 'queue'.
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (project_id, kind, name)
);
INSERT INTO celery_names (project_id, kind, name)
    SELECT DISTINCT project_id, 'task', name FROM celery_tasks WHERE name IS NOT NULL;
INSERT INTO celery_names (project_id, kind, name)
    SELECT DISTINCT project_id, 'queue', queue FROM celery_tasks WHERE queue IS NOT NULL;


-- The tasks search scans on PostgreSQL (in parallel); SQLite keeps a trigram index
-- (celery_search) for it.
