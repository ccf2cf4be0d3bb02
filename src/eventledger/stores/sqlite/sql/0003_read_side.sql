-- The read side: where subscriptions keep their place, who runs them, what they parked.

-- Position of the last event a subscription (or a read model generation) handled.
CREATE TABLE eventledger_checkpoints (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL CHECK (position >= 0),
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One runner at a time per subscription: a lease renewed while it runs.
CREATE TABLE eventledger_leases (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Events a handler kept failing on, with the error, until retried or skipped.
CREATE TABLE eventledger_dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    event_id     BLOB    NOT NULL,
    stream_id    TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    error        TEXT    NOT NULL,
    traceback    TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'parked'
                 CHECK (status IN ('parked', 'retried', 'skipped')),
    parked_at    INTEGER NOT NULL,
    resolved_at  INTEGER
);
CREATE INDEX eventledger_dead_letters_open ON eventledger_dead_letters (subscription, status);

-- Read models: which generation of each is the one queries see.
CREATE TABLE eventledger_read_models (
    name       TEXT    PRIMARY KEY,
    generation INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
