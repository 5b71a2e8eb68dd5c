-- User feedback (the SDKs' `feedback` items: captureFeedback, the browser's feedback widget;
-- and the older `user_report`), listed per project and shown on the issue of the event it is
-- about (`associated_event_id`, joined to `events` when read).
CREATE TABLE feedback (
    project_id           INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_id             TEXT NOT NULL,
    time                 INTEGER NOT NULL,
    message              TEXT NOT NULL,
    name                 TEXT,
    contact_email        TEXT,
    url                  TEXT,
    associated_event_id  TEXT,
    PRIMARY KEY (project_id, event_id)
);
CREATE INDEX feedback_by_time ON feedback (project_id, time);
CREATE INDEX feedback_by_event ON feedback (project_id, associated_event_id);
