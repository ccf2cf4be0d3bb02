-- Commands: what was asked, by whom, and what it wrote. A command's row commits in
-- the transaction of its events, so it is also the idempotency record: a repeat of
-- an idempotency key finds it and gets the first result back.
CREATE TABLE eventledger_commands (
    id              BLOB    PRIMARY KEY CHECK (length(id) = 16),
    name            TEXT    NOT NULL,
    idempotency_key TEXT    UNIQUE,
    payload_hash    TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT    NOT NULL,
    actor           TEXT,
    result          TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX eventledger_commands_correlation ON eventledger_commands (correlation_id);

-- Everything one request set off: events by correlation id (read_correlated).
CREATE INDEX eventledger_events_correlation
    ON eventledger_events (json_extract(metadata, '$.correlation_id'));
