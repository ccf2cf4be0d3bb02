-- Process managers (sagas): one row per running or ended instance.
-- bookkeeping: the compensations armed so far and the timeouts pending.
CREATE TABLE __SCHEMA__.process_instances (
    process     text        COLLATE "C" NOT NULL,
    instance_id text        COLLATE "C" NOT NULL,
    status      text        NOT NULL CHECK (status IN ('active', 'completed', 'failed')),
    state       jsonb       NOT NULL,
    bookkeeping jsonb       NOT NULL,
    started_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (process, instance_id)
);
CREATE INDEX process_instances_status ON __SCHEMA__.process_instances (process, status);

-- Deadlines: when one is due, the runner appends a DeadlineReached event (its id is
-- the timeout's id, so firing twice records it once) and marks the row fired.
CREATE TABLE __SCHEMA__.process_timeouts (
    id          uuid        PRIMARY KEY,
    process     text        COLLATE "C" NOT NULL,
    instance_id text        COLLATE "C" NOT NULL,
    name        text        NOT NULL,
    due_at      timestamptz NOT NULL,
    fired       boolean     NOT NULL DEFAULT false,
    metadata    jsonb       NOT NULL
);
CREATE INDEX process_timeouts_due ON __SCHEMA__.process_timeouts (process, due_at)
    WHERE NOT fired;
CREATE INDEX process_timeouts_instance ON __SCHEMA__.process_timeouts (process, instance_id);
