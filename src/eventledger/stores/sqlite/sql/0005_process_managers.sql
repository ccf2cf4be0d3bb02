-- Process managers (sagas): one row per running or ended instance.
-- bookkeeping: the compensations armed so far and the timeouts pending.
CREATE TABLE eventledger_process_instances (
    process     TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('active', 'completed', 'failed')),
    state       TEXT    NOT NULL,
    bookkeeping TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (process, instance_id)
) WITHOUT ROWID;
CREATE INDEX eventledger_process_instances_status
    ON eventledger_process_instances (process, status);

-- Deadlines: when one is due, the runner appends a DeadlineReached event (its id is
-- the timeout's id, so firing twice records it once) and marks the row fired.
CREATE TABLE eventledger_process_timeouts (
    id          BLOB    PRIMARY KEY CHECK (length(id) = 16),
    process     TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,
    fired       INTEGER NOT NULL DEFAULT 0,
    metadata    TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX eventledger_process_timeouts_due
    ON eventledger_process_timeouts (process, fired, due_at);
CREATE INDEX eventledger_process_timeouts_instance
    ON eventledger_process_timeouts (process, instance_id);
