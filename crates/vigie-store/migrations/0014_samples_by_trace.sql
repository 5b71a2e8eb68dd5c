-- An issue's event names its trace; the request (transaction sample) of that trace is found
-- by it, so the issue page links the request that failed.
CREATE INDEX transaction_samples_by_trace ON transaction_samples (project_id, trace_id);
