-- The event log and its streams.
-- position: the global order; AUTOINCREMENT so that a position is never reused.
-- recorded_at: microseconds since the Unix epoch, UTC.
CREATE TABLE eventledger_events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    id             BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX eventledger_events_recorded_at ON eventledger_events (recorded_at);

CREATE TABLE eventledger_streams (
    stream_id  TEXT    PRIMARY KEY,
    version    INTEGER NOT NULL CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
