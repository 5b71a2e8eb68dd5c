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
