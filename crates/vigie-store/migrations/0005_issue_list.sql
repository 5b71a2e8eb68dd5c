-- The Issues list with 100,000 issues: one index per sort, led by status (the list always
-- shows one status unless asked otherwise), so counting a status and reading its first page
-- in any order never visits the table.
CREATE INDEX issues_by_status_last_seen ON issues (project_id, status, last_seen);
CREATE INDEX issues_by_status_first_seen ON issues (project_id, status, first_seen);
CREATE INDEX issues_by_status_events ON issues (project_id, status, event_count);
CREATE INDEX issues_by_status_users ON issues (project_id, status, user_count, last_seen);

-- `tag:value` filters start from the tag: the issues holding it, without a table lookup.
DROP INDEX issue_tags_by_value;
CREATE INDEX issue_tags_by_value ON issue_tags (key, value, issue_id);
